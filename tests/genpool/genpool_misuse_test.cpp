// gen_pool misuse under races: a double free that validated the range, then lost it to the
// first free and a reallocation in pieces, must not free or orphan any bit of the new
// allocations (the free is parked at the `genpool.free.validated` injection point while the
// range changes hands).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "corepool/genpool.h"
#include "inject.h"

namespace {

#ifdef COREPOOL_INJECT
std::atomic<bool> g_parked{false}, g_release{false};
thread_local bool t_park = false;
void park_hook(const char *point) {
  if (!t_park || std::strcmp(point, "genpool.free.validated") != 0) return;
  t_park = false;
  g_parked.store(true);
  while (!g_release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// Frees [base + a_off, + a_size) twice: the second free parks after its validation while the
// first free lands and `realloc` allocates in the range; returns the second free's result.
template <class Realloc>
int racing_double_free(cp_gen_pool *p, uintptr_t a, size_t a_size, Realloc realloc) {
  g_parked.store(false);
  g_release.store(false);
  void (*hook)(const char *) = park_hook;
  std::atomic_ref(cp_inject_hook).store(hook, std::memory_order_release);
  int second = 1;
  std::thread t([&] {
    t_park = true;
    second = cp_gen_pool_free(p, a, a_size);
  });
  while (!g_parked.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(cp_gen_pool_free(p, a, a_size), 0);  // the first free
  realloc();
  g_release.store(true);
  t.join();
  hook = nullptr;
  std::atomic_ref(cp_inject_hook).store(hook, std::memory_order_release);
  return second;
}

// Order 0 (one byte per granule), one 4 KiB chunk at kBase: A = [0, a) is allocated, freed
// twice while the second free is parked, and reallocated as B = [0, b), C = [b, a).
constexpr uintptr_t kBase = 0x100000;
struct race {
  cp_gen_pool *p = nullptr;
  int second = 1;
};
race double_free_into(size_t a, size_t b) {
  race r;
  r.p = cp_gen_pool_create(0, -1);
  EXPECT_NE(r.p, nullptr);
  EXPECT_EQ(cp_gen_pool_add(r.p, kBase, 4096, -1), 0);
  EXPECT_EQ(cp_gen_pool_alloc(r.p, a), kBase);
  r.second = racing_double_free(r.p, kBase, a, [&] {
    EXPECT_EQ(cp_gen_pool_alloc(r.p, b), kBase);
    EXPECT_EQ(cp_gen_pool_alloc(r.p, a - b), kBase + b);
  });
  return r;
}

// Order 0 (one byte per granule); A = [0, 24) in one map word, reallocated as B = [0, 16) and
// C = [16, 24): the word changed, so the double free's CAS fails and it must validate again.
TEST(GenPoolMisuseRace, OneWordDoubleFreeAfterReallocationInPieces) {
  auto [p, second] = double_free_into(24, 16);
  const uintptr_t base = kBase, b = base, c = base + 16;
  EXPECT_EQ(second, -EINVAL);
  // B and C are intact: each is freed once, and nothing else is allocated afterwards.
  EXPECT_EQ(cp_gen_pool_free(p, c, 8), 0);
  EXPECT_EQ(cp_gen_pool_free(p, b, 16), 0);
  EXPECT_EQ(cp_gen_pool_avail(p), 4096u);
  EXPECT_EQ(cp_gen_pool_alloc(p, 4096), base);
  EXPECT_EQ(cp_gen_pool_free(p, base, 4096), 0);
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

// A = [0, 64) over two map words, reallocated as B = [0, 20) and C = [20, 64): the last word
// looks like A's (no single-word CAS can tell), so the double free's claim takes it; its
// backward release must stop at the first word (C's start is there), leaving B whole and no
// start bit on a free granule.
TEST(GenPoolMisuseRace, MultiWordDoubleFreeStopsAtAForeignWord) {
  auto [p, second] = double_free_into(64, 20);
  const uintptr_t base = kBase, b = base, c = base + 20;
  EXPECT_EQ(second, -EINVAL);
  EXPECT_EQ(cp_gen_pool_free(p, b, 20), 0);  // B is whole
  // C lost its second word to the misuse (the ABA): its free is refused, the pool stays
  // consistent, and what C still holds ([20, 32)) is the only granules not allocatable.
  EXPECT_EQ(cp_gen_pool_free(p, c, 44), -EINVAL);
  EXPECT_EQ(cp_gen_pool_alloc(p, 20), base);
  EXPECT_EQ(cp_gen_pool_alloc(p, 4096 - 32), base + 32);
  EXPECT_EQ(cp_gen_pool_alloc(p, 1), 0u);
  EXPECT_EQ(cp_gen_pool_free(p, base, 20), 0);
  EXPECT_EQ(cp_gen_pool_free(p, base + 32, 4096 - 32), 0);
  cp_gen_pool_detach(p);
}

#else
TEST(GenPoolMisuseRace, NeedsInjectionPoints) {
  GTEST_SKIP() << "needs the injection points (COREPOOL_INJECT)";
}
#endif

}  // namespace
