// The W3 hand-over in lockstep: a producer pinned to one CPU gets K objects and writes a byte
// of each, then a consumer pinned to another CPU reads the byte and puts each one back; they
// take turns for `phases` rounds. Only the get and put loops are timed (TSC), so a round
// preempted by other load is an outlier and the median round stays put on a busy machine;
// corepool-bench's W3, where both sides run at once, is the figure to compare with peers.
//
//   bench_handoff_lockstep objpool|qmempool|bound [--cpus A,B] [--k K] [--phases N] [--no-read]
//
// bound: no pool, objects handed out in address order from an array of 32768 (the cost of
// the object lines alone). --no-read: the consumer puts objects without touching them.
// Prints the median and 90th percentile cycles per object of the get and the put rounds.
#include <corepool/objpool.h>
#include <corepool/qmempool.h>
#include <pthread.h>
#include <sched.h>
#include <x86intrin.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr unsigned kObjs = 32768;

bool pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  return pthread_setaffinity_np(pthread_self(), sizeof(s), &s) == 0;
}

double at(std::vector<uint64_t> v, double q, int k) {
  std::sort(v.begin(), v.end());
  return double(v[static_cast<size_t>(q * double(v.size() - 1))]) / k;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s objpool|qmempool|bound [--cpus A,B] [--k K] [--phases N] "
                 "[--no-read]\n",
                 argv[0]);
    return 2;
  }
  const std::string which = argv[1];
  int c0 = 0, c1 = 1, k = 1024, phases = 3000;
  bool read = true;
  for (int i = 2; i < argc; i++) {
    if (!std::strcmp(argv[i], "--cpus") && i + 1 < argc) {
      std::sscanf(argv[++i], "%d,%d", &c0, &c1);
    } else if (!std::strcmp(argv[i], "--k") && i + 1 < argc) {
      k = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--phases") && i + 1 < argc) {
      phases = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--no-read")) {
      read = false;
    } else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (k < 1 || k > int(kObjs) / 2 || phases < 1) return 2;
  cp_objpool *op = nullptr;
  cp_qmempool *qp = nullptr;
  std::vector<void *> arr(kObjs);
  std::vector<char> slab;
  size_t next = 0;
  if (which == "objpool") {
    if (cp_objpool_init(&op, kObjs, 64, nullptr, nullptr, nullptr) != 0) return 1;
  } else if (which == "qmempool") {
    if (cp_qmempool_create(&qp, 256, kObjs, kObjs, 64, nullptr) != 0) return 1;
  } else if (which == "bound") {
    slab.resize(size_t{kObjs} * 64 + 64);
    char *base = reinterpret_cast<char *>((reinterpret_cast<uintptr_t>(slab.data()) + 63) & ~63ull);
    for (unsigned i = 0; i < kObjs; i++) arr[i] = base + 64 * i;
  } else {
    std::fprintf(stderr, "unknown pool %s\n", which.c_str());
    return 2;
  }
  auto get = [&]() -> void * {
    if (op) return cp_objpool_pop(op);
    if (qp) return cp_qmempool_alloc(qp);
    return arr[next++ & (kObjs - 1)];
  };
  auto put = [&](void *p) {
    if (op)
      (void)cp_objpool_push(p, op);
    else if (qp)
      cp_qmempool_free(qp, p);
  };
  std::vector<void *> buf(k);
  std::vector<uint64_t> tg, tp;
  std::atomic<int> turn{0};
  bool pinned = true;
  std::thread producer([&] {
    pinned = pin(c0) && pinned;
    for (int ph = 0; ph < phases; ph++) {
      while (turn.load(std::memory_order_acquire) != 0) sched_yield();
      const uint64_t a = __rdtsc();
      for (int i = 0; i < k; i++) {
        void *p = get();
        *static_cast<volatile char *>(p) = static_cast<char>(i);
        buf[i] = p;
      }
      tg.push_back(__rdtsc() - a);
      turn.store(1, std::memory_order_release);
    }
  });
  std::thread consumer([&] {
    pinned = pin(c1) && pinned;
    for (int ph = 0; ph < phases; ph++) {
      while (turn.load(std::memory_order_acquire) != 1) sched_yield();
      const uint64_t a = __rdtsc();
      for (int i = 0; i < k; i++) {
        void *p = buf[i];
        if (read) (void)*static_cast<volatile char *>(p);
        put(p);
      }
      tp.push_back(__rdtsc() - a);
      turn.store(0, std::memory_order_release);
    }
  });
  producer.join();
  consumer.join();
  std::printf(
      "%s cpus %d,%d k %d phases %d%s%s: get %.1f put %.1f cycles/object (median), "
      "p90 get %.1f put %.1f\n",
      which.c_str(), c0, c1, k, phases, read ? "" : " no-read", pinned ? "" : " (NOT PINNED)",
      at(tg, 0.5, k), at(tp, 0.5, k), at(tg, 0.9, k), at(tp, 0.9, k));
  if (op) cp_objpool_free(op);
  if (qp) cp_qmempool_destroy(qp);
  return 0;
}
