// The W3 hand-over timed by the TSC, so that a busy machine moves only the outliers:
//
//  lockstep (default)  a producer pinned to one CPU gets K objects and writes a byte of each,
//                      then a consumer pinned to another CPU reads the byte and puts each one
//                      back; they take turns for `phases` rounds. Only the get and put loops
//                      are timed: the median round is each side's cost per object, alone.
//  --stream            both at once, as in corepool-bench's W3: the producer passes each object
//                      through an SPSC ring of 1024 slots to the consumer, for phases x K
//                      objects. Each side stamps the TSC every K objects; the figure is the
//                      median of those chunks (cycles per object, the slower side's, which is
//                      the rate of the whole hand-over). A chunk in which either thread was
//                      preempted is an outlier, so the median holds on a loaded machine where
//                      corepool-bench's wall-clock W3 moves by 2-10x.
//
//   bench_handoff_lockstep objpool|qmempool|bound|dpdk-ring|dpdk-stack [--cpus A,B] [--k K]
//                          [--phases N] [--no-read] [--stream]
//
// bound: no pool, objects handed out in address order from an array of 32768 (the cost of
// the object lines and, with --stream, of the ring). dpdk-ring / dpdk-stack: an
// rte_mempool of 32768 objects with ring_mp_mc or stack ops and a cache of 256 owned by each
// thread (rte_mempool_cache_create, rte_mempool_generic_get / put), as corepool-bench's
// dpdk-*-c256-ucache contenders; built only where DPDK is. qmempool: localq 256, sharedq and
// prealloc 32768; objpool: 32768 objects. --no-read: the consumer puts objects without
// touching them. Prints the median and 90th percentile cycles per object.
#include <corepool/objpool.h>
#include <corepool/qmempool.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#ifdef CP_HANDOFF_DPDK
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mempool.h>
#endif

namespace {

constexpr unsigned kObjs = 32768;
constexpr unsigned kRing = 1024;

bool pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  return pthread_setaffinity_np(pthread_self(), sizeof(s), &s) == 0;
}

double at(std::vector<uint64_t> v, double q, int k) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return double(v[static_cast<size_t>(q * double(v.size() - 1))]) / k;
}

// Lamport ring, one producer and one consumer (the shape of corepool-bench's W3 ring).
class spsc {
 public:
  bool push(void *p) noexcept {
    const uint64_t h = head_.load(std::memory_order_relaxed);
    if (h - tail_cache_ == kRing) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (h - tail_cache_ == kRing) return false;
    }
    slots_[h % kRing] = p;
    head_.store(h + 1, std::memory_order_release);
    return true;
  }
  void *pop() noexcept {
    const uint64_t t = tail_.load(std::memory_order_relaxed);
    if (t == head_cache_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (t == head_cache_) return nullptr;
    }
    void *p = slots_[t % kRing];
    tail_.store(t + 1, std::memory_order_release);
    return p;
  }

 private:
  void *slots_[kRing];
  alignas(64) std::atomic<uint64_t> head_{0};
  uint64_t tail_cache_ = 0;
  alignas(64) std::atomic<uint64_t> tail_{0};
  alignas(64) uint64_t head_cache_ = 0;
};

struct contender {
  cp_objpool *op = nullptr;
  cp_qmempool *qp = nullptr;
  std::vector<void *> arr;
  std::vector<char> slab;
  unsigned next = 0;
#ifdef CP_HANDOFF_DPDK
  rte_mempool *mp = nullptr;
  static inline thread_local rte_mempool_cache *cache = nullptr;
#endif

