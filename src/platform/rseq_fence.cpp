// rseq fence via membarrier(2). See rseq_fence.h.
#include "platform/rseq_fence.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "platform/rseq.h"

namespace corepool::platform {
namespace {
// 0 not tried, 1 ready, -1 unavailable. Written once under the function-static below.
std::atomic<int> g_state{0};

long membarrier(int cmd, unsigned flags, int cpu) noexcept {
  return syscall(__NR_membarrier, cmd, flags, cpu);
}
}  // namespace

bool rseq_fence_init() noexcept {
  static const bool ok = [] {
    // Useless without sequences to restart; and the whole point is the RSEQ command.
    bool good = rseq_arch_supported() &&
                membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0) == 0;
    g_state.store(good ? 1 : -1, std::memory_order_release);
    return good;
  }();
  return ok;
}

bool rseq_fence_ready() noexcept {
  return g_state.load(std::memory_order_acquire) == 1;
}

namespace {
int fence(unsigned flags, int cpu) noexcept {
  if (!rseq_fence_ready()) return -ENOSYS;
  int saved = errno;  // async-signal-safe: leave the interrupted code's errno alone
  long rc = membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, flags, cpu);
  int err = rc == 0 ? 0 : -errno;
  errno = saved;
  return err;
}
}  // namespace

int rseq_fence(unsigned cpu) noexcept {
  return fence(MEMBARRIER_CMD_FLAG_CPU, static_cast<int>(cpu));
}

int rseq_fence_all() noexcept {
  return fence(0, 0);
}

}  // namespace corepool::platform
