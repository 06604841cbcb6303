// Starting and joining the library's own threads, and the fork hook for their state.
#pragma once

#include <pthread.h>

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

}  // namespace corepool::platform
