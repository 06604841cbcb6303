// corepool/qmempool.hpp - RAII wrapper of the qmempool (corepool/qmempool.h) and a
// std::pmr::memory_resource that serves small blocks from it.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <string>
#include <system_error>

#include <corepool/error.h>
#include <corepool/qmempool.h>

namespace corepool {

class qmempool {
 public:
  // Throws std::system_error (code = the errno, what() = cp_last_error()) on failure.
  qmempool(uint32_t localq_sz, uint32_t sharedq_sz, uint32_t prealloc, std::size_t obj_size,
           const cp_qmempool_backing *backing = nullptr)
      : obj_size_(obj_size) {
    if (int e = cp_qmempool_create(&pool_, localq_sz, sharedq_sz, prealloc, obj_size, backing))
      throw std::system_error(-e, std::generic_category(), cp_last_error());
  }
  ~qmempool() { cp_qmempool_destroy(pool_); }
  qmempool(const qmempool &) = delete;
  qmempool &operator=(const qmempool &) = delete;

  // nullptr when the backing allocator is out of memory. Lock-free; async-signal-safe unless
  // it reaches the backing allocator (see qmempool.h).
  void *alloc() noexcept { return cp_qmempool_alloc(pool_); }
  void free(void *p) noexcept { cp_qmempool_free(pool_, p); }
  int alloc_bulk(void **out, int n) noexcept { return cp_qmempool_alloc_bulk(pool_, out, n); }
  void free_bulk(void *const *in, int n) noexcept { cp_qmempool_free_bulk(pool_, in, n); }

  std::size_t object_size() const noexcept { return obj_size_; }
  cp_qmempool *native() const noexcept { return pool_; }

 private:
  cp_qmempool *pool_ = nullptr;
  std::size_t obj_size_;
};

// Blocks of at most the pool's object size and alignment come from the pool; everything
// else from `upstream`. `alignment` is what the pool's objects are guaranteed to have (the
// default backing allocator gives alignof(std::max_align_t), and 64 when obj_size >= 64).
// Thread-safe like the pool itself.
class qmempool_resource : public std::pmr::memory_resource {
 public:
  explicit qmempool_resource(qmempool &pool, std::size_t alignment = alignof(std::max_align_t),
                             std::pmr::memory_resource *upstream = std::pmr::new_delete_resource())
      : pool_(pool), align_(alignment), upstream_(upstream) {}

 private:
  bool fits(std::size_t bytes, std::size_t align) const noexcept {
    return bytes <= pool_.object_size() && align <= align_;
  }
  void *do_allocate(std::size_t bytes, std::size_t align) override {
    if (!fits(bytes, align)) return upstream_->allocate(bytes, align);
    void *p = pool_.alloc();
    if (!p) throw std::bad_alloc();
    return p;
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

  qmempool &pool_;
  std::size_t align_;
  std::pmr::memory_resource *upstream_;
};

}  // namespace corepool
