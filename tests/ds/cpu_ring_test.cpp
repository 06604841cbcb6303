// ds::cpu_ring: the ring with one producer at a time (rseq or try-lock) and CAS consumers.
// Single-thread semantics, the stop-safety invariants R3 and R6 with threads parked at the
// ring's injection points, and a chaos run (locked producers, consumers, signal handlers
// that push and pop) that checks every object comes back exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "chaos.h"
#include "ds/cpu_ring.h"
#include "line_block.h"
#include "park_point.h"
#include "storm_options.h"

namespace {

using corepool::ds::CP_RING_BUSY;
using corepool::ds::CP_RING_FULL;
using corepool::ds::CP_RING_OK;
using corepool::ds::cpu_ring;
using corepool::platform::CP_RSEQ_ABORT;
using corepool::platform::CP_RSEQ_OK;

void *P(uintptr_t v) {
  return reinterpret_cast<void *>(v << 4);
}

// A ring of `slots` in zeroed, line-aligned memory.
struct ring_guard {
  explicit ring_guard(uint64_t slots)
      : block(corepool::ds::cpu_ring_bytes(slots), 0),
        r(corepool::ds::cpu_ring_init(block.mem, slots, corepool::ds::cpu_ring_bytes(slots))) {}
  corepool::ds_test::line_block block;
  cpu_ring *r;
};

TEST(CpuRing, LockedPushPopFifoFullEmpty) {
  ring_guard g(4);
  void *in[5] = {P(1), P(2), P(3), P(4), P(5)};
  void *out[5] = {};
  EXPECT_EQ(corepool::ds::cpu_ring_pop(g.r), nullptr);
  EXPECT_EQ(corepool::ds::cpu_ring_pop_bulk(g.r, out, 4), 0u);
  EXPECT_EQ(corepool::ds::cpu_ring_try_push_bulk(g.r, in, 5), CP_RING_FULL);  // all or nothing
  EXPECT_EQ(g.r->nr_free(), 0u);
  EXPECT_EQ(corepool::ds::cpu_ring_try_push_bulk(g.r, in, 3), CP_RING_OK);
  EXPECT_EQ(corepool::ds::cpu_ring_try_push_bulk(g.r, in + 3, 2), CP_RING_FULL);
  EXPECT_EQ(corepool::ds::cpu_ring_try_push_bulk(g.r, in + 3, 1), CP_RING_OK);
  EXPECT_EQ(g.r->nr_free(), 4u);
  EXPECT_EQ(corepool::ds::cpu_ring_pop(g.r), P(1));
  EXPECT_EQ(corepool::ds::cpu_ring_pop_bulk(g.r, out, 5), 3u);
  EXPECT_EQ(out[0], P(2));
  EXPECT_EQ(out[2], P(4));
  // Many laps: indices run past the slot count.
  for (uintptr_t lap = 0; lap < 1000; lap++) {
    void *x[3] = {P(lap), P(lap + 1), P(lap + 2)};
    ASSERT_EQ(corepool::ds::cpu_ring_try_push_bulk(g.r, x, 3), CP_RING_OK);
    ASSERT_EQ(corepool::ds::cpu_ring_pop_bulk(g.r, out, 2), 2u);
    ASSERT_EQ(corepool::ds::cpu_ring_pop(g.r), x[2]);
    ASSERT_EQ(out[0], x[0]);
    ASSERT_EQ(out[1], x[1]);
  }
  EXPECT_EQ(g.r->producer.load(std::memory_order_relaxed), 0u);
}

#if COREPOOL_TEST_RSEQ_BUILD && defined(__x86_64__)
TEST(CpuRing, RseqPushOnOwnCpu) {
  ring_guard g(8);
  void *in[3] = {P(1), P(2), P(3)};
  int rc;
  do {
    int cpu = corepool::platform::rseq_cpu_start();
    if (cpu < 0) GTEST_SKIP() << "this thread has no rseq (rseq off or unsupported)";
    rc = corepool::ds::cpu_ring_push_bulk(g.r, in, 3, cpu);
  } while (rc == CP_RSEQ_ABORT);
  ASSERT_EQ(rc, CP_RSEQ_OK);
  do {
    int cpu = corepool::platform::rseq_cpu_start();
    rc = corepool::ds::cpu_ring_push(g.r, P(4), cpu);
  } while (rc == CP_RSEQ_ABORT);
  ASSERT_EQ(rc, CP_RSEQ_OK);
  void *out[8];
  EXPECT_EQ(corepool::ds::cpu_ring_pop_bulk(g.r, out, 8), 4u);
  EXPECT_EQ(out[3], P(4));
}
#endif

#ifdef COREPOOL_INJECT
// R6: a producer stopped between storing its slots and committing them hides only its own
// objects: everything committed before stays poppable, other pushes get BUSY (they go
// elsewhere) instead of queueing behind it, and nothing is lost when it resumes.
TEST(CpuRing, StoppedLockedProducerHidesOnlyItsOwn) {
  ring_guard g(16);
  void *first[4] = {P(1), P(2), P(3), P(4)};
  ASSERT_EQ(corepool::ds::cpu_ring_try_push_bulk(g.r, first, 4), CP_RING_OK);
  corepool::chaos::park_point_guard hook;
  void *held[2] = {P(10), P(11)};
  std::thread a([&] {
    corepool::chaos::park_at = "cpu_ring.push.locked";
    EXPECT_EQ(corepool::ds::cpu_ring_try_push_bulk(g.r, held, 2), CP_RING_OK);
  });
  corepool::chaos::park_point_guard::wait_parked();
  void *more = P(20);
  EXPECT_EQ(corepool::ds::cpu_ring_try_push_bulk(g.r, &more, 1), CP_RING_BUSY);
  // Every committed object comes out, from this thread and from another one.
  void *out[8];
  EXPECT_EQ(corepool::ds::cpu_ring_pop(g.r), P(1));
  unsigned other = 0;
  std::thread b([&] { other = corepool::ds::cpu_ring_pop_bulk(g.r, out, 8); });
  b.join();
  EXPECT_EQ(other, 3u);
  EXPECT_EQ(corepool::ds::cpu_ring_pop(g.r), nullptr);
  corepool::chaos::park_point_guard::release();
  a.join();
  EXPECT_EQ(corepool::ds::cpu_ring_pop_bulk(g.r, out, 8), 2u);
  EXPECT_EQ(out[0], P(10));
  EXPECT_EQ(out[1], P(11));
  EXPECT_EQ(corepool::ds::cpu_ring_try_push_bulk(g.r, &more, 1), CP_RING_OK);
}

// R3: a consumer stopped after reading the slots, before its CAS, holds nothing: another
// consumer takes the object, the producer reuses the slot, and the stopped CAS fails.
TEST(CpuRing, StoppedConsumerHoldsNothing) {
  ring_guard g(2);
  void *one = P(1);
  ASSERT_EQ(corepool::ds::cpu_ring_try_push_bulk(g.r, &one, 1), CP_RING_OK);
  corepool::chaos::park_point_guard hook;
  void *a_got = P(99);
  std::thread a([&] {
    corepool::chaos::park_at = "cpu_ring.pop.read";
    a_got = corepool::ds::cpu_ring_pop(g.r);
  });
  corepool::chaos::park_point_guard::wait_parked();
  EXPECT_EQ(corepool::ds::cpu_ring_pop(g.r), P(1));
  void *two[2] = {P(2), P(3)};
  ASSERT_EQ(corepool::ds::cpu_ring_try_push_bulk(g.r, two, 2), CP_RING_OK);  // reuses P(1)'s slot
  corepool::chaos::park_point_guard::release();
  a.join();
  EXPECT_EQ(a_got, P(2)) << "the stopped consumer must retry, not return its stale read";
  EXPECT_EQ(corepool::ds::cpu_ring_pop(g.r), P(3));
}
#endif  // COREPOOL_INJECT

// Four threads (migrating, parked at random, signalled; the handler pops and pushes too)
// move 64 distinct objects between the ring and their hands with locked pushes and CAS
// pops. A push that finds the ring BUSY keeps its objects and tries again later (a handler
// leaves them to its worker, which pushes them between two of its own operations). At the
// end every object is in the ring or a worker's hands exactly once.
constexpr unsigned kObjs = 64;
constexpr int kWorkers = 4;

struct pending {
  void *objs[kObjs];
  std::atomic<unsigned> n{0};  // written by the worker and its own handler only
};
pending g_pending[kWorkers];
cpu_ring *g_storm_ring = nullptr;

void storm(int w, void *) {
  void *o = corepool::ds::cpu_ring_pop(g_storm_ring);
  if (!o) return;
  // Never wait in a handler: BUSY may be the interrupted thread's own push.
  if (corepool::ds::cpu_ring_try_push_bulk(g_storm_ring, &o, 1) == CP_RING_OK) return;
  unsigned n = g_pending[w].n.load(std::memory_order_relaxed);
  g_pending[w].objs[n] = o;
  g_pending[w].n.store(n + 1, std::memory_order_relaxed);
}

TEST(CpuRing, ChaosEveryObjectOnce) {
  ring_guard g(kObjs);
  for (uintptr_t i = 1; i <= kObjs; i++) {
    void *o = P(i);
    ASSERT_EQ(corepool::ds::cpu_ring_try_push_bulk(g.r, &o, 1), CP_RING_OK);
  }
  g_storm_ring = g.r;
  std::atomic<bool> bad{false};
  const auto opt = corepool::test::storm_and_park(kWorkers);
  auto rep = corepool::chaos::run(
      opt,
      [&](int w) {
        corepool::chaos::rng rng(w + 3);
        void *mine[16];
        const auto stop = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
        while (std::chrono::steady_clock::now() < stop && !corepool::chaos::should_stop()) {
          unsigned n = 1 + static_cast<unsigned>(rng.below(16));
          unsigned k = 0;
          if (n == 1)
            k = (mine[0] = corepool::ds::cpu_ring_pop(g.r)) != nullptr;
          else
            k = corepool::ds::cpu_ring_pop_bulk(g.r, mine, n);
          for (unsigned i = 0; i < k; i++) {
            uintptr_t v = reinterpret_cast<uintptr_t>(mine[i]) >> 4;
            if (v < 1 || v > kObjs) bad = true;
          }
          while (k && corepool::ds::cpu_ring_try_push_bulk(g.r, mine, k) != CP_RING_OK)
            std::this_thread::yield();  // BUSY: another thread (perhaps parked) holds it
          // What our handler could not push: ours now (signals off while we take it).
          sigset_t all, old;
          sigfillset(&all);
          pthread_sigmask(SIG_BLOCK, &all, &old);
          unsigned np = g_pending[w].n.load(std::memory_order_relaxed);
          if (np && corepool::ds::cpu_ring_try_push_bulk(g.r, g_pending[w].objs, np) == CP_RING_OK)
            g_pending[w].n.store(0, std::memory_order_relaxed);
          pthread_sigmask(SIG_SETMASK, &old, nullptr);
        }
      },
      storm, nullptr);
  EXPECT_TRUE(rep.in_time);
  EXPECT_FALSE(bad.load());
  std::multiset<void *> seen;
  void *out[kObjs + 1];
  unsigned k = corepool::ds::cpu_ring_pop_bulk(g.r, out, kObjs + 1);
  for (unsigned i = 0; i < k; i++) seen.insert(out[i]);
  for (pending &p : g_pending)
    for (unsigned i = 0; i < p.n.load(std::memory_order_relaxed); i++) seen.insert(p.objs[i]);
  EXPECT_EQ(seen.size(), kObjs) << "an object lost or duplicated";
  EXPECT_EQ(std::set<void *>(seen.begin(), seen.end()).size(), kObjs);
}

}  // namespace
