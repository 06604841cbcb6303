// Library threads (thread.h).
#include "platform/thread.h"

#include <pthread.h>
#include <time.h>

#include <atomic>
#include <cerrno>

namespace corepool::platform {
namespace {
void *trampoline(void *arg) {
  reinterpret_cast<void (*)()>(arg)();
  return nullptr;
}
}  // namespace

bool os_thread::start(void (*fn)()) noexcept {
  int saved = errno;
  bool ok = pthread_create(&id_, nullptr, trampoline, reinterpret_cast<void *>(fn)) == 0;
  errno = saved;
  live_ = ok;
  return ok;
}

void os_thread::join() noexcept {
  if (!live_) return;
  pthread_join(id_, nullptr);
  live_ = false;
}

bool on_fork(void (*prepare)(), void (*parent)(), void (*child)()) noexcept {
  return pthread_atfork(prepare, parent, child) == 0;
}

namespace {
pthread_key_t g_exit_key;
void (*g_exit_fn)() = nullptr;  // written once by thread_exit_hook_init, before any arm
std::atomic<bool> g_exit_ready{false};
// glibc's PTHREAD_KEY_2NDLEVEL_SIZE: keys below it live in the thread descriptor.
constexpr unsigned kInlineKeys = 32;

void run_exit_hook(void *) {
  g_exit_fn();
}
}  // namespace

bool thread_exit_hook_init(void (*fn)()) noexcept {
  static const bool ok = [fn] {
    int saved = errno;
    g_exit_fn = fn;
    bool good = pthread_key_create(&g_exit_key, run_exit_hook) == 0;
    if (good && static_cast<unsigned>(g_exit_key) >= kInlineKeys) {
      (void)pthread_key_delete(g_exit_key);
      good = false;
    }
    errno = saved;
    // Release: the key and fn are set before any thread_exit_hook_arm sees ready.
    g_exit_ready.store(good, std::memory_order_release);
    return good;
  }();
  return ok;
}

bool thread_exit_hook_arm() noexcept {
  if (!g_exit_ready.load(std::memory_order_acquire)) return false;
  // Any non-NULL value: the destructor runs for non-NULL values only.
  return pthread_setspecific(g_exit_key, &g_exit_key) == 0;
}

uint64_t coarse_clock_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace corepool::platform
