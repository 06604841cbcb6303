// A mutex that may live in memory shared by several processes and survives the death of its
// holder (a robust, process-shared POSIX mutex in shared mode; a plain one otherwise).
//
// Storage is opaque bytes, so the mutex can sit inside a caller's shared-memory format.
// Contract of a robust lock: when the holder died while holding it, the next lock() still
// acquires it and returns pshared_lock::owner_died; the caller repairs what the dead holder
// may have left half done (its own invariant) and then the mutex is usable as before. A
// mutex whose repair was not done (the caller unlocks without it) stays usable too: lock()
// marks it consistent before returning owner_died.
#pragma once

#include <cstdint>

namespace corepool::platform {

struct alignas(8) pshared_mutex {
  unsigned char bytes[64];  // a pthread_mutex_t (40 bytes on x86-64, 48 on aarch64; checked)
};

enum class pshared_lock { ok, owner_died };

// Initializes `m` (robust + process-shared when `shared`). 0 or a negative errno. Not
// concurrent with any use of `m`.
int pshared_mutex_init(pshared_mutex *m, bool shared) noexcept;
// Blocks until the caller holds `m`. Not async-signal-safe.
pshared_lock pshared_mutex_lock(pshared_mutex *m) noexcept;
void pshared_mutex_unlock(pshared_mutex *m) noexcept;
// Releases a mutex nobody holds or waits for.
void pshared_mutex_destroy(pshared_mutex *m) noexcept;

}  // namespace corepool::platform
