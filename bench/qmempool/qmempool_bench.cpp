// qmempool against glibc malloc and two lower bounds, in the same run:
//   W1 fast path   alloc + free of one object (the RFC's "fast-path reuse");
//   W2 N(256)      allocate 256, then free them (the RFC's N-pattern), per pair;
//   W3 cross-thread alloc on one thread, free on another, through an SPSC ALF ring
//                  (beside the ring alone: the bound);
//   W4/W5          fast path on T = 1, 2 (scaling) and 8, 32 (oversubscribed) threads.
// Bounds: a per-CPU plain array indexed by the rseq cpu id with no restart protection (the
// cost of finding this CPU's data, nothing more; single thread only: it is not safe), and a
// thread-private array. Object size 64 bytes. `make bench` runs this; the corepool-bench
// tool adds the other peers (tcmalloc, mimalloc, DPDK, ...).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include <corepool/alf_queue.h>
#include <corepool/cpu.h>
#include <corepool/qmempool.h>

#include "platform/rseq.h"

namespace {
using corepool::platform::rseq_cpu_start;

constexpr size_t kObj = 64;

cp_qmempool *make_pool() {
  cp_qmempool *p = nullptr;
  if (cp_qmempool_create(&p, 512, 4096, 1024, kObj, nullptr) != 0) std::abort();
  return p;
}
cp_qmempool *g_pool = make_pool();

// ---- bounds --------------------------------------------------------------------------------
struct alignas(64) plain_cpu {
  long top;
  void *slots[512];
};
std::unique_ptr<plain_cpu[]> g_plain(new plain_cpu[cp_nr_cpu_ids()]());
void *plain_pop() {
  int cpu = rseq_cpu_start();
  plain_cpu &c = g_plain[cpu < 0 ? 0 : cpu];
  return c.top > 0 ? c.slots[--c.top] : std::malloc(kObj);
}
void plain_push(void *p) {
  int cpu = rseq_cpu_start();
  plain_cpu &c = g_plain[cpu < 0 ? 0 : cpu];
  if (c.top < 512)
    c.slots[c.top++] = p;
  else
    std::free(p);
}
thread_local struct {
  long top;
  void *slots[512];
} t_private;
void *private_pop() {
  return t_private.top > 0 ? t_private.slots[--t_private.top] : std::malloc(kObj);
}
void private_push(void *p) {
  if (t_private.top < 512)
    t_private.slots[t_private.top++] = p;
  else
    std::free(p);
}

// ---- W1 fast path -------------------------------------------------------------------------
void BM_W1_Qmempool(benchmark::State &s) {
  for (auto _ : s) {
    void *p = cp_qmempool_alloc(g_pool);
    benchmark::DoNotOptimize(p);
    static_cast<char *>(p)[0] = 1;  // touch
    cp_qmempool_free(g_pool, p);
  }
}
void BM_W1_Malloc(benchmark::State &s) {
  for (auto _ : s) {
    void *p = std::malloc(kObj);
    benchmark::DoNotOptimize(p);
    static_cast<char *>(p)[0] = 1;
    std::free(p);
  }
}
void BM_W1_PerCpuArrayBound(benchmark::State &s) {
  for (auto _ : s) {
    void *p = plain_pop();
    benchmark::DoNotOptimize(p);
    static_cast<char *>(p)[0] = 1;
    plain_push(p);
  }
}
void BM_W1_ThreadPrivateArrayBound(benchmark::State &s) {
  for (auto _ : s) {
    void *p = private_pop();
    benchmark::DoNotOptimize(p);
    static_cast<char *>(p)[0] = 1;
    private_push(p);
  }
}
BENCHMARK(BM_W1_Qmempool);
BENCHMARK(BM_W1_Malloc);
BENCHMARK(BM_W1_PerCpuArrayBound);
BENCHMARK(BM_W1_ThreadPrivateArrayBound);

// ---- W2 N(256): time per alloc+free pair --------------------------------------------------
template <void *(*Alloc)(), void (*Free)(void *)>
void n256(benchmark::State &s) {
  void *v[256];
  for (auto _ : s) {
    for (int i = 0; i < 256; i++) {
      v[i] = Alloc();
      static_cast<char *>(v[i])[0] = 1;
    }
    benchmark::ClobberMemory();
    for (int i = 255; i >= 0; i--) Free(v[i]);
  }
  s.counters["per_pair"] = benchmark::Counter(
      256, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
void *q_alloc() {
  return cp_qmempool_alloc(g_pool);
}
void q_free(void *p) {
  cp_qmempool_free(g_pool, p);
}
void *m_alloc() {
  return std::malloc(kObj);
}
void m_free(void *p) {
  std::free(p);
}
void BM_W2_Qmempool(benchmark::State &s) {
  n256<q_alloc, q_free>(s);
}
void BM_W2_Malloc(benchmark::State &s) {
  n256<m_alloc, m_free>(s);
}
void BM_W2_PerCpuArrayBound(benchmark::State &s) {
  n256<plain_pop, plain_push>(s);
}
void BM_W2_QmempoolBulk(benchmark::State &s) {
  void *v[256];
  for (auto _ : s) {
    int got = cp_qmempool_alloc_bulk(g_pool, v, 256);
    for (int i = 0; i < got; i++) static_cast<char *>(v[i])[0] = 1;
    benchmark::ClobberMemory();
    cp_qmempool_free_bulk(g_pool, v, got);
  }
  s.counters["per_pair"] = benchmark::Counter(
      256, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_W2_Qmempool);
BENCHMARK(BM_W2_QmempoolBulk);
BENCHMARK(BM_W2_Malloc);
BENCHMARK(BM_W2_PerCpuArrayBound);

// ---- W3 cross-thread: thread 0 allocates and sends, thread 1 receives and frees -----------
cp_alf_queue *g_ring = nullptr;
template <bool Pool, bool Malloc>
void w3(benchmark::State &s) {
  if (s.thread_index() == 0) cp_alf_queue_alloc(&g_ring, 1024);
  static int dummy;
  for (auto _ : s) {
    if (s.thread_index() == 0) {
      void *p = Pool ? cp_qmempool_alloc(g_pool) : Malloc ? std::malloc(kObj) : &dummy;
      static_cast<char *>(p)[0] = 1;
      while (cp_alf_sp_enqueue(g_ring, &p, 1) != 1) {
      }
    } else {
      void *p;
      while (cp_alf_sc_dequeue(g_ring, &p, 1) != 1) {
      }
      if (Pool) cp_qmempool_free(g_pool, p);
      if (Malloc) std::free(p);
    }
  }
  if (s.thread_index() == 0) {
    // both threads ran the same number of iterations: the ring is empty again
    cp_alf_queue_free(g_ring);
  }
}
void BM_W3_Qmempool(benchmark::State &s) {
  w3<true, false>(s);
}
void BM_W3_Malloc(benchmark::State &s) {
  w3<false, true>(s);
}
void BM_W3_RingAloneBound(benchmark::State &s) {
  w3<false, false>(s);
}
BENCHMARK(BM_W3_Qmempool)->Threads(2)->UseRealTime();
BENCHMARK(BM_W3_Malloc)->Threads(2)->UseRealTime();
BENCHMARK(BM_W3_RingAloneBound)->Threads(2)->UseRealTime();

// ---- W4/W5: fast path on T threads (aggregate items_per_second) ---------------------------
void BM_W45_Qmempool(benchmark::State &s) {
  for (auto _ : s) {
    void *p = cp_qmempool_alloc(g_pool);
    benchmark::DoNotOptimize(p);
    static_cast<char *>(p)[0] = 1;
    cp_qmempool_free(g_pool, p);
  }
  s.SetItemsProcessed(s.iterations());
}
void BM_W45_Malloc(benchmark::State &s) {
  for (auto _ : s) {
    void *p = std::malloc(kObj);
    benchmark::DoNotOptimize(p);
    static_cast<char *>(p)[0] = 1;
    std::free(p);
  }
  s.SetItemsProcessed(s.iterations());
}
BENCHMARK(BM_W45_Qmempool)->Threads(1)->Threads(2)->Threads(8)->Threads(32)->UseRealTime();
BENCHMARK(BM_W45_Malloc)->Threads(1)->Threads(2)->Threads(8)->Threads(32)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
