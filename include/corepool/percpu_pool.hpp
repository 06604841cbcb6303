// corepool/percpu_pool.hpp - C++ view of corepool/percpu_pool.h (conventions: docs/cpp.md).
//
//   corepool::percpu_pool<T> pool(low, high);   // watermark-refilled cache of per-CPU areas
//   pool.fill();                                // synchronous fill to `high`
//   corepool::percpu<T> a = pool.alloc();       // signal-safe; empty (false) when none
//   a.on(cpu)->field = 1;                       // a is a per-CPU T, freed when it goes
#pragma once

#include <corepool/percpu_pool.h>
#include <corepool/error.hpp>
#include <corepool/percpu.hpp>

#include <utility>

namespace corepool {

/// Owns a cp_percpu_pool of areas sized and aligned for T. Each area it hands out is a
/// corepool::percpu<T> (zero on every CPU, freed with cp_free_percpu when it goes, which is
/// itself async-signal-safe). Movable, not copyable; a moved-from pool may only be
/// destroyed or assigned to.
template <class T>
class percpu_pool {
 public:
  /// An empty pool with watermarks 0 <= low <= high, high >= 1, refilled on corepool's
  /// background worker. Throws std::system_error (EINVAL with the rule that failed,
  /// ENOMEM). May block; not async-signal-safe.
  percpu_pool(int low, int high) {
    cp_clear_error();
    check(cp_percpu_pool_create(&p_, sizeof(T), alignof(T), low, high), "corepool::percpu_pool");
  }
  percpu_pool(percpu_pool &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  percpu_pool &operator=(percpu_pool &&o) noexcept {
    if (this != &o) {
      cp_percpu_pool_destroy(p_);
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  percpu_pool(const percpu_pool &) = delete;
  percpu_pool &operator=(const percpu_pool &) = delete;
  /// cp_percpu_pool_destroy: cancels pending refills and frees the cached areas (areas
  /// handed out stay valid; they are the holders'). May block.
  ~percpu_pool() { cp_percpu_pool_destroy(p_); }

  /// One cached area, or an empty percpu<T> when the pool is empty (a refill is scheduled
  /// as cp_percpu_pool_alloc describes). Lock-free; async-signal-safe; never maps memory.
  percpu<T> alloc() noexcept { return percpu<T>(adopt, cp_percpu_pool_alloc(p_)); }
  /// Fills synchronously up to target_nr (0: `high`). May block.
  void fill(int target_nr = 0) noexcept { cp_percpu_pool_fill(p_, target_nr); }
  /// Cancels pending refills and frees every cached area. May block.
  void empty() noexcept { cp_percpu_pool_empty(p_); }
  /// Cached areas now (a snapshot). Async-signal-safe.
  int nr() const noexcept { return cp_percpu_pool_nr(p_); }
  /// cp_percpu_pool_stats: cached areas, watermarks and the fill / refill counts (a
  /// snapshot). Lock-free; async-signal-safe.
  struct cp_percpu_pool_stats stats() const noexcept {
    struct cp_percpu_pool_stats s {};
    (void)cp_percpu_pool_stats(p_, &s);  // fails only for a NULL pool or s
    return s;
  }
  /// Refills run on the caller's executor (see cp_percpu_pool_set_executor).
  void set_executor(cp_percpu_pool_executor exec, void *user) noexcept {
    cp_percpu_pool_set_executor(p_, exec, user);
  }
  cp_percpu_pool *native() const noexcept { return p_; }

 private:
  cp_percpu_pool *p_ = nullptr;
};

}  // namespace corepool
