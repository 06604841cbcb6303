// objpool benchmarks: W1 pop-touch-push, W2 burst of 256, bulk, W4 T=1 vs T=2,
// each beside glibc malloc/free and two lower bounds measured in the same run:
//   PrivateArray  a thread-private plain array stack (no atomics, no CPU lookup);
//   PerCpuArray   a per-CPU plain array stack indexed by the rseq CPU id with no restart
//                 protection (the cost of finding the CPU's data, nothing more; not correct
//                 under preemption, a bound only).
// The `pair` counter is time per pop+push pair (aggregate over threads for T=2: real time).
// W3 and W5 against all peers are in the corepool-bench tool.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <memory>

#include <corepool/cpu.h>
#include <corepool/objpool.h>

#include "platform/rseq.h"

namespace {
using corepool::platform::rseq_cpu_start;

constexpr int kObjSize = 64;
constexpr int kObjs = 4096;
constexpr int kBurst = 256;

cp_objpool *pool() {
  static cp_objpool *p = [] {
    cp_objpool *q = nullptr;
    if (cp_objpool_init(&q, kObjs, kObjSize, nullptr, nullptr, nullptr) != 0) std::abort();
    return q;
  }();
  return p;
}

cp_objpool *bounded_pool() {
  static cp_objpool *p = [] {
    cp_objpool *q = nullptr;
    cp_objpool_attr a{.ring_capacity = 1024, .flags = 0, .cache_capacity = 0, .thread_cache = 0};
    if (cp_objpool_init_attr(&q, kObjs, kObjSize, nullptr, nullptr, nullptr, &a) != 0) std::abort();
    return q;
  }();
  return p;
}

void set_pairs(benchmark::State &s, int64_t per_iter) {
  s.counters["pair"] =
      benchmark::Counter(static_cast<double>(s.iterations() * per_iter),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  s.SetItemsProcessed(s.iterations() * per_iter);
}

inline void touch(void *p) {
  static_cast<volatile char *>(p)[0] = 1;
}

// ---- lower bounds ------------------------------------------------------------------------

struct private_stack {
  void *slots[kObjs];
  int top = 0;
  char backing[kBurst][kObjSize];
  private_stack() {
    for (int i = 0; i < kBurst; i++) slots[top++] = backing[i];
  }
  void *pop() { return top ? slots[--top] : nullptr; }
  void push(void *p) { slots[top++] = p; }
};

struct alignas(64) cpu_stack {
  intptr_t top;
  void *slots[1024];
};
constexpr intptr_t kCpuMask = 1023;
cpu_stack *cpu_stacks() {
  static cpu_stack *s = [] {
    unsigned n = cp_nr_cpu_ids();
    auto *a = new cpu_stack[n]();
    static char backing[kObjs][kObjSize];
    for (unsigned c = 0; c < n; c++)
      for (int i = 0; i < 512; i++) a[c].slots[a[c].top++] = backing[(c * 512 + i) % kObjs];
    return a;
  }();
  return s;
}
inline int cpu_or0() {
  int c = rseq_cpu_start();
  return c < 0 ? static_cast<int>(cp_current_cpu()) : c;
}
// No restart protection: a preemption between the reads and the store corrupts the stack.
// Indices are masked so that a benchmark never writes out of bounds; a bound, not a pool.
inline void *percpu_pop() {
  cpu_stack &s = cpu_stacks()[cpu_or0()];
  return s.slots[--s.top & kCpuMask];
}
inline void percpu_push(void *p) {
  cpu_stack &s = cpu_stacks()[cpu_or0()];
  s.slots[s.top++ & kCpuMask] = p;
}

// ---- W1: pop, touch, push --------------------------------------------------------------

void BM_W1_Objpool(benchmark::State &s) {
  cp_objpool *p = pool();
  for (auto _ : s) {
    void *o = cp_objpool_pop(p);
    touch(o);
    cp_objpool_push(o, p);
  }
  set_pairs(s, 1);
}
BENCHMARK(BM_W1_Objpool)->Threads(1)->Threads(2)->UseRealTime();

void BM_W1_ObjpoolBounded(benchmark::State &s) {
  cp_objpool *p = bounded_pool();
  for (auto _ : s) {
    void *o = cp_objpool_pop(p);
    touch(o);
    cp_objpool_push(o, p);
  }
  set_pairs(s, 1);
}
BENCHMARK(BM_W1_ObjpoolBounded)->Threads(1)->UseRealTime();

void BM_W1_Malloc(benchmark::State &s) {
  for (auto _ : s) {
    void *o = std::malloc(kObjSize);
    touch(o);
    benchmark::DoNotOptimize(o);
    std::free(o);
  }
  set_pairs(s, 1);
}
BENCHMARK(BM_W1_Malloc)->Threads(1)->Threads(2)->UseRealTime();

void BM_W1_PrivateArray(benchmark::State &s) {
  private_stack st;
  for (auto _ : s) {
    void *o = st.pop();
    touch(o);
    st.push(o);
    benchmark::ClobberMemory();
  }
  set_pairs(s, 1);
}
BENCHMARK(BM_W1_PrivateArray)->Threads(1)->Threads(2)->UseRealTime();

void BM_W1_PerCpuArray(benchmark::State &s) {
  for (auto _ : s) {
    void *o = percpu_pop();
    touch(o);
    percpu_push(o);
    benchmark::ClobberMemory();
  }
  set_pairs(s, 1);
}
BENCHMARK(BM_W1_PerCpuArray)->Threads(1)->Threads(2)->UseRealTime();

// ---- W2: burst of 256 (pop 256, then push 256) -------------------------------------------

void BM_W2_Objpool(benchmark::State &s) {
  cp_objpool *p = pool();
  void *objs[kBurst];
  for (auto _ : s) {
    for (int i = 0; i < kBurst; i++) objs[i] = cp_objpool_pop(p);
    for (int i = 0; i < kBurst; i++) touch(objs[i]);
    for (int i = 0; i < kBurst; i++) cp_objpool_push(objs[i], p);
  }
  set_pairs(s, kBurst);
}
BENCHMARK(BM_W2_Objpool)->Threads(1)->Threads(2)->UseRealTime();

void BM_W2_Malloc(benchmark::State &s) {
  void *objs[kBurst];
  for (auto _ : s) {
    for (int i = 0; i < kBurst; i++) objs[i] = std::malloc(kObjSize);
    for (int i = 0; i < kBurst; i++) touch(objs[i]);
    for (int i = 0; i < kBurst; i++) std::free(objs[i]);
    benchmark::ClobberMemory();
  }
  set_pairs(s, kBurst);
}
BENCHMARK(BM_W2_Malloc)->Threads(1)->Threads(2)->UseRealTime();

void BM_W2_PrivateArray(benchmark::State &s) {
  private_stack st;
  void *objs[kBurst];
  for (auto _ : s) {
    for (int i = 0; i < kBurst; i++) objs[i] = st.pop();
    for (int i = 0; i < kBurst; i++) touch(objs[i]);
    for (int i = 0; i < kBurst; i++) st.push(objs[i]);
    benchmark::ClobberMemory();
  }
  set_pairs(s, kBurst);
}
BENCHMARK(BM_W2_PrivateArray)->Threads(1)->Threads(2)->UseRealTime();

void BM_W2_PerCpuArray(benchmark::State &s) {
  void *objs[kBurst];
  for (auto _ : s) {
    for (int i = 0; i < kBurst; i++) objs[i] = percpu_pop();
    for (int i = 0; i < kBurst; i++) touch(objs[i]);
    for (int i = 0; i < kBurst; i++) percpu_push(objs[i]);
    benchmark::ClobberMemory();
  }
  set_pairs(s, kBurst);
}
BENCHMARK(BM_W2_PerCpuArray)->Threads(1)->Threads(2)->UseRealTime();

// ---- bulk: pop_bulk / push_bulk of n -------------------------------------------------------

void BM_Bulk_Objpool(benchmark::State &s) {
  cp_objpool *p = pool();
  const unsigned n = static_cast<unsigned>(s.range(0));
  void *objs[kBurst];
  for (auto _ : s) {
    unsigned got = cp_objpool_pop_bulk(p, objs, n);
    for (unsigned i = 0; i < got; i++) touch(objs[i]);
    cp_objpool_push_bulk(objs, got, p);
  }
  set_pairs(s, static_cast<int64_t>(n));
}
BENCHMARK(BM_Bulk_Objpool)->Arg(16)->Arg(kBurst)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

int main(int argc, char **argv) {
  benchmark::AddCustomContext("cpu_id_source", cp_cpu_id_source_name(cp_cpu_id_source()));
  benchmark::AddCustomContext("objpool_rseq", cp_objpool_uses_rseq(pool()) ? "yes" : "no");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
