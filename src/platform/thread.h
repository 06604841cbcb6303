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

// Runs fn() in the child after every later fork() (pthread_atfork's child hook), on the
// forking thread, before fork() returns there. fn must use only async-signal-safe calls.
// Returns false when the hook could not be registered.
bool on_fork_child(void (*fn)()) noexcept;

}  // namespace corepool::platform
