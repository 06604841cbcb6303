// Per-CPU access to areas of the allocator, dynamic and static alike: the CPU pointers, the
// this_cpu family (read, write, add, add_return, xchg, cmpxchg on 8, 16, 32 and 64-bit
// fields) and the sums over CPUs. Design: docs/percpu.md.
//
// Which copy an operation works on ("the thread's copy"):
//   rseq mode, a thread with rseq         the copy of the CPU it runs on (unit `cpu`)
//   rseq mode, a thread without rseq      the fallback copy (unit nr_cpus)
//   mode off (fixed at load time)         the copy of the CPU corepool::platform::current_cpu()
//   named
//
// Invariant that makes every operation exact and lets the two paths run at the same time:
// each copy has exactly one kind of writer.
//   I1 (rseq mode) unit c < nr_cpus is modified only by committed sequences on CPU c. The
//      kernel never lets two of them interleave, and a signal handler's sequence aborts the
//      one it interrupted, so each load-compute-store is atomic for that copy.
//   I2 (rseq mode) the fallback unit is modified only by atomic read-modify-writes and
//      atomic stores (std::atomic_ref), which are atomic among themselves from any CPU.
//   I3 (mode off)  every unit is modified only by atomics.
// A thread that cannot run sequences therefore never writes a CPU's copy: its atomic would
// not be atomic against a plain commit store on that CPU. Readers from other CPUs (sums, the
// fallback path) use atomic loads; a sequence's commit is one aligned store, which x86-64
// makes single-copy atomic, so they see the old or the new value, never a mix.
//
// Ordering: sequences run on x86-64, whose loads are acquire and stores release (TSO); the
// atomic paths use the same orders (read acquire, write release, xchg / cmpxchg /
// add_return acq_rel), so data published through a copy is seen by whoever reads it there.
// add is relaxed on both paths (a counter orders nothing).
//
// Fast path (a thread with rseq): one initial-exec TLS load for the rseq area, the area check
// (the alignment, one mask test, one directory bit), cpu_id, a test of the copy's touched
// bit, then ONE restartable sequence and no atomic instruction; no stack frame. The first
// access of a CPU to a chunk takes the slow path, which sets its touched bit (one fetch_or,
// before the copy can become non-zero: sums skip untouched copies).
#include <corepool/percpu.h>

#include <atomic>
#include <cerrno>

#include "error.h"
#include "percpu/percpu_access.h"
#include "percpu/percpu_internal.h"
#include "platform/cpu.h"
#include "platform/rseq.h"

