// cp_gen_pool_stats / cp_gen_pool_dump: the figures follow a scripted sequence exactly
// (allocations, avail, the longest free run, the failure and growth counts), the dump parses
// back to them, and COREPOOL_STATS=1 lists the live handles at exit (a child process).
#include <corepool/genpool.h>
#include <gtest/gtest.h>
#include <corepool/genpool.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "../dump_parse.h"

namespace {

constexpr uintptr_t kBase = 0x10000000;  // addresses are never dereferenced
constexpr size_t kChunk = 64 * 1024;     // 1024 granules of 64 bytes

struct cp_gen_pool_stats stats_of(cp_gen_pool *p) {
  struct cp_gen_pool_stats st {};
  EXPECT_EQ(cp_gen_pool_stats(p, &st), 0);
  return st;
}

TEST(GenPoolStats, NullArguments) {
  struct cp_gen_pool_stats st {};
  EXPECT_EQ(cp_gen_pool_stats(nullptr, &st), -EINVAL);
  cp_gen_pool *p = cp_gen_pool_create(6, -1);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(cp_gen_pool_stats(p, nullptr), -EINVAL);
  EXPECT_EQ(cp_gen_pool_dump(nullptr, 2), -EINVAL);
  EXPECT_EQ(cp_gen_pool_dump(p, -1), -EBADF);
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

TEST(GenPoolStats, ScriptedFigures) {
  cp_gen_pool *p = cp_gen_pool_create(6, -1);
  ASSERT_NE(p, nullptr);
  auto st = stats_of(p);
  EXPECT_EQ(st.granule, 64u);
  EXPECT_EQ(st.size + st.avail + st.largest_free + st.nr_chunks + st.nr_allocations, 0u);
  ASSERT_EQ(cp_gen_pool_add(p, kBase, kChunk, -1), 0);
  st = stats_of(p);
  EXPECT_EQ(st.nr_chunks, 1u);
  EXPECT_EQ(st.size, kChunk);
  EXPECT_EQ(st.avail, kChunk);
  EXPECT_EQ(st.largest_free, kChunk);
  // First fit packs 64 + 128 + 640 bytes at the start.
  const uintptr_t a = cp_gen_pool_alloc(p, 64), b = cp_gen_pool_alloc(p, 100),
                  c = cp_gen_pool_alloc(p, 640);
  ASSERT_TRUE(a && b && c);
  st = stats_of(p);
  EXPECT_EQ(st.nr_allocations, 3u);
  EXPECT_EQ(st.avail, kChunk - 832);
  EXPECT_EQ(st.largest_free, kChunk - 832);
  ASSERT_EQ(cp_gen_pool_free(p, b, 100), 0);  // a hole of 128 before the tail
  st = stats_of(p);
  EXPECT_EQ(st.nr_allocations, 2u);
  EXPECT_EQ(st.largest_free, kChunk - 832);
  ASSERT_EQ(cp_gen_pool_free(p, c, 640), 0);  // the hole joins the tail
  EXPECT_EQ(stats_of(p).largest_free, kChunk - 64);
  ASSERT_EQ(cp_gen_pool_free(p, a, 64), 0);
  // Every granule taken, then every other one given back: runs of one granule.
  std::vector<uintptr_t> all;
  while (uintptr_t x = cp_gen_pool_alloc(p, 64)) all.push_back(x);
  ASSERT_EQ(all.size(), kChunk / 64);
  st = stats_of(p);
  EXPECT_EQ(st.avail, 0u);
  EXPECT_EQ(st.largest_free, 0u);
  EXPECT_EQ(st.failed_allocs, 1u);  // the call that ended the loop
  for (size_t i = 0; i < all.size(); i += 2) ASSERT_EQ(cp_gen_pool_free(p, all[i], 64), 0);
  st = stats_of(p);
  EXPECT_EQ(st.nr_allocations, all.size() / 2);
  EXPECT_EQ(st.avail, kChunk / 2);
  EXPECT_EQ(st.largest_free, 64u);
  EXPECT_EQ(cp_gen_pool_alloc(p, 128), 0u);  // no two free granules side by side
  EXPECT_EQ(stats_of(p).failed_allocs, 2u);
  // A second chunk: its whole range is the longest run.
  ASSERT_EQ(cp_gen_pool_add(p, kBase + 0x100000, 2 * kChunk, -1), 0);
  st = stats_of(p);
  EXPECT_EQ(st.nr_chunks, 2u);
  EXPECT_EQ(st.size, 3 * kChunk);
  EXPECT_EQ(st.largest_free, 2 * kChunk);
  EXPECT_EQ(st.grow_calls, 0u);
  for (size_t i = 1; i < all.size(); i += 2) ASSERT_EQ(cp_gen_pool_free(p, all[i], 64), 0);
  EXPECT_EQ(stats_of(p).nr_allocations, 0u);
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

// The growth callback's runs are counted; a run adds a chunk.
TEST(GenPoolStats, GrowCallsCountTheCallbackRuns) {
  cp_gen_pool *p = cp_gen_pool_create(12, -1);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(cp_gen_pool_add(p, kBase, 16 * 4096, -1), 0);
  struct ctx_t {
    std::atomic<uintptr_t> next{kBase + 0x1000000};
    std::atomic<int> runs{0};
  } ctx;
  ASSERT_EQ(cp_gen_pool_set_low_watermark(
                p, 4 * 4096,
                [](cp_gen_pool *pool, size_t, void *c) {
                  auto *x = static_cast<ctx_t *>(c);
                  cp_gen_pool_add(pool, x->next.fetch_add(0x100000), 16 * 4096, -1);
                  x->runs.fetch_add(1);
                },
                &ctx),
            0);
  std::vector<uintptr_t> got;
  for (int i = 0; i < 14; ++i) got.push_back(cp_gen_pool_alloc(p, 4096));
  // The callback runs on the background worker: wait for it (bounded).
  for (int i = 0; i < 500 && ctx.runs.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(cp_gen_pool_set_low_watermark(p, 0, nullptr, nullptr), 0);  // waits for a run
  const auto st = stats_of(p);
  EXPECT_GE(ctx.runs.load(), 1);
  EXPECT_EQ(st.grow_calls, static_cast<unsigned long long>(ctx.runs.load()));
  EXPECT_EQ(st.nr_chunks, 1u + static_cast<unsigned>(ctx.runs.load()));
  EXPECT_EQ(st.failed_allocs, 0u);
  for (uintptr_t a : got) ASSERT_EQ(cp_gen_pool_free(p, a, 4096), 0);
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

TEST(GenPoolStats, DumpParsesToTheStats) {
  cp_gen_pool *p = cp_gen_pool_create(6, -1);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(cp_gen_pool_add(p, kBase, kChunk, -1), 0);
  ASSERT_EQ(cp_gen_pool_add(p, kBase + 0x100000, kChunk / 2, -1), 0);
  const uintptr_t a = cp_gen_pool_alloc(p, 1000), b = cp_gen_pool_alloc(p, 64);
  ASSERT_TRUE(a && b);
  (void)cp_gen_pool_alloc(p, 4 * kChunk);  // fails
  const auto st = stats_of(p);
  const auto lines =
      corepool::test::parse_dump("gen_pool", p, [p](int fd) { return cp_gen_pool_dump(p, fd); });
  ASSERT_EQ(lines.size(), 4u);  // totals, two chunks, counters
  const auto &head = lines.front();
  EXPECT_EQ(head.at("size"), st.size);
  EXPECT_EQ(head.at("avail"), st.avail);
  EXPECT_EQ(head.at("largest_free"), st.largest_free);
  EXPECT_EQ(head.at("granule"), 64u);
  EXPECT_EQ(head.at("chunks"), 2u);
  EXPECT_EQ(head.at("allocations"), 2u);
  EXPECT_EQ(head.at("shared"), 0u);
  EXPECT_EQ(lines[1].at("start"), kBase);
  EXPECT_EQ(lines[1].at("allocations"), 2u);
  EXPECT_EQ(lines[2].at("start"), kBase + 0x100000);
  EXPECT_EQ(lines[2].at("largest_free"), kChunk / 2);
  EXPECT_EQ(lines[1].at("size") + lines[2].at("size"), st.size);
  EXPECT_EQ(lines[1].at("avail") + lines[2].at("avail"), st.avail);
  EXPECT_EQ(lines[3].at("failed_allocs"), 1u);
  EXPECT_EQ(lines[3].at("grow_calls"), 0u);
  ASSERT_EQ(cp_gen_pool_free(p, a, 1000), 0);
  ASSERT_EQ(cp_gen_pool_free(p, b, 64), 0);
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

// A shared pool's figures are the region's, its counters this handle's.
TEST(GenPoolStats, SharedHandlesShareTheFiguresNotTheCounters) {
  alignas(64) static char mem[64 * 1024];  // the region; no other process here
  cp_gen_pool *p = cp_gen_pool_create_shared(mem, sizeof mem, 6);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(cp_gen_pool_add(p, kBase, kChunk, -1), 0);
  cp_gen_pool *q = cp_gen_pool_attach_shared(mem, sizeof mem);
  ASSERT_NE(q, nullptr);
  const uintptr_t a = cp_gen_pool_alloc(p, 640);
  ASSERT_NE(a, 0u);
  EXPECT_EQ(cp_gen_pool_alloc(q, 2 * kChunk), 0u);
  const auto sp = stats_of(p), sq = stats_of(q);
  EXPECT_EQ(sq.nr_allocations, 1u);
  EXPECT_EQ(sq.avail, kChunk - 640);
  EXPECT_EQ(sp.avail, sq.avail);
  EXPECT_EQ(sp.failed_allocs, 0u);
  EXPECT_EQ(sq.failed_allocs, 1u);
  ASSERT_EQ(cp_gen_pool_free(q, a, 640), 0);
  cp_gen_pool_detach(q);
  cp_gen_pool_detach(p);
}

// The child half of ExitReportListsLiveHandles: one handle destroyed, one alive at exit.
TEST(GenPoolStats, ExitReportChild) {
  if (!std::getenv("COREPOOL_STATS_TEST_CHILD"))
    GTEST_SKIP() << "run by ExitReportListsLiveHandles";
  cp_gen_pool *gone = cp_gen_pool_create(6, -1);
  cp_gen_pool *live = cp_gen_pool_create(6, -1);
  cp_gen_pool_add(live, kBase, kChunk, -1);
  (void)cp_gen_pool_alloc(live, 640);
  std::printf("live %p gone %p\n", static_cast<void *>(live), static_cast<void *>(gone));
  cp_gen_pool_destroy(gone);
}

TEST(GenPoolStats, ExitReportListsLiveHandles) {
  const std::string text = corepool::test::run_stats_child("GenPoolStats.ExitReportChild");
  const auto [live, gone] = corepool::test::live_and_gone(text);
  ASSERT_FALSE(live.empty()) << text;
  EXPECT_NE(text.find(std::string("gen_pool ") + live + " size=65536 avail=64896 "),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find(std::string("gen_pool ") + gone), std::string::npos) << text;
}

// The wrapper's stats() is the C call's answer.
TEST(GenPoolStats, CxxStatsMatchesTheCall) {
  corepool::gen_pool pool(6);
  pool.add(kBase, kChunk);
  const uintptr_t a = pool.alloc(128);
  const auto s = pool.stats();
  EXPECT_EQ(s.nr_allocations, 1u);
  EXPECT_EQ(s.avail, kChunk - 128);
  EXPECT_EQ(s.size, pool.size());
  pool.free(a, 128);
}

}  // namespace
