// Futex calls (futex.h).
#include "platform/futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

namespace corepool::platform {
namespace {
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "the kernel compares the word as a plain 32-bit integer");

long futex(std::atomic<uint32_t> &w, int op, uint32_t val, const timespec *ts) noexcept {
  int saved = errno;  // async-signal-safe callers: leave the interrupted code's errno alone
  long r = ::syscall(SYS_futex, reinterpret_cast<uint32_t *>(&w), op | FUTEX_PRIVATE_FLAG, val, ts,
                     nullptr, 0);
  errno = saved;
  return r;
}
}  // namespace

void futex_wait(std::atomic<uint32_t> &word, uint32_t expected, long timeout_ns) noexcept {
  if (timeout_ns < 0) {
    futex(word, FUTEX_WAIT, expected, nullptr);
    return;
  }
  timespec ts{static_cast<time_t>(timeout_ns / 1000000000), timeout_ns % 1000000000};
  futex(word, FUTEX_WAIT, expected, &ts);
}

void futex_wake(std::atomic<uint32_t> &word, int n) noexcept {
  futex(word, FUTEX_WAKE, static_cast<uint32_t>(n), nullptr);
}

}  // namespace corepool::platform
