// Starting and joining the library's own threads, the fork hook for their state, the
// thread-exit hook and a coarse clock.
#pragma once

#include <pthread.h>

#include <cstdint>

namespace corepool::platform {

// One thread started by the library. Not thread-safe itself: its owner serializes start,
// join and forget (under its own lock).
class os_thread {
 public:
  // Starts a thread running fn(). Returns false (and starts nothing) when the system
  // refuses a new thread. May block; not for a signal handler. errno is left as it was.
  bool start(void (*fn)()) noexcept;
  // Waits for the thread to return. Only after a successful start.
  void join() noexcept;
  // In the child of fork(): the thread does not exist there; drop the handle unjoined.
  void forget() noexcept { live_ = false; }
  bool live() const noexcept { return live_; }

 private:
  pthread_t id_{};
  bool live_ = false;
};

// Registers handlers run around every later fork() (pthread_atfork): prepare in the forking
// thread before the fork, parent in the parent and child in the child after it, before
// fork() returns. A handler may be null. The child has only the forking thread; glibc has
// reset its own locks by then, so child may start threads (os_thread::start). Returns false
// when the handlers could not be registered.
bool on_fork(void (*prepare)(), void (*parent)(), void (*child)()) noexcept;

// The thread-exit hook (one per process, a pthread key with a destructor): after
// thread_exit_hook_init(fn), fn runs in every thread that called thread_exit_hook_arm(),
// when that thread exits (not for the thread that calls exit(), nor after fork in the child
// for the threads that did not fork). init: once, not async-signal-safe; true when arm works
// and allocates nothing (glibc keeps the first 32 keys in the thread descriptor; a process
// that created more keys first gets false). arm: async-signal-safe after a true init; fn may
// re-arm (at most three more rounds, then the thread exits anyway).
bool thread_exit_hook_init(void (*fn)()) noexcept;
bool thread_exit_hook_arm() noexcept;

// A monotonic clock in nanoseconds, coarse (the kernel's tick, a few ms). Async-signal-safe,
// no system call (vDSO).
uint64_t coarse_clock_ns() noexcept;

}  // namespace corepool::platform
