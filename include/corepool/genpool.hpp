// corepool/genpool.hpp - C++ view of corepool/genpool.h (conventions: docs/cpp.md).
//
//   corepool::gen_pool           RAII pool of address ranges; alloc()/free() raw,
//                                alloc_handle() RAII.
//   corepool::gen_pool_resource  std::pmr::memory_resource over a gen_pool whose chunks are
//                                real memory, with an upstream for what it cannot serve.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory_resource>
#include <new>
#include <system_error>
#include <utility>

#include <corepool/genpool.h>
#include <corepool/error.hpp>

namespace corepool {

/// Owns a cp_gen_pool handle. Movable, not copyable; a moved-from gen_pool is empty
/// (get() == nullptr) and may only be destroyed or assigned to.
///
/// Destruction: destroy() is the checked form (throws std::system_error EBUSY, pool
/// unchanged, while allocations are outstanding). The destructor tries the same; if
/// allocations are still outstanding it does not free metadata under their users: it
/// writes one line to stderr ("corepool::gen_pool: destroyed with N bytes allocated;
/// metadata leaked") and detaches, leaking the pool's metadata (never the chunks, which are
/// the caller's memory). A shared pool's destructor always just detaches this process.
class gen_pool {
 public:
  /// An allocation of `size` bytes at `addr`, freed when the handle goes.
  class allocation {
   public:
    allocation() noexcept = default;
    allocation(cp_gen_pool *p, uintptr_t a, std::size_t n) noexcept : p_(p), addr_(a), size_(n) {}
    allocation(allocation &&o) noexcept
        : p_(o.p_), addr_(std::exchange(o.addr_, 0)), size_(o.size_) {}
    allocation &operator=(allocation &&o) noexcept {
      if (this != &o) {
        reset();
        p_ = o.p_;
        addr_ = std::exchange(o.addr_, 0);
        size_ = o.size_;
      }
      return *this;
    }
    allocation(const allocation &) = delete;
    allocation &operator=(const allocation &) = delete;
    ~allocation() { reset(); }

    uintptr_t addr() const noexcept { return addr_; }
    std::size_t size() const noexcept { return size_; }
    explicit operator bool() const noexcept { return addr_ != 0; }
    /// Gives up ownership; the caller frees with gen_pool::free(addr, size).
    uintptr_t release() noexcept { return std::exchange(addr_, 0); }
    /// Frees now (cp_gen_pool_free cannot fail for a range it handed out).
    void reset() noexcept {
      if (addr_) (void)cp_gen_pool_free(p_, std::exchange(addr_, 0), size_);
    }

   private:
    cp_gen_pool *p_ = nullptr;
    uintptr_t addr_ = 0;
    std::size_t size_ = 0;
  };

  /// Private pool with granule 2^min_alloc_order. Throws std::system_error (EINVAL: bad
  /// order; ENOMEM). May block.
  explicit gen_pool(int min_alloc_order, int nid = -1) {
    cp_clear_error();
    p_ = cp_gen_pool_create(min_alloc_order, nid);
    if (!p_) throw_error(errno, "corepool::gen_pool");
  }
  /// Adopts a handle (e.g. from cp_gen_pool_create_shared or cp_gen_pool_attach_shared).
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