namespace corepool::pcpu {
namespace {

namespace pf = platform;
using pf::CP_RSEQ_OK;

// Read-only zero copy returned by cp_per_cpu_cptr for units that were never touched.
alignas(65536) const char g_zero[kUnitSize] = {};

// Tests only (COREPOOL_INJECT builds): this thread acts as a thread without rseq. Plain TLS
// (no C++ TLS wrapper): read on the fast path and in signal handlers.
#ifdef COREPOOL_INJECT
constexpr bool kTestHooks = true;
#else
constexpr bool kTestHooks = false;
#endif
__thread bool t_force_fallback = false;

inline bool forced_fallback() noexcept {
  return kTestHooks && t_force_fallback;
}

template <class T>
inline bool valid(uintptr_t u) noexcept {
  return u % sizeof(T) == 0 && is_area(u);
}

inline uintptr_t unit_addr(uintptr_t u, unsigned unit) noexcept {
  return u + unit * g_geo.stride;
}

template <class T>
inline std::atomic_ref<T> slot_ref(uintptr_t u, unsigned unit) noexcept {
  return std::atomic_ref<T>(*reinterpret_cast<T *>(unit_addr(u, unit)));
}

int bad(const char *msg) noexcept {
  return set_error(-EINVAL, msg);
}

// The operations. Each has `seq` (one restartable sequence on the CPU's copy; writes `out`
// on CP_RSEQ_OK) and `atom` (the same effect with atomics on a copy), both returning the
// function's result.
template <class T>
struct op_write {
  T v;
  int seq(T *p, int cpu, pf::rseq_abi *rs, T &out) const noexcept {
    out = 0;
    return pf::rseq_store(p, v, cpu, rs);
  }
  T atom(std::atomic_ref<T> r) const noexcept {
    r.store(v, std::memory_order_release);
    return 0;
  }
};
template <class T>
struct op_add {
  T v;
  int seq(T *p, int cpu, pf::rseq_abi *rs, T &out) const noexcept {
    out = 0;
    return pf::rseq_add(p, v, cpu, rs);
  }
  T atom(std::atomic_ref<T> r) const noexcept {
    r.fetch_add(v, std::memory_order_relaxed);
    return 0;
  }
};
template <class T>
struct op_add_return {
  T v;
  int seq(T *p, int cpu, pf::rseq_abi *rs, T &out) const noexcept {
    return pf::rseq_add_return(p, v, &out, cpu, rs);
  }
  T atom(std::atomic_ref<T> r) const noexcept {
    return static_cast<T>(r.fetch_add(v, std::memory_order_acq_rel) + v);
  }
};
template <class T>
struct op_xchg {
  T v;
  int seq(T *p, int cpu, pf::rseq_abi *rs, T &out) const noexcept {
    return pf::rseq_xchg(p, v, &out, cpu, rs);
  }
  T atom(std::atomic_ref<T> r) const noexcept { return r.exchange(v, std::memory_order_acq_rel); }
};
template <class T>
struct op_cmpxchg {
  T expect, v;
  int seq(T *p, int cpu, pf::rseq_abi *rs, T &out) const noexcept {
    return pf::rseq_cmpxchg(p, expect, v, &out, cpu, rs);
  }
  T atom(std::atomic_ref<T> r) const noexcept {
    T old = expect;
    r.compare_exchange_strong(old, v, std::memory_order_acq_rel, std::memory_order_acquire);
    return old;
  }
};

// The operation on the fallback copy or, in mode off, on a CPU's copy (I2, I3).
template <class T, class Op>
T on_unit_atomically(uintptr_t u, unsigned unit, const Op &op) noexcept {
  mark_touched(u, unit);
  return op.atom(slot_ref<T>(u, unit));
}

// Everything but the fast path: bad input, a thread's first call (finds its rseq area), the
// threads without rseq, mode off. `op` by value (two words at most): passed in registers, so
// the fast path that tail-calls this needs no stack frame.
template <class T, class Op>
__attribute__((noinline)) T run_slow(void *pcp, const Op op) noexcept {
  const uintptr_t u = reinterpret_cast<uintptr_t>(pcp);
  if (!valid<T>(u)) {
    bad("cp_this_cpu_*: not a per-CPU area, or not aligned to the field's width");
    return 0;
  }
  const geometry &g = g_geo;
  if (g.rseq) {
    if (pf::rseq_abi *rs = forced_fallback() ? nullptr : pf::rseq_registered_area())
      for (;;) {
        const unsigned cpu = std::atomic_ref<uint32_t>(rs->cpu_id).load(std::memory_order_relaxed);
        if (cpu >= g.nr_cpus) break;
        mark_touched(u, cpu);
        T out;
        if (op.seq(reinterpret_cast<T *>(unit_addr(u, cpu)), static_cast<int>(cpu), rs, out) ==
            CP_RSEQ_OK)
          return out;
      }
    return on_unit_atomically<T>(u, g.nr_cpus, op);  // I2: never a CPU's copy
  }
  return on_unit_atomically<T>(u, corepool::platform::current_cpu(), op);  // I3
}

template <class T, class Op>
inline T run(void *pcp, const Op &op) noexcept {
  const uintptr_t u = reinterpret_cast<uintptr_t>(pcp);
  pf::rseq_abi *rs = pf::rseq_registered_area_if_known();
  if (__builtin_expect(rs != nullptr && !forced_fallback() && valid<T>(u), 1)) {
    const geometry &g = g_geo;
    for (;;) {
      // cpu_id is re-read on every try: an abort means the thread may have migrated.
      const unsigned cpu = std::atomic_ref<uint32_t>(rs->cpu_id).load(std::memory_order_relaxed);
      if (__builtin_expect(cpu >= g.nr_cpus, 0)) break;  // not for a registered thread
      // The first access of this CPU to the chunk sets the touched bit before the sequence
      // can make the copy non-zero, out of line: the fast path only tests it.
      if (__builtin_expect(!is_touched(u, cpu), 0)) break;
      T out;
      if (__builtin_expect(op.seq(reinterpret_cast<T *>(unit_addr(u, cpu)), static_cast<int>(cpu),
                                  rs, out) == CP_RSEQ_OK,
                           1))
        return out;
      // aborted (preempted, migrated, signalled): nothing was stored; retry on the new CPU
    }
  }
  return run_slow<T>(pcp, op);
}

// read: one load of the thread's copy (no sequence needed: a single load is already atomic).
// A never-written copy reads as zero without touching its page.
template <class T>
T load_copy(uintptr_t u, unsigned unit) noexcept {
  if (!is_touched(u, unit)) return 0;
  return slot_ref<T>(u, unit).load(std::memory_order_acquire);
}

// Everything but the fast path of read: bad input, a thread's first call, threads without
// rseq, mode off.
template <class T>
__attribute__((noinline)) T read_slow(uintptr_t u) noexcept {
  if (!valid<T>(u)) {
    bad("cp_this_cpu_read_*: not a per-CPU area, or not aligned to the field's width");
    return 0;
  }
  const geometry &g = g_geo;
  unsigned unit;
  if (g.rseq) {
    pf::rseq_abi *rs = forced_fallback() ? nullptr : pf::rseq_registered_area();
    unit = rs ? std::atomic_ref<uint32_t>(rs->cpu_id).load(std::memory_order_relaxed) : g.nr_cpus;
  } else {
    unit = corepool::platform::current_cpu();
  }
  if (unit > g.nr_cpus) unit = g.nr_cpus;  // not a CPU this allocator has a copy for
  return load_copy<T>(u, unit);
}

template <class T>
T read(const void *pcp) noexcept {
  const uintptr_t u = reinterpret_cast<uintptr_t>(pcp);
  pf::rseq_abi *rs = pf::rseq_registered_area_if_known();
  if (__builtin_expect(rs != nullptr && !forced_fallback() && valid<T>(u), 1)) {
    const unsigned cpu = std::atomic_ref<uint32_t>(rs->cpu_id).load(std::memory_order_relaxed);
    if (__builtin_expect(cpu < g_geo.nr_cpus, 1)) return load_copy<T>(u, cpu);
  }
  return read_slow<T>(u);
}

template <class T>
T sum(const void *pcp) noexcept {
  const uintptr_t u = reinterpret_cast<uintptr_t>(pcp);
  if (!valid<T>(u)) {
    bad("cp_percpu_sum_*: not a per-CPU area, or not aligned to the field's width");
    return 0;
  }
  T s = 0;
  for (unsigned k = 0; k <= g_geo.nr_cpus; k++)  // every CPU's copy and the fallback copy
    if (is_touched(u, k))                        // an untouched copy is zero: no page fault
      s = static_cast<T>(s + slot_ref<T>(u, k).load(std::memory_order_relaxed));
  return s;
}

}  // namespace

void add_u64_no_rseq_thread(void *pcp, uint64_t v) noexcept {
  const uintptr_t u = reinterpret_cast<uintptr_t>(pcp);
  if (valid<uint64_t>(u)) on_unit_atomically<uint64_t>(u, g_geo.nr_cpus, op_add<uint64_t>{v});
}

void force_fallback_thread(bool on) noexcept {
  t_force_fallback = on;
}

}  // namespace corepool::pcpu

