// corepool/objpool.hpp - C++ view of corepool/objpool.h (conventions: docs/cpp.md).
//
//   corepool::objpool<T>            RAII, typed pool; each T constructed in place at creation
//                                   by an init functor, destroyed when the pool is released.
//   corepool::objpool_resource      std::pmr::memory_resource serving blocks of one size from
//                                   a cp_objpool, everything else from an upstream resource.
#pragma once

#include <corepool/objpool.h>
#include <corepool/error.hpp>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <memory_resource>
#include <type_traits>
#include <utility>

namespace corepool {

/// A fixed pool of `T`s. Every T is constructed once, in place, when the pool is created
/// (`init()` returns the T: guaranteed copy elision builds it directly in the pool's
/// memory), and destroyed once, when the pool is finally released. Between the two the
/// pool never touches them: pop() hands out a T in whatever state its last holder left it.
///
/// Construction is one pass over the objects in address order after the C pool exists
/// (time linear in n, no memory besides the pool's). A throw from init() or from T's
/// constructor destroys exactly the Ts already built, releases the pool and rethrows.
///
/// Lifetime: ~objpool() is cp_objpool_fini: objects still held keep the pool alive; a
/// handle (or put()) given back after that drops the object instead of pushing it, and the
/// last one releases the pool (destroying every T). Do not destroy the objpool while other
/// threads may still put() or pop() (the C API's rule: no push concurrent with fini).
/// Movable (handles stay valid: they point at the pool, not at the objpool object), not
/// copyable; a moved-from objpool may only be destroyed or assigned to.
template <class T>
class objpool {
  static_assert(alignof(T) <= 4096, "objpool: alignment above a page is not supported");
  static_assert(sizeof(T) <= CP_OBJPOOL_OBJECT_SIZE_MAX, "objpool: object too large");

  // The C pool's context: lives until the pool is released (on_release deletes it).
  struct state {
    cp_objpool *pool = nullptr;
    std::atomic<bool> closed{false};  // set by ~objpool: handles drop instead of push
    std::size_t built = 0;            // Ts constructed, a prefix in address order
  };

 public:
  /// Deleter of the handles pop() returns: pushes the object back (drops it after the
  /// objpool itself was destroyed). A handle's object came from this pool, so this cannot
  /// fail.
  class returner {
   public:
    returner() noexcept = default;
    explicit returner(state *s) noexcept : st_(s) {}
    void operator()(T *p) const noexcept { (void)give(st_, p); }

   private:
    friend class objpool;
    // closed (acquire) pairs with the release store in ~objpool: after it, push is not
    // allowed (fini has run), so the object is dropped.
    static int give(state *s, T *p) noexcept {
      if (s->closed.load(std::memory_order_acquire)) {
        int rc = cp_objpool_drop(p, s->pool);
        return rc == -EAGAIN ? 0 : rc;  // -EAGAIN: references remain, not an error
      }
      return cp_objpool_push(p, s->pool);
    }
    state *st_ = nullptr;
  };
  using handle = std::unique_ptr<T, returner>;

  /// Creates `n` objects, each `T(init())`, with the options of cp_objpool_init_attr (ring
  /// and cache bounds, flags). Throws std::system_error (EINVAL: n out of [1, 2^24] or a
  /// bad attr; ENOMEM) from cp_objpool_init_attr, std::bad_alloc when the bookkeeping
  /// cannot be allocated, and rethrows what init() or T's constructor throws after
  /// destroying the objects already built. May block; not async-signal-safe.
  template <class Init>
  requires std::is_invocable_r_v<T, Init &> objpool(int n, Init init,
                                                    const cp_objpool_attr &attr = {})
      : st_(new state) {
    cp_clear_error();
    int rc = cp_objpool_init_attr(&st_->pool, n, object_size(), st_, nullptr, &on_release, &attr);
    if (rc != 0) {  // nothing built, nothing to release
      delete st_;
      throw_error(rc, "corepool::objpool");
    }
    build_ctx<Init> ctx{&init, st_, nullptr};
    cp_objpool_for_each(st_->pool, &build_one<Init>, &ctx);
    if (ctx.error) {
      cp_objpool_free(st_->pool);  // on_release destroys the built prefix, deletes st_
      st_ = nullptr;
      std::rethrow_exception(ctx.error);
    }
  }
  /// Creates `n` value-initialised Ts.
  explicit objpool(int n, const cp_objpool_attr &attr = {})
      : objpool(
            n, [] { return T(); }, attr) {}

