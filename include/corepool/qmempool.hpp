// corepool/qmempool.hpp - C++ view of corepool/qmempool.h (conventions: docs/cpp.md).
//
//   corepool::qmempool           RAII pool; alloc()/free() raw, alloc_handle() RAII.
//   corepool::qmempool_resource  std::pmr::memory_resource: a per-CPU cache of fixed-size
//                                blocks drawn from an upstream resource.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <new>
#include <utility>

#include <corepool/qmempool.h>
#include <corepool/error.hpp>

namespace corepool {

/// Owns a cp_qmempool. Movable (handles stay valid: they name the C pool), not copyable; a
/// moved-from qmempool may only be destroyed or assigned to.
class qmempool {
 public:
  /// Deleter of alloc_handle()'s handles: gives the object back (cp_qmempool_free).
  class returner {
   public:
    returner() noexcept = default;
    explicit returner(cp_qmempool *p) noexcept : p_(p) {}
    void operator()(void *obj) const noexcept { cp_qmempool_free(p_, obj); }

   private:
    cp_qmempool *p_ = nullptr;
  };
  using handle = std::unique_ptr<void, returner>;

  /// Arguments as cp_qmempool_create. Throws std::system_error (EINVAL with the rule that
  /// failed, ENOMEM). May allocate; not async-signal-safe.
  qmempool(uint32_t localq_sz, uint32_t sharedq_sz, uint32_t prealloc, std::size_t obj_size,
           const cp_qmempool_backing *backing = nullptr)
      : obj_size_(obj_size) {
    cp_clear_error();
    if (int e = cp_qmempool_create(&pool_, localq_sz, sharedq_sz, prealloc, obj_size, backing))
      throw_error(e, "corepool::qmempool");
  }
  qmempool(qmempool &&o) noexcept
      : pool_(std::exchange(o.pool_, nullptr)), obj_size_(o.obj_size_) {}
  qmempool &operator=(qmempool &&o) noexcept {
    if (this != &o) {
      cp_qmempool_destroy(pool_);
      pool_ = std::exchange(o.pool_, nullptr);
      obj_size_ = o.obj_size_;
    }
    return *this;
  }
  qmempool(const qmempool &) = delete;
  qmempool &operator=(const qmempool &) = delete;
  /// cp_qmempool_destroy: every cached object goes back to the backing allocator; objects
  /// still held (raw or by handle) must be given back first.
  ~qmempool() { cp_qmempool_destroy(pool_); }

  /// One object, or nullptr when the backing allocator is out of memory. Lock-free;
  /// async-signal-safe unless it reaches the backing allocator (see qmempool.h).
  void *alloc() noexcept { return cp_qmempool_alloc(pool_); }
  /// alloc() owned by a handle that frees the object when it goes (empty when out of memory).
  handle alloc_handle() noexcept { return handle(alloc(), returner(pool_)); }
  /// Gives back an object of this pool (nullptr: no-op). Same context rules as alloc().
  void free(void *p) noexcept { cp_qmempool_free(pool_, p); }
  /// Up to n objects into out[0..k); returns k, fewer only when the backing allocator ran
  /// dry. Throws std::system_error (EINVAL) for n < 0 or out null with n > 0.
  int alloc_bulk(void **out, int n) {
    return check(cp_qmempool_alloc_bulk(pool_, out, n), "corepool::qmempool::alloc_bulk");
  }
  /// Gives back n objects (null entries skipped); n <= 0 or in null: nothing.
  void free_bulk(void *const *in, int n) noexcept {
    if (n > 0 && in) cp_qmempool_free_bulk(pool_, in, n);
  }

  std::size_t object_size() const noexcept { return obj_size_; }
  /// cp_qmempool_stats: free objects per tier and the slow-path counters (a snapshot,
  /// exact when nothing runs concurrently). Lock-free; async-signal-safe.
  struct cp_qmempool_stats stats() const noexcept {
    struct cp_qmempool_stats s {};
    (void)cp_qmempool_stats(pool_, &s);  // fails only for a NULL pool or s
    return s;
  }
  cp_qmempool *native() const noexcept { return pool_; }

