// gen_pool tests: differential against the reference model (every algorithm), bad input,
// 64-bit sizes, owners/phys, growth hook, C++ wrappers, chaos stress with owner stamps and a
// signal storm, and the process-shared mode with a process killed by SIGKILL mid-run.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory_resource>
#include <thread>
#include <vector>

#include "chaos.h"
#include "corepool/cpu.h"
#include "corepool/error.h"
#include "corepool/genpool.h"
#include "corepool/genpool.hpp"
#include "ds/striped_counter.h"
#include "inject.h"
#include "model.h"
#include "sanitized.h"

namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;

// ---- differential ------------------------------------------------------------------------
TEST(GenPoolDifferential, RandomSequencesAllAlgorithms) {
  // Millions of steps in total (fewer under sanitizers), each compared with the model.
  const uint64_t steps = GP_SANITIZED ? 60000 : 600000;
  for (int order : {0, 3, 6, 12}) {
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      genpool_test::differential d(order);
      corepool::chaos::rng r(seed * 131 + static_cast<uint64_t>(order));
      auto next = [&] { return r.next(); };
      for (uint64_t i = 0; i < steps / 4; ++i) {
        ASSERT_TRUE(d.step(next)) << d.why << " at step " << i << " order " << order << " seed "
                                  << seed;
      }
    }
  }
}

// Spread mode: pinned to each allowed CPU in turn (up to 4), first fit starts at that CPU's
// home in every chunk; the model knows the homes (cp_gen_pool_home) and must agree exactly.
TEST(GenPoolDifferential, SpreadFromEachCpusHome) {
  const uint64_t steps = GP_SANITIZED ? 20000 : 200000;
  cpu_set_t old;
  ASSERT_EQ(sched_getaffinity(0, sizeof old, &old), 0);
  int tried = 0, nonzero_home = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && tried < 4; ++cpu) {
    if (!CPU_ISSET(cpu, &old)) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    ++tried;
    for (int order : {0, 6}) {
      genpool_test::differential d(order, cpu);
      corepool::chaos::rng r(static_cast<uint64_t>(cpu) * 977 + static_cast<uint64_t>(order));
      auto next = [&] { return r.next(); };
      for (uint64_t i = 0; i < steps / 2; ++i) {
        ASSERT_TRUE(d.step(next)) << d.why << " at step " << i << " cpu " << cpu << " order "
                                  << order;
      }
      for (auto &c : d.m.chunks) nonzero_home += c.home != 0;
    }
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof old, &old), 0);
  // With one CPU every home is 0 and this is plain first fit; with more, homes inside chunks
  // (one possible CPU: a CPU above it has no home, so there too every home is 0).
  if (tried > 1 && cp_nr_cpu_ids() > 1) {
    EXPECT_GT(nonzero_home, 0);
  }
}

TEST(GenPool, SpreadHomesAndWrapAround) {
  const unsigned ncpu = cp_nr_cpu_ids();
  const int order = 6;
  const uintptr_t base = 0x7000000000ull;
  const size_t blocks = 4 * ncpu, bytes = blocks * 512 * 64;
  corepool::gen_pool p(order);
  ASSERT_NO_THROW(p.add(base, bytes));
  ASSERT_FALSE(cp_gen_pool_spread(p.get()));
  for (unsigned cpu = 0; cpu < ncpu; ++cpu) EXPECT_EQ(cp_gen_pool_home(p.get(), base, cpu), base);
  ASSERT_EQ(cp_gen_pool_set_spread(p.get(), true), 0);
  ASSERT_TRUE(cp_gen_pool_spread(p.get()));
  for (unsigned cpu = 0; cpu < ncpu; ++cpu)
    EXPECT_EQ(cp_gen_pool_home(p.get(), base + 64, cpu), base + cpu * 4 * 512 * 64);
  EXPECT_EQ(cp_gen_pool_home(p.get(), base, ncpu), 0u);       // no such CPU
  EXPECT_EQ(cp_gen_pool_home(p.get(), base + bytes, 0), 0u);  // in no chunk
  EXPECT_EQ(cp_gen_pool_set_spread(nullptr, true), -EINVAL);

  cpu_set_t old;
  ASSERT_EQ(sched_getaffinity(0, sizeof old, &old), 0);
  int cpu = -1;
  for (int i = CPU_SETSIZE - 1; i >= 0 && cpu < 0; --i)
    if (CPU_ISSET(i, &old)) cpu = i;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  // A CPU at or above cp_nr_cpu_ids() has no home (0): the pool uses plain first fit.
  uintptr_t home = cp_gen_pool_home(p.get(), base, static_cast<unsigned>(cpu));
  if (home == 0) home = base;
  // From the home on, in address order, up to the chunk's end...
  std::vector<uintptr_t> got;
  for (uintptr_t a = home; a < base + bytes; a += 512 * 64) {
    got.push_back(p.alloc(512 * 64));
    EXPECT_EQ(got.back(), a);
  }
  // ...then from the chunk's start, up to the home; then nothing.
  for (uintptr_t a = base; a < home; a += 512 * 64) {
    got.push_back(p.alloc(512 * 64));
    EXPECT_EQ(got.back(), a);
  }
  EXPECT_EQ(p.alloc(64), 0u);
  // A run across the home from below is found on the wrap-around pass.
  if (home != base) {
    ASSERT_EQ(p.try_free(home - 512 * 64, 512 * 64), 0);
    ASSERT_EQ(p.try_free(home, 512 * 64), 0);
    uintptr_t a = cp_gen_pool_alloc(p.get(), 512 * 64 + 64);  // > one block: plain first fit
    EXPECT_EQ(a, home - 512 * 64);
    EXPECT_EQ(p.try_free(a, 512 * 64 + 64), 0);
    got.erase(std::find(got.begin(), got.end(), home - 512 * 64));
    got.erase(std::find(got.begin(), got.end(), home));
    // Free now: [home - 512, home + 512) granules. Taken again by FIXED: [home - 512,
    // home - 100) and [home + 200, home + 512). Left: [home - 100, home + 200).
    const uint64_t h = (home - base) / 64;
    cp_genpool_data_fixed f1{.offset = (h - 512) * 64}, f2{.offset = (h + 200) * 64};
    ASSERT_EQ(cp_gen_pool_alloc_algo(p.get(), 412 * 64, CP_GENPOOL_FIXED, &f1), home - 512 * 64);
    ASSERT_EQ(cp_gen_pool_alloc_algo(p.get(), 312 * 64, CP_GENPOOL_FIXED, &f2), home + 200 * 64);
    // 200 granules fit at the home (first pass); 300 only across it, from below (second pass).
    uintptr_t b = p.alloc(200 * 64);
    EXPECT_EQ(b, home);
    EXPECT_EQ(p.try_free(b, 200 * 64), 0);
    b = p.alloc(300 * 64);
    EXPECT_EQ(b, home - 100 * 64);
    EXPECT_EQ(p.try_free(b, 300 * 64), 0);
    EXPECT_EQ(p.try_free(home - 512 * 64, 412 * 64), 0);
    EXPECT_EQ(p.try_free(home + 200 * 64, 312 * 64), 0);
    for (uintptr_t a2 : got) ASSERT_EQ(p.try_free(a2, 512 * 64), 0);
  } else {
    for (uintptr_t a2 : got) ASSERT_EQ(p.try_free(a2, 512 * 64), 0);
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof old, &old), 0);
  EXPECT_EQ(p.avail(), bytes);
}

