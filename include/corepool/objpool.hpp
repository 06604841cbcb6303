// corepool/objpool.hpp - C++ view of corepool/objpool.h.
//
//   corepool::objpool<T>            RAII, typed pool; each T constructed in place at creation
//                                   by an init functor, destroyed when the pool is released.
//   corepool::objpool_resource      std::pmr::memory_resource serving blocks of the pool's
//                                   object size from a cp_objpool (std::bad_alloc otherwise).
#pragma once

#include <corepool/objpool.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <memory_resource>
#include <new>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace corepool {

/// A fixed pool of `T`s. Every T is constructed once, in place, when the pool is created
/// (`init()` returns the T: guaranteed copy elision builds it directly in the pool's
/// memory), and destroyed once, when the pool is finally released. Between the two the
/// pool never touches them: pop() hands out a T in whatever state its last holder left it.
///
/// Lifetime: ~objpool() is cp_objpool_fini: objects still held keep the pool alive; a
/// handle (or put()) given back after that drops the object instead of pushing it, and the
/// last one releases the pool (destroying every T). Do not destroy the objpool while other
/// threads may still put() or pop() (the C API's rule: no push concurrent with fini).
template <class T>
class objpool {
  static_assert(alignof(T) <= 4096, "objpool: alignment above a page is not supported");
  static_assert(sizeof(T) <= CP_OBJPOOL_OBJECT_SIZE_MAX, "objpool: object too large");

  // The C pool's context: lives until the pool is released (on_release deletes it).
  struct state {
    cp_objpool *pool = nullptr;
    std::atomic<bool> closed{false};  // set by ~objpool: handles drop instead of push
    void *building = nullptr;         // the build_ctx while cp_objpool_init runs
  };

 public:
  /// Deleter of the handles pop() returns: pushes the object back (drops it after the
  /// objpool itself was destroyed).
  class returner {
   public:
    returner() noexcept = default;
    explicit returner(state *s) noexcept : st_(s) {}
    void operator()(T *p) const noexcept {
      if (st_->closed.load(std::memory_order_acquire))
        cp_objpool_drop(p, st_->pool);
      else
        cp_objpool_push(p, st_->pool);
    }

   private:
    state *st_ = nullptr;
  };
  using handle = std::unique_ptr<T, returner>;

  /// Creates `n` objects, each `T(init())`. Throws std::invalid_argument for n out of
  /// [1, 2^24], std::bad_alloc when memory runs out, and rethrows what init() or T's
  /// constructor throws (objects already built are destroyed first).
  template <class Init>
  requires std::is_invocable_r_v<T, Init &> objpool(int n, Init init) : st_(new state) {
    build_ctx<Init> ctx{&init, {}, nullptr};
    st_->building = &ctx;
    int rc = cp_objpool_init(&st_->pool, n, object_size(), st_, &build_one<Init>, &on_release);
    st_->building = nullptr;
    if (rc != 0) {  // init freed everything without calling on_release
      for (T *t : ctx.built) t->~T();
      delete st_;
      if (ctx.error) std::rethrow_exception(ctx.error);
      if (rc == -ENOMEM) throw std::bad_alloc();
      throw std::invalid_argument("corepool::objpool: nr_objs out of range");
    }
  }
  /// Creates `n` value-initialised Ts.
  explicit objpool(int n) : objpool(n, [] { return T(); }) {}

  objpool(const objpool &) = delete;
  objpool &operator=(const objpool &) = delete;
  ~objpool() {
    st_->closed.store(true, std::memory_order_release);
    cp_objpool_fini(st_->pool);  // may release the pool (and delete st_) right here
  }

  /// A free object, or nullptr. Lock-free; async-signal-safe.
  T *try_pop() noexcept { return static_cast<T *>(cp_objpool_pop(st_->pool)); }
  /// Gives back an object from try_pop(). Lock-free; async-signal-safe.
  void put(T *p) noexcept { returner{st_}(p); }
  /// A free object owned by a handle that gives it back when it goes, or an empty handle.
  handle pop() noexcept { return handle(try_pop(), returner(st_)); }