 private:
  cp_qmempool *pool_ = nullptr;
  std::size_t obj_size_;
};

/// Queue shape of qmempool_resource's pool (see cp_qmempool_create).
struct qmempool_shape {
  uint32_t localq_sz = 64;     // per-CPU cache, power of two in [16, 65536]
  uint32_t sharedq_sz = 1024;  // shared queue, power of two in [32, 2^24]
  uint32_t prealloc = 0;       // blocks taken from upstream at construction
};

/// std::pmr::memory_resource that caches blocks of `block_size` bytes aligned to
/// `block_align` in a qmempool it owns. The pool's backing allocator is `upstream` itself
/// (allocate(block_size, block_align) / deallocate), so:
///   - a request with bytes <= block_size and align <= block_align is served from the
///     pool; when the pool is empty it takes a block from upstream (one more try there when
///     the pool's own refill failed), so exhaustion is upstream's (std::bad_alloc from
///     std::pmr::null_memory_resource(), whatever upstream throws otherwise);
///   - every other request goes to upstream unchanged;
///   - deallocate tells the two apart by (bytes, align), which pmr guarantees to be the
///     values given to allocate: blocks go back to the pool, the rest to upstream.
/// upstream defaults to std::pmr::get_default_resource(); the pool calls it from whatever
/// thread refills or spills, so it must be thread-safe when the resource is shared.
/// is_equal: only the same object. Pool blocks: lock-free, no upstream call on the fast
/// path. Not copyable or movable (containers and the pool's backing hold its address). The
/// pmr rule applies: deallocate everything before destroying it.
class qmempool_resource : public std::pmr::memory_resource {
 public:
  /// Throws std::system_error (EINVAL: block_align not a power of two, a bad shape;
  /// ENOMEM), or what upstream throws during prealloc.
  explicit qmempool_resource(std::size_t block_size,
                             std::size_t block_align = alignof(std::max_align_t),
                             std::pmr::memory_resource *upstream = std::pmr::get_default_resource(),
                             qmempool_shape shape = {})
      : size_(block_size ? block_size : 1),
        align_(block_align),
        upstream_(upstream),
        pool_(make(shape)) {}
  qmempool_resource(const qmempool_resource &) = delete;
  qmempool_resource &operator=(const qmempool_resource &) = delete;

  std::size_t block_size() const noexcept { return size_; }
  std::size_t block_alignment() const noexcept { return align_; }
  std::pmr::memory_resource *upstream_resource() const noexcept { return upstream_; }
  qmempool &pool() noexcept { return pool_; }

 private:
  qmempool make(qmempool_shape s) {
    if (align_ == 0 || (align_ & (align_ - 1)) != 0)
      throw std::system_error(EINVAL, std::generic_category(),
                              "corepool::qmempool_resource: block_align is not a power of two");
    const cp_qmempool_backing b{&backing_alloc, &backing_free, this};
    return qmempool(s.localq_sz, s.sharedq_sz, s.prealloc, size_, &b);
  }
  // The pool's backing allocator: upstream, with exceptions turned into NULL (the C pool
  // then reports exhaustion).
  static void *backing_alloc(void *ctx) noexcept {
    auto *r = static_cast<qmempool_resource *>(ctx);
    try {
      return r->upstream_->allocate(r->size_, r->align_);
    } catch (...) {
      return nullptr;
    }
  }
  static void backing_free(void *ctx, void *obj) noexcept {
    auto *r = static_cast<qmempool_resource *>(ctx);
    r->upstream_->deallocate(obj, r->size_, r->align_);
  }
  bool fits(std::size_t bytes, std::size_t align) const noexcept {
    return bytes <= size_ && align <= align_;
  }
  void *do_allocate(std::size_t bytes, std::size_t align) override {
    if (!fits(bytes, align)) return upstream_->allocate(bytes, align);
    if (void *p = pool_.alloc()) return p;
    return upstream_->allocate(size_, align_);  // a block like the pool's: free() takes it
  }
  void do_deallocate(void *p, std::size_t bytes, std::size_t align) override {
    if (fits(bytes, align))
      pool_.free(p);
    else
      upstream_->deallocate(p, bytes, align);
  }
  bool do_is_equal(const std::pmr::memory_resource &other) const noexcept override {
    return this == &other;
  }

  std::size_t size_;
  std::size_t align_;
  std::pmr::memory_resource *upstream_;
  qmempool pool_;  // last: destroyed first, while upstream_ is still set
};

}  // namespace corepool
