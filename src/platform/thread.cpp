// Library threads (thread.h).
#include "platform/thread.h"

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

}  // namespace corepool::platform
