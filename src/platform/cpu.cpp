// CPU identity (platform/cpu.h): choose the rseq source once, register per-thread areas,
// sched_getcpu fallback.
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <atomic>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "platform/cpu.h"
#include "platform/rseq.h"

#ifndef COREPOOL_ENABLE_RSEQ
#define COREPOOL_ENABLE_RSEQ 1
#endif

namespace corepool::platform::detail {

// Mode `off` doubles as "not chosen yet" until choose_mode() ran; g_chosen says which.
int g_mode = static_cast<int>(rseq_mode::off);
static int g_chosen = 0;  // 0 no, 1 choosing, 2 yes (accessed with __atomic builtins)
__thread rseq_abi g_own_area
    __attribute__((tls_model("initial-exec"))) = {0, static_cast<uint32_t>(-1), 0, 0, 0, 0, 0};
const rseq_abi g_off_area = {0, static_cast<uint32_t>(-1), 0, 0, 0, 0, 0};
__thread rseq_abi *t_registered_area __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

constexpr uint32_t kUninit = static_cast<uint32_t>(-1);
constexpr uint32_t kFailed = static_cast<uint32_t>(-2);

bool env_forces_off() {
  const char *v = std::getenv("COREPOOL_RSEQ");
  return v && (std::strcmp(v, "0") == 0 || std::strcmp(v, "off") == 0);
}

// Registers this thread's own area. Returns true when the kernel accepted it.
// Async-signal-safe: one syscall, errno left as it was; a nested call from a signal handler
// sees EBUSY, which means the outer call already registered this very area.
bool register_own() {
#if defined(SYS_rseq)
  const int saved = errno;
  long r = ::syscall(SYS_rseq, &g_own_area, sizeof(rseq_abi), 0, kRseqSig);
  const bool ok = r == 0 || errno == EBUSY;
  errno = saved;
  if (ok) return true;
#endif
  std::atomic_ref(g_own_area.cpu_id).store(kFailed, std::memory_order_relaxed);
  return false;
}

rseq_mode choose_mode() {
  if (!COREPOOL_ENABLE_RSEQ || !rseq_arch_supported() || env_forces_off()) return rseq_mode::off;
  if (kGlibcHasRseq && glibc_rseq_size() > 0 &&
      static_cast<int>(std::atomic_ref(glibc_area()->cpu_id).load(std::memory_order_relaxed)) >= 0)
    return rseq_mode::glibc;
  if (register_own()) return rseq_mode::own;
  return rseq_mode::off;
}

void ensure_chosen() {
  if (std::atomic_ref(g_chosen).load(std::memory_order_acquire) == 2) return;
  int expected = 0;
  if (std::atomic_ref(g_chosen).compare_exchange_strong(expected, 1, std::memory_order_acq_rel,
                                                        std::memory_order_acquire)) {
    rseq_mode m = choose_mode();
    std::atomic_ref(g_mode).store(static_cast<int>(m), std::memory_order_relaxed);
    std::atomic_ref(g_chosen).store(2, std::memory_order_release);  // pairs with the acquire above
    return;
  }
  // Another thread is choosing (only possible before the load-time constructor finished).
  while (std::atomic_ref(g_chosen).load(std::memory_order_acquire) != 2) sched_yield();
}

__attribute__((constructor)) void cpu_init() {
  ensure_chosen();
}

}  // namespace

int rseq_cpu_start_slow() noexcept {
  ensure_chosen();
  auto m = static_cast<rseq_mode>(std::atomic_ref(g_mode).load(std::memory_order_relaxed));
  if (m == rseq_mode::own) {
    uint32_t c = std::atomic_ref(g_own_area.cpu_id).load(std::memory_order_relaxed);
    if (c == kUninit && register_own())
      c = std::atomic_ref(g_own_area.cpu_id).load(std::memory_order_relaxed);
    return static_cast<int>(c) >= 0 ? static_cast<int>(c) : -1;
  }
  if (m == rseq_mode::glibc) {
    int c = static_cast<int>(std::atomic_ref(glibc_area()->cpu_id).load(std::memory_order_relaxed));
    return c >= 0 ? c : -1;
  }
  return -1;
}

// A signal handler may run this between the outer call's check and store: both store the
// same pointer, so the race is harmless.
rseq_abi *rseq_registered_area_slow() noexcept {
  if (rseq_cpu_start() < 0) return nullptr;
  rseq_abi *rs = rseq_area();
  t_registered_area = rs;
  return rs;
}

}  // namespace corepool::platform::detail

namespace corepool::platform {

id_source cpu_id_source() noexcept {
  detail::rseq_cpu_start_slow();  // makes sure the mode is chosen
  switch (static_cast<rseq_mode>(std::atomic_ref(detail::g_mode).load(std::memory_order_relaxed))) {
    case rseq_mode::glibc:
      return id_source::rseq_glibc;
    case rseq_mode::own:
      return id_source::rseq_own;
    default:
      return id_source::getcpu;
  }
}

bool rseq_enabled() noexcept {
  return cpu_id_source() != id_source::getcpu;
}

unsigned current_cpu() noexcept {
  int c = rseq_cpu_start();
  if (c < 0) c = sched_getcpu();
  if (c < 0) c = 0;
  unsigned n = nr_cpu_ids();
  return static_cast<unsigned>(c) < n ? static_cast<unsigned>(c) : static_cast<unsigned>(c) % n;
}

}  // namespace corepool::platform
