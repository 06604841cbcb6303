// Checked mode: the pools' optional misuse detection (docs/ARCHITECTURE.md, "Checked mode").
//
// COREPOOL_CHECK=1 (or "on") in the environment turns it on for the whole process; it is read
// once, by a load-time constructor (or by the first call below, if a pool is used before
// constructors ran), and never changes afterwards. Each pool decides at creation what it
// checks and how, so that with checked mode off its fast paths are unchanged: a pool either
// tests it only on paths that are slow anyway, or creates itself without the tier whose
// hits would bypass the check (qmempool, objpool: no per-CPU caches), so every operation
// reaches the slow path where the check is.
//
// Error rule for a detected misuse (functions that return int; void functions record the
// same in cp_last_error()):
//   -EINVAL    a pointer that is not one of the pool's objects (foreign, interior, misaligned,
//              already returned to the pool's source);
//   -EALREADY  one of the pool's objects that the pool already holds as free (double free,
//              double push);
//   -ESHUTDOWN a push to a pool whose fini has run.
#pragma once

#include <atomic>

namespace corepool {

// 0: not read yet; 1: off; 2: on (check.cpp).
extern std::atomic<int> g_check_state;
__attribute__((cold)) int check_read_env() noexcept;

// Whether checked mode is on: one relaxed load once decided (the load-time constructor read
// the environment). Async-signal-safe, lock-free.
inline bool check_enabled() noexcept {
  int s = g_check_state.load(std::memory_order_relaxed);
  if (__builtin_expect(s == 0, 0)) s = check_read_env();
  return s == 2;
}

// A misuse: records `what` for cp_last_error() and returns err, like set_error; in checked
// mode also writes one line, "corepool: <fn>: <what> (<ptr>)", to stderr with one write(2)
// (errno left as it was). Async-signal-safe; never allocates.
int report_misuse(int err, const char *fn, const char *what, const void *ptr) noexcept;

}  // namespace corepool
