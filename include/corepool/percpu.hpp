// corepool/percpu.hpp - C++ view of corepool/percpu.h: an owning per-CPU variable.
//
//   corepool::percpu<stats> s;                 // one zeroed `stats` per possible CPU
//   s.add(&stats::hits, 1);                    // exact add to a uint64_t field (rseq)
//   uint64_t hits = s.sum(&stats::hits);
//   s.for_each_cpu([](unsigned cpu, stats &x) { ... });
//
//   corepool::percpu_counter c;                // the ready exact counter
//   c.add(1);                                  // one restartable sequence, no atomic RMW
//   uint64_t n = c.sum();
//
// local() returns the copy of the CPU the thread ran on during the call: the thread may
// migrate right after, and other threads share that CPU. Outside a restartable sequence a
// caller may read it or update it with atomic operations; a plain read-modify-write may lose
// updates (see corepool/percpu.h). percpu_counter::add is the exact, lock-free increment.
#pragma once

#include <corepool/percpu.h>
#include <corepool/error.hpp>

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

/// One T per possible CPU, zero-initialised (T must be trivially default-constructible and
/// destructible: every copy starts as zero bytes and is released without destructors).
/// Movable, not copyable (docs/cpp.md); a moved-from or released percpu is empty (false)
/// and may only be destroyed, assigned to, or tested.
template <class T>
class percpu {
  static_assert(std::is_trivially_default_constructible_v<T> && std::is_trivially_destructible_v<T>,
                "per-CPU copies start as zero bytes and are never destroyed one by one");
  static_assert(sizeof(T) <= 32768, "per-CPU allocations are at most 32 KiB");

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

  /// The calling CPU's copy (a snapshot; see the header comment).
  T *local() noexcept { return static_cast<T *>(cp_this_cpu_ptr(p_)); }
  /// CPU `cpu`'s copy (cpu < nr_cpu_ids()); writable, so it marks that CPU as a user.
  T *on(unsigned cpu) noexcept { return static_cast<T *>(cp_per_cpu_ptr(p_, cpu)); }
  /// Calls f(cpu, T&) for every possible CPU (writable access: each CPU becomes a user).
  template <class F>
  void for_each_cpu(F &&f) {
    for (unsigned c = 0; c < cp_nr_cpu_ids(); c++)
      if (cp_cpu_possible(c)) f(c, *on(c));
  }
  /// Calls f(cpu, const T&) for every possible CPU without making unused copies resident.
  template <class F>
  void for_each_cpu_read(F &&f) const {
    for (unsigned c = 0; c < cp_nr_cpu_ids(); c++)
      if (cp_cpu_possible(c)) f(c, *static_cast<const T *>(cp_per_cpu_cptr(p_, c)));
  }
  /// Sum of proj(copy) over all CPUs (a snapshot while others update).
  template <class Proj>
  auto sum(Proj proj) const {
    decltype(proj(std::declval<const T &>())) s{};
    for_each_cpu_read([&](unsigned, const T &x) { s += proj(x); });
    return s;
  }
  /// Adds v to the calling CPU's copy of the uint64_t field `f`: cp_this_cpu_add_u64 on
  /// that field (exact under preemption, migration and signals; never mix it with plain or
  /// atomic updates of the same field). Lock-free; async-signal-safe.
  template <class C>
  requires std::is_same_v<C, T>
  void add(uint64_t C::*f, uint64_t v = 1) noexcept {
    cp_this_cpu_add_u64(static_cast<char *>(p_) + offset_of(f), v);
  }
  /// Sum of the uint64_t field `f` over all CPUs (a snapshot while others add).
  template <class C>
  requires std::is_same_v<C, T> uint64_t sum(uint64_t C::*f)
  const noexcept { return cp_percpu_sum_u64(static_cast<char *>(p_) + offset_of(f)); }
  /// Sum of all copies (T must support +=).
  T sum() const {
    T s{};
    for_each_cpu_read([&](unsigned, const T &x) { s += x; });
    return s;
  }
  /// False when empty (moved from, released, or adopted from nullptr).
  explicit operator bool() const noexcept { return p_ != nullptr; }
  /// The raw handle (for cp_* calls); the object keeps ownership.
  void *handle() const noexcept { return p_; }
  /// Gives up ownership: the caller frees with cp_free_percpu.
  void *release() noexcept { return std::exchange(p_, nullptr); }

 private:
  // The field's offset, measured on CPU 0's copy (the handle is opaque, but handle + offset
  // addresses that offset in every copy; see corepool/percpu.h).
  template <class C>
  std::size_t offset_of(uint64_t C::*f) const noexcept {
    const T *base = static_cast<const T *>(cp_per_cpu_cptr(p_, 0));
    return static_cast<std::size_t>(reinterpret_cast<const char *>(&(base->*f)) -
                                    reinterpret_cast<const char *>(base));
  }

  void *p_;
};

/// The ready exact per-CPU counter: add() is one restartable sequence on the current CPU's
/// u64 (lock-free, async-signal-safe, exact under preemption, migration and signals).
class percpu_counter {
 public:
  void add(uint64_t v = 1) noexcept { cp_this_cpu_add_u64(c_.handle(), v); }
  void inc() noexcept { add(1); }
  uint64_t sum() const noexcept { return cp_percpu_sum_u64(c_.handle()); }

 private:
  percpu<uint64_t> c_;
};

}  // namespace corepool
