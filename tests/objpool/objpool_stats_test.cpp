// cp_objpool_stats / cp_objpool_dump: the counters move exactly as a scripted single-threaded
// sequence dictates, the dump parses back to the same figures, and COREPOOL_STATS=1 prints
// the live pools at exit (a child process).
#include <corepool/cpu.h>
#include <corepool/objpool.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <corepool/objpool.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../dump_parse.h"

namespace {

// The scripted counts are those of the per-CPU tiers: these pools go without the thread
// tier whatever COREPOOL_THREAD_CACHE says.
cp_objpool *make(int n, unsigned ring_capacity, unsigned flags) {
  cp_objpool_attr a{};
  a.ring_capacity = ring_capacity;
  a.flags = flags | CP_OBJPOOL_F_NOTHREADCACHE;
  cp_objpool *p = nullptr;
  EXPECT_EQ(cp_objpool_init_attr(&p, n, 32, nullptr, nullptr, nullptr, &a), 0);
  return p;
}

struct cp_objpool_stats stats_of(const cp_objpool *p) {
  struct cp_objpool_stats st {};
  EXPECT_EQ(cp_objpool_stats(p, &st), 0);
  return st;
}

// Up to `max` possible CPUs in `allowed`, in id order.
std::vector<unsigned> runnable_cpus(const cpu_set_t &allowed, size_t max) {
  std::vector<unsigned> cpus;
  for (unsigned c = 0; c < CPU_SETSIZE && cpus.size() < max; c++)
    if (CPU_ISSET(c, &allowed) && c < cp_nr_cpu_ids() && cp_cpu_possible(c)) cpus.push_back(c);
  return cpus;
}

// A pool of n with per-CPU caches of `cache` objects; NULL (nothing left) when it got none.
cp_objpool *make_cached(int n, unsigned cache) {
  cp_objpool_attr a{};
  a.cache_capacity = cache;
  a.flags = CP_OBJPOOL_F_NOTHREADCACHE;
  cp_objpool *p = nullptr;
  EXPECT_EQ(cp_objpool_init_attr(&p, n, 32, nullptr, nullptr, nullptr, &a), 0);
  if (p && cp_objpool_cache_capacity(p) == 0) {
    cp_objpool_free(p);
    return nullptr;
  }
  return p;
}

bool pin(unsigned cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  return sched_setaffinity(0, sizeof s, &s) == 0;
}

TEST(ObjpoolStats, NullArguments) {
  struct cp_objpool_stats st {};
  EXPECT_EQ(cp_objpool_stats(nullptr, &st), -EINVAL);
  cp_objpool *p = make(8, 0, 0);
  EXPECT_EQ(cp_objpool_stats(p, nullptr), -EINVAL);
  EXPECT_EQ(cp_objpool_dump(nullptr, 2), -EINVAL);
  EXPECT_EQ(cp_objpool_dump(p, -1), -EBADF);
  cp_objpool_free(p);
}

// Without a cache no pop is a miss (the rings are the normal path: no refills), and every
// pushed object is a spill.
TEST(ObjpoolStats, ScriptedCountsWithoutCache) {
  constexpr int n = 64;
  cp_objpool *p = make(n, 0, CP_OBJPOOL_F_NOCACHE);
  auto st = stats_of(p);
  EXPECT_EQ(st.nr_objs, unsigned{n});
  EXPECT_EQ(st.nr_free, unsigned{n});
  EXPECT_EQ(st.nr_free_cache, 0u);
  EXPECT_EQ(st.refills + st.spills + st.overflows + st.steals, 0u);
  std::vector<void *> held;
  for (int i = 0; i < 10; i++) held.push_back(cp_objpool_pop(p));
  st = stats_of(p);
  EXPECT_EQ(st.nr_free, unsigned{n - 10});
  EXPECT_EQ(st.refills + st.spills, 0u);
  void *bulk[5];
  ASSERT_EQ(cp_objpool_pop_bulk(p, bulk, 5), 5u);
  ASSERT_EQ(cp_objpool_push_bulk(bulk, 5, p), 0);
  EXPECT_EQ(stats_of(p).spills, 5u);  // five objects
  for (void *o : held) ASSERT_EQ(cp_objpool_push(o, p), 0);
  st = stats_of(p);
  EXPECT_EQ(st.spills, 15u);
  EXPECT_EQ(st.refills, 0u);
  EXPECT_EQ(st.nr_free, unsigned{n});
  EXPECT_EQ(st.steals, 0u);
  // Every ring holds all n: an object went past its ring only for a thread without rseq.
  EXPECT_EQ(st.overflows, st.nr_free_overflow);
  EXPECT_EQ(st.nr_free_rings + st.nr_free_overflow, unsigned{n});
  cp_objpool_free(p);
}

// With a cache of 16 on one CPU: a miss refills 9 (half the cache plus one: one for the
// caller, 8 into the cache), so 18 pops are 2 refills; pushing the 18 back fills the cache
// with 16 and spills 2 into this CPU's ring.
TEST(ObjpoolStats, ScriptedCountsWithCache) {
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  const auto cpus = runnable_cpus(saved, 1);
  ASSERT_EQ(cpus.size(), 1u);
  constexpr int n = 64;
  cp_objpool *p = make_cached(n, 16);
  if (!p) GTEST_SKIP() << "no per-CPU cache (no rseq or no fence)";
  ASSERT_TRUE(pin(cpus[0]));
  std::vector<void *> held;
  for (int i = 0; i < 18; i++) held.push_back(cp_objpool_pop(p));
  auto st = stats_of(p);
  EXPECT_EQ(st.refills, 2u);
  EXPECT_EQ(st.spills, 0u);
  EXPECT_EQ(st.nr_free_cache, 0u);
  EXPECT_EQ(st.nr_free, unsigned{n - 18});
  for (void *o : held) ASSERT_EQ(cp_objpool_push(o, p), 0);
  st = stats_of(p);
  EXPECT_EQ(st.nr_free_cache, 16u);
  EXPECT_EQ(st.spills, 2u);
  EXPECT_EQ(st.refills, 2u);
  EXPECT_EQ(st.overflows + st.steals, 0u);
  EXPECT_EQ(st.nr_free, unsigned{n});
  cp_objpool_free(p);
  sched_setaffinity(0, sizeof saved, &saved);
}

// Rings of 4: once the objects are all out, pushing them back overflows all but what the
// rings take, and every overflowed object is still in the overflow tier.
TEST(ObjpoolStats, OverflowsCountWhatLeftTheRing) {
  constexpr int n = 64;
  cp_objpool *p = make(n, 4, CP_OBJPOOL_F_NOCACHE);
  std::vector<void *> held;
  while (void *o = cp_objpool_pop(p)) held.push_back(o);
  ASSERT_EQ(held.size(), size_t{n});
  auto st = stats_of(p);
  EXPECT_EQ(st.nr_free, 0u);
  EXPECT_EQ(st.refills, 0u);                // no cache: no misses
  EXPECT_EQ(st.spills + st.overflows, 0u);  // init's fill counts as neither
  for (void *o : held) ASSERT_EQ(cp_objpool_push(o, p), 0);
  st = stats_of(p);
  EXPECT_EQ(st.spills, unsigned{n});
  EXPECT_EQ(st.overflows, st.nr_free_overflow);
  unsigned rings = 0;
  for (unsigned c = 0; c < cp_nr_cpu_ids(); c++) rings += cp_cpu_possible(c) ? 4 : 0;
  EXPECT_GE(st.overflows + rings, unsigned{n});
  EXPECT_GT(st.overflows, 0u);
  cp_objpool_free(p);
}

// Objects cached on CPU a are stolen, all of them, by a thread on CPU b that empties the pool.
TEST(ObjpoolStats, StealsCountObjectsTakenFromOtherCaches) {
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  const auto cpus = runnable_cpus(saved, 2);
  if (cpus.size() < 2) GTEST_SKIP() << "needs two possible CPUs to run on";
  constexpr int n = 256;
  cp_objpool *p = make_cached(n, 32);
  if (!p) GTEST_SKIP() << "no per-CPU cache (no rseq or no fence)";
  ASSERT_TRUE(pin(cpus[0]));
  std::vector<void *> held;
  while (void *o = cp_objpool_pop(p)) held.push_back(o);
  for (void *o : held) ASSERT_EQ(cp_objpool_push(o, p), 0);
  const auto before = stats_of(p);
  EXPECT_GT(before.nr_free_cache, 0u);
  ASSERT_TRUE(pin(cpus[1]));
  held.clear();
  while (void *o = cp_objpool_pop(p)) held.push_back(o);
  EXPECT_EQ(held.size(), size_t{n});
  const auto after = stats_of(p);
  EXPECT_EQ(after.steals - before.steals, before.nr_free_cache);
  for (void *o : held) cp_objpool_push(o, p);
  cp_objpool_free(p);
  sched_setaffinity(0, sizeof saved, &saved);
}

TEST(ObjpoolStats, DumpParsesToTheStats) {
  constexpr int n = 100;
  cp_objpool *p = make(n, 8, 0);
  std::vector<void *> held;
  for (int i = 0; i < 30; i++) held.push_back(cp_objpool_pop(p));
  for (int i = 0; i < 10; i++) cp_objpool_push(held[static_cast<size_t>(i)], p);
  const auto st = stats_of(p);
  const auto lines =
      corepool::test::parse_dump("objpool", p, [p](int fd) { return cp_objpool_dump(p, fd); });
  ASSERT_GE(lines.size(), 2u);
  const auto &head = lines.front();
  EXPECT_EQ(head.at("objects"), unsigned{n});
  EXPECT_EQ(head.at("free"), st.nr_free);
  EXPECT_EQ(head.at("free"), unsigned{n - 20});
  EXPECT_EQ(head.at("cache") + head.at("rings") + head.at("overflow") + head.at("threads"),
            head.at("free"));
  EXPECT_EQ(head.at("ring_capacity"), 8u);
  unsigned long long per_cpu = 0, cpu_lines = 0;
  for (const auto &l : lines)
    if (l.count("cpu")) per_cpu += l.at("free"), cpu_lines++;
  unsigned possible = 0;
  for (unsigned c = 0; c < cp_nr_cpu_ids(); c++) possible += cp_cpu_possible(c) ? 1 : 0;
  EXPECT_EQ(cpu_lines, possible);
  EXPECT_EQ(per_cpu, head.at("cache") + head.at("rings"));
  const auto &tail = lines.back();
  EXPECT_EQ(tail.at("refills"), st.refills);
  EXPECT_EQ(tail.at("spills"), st.spills);
  EXPECT_EQ(tail.at("overflows"), st.overflows);
  EXPECT_EQ(tail.at("steals"), st.steals);
  for (size_t i = 10; i < held.size(); i++) cp_objpool_push(held[i], p);
  cp_objpool_free(p);
}

// With the thread tier on, the objects in the threads' stacks are a tier of their own.
TEST(ObjpoolStats, ThreadStacksAreCounted) {
  constexpr int n = 64;
  cp_objpool_attr a{};
  a.thread_cache = 8;
  cp_objpool *p = nullptr;
  ASSERT_EQ(cp_objpool_init_attr(&p, n, 32, nullptr, nullptr, nullptr, &a), 0);
  if (cp_objpool_thread_cache_capacity(p) == 0) {
    cp_objpool_free(p);
    GTEST_SKIP() << "no thread tier here (it needs rseq and the rseq fence)";
  }
  std::vector<void *> held;
  for (int i = 0; i < 6; i++) held.push_back(cp_objpool_pop(p));
  for (void *o : held) ASSERT_EQ(cp_objpool_push(o, p), 0);  // into this thread's stack
  const auto st = stats_of(p);
  // The six went onto this thread's stack (room for 8; a full one moves a batch of 5 below
  // and keeps the new object): at least 5 are there now.
  EXPECT_GE(st.nr_free_threads, 5u);
  EXPECT_EQ(st.nr_free, unsigned{n});
  EXPECT_EQ(st.nr_free,
            st.nr_free_cache + st.nr_free_rings + st.nr_free_overflow + st.nr_free_threads);
  const auto lines =
      corepool::test::parse_dump("objpool", p, [p](int fd) { return cp_objpool_dump(p, fd); });
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front().at("threads"), st.nr_free_threads);
  cp_objpool_free(p);
}

