// percpu_pool: one test per rule of the patch, bad input, the executor hook, and 32 threads
// plus a signal storm allocating while the worker refills.
#include <gtest/gtest.h>

#include <corepool/error.h>
#include <corepool/percpu.h>
#include <corepool/percpu_pool.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../dump_parse.h"
#include "chaos.h"
#include "ds/bgwork.h"
#include "percpu/percpu_internal.h"
#include "percpu_pool/percpu_pool_internal.h"

#if defined(__SANITIZE_THREAD__)
#define PP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PP_TSAN 1
#endif
#endif
#ifndef PP_TSAN
#define PP_TSAN 0
#endif

namespace {
namespace pp = corepool::percpu_pool;

uint64_t live_percpu() {
  cp_percpu_stats s;
  cp_percpu_get_stats(&s);
  return s.nr_cur_alloc;
}

// Polls until cp_percpu_pool_nr(p) == want (bounded: fails instead of hanging).
bool wait_nr(cp_percpu_pool *p, int want) {
  for (int i = 0; i < 2000; i++) {
    if (cp_percpu_pool_nr(p) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return cp_percpu_pool_nr(p) == want;
}

struct pool_guard {
  cp_percpu_pool *p = nullptr;
  pool_guard(size_t size, int low, int high) {
    EXPECT_EQ(cp_percpu_pool_create(&p, size, 8, low, high), 0);
  }
  ~pool_guard() { cp_percpu_pool_destroy(p); }
};

bool all_zero(void *area, size_t size) {
  for (unsigned c = 0; c < cp_nr_cpu_ids(); c++) {
    auto *b = static_cast<const uint8_t *>(cp_per_cpu_cptr(area, c));
    for (size_t k = 0; k < size; k++)
      if (b[k]) return false;
  }
  return true;
}

// ---- bad input ---------------------------------------------------------------------------

struct create_case {
  size_t size, align;
  int low, high;
  int ret;
  const char *what;
};

TEST(PercpuPool, CreateArgumentTable) {
  const create_case cases[] = {
      {.size = 8, .align = 8, .low = 0, .high = 1, .ret = 0, .what = "smallest watermarks"},
      {.size = 8, .align = 8, .low = 4, .high = 4, .ret = 0, .what = "low == high"},
      {.size = 8, .align = 8, .low = -1, .high = 4, .ret = -EINVAL, .what = "low < 0"},
      {.size = 8, .align = 8, .low = 5, .high = 4, .ret = -EINVAL, .what = "low > high"},
      {.size = 8, .align = 8, .low = 0, .high = 0, .ret = -EINVAL, .what = "high 0"},
      {.size = 0, .align = 8, .low = 1, .high = 2, .ret = -EINVAL, .what = "size 0"},
      {.size = 32769, .align = 8, .low = 1, .high = 2, .ret = -EINVAL, .what = "size too big"},
      {.size = 8, .align = 3, .low = 1, .high = 2, .ret = -EINVAL, .what = "align not pow2"},
      {.size = 8, .align = 0, .low = 1, .high = 2, .ret = -EINVAL, .what = "align 0"},
      {.size = 8, .align = 1 << 20, .low = 1, .high = 2, .ret = -EINVAL, .what = "align > page"},
  };
  for (const create_case &c : cases) {
    cp_percpu_pool *p = nullptr;
    EXPECT_EQ(cp_percpu_pool_create(&p, c.size, c.align, c.low, c.high), c.ret) << c.what;
    if (c.ret == 0) {
      ASSERT_NE(p, nullptr);
      cp_percpu_pool_destroy(p);
    } else {
      EXPECT_NE(std::string(cp_last_error()).find("cp_percpu_pool_create"), std::string::npos);
    }
  }
  EXPECT_EQ(cp_percpu_pool_create(nullptr, 8, 8, 1, 2), -EINVAL);
}

// Every function given a NULL pool (or a negative fill target) records an error naming it
// and does nothing: the same rule as the other pools.
TEST(PercpuPool, NullPoolAndNegativeTargetAreErrorsNotCrashes) {
  auto said = [](const char *fn) {
    const bool ok = std::string(cp_last_error()).find(fn) != std::string::npos;
    cp_clear_error();
    return ok;
  };
  cp_clear_error();
  EXPECT_EQ(cp_percpu_pool_alloc(nullptr), nullptr);
  EXPECT_TRUE(said("cp_percpu_pool_alloc"));
  EXPECT_EQ(cp_percpu_pool_nr(nullptr), 0);
  EXPECT_TRUE(said("cp_percpu_pool_nr"));
  cp_percpu_pool_fill(nullptr, 0);
  EXPECT_TRUE(said("cp_percpu_pool_fill"));
  cp_percpu_pool_empty(nullptr);
  EXPECT_TRUE(said("cp_percpu_pool_empty"));
  cp_percpu_pool_set_executor(nullptr, nullptr, nullptr);
  EXPECT_TRUE(said("cp_percpu_pool_set_executor"));
  cp_percpu_pool_static_init(nullptr);
  EXPECT_TRUE(said("cp_percpu_pool_static_init"));
  cp_percpu_pool_destroy(nullptr);  // no-op, like free(NULL)
  pool_guard g(8, 1, 4);
  cp_percpu_pool_fill(g.p, -1);
  EXPECT_TRUE(said("target_nr < 0"));
  EXPECT_EQ(cp_percpu_pool_nr(g.p), 0);
}

// ---- one test per rule ---------------------------------------------------------------------

TEST(PercpuPool, StartsEmpty) {
  pool_guard g(16, 2, 8);
  EXPECT_EQ(cp_percpu_pool_nr(g.p), 0);
  EXPECT_EQ(pp::triggers(g.p), 0u);
}

TEST(PercpuPool, FirstAllocFailsAndTriggersFill) {
  pool_guard g(16, 2, 8);
  EXPECT_EQ(cp_percpu_pool_alloc(g.p), nullptr);
  EXPECT_EQ(pp::triggers(g.p), 1u);
  EXPECT_TRUE(wait_nr(g.p, 8));  // the worker filled up to high
  void *a = cp_percpu_pool_alloc(g.p);
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(all_zero(a, 16));
  cp_free_percpu(a);
}

TEST(PercpuPool, FillZeroFillsToHighSynchronously) {
  pool_guard g(16, 2, 8);
  cp_percpu_pool_fill(g.p, 0);
  EXPECT_EQ(cp_percpu_pool_nr(g.p), 8);  // synchronous: done on return
  cp_percpu_pool_fill(g.p, 3);           // already above: nothing to do
  EXPECT_EQ(cp_percpu_pool_nr(g.p), 8);
  cp_percpu_pool_fill(g.p, 12);  // explicit target above high
  EXPECT_EQ(cp_percpu_pool_nr(g.p), 12);
  EXPECT_EQ(pp::triggers(g.p), 0u);
}

TEST(PercpuPool, FillBelowLowInhibitsRefillUntilEmpty) {
  pool_guard g(16, 4, 8);
  cp_percpu_pool_fill(g.p, 2);  // 2 < low: boot-time pre-fill, no auto refill
  EXPECT_EQ(cp_percpu_pool_nr(g.p), 2);
  void *a = cp_percpu_pool_alloc(g.p);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(pp::triggers(g.p), 0u) << "1 < low, but refill is inhibited";
  pp::flush(g.p);
  EXPECT_EQ(cp_percpu_pool_nr(g.p), 1);
  void *b = cp_percpu_pool_alloc(g.p);  // now empty: inhibition ends, refill to high
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(pp::triggers(g.p), 1u);
  EXPECT_TRUE(wait_nr(g.p, 8));
  // After the refill (fill(0) from the worker) the pool refills below low again.
  for (int i = 0; i < 5; i++) cp_free_percpu(cp_percpu_pool_alloc(g.p));
  EXPECT_EQ(pp::triggers(g.p), 2u);
  EXPECT_TRUE(wait_nr(g.p, 8));
  cp_free_percpu(a);
  cp_free_percpu(b);
}

TEST(PercpuPool, BelowLowSchedulesRefillToHigh) {
  pool_guard g(16, 4, 8);
  cp_percpu_pool_fill(g.p, 0);
  std::vector<void *> got;
  for (int i = 0; i < 4; i++) got.push_back(cp_percpu_pool_alloc(g.p));  // 8 -> 4: not below
  EXPECT_EQ(pp::triggers(g.p), 0u);
  got.push_back(cp_percpu_pool_alloc(g.p));  // 3 < low
  EXPECT_EQ(pp::triggers(g.p), 1u);
  EXPECT_TRUE(wait_nr(g.p, 8));
  for (void *a : got) {
    ASSERT_NE(a, nullptr);
    cp_free_percpu(a);
  }
}

// Keeps the shared worker busy until `release`, so a refill stays queued behind it.
struct worker_blocker {
  corepool::ds::work_item w;
  std::atomic<bool> release{false}, running{false};
  worker_blocker() {
    corepool::ds::work_init(
        &w,
        [](corepool::ds::work_item *it) {
          auto *self = static_cast<worker_blocker *>(it->arg);
          self->running = true;
          while (!self->release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        },
        this, 0);
    EXPECT_TRUE(corepool::ds::schedule_work(&w));
    while (!running.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~worker_blocker() { corepool::ds::flush_work(&w); }
};

TEST(PercpuPool, EmptyCancelsPendingFill) {
  const uint64_t base = live_percpu();
  pool_guard g(16, 2, 8);
  cp_percpu_pool_fill(g.p, 0);
  {
    worker_blocker blk;
    for (int i = 0; i < 7; i++) cp_free_percpu(cp_percpu_pool_alloc(g.p));  // 1 < low
    EXPECT_EQ(pp::triggers(g.p), 1u);                                       // queued, blocked
    std::thread rel([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      blk.release = true;
    });
    cp_percpu_pool_empty(g.p);  // cancels the queued fill (waits for the worker to drop it)
    rel.join();
    EXPECT_EQ(cp_percpu_pool_nr(g.p), 0);
  }
  pp::flush(g.p);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(cp_percpu_pool_nr(g.p), 0) << "a cancelled fill ran";
  EXPECT_EQ(live_percpu(), base);
  // The pool works again after empty.
  EXPECT_EQ(cp_percpu_pool_alloc(g.p), nullptr);
  EXPECT_TRUE(wait_nr(g.p, 8));
}

TEST(PercpuPool, DestroyFreesEverything) {
  const uint64_t base = live_percpu();
  cp_percpu_pool *p = nullptr;
  ASSERT_EQ(cp_percpu_pool_create(&p, 100, 16, 10, 300), 0);  // several segments
  cp_percpu_pool_fill(p, 0);
  EXPECT_EQ(cp_percpu_pool_nr(p), 300);
  EXPECT_EQ(live_percpu(), base + 300);
  void *a = cp_percpu_pool_alloc(p);  // keeps working after destroy: it is ours
  cp_percpu_pool_destroy(p);
  EXPECT_EQ(live_percpu(), base + 1);
  cp_free_percpu(a);
  EXPECT_EQ(live_percpu(), base);
}

TEST(PercpuPool, AreasAreZeroedAfterReuse) {
  pool_guard g(64, 0, 16);
  for (int round = 0; round < 5; round++) {
    cp_percpu_pool_fill(g.p, 0);
    std::vector<void *> v;
    while (void *a = cp_percpu_pool_alloc(g.p)) {
      ASSERT_TRUE(all_zero(a, 64));
      for (unsigned c = 0; c < cp_nr_cpu_ids(); c++) std::memset(cp_per_cpu_ptr(a, c), 0xee, 64);
      v.push_back(a);
    }
    EXPECT_GE(v.size(), 16u);
    for (void *a : v) cp_free_percpu(a);
    cp_percpu_pool_empty(g.p);
  }
}

// ---- executor hook ---------------------------------------------------------------------------

struct exec_rec {
  std::atomic<int> calls{0};
  void (*run)(void *) = nullptr;
  void *arg = nullptr;
};
void record_exec(void (*run)(void *), void *arg, void *user) {
  auto *r = static_cast<exec_rec *>(user);
  r->run = run;
  r->arg = arg;
  r->calls++;
}

TEST(PercpuPool, ExecutorHookRunsRefills) {
  pool_guard g(16, 2, 6);
  exec_rec rec;
  cp_percpu_pool_set_executor(g.p, record_exec, &rec);
  EXPECT_EQ(cp_percpu_pool_alloc(g.p), nullptr);
  EXPECT_EQ(cp_percpu_pool_alloc(g.p), nullptr);
  EXPECT_EQ(rec.calls.load(), 1) << "requests coalesce until the executor runs";
  EXPECT_EQ(cp_percpu_pool_nr(g.p), 0);
  rec.run(rec.arg);
  EXPECT_EQ(cp_percpu_pool_nr(g.p), 6);
  // empty drops a request made before it
  for (int i = 0; i < 5; i++) cp_free_percpu(cp_percpu_pool_alloc(g.p));
  EXPECT_EQ(rec.calls.load(), 2);
  cp_percpu_pool_empty(g.p);
  rec.run(rec.arg);
  EXPECT_EQ(cp_percpu_pool_nr(g.p), 0);
  cp_percpu_pool_set_executor(g.p, nullptr, nullptr);
  EXPECT_EQ(cp_percpu_pool_alloc(g.p), nullptr);
  EXPECT_TRUE(wait_nr(g.p, 6));
}

// A request still out at destroy stays safe to run: it frees the bookkeeping and touches
// nothing else (AddressSanitizer reports a use after free otherwise).
TEST(PercpuPool, ExecutorRequestOutAtDestroyIsSafeToRun) {
  const uint64_t base = live_percpu();
  cp_percpu_pool *p = nullptr;
  ASSERT_EQ(cp_percpu_pool_create(&p, 16, 8, 2, 6), 0);
  exec_rec rec;
  cp_percpu_pool_set_executor(p, record_exec, &rec);
  EXPECT_EQ(cp_percpu_pool_alloc(p), nullptr);
  ASSERT_EQ(rec.calls.load(), 1);
  cp_percpu_pool_destroy(p);
  rec.run(rec.arg);  // the executor runs it late
  EXPECT_EQ(live_percpu(), base) << "the late run fills nothing";
}

// Work on the shared worker (here a plain work item, as a gen_pool growth hook is) empties and
// destroys a pool whose refill is queued behind it: both return at once.
TEST(PercpuPool, EmptyAndDestroyFromWorkOnTheWorker) {
  struct ctx_t {
    cp_percpu_pool *p = nullptr;
    corepool::ds::work_item w;
    std::atomic<int> stage{0};
  } ctx;
  ASSERT_EQ(cp_percpu_pool_create(&ctx.p, 16, 8, 2, 8), 0);
  cp_percpu_pool_fill(ctx.p, 0);
  corepool::ds::work_init(
      &ctx.w,
      [](corepool::ds::work_item *it) {
        auto *c = static_cast<ctx_t *>(it->arg);
        for (int i = 0; i < 7; i++) cp_free_percpu(cp_percpu_pool_alloc(c->p));  // queued
        cp_percpu_pool_empty(c->p);
        c->stage = 1;
        cp_percpu_pool_destroy(c->p);
        c->stage = 2;
      },
      &ctx, 0);
  ASSERT_TRUE(corepool::ds::schedule_work(&ctx.w));
  corepool::ds::flush_work(&ctx.w);
  EXPECT_EQ(ctx.stage.load(), 2);
}

// ---- 32 threads and a signal storm while the worker refills ---------------------------------

// Each area's CPU-0 word is claimed with CAS 0 -> holder id: a second holder of a live area
// (handed out twice) or a non-zeroed area makes the CAS fail.
struct storm_ctx {
  cp_percpu_pool *pool;
  std::atomic<long> violations{0}, got{0}, empty{0};
};

bool claim(storm_ctx *s, void *a, uint64_t id) {
  auto *w = static_cast<uint64_t *>(cp_per_cpu_ptr(a, 0));
  uint64_t zero = 0;
  bool ok = std::atomic_ref(*w).compare_exchange_strong(zero, id, std::memory_order_relaxed,
                                                        std::memory_order_relaxed);
  auto *mine = static_cast<uint64_t *>(cp_this_cpu_ptr(a));
  if (mine != w && std::atomic_ref(mine[1]).load(std::memory_order_relaxed) != 0) ok = false;
  std::atomic_ref(mine[1]).store(id, std::memory_order_relaxed);
  if (!ok) s->violations++;
  return ok;
}

void storm_handler(int worker, void *arg) {
  auto *s = static_cast<storm_ctx *>(arg);
  void *a = cp_percpu_pool_alloc(s->pool);
  if (!a) {
    s->empty++;
    return;
  }
  s->got++;
  claim(s, a, 1000000 + static_cast<uint64_t>(worker));
  cp_free_percpu(a);
}

TEST(PercpuPool, StormNoDuplicateAllZeroedNoLeak) {
  const uint64_t base = live_percpu();
  storm_ctx s;
  ASSERT_EQ(cp_percpu_pool_create(&s.pool, 16, 8, 16, 64), 0);
  corepool::chaos::options opt;
  opt.threads = 32;
  opt.signal_storm = true;
  opt.deadline = std::chrono::milliseconds(30000);
  const long target = PP_TSAN ? 2000 : 20000;  // areas handed out in total
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(PP_TSAN ? 4 : 2);
  auto rep = corepool::chaos::run(
      opt,
      [&](int w) {
        corepool::chaos::rng r(w + 11);
        std::vector<void *> held;
        for (int i = 0; s.got.load(std::memory_order_relaxed) < target &&
                        std::chrono::steady_clock::now() < until && !corepool::chaos::should_stop();
             i++) {
          if (held.size() < 4 && r.below(3)) {
            if (void *a = cp_percpu_pool_alloc(s.pool)) {
              s.got++;
              claim(&s, a, static_cast<uint64_t>(w) * 100000 + static_cast<uint64_t>(i) + 1);
              held.push_back(a);
            } else {
              s.empty++;
              std::this_thread::sleep_for(std::chrono::microseconds(100));  // let it refill
            }
          } else if (!held.empty()) {
            cp_free_percpu(held.back());
            held.pop_back();
          }
        }
        for (void *a : held) cp_free_percpu(a);
      },
      storm_handler, &s);
  ASSERT_TRUE(rep.in_time);
  EXPECT_EQ(s.violations.load(), 0);
  EXPECT_GT(s.got.load(), 1000);
  EXPECT_GT(rep.signals, 0u);
  std::printf("got %ld, empty %ld, refills %llu, signals %llu\n", s.got.load(), s.empty.load(),
              static_cast<unsigned long long>(pp::triggers(s.pool)),
              static_cast<unsigned long long>(rep.signals));
  cp_percpu_pool_destroy(s.pool);
  EXPECT_EQ(live_percpu(), base);
  EXPECT_EQ(corepool::pcpu::bad_frees(), 0u);
}

// ---- statistics ----------------------------------------------------------------------------

TEST(PercpuPoolStats, NullArguments) {
  struct cp_percpu_pool_stats st {};
  EXPECT_EQ(cp_percpu_pool_stats(nullptr, &st), -EINVAL);
  pool_guard g(16, 2, 8);
  EXPECT_EQ(cp_percpu_pool_stats(g.p, nullptr), -EINVAL);
  EXPECT_EQ(cp_percpu_pool_dump(nullptr, 2), -EINVAL);
  EXPECT_EQ(cp_percpu_pool_dump(g.p, -1), -EBADF);
}

// With the refills on a recording executor, every count follows the script exactly.
TEST(PercpuPoolStats, ScriptedCounts) {
  pool_guard g(24, 2, 8);
  exec_rec rec;
  cp_percpu_pool_set_executor(g.p, record_exec, &rec);
  struct cp_percpu_pool_stats st {};
  ASSERT_EQ(cp_percpu_pool_stats(g.p, &st), 0);
  EXPECT_EQ(st.low, 2);
  EXPECT_EQ(st.high, 8);
  EXPECT_EQ(st.elem_size, 24u);
  EXPECT_EQ(st.elem_align, 8u);
  EXPECT_EQ(st.nr, 0);
  EXPECT_EQ(st.filled + st.fill_failures + st.emptied + st.refills + st.empty_allocs, 0u);
  cp_percpu_pool_fill(g.p, 0);
  ASSERT_EQ(cp_percpu_pool_stats(g.p, &st), 0);
  EXPECT_EQ(st.nr, 8);
  EXPECT_EQ(st.filled, 8u);
  std::vector<void *> got;
  for (int i = 0; i < 6; i++) got.push_back(cp_percpu_pool_alloc(g.p));  // 2 left: not < low
  ASSERT_EQ(cp_percpu_pool_stats(g.p, &st), 0);
  EXPECT_EQ(st.refills, 0u);
  got.push_back(cp_percpu_pool_alloc(g.p));  // 1 left: a refill, handed to the executor
  got.push_back(cp_percpu_pool_alloc(g.p));  // empty now: another, joins the pending one
  EXPECT_EQ(cp_percpu_pool_alloc(g.p), nullptr);
  ASSERT_EQ(cp_percpu_pool_stats(g.p, &st), 0);
  EXPECT_EQ(st.nr, 0);
  EXPECT_EQ(st.refills, 3u);
  EXPECT_EQ(st.empty_allocs, 1u);
  EXPECT_EQ(rec.calls.load(), 1);
  rec.run(rec.arg);  // fills to high
  ASSERT_EQ(cp_percpu_pool_stats(g.p, &st), 0);
  EXPECT_EQ(st.nr, 8);
  EXPECT_EQ(st.filled, 16u);
  cp_percpu_pool_empty(g.p);
  ASSERT_EQ(cp_percpu_pool_stats(g.p, &st), 0);
  EXPECT_EQ(st.nr, 0);
  EXPECT_EQ(st.emptied, 8u);
  EXPECT_EQ(st.fill_failures, 0u);
  for (void *a : got) cp_free_percpu(a);
  cp_percpu_pool_set_executor(g.p, nullptr, nullptr);
}

TEST(PercpuPoolStats, DumpParsesToTheStats) {
  pool_guard g(40, 1, 4);
  cp_percpu_pool_fill(g.p, 3);
  cp_free_percpu(cp_percpu_pool_alloc(g.p));
  struct cp_percpu_pool_stats st {};
  ASSERT_EQ(cp_percpu_pool_stats(g.p, &st), 0);
  const auto lines = corepool::test::parse_dump(
      "percpu_pool", g.p, [&g](int fd) { return cp_percpu_pool_dump(g.p, fd); });
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].at("elem_size"), 40u);
  EXPECT_EQ(lines[0].at("elem_align"), 8u);
  EXPECT_EQ(lines[0].at("low"), 1u);
  EXPECT_EQ(lines[0].at("high"), 4u);
  EXPECT_EQ(lines[1].at("filled"), st.filled);
  EXPECT_EQ(lines[1].at("filled"), 3u);
  EXPECT_EQ(lines[1].at("refills"), st.refills);
  EXPECT_EQ(lines[1].at("empty_allocs"), 0u);
  EXPECT_EQ(lines[1].at("emptied"), st.emptied);
}

// The child half of ExitReportListsLivePools: one pool destroyed, one alive at exit.
TEST(PercpuPoolStats, ExitReportChild) {
  if (!std::getenv("COREPOOL_STATS_TEST_CHILD")) GTEST_SKIP() << "run by ExitReportListsLivePools";
  cp_percpu_pool *gone = nullptr, *live = nullptr;
  ASSERT_EQ(cp_percpu_pool_create(&gone, 8, 8, 1, 2), 0);
  ASSERT_EQ(cp_percpu_pool_create(&live, 56, 8, 0, 3), 0);
  cp_percpu_pool_fill(live, 2);
  std::printf("live %p gone %p\n", static_cast<void *>(live), static_cast<void *>(gone));
  cp_percpu_pool_destroy(gone);
}

TEST(PercpuPoolStats, ExitReportListsLivePools) {
  const std::string text = corepool::test::run_stats_child("PercpuPoolStats.ExitReportChild");
  const auto [live, gone] = corepool::test::live_and_gone(text);
  ASSERT_FALSE(live.empty()) << text;
  EXPECT_NE(text.find(std::string("percpu_pool ") + live + " nr=2 low=0 high=3 elem_size=56 "),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find(std::string("percpu_pool ") + gone), std::string::npos) << text;
}

}  // namespace
