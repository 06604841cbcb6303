// rte_mempool get/put through the DPDK API on three mempool ops drivers: corepool (this
// project's, linked in), ring_mp_mc and stack (DPDK's, loaded by the EAL from its driver
// directory). One operation = rte_mempool_get_bulk(n) + rte_mempool_put_bulk(n); the
// reported rate is objects per second, so 1e9 / rate is ns per object
// get+put. Cache 0 sends every call to the ops driver; with cache 256 the per-lcore cache
// absorbs most calls. 1 and 2 threads on the same pool. Counters: Mobj_per_s (all threads),
// ns_per_obj (per thread), fails (get_bulk calls that found the pool empty).
//
//   build/release/bench/bench_dpdk_mempool --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true   (COREPOOL_DPDK_BENCH_SECONDS=0.25 a run)
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include <cstdio>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>

namespace {

constexpr unsigned kPoolSize = 16383;  // as testpmd's --total-num-mbufs=16384 pool
constexpr unsigned kEltSize = 64;
const char *const kOps[] = {"corepool", "ring_mp_mc", "stack"};
const unsigned kCaches[] = {0, 256};

rte_mempool *g_pools[3][2];

rte_mempool *make_pool(const char *ops, unsigned cache) {
  std::string name = std::string("b_") + ops + "_" + std::to_string(cache);
  rte_mempool *mp =
      rte_mempool_create_empty(name.c_str(), kPoolSize, kEltSize, cache, 0, SOCKET_ID_ANY, 0);
  if (!mp) return nullptr;
  if (rte_mempool_set_ops_byname(mp, ops, nullptr) != 0 || rte_mempool_populate_default(mp) < 0) {
    rte_mempool_free(mp);
    return nullptr;
  }
  return mp;
}

// Each case runs its own threads for a fixed time (kSeconds) and reports objects per
// second: a driver that spin-waits on a preempted thread (ring_mp_mc does, on this shared
// 2-core machine) makes a case slow, never makes the benchmark hang. Thread i is pinned to
// CPU i like an EAL lcore and registered with rte_thread_register, so that
// rte_mempool_get_bulk finds a per-lcore cache when the pool has one.
double g_seconds = 0.25;

struct result {
  uint64_t objs = 0, fails = 0;
};

void worker(rte_mempool *mp, unsigned bulk, unsigned cpu, const std::atomic<bool> &go,
            const std::atomic<bool> &stop, result &res, std::atomic<int> &ready) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  const bool registered = rte_thread_register() == 0;
  ready.fetch_add(registered ? 1 : -1000);
  while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
  void *objs[64];
  uint64_t n = 0, fails = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    for (int k = 0; k < 16; k++) {
      if (rte_mempool_get_bulk(mp, objs, bulk) != 0) {
        fails++;
        continue;
      }
      benchmark::DoNotOptimize(objs[0]);
      rte_mempool_put_bulk(mp, objs, bulk);
      n += bulk;
    }
  }
  res.objs = n;
  res.fails = fails;
  if (registered) rte_thread_unregister();
}

void BM_GetPut(benchmark::State &state) {
  const int op = static_cast<int>(state.range(0));
  const int ci = static_cast<int>(state.range(1));
  const unsigned bulk = static_cast<unsigned>(state.range(2));
  const unsigned nthreads = static_cast<unsigned>(state.range(3));
  rte_mempool *mp = g_pools[op][ci];
  const unsigned ncpu = std::max(1u, std::thread::hardware_concurrency());
  uint64_t objs = 0, fails = 0;
  double secs = 0;
  for (auto _ : state) {
    std::atomic<bool> go{false}, stop{false};
    std::atomic<int> ready{0};
    std::vector<result> res(nthreads);
    std::vector<std::thread> th;
    for (unsigned t = 0; t < nthreads; t++)
      th.emplace_back(worker, mp, bulk, t % ncpu, std::cref(go), std::cref(stop), std::ref(res[t]),
                      std::ref(ready));
    while (ready.load() != static_cast<int>(nthreads) && ready.load() >= 0)
      std::this_thread::yield();
    if (ready.load() < 0) {
      stop = go = true;
      for (std::thread &t : th) t.join();
      state.SkipWithError("rte_thread_register failed");
      return;
    }
    auto t0 = std::chrono::steady_clock::now();
    go.store(true, std::memory_order_release);
    std::this_thread::sleep_for(std::chrono::duration<double>(g_seconds));
    stop.store(true, std::memory_order_relaxed);
    for (std::thread &t : th) t.join();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(dt);
    secs += dt;
    for (const result &r : res) {
      objs += r.objs;
      fails += r.fails;
    }
  }
  // Objects (get+put pairs) per second, over all threads; ns_per_obj is per thread.
  state.counters["Mobj_per_s"] = objs / secs / 1e6;
  state.counters["ns_per_obj"] = secs * 1e9 * nthreads / std::max<uint64_t>(objs, 1);
  state.counters["fails"] = static_cast<double>(fails);
  state.SetLabel(std::string(kOps[op]) + " cache=" + std::to_string(kCaches[ci]) +
                 " bulk=" + std::to_string(bulk) + " threads=" + std::to_string(nthreads));
}

void args(benchmark::internal::Benchmark *b) {
  for (int ci = 0; ci < 2; ci++)
    for (int bulk : {1, 32})
      for (int threads : {1, 2})
        for (int op = 0; op < 3; op++) b->Args({op, ci, bulk, threads});
  b->ArgNames({"ops", "cache", "bulk", "threads"});
  b->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_GetPut)->Apply(args);

}  // namespace

int main(int argc, char **argv) {
  std::string prefix = "--file-prefix=cpbench" + std::to_string(getpid());
  std::vector<std::string> eal = {
      "bench_dpdk_mempool", "--no-huge", "-m", "512",  "--no-pci",
      "--no-shconf",        "-l",        "0",  prefix, "--log-level=pmd.mempool.corepool:warning"};
  std::vector<char *> eargv;
  for (std::string &a : eal) eargv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eargv.size()), eargv.data()) < 0) {
    std::fprintf(stderr, "rte_eal_init: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  for (int op = 0; op < 3; op++)
    for (int ci = 0; ci < 2; ci++)
      if (!(g_pools[op][ci] = make_pool(kOps[op], kCaches[ci]))) {
        std::fprintf(stderr, "cannot create a pool on %s: %s\n", kOps[op], rte_strerror(rte_errno));
        return 1;
      }
  if (const char *e = getenv("COREPOOL_DPDK_BENCH_SECONDS")) g_seconds = atof(e);
  benchmark::AddCustomContext("ops", "0=corepool 1=ring_mp_mc 2=stack");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (auto &row : g_pools)
    for (rte_mempool *mp : row) rte_mempool_free(mp);
  rte_eal_cleanup();
  return 0;
}
