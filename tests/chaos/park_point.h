// Stop a thread at a named injection point (src/inject.h) until the test releases it: the
// thread that wants to stop sets park_at to the point's name, the test waits for parked and
// later sets release. One stopped thread at a time. Only in builds with COREPOOL_INJECT.
#pragma once

#ifdef COREPOOL_INJECT
#include <atomic>
#include <cstring>

#include "chaos.h"
#include "inject.h"

namespace corepool::chaos {

inline std::atomic<bool> park_release{false};
inline std::atomic<bool> parked{false};
// Set by the thread to stop, on itself; cleared when it stops.
inline thread_local const char *park_at = nullptr;

inline void park_point_hook(const char *point) {
  if (park_at && std::strcmp(point, park_at) == 0) {
    park_at = nullptr;
    parked.store(true, std::memory_order_release);
    park_self_until(park_release);
  }
}

// Installs park_point_hook for its scope (and resets release and parked first).
struct park_point_guard {
  park_point_guard() {
    park_release.store(false, std::memory_order_relaxed);
    parked.store(false, std::memory_order_relaxed);
    std::atomic_ref(cp_inject_hook).store(&park_point_hook, std::memory_order_release);
  }
  ~park_point_guard() { std::atomic_ref(cp_inject_hook).store(nullptr, std::memory_order_release); }
  park_point_guard(const park_point_guard &) = delete;
  park_point_guard &operator=(const park_point_guard &) = delete;

  // Waits until the armed thread has stopped.
  static void wait_parked() {
    while (!parked.load(std::memory_order_acquire)) sched_yield();
  }
  static void release() { park_release.store(true, std::memory_order_release); }
};

}  // namespace corepool::chaos
#endif
