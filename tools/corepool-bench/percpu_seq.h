// The per-CPU slots of the bound-percpu-seq bounds (c_bounds.cpp): one body for the inlined
// bound and for the one behind a call (c_bounds_call.cpp).
#pragma once

#include <corepool/cpu.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "counters.h"
#include "platform/rseq.h"

namespace cpb {

// One 64 B-padded word per possible CPU, each written only by committed sequences on its CPU
// (the platform's invariant); a thread that cannot run sequences uses `fallback` with
// atomics, as the this_cpu operations do.
struct PerCpuSeqSlots {
  struct alignas(64) Slot {
    uint64_t v{0};
  };
  std::unique_ptr<Slot[]> slots{new Slot[cp_nr_cpu_ids()]};
  alignas(64) std::atomic<uint64_t> fallback{0};
};

// One operation on this CPU's slot: one restartable sequence of the platform layer, retried
// after an abort (preempted, migrated, signalled: it stored nothing); read is one load, as in
// the library. No pointer validation, no touched bit. Internal linkage, as the platform's
// sequences have: an inline function's copy can be discarded at link time, and the
// sequence descriptors (__rseq_cs) of a discarded copy would point into nothing.
template <CounterOp Op>
static inline uint64_t percpu_seq_op(PerCpuSeqSlots &s, uint64_t n) noexcept {
  namespace pf = corepool::platform;
  pf::rseq_abi *rs = pf::rseq_registered_area();
  if (__builtin_expect(rs == nullptr, 0)) return slot_op<Op, false>(s.fallback, n);
  if constexpr (Op == CounterOp::read) {
    const uint32_t c = std::atomic_ref<uint32_t>(rs->cpu_id).load(std::memory_order_relaxed);
    return std::atomic_ref<uint64_t>(s.slots[c].v).load(std::memory_order_relaxed);
  }
  for (;;) {
    const uint32_t c = std::atomic_ref<uint32_t>(rs->cpu_id).load(std::memory_order_relaxed);
    const int cpu = static_cast<int>(c);
    uint64_t *v = &s.slots[c].v;
    uint64_t out = 0;
    int rc;
    if constexpr (Op == CounterOp::add)
      rc = pf::rseq_add<uint64_t>(v, 1, cpu, rs);
    else if constexpr (Op == CounterOp::write)
      rc = pf::rseq_store<uint64_t>(v, n, cpu, rs);
    else if constexpr (Op == CounterOp::xchg)
      rc = pf::rseq_xchg<uint64_t>(v, n, &out, cpu, rs);
    else if constexpr (Op == CounterOp::add_return)
      rc = pf::rseq_add_return<uint64_t>(v, 1, &out, cpu, rs);
    else
      rc = pf::rseq_cmpxchg<uint64_t>(v, n, n + 1, &out, cpu, rs);
    if (__builtin_expect(rc == pf::CP_RSEQ_OK, 1)) return out;
  }
}

// bound-percpu-seq-call: percpu_seq_op out of line, in a translation unit the caller cannot
// see into, called directly with the slots' address as a this_cpu operation gets its
// variable's (libcorepool is linked statically: no PLT). Defined for every CounterOp.
template <CounterOp Op>
uint64_t percpu_seq_call(PerCpuSeqSlots *s, uint64_t n) noexcept;

}  // namespace cpb