// ---- bad input ---------------------------------------------------------------------------
struct bad_free_case {
  const char *name;
  uintptr_t addr;
  size_t size;
};

TEST(GenPoolBadInput, FreeTable) {
  cp_gen_pool *p = cp_gen_pool_create(6, -1);
  ASSERT_NE(p, nullptr);
  const uintptr_t base = 0x40000000;
  ASSERT_EQ(cp_gen_pool_add(p, base, 64 * 1024, -1), 0);
  uintptr_t a = cp_gen_pool_alloc(p, 256);  // 4 granules
  uintptr_t b = cp_gen_pool_alloc(p, 128);  // 2 granules, right after a
  uintptr_t f = cp_gen_pool_alloc(p, 64);
  ASSERT_EQ(a, base);
  ASSERT_EQ(b, base + 256);
  ASSERT_EQ(cp_gen_pool_free(p, f, 64), 0);
  const size_t avail = cp_gen_pool_avail(p);
  const bad_free_case cases[] = {
      {.name = "below every chunk", .addr = base - 64, .size = 64},
      {.name = "past every chunk", .addr = base + 64 * 1024, .size = 64},
      {.name = "null address", .addr = 0, .size = 64},
      {.name = "not allocated", .addr = base + 4096, .size = 64},
      {.name = "double free", .addr = f, .size = 64},
      {.name = "size too small", .addr = a, .size = 192},
      {.name = "size too large (covers b)", .addr = a, .size = 384},
      {.name = "size too large (into free)", .addr = b, .size = 192},
      {.name = "size zero", .addr = a, .size = 0},
      {.name = "interior address", .addr = a + 64, .size = 192},
      {.name = "unaligned address", .addr = a + 1, .size = 256},
      {.name = "size past chunk end", .addr = a, .size = SIZE_MAX},
  };
  for (const auto &c : cases) {
    EXPECT_EQ(cp_gen_pool_free(p, c.addr, c.size), -EINVAL) << c.name;
    EXPECT_STRNE(cp_last_error(), "") << c.name;
    EXPECT_EQ(cp_gen_pool_avail(p), avail) << c.name << ": pool must stay untouched";
  }
  // The valid frees still work after all that.
  EXPECT_EQ(cp_gen_pool_free(p, a, 256), 0);
  EXPECT_EQ(cp_gen_pool_free(p, b, 128), 0);
  EXPECT_EQ(cp_gen_pool_free(p, b, 128), -EINVAL);
  EXPECT_EQ(cp_gen_pool_avail(p), cp_gen_pool_size(p));
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

TEST(GenPoolBadInput, CreateAddAllocTable) {
  for (int order : {-1, 41, 1000}) {
    errno = 0;
    EXPECT_EQ(cp_gen_pool_create(order, -1), nullptr) << order;
    EXPECT_EQ(errno, EINVAL) << order;
  }
  cp_gen_pool *p = cp_gen_pool_create(12, -1);
  ASSERT_NE(p, nullptr);
  struct add_case {
    const char *name;
    uintptr_t addr;
    size_t size;
    int want;
  };
  const add_case adds[] = {
      {.name = "first", .addr = 0x100000, .size = 0x10000, .want = 0},
      {.name = "under one granule", .addr = 0x900000, .size = 4095, .want = -EINVAL},
      {.name = "zero size", .addr = 0x900000, .size = 0, .want = -EINVAL},
      {.name = "overlap start", .addr = 0x0ff000, .size = 0x2000, .want = -EINVAL},
      {.name = "overlap inside", .addr = 0x104000, .size = 0x1000, .want = -EINVAL},
      {.name = "overlap end", .addr = 0x10f000, .size = 0x2000, .want = -EINVAL},
      {.name = "wraps", .addr = UINTPTR_MAX - 0xfff, .size = 0x2000, .want = -EINVAL},
      {.name = "adjacent below", .addr = 0x0f0000, .size = 0x10000, .want = 0},
      {.name = "adjacent above", .addr = 0x110000, .size = 0x10000, .want = 0},
  };
  for (const auto &c : adds) EXPECT_EQ(cp_gen_pool_add(p, c.addr, c.size, -1), c.want) << c.name;
  EXPECT_EQ(cp_gen_pool_size(p), 0x30000u);
  EXPECT_EQ(cp_gen_pool_alloc(p, 0), 0u);
  EXPECT_EQ(cp_gen_pool_alloc_algo(p, 64, CP_GENPOOL_FIRST_FIT_ALIGN, nullptr), 0u);
  cp_genpool_data_align bad{.align = 48};
  EXPECT_EQ(cp_gen_pool_alloc_algo(p, 64, CP_GENPOOL_FIRST_FIT_ALIGN, &bad), 0u);
  EXPECT_EQ(cp_gen_pool_alloc_algo(p, 64, CP_GENPOOL_FIXED, nullptr), 0u);
  EXPECT_EQ(cp_gen_pool_alloc(p, SIZE_MAX), 0u);
  EXPECT_EQ(cp_gen_pool_avail(p), cp_gen_pool_size(p));
  // destroy refuses while something is allocated, and the pool stays usable.
  uintptr_t a = cp_gen_pool_alloc(p, 1);
  ASSERT_EQ(a, 0x100000u);  // first chunk in add order
  EXPECT_EQ(cp_gen_pool_destroy(p), -EBUSY);
  EXPECT_EQ(cp_gen_pool_free(p, a, 1), 0);
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

// ---- semantics -----------------------------------------------------------------------------
TEST(GenPool, AlgorithmsOwnerPhys) {
  cp_gen_pool *p = cp_gen_pool_create(4, -1);  // 16-byte granule
  int cookie1 = 0, cookie2 = 0;
  // Chunk start not aligned to 256: the 2019 FIRST_FIT_ALIGN fix aligns the address.
  ASSERT_EQ(cp_gen_pool_add_owner(p, 0x10010, 0xabc000, 4096, -1, &cookie1), 0);
  ASSERT_EQ(cp_gen_pool_add_owner(p, 0x20000, UINT64_MAX, 4096, -1, &cookie2), 0);
  cp_genpool_data_align al{.align = 256};
  void *owner = nullptr;
  uintptr_t a = cp_gen_pool_alloc_algo_owner(p, 40, CP_GENPOOL_FIRST_FIT_ALIGN, &al, &owner);
  EXPECT_EQ(a, 0x10100u);
  EXPECT_EQ(owner, &cookie1);
  EXPECT_EQ(cp_gen_pool_virt_to_phys(p, a), 0xabc000u + 0xf0);
  EXPECT_EQ(cp_gen_pool_virt_to_phys(p, 0x20010), UINT64_MAX);
  EXPECT_EQ(cp_gen_pool_virt_to_phys(p, 0x90000), UINT64_MAX);
  cp_genpool_data_fixed fx{.offset = 0x40};
  uintptr_t f = cp_gen_pool_alloc_algo(p, 16, CP_GENPOOL_FIXED, &fx);
  EXPECT_EQ(f, 0x10050u);
  EXPECT_EQ(cp_gen_pool_alloc_algo(p, 16, CP_GENPOOL_FIXED, &fx), 0x20040u);  // next chunk
  uintptr_t o = cp_gen_pool_alloc_algo(p, 48, CP_GENPOOL_FIRST_FIT_ORDER_ALIGN, nullptr);
  EXPECT_EQ((o - 0x10010) % 64, 0u);
  EXPECT_TRUE(cp_gen_pool_has_addr(p, 0x10010, 4096));
  EXPECT_FALSE(cp_gen_pool_has_addr(p, 0x10010, 4097));
  EXPECT_FALSE(cp_gen_pool_has_addr(p, 0x30000, 1));
  uint64_t dma = 0;
  void *d = cp_gen_pool_dma_alloc(p, 16, &dma);
  EXPECT_EQ(dma, 0xabc000u + (reinterpret_cast<uintptr_t>(d) - 0x10010));
  EXPECT_EQ(cp_gen_pool_free_owner(p, a, 40, &owner), 0);
  EXPECT_EQ(owner, &cookie1);
  int chunks = 0;
  cp_gen_pool_for_each_chunk(
      p,
      [](cp_gen_pool *, const cp_gen_pool_chunk_info *ci, void *arg) {
        ++*static_cast<int *>(arg);
        EXPECT_EQ(ci->size, 4096u);
        EXPECT_LE(ci->avail, ci->size);
      },
      &chunks);
  EXPECT_EQ(chunks, 2);
  // Best fit takes the exact hole, first fit the first one.
  cp_gen_pool *q = cp_gen_pool_create(0, -1);
  ASSERT_EQ(cp_gen_pool_add(q, 1000, 100, -1), 0);
  uintptr_t x[5];
  for (auto &v : x) v = cp_gen_pool_alloc(q, 10);
  cp_gen_pool_free(q, x[0], 10);
  cp_gen_pool_free(q, x[2], 10);
  cp_gen_pool_set_algo(q, CP_GENPOOL_BEST_FIT, nullptr);
  EXPECT_EQ(cp_gen_pool_alloc(q, 10), x[0]);
  EXPECT_EQ(cp_gen_pool_alloc(q, 10), x[2]);
  EXPECT_EQ(cp_gen_pool_alloc(q, 50), 1050u);
  cp_gen_pool_detach(q);
  cp_gen_pool_detach(p);
}

TEST(GenPool, SixtyFourGiBChunkAndHugeRequests) {
  cp_gen_pool *p = cp_gen_pool_create(12, -1);
  const uintptr_t base = uintptr_t{1} << 44;  // made up: never dereferenced
  ASSERT_EQ(cp_gen_pool_add(p, base, 64 * kGiB, -1), 0);
  EXPECT_EQ(cp_gen_pool_size(p), 64 * kGiB);
  uintptr_t a = cp_gen_pool_alloc(p, 5 * kGiB);
  EXPECT_EQ(a, base);
  uintptr_t b = cp_gen_pool_alloc(p, 4 * kGiB + 4096);
  EXPECT_EQ(b, base + 5 * kGiB);
  uintptr_t c = cp_gen_pool_alloc(p, 40 * kGiB);
  EXPECT_EQ(c, base + 9 * kGiB + 4096);
  EXPECT_EQ(cp_gen_pool_alloc(p, 16 * kGiB), 0u);  // only 15 GiB - 4 KiB left
  EXPECT_EQ(cp_gen_pool_avail(p), 15 * kGiB - 4096);
  EXPECT_EQ(cp_gen_pool_free(p, b, 4 * kGiB), -EINVAL);  // size mismatch past 4 GiB
  EXPECT_EQ(cp_gen_pool_free(p, b, 4 * kGiB + 4096), 0);
  cp_genpool_data_align al{.align = 8 * kGiB};
  uintptr_t d = cp_gen_pool_alloc_algo(p, 4 * kGiB, CP_GENPOOL_FIRST_FIT_ALIGN, &al);
  EXPECT_EQ(d, base + 56 * kGiB);
  // Holes now: 4 GiB + 4 KiB at 5 GiB, 7 GiB - 4 KiB at 49 GiB + 4 KiB, exactly 4 GiB at 60.
  EXPECT_EQ(cp_gen_pool_alloc_algo(p, 4 * kGiB, CP_GENPOOL_BEST_FIT, nullptr), base + 60 * kGiB);
  EXPECT_EQ(cp_gen_pool_virt_to_phys(p, base), UINT64_MAX);
  EXPECT_EQ(cp_gen_pool_destroy(p), -EBUSY);
  EXPECT_EQ(cp_gen_pool_free(p, a, 5 * kGiB), 0);
  EXPECT_EQ(cp_gen_pool_free(p, c, 40 * kGiB), 0);
  EXPECT_EQ(cp_gen_pool_free(p, d, 4 * kGiB), 0);
  EXPECT_EQ(cp_gen_pool_free(p, base + 60 * kGiB, 4 * kGiB), 0);
  EXPECT_EQ(cp_gen_pool_avail(p), 64 * kGiB);
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

TEST(GenPool, GrowthHookAddsOnTheWorker) {
  cp_gen_pool *p = cp_gen_pool_create(12, -1);
  ASSERT_EQ(cp_gen_pool_add(p, 0x1000000, 64 * 4096, -1), 0);
  struct ctx_t {
    std::atomic<int> runs{0};
    std::atomic<uintptr_t> next{0x8000000};
    std::thread::id caller;
    std::atomic<bool> off_thread{true};
  } ctx;
  ctx.caller = std::this_thread::get_id();
  ASSERT_EQ(cp_gen_pool_set_low_watermark(
                p, 16 * 4096,
                [](cp_gen_pool *pool, size_t avail, void *c) {
                  auto *x = static_cast<ctx_t *>(c);
                  if (std::this_thread::get_id() == x->caller) x->off_thread = false;
                  EXPECT_LT(avail, 16u * 4096);
                  cp_gen_pool_add(pool, x->next.fetch_add(0x100000), 64 * 4096, -1);
                  x->runs.fetch_add(1);
                },
                &ctx),
            0);
  std::vector<uintptr_t> got;
  for (int i = 0; i < 56; ++i) got.push_back(cp_gen_pool_alloc(p, 4096));
  for (int i = 0; i < 500 && cp_gen_pool_size(p) == 64 * 4096; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(ctx.runs.load(), 1);
  EXPECT_TRUE(ctx.off_thread.load());
  EXPECT_GT(cp_gen_pool_size(p), 64u * 4096);
  ASSERT_EQ(cp_gen_pool_set_low_watermark(p, 0, nullptr, nullptr), 0);
  for (uintptr_t a : got) ASSERT_EQ(cp_gen_pool_free(p, a, 4096), 0);
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

#ifdef COREPOOL_INJECT
// Lock-freedom, shown: a thread stopped in the middle of a multi-word claim (at the
// "genpool.claim.mid" injection point) blocks nobody; others allocate around its partial
// claim, never inside it, and a free in flight elsewhere is not disturbed.
// A thread parked at one injection point: the hook stops the thread whose t_park names the
// point it reaches, once, until `release`.
struct park_point {
  const char *point;
  std::atomic<bool> parked{false}, release{false};
};
thread_local park_point *t_park = nullptr;
void park_hook(const char *point) {
  park_point *pp = t_park;
  if (!pp || std::strcmp(point, pp->point) != 0) return;
  t_park = nullptr;
  pp->parked.store(true);
  while (!pp->release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}
park_point g_claim_park{"genpool.claim.mid"};

TEST(GenPool, ThreadParkedMidClaimBlocksNobody) {
  cp_gen_pool *p = cp_gen_pool_create(0, -1);
  const uintptr_t base = 0x100000;
  ASSERT_EQ(cp_gen_pool_add(p, base, 4096, -1), 0);
  void (*hook)(const char *) = park_hook;
  std::atomic_ref(cp_inject_hook).store(hook, std::memory_order_release);
  uintptr_t parked_got = 0;
  std::thread t([&] {
    t_park = &g_claim_park;
    parked_got = cp_gen_pool_alloc(p, 1000);  // 32 map words: parks after the first
  });
  while (!g_claim_park.parked.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // The parked claim holds [base, base+32) (its first map word) at least; others go around
  // it, without waiting.
  std::vector<uintptr_t> got;
  for (int i = 0; i < 20; ++i) {
    uintptr_t a = cp_gen_pool_alloc(p, 100);
    ASSERT_NE(a, 0u);
    EXPECT_TRUE(a + 100 <= base || a >= base + 32) << "allocated inside a claim in flight";
    got.push_back(a);
  }
  for (uintptr_t a : got) ASSERT_EQ(cp_gen_pool_free(p, a, 100), 0);
  g_claim_park.release.store(true);
  t.join();
  hook = nullptr;
  std::atomic_ref(cp_inject_hook).store(hook, std::memory_order_release);
  // The parked thread either won its range or continued past the conflict: it got one.
  ASSERT_NE(parked_got, 0u);
  EXPECT_EQ(cp_gen_pool_free(p, parked_got, 1000), 0);
  EXPECT_EQ(cp_gen_pool_avail(p), 4096u);
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

// ---- hint edge cases (order 0: one byte per granule; blocks of 512, groups of 64 blocks) ----
// Fills [base, base+size) with one-granule allocations.
// I2: a free spanning several map words goes backward (its claim on the last word, the
// start's word last), so what it still holds is always its start and a prefix. Parked after
// its claim, or after one more word, the space it released is at the end of its range: an
// allocation made there, ending at a word boundary in front of what the free still holds,
// can be freed. (Going forward, the start's word would be free first and the rest alloc
// bits without a start: an allocation ending in front of them would fail its free with
// "size does not match" until the parked free went on.)
TEST(GenPool, FreeParkedMidwayKeepsNeighboursFreeable) {
  for (const char *point : {"genpool.free.claimed", "genpool.release.mid"}) {
    SCOPED_TRACE(point);
    cp_gen_pool *p = cp_gen_pool_create(0, -1);
    const uintptr_t base = 0x200000;
    ASSERT_EQ(cp_gen_pool_add(p, base, 4096, -1), 0);
    ASSERT_EQ(cp_gen_pool_alloc(p, 32), base);        // granules [0, 32): map word 0
    ASSERT_EQ(cp_gen_pool_alloc(p, 96), base + 32);   // [32, 128): words 1, 2, 3
    ASSERT_EQ(cp_gen_pool_alloc(p, 32), base + 128);  // [128, 160): word 4
    park_point pp{point};
    void (*hook)(const char *) = park_hook;
    std::atomic_ref(cp_inject_hook).store(hook, std::memory_order_release);
    int parked_rc = -1;
    std::thread t([&] {
      t_park = &pp;
      parked_rc = cp_gen_pool_free(p, base + 32, 96);
    });
    while (!pp.parked.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // First fit puts 32 granules in the lowest word the parked free released.
    uintptr_t a = cp_gen_pool_alloc(p, 32);
    ASSERT_NE(a, 0u);
    EXPECT_EQ(cp_gen_pool_free(p, a, 32), 0) << cp_last_error() << " at +" << a - base;
    // A double free of the parked allocation meanwhile is refused.
    EXPECT_EQ(cp_gen_pool_free(p, base + 32, 96), -EINVAL);
    pp.release.store(true);
    t.join();
    hook = nullptr;
    std::atomic_ref(cp_inject_hook).store(hook, std::memory_order_release);
    EXPECT_EQ(parked_rc, 0);
    EXPECT_EQ(cp_gen_pool_free(p, base, 32), 0);
    EXPECT_EQ(cp_gen_pool_free(p, base + 128, 32), 0);
    EXPECT_EQ(cp_gen_pool_avail(p), 4096u);
    EXPECT_EQ(cp_gen_pool_destroy(p), 0);
  }
}
#endif

void fill_singles(cp_gen_pool *p, uintptr_t base, size_t size) {
  for (size_t i = 0; i < size; ++i) ASSERT_EQ(cp_gen_pool_alloc(p, 1), base + i);
  ASSERT_EQ(cp_gen_pool_alloc(p, 1), 0u);  // full; this failing scan also lowers every hint
}

TEST(GenPoolHints, FreedRunAcrossBlocksMergedInAnyOrder) {
  cp_gen_pool *p = cp_gen_pool_create(0, -1);
  const uintptr_t base = 0x100000;
  ASSERT_EQ(cp_gen_pool_add(p, base, 2048, -1), 0);
  fill_singles(p, base, 2048);
  // Free [490, 530) across the block 0/1 boundary: ends first, then the middle, so later
  // frees merge runs that earlier frees already raised.
  for (size_t i : {490, 529, 491, 528}) ASSERT_EQ(cp_gen_pool_free(p, base + i, 1), 0);
  for (size_t i = 492; i < 528; ++i) ASSERT_EQ(cp_gen_pool_free(p, base + i, 1), 0);
  EXPECT_EQ(cp_gen_pool_alloc(p, 41), 0u);
  EXPECT_EQ(cp_gen_pool_alloc(p, 40), base + 490);
  EXPECT_EQ(cp_gen_pool_free(p, base + 490, 40), 0);
  // A claim that cuts the run lowers the hints to what is left on both sides of it.
  EXPECT_EQ(cp_gen_pool_alloc(p, 22), base + 490);  // [490, 512) | [512, 530) left
  EXPECT_EQ(cp_gen_pool_alloc(p, 19), 0u);
  EXPECT_EQ(cp_gen_pool_alloc(p, 18), base + 512);
  EXPECT_EQ(cp_gen_pool_free(p, base + 490, 22), 0);
  EXPECT_EQ(cp_gen_pool_free(p, base + 512, 18), 0);
  EXPECT_EQ(cp_gen_pool_alloc(p, 40), base + 490);
  EXPECT_EQ(cp_gen_pool_free(p, base + 490, 40), 0);
  for (size_t i = 0; i < 2048; ++i)
    if (i < 490 || i >= 530) {
      ASSERT_EQ(cp_gen_pool_free(p, base + i, 1), 0);
    }
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

TEST(GenPoolHints, ClaimOfTheLongestRunKeepsAnEqualOne) {
  cp_gen_pool *p = cp_gen_pool_create(0, -1);
  const uintptr_t base = 0x100000;
  ASSERT_EQ(cp_gen_pool_add(p, base, 1024, -1), 0);
  fill_singles(p, base, 1024);
  // Block 0 gets two free runs of 16 (at 100 and 300) and a shorter one (at 200).
  for (size_t i = 0; i < 16; ++i) {
    ASSERT_EQ(cp_gen_pool_free(p, base + 100 + i, 1), 0);
    ASSERT_EQ(cp_gen_pool_free(p, base + 300 + i, 1), 0);
    if (i < 8) {
      ASSERT_EQ(cp_gen_pool_free(p, base + 200 + i, 1), 0);
    }
  }
  // The first claim cuts one longest run; the block must still offer the other one.
  EXPECT_EQ(cp_gen_pool_alloc(p, 16), base + 100);
  EXPECT_EQ(cp_gen_pool_alloc(p, 16), base + 300);
  EXPECT_EQ(cp_gen_pool_alloc(p, 9), 0u);
  EXPECT_EQ(cp_gen_pool_alloc(p, 8), base + 200);
  EXPECT_EQ(cp_gen_pool_alloc(p, 1), 0u);
  EXPECT_EQ(cp_gen_pool_free(p, base + 100, 16), 0);
  EXPECT_EQ(cp_gen_pool_free(p, base + 300, 16), 0);
  EXPECT_EQ(cp_gen_pool_free(p, base + 200, 8), 0);
  for (size_t i = 0; i < 1024; ++i)
    if (!(i >= 100 && i < 116) && !(i >= 300 && i < 316) && !(i >= 200 && i < 208)) {
      ASSERT_EQ(cp_gen_pool_free(p, base + i, 1), 0);
    }
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

TEST(GenPoolHints, RunAcrossAGroupBoundaryRaisesTheLoweredGroup) {
  cp_gen_pool *p = cp_gen_pool_create(0, -1);
  const uintptr_t base = 0x100000;
  const size_t size = 70 * 512;  // blocks 0..69: groups 0 (blocks 0..63) and 1 (64..69)
  ASSERT_EQ(cp_gen_pool_add(p, base, size, -1), 0);
  fill_singles(p, base, size);  // the failing alloc lowered both groups to 0
  // [63*512 + 500, 64*512 + 10): right of block 63 (group 0) + left of block 64 (group 1);
  // only group 0's pair value covers it. Free from the group 1 side first.
  const size_t lo = 63 * 512 + 500, hi = 64 * 512 + 10;
  for (size_t i = hi; i-- > lo;) ASSERT_EQ(cp_gen_pool_free(p, base + i, 1), 0);
  EXPECT_EQ(cp_gen_pool_alloc(p, hi - lo + 1), 0u);
  EXPECT_EQ(cp_gen_pool_alloc(p, hi - lo), base + lo);
  EXPECT_EQ(cp_gen_pool_free(p, base + lo, hi - lo), 0);
  // One granule freed deep in group 1 is found after the run (first fit by address).
  ASSERT_EQ(cp_gen_pool_free(p, base + 69 * 512 + 7, 1), 0);
  EXPECT_EQ(cp_gen_pool_alloc(p, hi - lo), base + lo);
  EXPECT_EQ(cp_gen_pool_alloc(p, 1), base + 69 * 512 + 7);
  EXPECT_EQ(cp_gen_pool_free(p, base + lo, hi - lo), 0);
  for (size_t i = 0; i < size; ++i)
    if (i < lo || i >= hi) {
      ASSERT_EQ(cp_gen_pool_free(p, base + i, 1), 0);
    }
  EXPECT_EQ(cp_gen_pool_avail(p), size);
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

#ifdef COREPOOL_INJECT
// I7: a free whose block hint already covers its run does not write the hint, so a lowering
// computed from bits read before that free's clear can land after it; the lowering must then
// re-read the bits and raise the hint back. These park an allocating thread between its
// failed scan and its lowering CAS (the "genpool.lower.cas" injection point), free a range
// whose run the stale hint covers, then let the lowering land. Without the re-read the
// freed run stays hidden under the lowered block and group hints and the last alloc fails.
park_point g_lower_park{"genpool.lower.cas"};

// The caller left block 0 with a stale hint and [freed, freed + nfreed) allocated; `parked`
// is the allocation that parks before lowering block 0; `last` must then return `want`.
template <class Parked, class Last>
void free_during_lowering(cp_gen_pool *p, uintptr_t freed, size_t nfreed, Parked parked, Last last,
                          uintptr_t want) {
  g_lower_park.parked.store(false);
  g_lower_park.release.store(false);
  void (*hook)(const char *) = park_hook;
  std::atomic_ref(cp_inject_hook).store(hook, std::memory_order_release);
  uintptr_t parked_got = 1;
  std::thread t([&] {
    t_park = &g_lower_park;
    parked_got = parked();
  });
  while (!g_lower_park.parked.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // The hint of block 0 still covers the run this free makes: it skips its hint write.
  EXPECT_EQ(cp_gen_pool_free(p, freed, nfreed), 0);
  g_lower_park.release.store(true);
  t.join();
  hook = nullptr;
  std::atomic_ref(cp_inject_hook).store(hook, std::memory_order_release);
  EXPECT_EQ(parked_got, 0u);  // its pass over block 0 ended before the free
  EXPECT_EQ(last(), want) << "a free run was hidden under a lowered hint";
}

// A 1024-granule pool at kHintBase where everything is allocated in single granules but
// [lo, hi) in block 0 and the even granules of [600, 640) (free singles elsewhere).
constexpr uintptr_t kHintBase = 0x100000;
void hint_setup(cp_gen_pool **out, size_t lo, size_t hi) {
  cp_gen_pool *p = *out = cp_gen_pool_create(0, -1);
  ASSERT_EQ(cp_gen_pool_add(p, kHintBase, 1024, -1), 0);
  fill_singles(p, kHintBase, 1024);
  for (size_t i = lo; i < hi; ++i) ASSERT_EQ(cp_gen_pool_free(p, kHintBase + i, 1), 0);
  for (size_t i = 600; i < 640; i += 2) ASSERT_EQ(cp_gen_pool_free(p, kHintBase + i, 1), 0);
}
// Frees the singles hint_setup left allocated; the whole pool must then be available.
void hint_teardown(cp_gen_pool *p, size_t lo, size_t hi) {
  for (size_t i = 0; i < 1024; ++i)
    if ((i < lo || i >= hi) && !(i >= 600 && i < 640 && i % 2 == 0)) {
      ASSERT_EQ(cp_gen_pool_free(p, kHintBase + i, 1), 0);
    }
  EXPECT_EQ(cp_gen_pool_avail(p), 1024u);
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

// Unaligned: a failed scan caps block 0 at n - 1.
TEST(GenPoolHints, FreeDuringCapLoweringStaysVisible) {
  cp_gen_pool *p = nullptr;
  const uintptr_t base = kHintBase;
  ASSERT_NO_FATAL_FAILURE(hint_setup(&p, 100, 116));
  // Block 0's hint says 16 (a claim does not lower it); only [108, 116) is free.
  ASSERT_EQ(cp_gen_pool_alloc(p, 8), base + 100);
  free_during_lowering(
      p, base + 100, 8, [&] { return cp_gen_pool_alloc(p, 16); },
      [&] { return cp_gen_pool_alloc(p, 16); }, base + 100);
  EXPECT_EQ(cp_gen_pool_free(p, base + 100, 16), 0);
  hint_teardown(p, 100, 116);
}

// Aligned: a failed scan recomputes block 0 exactly (refresh_block).
TEST(GenPoolHints, FreeDuringExactLoweringStaysVisible) {
  cp_gen_pool *p = nullptr;
  const uintptr_t base = kHintBase;
  ASSERT_NO_FATAL_FAILURE(hint_setup(&p, 96, 128));
  // Block 0's hint says 32; only [120, 128) is free: no 16-aligned run of 16.
  ASSERT_EQ(cp_gen_pool_alloc(p, 24), base + 96);
  cp_genpool_data_align a16{16};
  auto aligned16 = [&] { return cp_gen_pool_alloc_algo(p, 16, CP_GENPOOL_FIRST_FIT_ALIGN, &a16); };
  free_during_lowering(p, base + 96, 24, aligned16, aligned16, base + 96);
  EXPECT_EQ(cp_gen_pool_free(p, base + 96, 16), 0);
  hint_teardown(p, 96, 128);
}
#endif

// ---- chaos: owner stamps over whole ranges, signal storm allocating in the handler ----------
struct stress_ctx {
  cp_gen_pool *pool;
  uintptr_t base;
  size_t size;
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> handler_allocs{0};
};
stress_ctx *g_stress;

inline void stamp(uintptr_t a, size_t n, uint64_t v) {
  auto *w = reinterpret_cast<uint64_t *>(a);
  for (size_t i = 0; i < n / 8; ++i) w[i] = v;
}
inline bool check(uintptr_t a, size_t n, uint64_t v) {
  auto *w = reinterpret_cast<const uint64_t *>(a);
  for (size_t i = 0; i < n / 8; ++i)
    if (w[i] != v) return false;
  return true;
}

void stress_signal(int worker, void *) {
  stress_ctx *c = g_stress;
  static thread_local uint64_t seq = 0;
  size_t n = 64 * (1 + (seq % 5));
  uintptr_t a = cp_gen_pool_alloc(c->pool, n);
  if (!a) return;
  uint64_t v = (uint64_t{1} << 63) | (static_cast<uint64_t>(worker) << 40) | ++seq;
  stamp(a, n, v);
  if (!check(a, n, v)) c->errors.fetch_add(1);
  if (cp_gen_pool_free(c->pool, a, n) != 0) c->errors.fetch_add(1);
  c->handler_allocs.fetch_add(1, std::memory_order_relaxed);
}

// spread: the pool in spread mode, and (test builds) the odd workers add to avail atomically,
// as threads without rseq do, while the even ones use the per-CPU sequences.
void run_stress(int threads, bool spread = false) {
  const size_t size = 1 << 20;
  auto *mem = static_cast<unsigned char *>(aligned_alloc(4096, size));
  stress_ctx c;
  c.pool = cp_gen_pool_create(6, -1);
  c.base = reinterpret_cast<uintptr_t>(mem);
  c.size = size;
  ASSERT_EQ(cp_gen_pool_add(c.pool, c.base, size, -1), 0);
  ASSERT_EQ(cp_gen_pool_set_spread(c.pool, spread), 0);
  g_stress = &c;
  corepool::chaos::options o;
  o.threads = threads;
  o.signal_storm = true;
  o.storm_hz = GP_SANITIZED ? 2000 : 10000;
  o.deadline = std::chrono::milliseconds(30000);  // safety net; bodies stop on their own
  const int iters = GP_SANITIZED ? 4000 : 40000;
  // Each body stops after its iterations or this time budget, whichever comes first.
  const auto budget = std::chrono::milliseconds(GP_SANITIZED ? 700 : 1000);
  const auto t_end = std::chrono::steady_clock::now() + budget;
  auto rep = corepool::chaos::run(
      o,
      [&](int w) {
#ifdef COREPOOL_INJECT
        corepool::ds::detail::t_stripe_force_atomic = spread && w % 2 == 1;
#endif
        corepool::chaos::rng r(static_cast<uint64_t>(w) + 7);
        struct live_t {
          uintptr_t a;
          size_t n;
          uint64_t v;
        } live[32];
        int nl = 0;
        uint64_t seq = 0;
        static const cp_genpool_algo algos[] = {CP_GENPOOL_FIRST_FIT, CP_GENPOOL_FIRST_FIT_ALIGN,
                                                CP_GENPOOL_BEST_FIT,
                                                CP_GENPOOL_FIRST_FIT_ORDER_ALIGN};
        for (int i = 0; i < iters && !corepool::chaos::should_stop(); ++i) {
          if (i % 128 == 0 && std::chrono::steady_clock::now() > t_end) break;
          if (nl < 32 && (nl == 0 || r.next() % 2)) {
            size_t n = 64 * (1 + r.next() % (r.next() % 8 == 0 ? 600 : 12));
            cp_genpool_data_align al{.align = size_t{64} << (r.next() % 4)};
            auto algo = algos[r.next() % 4];
            uintptr_t a = cp_gen_pool_alloc_algo(c.pool, n, algo, &al);
            if (!a) continue;
            uint64_t v = (static_cast<uint64_t>(w) << 40) | ++seq;
            stamp(a, n, v);
            live[nl++] = {a, n, v};
          } else {
            int k = static_cast<int>(r.next() % static_cast<uint64_t>(nl));
            if (!check(live[k].a, live[k].n, live[k].v)) c.errors.fetch_add(1);
            if (cp_gen_pool_free(c.pool, live[k].a, live[k].n) != 0) c.errors.fetch_add(1);
            live[k] = live[--nl];
          }
        }
        while (nl > 0) {
          --nl;
          if (!check(live[nl].a, live[nl].n, live[nl].v)) c.errors.fetch_add(1);
          if (cp_gen_pool_free(c.pool, live[nl].a, live[nl].n) != 0) c.errors.fetch_add(1);
        }
      },
      stress_signal, nullptr);
  EXPECT_TRUE(rep.in_time);
  EXPECT_EQ(c.errors.load(), 0u) << "overlapping allocations or failed frees";
  EXPECT_EQ(cp_gen_pool_avail(c.pool), size);
  cp_gen_pool_set_spread(c.pool, false);  // the checks below expect address order from 0
  // No hint was left under its bits: block-sized requests (the hinted small-request path,
  // block and group hints) come back in address order, one per 512-granule block.
  for (size_t off = 0; off < size; off += 512 * 64)
    EXPECT_EQ(cp_gen_pool_alloc(c.pool, 512 * 64), c.base + off) << "hint under its bits";
  for (size_t off = 0; off < size; off += 512 * 64)
    EXPECT_EQ(cp_gen_pool_free(c.pool, c.base + off, 512 * 64), 0);
  // The bitmap really is empty: the whole chunk comes back in one piece.
  EXPECT_EQ(cp_gen_pool_alloc(c.pool, size), c.base);
  EXPECT_EQ(cp_gen_pool_free(c.pool, c.base, size), 0);
  EXPECT_EQ(cp_gen_pool_destroy(c.pool), 0);
  g_stress = nullptr;
  free(mem);
  ::testing::Test::RecordProperty("signals", static_cast<int>(rep.signals));
  EXPECT_GT(rep.signals, 0u);
  EXPECT_GT(c.handler_allocs.load(), 0u);
}

TEST(GenPoolChaos, T1) {
  run_stress(1);
}
TEST(GenPoolChaos, T2) {
  run_stress(2);
}
TEST(GenPoolChaos, T8) {
  run_stress(8);
}
TEST(GenPoolChaos, T32) {
  run_stress(32);
}
// Spread mode: threads migrate between CPUs (so between homes) while they allocate.
TEST(GenPoolChaos, SpreadT8) {
  run_stress(8, true);
}
TEST(GenPoolChaos, SpreadT32) {
  run_stress(32, true);
}

// ---- process-shared --------------------------------------------------------------------------
// Region layout for the test: [control | pool state | data chunk]. The control block
// records each child's live allocations (two-phase: size first, then address) so the parent
// can free what the killed child held.
struct shared_ctl {
  static constexpr int kSlots = 16;
  struct slot {
    std::atomic<uint64_t> size;  // 0 = empty
    std::atomic<uint64_t> addr;  // 0 = pending (alloc may or may not have happened);
                                 // addr|1 = being freed
  };
  std::atomic<uint64_t> progress[4];
  slot slots[4][kSlots];
};

// spread: the region's pool in spread mode (the children allocate from their CPUs' homes).
void fork_four_kill_one(bool spread) {
  const size_t ctl_size = 64 * 1024, meta_size = 256 * 1024, data_size = 1 << 20;
  const size_t total = ctl_size + meta_size + data_size;
  void *m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  auto *ctl = new (m) shared_ctl();
  void *pool_mem = static_cast<char *>(m) + ctl_size;
  uintptr_t data = reinterpret_cast<uintptr_t>(m) + ctl_size + meta_size;
  cp_gen_pool *p = cp_gen_pool_create_shared(pool_mem, meta_size, 6);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(cp_gen_pool_add(p, data, data_size, -1), 0);
  ASSERT_EQ(cp_gen_pool_set_spread(p, spread), 0);
  EXPECT_LT(cp_gen_pool_shared_meta_avail(p), meta_size);
  const int iters = GP_SANITIZED ? 20000 : 200000;
  pid_t pids[4];
  for (int k = 0; k < 4; ++k) {
    pids[k] = fork();
    ASSERT_GE(pids[k], 0);
    if (pids[k] == 0) {
      cp_gen_pool *cp = cp_gen_pool_attach_shared(pool_mem, meta_size);
      if (!cp) _exit(2);
      corepool::chaos::rng r(static_cast<uint64_t>(k) + 99);
      int bad = 0;
      for (int i = 0; i < iters || k == 0; ++i) {  // child 0 runs until killed
        auto &s = ctl->slots[k][r.next() % shared_ctl::kSlots];
        if (s.size.load() == 0) {
          size_t n = 64 * (1 + r.next() % 40);
          s.size.store(n);
          uintptr_t a = cp_gen_pool_alloc(cp, n);
          if (!a) {
            s.size.store(0);
            continue;
          }
          s.addr.store(a);
          stamp(a, n, (static_cast<uint64_t>(k) << 40) | static_cast<uint64_t>(i));
        } else {
          uint64_t a = s.addr.load(), n = s.size.load();
          s.addr.store(a | 1);  // freeing: the free may or may not have happened
          if (cp_gen_pool_free(cp, a, n) != 0) ++bad;
          s.addr.store(0);
          s.size.store(0);
        }
        ctl->progress[k].fetch_add(1);
      }
      for (auto &s : ctl->slots[k])
        if (s.size.load()) {
          if (cp_gen_pool_free(cp, s.addr.load(), s.size.load()) != 0) ++bad;
          s.addr.store(0);
          s.size.store(0);
        }
      _exit(bad ? 1 : 0);
    }
  }
  while (ctl->progress[0].load() < 2000) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  kill(pids[0], SIGKILL);
  for (int k = 0; k < 4; ++k) {
    int st = 0;
    ASSERT_EQ(waitpid(pids[k], &st, 0), pids[k]);
    if (k == 0) {
      EXPECT_TRUE(WIFSIGNALED(st));
    } else {
      EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "child " << k;
    }
  }
  // Only the killed child's allocations remain: free them from its records.
  cp_gen_pool *q = cp_gen_pool_attach_shared(pool_mem, meta_size);
  ASSERT_NE(q, nullptr);
  // The dead child may have been inside one alloc (slot pending) or one free (slot marked
  // freeing; if the free had claimed the allocation, its bits may be partly cleared): that
  // one request's range is all it may leak, and it was its own.
  uint64_t in_flight = 0;
  for (auto &s : ctl->slots[0]) {
    uint64_t n = s.size.load(), a = s.addr.load();
    if (n && (a & 1)) {
      int r = cp_gen_pool_free(q, a & ~uint64_t{1}, n);
      EXPECT_TRUE(r == 0 || r == -EINVAL) << r;
      if (r != 0) in_flight += (n + 63) & ~uint64_t{63};
    } else if (n && a) {
      EXPECT_EQ(cp_gen_pool_free(q, a, n), 0);
    } else if (n) {
      in_flight += (n + 63) & ~uint64_t{63};
    }
  }
  size_t used = cp_gen_pool_size(q) - cp_gen_pool_avail(q);
  EXPECT_LE(used, in_flight) << "leaked more than the dead child's request in flight";
  if (used == 0) {
    EXPECT_EQ(cp_gen_pool_alloc(q, data_size), data);  // bitmap fully clear
    EXPECT_EQ(cp_gen_pool_free(q, data, data_size), 0);
  }
  EXPECT_EQ(cp_gen_pool_attach_shared(static_cast<char *>(pool_mem) + 64, meta_size - 64), nullptr);
  EXPECT_EQ(cp_gen_pool_spread(q), spread);  // the setting is the region's
  cp_gen_pool_detach(q);
  cp_gen_pool_detach(p);
  munmap(m, total);
}

TEST(GenPoolShared, ForkFourKillOne) {
  fork_four_kill_one(false);
}
TEST(GenPoolShared, ForkFourKillOneSpread) {
  fork_four_kill_one(true);
}

}  // namespace