using namespace corepool::pcpu;

extern "C" {

void *cp_per_cpu_ptr(void *pcp, unsigned cpu) {
  const uintptr_t u = reinterpret_cast<uintptr_t>(pcp);
  if (!is_area(u)) {
    bad("cp_per_cpu_ptr: not a per-CPU area");
    return nullptr;
  }
  if (cpu >= g_geo.nr_cpus) {
    bad("cp_per_cpu_ptr: cpu out of range");
    return nullptr;
  }
  mark_touched(u, cpu);
  return reinterpret_cast<void *>(unit_addr(u, cpu));
}

void *cp_per_cpu_fallback_ptr(void *pcp) {
  const uintptr_t u = reinterpret_cast<uintptr_t>(pcp);
  if (!is_area(u)) {
    bad("cp_per_cpu_fallback_ptr: not a per-CPU area");
    return nullptr;
  }
  mark_touched(u, g_geo.nr_cpus);
  return reinterpret_cast<void *>(unit_addr(u, g_geo.nr_cpus));
}

const void *cp_per_cpu_cptr(const void *pcp, unsigned cpu) {
  const uintptr_t u = reinterpret_cast<uintptr_t>(pcp);
  if (!is_area(u)) {
    bad("cp_per_cpu_cptr: not a per-CPU area");
    return nullptr;
  }
  if (cpu > g_geo.nr_cpus) {  // nr_cpus: the fallback copy
    bad("cp_per_cpu_cptr: cpu out of range");
    return nullptr;
  }
  if (!is_touched(u, cpu)) return g_zero + (u & ~g_geo.span_mask);
  return reinterpret_cast<const void *>(unit_addr(u, cpu));
}

void *cp_this_cpu_ptr(void *pcp) {
  return cp_per_cpu_ptr(pcp, corepool::platform::current_cpu());
}

#define CP_THIS_CPU_FAMILY(W, T)                        \
  T cp_this_cpu_read_##W(const void *pcp) {             \
    return read<T>(pcp);                                \
  }                                                     \
  void cp_this_cpu_write_##W(void *pcp, T v) {          \
    run<T>(pcp, op_write<T>{v});                        \
  }                                                     \
  void cp_this_cpu_add_##W(void *pcp, T v) {            \
    run<T>(pcp, op_add<T>{v});                          \
  }                                                     \
  T cp_this_cpu_add_return_##W(void *pcp, T v) {        \
    return run<T>(pcp, op_add_return<T>{v});            \
  }                                                     \
  T cp_this_cpu_xchg_##W(void *pcp, T v) {              \
    return run<T>(pcp, op_xchg<T>{v});                  \
  }                                                     \
  T cp_this_cpu_cmpxchg_##W(void *pcp, T expect, T v) { \
    return run<T>(pcp, op_cmpxchg<T>{expect, v});       \
  }                                                     \
  T cp_percpu_sum_##W(const void *pcp) {                \
    return sum<T>(pcp);                                 \
  }

CP_THIS_CPU_FAMILY(u8, uint8_t)
CP_THIS_CPU_FAMILY(u16, uint16_t)
CP_THIS_CPU_FAMILY(u32, uint32_t)
CP_THIS_CPU_FAMILY(u64, uint64_t)
#undef CP_THIS_CPU_FAMILY

}  // extern "C"
