#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>

#include "bgwork_counted.h"
#include "chaos.h"
#include "ds/bgwork.h"

namespace {
using namespace corepool::ds;
using namespace std::chrono_literals;

TEST(BgWork, RunsScheduledWorkOnce) {
  bgwork_start();
  counted c;
  EXPECT_TRUE(schedule_work(&c.w));
  flush_work(&c.w);
  EXPECT_EQ(c.runs.load(), 1);
  EXPECT_TRUE(schedule_work(&c.w));
  flush_work(&c.w);
  EXPECT_EQ(c.runs.load(), 2);
}

TEST(BgWork, ScheduleWhileQueuedIsNoOpWhileRunningRequeues) {
  bgwork_start();
  counted c;
  c.block = true;
  EXPECT_TRUE(schedule_work(&c.w));
  // Wait until it runs (blocked inside fn).
  while (!(c.w.state.load() & 2)) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(schedule_work(&c.w));   // while running: one more run requested
  EXPECT_FALSE(schedule_work(&c.w));  // already requested
  c.block = false;
  flush_work(&c.w);
  EXPECT_EQ(c.runs.load(), 2);
}

TEST(BgWork, CancelDropsPendingAndBlocksUntilReset) {
  bgwork_start();
  counted blocker, victim;
  blocker.block = true;
  ASSERT_TRUE(schedule_work(&blocker.w));
  while (!(blocker.w.state.load() & 2)) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(schedule_work(&victim.w));  // queued behind the blocker
  std::thread t([&] {
    std::this_thread::sleep_for(20ms);
    blocker.block = false;
  });
  cancel_work_sync(&victim.w);
  t.join();
  EXPECT_EQ(victim.runs.load(), 0);
  EXPECT_FALSE(schedule_work(&victim.w));  // cancelled until reset
  work_reset(&victim.w);
  EXPECT_TRUE(schedule_work(&victim.w));
  flush_work(&victim.w);
  EXPECT_EQ(victim.runs.load(), 1);
  flush_work(&blocker.w);
}

// From work running on the worker: cancelling another, queued item drops it at once (the
// worker is busy with the caller, so waiting would hang); the running item's own cancel and
// flush, and a flush of a queued item, report -EDEADLK and change nothing.
TEST(BgWork, CallsFromTheWorkerNeverWaitForIt) {
  bgwork_start();
  struct ctx_t {
    counted victim;
    work_item self;
    std::atomic<int> cancel_other{1}, cancel_self{1}, flush_self{1}, flush_other{1};
    std::atomic<int> runs{0};
  } ctx;
  work_init(
      &ctx.self,
      [](work_item *w) {
        auto *c = static_cast<ctx_t *>(w->arg);
        if (c->runs.fetch_add(1) > 0) return;      // the second run only shows it can run
        EXPECT_TRUE(schedule_work(&c->victim.w));  // queued behind us
        c->flush_other = flush_work(&c->victim.w);
        c->cancel_other = cancel_work_sync(&c->victim.w);
        c->cancel_self = cancel_work_sync(w);
        c->flush_self = flush_work(w);
      },
      &ctx, 0);
  ASSERT_TRUE(schedule_work(&ctx.self));
  flush_work(&ctx.self);
  EXPECT_EQ(ctx.flush_other.load(), -EDEADLK);
  EXPECT_EQ(ctx.cancel_other.load(), 0);
  EXPECT_EQ(ctx.cancel_self.load(), -EDEADLK);
  EXPECT_EQ(ctx.flush_self.load(), -EDEADLK);
  EXPECT_EQ(ctx.victim.runs.load(), 0);
  EXPECT_TRUE(schedule_work(&ctx.self));  // its own cancel changed nothing
  flush_work(&ctx.self);
  EXPECT_EQ(ctx.runs.load(), 2);
}

struct level_ctx {
  std::atomic<int> level{0};
  std::atomic<int> last_target{-1};
};

TEST(RefillEngine, FillsToHighWhenBelowLow) {
  bgwork_start();
  level_ctx ctx;
  refill_engine e;
  e.init(
      [](void *p, int target) {
        auto *c = static_cast<level_ctx *>(p);
        c->last_target = target;
        c->level = target;
      },
      &ctx, 4, 16);
  ctx.level = 8;
  EXPECT_FALSE(e.note_level(ctx.level));  // at or above low: nothing
  ctx.level = 3;
  EXPECT_TRUE(e.note_level(ctx.level));
  flush_work(&e.work);
  EXPECT_EQ(ctx.last_target.load(), 16);
  EXPECT_EQ(ctx.level.load(), 16);
  EXPECT_EQ(e.runs.load(), 1u);
  e.cancel();
  EXPECT_TRUE(e.kick());  // usable again after cancel
  flush_work(&e.work);
  EXPECT_EQ(e.runs.load(), 2u);
}

// schedule_work from signal handlers on many threads: every request made while the item
// was idle leads to a run; nothing crashes or deadlocks.
std::atomic<long> g_sched_ok{0};
counted *g_item;
void sched_in_handler(int, void *) {
  if (schedule_work(&g_item->w)) g_sched_ok++;
}

TEST(BgWork, ScheduleFromSignalHandlers) {
  bgwork_start();
  counted c;
  g_item = &c;
  corepool::chaos::options opt;
  opt.threads = 8;
  opt.signal_storm = true;
  auto rep = corepool::chaos::run(
      opt, [](int) { std::this_thread::sleep_for(200ms); }, sched_in_handler, nullptr);
  ASSERT_TRUE(rep.in_time);
  flush_work(&c.w);
  EXPECT_GT(g_sched_ok.load(), 0);
  // Each successful schedule causes exactly one run, possibly merged with none other.
  EXPECT_EQ(c.runs.load(), g_sched_ok.load());
}

}  // namespace
