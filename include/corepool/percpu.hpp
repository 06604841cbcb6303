// corepool/percpu.hpp - C++ view of corepool/percpu.h: owning and static per-CPU variables
// with typed this_cpu operations on their fields.
//
//   struct stats { uint64_t hits; uint32_t drops; };
//   corepool::percpu<stats> s;                     // one zeroed `stats` per possible CPU
//   s.this_cpu_add(&stats::hits, 1);               // one restartable sequence, exact
//   uint64_t n = s.sum(&stats::hits);              // over all CPUs (a snapshot, see percpu.h)
//   s.add(&stats::hits);                           // the same, for a uint64_t field
//   s.for_each_cpu([](unsigned cpu, stats &x) { ... });
//
//   CP_DEFINE_PER_CPU_CXX(stats, g_stats);         // static: at file scope, set before main
//   g_stats.this_cpu_inc(&stats::drops);           // also from signal handlers
//
//   corepool::percpu_counter c;                    // the ready exact counter
//   c.add(1);
//
// The this_cpu_* members take a pointer to a member of T (or nothing, when T itself is an
// integer) whose type is an integer of 1, 2, 4 or 8 bytes (xchg / cmpxchg / read / write also
// a pointer), and forward to the cp_this_cpu_* function of that width: same contracts
// (lock-free, async-signal-safe, exact; see corepool/percpu.h). Fields updated with them must
// not also be written with plain stores or own atomics. local() returns the copy of the CPU
// the thread ran on during the call: a snapshot, for reading; see corepool/percpu.h.
#pragma once

#include <corepool/percpu.h>
#include <corepool/error.hpp>

#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace corepool {

/// Tag of percpu's adopting constructor.
struct adopt_t {
  explicit adopt_t() = default;
};
inline constexpr adopt_t adopt{};

