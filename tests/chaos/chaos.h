// The chaos harness: run a test body on T threads while the environment does its worst.
//
//  - oversubscription: T = 1, 2, 8, 32 workers on a 2-core machine;
//  - migration: a migrator thread keeps re-pinning random workers to random CPUs;
//  - signal storm: a POSIX timer per worker (about `storm_hz` in total) whose handler calls
//    `on_signal` on the interrupted worker, inside whatever it was doing;
//  - parking: a parker thread stops a random worker at an arbitrary instruction (a signal
//    whose handler waits) for `park_for`, while the others must keep making progress.
// run() fails on a time bound instead of hanging: past `deadline` it reports `in_time =
// false` and asks bodies to stop (should_stop()); if they still do not, the process exits
// with a diagnostic after a grace period.
//
// Do not use this as a benchmark: the point is disturbance, not speed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

namespace corepool::chaos {

// True in ThreadSanitizer builds, which run stress loops about 10x slower: tests divide
// their iteration counts by kTsanScale.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kUnderTsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kUnderTsan = true;
#else
inline constexpr bool kUnderTsan = false;
#endif
#else
inline constexpr bool kUnderTsan = false;
#endif
inline constexpr int kTsanScale = kUnderTsan ? 8 : 1;

struct options {
  int threads = 2;
  bool migrate = true;
  std::chrono::microseconds migrate_every{200};
  bool signal_storm = false;
  int storm_hz = 10000;  // total over all workers
  bool park = false;
  std::chrono::milliseconds park_for{20};
  std::chrono::milliseconds park_every{40};
  std::chrono::milliseconds deadline{60000};
};

struct report {
  bool in_time = false;
  uint64_t signals = 0;     // storm handler runs on workers
  uint64_t migrations = 0;  // successful re-pins
  uint64_t parks = 0;       // completed parkings
  double seconds = 0;
};

// Runs inside the storm's signal handler on the interrupted worker: async-signal-safe code
// only.
using signal_fn = void (*)(int worker, void *arg);

report run(const options &opt, const std::function<void(int worker)> &body,
           signal_fn on_signal = nullptr, void *arg = nullptr);

// The calling thread's worker index, or -1 outside run()'s workers.
int worker_id() noexcept;
// True while the storm handler runs on this thread.
bool in_signal_handler() noexcept;
// True once the deadline passed: long bodies should poll it and return.
bool should_stop() noexcept;
// Parkings completed so far in the current run(): a body that must see some parks runs
// until they happened, not for a fixed time that a loaded machine may not give the parker.
uint64_t parks_so_far() noexcept;
// Stop the calling thread until `release` becomes true (for tests that park a thread at an
// injection point). Async-signal-safe; sleeps, does not burn the CPU.
void park_self_until(const std::atomic<bool> &release) noexcept;

// A small fast PRNG for bodies (xorshift64*), seeded per worker.
struct rng {
  uint64_t s;
  explicit rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() noexcept {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  uint64_t below(uint64_t n) noexcept { return next() % n; }
};

}  // namespace corepool::chaos
