// ds::alf_ring, the ALF queue's ring: bulk all-or-nothing enqueue and FIFO dequeue across
// laps, what a stopped producer (R6) and a stopped consumer (R7) hide, with threads parked
// at the ring's injection points, and a chaos run (MP/MC threads, migrations, parks, signal
// handlers that enqueue and dequeue too) that checks every element comes back exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <set>
#include <thread>
#include <vector>

#include "chaos.h"
#include "ds/alf_ring.h"
#include "park_point.h"
#include "storm_options.h"

namespace {

using corepool::ds::alf_ring;

void *P(uintptr_t v) {
  return reinterpret_cast<void *>(v << 4);
}
uintptr_t V(void *p) {
  return reinterpret_cast<uintptr_t>(p) >> 4;
}

struct ring_guard {
  explicit ring_guard(uint32_t size) : r(alf_ring::create(size)) {}
  ~ring_guard() { alf_ring::destroy(r); }
  ring_guard(const ring_guard &) = delete;
  ring_guard &operator=(const ring_guard &) = delete;
  alf_ring *r;
};

TEST(AlfRing, CreateRefusesSizesThatAreNotPowersOfTwo) {
  for (uint32_t bad : {0u, 1u, 3u, 6u, 1000u}) EXPECT_EQ(alf_ring::create(bad), nullptr) << bad;
  ring_guard g(2);
  ASSERT_NE(g.r, nullptr);
  EXPECT_EQ(g.r->capacity(), 2u);
  EXPECT_TRUE(g.r->empty());
}

// All n or nothing on enqueue, up to n on dequeue, FIFO over many laps of the ring, for the
// multi- and the single-producer/consumer forms.
template <bool M>
void fifo_over_laps() {
  ring_guard g(8);
  void *in[9], *out[9];
  for (uintptr_t i = 0; i < 9; i++) in[i] = P(i + 1);
  EXPECT_EQ(g.r->enqueue<M>(in, 9), 0) << "more than the ring holds";
  EXPECT_EQ(g.r->enqueue<M>(in, 0), 0);
  EXPECT_EQ(g.r->enqueue<M>(in, -1), 0);
  EXPECT_EQ(g.r->dequeue<M>(out, 4), 0) << "empty";
  uintptr_t next_in = 1, next_out = 1;
  for (int lap = 0; lap < 50; lap++) {
    const int n = 1 + lap % 5;
    while (g.r->count() + unsigned(n) > 8) {  // make room for the burst: take some out
      const int k = g.r->dequeue<M>(out, 3);
      ASSERT_GT(k, 0);
      for (int j = 0; j < k; j++) EXPECT_EQ(V(out[j]), next_out++);
    }
    for (int i = 0; i < n; i++) in[i] = P(next_in + uintptr_t(i));
    ASSERT_EQ(g.r->enqueue<M>(in, n), n);
    next_in += uintptr_t(n);
    EXPECT_EQ(g.r->count(), unsigned(next_in - next_out));
  }
  // A full ring refuses a burst that does not fit whole, and takes one that does.
  const unsigned room = 8 - g.r->count();
  for (unsigned i = 0; i <= room; i++) in[i] = P(next_in + i);
  EXPECT_EQ(g.r->enqueue<M>(in, int(room + 1)), 0);
  EXPECT_EQ(g.r->enqueue<M>(in, int(room)), int(room));
  next_in += room;
  int k;
  while ((k = g.r->dequeue<M>(out, 9)) > 0)
    for (int j = 0; j < k; j++) EXPECT_EQ(V(out[j]), next_out++);
  EXPECT_EQ(next_out, next_in);
  EXPECT_TRUE(g.r->empty());
}

TEST(AlfRing, MultiFifoOverLaps) {
  fifo_over_laps<true>();
}
TEST(AlfRing, SingleFifoOverLaps) {
  fifo_over_laps<false>();
}

#ifdef COREPOOL_INJECT
// R6: a producer stopped between its claim and its publish hides its own elements and the
// ones enqueued after them; the ones enqueued before stay reachable; on resume every
// element comes out, in order.
TEST(AlfRing, StoppedProducerHidesItsOwnAndLaterOnes) {
  ring_guard g(16);
  void *before[2] = {P(1), P(2)};
  ASSERT_EQ(g.r->enqueue<true>(before, 2), 2);
  corepool::chaos::park_point_guard hook;
  void *held[2] = {P(3), P(4)};
  std::thread a([&] {
    corepool::chaos::park_at = "alf.enqueue.claimed";
    EXPECT_EQ(g.r->enqueue<true>(held, 2), 2);
  });
  corepool::chaos::park_point_guard::wait_parked();
  void *after = P(5);
  EXPECT_EQ(g.r->enqueue<true>(&after, 1), 1) << "producers never wait for a stopped one";
  void *out[8];
  int got = 0;
  std::thread b([&] { got = g.r->dequeue<true>(out, 8); });
  b.join();
  ASSERT_EQ(got, 2);
  EXPECT_EQ(V(out[0]), 1u);
  EXPECT_EQ(V(out[1]), 2u);
  EXPECT_EQ(g.r->dequeue<true>(out, 8), 0) << "R6: nothing passes the stopped claim";
  corepool::chaos::park_point_guard::release();
  a.join();
  ASSERT_EQ(g.r->dequeue<true>(out, 8), 3);
  EXPECT_EQ(V(out[0]), 3u);
  EXPECT_EQ(V(out[1]), 4u);
  EXPECT_EQ(V(out[2]), 5u);
}

// R7: a consumer stopped between its claim and its release holds its own elements and makes
// their slots unavailable one lap later; everything else keeps moving.
TEST(AlfRing, StoppedConsumerHoldsItsOwnAndTheirSlots) {
  ring_guard g(4);
  void *in[4] = {P(1), P(2), P(3), P(4)};
  ASSERT_EQ(g.r->enqueue<true>(in, 2), 2);
  corepool::chaos::park_point_guard hook;
  void *a_out[2] = {};
  int a_got = -1;
  std::thread a([&] {
    corepool::chaos::park_at = "alf.dequeue.claimed";
    a_got = g.r->dequeue<true>(a_out, 1);
  });
  corepool::chaos::park_point_guard::wait_parked();
  void *out[4];
  ASSERT_EQ(g.r->dequeue<true>(out, 4), 1) << "the element after the stopped claim";
  EXPECT_EQ(V(out[0]), 2u);
  ASSERT_EQ(g.r->enqueue<true>(in + 2, 2), 2);  // indexes 2, 3: slots the stopped one did not take
  void *next = P(5);
  EXPECT_EQ(g.r->enqueue<true>(&next, 1), 0) << "index 4 needs the stopped consumer's slot";
  ASSERT_EQ(g.r->dequeue<true>(out, 4), 2);
  EXPECT_EQ(V(out[0]), 3u);
  EXPECT_EQ(V(out[1]), 4u);
  corepool::chaos::park_point_guard::release();
  a.join();
  ASSERT_EQ(a_got, 1);
  EXPECT_EQ(V(a_out[0]), 1u);
  EXPECT_EQ(g.r->enqueue<true>(&next, 1), 1) << "the slot is free once it resumes";
}
#endif  // COREPOOL_INJECT

// Four workers (migrated, parked at random instructions, signalled; the handler dequeues and
// enqueues too) move 64 distinct elements between the ring and their hands in bursts of
// 1-16. An enqueue refused (no room now: others hold slots) keeps its elements for later;
// a handler that cannot enqueue leaves them to its worker. At the end every element is in
// the ring or in a worker's hands exactly once.
constexpr unsigned kElems = 64;
constexpr int kWorkers = 4;

struct pending {
  void *elems[kElems];
  std::atomic<unsigned> n{0};  // written by the worker and its own handler only
};
pending g_pending[kWorkers];
alf_ring *g_storm_ring = nullptr;

void storm(int w, void *) {
  void *e;
  if (g_storm_ring->dequeue<true>(&e, 1) != 1) return;
  if (g_storm_ring->enqueue<true>(&e, 1) == 1) return;
  unsigned n = g_pending[w].n.load(std::memory_order_relaxed);
  g_pending[w].elems[n] = e;
  g_pending[w].n.store(n + 1, std::memory_order_relaxed);
}

TEST(AlfRing, ChaosEveryElementOnce) {
  ring_guard g(kElems);
  for (uintptr_t i = 1; i <= kElems; i++) {
    void *e = P(i);
    ASSERT_EQ(g.r->enqueue<true>(&e, 1), 1);
  }
  g_storm_ring = g.r;
  std::atomic<bool> bad{false};
  const auto opt = corepool::test::storm_and_park(kWorkers);
  auto rep = corepool::chaos::run(
      opt,
      [&](int w) {
        corepool::chaos::rng rng(w + 7);
        void *mine[16];
        const auto stop = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
        while (std::chrono::steady_clock::now() < stop && !corepool::chaos::should_stop()) {
          const int n = 1 + static_cast<int>(rng.below(16));
          const int k = g.r->dequeue<true>(mine, n);
          for (int i = 0; i < k; i++)
            if (V(mine[i]) < 1 || V(mine[i]) > kElems) bad = true;
          while (k > 0 && g.r->enqueue<true>(mine, k) != k) {
            if (corepool::chaos::should_stop()) break;
            std::this_thread::yield();  // no room now: a stopped thread holds slots (R6, R7)
          }
          sigset_t all, old;  // what our handler could not enqueue: ours now
          sigfillset(&all);
          pthread_sigmask(SIG_BLOCK, &all, &old);
          unsigned np = g_pending[w].n.load(std::memory_order_relaxed);
          if (np && g.r->enqueue<true>(g_pending[w].elems, int(np)) == int(np))
            g_pending[w].n.store(0, std::memory_order_relaxed);
          pthread_sigmask(SIG_SETMASK, &old, nullptr);
        }
      },
      storm, nullptr);
  EXPECT_TRUE(rep.in_time);
  EXPECT_FALSE(bad.load());
  std::multiset<void *> seen;
  void *out[kElems + 1];
  int k;
  while ((k = g.r->dequeue<true>(out, int(kElems) + 1)) > 0)
    for (int i = 0; i < k; i++) seen.insert(out[i]);
  for (pending &p : g_pending)
    for (unsigned i = 0; i < p.n.load(std::memory_order_relaxed); i++) seen.insert(p.elems[i]);
  EXPECT_EQ(seen.size(), kElems) << "an element lost or duplicated";
  EXPECT_EQ(std::set<void *>(seen.begin(), seen.end()).size(), kElems);
}

}  // namespace
