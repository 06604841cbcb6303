// obj_registry: the checked-mode map of qmempool. States change only as asked, an address
// the map does not hold is kAbsent, the tables grow past the first one, erased entries are
// reused, and of racing changes from the same state exactly one wins.
#include "ds/obj_registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "chaos.h"

namespace {

using corepool::ds::obj_registry;

// Addresses that are never dereferenced: 64-byte steps from a made-up base.
const void *addr(uintptr_t i) {
  return reinterpret_cast<const void *>(0x7f0000000000ull + i * 64);
}

struct Registry {
  obj_registry r;
  explicit Registry(unsigned log2_first = 6) { r.init(log2_first); }
  ~Registry() { r.destroy(); }
};

TEST(ObjRegistry, ChangesOnlyFromTheStateAsked) {
  Registry g;
  obj_registry &r = g.r;
  EXPECT_EQ(r.change(addr(1), obj_registry::kHeld, obj_registry::kFree), obj_registry::kAbsent);
  ASSERT_TRUE(r.insert(addr(1), obj_registry::kFree));
  EXPECT_EQ(r.change(addr(1), obj_registry::kHeld, obj_registry::kFree), obj_registry::kFree);
  EXPECT_EQ(r.change(addr(1), obj_registry::kFree, obj_registry::kHeld), obj_registry::kFree);
  EXPECT_EQ(r.change(addr(1), obj_registry::kFree, obj_registry::kHeld), obj_registry::kHeld);
  EXPECT_EQ(r.change(addr(1), obj_registry::kHeld, obj_registry::kFree), obj_registry::kHeld);
  // Another address, and one byte off, are not registered.
  EXPECT_EQ(r.change(addr(2), obj_registry::kFree, obj_registry::kHeld), obj_registry::kAbsent);
  const void *inside = static_cast<const char *>(addr(1)) + 8;
  EXPECT_EQ(r.change(inside, obj_registry::kFree, obj_registry::kHeld), obj_registry::kAbsent);
  EXPECT_TRUE(r.erase(addr(1)));
  EXPECT_FALSE(r.erase(addr(1)));
  EXPECT_EQ(r.change(addr(1), obj_registry::kFree, obj_registry::kHeld), obj_registry::kAbsent);
}

TEST(ObjRegistry, GrowsPastTheFirstTableAndReusesErasedEntries) {
  Registry g;  // first table: 64 entries
  obj_registry &r = g.r;
  constexpr uintptr_t kN = 20000;
  for (uintptr_t i = 1; i <= kN; i++) ASSERT_TRUE(r.insert(addr(i), obj_registry::kHeld)) << i;
  for (uintptr_t i = 1; i <= kN; i++)
    ASSERT_EQ(r.change(addr(i), obj_registry::kHeld, obj_registry::kFree), obj_registry::kHeld);
  // Erase and insert other addresses many times over: tombstones are reused, and every
  // address is found in whichever table holds it.
  for (int round = 0; round < 5; round++) {
    for (uintptr_t i = 1; i <= kN; i += 2) ASSERT_TRUE(r.erase(addr(i + round * kN)));
    for (uintptr_t i = 1; i <= kN; i += 2)
      ASSERT_TRUE(r.insert(addr(i + (round + 1) * kN), obj_registry::kFree));
    for (uintptr_t i = 2; i <= kN; i += 2)
      ASSERT_EQ(r.change(addr(i), obj_registry::kFree, obj_registry::kFree), obj_registry::kFree);
  }
}

// Sequential rounds: after each, every object changed exactly once.
TEST(ObjRegistry, RoundByRoundExactlyOneChangePerObject) {
  Registry g(8);
  obj_registry &r = g.r;
  constexpr int kObjs = 256, kThreads = 4;
  for (int i = 0; i < kObjs; i++) ASSERT_TRUE(r.insert(addr(i + 1), obj_registry::kHeld));
  for (int round = 0; round < 20; round++) {
    const bool to_free = round % 2 == 0;
    const auto from = to_free ? obj_registry::kHeld : obj_registry::kFree;
    const auto to = to_free ? obj_registry::kFree : obj_registry::kHeld;
    std::atomic<int> wins{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; t++)
      ts.emplace_back([&] {
        for (int i = 0; i < kObjs; i++)
          if (r.change(addr(i + 1), from, to) == from) wins.fetch_add(1, std::memory_order_relaxed);
      });
    for (auto &t : ts) t.join();
    ASSERT_EQ(wins.load(), kObjs) << "round " << round;
  }
}

}  // namespace
