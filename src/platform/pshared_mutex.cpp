// pshared_mutex: a robust process-shared pthread mutex (see pshared_mutex.h).
#include "platform/pshared_mutex.h"

#include <pthread.h>

#include <cerrno>

namespace corepool::platform {
namespace {
static_assert(sizeof(pthread_mutex_t) <= sizeof(pshared_mutex) &&
              alignof(pthread_mutex_t) <= alignof(pshared_mutex));
inline pthread_mutex_t *raw(pshared_mutex *m) noexcept {
  return reinterpret_cast<pthread_mutex_t *>(m->bytes);
}
}  // namespace

int pshared_mutex_init(pshared_mutex *m, bool shared) noexcept {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  if (shared) {
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  }
  int r = pthread_mutex_init(raw(m), &a);
  pthread_mutexattr_destroy(&a);
  return -r;
}

pshared_lock pshared_mutex_lock(pshared_mutex *m) noexcept {
  if (pthread_mutex_lock(raw(m)) == EOWNERDEAD) {
    pthread_mutex_consistent(raw(m));
    return pshared_lock::owner_died;
  }
  return pshared_lock::ok;
}

void pshared_mutex_unlock(pshared_mutex *m) noexcept {
  pthread_mutex_unlock(raw(m));
}

void pshared_mutex_destroy(pshared_mutex *m) noexcept {
  pthread_mutex_destroy(raw(m));
}

}  // namespace corepool::platform
