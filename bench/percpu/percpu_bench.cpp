// Per-CPU counters and per-CPU allocation throughput, with the baselines measured in the
// same run. `make bench`, or: build/release/bench/bench_percpu --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <corepool/percpu.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <vector>

#include "platform/memory.h"

namespace {

// ---- counter increment ------------------------------------------------------------------

void *g_ctr = cp_alloc_percpu(8, 8);
alignas(64) std::atomic<uint64_t> g_shared{0};
thread_local uint64_t t_counter;
struct alignas(64) padded {
  uint64_t v;
};
padded g_slots[64];

void BM_inc_percpu_rseq(benchmark::State &st) {
  for (auto _ : st) cp_this_cpu_add_u64(g_ctr, 1);
}
BENCHMARK(BM_inc_percpu_rseq)->Threads(1)->Threads(2);

void BM_inc_shared_atomic(benchmark::State &st) {
  for (auto _ : st) g_shared.fetch_add(1, std::memory_order_relaxed);
}
BENCHMARK(BM_inc_shared_atomic)->Threads(1)->Threads(2);

void BM_inc_thread_local(benchmark::State &st) {
  for (auto _ : st) {
    t_counter = t_counter + 1;
    benchmark::ClobberMemory();  // a real load and store each time, as the others do
  }
}
BENCHMARK(BM_inc_thread_local)->Threads(1)->Threads(2);

void BM_inc_padded_array(benchmark::State &st) {
  uint64_t *mine = &g_slots[st.thread_index() % 64].v;
  for (auto _ : st) {
    *mine = *mine + 1;
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_inc_padded_array)->Threads(1)->Threads(2);

// ---- allocation throughput (the 2017 rewrite's table: 2^20 objects, alloc all, free all) -

constexpr size_t kObjects = size_t(1) << 20;

// librseq-mempool-style baseline: a mutex, per-CPU ranges at a 64 KiB stride (one range =
// stride x nr_cpus bytes, bump allocation inside it) and a free list of items; no zeroing
// (rseq_mempool_percpu_malloc), free list kept beside the items so frees touch no item page.
class mutex_freelist_pool {
 public:
  explicit mutex_freelist_pool(size_t item) : item_((item + 7) & ~size_t(7)) {}
  ~mutex_freelist_pool() {
    for (char *r : ranges_) corepool::platform::os_release(r, kStride * cp_nr_cpu_ids());
  }
  void *alloc() {
    std::lock_guard<std::mutex> g(lock_);
    if (!free_.empty()) {
      void *p = free_.back();
      free_.pop_back();
      return p;
    }
    if (!cur_ || used_ + item_ > kStride) {
      cur_ = static_cast<char *>(corepool::platform::os_alloc(kStride * cp_nr_cpu_ids(), kStride));
      if (!cur_) return nullptr;
      ranges_.push_back(cur_);
      used_ = 0;
    }
    void *p = cur_ + used_;
    used_ += item_;
    return p;
  }
  void free(void *p) {
    std::lock_guard<std::mutex> g(lock_);
    free_.push_back(p);
  }

 private:
  static constexpr size_t kStride = 64 * 1024;
  size_t item_;
  std::mutex lock_;
  std::vector<void *> free_;
  std::vector<char *> ranges_;
  char *cur_ = nullptr;
  size_t used_ = 0;
};

using clk = std::chrono::steady_clock;
double ms(clk::time_point a, clk::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

void BM_alloc_all_free_all_percpu(benchmark::State &st) {
  const size_t size = static_cast<size_t>(st.range(0));
  std::vector<void *> v(kObjects);
  double a_ms = 0, f_ms = 0;
  cp_percpu_stats base;
  cp_percpu_get_stats(&base);
  for (auto _ : st) {
    auto t0 = clk::now();
    for (size_t i = 0; i < kObjects; i++) v[i] = cp_alloc_percpu(size, size < 8 ? size : 8);
    auto t1 = clk::now();
    for (size_t i = 0; i < kObjects; i++) cp_free_percpu(v[i]);
    cp_percpu_stats s;
    cp_percpu_get_stats(&s);  // processes the pending frees: part of the free cost
    auto t2 = clk::now();
    a_ms += ms(t0, t1);
    f_ms += ms(t1, t2);
    if (s.nr_cur_alloc != base.nr_cur_alloc) st.SkipWithError("leak");
  }
  st.counters["alloc_ms"] = a_ms / static_cast<double>(st.iterations());
  st.counters["free_ms"] = f_ms / static_cast<double>(st.iterations());
}
BENCHMARK(BM_alloc_all_free_all_percpu)
    ->Arg(4)
    ->Arg(16)
    ->Arg(64)
    ->Arg(256)
    ->Arg(1024)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

void BM_alloc_all_free_all_mutex_freelist(benchmark::State &st) {
  const size_t size = static_cast<size_t>(st.range(0));
  std::vector<void *> v(kObjects);
  double a_ms = 0, f_ms = 0;
  for (auto _ : st) {
    mutex_freelist_pool pool(size);
    auto t0 = clk::now();
    for (size_t i = 0; i < kObjects; i++) v[i] = pool.alloc();
    auto t1 = clk::now();
    for (size_t i = 0; i < kObjects; i++) pool.free(v[i]);
    auto t2 = clk::now();
    a_ms += ms(t0, t1);
    f_ms += ms(t1, t2);
  }
  st.counters["alloc_ms"] = a_ms / static_cast<double>(st.iterations());
  st.counters["free_ms"] = f_ms / static_cast<double>(st.iterations());
}
BENCHMARK(BM_alloc_all_free_all_mutex_freelist)
    ->Arg(4)
    ->Arg(16)
    ->Arg(64)
    ->Arg(256)
    ->Arg(1024)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
