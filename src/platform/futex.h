// Futex waits and wakes on a 32-bit atomic word of this process (FUTEX_PRIVATE_FLAG).
//
// The word is only compared by the kernel, never modified: callers change it with their
// own atomics and use these calls to sleep until it changes. A wait may return early
// (a signal, a spurious wake-up): callers re-check their condition in a loop.
#pragma once

#include <atomic>
#include <cstdint>

namespace corepool::platform {

// Sleeps while `word` holds `expected` (returns at once when it does not), until a wake,
// a signal or, when `timeout_ns` >= 0, that many nanoseconds. May block; not for a signal
// handler. errno is left as it was.
void futex_wait(std::atomic<uint32_t> &word, uint32_t expected, long timeout_ns = -1) noexcept;

// Wakes up to `n` threads sleeping on `word`. Async-signal-safe (one system call, errno
// left as it was); never blocks.
void futex_wake(std::atomic<uint32_t> &word, int n) noexcept;

}  // namespace corepool::platform
