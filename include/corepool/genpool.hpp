// corepool/genpool.hpp - C++ wrappers of gen_pool: an RAII pool and a std::pmr resource.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <system_error>
#include <utility>

#include "corepool/genpool.h"

namespace corepool {

// Owns a cp_gen_pool. The destructor destroys it; if allocations are still outstanding it
// only releases the handle and leaks the metadata (nothing is freed under a live user).
class gen_pool {
 public:
  // Private pool with granule 2^min_alloc_order. Throws std::system_error on failure.
  explicit gen_pool(int min_alloc_order, int nid = -1)
      : p_(cp_gen_pool_create(min_alloc_order, nid)) {
    if (!p_) throw std::system_error(errno, std::generic_category(), "cp_gen_pool_create");
  }
  // Adopts a handle (e.g. from cp_gen_pool_attach_shared).
  explicit gen_pool(cp_gen_pool *adopt) noexcept : p_(adopt) {}
  gen_pool(gen_pool &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  gen_pool &operator=(gen_pool &&o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  gen_pool(const gen_pool &) = delete;
  gen_pool &operator=(const gen_pool &) = delete;
  ~gen_pool() { reset(); }

  // Same contracts as the C functions.
  int add(uintptr_t addr, size_t size, uint64_t phys = UINT64_MAX, void *owner = nullptr,
          int nid = -1) noexcept {
    return cp_gen_pool_add_owner(p_, addr, phys, size, nid, owner);
  }
  uintptr_t alloc(size_t size) noexcept { return cp_gen_pool_alloc(p_, size); }
  uintptr_t alloc_aligned(size_t size, size_t align) noexcept {
    cp_genpool_data_align d{align};
    return cp_gen_pool_alloc_algo(p_, size, CP_GENPOOL_FIRST_FIT_ALIGN, &d);
  }
  uintptr_t alloc_algo(size_t size, cp_genpool_algo algo, const void *data = nullptr) noexcept {
    return cp_gen_pool_alloc_algo(p_, size, algo, data);
  }
  int free(uintptr_t addr, size_t size) noexcept { return cp_gen_pool_free(p_, addr, size); }
  size_t avail() const noexcept { return cp_gen_pool_avail(p_); }
  size_t size() const noexcept { return cp_gen_pool_size(p_); }
  bool has_addr(uintptr_t a, size_t n) const noexcept { return cp_gen_pool_has_addr(p_, a, n); }
  uint64_t virt_to_phys(uintptr_t a) const noexcept { return cp_gen_pool_virt_to_phys(p_, a); }
  void set_algo(cp_genpool_algo algo, const void *data = nullptr) noexcept {
    cp_gen_pool_set_algo(p_, algo, data);
  }
  // Spread mode (see cp_gen_pool_set_spread): each CPU's first-fit search starts at its home.
  void set_spread(bool on) noexcept { cp_gen_pool_set_spread(p_, on); }
  cp_gen_pool *get() const noexcept { return p_; }

 private:
  void reset() noexcept {
    if (p_ && cp_gen_pool_destroy(p_) != 0) cp_gen_pool_detach(p_);
    p_ = nullptr;
  }
  cp_gen_pool *p_;
};

// A std::pmr::memory_resource over a gen_pool whose chunks are real memory: allocate uses
// FIRST_FIT_ALIGN with the requested alignment and throws std::bad_alloc when nothing fits.
// Allocation and deallocation are lock-free (not the pmr containers around them).
class gen_pool_resource : public std::pmr::memory_resource {
 public:
  explicit gen_pool_resource(cp_gen_pool *pool) noexcept : pool_(pool) {}
  explicit gen_pool_resource(gen_pool &pool) noexcept : pool_(pool.get()) {}
  cp_gen_pool *pool() const noexcept { return pool_; }

 private:
  void *do_allocate(size_t bytes, size_t align) override {
    cp_genpool_data_align d{align ? align : 1};
    uintptr_t a = cp_gen_pool_alloc_algo(pool_, bytes ? bytes : 1, CP_GENPOOL_FIRST_FIT_ALIGN, &d);
    if (!a) throw std::bad_alloc();
    return reinterpret_cast<void *>(a);
  }
  void do_deallocate(void *p, size_t bytes, size_t) override {
    cp_gen_pool_free(pool_, reinterpret_cast<uintptr_t>(p), bytes ? bytes : 1);
  }
  bool do_is_equal(const std::pmr::memory_resource &o) const noexcept override {
    auto *r = dynamic_cast<const gen_pool_resource *>(&o);
    return r && r->pool_ == pool_;
  }
  cp_gen_pool *pool_;
};

}  // namespace corepool
