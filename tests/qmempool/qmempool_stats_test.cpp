// cp_qmempool_stats / cp_qmempool_dump: on one pinned CPU the counters move exactly as a
// scripted sequence dictates (half-cache refills from the backing allocator, one spill when
// the cache overflows), a refill on another CPU takes a depot's objects, and the dump parses
// back to the same figures.
#include <corepool/cpu.h>
#include <corepool/qmempool.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <corepool/qmempool.hpp>

#include <cerrno>
#include <vector>

#include "../dump_parse.h"

namespace {

// The scripted counts are those of the per-CPU tiers: these pools go without the thread
// tier even when COREPOOL_THREAD_CACHE is set (qmempool_test_thread_env).
int create_per_cpu(cp_qmempool **p, uint32_t localq, uint32_t sharedq, uint32_t prealloc,
                   size_t size) {
  struct cp_qmempool_attr a {};
  a.flags = CP_QMEMPOOL_F_NOTHREADCACHE;
  return cp_qmempool_create_attr(p, localq, sharedq, prealloc, size, nullptr, &a);
}

struct cp_qmempool_stats stats_of(const cp_qmempool *p) {
  struct cp_qmempool_stats st {};
  EXPECT_EQ(cp_qmempool_stats(p, &st), 0);
  return st;
}

// Pins the calling thread for the test's life, then restores its mask.
class pinned {
 public:
  pinned() { sched_getaffinity(0, sizeof saved_, &saved_); }
  ~pinned() { sched_setaffinity(0, sizeof saved_, &saved_); }
  // The i-th CPU of the saved mask, or -1.
  int nth(unsigned i) const {
    for (unsigned c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &saved_) && i-- == 0) return static_cast<int>(c);
    return -1;
  }
  bool to(int cpu) const {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return sched_setaffinity(0, sizeof s, &s) == 0;
  }

 private:
  cpu_set_t saved_;
};

TEST(QmempoolStats, NullArguments) {
  struct cp_qmempool_stats st {};
  EXPECT_EQ(cp_qmempool_stats(nullptr, &st), -EINVAL);
  cp_qmempool *p = nullptr;
  ASSERT_EQ(create_per_cpu(&p, 16, 64, 0, 32), 0);
  EXPECT_EQ(cp_qmempool_stats(p, nullptr), -EINVAL);
  EXPECT_EQ(cp_qmempool_dump(nullptr, 2), -EINVAL);
  EXPECT_EQ(cp_qmempool_dump(p, -1), -EBADF);
  cp_qmempool_destroy(p);
}

// localq_sz 16: refills and spills move 8 objects. 17 allocations: refills at the 1st, 9th
// and 17th (24 from the backing allocator, 7 left cached); 17 frees: the 10th finds the
// cache full and spills 8.
TEST(QmempoolStats, ScriptedCountsOnOneCpu) {
  pinned pin;
  ASSERT_TRUE(pin.to(pin.nth(0)));
  cp_qmempool *p = nullptr;
  ASSERT_EQ(create_per_cpu(&p, 16, 64, 0, 32), 0);
  auto st = stats_of(p);
  EXPECT_EQ(st.nr_free + st.refills + st.spills + st.backing_allocs + st.backing_frees, 0u);
  std::vector<void *> held;
  for (int i = 0; i < 17; i++) held.push_back(cp_qmempool_alloc(p));
  st = stats_of(p);
  EXPECT_EQ(st.refills, 3u);
  EXPECT_EQ(st.backing_allocs, 24u);
  EXPECT_EQ(st.nr_free_cache, 7u);
  EXPECT_EQ(st.nr_free, 7u);
  EXPECT_EQ(st.spills, 0u);
  for (void *o : held) cp_qmempool_free(p, o);
  st = stats_of(p);
  EXPECT_EQ(st.spills, 1u);
  EXPECT_EQ(st.nr_free, 24u);
  EXPECT_EQ(st.nr_free_cache, 16u);
  EXPECT_EQ(st.nr_free_depots + st.nr_free_shared, 8u);
  EXPECT_EQ(st.refills, 3u);
  EXPECT_EQ(st.backing_allocs, 24u);
  EXPECT_EQ(st.backing_frees, 0u);
  EXPECT_EQ(st.depot_steals, 0u);
  cp_qmempool_destroy(p);
}

// Objects spilled into CPU a's depot are what a refill on CPU b takes first when its own
// depot and the shared queue are empty.
TEST(QmempoolStats, DepotStealsCountAnotherCpusDepot) {
  pinned pin;
  // Two CPUs we may run on, each with its own depot (a possible CPU).
  if (pin.nth(1) < 0 || static_cast<unsigned>(pin.nth(1)) >= cp_nr_cpu_ids() ||
      !cp_cpu_possible(static_cast<unsigned>(pin.nth(0))) ||
      !cp_cpu_possible(static_cast<unsigned>(pin.nth(1))))
    GTEST_SKIP() << "needs two possible CPUs to run on";
  ASSERT_TRUE(pin.to(pin.nth(0)));
  cp_qmempool *p = nullptr;
  ASSERT_EQ(create_per_cpu(&p, 16, 64, 0, 32), 0);
  std::vector<void *> held;
  for (int i = 0; i < 17; i++) held.push_back(cp_qmempool_alloc(p));
  for (void *o : held) cp_qmempool_free(p, o);
  const auto before = stats_of(p);
  if (before.nr_free_depots == 0) {
    cp_qmempool_destroy(p);
    GTEST_SKIP() << "no depots (rseq off): spills go to the shared queue";
  }
  ASSERT_TRUE(pin.to(pin.nth(1)));
  void *o = cp_qmempool_alloc(p);
  ASSERT_NE(o, nullptr);
  const auto after = stats_of(p);
  EXPECT_EQ(after.depot_steals, before.nr_free_depots);
  EXPECT_EQ(after.backing_allocs, before.backing_allocs);
  EXPECT_EQ(after.refills, before.refills + 1);
  cp_qmempool_free(p, o);
  cp_qmempool_destroy(p);
}