namespace detail {
template <size_t N>
struct pcpu_word;
template <>
struct pcpu_word<1> {
  using type = uint8_t;
};
template <>
struct pcpu_word<2> {
  using type = uint16_t;
};
template <>
struct pcpu_word<4> {
  using type = uint32_t;
};
template <>
struct pcpu_word<8> {
  using type = uint64_t;
};
template <class F>
inline constexpr bool pcpu_int =
    std::is_integral_v<F> && !std::is_same_v<F, bool> &&
    (sizeof(F) == 1 || sizeof(F) == 2 || sizeof(F) == 4 || sizeof(F) == 8);
// The field type F of a pointer to a data member `F C::*` of class C (no type otherwise).
template <class M, class C>
struct pcpu_member {};
template <class F, class C>
struct pcpu_member<F C::*, C> {
  using type = F;
};
template <class M, class C>
using pcpu_member_t = typename pcpu_member<M, C>::type;
template <class F>
inline constexpr bool pcpu_value = pcpu_int<F> || (std::is_pointer_v<F> && sizeof(F) == 8);

// The width dispatch: one cp_this_cpu_* function per operation and width.
#define CP__PCPU_DISPATCH(expr_u8, expr_u16, expr_u32, expr_u64) \
  if constexpr (sizeof(F) == 1) {                                \
    expr_u8;                                                     \
  } else if constexpr (sizeof(F) == 2) {                         \
    expr_u16;                                                    \
  } else if constexpr (sizeof(F) == 4) {                         \
    expr_u32;                                                    \
  } else {                                                       \
    expr_u64;                                                    \
  }
template <class F>
using pcpu_w = typename pcpu_word<sizeof(F)>::type;
template <class F>
pcpu_w<F> to_w(F v) noexcept {
  if constexpr (std::is_pointer_v<F>)
    return reinterpret_cast<uintptr_t>(v);
  else
    return static_cast<pcpu_w<F>>(v);
}
template <class F>
F from_w(pcpu_w<F> v) noexcept {
  if constexpr (std::is_pointer_v<F>)
    return reinterpret_cast<F>(static_cast<uintptr_t>(v));
  else
    return static_cast<F>(v);
}
template <class F>
F pcpu_read(const F *p) noexcept {
  CP__PCPU_DISPATCH(
      return from_w<F>(cp_this_cpu_read_u8(p)), return from_w<F>(cp_this_cpu_read_u16(p)),
             return from_w<F>(cp_this_cpu_read_u32(p)), return from_w<F>(cp_this_cpu_read_u64(p)))
}
template <class F>
void pcpu_write(F *p, F v) noexcept {
  CP__PCPU_DISPATCH(cp_this_cpu_write_u8(p, to_w(v)), cp_this_cpu_write_u16(p, to_w(v)),
                    cp_this_cpu_write_u32(p, to_w(v)), cp_this_cpu_write_u64(p, to_w(v)))
}
template <class F>
void pcpu_add(F *p, F v) noexcept {
  CP__PCPU_DISPATCH(cp_this_cpu_add_u8(p, to_w(v)), cp_this_cpu_add_u16(p, to_w(v)),
                    cp_this_cpu_add_u32(p, to_w(v)), cp_this_cpu_add_u64(p, to_w(v)))
}
template <class F>
F pcpu_add_return(F *p, F v) noexcept {
  CP__PCPU_DISPATCH(return from_w<F>(cp_this_cpu_add_return_u8(p, to_w(v))),
                           return from_w<F>(cp_this_cpu_add_return_u16(p, to_w(v))),
                           return from_w<F>(cp_this_cpu_add_return_u32(p, to_w(v))),
                           return from_w<F>(cp_this_cpu_add_return_u64(p, to_w(v))))
}
template <class F>
F pcpu_xchg(F *p, F v) noexcept {
  CP__PCPU_DISPATCH(return from_w<F>(cp_this_cpu_xchg_u8(p, to_w(v))),
                           return from_w<F>(cp_this_cpu_xchg_u16(p, to_w(v))),
                           return from_w<F>(cp_this_cpu_xchg_u32(p, to_w(v))),
                           return from_w<F>(cp_this_cpu_xchg_u64(p, to_w(v))))
}
template <class F>
F pcpu_cmpxchg(F *p, F old, F v) noexcept {
  CP__PCPU_DISPATCH(return from_w<F>(cp_this_cpu_cmpxchg_u8(p, to_w(old), to_w(v))),
                           return from_w<F>(cp_this_cpu_cmpxchg_u16(p, to_w(old), to_w(v))),
                           return from_w<F>(cp_this_cpu_cmpxchg_u32(p, to_w(old), to_w(v))),
                           return from_w<F>(cp_this_cpu_cmpxchg_u64(p, to_w(old), to_w(v))))
}
template <class F>
F pcpu_sum(const F *p) noexcept {
  CP__PCPU_DISPATCH(return from_w<F>(cp_percpu_sum_u8(p)), return from_w<F>(cp_percpu_sum_u16(p)),
                           return from_w<F>(cp_percpu_sum_u32(p)),
                           return from_w<F>(cp_percpu_sum_u64(p)))
}
#undef CP__PCPU_DISPATCH

// Every access of percpu<T> and static_percpu<T>; D provides handle().
template <class T, class D>
class percpu_access {
  static_assert(std::is_trivially_default_constructible_v<T> && std::is_trivially_destructible_v<T>,
                "per-CPU copies start as zero bytes and are never destroyed one by one "
                "(use plain integer fields with the this_cpu_* members, not std::atomic)");
  static_assert(sizeof(T) <= 32768, "per-CPU allocations are at most 32 KiB");

  T *h() const noexcept { return static_cast<T *>(static_cast<const D *>(this)->handle()); }
  // The field's handle: handle + the member's offset (no copy is read).
  template <class M, class F = pcpu_member_t<M, T>>
  F *f(M m) const noexcept {
    return &(h()->*m);
  }
  template <class F>
  using same = std::type_identity_t<F>;
  static constexpr bool whole_int = pcpu_int<T>;