// The child half of ExitReportListsLivePools: one pool freed, one alive at exit.
TEST(ObjpoolStats, ExitReportChild) {
  if (!std::getenv("COREPOOL_STATS_TEST_CHILD")) GTEST_SKIP() << "run by ExitReportListsLivePools";
  cp_objpool *gone = make(16, 0, 0);
  cp_objpool *live = make(48, 0, 0);  // made while `gone` lives: the two addresses differ
  cp_objpool_free(gone);
  for (int i = 0; i < 3; i++) (void)cp_objpool_pop(live);
  std::printf("live %p gone %p\n", static_cast<void *>(live), static_cast<void *>(gone));
}

TEST(ObjpoolStats, ExitReportListsLivePools) {
  const std::string text = corepool::test::run_stats_child("ObjpoolStats.ExitReportChild");
  const auto [live, gone] = corepool::test::live_and_gone(text);
  ASSERT_FALSE(live.empty()) << text;
  EXPECT_NE(text.find("corepool 0x0 stats_report_pools="), std::string::npos) << text;
  EXPECT_NE(text.find(std::string("objpool ") + live + " objects=48 free=45 "), std::string::npos)
      << text;
  EXPECT_EQ(text.find(std::string("objpool ") + gone), std::string::npos) << text;
}

}  // namespace

namespace {
// The wrapper's stats() is the C call's answer.
TEST(ObjpoolStats, CxxStatsMatchesTheCall) {
  cp_objpool_attr a{};
  a.ring_capacity = 4;
  a.flags = CP_OBJPOOL_F_NOCACHE;
  corepool::objpool<int> pool(20, a);
  std::vector<int *> held;
  while (int *x = pool.try_pop()) held.push_back(x);
  for (int *x : held) pool.put(x);
  const auto s = pool.stats();
  struct cp_objpool_stats c {};
  ASSERT_EQ(cp_objpool_stats(pool.native(), &c), 0);
  EXPECT_EQ(s.nr_objs, 20u);
  EXPECT_EQ(s.nr_free, 20u);
  EXPECT_GT(s.overflows, 0u);
  EXPECT_EQ(s.nr_free_rings, c.nr_free_rings);
  EXPECT_EQ(s.nr_free_overflow, c.nr_free_overflow);
  EXPECT_EQ(s.overflows, c.overflows);
  EXPECT_EQ(s.refills + s.spills + s.steals, c.refills + c.spills + c.steals);
}
}  // namespace