TEST(QmempoolStats, DumpParsesToTheStats) {
  cp_qmempool *p = nullptr;
  ASSERT_EQ(create_per_cpu(&p, 32, 64, 20, 48), 0);
  std::vector<void *> held;
  for (int i = 0; i < 5; i++) held.push_back(cp_qmempool_alloc(p));
  const auto st = stats_of(p);
  const auto lines =
      corepool::test::parse_dump("qmempool", p, [p](int fd) { return cp_qmempool_dump(p, fd); });
  ASSERT_GE(lines.size(), 2u);
  const auto &head = lines.front();
  EXPECT_EQ(head.at("free"), st.nr_free);
  EXPECT_EQ(head.at("cache") + head.at("depots") + head.at("shared") + head.at("threads"),
            head.at("free"));
  EXPECT_EQ(head.at("localq_sz"), 32u);
  EXPECT_EQ(head.at("sharedq_sz"), 64u);
  EXPECT_EQ(head.at("obj_size"), 48u);
  unsigned long long cache = 0, depots = 0, cpu_lines = 0, possible = 0;
  for (const auto &l : lines)
    if (l.count("cpu")) cache += l.at("cache"), depots += l.at("depot"), cpu_lines++;
  for (unsigned c = 0; c < cp_nr_cpu_ids(); c++) possible += cp_cpu_possible(c) ? 1 : 0;
  EXPECT_EQ(cpu_lines, possible);
  EXPECT_EQ(cache, head.at("cache"));
  EXPECT_EQ(depots, head.at("depots"));
  const auto &tail = lines.back();
  EXPECT_EQ(tail.at("refills"), st.refills);
  EXPECT_EQ(tail.at("spills"), st.spills);
  EXPECT_EQ(tail.at("depot_steals"), st.depot_steals);
  EXPECT_EQ(tail.at("backing_allocs"), st.backing_allocs);
  EXPECT_EQ(tail.at("backing_allocs"), 20u);  // the preallocation; the refill took from it
  EXPECT_EQ(tail.at("backing_frees"), st.backing_frees);
  for (void *o : held) cp_qmempool_free(p, o);
  cp_qmempool_destroy(p);
}

}  // namespace

namespace {
// A pool (localq 16, prealloc 16, 32-byte objects) whose thread tier holds 8 per thread;
// NULL (and nothing left behind) where the tier is unavailable.
cp_qmempool *with_tier(uint32_t sharedq) {
  struct cp_qmempool_attr a {};
  a.thread_cache = 8;
  cp_qmempool *p = nullptr;
  if (cp_qmempool_create_attr(&p, 16, sharedq, 16, 32, nullptr, &a) != 0) {
    ADD_FAILURE() << "cp_qmempool_create_attr failed";
    return nullptr;
  }
  if (cp_qmempool_thread_cache_capacity(p) == 0) {
    cp_qmempool_destroy(p);
    return nullptr;
  }
  return p;
}

// With the thread tier on, its refills from below the caches are refills too.
TEST(QmempoolStats, ThreadTierRefillsAreCounted) {
  cp_qmempool *p = with_tier(128);
  if (!p) GTEST_SKIP() << "no thread tier here (it needs rseq and the rseq fence)";
  std::vector<void *> held;
  for (int i = 0; i < 64; i++) held.push_back(cp_qmempool_alloc(p));  // more than the caches hold
  const auto st = stats_of(p);
  EXPECT_GE(st.refills, 1u);
  EXPECT_GE(st.backing_allocs, 64u);
  for (void *o : held) cp_qmempool_free(p, o);
  cp_qmempool_destroy(p);
}

// With the thread tier on, the objects in the threads' stacks are a tier of their own.
TEST(QmempoolStats, ThreadStacksAreCounted) {
  cp_qmempool *p = with_tier(64);
  if (!p) GTEST_SKIP() << "no thread tier here (it needs rseq and the rseq fence)";
  std::vector<void *> held;
  for (int i = 0; i < 6; i++) held.push_back(cp_qmempool_alloc(p));
  for (void *o : held) cp_qmempool_free(p, o);  // into this thread's stack (room for 8)
  const auto st = stats_of(p);
  // The six went onto this thread's stack (room for 8; a full one moves a batch of 5 below
  // and keeps the new object): at least 5 are there now.
  EXPECT_GE(st.nr_free_threads, 5u);
  EXPECT_EQ(st.nr_free,
            st.nr_free_cache + st.nr_free_depots + st.nr_free_shared + st.nr_free_threads);
  const auto lines =
      corepool::test::parse_dump("qmempool", p, [p](int fd) { return cp_qmempool_dump(p, fd); });
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front().at("threads"), st.nr_free_threads);
  cp_qmempool_destroy(p);
}

// The wrapper's stats() is the C call's answer.
TEST(QmempoolStats, CxxStatsMatchesTheCall) {
  corepool::qmempool q(16, 64, 10, 24);
  void *o = q.alloc();
  ASSERT_NE(o, nullptr);
  const auto s = q.stats();
  EXPECT_EQ(s.backing_allocs, 10u);
  EXPECT_EQ(s.nr_free, 9u);
  EXPECT_EQ(s.refills, stats_of(q.native()).refills);
  q.free(o);
}
}  // namespace