  unsigned nr_free() const noexcept { return cp_objpool_nr_free(st_->pool); }
  /// Free objects in CPU `cpu`'s ring, or a negative errno when that CPU has none.
  int nr_free_cpu(unsigned cpu) const noexcept { return cp_objpool_nr_free_cpu(st_->pool, cpu); }
  int size() const noexcept { return cp_objpool_nr_objs(st_->pool); }
  cp_objpool *native() const noexcept { return st_->pool; }

 private:
  static constexpr int object_size() noexcept {
    return static_cast<int>((sizeof(T) + alignof(T) - 1) / alignof(T) * alignof(T));
  }

  template <class Init>
  struct build_ctx {
    Init *init;
    std::vector<T *> built;  // to destroy on a failed init
    std::exception_ptr error;
  };

  template <class Init>
  static int build_one(void *mem, void *arg) noexcept {
    auto *ctx = static_cast<build_ctx<Init> *>(static_cast<state *>(arg)->building);
    try {
      ctx->built.reserve(ctx->built.size() + 1);
      T *t = ::new (mem) T(std::invoke(*ctx->init));
      ctx->built.push_back(t);
      return 0;
    } catch (...) {
      ctx->error = std::current_exception();
      return -ECANCELED;
    }
  }

  // Runs once, when the last reference goes (in ~objpool, or in the last handle's drop):
  // destroys every T and the state. Not async-signal-safe (destructors, delete).
  static int on_release(cp_objpool *pool, void *arg) noexcept {
    cp_objpool_for_each(
        pool, [](void *obj, void *) { static_cast<T *>(obj)->~T(); }, nullptr);
    delete static_cast<state *>(arg);
    return 0;
  }

  state *st_;
};

/// std::pmr::memory_resource over a cp_objpool of `nr_objs` blocks of `block_size` bytes.
/// allocate(bytes, align) serves a block when bytes <= block_size and align <= the blocks'
/// alignment, and throws std::bad_alloc otherwise or when all blocks are in use. The
/// resource owns the pool; every block must be deallocated before it is destroyed (the pmr
/// rule), and it frees all memory at once (cp_objpool_free).
class objpool_resource : public std::pmr::memory_resource {
 public:
  objpool_resource(int nr_objs, int block_size) {
    int rc = cp_objpool_init(&pool_, nr_objs, block_size, nullptr, nullptr, nullptr);
    if (rc == -ENOMEM) throw std::bad_alloc();
    if (rc != 0) throw std::invalid_argument("corepool::objpool_resource: bad size or count");
    int stride = cp_objpool_object_stride(pool_);
    align_ = static_cast<std::size_t>(stride & -stride);  // largest power of two dividing it
    if (align_ > 4096) align_ = 4096;
  }
  objpool_resource(const objpool_resource &) = delete;
  objpool_resource &operator=(const objpool_resource &) = delete;
  ~objpool_resource() override { cp_objpool_free(pool_); }

  std::size_t block_size() const noexcept {
    return static_cast<std::size_t>(cp_objpool_object_size(pool_));
  }
  std::size_t block_alignment() const noexcept { return align_; }
  unsigned nr_free() const noexcept { return cp_objpool_nr_free(pool_); }
  cp_objpool *native() const noexcept { return pool_; }

 private:
  void *do_allocate(std::size_t bytes, std::size_t align) override {
    if (bytes > block_size() || align > align_) throw std::bad_alloc();
    void *p = cp_objpool_pop(pool_);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void do_deallocate(void *p, std::size_t, std::size_t) override {
    int rc = cp_objpool_push(p, pool_);
    (void)rc;  // -EINVAL only for a pointer this resource never gave out: caller's bug
  }
  bool do_is_equal(const std::pmr::memory_resource &o) const noexcept override {
    return this == &o;
  }

  cp_objpool *pool_ = nullptr;
  std::size_t align_ = alignof(std::max_align_t);
};

}  // namespace corepool