  /// Adds the chunk [addr, addr+size). Throws std::system_error (EINVAL: under a granule,
  /// wraps, overlaps a chunk; ENOMEM). May block; not async-signal-safe.
  void add(uintptr_t addr, size_t size, uint64_t phys = UINT64_MAX, void *owner = nullptr,
           int nid = -1) {
    cp_clear_error();
    check(cp_gen_pool_add_owner(p_, addr, phys, size, nid, owner), "corepool::gen_pool::add");
  }
  /// `size` bytes with the pool's algorithm, or 0 when nothing fits. Lock-free;
  /// async-signal-safe.
  uintptr_t alloc(size_t size) noexcept { return cp_gen_pool_alloc(p_, size); }
  /// `size` bytes at a multiple of `align` (a power of two), or 0. Lock-free.
  uintptr_t alloc_aligned(size_t size, size_t align) noexcept {
    cp_genpool_data_align d{align};
    return cp_gen_pool_alloc_algo(p_, size, CP_GENPOOL_FIRST_FIT_ALIGN, &d);
  }
  uintptr_t alloc_algo(size_t size, cp_genpool_algo algo, const void *data = nullptr) noexcept {
    return cp_gen_pool_alloc_algo(p_, size, algo, data);
  }
  /// alloc() owned by a handle that frees it (empty when nothing fits). Lock-free.
  allocation alloc_handle(size_t size) noexcept { return {p_, alloc(size), size}; }
  /// Frees [addr, addr+size). Throws std::system_error (EINVAL: not an allocation of this
  /// pool of that size, or a double free); the pool is then unchanged.
  void free(uintptr_t addr, size_t size) {
    if (int rc = try_free(addr, size); rc != 0) throw_error(rc, "corepool::gen_pool::free");
  }
  /// free() for signal handlers: 0 or -EINVAL. Lock-free; async-signal-safe.
  [[nodiscard]] int try_free(uintptr_t addr, size_t size) noexcept {
    return cp_gen_pool_free(p_, addr, size);
  }
  size_t avail() const noexcept { return cp_gen_pool_avail(p_); }
  size_t size() const noexcept { return cp_gen_pool_size(p_); }
  /// cp_gen_pool_stats: sizes, allocations, the longest free run and this handle's failure
  /// and growth counts (a snapshot). Lock-free; async-signal-safe.
  struct cp_gen_pool_stats stats() const noexcept {
    struct cp_gen_pool_stats s {};
    (void)cp_gen_pool_stats(p_, &s);  // fails only for a NULL pool or s
    return s;
  }
  bool has_addr(uintptr_t a, size_t n) const noexcept { return cp_gen_pool_has_addr(p_, a, n); }
  uint64_t virt_to_phys(uintptr_t a) const noexcept { return cp_gen_pool_virt_to_phys(p_, a); }
  /// Throws std::system_error (EINVAL: NULL or bad alignment data); the old algorithm stays.
  void set_algo(cp_genpool_algo algo, const void *data = nullptr) {
    cp_clear_error();
    cp_gen_pool_set_algo(p_, algo, data);
    const char *why = cp_last_error();
    if (why && *why) throw_error(EINVAL, "corepool::gen_pool::set_algo");
  }
  /// Spread mode (see cp_gen_pool_set_spread): each CPU's first-fit search starts at its home.
  void set_spread(bool on) noexcept { (void)cp_gen_pool_set_spread(p_, on); }
  /// Destroys the pool now: throws std::system_error (EBUSY) with the pool unchanged and
  /// usable while allocations are outstanding; afterwards this object is empty.
  void destroy() {
    if (!p_) return;
    cp_clear_error();
    check(cp_gen_pool_destroy(p_), "corepool::gen_pool::destroy");
    p_ = nullptr;
  }
  cp_gen_pool *get() const noexcept { return p_; }

 private:
  void reset() noexcept {
    if (!p_) return;
    if (cp_gen_pool_destroy(p_) != 0) {
      std::fprintf(stderr,
                   "corepool::gen_pool: destroyed with %zu bytes allocated; metadata leaked\n",
                   cp_gen_pool_size(p_) - cp_gen_pool_avail(p_));
      cp_gen_pool_detach(p_);
    }
    p_ = nullptr;
  }
  cp_gen_pool *p_ = nullptr;
};

/// std::pmr::memory_resource over a gen_pool whose chunks are real memory; it owns the
/// gen_pool (moved in; reach it with pool()). allocate(bytes, align) takes the lowest
/// fitting range aligned to `align` (FIRST_FIT_ALIGN); when nothing fits, the request goes
/// to `upstream` (default std::pmr::get_default_resource(); std::pmr::null_memory_resource()
/// makes it throw std::bad_alloc). deallocate recognises the pool's own ranges
/// (cp_gen_pool_has_addr) and frees them, throwing std::system_error (EINVAL) when the
/// C free refuses (not an allocation of that size, double free); every other pointer goes
/// upstream. is_equal: only the same object. Pool allocations are lock-free; upstream ones
/// as thread-safe as upstream. Not copyable or movable (containers hold its address). The
/// pmr rule applies: deallocate everything before destroying it (else ~gen_pool's rule).
class gen_pool_resource : public std::pmr::memory_resource {
 public:
  explicit gen_pool_resource(gen_pool pool,
                             std::pmr::memory_resource *upstream = std::pmr::get_default_resource())
      : pool_(std::move(pool)), upstream_(upstream) {}
  gen_pool_resource(const gen_pool_resource &) = delete;
  gen_pool_resource &operator=(const gen_pool_resource &) = delete;

  gen_pool &pool() noexcept { return pool_; }
  std::pmr::memory_resource *upstream_resource() const noexcept { return upstream_; }

 private:
  void *do_allocate(size_t bytes, size_t align) override {
    if (uintptr_t a = pool_.alloc_aligned(bytes ? bytes : 1, align ? align : 1))
      return reinterpret_cast<void *>(a);
    return upstream_->allocate(bytes, align);
  }
  void do_deallocate(void *p, size_t bytes, size_t align) override {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    if (!pool_.has_addr(a, 1)) return upstream_->deallocate(p, bytes, align);
    pool_.free(a, bytes ? bytes : 1);
  }
  bool do_is_equal(const std::pmr::memory_resource &o) const noexcept override {
    return this == &o;
  }

  gen_pool pool_;
  std::pmr::memory_resource *upstream_;
};

}  // namespace corepool
