// Fault-injection points (librseq's inject.h idea): CP_INJECT("name") marks a place inside a
// multi-step protocol where a test may stop, slow down or signal the thread. Compiled to
// nothing unless the build sets COREPOOL_INJECT (the debug/asan/tsan presets do; release
// does not). Never put one inside an rseq sequence: that is a single asm block.
#pragma once

#include <atomic>

#ifdef COREPOOL_INJECT
extern "C" {
// Called at each injection point with its name. Set by tests only; null means no-op.
extern void (*cp_inject_hook)(const char *point);
}
#define CP_INJECT(point)                                                     \
  do {                                                                       \
    if (void (*cp_h_)(const char *) =                                        \
            std::atomic_ref(cp_inject_hook).load(std::memory_order_relaxed)) \
      cp_h_(point);                                                          \
  } while (0)
#else
#define CP_INJECT(point) \
  do {                   \
  } while (0)
#endif