 public:
  /// The calling CPU's copy (a snapshot; for reading; see corepool/percpu.h).
  T *local() noexcept { return static_cast<T *>(cp_this_cpu_ptr(h())); }
  /// CPU `cpu`'s copy (cpu < nr_cpu_ids()); writable, so it marks that CPU as a user.
  T *on(unsigned cpu) noexcept { return static_cast<T *>(cp_per_cpu_ptr(h(), cpu)); }
  /// The fallback copy (threads without rseq; see cp_per_cpu_fallback_ptr).
  T *fallback() noexcept { return static_cast<T *>(cp_per_cpu_fallback_ptr(h())); }
  /// Calls f(cpu, T&) for every possible CPU (writable access: each CPU becomes a user).
  template <class Fn>
  void for_each_cpu(Fn &&fn) {
    for (unsigned c = 0; c < cp_nr_cpu_ids(); c++)
      if (cp_cpu_possible(c)) fn(c, *on(c));
  }
  /// Calls f(cpu, const T&) for every possible CPU and then for the fallback copy (as cpu
  /// cp_nr_cpu_ids()) without making unused copies resident.
  template <class Fn>
  void for_each_cpu_read(Fn &&fn) const {
    for (unsigned c = 0; c <= cp_nr_cpu_ids(); c++)
      if (c == cp_nr_cpu_ids() || cp_cpu_possible(c))
        fn(c, *static_cast<const T *>(cp_per_cpu_cptr(h(), c)));
  }
  /// Sum of proj(copy) over all copies (a snapshot while others update).
  template <class Proj>
  requires(std::is_invocable_v<Proj, const T &> &&
           !std::is_member_pointer_v<Proj>) auto sum(Proj proj) const {
    decltype(proj(std::declval<const T &>())) s{};
    for_each_cpu_read([&](unsigned, const T &x) { s += proj(x); });
    return s;
  }
  /// Sum of one integer field over all copies, modulo 2^width (cp_percpu_sum_*).
  template <class M, class F = pcpu_member_t<M, T>>
  F sum(M m) const noexcept {
    return pcpu_sum(f(m));
  }
  /// Sum of all copies (T must support +=; an integer T uses cp_percpu_sum_*).
  T sum() const {
    if constexpr (whole_int) {
      return pcpu_sum(h());
    } else {
      T s{};
      for_each_cpu_read([&](unsigned, const T &x) { s += x; });
      return s;
    }
  }

  // ---- typed this_cpu operations on a field (corepool/percpu.h) ----
  template <class M, class F = pcpu_member_t<M, T>>
  F this_cpu_read(M m) const noexcept {
    return pcpu_read(f(m));
  }
  template <class M, class F = pcpu_member_t<M, T>>
  void this_cpu_write(M m, same<F> v) noexcept {
    pcpu_write(f(m), v);
  }
  template <class M, class F = pcpu_member_t<M, T>>
  void this_cpu_add(M m, same<F> v) noexcept {
    static_assert(pcpu_int<F>, "add: an integer field of 1, 2, 4 or 8 bytes");
    pcpu_add(f(m), v);
  }
  template <class M, class F = pcpu_member_t<M, T>>
  void this_cpu_sub(M m, same<F> v) noexcept {
    this_cpu_add(m, static_cast<F>(0 - to_w(v)));
  }
  template <class M, class F = pcpu_member_t<M, T>>
  void this_cpu_inc(M m) noexcept {
    this_cpu_add(m, static_cast<F>(1));
  }
  template <class M, class F = pcpu_member_t<M, T>>
  void this_cpu_dec(M m) noexcept {
    this_cpu_add(m, static_cast<F>(~pcpu_w<F>{0}));
  }
  template <class M, class F = pcpu_member_t<M, T>>
  F this_cpu_add_return(M m, same<F> v) noexcept {
    static_assert(pcpu_int<F>, "add_return: an integer field of 1, 2, 4 or 8 bytes");
    return pcpu_add_return(f(m), v);
  }
  template <class M, class F = pcpu_member_t<M, T>>
  F this_cpu_xchg(M m, same<F> v) noexcept {
    static_assert(pcpu_value<F>, "xchg: an integer of 1, 2, 4 or 8 bytes, or a pointer");
    return pcpu_xchg(f(m), v);
  }
  /// Returns the value the copy had (== old: it stored new).
  template <class M, class F = pcpu_member_t<M, T>>
  F this_cpu_cmpxchg(M m, same<F> old, same<F> v) noexcept {
    static_assert(pcpu_value<F>, "cmpxchg: an integer of 1, 2, 4 or 8 bytes, or a pointer");
    return pcpu_cmpxchg(f(m), old, v);
  }
  /// The same as a bool; on failure `old` becomes the value the copy had.
  template <class M, class F = pcpu_member_t<M, T>>
  bool this_cpu_try_cmpxchg(M m, F &old, same<F> v) noexcept {
    F seen = this_cpu_cmpxchg(m, old, v);
    if (seen == old) return true;
    old = seen;
    return false;
  }