  objpool(objpool &&o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  objpool &operator=(objpool &&o) noexcept {
    if (this != &o) {
      close();
      st_ = std::exchange(o.st_, nullptr);
    }
    return *this;
  }
  objpool(const objpool &) = delete;
  objpool &operator=(const objpool &) = delete;
  ~objpool() { close(); }

  /// A free object, or nullptr. Lock-free; async-signal-safe.
  T *try_pop() noexcept { return static_cast<T *>(cp_objpool_pop(st_->pool)); }
  /// A free object owned by a handle that gives it back when it goes, or an empty handle.
  /// Lock-free; async-signal-safe (so is the handle's reset, before ~objpool).
  handle pop() noexcept { return handle(try_pop(), returner(st_)); }
  /// Gives back an object from try_pop() (or a released handle). Throws std::system_error
  /// (EINVAL) when `p` is not an object of this pool; the pool is then unchanged.
  void put(T *p) {
    if (int rc = try_put(p); rc != 0) throw_error(rc, "corepool::objpool::put");
  }
  /// put() for signal handlers: 0, or -EINVAL when `p` is not an object of this pool.
  /// Lock-free; async-signal-safe.
  [[nodiscard]] int try_put(T *p) noexcept { return returner::give(st_, p); }

  /// Free objects now (a snapshot). Lock-free; async-signal-safe.
  unsigned nr_free() const noexcept { return cp_objpool_nr_free(st_->pool); }
  /// Free objects in CPU `cpu`'s ring and cache. Throws std::system_error (EINVAL) when
  /// `cpu` is not a possible CPU.
  unsigned nr_free_cpu(unsigned cpu) const {
    return static_cast<unsigned>(
        check(cp_objpool_nr_free_cpu(st_->pool, cpu), "corepool::objpool::nr_free_cpu"));
  }
  int size() const noexcept { return cp_objpool_nr_objs(st_->pool); }
  /// cp_objpool_stats: free objects per tier and the slow-path counters (a snapshot, exact
  /// when nothing runs concurrently). Lock-free; async-signal-safe.
  struct cp_objpool_stats stats() const noexcept {
    struct cp_objpool_stats s {};
    (void)cp_objpool_stats(st_->pool, &s);  // fails only for a NULL pool or s
    return s;
  }
  cp_objpool *native() const noexcept { return st_->pool; }

 private:
  static constexpr int object_size() noexcept {
    return static_cast<int>((sizeof(T) + alignof(T) - 1) / alignof(T) * alignof(T));
  }

  template <class Init>
  struct build_ctx {
    Init *init;
    state *st;
    std::exception_ptr error;  // the first throw; later objects are left unbuilt
  };

  // cp_objpool_for_each visits every object once, in address order, so the Ts built are
  // always the first st->built objects.
  template <class Init>
  static void build_one(void *mem, void *arg) noexcept {
    auto *ctx = static_cast<build_ctx<Init> *>(arg);
    if (ctx->error) return;
    try {
      ::new (mem) T(std::invoke(*ctx->init));
      ctx->st->built++;
    } catch (...) {
      ctx->error = std::current_exception();
    }
  }

  // Runs once, when the last reference goes (in ~objpool, in the last handle's drop, or in
  // a failed construction): destroys the Ts built and the state. Not async-signal-safe
  // (destructors, delete).
  static int on_release(cp_objpool *pool, void *arg) noexcept {
    auto *st = static_cast<state *>(arg);
    struct left {
      std::size_t n;
    } todo{st->built};
    cp_objpool_for_each(
        pool,
        [](void *obj, void *a) {
          auto *l = static_cast<left *>(a);
          if (l->n == 0) return;
          l->n--;
          static_cast<T *>(obj)->~T();
        },
        &todo);
    delete st;
    return 0;
  }

  void close() noexcept {
    if (!st_) return;
    // Pairs with the acquire load in returner::give.
    st_->closed.store(true, std::memory_order_release);
    cp_objpool_fini(std::exchange(st_, nullptr)->pool);  // may release (delete the state)
  }

  state *st_;
};

/// std::pmr::memory_resource over a cp_objpool of `nr_objs` blocks of `block_size` bytes,
/// which it owns. allocate(bytes, align) takes a block when bytes <= block_size() and
/// align <= block_alignment() and one is free; every other request (too large, more
/// aligned, or the pool empty) goes to `upstream` (default std::pmr::get_default_resource();
/// std::pmr::null_memory_resource() makes those requests throw std::bad_alloc).
/// deallocate recognises the pool's own blocks (cp_objpool_push's range check) and hands
/// every other pointer to upstream. is_equal: only the same object (no two resources share
/// a pool). Allocation and deallocation of blocks are lock-free; upstream requests are as
/// thread-safe as upstream. Not copyable or movable (containers hold its address). The pmr
/// rule applies: deallocate everything before destroying it; the destructor frees the pool.
class objpool_resource : public std::pmr::memory_resource {
 public:
  /// Throws std::system_error (EINVAL: count, size or attr out of range; ENOMEM).
  objpool_resource(int nr_objs, int block_size, const cp_objpool_attr &attr,
                   std::pmr::memory_resource *upstream = std::pmr::get_default_resource())
      : upstream_(upstream) {
    cp_clear_error();
    int rc = cp_objpool_init_attr(&pool_, nr_objs, block_size, nullptr, nullptr, nullptr, &attr);
    if (rc != 0) throw_error(rc, "corepool::objpool_resource");
    int stride = cp_objpool_object_stride(pool_);
    align_ = static_cast<std::size_t>(stride & -stride);  // largest power of two dividing it
    if (align_ > 4096) align_ = 4096;
  }
  objpool_resource(int nr_objs, int block_size,
                   std::pmr::memory_resource *upstream = std::pmr::get_default_resource())
      : objpool_resource(nr_objs, block_size, cp_objpool_attr{}, upstream) {}
  objpool_resource(const objpool_resource &) = delete;
  objpool_resource &operator=(const objpool_resource &) = delete;
  ~objpool_resource() override { cp_objpool_free(pool_); }

