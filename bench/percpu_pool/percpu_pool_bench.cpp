// percpu_pool: alloc + cp_free_percpu beside cp_alloc_percpu + cp_free_percpu (1 and 2
// threads), and how often alloc finds the pool empty at a given rate and watermark setting.
// `make bench`, or: build/release/bench/bench_percpu_pool --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <corepool/percpu.h>
#include <corepool/percpu_pool.h>

#include <chrono>

namespace {

cp_percpu_pool *make_pool(int low, int high) {
  cp_percpu_pool *p = nullptr;
  cp_percpu_pool_create(&p, 16, 8, low, high);
  cp_percpu_pool_fill(p, 0);
  return p;
}

cp_percpu_pool *g_pool = make_pool(0, 1);

// alloc + cp_free_percpu from a filled pool: each round refills the pool synchronously with
// the timer paused (so no alloc finds it empty), then times kBatch alloc + free pairs.
constexpr int kBatch = 512;
void BM_pool_alloc_free(benchmark::State &st) {
  void *held[kBatch];
  for (auto _ : st) {
    st.PauseTiming();
    cp_percpu_pool_fill(g_pool, kBatch * st.threads());
    st.ResumeTiming();
    int got = 0;
    for (int i = 0; i < kBatch; i++)
      if (void *a = cp_percpu_pool_alloc(g_pool)) held[got++] = a;
    for (int i = 0; i < got; i++) cp_free_percpu(held[i]);
  }
  st.SetItemsProcessed(st.iterations() * kBatch);
}
BENCHMARK(BM_pool_alloc_free)->Threads(1)->Threads(2);

// The same shape for cp_alloc_percpu + cp_free_percpu.
void BM_percpu_alloc_free_batch(benchmark::State &st) {
  void *held[kBatch];
  for (auto _ : st) {
    for (int i = 0; i < kBatch; i++) held[i] = cp_alloc_percpu(16, 8);
    for (int i = 0; i < kBatch; i++) cp_free_percpu(held[i]);
  }
  st.SetItemsProcessed(st.iterations() * kBatch);
}
BENCHMARK(BM_percpu_alloc_free_batch)->Threads(1)->Threads(2);

void BM_percpu_alloc_free(benchmark::State &st) {
  for (auto _ : st) {
    void *a = cp_alloc_percpu(16, 8);
    benchmark::DoNotOptimize(a);
    cp_free_percpu(a);
  }
}
BENCHMARK(BM_percpu_alloc_free)->Threads(1)->Threads(2);

// One thread allocates (and frees) at `rate` allocations per millisecond for 200 ms; the
// fraction of allocs that found the pool empty, for watermarks (low, high).
void BM_pool_empty_fraction(benchmark::State &st) {
  const int64_t rate = st.range(0), low = st.range(1), high = st.range(2);
  cp_percpu_pool *p = make_pool(static_cast<int>(low), static_cast<int>(high));
  using clk = std::chrono::steady_clock;
  uint64_t allocs = 0, empty = 0;
  for (auto _ : st) {
    const auto t0 = clk::now();
    const auto gap = std::chrono::nanoseconds(1000000 / rate);
    auto next = t0;
    while (clk::now() - t0 < std::chrono::milliseconds(200)) {
      while (clk::now() < next) {
      }
      next += gap;
      void *a = cp_percpu_pool_alloc(p);
      allocs++;
      if (a)
        cp_free_percpu(a);
      else
        empty++;
    }
  }
  st.counters["empty_frac"] = static_cast<double>(empty) / static_cast<double>(allocs);
  st.counters["allocs"] = static_cast<double>(allocs);
  cp_percpu_pool_destroy(p);
}
BENCHMARK(BM_pool_empty_fraction)
    ->ArgNames({"per_ms", "low", "high"})
    ->Args({10, 4, 16})
    ->Args({100, 4, 16})
    ->Args({1000, 4, 16})
    ->Args({10, 64, 256})
    ->Args({100, 64, 256})
    ->Args({1000, 64, 256})
    ->Args({10000, 64, 256})
    ->Args({10000, 1024, 4096})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
