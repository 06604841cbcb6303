// striped_counter: a 64-bit counter split into per-CPU stripes, each on its own cache line,
// so that adds from different CPUs never touch one line. The value is the sum of the stripes
// (a stripe alone may be negative).
//
// Layout (caller's memory, may be a process-shared mapping; no pointers inside):
//   stripe_set   {nstripes, touched_plain, touched_atomic}   wherever the owner keeps it
//   lines        2 * nstripes cache lines: the plain set (lines 0 .. n-1), then the atomic
//                set (n .. 2n-1), one std::atomic<int64_t> at the start of each line
// Two kinds of add, never both on one stripe (a plain add racing with an atomic one could
// lose either):
//   plain   a restartable sequence on this CPU adds to plain stripe `cpu` with one plain add
//           (no lock prefix): the add is the commit, so a thread killed or preempted anywhere
//           has either added or not. Only for CPUs below nstripes.
//   atomic  fetch_add (relaxed) on atomic stripe `t & (n - 1)`, t a per-thread index: threads
//           without rseq, architectures without the sequences, CPUs at or past nstripes
//           (processes of a shared counter may disagree on the CPU count).
// Protocol
//   T1 (add) a stripe's touched bit is set (fetch_or, seq_cst) before the first add to it.
//   T2 (sum) the touched masks are loaded (acquire) before the stripes: a sum that starts
//      after an add completed sees its stripe's bit (T1) and so its add.
// Invariants
//   S1 the sum of all stripes is the initial value plus every completed add.
//   S2 a stripe outside the touched masks is zero (memory starts zeroed; T1).
// Concurrency: add with add and sum, from any thread, process or signal handler (lock-free,
// async-signal-safe; the slow path may register rseq for the thread on its first call).
// sum is exact when no add is in flight; while some are it may be off by their amounts.
// init with nothing.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "platform/rseq.h"

namespace corepool::ds {

struct stripe_set {
  uint64_t nstripes;  // stripes per set, a power of two, 1 .. 64
  std::atomic<uint64_t> touched_plain, touched_atomic;
};

namespace detail {
// Tests only (COREPOOL_INJECT builds): this thread takes the atomic kind, as a thread
// without rseq would, to mix both kinds in one counter.
#ifdef COREPOOL_INJECT
inline constexpr bool kStripeTestHooks = true;
#else
inline constexpr bool kStripeTestHooks = false;
#endif
// Plain TLS (no C++ TLS wrapper): read from signal handlers and inlined fast paths.
extern __thread bool t_stripe_force_atomic;
void striped_add_slow(stripe_set &s, std::atomic<int64_t> *lines, int64_t d) noexcept;
}  // namespace detail

// Stripe i of a counter whose lines start at `lines`.
inline std::atomic<int64_t> *stripe(std::atomic<int64_t> *lines, uint64_t i) noexcept {
  return reinterpret_cast<std::atomic<int64_t> *>(reinterpret_cast<char *>(lines) + 64 * i);
}
// Bytes of the lines of a counter of n stripes per set.
inline constexpr uint64_t striped_bytes(uint64_t n) noexcept {
  return 128 * n;
}
// Stripes per set for this machine: a power of two >= the CPU count, at most 64.
uint64_t striped_stripes_for_machine() noexcept;
// Formats zeroed `lines` with `nstripes` (a power of two, 1 .. 64) and value `initial`.
void striped_init(stripe_set &s, std::atomic<int64_t> *lines, uint64_t nstripes,
                  int64_t initial) noexcept;

// Adds d: one restartable sequence on this CPU's plain stripe, else the slow path (see the
// kinds above). Lock-free, async-signal-safe. `static inline`, as must be every inline
// function it is inlined into (platform/rseq.h, Linkage).
static inline void striped_add(stripe_set &s, std::atomic<int64_t> *lines, int64_t d) noexcept {
  if constexpr (platform::rseq_arch_supported()) {
    platform::rseq_abi *rs = platform::rseq_registered_area_if_known();
    if (__builtin_expect(
            rs != nullptr && !(detail::kStripeTestHooks && detail::t_stripe_force_atomic), 1)) {
      unsigned cpu = std::atomic_ref<uint32_t>(rs->cpu_id).load(std::memory_order_relaxed);
      if (__builtin_expect(cpu < s.nstripes, 1) &&
          __builtin_expect((s.touched_plain.load(std::memory_order_relaxed) >> cpu) & 1, 1) &&
          platform::rseq_addv(reinterpret_cast<intptr_t *>(stripe(lines, cpu)), d,
                              static_cast<int>(cpu), rs) == platform::CP_RSEQ_OK)
        return;
    }
  }
  detail::striped_add_slow(s, lines, d);
}

// The sum of the touched stripes (T2). Lock-free, async-signal-safe.
inline int64_t striped_sum(const stripe_set &s, std::atomic<int64_t> *lines) noexcept {
  int64_t a = 0;
  for (uint64_t m = s.touched_plain.load(std::memory_order_acquire); m; m &= m - 1)
    a += stripe(lines, static_cast<uint64_t>(__builtin_ctzll(m)))->load(std::memory_order_acquire);
  for (uint64_t m = s.touched_atomic.load(std::memory_order_acquire); m; m &= m - 1)
    a += stripe(lines, s.nstripes + static_cast<uint64_t>(__builtin_ctzll(m)))
             ->load(std::memory_order_acquire);
  return a;
}

// A bank of kBankCounters independent counters on one set of lines (caller's memory,
// striped_bytes(nstripes), zeroed; format with striped_bank_init): counter k is the k-th
// int64 of each line, i.e. a striped counter whose lines start at `lines + k` (the 64-byte
// step between stripes is the same). The touched masks are shared: a stripe's bit is set
// before the first add to any of its counters (T1), so every counter keeps S1 and S2. The
// pools keep their slow-path statistics in one: one restartable add on this CPU's line per
// event, nothing on the fast paths.
inline constexpr unsigned kBankCounters = 8;
struct striped_bank {
  stripe_set set;
  std::atomic<int64_t> *lines = nullptr;  // nullptr: add does nothing, sum is 0
  // Counter k < kBankCounters. Lock-free, async-signal-safe. Out of line (a call on the
  // callers' slow paths): the sequence it holds must not sit in an inline member function,
  // whose copies the linker merges (platform/rseq.h, Linkage).
  void add(unsigned k, int64_t d) noexcept;
  int64_t sum(unsigned k) const noexcept { return lines ? striped_sum(set, lines + k) : 0; }
};
// Formats zeroed `lines` (striped_bytes(nstripes) bytes) as b's lines, every counter 0.
void striped_bank_init(striped_bank &b, std::atomic<int64_t> *lines, uint64_t nstripes) noexcept;

// A process-private bank that owns its lines (heap; not for code that must free it from a
// signal handler).
class striped_counter {
 public:
  striped_counter() noexcept;
  ~striped_counter();
  striped_counter(const striped_counter &) = delete;
  striped_counter &operator=(const striped_counter &) = delete;
  // False when the lines could not be allocated (then add and sum do nothing / return 0).
  bool ok() const noexcept { return bank_.lines != nullptr; }
  // Counter k (< kBankCounters; 0 for the one-counter use). Lock-free, async-signal-safe.
  void add(int64_t d, unsigned k = 0) noexcept { bank_.add(k, d); }
  int64_t sum(unsigned k = 0) const noexcept { return bank_.sum(k); }

 private:
  striped_bank bank_{};
};

}  // namespace corepool::ds