  std::size_t block_size() const noexcept {
    return static_cast<std::size_t>(cp_objpool_object_size(pool_));
  }
  std::size_t block_alignment() const noexcept { return align_; }
  unsigned nr_free() const noexcept { return cp_objpool_nr_free(pool_); }
  /// The pool's cp_objpool_stats (requests sent upstream are not counted there).
  struct cp_objpool_stats stats() const noexcept {
    struct cp_objpool_stats s {};
    (void)cp_objpool_stats(pool_, &s);
    return s;
  }
  std::pmr::memory_resource *upstream_resource() const noexcept { return upstream_; }
  cp_objpool *native() const noexcept { return pool_; }

 private:
  void *do_allocate(std::size_t bytes, std::size_t align) override {
    if (bytes <= block_size() && align <= align_)
      if (void *p = cp_objpool_pop(pool_)) return p;
    return upstream_->allocate(bytes, align);
  }
  void do_deallocate(void *p, std::size_t bytes, std::size_t align) override {
    // -EINVAL: not a block of this pool (the pool is unchanged), so upstream's.
    if (cp_objpool_push(p, pool_) == -EINVAL) upstream_->deallocate(p, bytes, align);
  }
  bool do_is_equal(const std::pmr::memory_resource &o) const noexcept override {
    return this == &o;
  }

  cp_objpool *pool_ = nullptr;
  std::size_t align_ = alignof(std::max_align_t);
  std::pmr::memory_resource *upstream_;
};

}  // namespace corepool
