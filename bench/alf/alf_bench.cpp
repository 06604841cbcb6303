// ALF queue: cost per element of an enqueue + dequeue pair for bulk sizes 1/4/16, MPMC
// (one compare-and-swap per bulk on each side) beside SPSC (plain index stores), on one
// thread (the RFC's measurement: MPMC 9.5/3.3/1.6 ns per element on an E5-2695) and with
// 2 threads sharing the queue. `per_elem` is the time per element (enqueue + dequeue).
#include <benchmark/benchmark.h>

#include <cstdint>

#include <corepool/alf_queue.h>

namespace {

cp_alf_queue *g_q = nullptr;

template <bool Multi>
void BM_Alf(benchmark::State &s) {
  const int n = static_cast<int>(s.range(0));
  if (s.thread_index() == 0) cp_alf_queue_alloc(&g_q, 1024);
  void *in[64], *out[64];
  for (int i = 0; i < n; i++) in[i] = reinterpret_cast<void *>(uintptr_t(i + 1));
  uint64_t misses = 0;
  for (auto _ : s) {
    if constexpr (Multi) {
      if (cp_alf_mp_enqueue(g_q, in, n) != n) misses++;
      int got = 0;
      do {  // with 2 threads a dequeue may find another thread's elements, or fewer
        got += cp_alf_mc_dequeue(g_q, out, n - got);
      } while (got < n && s.threads() == 1);
      benchmark::DoNotOptimize(out[0]);
    } else {
      cp_alf_sp_enqueue(g_q, in, n);
      benchmark::DoNotOptimize(cp_alf_sc_dequeue(g_q, out, n));
    }
  }
  s.counters["per_elem"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate |
                                                     benchmark::Counter::kInvert);
  s.counters["enq_fail"] = static_cast<double>(misses);
  if (s.thread_index() == 0) {
    // drain (2 threads may leave a few) and free
    while (cp_alf_mc_dequeue(g_q, out, 64) > 0) {
    }
    cp_alf_queue_free(g_q);
  }
}

void BM_Alf_MPMC(benchmark::State &s) {
  BM_Alf<true>(s);
}
void BM_Alf_SPSC(benchmark::State &s) {
  BM_Alf<false>(s);
}
BENCHMARK(BM_Alf_MPMC)->Arg(1)->Arg(4)->Arg(16)->Threads(1);
BENCHMARK(BM_Alf_SPSC)->Arg(1)->Arg(4)->Arg(16)->Threads(1);
BENCHMARK(BM_Alf_MPMC)->Arg(1)->Arg(4)->Arg(16)->Threads(2);

}  // namespace
BENCHMARK_MAIN();
