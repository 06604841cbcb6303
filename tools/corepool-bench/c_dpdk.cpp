// DPDK rte_mempool contenders. EAL is initialised in this process on first use, without
// hugepages, PCI or shared config (--no-huge -m 512 --no-pci --no-shconf; DPDK 22.11 refuses
// --in-memory with --no-huge, which implies legacy memory), with a file prefix of its own and
// only the ring and stack mempool drivers loaded. Variants:
//   dpdk-{ring,stack}-c256-lcore   per-lcore cache of 256, each worker thread registered as an
//                                  EAL lcore (rte_thread_register) so rte_mempool_get uses it
//   dpdk-{ring,stack}-c256-ucache  cache of 256 owned by each worker thread
//                                  (rte_mempool_cache_create + rte_mempool_generic_get/put)
//   dpdk-{ring,stack}-nocache      no cache: every get/put goes to the ring / stack
// "ring" = the default ops ring_mp_mc, "stack" = the lock-based "stack" ops.
#include "bench.h"

#ifdef CPB_HAVE_DPDK
#include <pthread.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mempool.h>
#include <rte_version.h>
#include <unistd.h>

#include <mutex>
#endif

namespace cpb {
namespace {

const std::vector<std::string> kDpdkVariants = {"dpdk-ring-c256-lcore",   "dpdk-ring-c256-ucache",
                                                "dpdk-ring-nocache",      "dpdk-stack-c256-lcore",
                                                "dpdk-stack-c256-ucache", "dpdk-stack-nocache"};

#ifdef CPB_HAVE_DPDK

#ifndef CPB_DPDK_PMD_DIR
#define CPB_DPDK_PMD_DIR ""
#endif

std::once_flag g_eal_once;
std::string g_eal_error = "not initialised";

void eal_init() {
  // EAL pins the calling thread to its main lcore; threads created later would inherit that,
  // so the affinity is saved here and restored after init.
  cpu_set_t saved;
  CPU_ZERO(&saved);
  pthread_getaffinity_np(pthread_self(), sizeof saved, &saved);
  std::vector<std::string> args = {"corepool-bench",
                                   "--no-huge",
                                   "-m",
                                   "512",
                                   "--no-pci",
                                   "--no-shconf",
                                   "--no-telemetry",
                                   "-l",
                                   "0",
                                   "--log-level",
                                   "*:error",
                                   "--file-prefix=cpbench" + std::to_string(getpid())};
  std::string dir = CPB_DPDK_PMD_DIR;
  if (!dir.empty()) {
    // Only the two mempool drivers, not the whole driver directory.
    args.push_back("-d");
    args.push_back(dir + "/librte_mempool_ring.so");
    args.push_back("-d");
    args.push_back(dir + "/librte_mempool_stack.so");
  }
  std::vector<char *> av;
  for (auto &a : args) av.push_back(a.data());
  av.push_back(nullptr);
  // EAL prints to stderr; keep the progress line readable.
  int rc = rte_eal_init(int(av.size() - 1), av.data());
  pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
  if (rc < 0) {
    g_eal_error = std::string("rte_eal_init failed: ") + rte_strerror(rte_errno);
    return;
  }
  g_eal_error.clear();
}

std::atomic<unsigned> g_pool_seq{0};

template <bool Ring, int Cache, bool UserCache>
struct Dpdk {
  // rte_mempool_free releases every object, outstanding or not (see burst() in bench.h).
  static constexpr bool abandon_on_stop = true;
  rte_mempool *mp = nullptr;
  static thread_local rte_mempool_cache *t_cache;
  ~Dpdk() {
    if (mp) rte_mempool_free(mp);
  }
  static std::unique_ptr<Dpdk> create(const Params &p, std::string &err) {
    std::call_once(g_eal_once, eal_init);
    if (!g_eal_error.empty()) return err = g_eal_error, nullptr;
    auto c = std::make_unique<Dpdk>();
    std::string name = "cpb" + std::to_string(g_pool_seq.fetch_add(1));
    // The mempool's own cache is used only by registered lcores; the ucache variant creates
    // the pool without one and gives each thread its own.
    unsigned cache = (Cache > 0 && !UserCache) ? unsigned(Cache) : 0;
    c->mp = rte_mempool_create_empty(name.c_str(), p.capacity, unsigned(p.size), cache, 0,
                                     SOCKET_ID_ANY, 0);
    if (!c->mp)
      return err = std::string("rte_mempool_create_empty: ") + rte_strerror(rte_errno), nullptr;
    int rc = rte_mempool_set_ops_byname(c->mp, Ring ? "ring_mp_mc" : "stack", nullptr);
    if (rc != 0)
      return err = std::string("rte_mempool_set_ops_byname(") + (Ring ? "ring_mp_mc" : "stack") +
                   "): " + rte_strerror(-rc) + " (mempool driver not loaded)",
             nullptr;
    rc = rte_mempool_populate_default(c->mp);
    if (rc < 0)
      return err = std::string("rte_mempool_populate_default: ") + rte_strerror(-rc), nullptr;
    return c;
  }
  void thread_init() {
    if constexpr (UserCache) {
      t_cache = rte_mempool_cache_create(Cache, SOCKET_ID_ANY);
    } else if constexpr (Cache > 0) {
      (void)rte_thread_register();  // on failure the thread runs uncached (LCORE_ID_ANY)
    }
  }
  void thread_fini() {
    if constexpr (UserCache) {
      if (t_cache) {
        rte_mempool_cache_flush(t_cache, mp);
        rte_mempool_cache_free(t_cache);
        t_cache = nullptr;
      }
    } else if constexpr (Cache > 0) {
      // Give the lcore's cached objects back before the id is reused by another thread.
      rte_mempool_cache *c = rte_mempool_default_cache(mp, rte_lcore_id());
      if (c) rte_mempool_cache_flush(c, mp);
      rte_thread_unregister();
    }
  }
  void *get() {
    void *o;
    if constexpr (UserCache) {
      return rte_mempool_generic_get(mp, &o, 1, t_cache) == 0 ? o : nullptr;
    } else {
      return rte_mempool_get(mp, &o) == 0 ? o : nullptr;
    }
  }
  void put(void *o) {
    if constexpr (UserCache) {
      rte_mempool_generic_put(mp, &o, 1, t_cache);
    } else {
      rte_mempool_put(mp, o);
    }
  }
};
template <bool Ring, int Cache, bool UserCache>
thread_local rte_mempool_cache *Dpdk<Ring, Cache, UserCache>::t_cache = nullptr;

void reg() {
  const std::string base = std::string(rte_version()) +
                           ", EAL --no-huge -m 512 --no-pci "
                           "--no-shconf -l 0, ";
  add_inproc<Dpdk<true, 256, false>>(kDpdkVariants[0], "dpdk", Kind::peer,
                                     base + "ring_mp_mc, cache 256, workers registered as lcores");
  add_inproc<Dpdk<true, 256, true>>(kDpdkVariants[1], "dpdk", Kind::peer,
                                    base + "ring_mp_mc, per-thread rte_mempool_cache_create(256)");
  add_inproc<Dpdk<true, 0, false>>(kDpdkVariants[2], "dpdk", Kind::peer,
                                   base + "ring_mp_mc, no cache");
  add_inproc<Dpdk<false, 256, false>>(kDpdkVariants[3], "dpdk", Kind::peer,
                                      base + "stack ops, cache 256, workers registered as lcores");
  add_inproc<Dpdk<false, 256, true>>(kDpdkVariants[4], "dpdk", Kind::peer,
                                     base + "stack ops, per-thread rte_mempool_cache_create(256)");
  add_inproc<Dpdk<false, 0, false>>(kDpdkVariants[5], "dpdk", Kind::peer,
                                    base + "stack ops, no cache");
}
#else
void reg() {
  for (const std::string &n : kDpdkVariants)
    add_missing(n, "dpdk", Kind::peer, kPoolWorkloads,
                "DPDK not found at build time (install libdpdk-dev) or disabled "
                "(COREPOOL_BENCH_DPDK=OFF, sanitizer builds)");
}
#endif
Registrar r(reg);

}  // namespace
}  // namespace cpb
