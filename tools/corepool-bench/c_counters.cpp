// A2 counter contenders (see counters.h): corepool's this_cpu operations beside a shared
// atomic, a thread_local, a padded per-thread array and sched_getcpu() + an atomic on the
// CPU's slot. The unprotected per-CPU slot bound is in c_bounds.cpp (it reads the rseq CPU
// id directly).
#include <sched.h>

#include "counters.h"

#if __has_include(<corepool/percpu.h>)
#include <corepool/percpu.h>
#define CPB_PERCPU 1
#endif

namespace cpb {
namespace {

struct CounterBase {
  void *get() { return nullptr; }
  void put(void *) {}
};

struct SharedAtomic : CounterBase {
  alignas(64) std::atomic<uint64_t> v{0};
  static std::unique_ptr<SharedAtomic> create(const Params &, std::string &) {
    return std::make_unique<SharedAtomic>();
  }
  template <CounterOp Op>
  uint64_t op(int, uint64_t n) {
    return slot_op<Op, false>(v, n);
  }
  bool custom(const Task &t, const Params &p, Measurement &m) {
    return run_counter(*this, t, p, m);
  }
};

// A thread_local counter that other threads may read: relaxed load + store, no RMW.
thread_local std::atomic<uint64_t> t_count{0};
struct ThreadLocal : CounterBase {
  static std::unique_ptr<ThreadLocal> create(const Params &, std::string &) {
    return std::make_unique<ThreadLocal>();
  }
  template <CounterOp Op>
  uint64_t op(int, uint64_t n) {
    return slot_op<Op, true>(t_count, n);
  }
  bool custom(const Task &t, const Params &p, Measurement &m) {
    return run_counter(*this, t, p, m);
  }
};

struct alignas(64) PaddedSlot {
  std::atomic<uint64_t> v{0};
};

struct PaddedArray : CounterBase {
  PaddedSlot slots[64];
  static std::unique_ptr<PaddedArray> create(const Params &, std::string &) {
    return std::make_unique<PaddedArray>();
  }
  template <CounterOp Op>
  uint64_t op(int tid, uint64_t n) {
    return slot_op<Op, true>(slots[tid & 63].v, n);
  }
  bool custom(const Task &t, const Params &p, Measurement &m) {
    return run_counter(*this, t, p, m);
  }
};

// What a user writes without corepool: find the CPU with sched_getcpu() (glibc reads the
// rseq area or calls the vDSO) and use an atomic RMW on that CPU's padded slot, since another
// thread may run there by the time the operation lands.
struct GetcpuAtomic : CounterBase {
  PaddedSlot slots[1024];
  static std::unique_ptr<GetcpuAtomic> create(const Params &, std::string &) {
    return std::make_unique<GetcpuAtomic>();
  }
  template <CounterOp Op>
  uint64_t op(int, uint64_t n) {
    int c = sched_getcpu();
    return slot_op<Op, false>(slots[unsigned(c < 0 ? 0 : c) & 1023].v, n);
  }
  bool custom(const Task &t, const Params &p, Measurement &m) {
    return run_counter(*this, t, p, m);
  }
};

#ifdef CPB_PERCPU
struct PerCpuCounter : CounterBase {
  void *pcp = nullptr;
  ~PerCpuCounter() { cp_free_percpu(pcp); }
  static std::unique_ptr<PerCpuCounter> create(const Params &, std::string &err) {
    auto c = std::make_unique<PerCpuCounter>();
    c->pcp = cp_alloc_percpu(8, 8);
    if (!c->pcp) return err = "cp_alloc_percpu failed", nullptr;
    return c;
  }
  template <CounterOp Op>
  uint64_t op(int, uint64_t n) {
    if constexpr (Op == CounterOp::add) {
      cp_this_cpu_add_u64(pcp, 1);
      return 0;
    }
    if constexpr (Op == CounterOp::read) return cp_this_cpu_read_u64(pcp);
    if constexpr (Op == CounterOp::write) {
      cp_this_cpu_write_u64(pcp, n);
      return 0;
    }
    if constexpr (Op == CounterOp::xchg) return cp_this_cpu_xchg_u64(pcp, n);
    if constexpr (Op == CounterOp::add_return) return cp_this_cpu_add_return_u64(pcp, 1);
    return cp_this_cpu_cmpxchg_u64(pcp, n, n + 1);  // cmpxchg: returns the old value
  }
  bool custom(const Task &t, const Params &p, Measurement &m) {
    return run_counter(*this, t, p, m);
  }
};
#endif

void reg() {
#ifdef CPB_PERCPU
  add_counter<PerCpuCounter>("counter-percpu", "corepool", Kind::corepool,
                             "cp_alloc_percpu(8, 8) + cp_this_cpu_<op>_u64");
#else
  add_missing("counter-percpu", "corepool", Kind::corepool, kCounterWorkloads,
              "<corepool/percpu.h> not in this build");
#endif
  add_counter<SharedAtomic>("counter-shared-atomic", "area", Kind::peer,
                            "one std::atomic<uint64_t>: fetch_add / load / store / exchange / "
                            "compare_exchange_strong, relaxed");
  add_counter<ThreadLocal>("counter-thread_local", "area", Kind::peer,
                           "thread_local std::atomic<uint64_t>, relaxed load + store (no RMW)");
  add_counter<PaddedArray>("counter-padded-array", "area", Kind::peer,
                           "array of 64 B-padded per-thread slots, relaxed load + store");
  add_counter<GetcpuAtomic>("counter-getcpu-atomic", "area", Kind::peer,
                            "sched_getcpu() + relaxed atomic RMW on that CPU's 64 B-padded slot");
}
Registrar r(reg);

}  // namespace
}  // namespace cpb
