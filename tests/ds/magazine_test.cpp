// ds::mag_depot: the magazine depot. Single-thread semantics (FIFO of full magazines, stack
// of empty ones, counts, every magazine in one place), the pools' helpers, the ABA case of
// G3 with a get stopped between reading `next` and its CAS, a put_full stopped inside the
// FIFO's push (G4, G5), and a chaos run (threads and their signal handlers moving objects
// between magazines and their hands) that checks every object and magazine comes back once.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "chaos.h"
#include "ds/magazine.h"
#include "line_block.h"
#include "park_point.h"
#include "storm_options.h"

namespace {

using corepool::ds::mag_depot;
using corepool::ds::magazine;

void *P(uintptr_t v) {
  return reinterpret_cast<void *>(v << 4);
}

struct depot_guard {
  depot_guard(unsigned nr_mags, unsigned cap)
      : block(mag_depot::bytes(nr_mags, cap), 0xa5),  // init must not rely on zeroed memory
        d(mag_depot::init(block.mem, nr_mags, cap)) {}
  corepool::ds_test::line_block block;
  mag_depot *d;
};

TEST(MagDepot, FullFifoEmptyStackCounts) {
  depot_guard g(3, 4);
  EXPECT_EQ(g.d->capacity(), 4u);
  EXPECT_EQ(g.d->get_full(), nullptr);
  EXPECT_EQ(g.d->nr_objs(), 0u);
  magazine *m[3];
  for (magazine *&x : m) {
    x = g.d->get_empty();
    ASSERT_NE(x, nullptr);
    EXPECT_EQ(x->count, 0u);
  }
  EXPECT_EQ(g.d->get_empty(), nullptr);  // all three in our hands (G1)
  EXPECT_NE(m[0], m[1]);
  EXPECT_NE(m[1], m[2]);
  EXPECT_NE(m[0], m[2]);
  for (unsigned i = 0; i < 3; i++) {
    for (unsigned j = 0; j <= i; j++) m[i]->slots()[j] = P(10 * i + j + 1);
    m[i]->count = i + 1;
    ASSERT_TRUE(g.d->put_full(m[i]));
  }
  EXPECT_EQ(g.d->nr_objs(), 6u);
  // FIFO: the first one queued comes out first, with its objects.
  for (unsigned i = 0; i < 3; i++) {
    magazine *x = g.d->get_full();
    ASSERT_EQ(x, m[i]);
    ASSERT_EQ(x->count, i + 1);
    for (unsigned j = 0; j <= i; j++) EXPECT_EQ(x->slots()[j], P(10 * i + j + 1));
    g.d->put_empty(x);
  }
  EXPECT_EQ(g.d->get_full(), nullptr);
  EXPECT_EQ(g.d->nr_objs(), 0u);
  // The empty ones are a stack: the last one put comes back first.
  EXPECT_EQ(g.d->get_empty(), m[2]);
  g.d->put_empty(m[2]);
  // Many rounds (the FIFO's indices run past its slots); the slots stay within their
  // magazine (stride covers cap slots).
  for (uintptr_t r = 0; r < 1000; r++) {
    magazine *a = g.d->get_empty();
    magazine *b = g.d->get_empty();
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    for (unsigned j = 0; j < 4; j++)
      a->slots()[j] = P(r * 8 + j + 1), b->slots()[j] = P(r * 8 + j + 5);
    a->count = b->count = 4;
    ASSERT_TRUE(g.d->put_full(a));
    ASSERT_TRUE(g.d->put_full(b));
    magazine *x = g.d->get_full();
    magazine *y = g.d->get_full();
    ASSERT_EQ(x, a);
    ASSERT_EQ(y, b);
    for (unsigned j = 0; j < 4; j++) {
      ASSERT_EQ(a->slots()[j], P(r * 8 + j + 1));
      ASSERT_EQ(b->slots()[j], P(r * 8 + j + 5));
    }
    g.d->put_empty(x);
    g.d->put_empty(y);
  }
}

// The pools' helpers: refill (a push that refuses leaves the objects in the magazine),
// spill (a pop of nothing changes nothing), take (a part of a magazine) and put_bulk.
TEST(MagDepot, RefillSpillTakePutBulk) {
  depot_guard g(2, 4);
  std::vector<void *> away;  // what went elsewhere
  auto elsewhere = [&](void *const *objs, unsigned k) { away.insert(away.end(), objs, objs + k); };
  void *in[5] = {P(1), P(2), P(3), P(4), P(5)};
  EXPECT_EQ(g.d->refill([](void *const *, unsigned) { return true; }, elsewhere), nullptr);
  EXPECT_FALSE(g.d->put_bulk(in, 5));  // more than a magazine
  EXPECT_FALSE(g.d->put_bulk(in, 0));
  ASSERT_TRUE(g.d->put_bulk(in, 3));
  EXPECT_EQ(g.d->nr_objs(), 3u);
  // A refill returns the top object and offers the other two; refused: they are queued.
  unsigned offered = 0;
  EXPECT_EQ(g.d->refill(
                [&](void *const *objs, unsigned k) {
                  offered = k;
                  EXPECT_EQ(objs[0], P(1));
                  return false;
                },
                elsewhere),
            P(3));
  EXPECT_EQ(offered, 2u);
  EXPECT_EQ(g.d->nr_objs(), 2u);
  void *out[4] = {};
  EXPECT_EQ(g.d->take(out, 1, elsewhere), 1u);  // part of a magazine: its top
  EXPECT_EQ(out[0], P(2));
  EXPECT_EQ(g.d->nr_objs(), 1u);
  std::vector<void *> got;
  EXPECT_EQ(g.d->refill(
                [&](void *const *objs, unsigned k) {
                  got.assign(objs, objs + k);
                  return true;
                },
                elsewhere),
            P(1));
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(g.d->get_full(), nullptr);
  // spill: a pop of nothing leaves the depot as it was; else cap - 1 objects and obj.
  EXPECT_FALSE(g.d->spill(
      P(9), [](void **, unsigned) { return 0u; }, elsewhere));
  EXPECT_EQ(g.d->get_full(), nullptr);
  ASSERT_TRUE(g.d->spill(
      P(9),
      [&](void **slots, unsigned k) {
        EXPECT_EQ(k, 3u);
        for (unsigned i = 0; i < k; i++) slots[i] = in[i];
        return k;
      },
      elsewhere));
  ASSERT_TRUE(g.d->put_bulk(in + 3, 2));
  EXPECT_FALSE(g.d->spill(
      P(8), [](void **, unsigned) { return 1u; }, elsewhere));  // no empty
  EXPECT_FALSE(g.d->put_bulk(in, 1));
  EXPECT_EQ(g.d->nr_objs(), 6u);
  EXPECT_EQ(g.d->take(out, 4, elsewhere), 4u);  // FIFO: the spilled one first
  EXPECT_EQ(out[3], P(9));
  EXPECT_EQ(g.d->take(out, 4, elsewhere), 2u);
  EXPECT_EQ(g.d->nr_objs(), 0u);
  EXPECT_TRUE(away.empty()) << "nothing was busy: nothing may go elsewhere";
}

#ifdef COREPOOL_INJECT
// G3: thread A reads top = m1 and next = m2 of the empty stack, then stops before its CAS.
// Meanwhile m1 and m2 are taken and m1 alone is put back: the head's index is m1 again,
// but m2 is in our hands. A's CAS must fail (the tag moved) and A must take m1 with the new
// next, not install m2.
TEST(MagDepot, StoppedGetCannotInstallStaleNext) {
  depot_guard g(3, 2);
  magazine *mags[3];
  for (magazine *&x : mags) x = g.d->get_empty();
  g.d->put_empty(mags[2]);  // bottom
  g.d->put_empty(mags[1]);
  g.d->put_empty(mags[0]);  // top: m1 = mags[0], its next m2 = mags[1]
  corepool::chaos::park_point_guard hook;
  magazine *a_got = nullptr;
  std::thread a([&] {
    corepool::chaos::park_at = "magazine.get.read";
    a_got = g.d->get_empty();
  });
  corepool::chaos::park_point_guard::wait_parked();
  magazine *m1 = g.d->get_empty();
  magazine *m2 = g.d->get_empty();
  ASSERT_EQ(m1, mags[0]);
  ASSERT_EQ(m2, mags[1]);
  g.d->put_empty(m1);  // head's index is m1 again, m1's next is now mags[2]
  corepool::chaos::park_point_guard::release();
  a.join();
  EXPECT_EQ(a_got, m1);
  // The stack below must be mags[2] alone; m2 (ours) must not be in it.
  EXPECT_EQ(g.d->get_empty(), mags[2]);
  EXPECT_EQ(g.d->get_empty(), nullptr) << "a stale next was installed: m2 is in two places";
}

// G4, G5: a put_full stopped inside the FIFO's push holds only its own magazine: queued
// magazines stay available, another put_full fails (its caller keeps the magazine), and a
// spill then sends its objects elsewhere instead of waiting. Nothing is lost on resume.
TEST(MagDepot, StoppedPutFullHidesOnlyItsMagazine) {
  depot_guard g(4, 2);
  std::vector<void *> away;
  auto elsewhere = [&](void *const *objs, unsigned k) { away.insert(away.end(), objs, objs + k); };
  void *first[2] = {P(1), P(2)};
  ASSERT_TRUE(g.d->put_bulk(first, 2));
  corepool::chaos::park_point_guard hook;
  std::thread a([&] {
    void *held[2] = {P(10), P(11)};
    corepool::chaos::park_at = "cpu_ring.push.locked";
    EXPECT_TRUE(g.d->put_bulk(held, 2));
  });
  corepool::chaos::park_point_guard::wait_parked();
  void *more[1] = {P(20)};
  EXPECT_FALSE(g.d->put_bulk(more, 1)) << "the FIFO is held: put_full must fail, not wait";
  EXPECT_TRUE(g.d->spill(
      P(31),
      [](void **slots, unsigned) {
        slots[0] = P(30);
        return 1u;
      },
      elsewhere));
  EXPECT_EQ(away, (std::vector<void *>{P(30), P(31)}));
  void *out[2];
  EXPECT_EQ(g.d->take(out, 2, elsewhere), 2u);  // the magazine queued before the stop
  EXPECT_EQ(out[0], P(1));
  EXPECT_EQ(g.d->get_full(), nullptr);
  corepool::chaos::park_point_guard::release();
  a.join();
  EXPECT_EQ(g.d->take(out, 2, elsewhere), 2u);
  EXPECT_EQ(out[0], P(10));
  EXPECT_EQ(out[1], P(11));
  EXPECT_TRUE(g.d->put_bulk(more, 1));
}
#endif  // COREPOOL_INJECT

// Workers (migrating, parked at random, signalled; the handler runs the depot too) move
// kObjs distinct objects: take a full magazine, keep or swap some objects with their hands,
// put it back full or empty; fill empty magazines from their hands. At the end every object
// is in a full magazine or a worker's hands exactly once, and every magazine is on a stack.
constexpr unsigned kCap = 8;
constexpr unsigned kMags = 16;
constexpr unsigned kObjs = 64;
constexpr int kWorkers = 4;

struct hands {
  void *objs[kObjs];
  std::atomic<unsigned> n{0};  // the worker's, and its own handler's (signals never nest)
};
hands g_hands[kWorkers];
mag_depot *g_depot = nullptr;

// One round of a worker or its handler: get a full magazine and put its objects in our
// hands, or fill an empty magazine from our hands and put it full.
void round(int w, bool take) {
  hands &h = g_hands[w];
  unsigned n = h.n.load(std::memory_order_relaxed);
  if (take) {
    magazine *m = g_depot->get_full();
    if (!m) return;
    for (unsigned i = 0; i < m->count; i++) h.objs[n++] = m->slots()[i];
    h.n.store(n, std::memory_order_relaxed);
    g_depot->put_empty(m);
    return;
  }
  if (n == 0) return;
  unsigned k = n < kCap ? n : kCap;
  // put_bulk copies: the objects leave our hands only when it succeeds (it fails while
  // another put holds the FIFO, G4).
  if (g_depot->put_bulk(h.objs + n - k, k)) h.n.store(n - k, std::memory_order_relaxed);
}

void storm(int w, void *) {
  round(w, (g_hands[w].n.load(std::memory_order_relaxed) & 1) != 0);
}

TEST(MagDepot, ChaosEveryObjectOnce) {
  depot_guard g(kMags, kCap);
  g_depot = g.d;
  for (unsigned i = 0; i < kObjs / kCap; i++) {
    magazine *m = g.d->get_empty();
    ASSERT_NE(m, nullptr);
    for (unsigned j = 0; j < kCap; j++) m->slots()[j] = P(i * kCap + j + 1);
    m->count = kCap;
    ASSERT_TRUE(g.d->put_full(m));
  }
  const auto opt = corepool::test::storm_and_park(kWorkers);
  auto rep = corepool::chaos::run(
      opt,
      [&](int w) {
        corepool::chaos::rng rng(w + 7);
        const auto stop = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
        while (std::chrono::steady_clock::now() < stop && !corepool::chaos::should_stop()) {
          // Signals off while our hands change (the handler uses them too).
          sigset_t all, old;
          sigfillset(&all);
          pthread_sigmask(SIG_BLOCK, &all, &old);
          round(w, rng.below(2) == 0);
          pthread_sigmask(SIG_SETMASK, &old, nullptr);
          // The depot itself with signals on: a handler may interrupt a get or put.
          // A magazine moves on with signals on: a handler may interrupt a get or put.
          // What a busy FIFO refuses goes to our hands (signals off while they change).
          auto to_hands = [&](void *const *objs, unsigned k) {
            pthread_sigmask(SIG_BLOCK, &all, &old);
            unsigned n = g_hands[w].n.load(std::memory_order_relaxed);
            for (unsigned i = 0; i < k; i++) g_hands[w].objs[n++] = objs[i];
            g_hands[w].n.store(n, std::memory_order_relaxed);
            pthread_sigmask(SIG_SETMASK, &old, nullptr);
          };
          void *few[kCap];
          if (unsigned k = g.d->take(few, 1 + static_cast<unsigned>(rng.below(kCap)), to_hands))
            if (!g.d->put_bulk(few, k)) to_hands(few, k);
        }
      },
      storm, nullptr);
  EXPECT_TRUE(rep.in_time);
  unsigned in_hands = 0;
  for (hands &h : g_hands) in_hands += h.n.load(std::memory_order_relaxed);
  EXPECT_EQ(g.d->nr_objs(), kObjs - in_hands) << "the count is exact when quiescent";
  std::multiset<void *> seen;
  unsigned full = 0, empty = 0;
  while (magazine *m = g.d->get_full()) {
    full++;
    EXPECT_GE(m->count, 1u);
    EXPECT_LE(m->count, kCap);
    for (unsigned i = 0; i < m->count; i++) seen.insert(m->slots()[i]);
  }
  while (g.d->get_empty()) empty++;
  EXPECT_EQ(full + empty, kMags) << "a magazine lost or on two stacks";
  for (hands &h : g_hands)
    for (unsigned i = 0; i < h.n.load(std::memory_order_relaxed); i++) seen.insert(h.objs[i]);
  EXPECT_EQ(seen.size(), kObjs) << "an object lost or duplicated";
  EXPECT_EQ(std::set<void *>(seen.begin(), seen.end()).size(), kObjs);
  for (uintptr_t i = 1; i <= kObjs; i++) EXPECT_EQ(seen.count(P(i)), 1u);
}

}  // namespace