  bool create(const std::string &which) {
    if (which == "objpool") return cp_objpool_init(&op, kObjs, 64, nullptr, nullptr, nullptr) == 0;
    if (which == "qmempool") return cp_qmempool_create(&qp, 256, kObjs, kObjs, 64, nullptr) == 0;
    if (which == "bound") {
      slab.resize(size_t{kObjs} * 64 + 64);
      char *base =
          reinterpret_cast<char *>((reinterpret_cast<uintptr_t>(slab.data()) + 63) & ~63ull);
      arr.resize(kObjs);
      for (unsigned i = 0; i < kObjs; i++) arr[i] = base + 64 * i;
      return true;
    }
#ifdef CP_HANDOFF_DPDK
    if (which == "dpdk-ring" || which == "dpdk-stack") {
      std::string prefix = "--file-prefix=cphandoff" + std::to_string(getpid());
      std::vector<std::string> eal = {
          "bench_handoff_lockstep", "--no-huge", "-m", "512",         "--no-pci", "--no-shconf",
          "--no-telemetry",         "-l",        "0",  "--log-level", "*:error",  prefix};
      std::vector<char *> av;
      for (std::string &a : eal) av.push_back(a.data());
      cpu_set_t saved;  // EAL pins this thread to lcore 0; the workers pin themselves
      pthread_getaffinity_np(pthread_self(), sizeof saved, &saved);
      if (rte_eal_init(static_cast<int>(av.size()), av.data()) < 0) {
        std::fprintf(stderr, "rte_eal_init: %s\n", rte_strerror(rte_errno));
        return false;
      }
      pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
      mp = rte_mempool_create_empty("handoff", kObjs, 64, 0, 0, SOCKET_ID_ANY, 0);
      if (!mp ||
          rte_mempool_set_ops_byname(mp, which == "dpdk-ring" ? "ring_mp_mc" : "stack", nullptr) !=
              0 ||
          rte_mempool_populate_default(mp) < 0) {
        std::fprintf(stderr, "rte_mempool for %s: %s\n", which.c_str(), rte_strerror(rte_errno));
        return false;
      }
      return true;
    }
#endif
    std::fprintf(stderr, "unknown or absent contender %s\n", which.c_str());
    return false;
  }
  void thread_init() {
#ifdef CP_HANDOFF_DPDK
    if (mp) cache = rte_mempool_cache_create(256, SOCKET_ID_ANY);
#endif
  }
  void thread_fini() {
#ifdef CP_HANDOFF_DPDK
    if (mp && cache) {
      rte_mempool_cache_flush(cache, mp);
      rte_mempool_cache_free(cache);
      cache = nullptr;
    }
#endif
  }
  void *get() {
    if (op) return cp_objpool_pop(op);
    if (qp) return cp_qmempool_alloc(qp);
#ifdef CP_HANDOFF_DPDK
    if (mp) {
      void *o;
      return rte_mempool_generic_get(mp, &o, 1, cache) == 0 ? o : nullptr;
    }
#endif
    return arr[next++ % kObjs];
  }
  void put(void *p) {
    if (op)
      (void)cp_objpool_push(p, op);
    else if (qp)
      cp_qmempool_free(qp, p);
#ifdef CP_HANDOFF_DPDK
    else if (mp)
      rte_mempool_generic_put(mp, &p, 1, cache);
#endif
  }
  void destroy() {
    if (op) cp_objpool_free(op);
    if (qp) cp_qmempool_destroy(qp);
#ifdef CP_HANDOFF_DPDK
    if (mp) {
      rte_mempool_free(mp);
      rte_eal_cleanup();
    }
#endif
  }
};

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s objpool|qmempool|bound|dpdk-ring|dpdk-stack [--cpus A,B] [--k K] "
                 "[--phases N] [--no-read] [--stream]\n",
                 argv[0]);
    return 2;
  }
  const std::string which = argv[1];
  int c0 = 0, c1 = 1, k = 1024, phases = 3000;
  bool read = true, stream = false;
  for (int i = 2; i < argc; i++) {
    if (!std::strcmp(argv[i], "--cpus") && i + 1 < argc) {
      std::sscanf(argv[++i], "%d,%d", &c0, &c1);
    } else if (!std::strcmp(argv[i], "--k") && i + 1 < argc) {
      k = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--phases") && i + 1 < argc) {
      phases = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--no-read")) {
      read = false;
    } else if (!std::strcmp(argv[i], "--stream")) {
      stream = true;
    } else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (k < 1 || k > int(kObjs) / 2 || phases < 1) return 2;
  contender c;
  if (!c.create(which)) return 1;
  std::vector<void *> buf(k);
  std::vector<uint64_t> tg, tp;
  tg.reserve(phases);
  tp.reserve(phases);
  std::atomic<int> turn{0};
  std::atomic<bool> pinned{true};
  spsc ring;
  unsigned failures = 0;
  std::thread producer([&] {
    if (!pin(c0)) pinned.store(false, std::memory_order_relaxed);
    c.thread_init();
    for (int ph = 0; ph < phases; ph++) {
      if (!stream)
        while (turn.load(std::memory_order_acquire) != 0) sched_yield();
      const uint64_t a = __rdtsc();
      for (int i = 0; i < k; i++) {
        void *p = c.get();
        while (!p) {  // a pool whose objects are all in flight (never with 32768)
          failures++;
          p = c.get();
        }
        *static_cast<volatile char *>(p) = static_cast<char>(i);
        if (stream) {
          while (!ring.push(p)) _mm_pause();
        } else {
          buf[i] = p;
        }
      }
      tg.push_back(__rdtsc() - a);
      if (!stream) turn.store(1, std::memory_order_release);
    }
    c.thread_fini();
  });
  std::thread consumer([&] {
    if (!pin(c1)) pinned.store(false, std::memory_order_relaxed);
    c.thread_init();
    for (int ph = 0; ph < phases; ph++) {
      if (!stream)
        while (turn.load(std::memory_order_acquire) != 1) sched_yield();
      const uint64_t a = __rdtsc();
      for (int i = 0; i < k; i++) {
        void *p;
        if (stream) {
          while (!(p = ring.pop())) _mm_pause();
        } else {
          p = buf[i];
        }
        if (read) (void)*static_cast<volatile char *>(p);
        c.put(p);
      }
      tp.push_back(__rdtsc() - a);
      if (!stream) turn.store(0, std::memory_order_release);
    }
    c.thread_fini();
  });
  producer.join();
  consumer.join();
  const bool pin_ok = pinned.load(std::memory_order_relaxed);
  if (stream) {
    // The rate of the hand-over is the slower side's; the two sides' medians differ only
    // by the time one of them spends waiting on the ring.
    std::printf(
        "%s cpus %d,%d k %d chunks %d stream%s%s: %.1f cycles/object (median chunk; get side "
        "%.1f put side %.1f), p90 %.1f\n",
        which.c_str(), c0, c1, k, phases, read ? "" : " no-read", pin_ok ? "" : " (NOT PINNED)",
        std::max(at(tg, 0.5, k), at(tp, 0.5, k)), at(tg, 0.5, k), at(tp, 0.5, k),
        std::max(at(tg, 0.9, k), at(tp, 0.9, k)));
  } else {
    std::printf(
        "%s cpus %d,%d k %d phases %d%s%s: get %.1f put %.1f cycles/object (median), "
        "p90 get %.1f put %.1f\n",
        which.c_str(), c0, c1, k, phases, read ? "" : " no-read", pin_ok ? "" : " (NOT PINNED)",
        at(tg, 0.5, k), at(tp, 0.5, k), at(tg, 0.9, k), at(tp, 0.9, k));
  }
  if (failures) std::printf("  (%u gets found the pool empty)\n", failures);
  c.destroy();
  return 0;
}