  // ---- the same on T itself, when T is an integer ----
  T this_cpu_read() const noexcept requires whole_int { return pcpu_read(h()); }
  void this_cpu_write(T v) noexcept requires whole_int { pcpu_write(h(), v); }
  void this_cpu_add(T v) noexcept requires whole_int { pcpu_add(h(), v); }
  void this_cpu_inc() noexcept requires whole_int { pcpu_add(h(), T(1)); }
  T this_cpu_add_return(T v) noexcept requires whole_int { return pcpu_add_return(h(), v); }
  T this_cpu_xchg(T v) noexcept requires whole_int { return pcpu_xchg(h(), v); }
  T this_cpu_cmpxchg(T old, T v) noexcept requires whole_int { return pcpu_cmpxchg(h(), old, v); }
};
}  // namespace detail

/// One T per possible CPU, zero-initialised (T must be trivially default-constructible and
/// destructible: every copy starts as zero bytes and is released without destructors).
/// Movable, not copyable (docs/cpp.md); a moved-from or released percpu is empty (false)
/// and may only be destroyed, assigned to, or tested.
template <class T>
class percpu : public detail::percpu_access<T, percpu<T>> {
 public:
  /// Allocates; throws std::bad_alloc when the per-CPU address space is exhausted (ENOMEM),
  /// std::system_error for any other failure. May block; not async-signal-safe.
  percpu() {
    cp_clear_error();
    p_ = cp_alloc_percpu(sizeof(T), alignof(T));
    if (!p_) {
      if (errno == ENOMEM) throw std::bad_alloc();
      throw_error(errno, "corepool::percpu");
    }
  }
  /// Takes ownership of a handle of sizeof(T) bytes aligned to alignof(T) from
  /// cp_alloc_percpu or cp_percpu_pool_alloc (nullptr: an empty percpu). Async-signal-safe.
  percpu(adopt_t, void *handle) noexcept : p_(handle) {}
  ~percpu() { cp_free_percpu(p_); }
  percpu(percpu &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  percpu &operator=(percpu &&o) noexcept {
    if (this != &o) {
      cp_free_percpu(p_);
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  percpu(const percpu &) = delete;
  percpu &operator=(const percpu &) = delete;

  /// Adds v to the calling CPU's copy of the uint64_t field `f`: this_cpu_add(f, v), that
  /// is cp_this_cpu_add_u64 on that field (exact under preemption, migration and signals;
  /// never mix it with plain or atomic updates of the same field). Lock-free;
  /// async-signal-safe.
  template <class C>
  requires std::is_same_v<C, T>
  void add(uint64_t C::*f, uint64_t v = 1) noexcept { this->this_cpu_add(f, v); }
  /// False when empty (moved from, released, or adopted from nullptr).
  explicit operator bool() const noexcept { return p_ != nullptr; }
  /// The raw handle (for cp_* calls); the object keeps ownership.
  void *handle() const noexcept { return p_; }
  /// Gives up ownership: the caller frees with cp_free_percpu.
  void *release() noexcept { return std::exchange(p_, nullptr); }

 private:
  void *p_;
};

/// A static per-CPU variable: define it with CP_DEFINE_PER_CPU_CXX(T, name) at namespace
/// scope (constant-initialised; its handle is set at load time, before main: see
/// CP_DEFINE_PER_CPU in corepool/percpu.h). Neither copyable nor movable: it names one
/// fixed set of copies that lives as long as the program (or the shared object).
template <class T>
class static_percpu : public detail::percpu_access<T, static_percpu<T>> {
 public:
  constexpr static_percpu() noexcept = default;
  static_percpu(const static_percpu &) = delete;
  static_percpu &operator=(const static_percpu &) = delete;
  /// The raw handle (NULL only before the load-time constructor ran).
  void *handle() const noexcept { return handle_; }

  T *handle_ = nullptr;  // written once at load time (public for the macro; do not write)
};

/// The ready exact per-CPU counter: add() is one restartable sequence on the current CPU's
/// u64 (lock-free, async-signal-safe, exact under preemption, migration and signals).
class percpu_counter {
 public:
  void add(uint64_t v = 1) noexcept { c_.this_cpu_add(v); }
  void inc() noexcept { add(1); }
  uint64_t sum() const noexcept { return c_.sum(); }

 private:
  percpu<uint64_t> c_;
};

}  // namespace corepool

/// Defines the static per-CPU variable `name`, a corepool::static_percpu<T>, at namespace
/// scope. Declare it elsewhere with `extern corepool::static_percpu<T> name;`.
#define CP_DEFINE_PER_CPU_CXX(T, name)         \
  constinit ::corepool::static_percpu<T> name; \
  CP__PER_CPU_REGISTER(T, &name.handle_, name)
