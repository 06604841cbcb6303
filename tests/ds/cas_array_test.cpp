// ds::cas_array, the array of CAS slots that refuses nothing: puts and takes, the count
// hint, a put of more objects than slots (a double put) stored only as far as slots last,
// and a chaos run (threads migrated, parked at random instructions, signalled; the handler
// takes and puts too) that checks every object comes back exactly once and that a put never
// fails while fewer than N objects are in the array (C3).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "chaos.h"
#include "ds/cas_array.h"
#include "inject.h"
#include "line_block.h"
#include "storm_options.h"

namespace {

using corepool::ds::cas_array;

void *P(uintptr_t v) {
  return reinterpret_cast<void *>(v << 4);
}
uintptr_t V(void *p) {
  return reinterpret_cast<uintptr_t>(p) >> 4;
}

struct array_guard {
  explicit array_guard(uint32_t size)
      : block(corepool::ds::cas_array_bytes(size), 0),
        a(corepool::ds::cas_array_init(block.mem, size, corepool::ds::cas_array_bytes(size))) {}
  corepool::ds_test::line_block block;
  cas_array *a;
};

TEST(CasArray, PutTakeCountEveryObjectOnce) {
  array_guard g(8);
  void *out[10] = {};
  EXPECT_EQ(g.a->nr_free(), 0u);
  EXPECT_EQ(corepool::ds::cas_array_take(g.a, out, 4), 0u);
  void *in[8];
  for (uintptr_t i = 0; i < 8; i++) in[i] = P(i + 1);
  EXPECT_EQ(corepool::ds::cas_array_put(g.a, in, 5), 5u);
  EXPECT_EQ(g.a->nr_free(), 5u);
  EXPECT_EQ(corepool::ds::cas_array_take(g.a, out, 2), 2u);
  EXPECT_EQ(g.a->nr_free(), 3u);
  EXPECT_EQ(corepool::ds::cas_array_put(g.a, in + 5, 3), 3u);
  unsigned k = corepool::ds::cas_array_take(g.a, out + 2, 8);
  EXPECT_EQ(k, 6u);
  std::set<void *> seen(out, out + 2 + k);
  EXPECT_EQ(seen.size(), 8u) << "each object exactly once";
  for (void *p : seen) EXPECT_TRUE(V(p) >= 1 && V(p) <= 8);
  EXPECT_EQ(g.a->nr_free(), 0u);
}

TEST(CasArray, PutOfMoreThanItsSlotsStoresWhatFits) {
  array_guard g(4);
  void *in[6];
  for (uintptr_t i = 0; i < 6; i++) in[i] = P(i + 1);
  EXPECT_EQ(corepool::ds::cas_array_put(g.a, in, 3), 3u);
  EXPECT_EQ(corepool::ds::cas_array_put(g.a, in + 3, 3), 1u) << "one slot left";
  void *out[6];
  EXPECT_EQ(corepool::ds::cas_array_take(g.a, out, 6), 4u);
  std::set<void *> seen(out, out + 4);
  EXPECT_EQ(seen, std::set<void *>(in, in + 4));
}

// Puts fill the slot after the last one filled and wrap around, so a put finds a free slot
// wherever the free ones are (C3), in a single thread.
TEST(CasArray, PutFindsTheOnlyFreeSlotWherever) {
  array_guard g(16);
  for (uint32_t hole = 0; hole < 16; hole++) {
    void *in[16];
    for (uintptr_t i = 0; i < 16; i++) in[i] = P(i + 1);
    ASSERT_EQ(corepool::ds::cas_array_put(g.a, in, 16), 16u);
    // Empty exactly slot `hole`, then put one object: it must land there.
    void *held = g.a->slots()[hole].exchange(nullptr, std::memory_order_relaxed);
    g.a->count.fetch_sub(1, std::memory_order_relaxed);
    ASSERT_EQ(corepool::ds::cas_array_put(g.a, &held, 1), 1u) << "hole " << hole;
    EXPECT_EQ(g.a->slots()[hole].load(std::memory_order_relaxed), held);
    void *out[16];
    ASSERT_EQ(corepool::ds::cas_array_take(g.a, out, 16), 16u);
  }
}

#ifdef COREPOOL_INJECT
// The hole that moves behind the scan: 7 objects in 8 slots and one in the putter's hands.
// At every step of the put's scan, others (simulated in the hook, a take and a put each)
// move the one empty slot to just behind the slot the scan visits next, for five rounds.
// The put must still store its object (C3), once the others stop, not give up.
constexpr uint32_t kHoleSlots = 8;
cas_array *g_hole_array = nullptr;
unsigned g_hole_steps = 0;
void move_hole(const char *point) {
  if (std::strcmp(point, "cas_array.put.scan") != 0 || g_hole_steps >= 5 * kHoleSlots) return;
  auto *slot = g_hole_array->slots();
  const uint32_t next = g_hole_steps++ % kHoleSlots;  // the put's scan began at slot 0
  const uint32_t behind = (next + kHoleSlots - 1) % kHoleSlots;
  for (uint32_t h = 0; h < kHoleSlots; h++)
    if (h != behind && !slot[h].load(std::memory_order_relaxed)) {
      slot[h].store(slot[behind].exchange(nullptr, std::memory_order_relaxed),
                    std::memory_order_relaxed);
      break;
    }
}

TEST(CasArray, PutNeverRefusesWhileTheHoleMovesBehindIt) {
  array_guard g(kHoleSlots);
  void *in[kHoleSlots];
  for (uintptr_t i = 0; i < kHoleSlots; i++) in[i] = P(i + 1);
  ASSERT_EQ(corepool::ds::cas_array_put(g.a, in, kHoleSlots - 1), kHoleSlots - 1);  // 1 .. 7
  g_hole_array = g.a;
  g_hole_steps = 0;
  cp_inject_hook = move_hole;
  const unsigned stored = corepool::ds::cas_array_put(g.a, in + kHoleSlots - 1, 1);
  cp_inject_hook = nullptr;
  EXPECT_EQ(stored, 1u) << "a put refused an object while a slot was empty (C3)";
  EXPECT_GE(g_hole_steps, 5 * kHoleSlots);
  void *out[kHoleSlots];
  ASSERT_EQ(corepool::ds::cas_array_take(g.a, out, kHoleSlots), stored + kHoleSlots - 1);
  EXPECT_EQ(std::set<void *>(out, out + stored + kHoleSlots - 1).size(), stored + kHoleSlots - 1);
}
#endif

// Four workers move 64 objects between a 64-slot array and their hands, in bursts of 1-8
// (the handler takes one and puts it back). No put may fail: every object is either in the
// array or in one worker's hands, so the array never holds N while a put runs (C3).
constexpr unsigned kObjs = 64;
constexpr int kWorkers = 4;
cas_array *g_storm_array = nullptr;
std::atomic<bool> g_put_failed{false};

void storm(int, void *) {
  void *o;
  if (corepool::ds::cas_array_take(g_storm_array, &o, 1) != 1) return;
  if (corepool::ds::cas_array_put(g_storm_array, &o, 1) != 1)
    g_put_failed.store(true, std::memory_order_relaxed);  // and o is lost: the count shows it
}

TEST(CasArray, ChaosEveryObjectOnceAndNoPutFails) {
  array_guard g(kObjs);
  for (uintptr_t i = 1; i <= kObjs; i++) {
    void *o = P(i);
    ASSERT_EQ(corepool::ds::cas_array_put(g.a, &o, 1), 1u);
  }
  g_storm_array = g.a;
  g_put_failed = false;
  std::atomic<bool> bad{false};
  const auto opt = corepool::test::storm_and_park(kWorkers);
  auto rep = corepool::chaos::run(
      opt,
      [&](int w) {
        corepool::chaos::rng rng(w + 11);
        void *mine[8];
        const auto stop = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
        while (std::chrono::steady_clock::now() < stop && !corepool::chaos::should_stop()) {
          const unsigned n = 1 + static_cast<unsigned>(rng.below(8));
          const unsigned k = corepool::ds::cas_array_take(g.a, mine, n);
          for (unsigned i = 0; i < k; i++)
            if (V(mine[i]) < 1 || V(mine[i]) > kObjs) bad = true;
          if (corepool::ds::cas_array_put(g.a, mine, k) != k) g_put_failed = true;
        }
      },
      storm, nullptr);
  EXPECT_TRUE(rep.in_time);
  EXPECT_FALSE(bad.load());
  EXPECT_FALSE(g_put_failed.load()) << "a put refused an object (C3)";
  void *out[kObjs + 1];
  const unsigned k = corepool::ds::cas_array_take(g.a, out, kObjs + 1);
  std::set<void *> seen(out, out + k);
  EXPECT_EQ(k, kObjs) << "an object lost or duplicated";
  EXPECT_EQ(seen.size(), kObjs);
  EXPECT_EQ(g.a->nr_free(), 0u);
}

}  // namespace
