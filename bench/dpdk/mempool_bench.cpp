// rte_mempool get/put through the DPDK API on three mempool ops drivers: corepool (this
// project's, linked in), ring_mp_mc and stack (DPDK's, loaded by the EAL from its driver
// directory). One iteration = rte_mempool_get_bulk(n) + rte_mempool_put_bulk(n); the
// reported rate is objects per second (items_per_second), so 1e9 / rate is ns per object
// get+put. Cache 0 sends every call to the ops driver; with cache 256 the per-lcore cache
// absorbs most calls (benchmark threads register as EAL threads with rte_thread_register so
// that they have one). 1 and 2 threads on the same pool.
//
//   build/release/bench/bench_dpdk_mempool --benchmark_repetitions=5 \
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <unistd.h>

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

// Benchmark threads other than the main one are not EAL threads: register them so that
// rte_mempool_get_bulk finds a per-lcore cache (cache 256), as an lcore would.
struct lcore_registration {
  bool registered = false;
  lcore_registration() {
    if (rte_lcore_id() == LCORE_ID_ANY) registered = rte_thread_register() == 0;
  }
  ~lcore_registration() {
    if (registered) rte_thread_unregister();
  }
};

void BM_GetPut(benchmark::State &state) {
  const int op = static_cast<int>(state.range(0));
  const int ci = static_cast<int>(state.range(1));
  const unsigned bulk = static_cast<unsigned>(state.range(2));
  rte_mempool *mp = g_pools[op][ci];
  lcore_registration reg;
  if (kCaches[ci] != 0 && !reg.registered && rte_lcore_id() == LCORE_ID_ANY) {
    state.SkipWithError("rte_thread_register failed");
    return;
  }
  void *objs[64];
  uint64_t fails = 0;
  for (auto _ : state) {
    if (rte_mempool_get_bulk(mp, objs, bulk) != 0) {
      fails++;
      continue;
    }
    benchmark::DoNotOptimize(objs[0]);
    rte_mempool_put_bulk(mp, objs, bulk);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() - fails) * bulk);
  state.counters["fails"] = static_cast<double>(fails);
  state.SetLabel(std::string(kOps[op]) + " cache=" + std::to_string(kCaches[ci]) +
                 " bulk=" + std::to_string(bulk));
}

void args(benchmark::internal::Benchmark *b) {
  for (int ci = 0; ci < 2; ci++)
    for (int bulk : {1, 32})
      for (int op = 0; op < 3; op++) b->Args({op, ci, bulk});
  b->ArgNames({"ops", "cache", "bulk"});
  b->Threads(1)->Threads(2)->UseRealTime();
}
BENCHMARK(BM_GetPut)->Apply(args);

}  // namespace

int main(int argc, char **argv) {
  std::string prefix = "--file-prefix=cpbench" + std::to_string(getpid());
  std::vector<std::string> eal = {"bench_dpdk_mempool", "--no-huge", "-m", "512", "--no-pci",
                                  "--no-shconf", "-l", "0", prefix,
                                  "--log-level=pmd.mempool.corepool:warning"};
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
