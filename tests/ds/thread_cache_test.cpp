// ds::thread_cache, the thread tier: hits and misses, refill and spill through the pool's
// source and sink, flush on thread exit, steal from a stopped thread (stopped in a signal
// handler at any instruction of a tier operation), an ownerless stack adopted with its
// objects, the idle sweep, a pool destroyed while threads that used it live on (and exit
// later), the slot limit, and a chaos run (threads, migration, a signal storm whose handler
// uses the tier, parking) in which nothing is lost or handed out twice. Also run with
// COREPOOL_RSEQ=0 (the tier is off: init says -ENOTSUP).
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <thread>
#include <vector>

#include "chaos.h"
#include "ds/thread_cache.h"
#include "park_point.h"
#include "platform/rseq.h"

namespace {
using corepool::ds::thread_cache;

// The pool below the tier: one slot per object, lock-free (sink and source run in signal
// handlers too). Objects are tokens 1..n; `holder` stamps catch double hand-outs.
struct below {
  static constexpr unsigned kMax = 512;
  std::atomic<void *> slot[kMax] = {};
  std::atomic<int> sunk{0}, sourced{0};

  static void sink(void *ctx, void *const *objs, unsigned n) {
    auto *b = static_cast<below *>(ctx);
    for (unsigned i = 0; i < n; i++) {
      bool put = false;
      for (unsigned j = 0; j < kMax && !put; j++) {
        void *e = nullptr;
        put = b->slot[j].compare_exchange_strong(e, objs[i], std::memory_order_acq_rel);
      }
      if (!put) std::abort();  // more objects than slots: a duplicate
    }
    b->sunk.fetch_add(static_cast<int>(n), std::memory_order_relaxed);
  }
  static unsigned source(void *ctx, void **out, unsigned n) {
    auto *b = static_cast<below *>(ctx);
    unsigned k = 0;
    for (unsigned j = 0; j < kMax && k < n; j++)
      if (void *o = b->slot[j].exchange(nullptr, std::memory_order_acq_rel)) out[k++] = o;
    b->sourced.fetch_add(static_cast<int>(k), std::memory_order_relaxed);
    return k;
  }
  unsigned count() const {
    unsigned n = 0;
    for (const auto &s : slot) n += s.load(std::memory_order_relaxed) != nullptr;
    return n;
  }
  void fill(unsigned n) {
    for (unsigned i = 0; i < n; i++) slot[i].store(token(i), std::memory_order_relaxed);
  }
  static void *token(unsigned i) { return reinterpret_cast<void *>(uintptr_t{0x1000} + 16 * i); }
  static unsigned id(void *o) {
    return static_cast<unsigned>((reinterpret_cast<uintptr_t>(o) - 0x1000) / 16);
  }
};

struct tier_guard {
  below b;
  thread_cache t;
  int rc;
  // unit: by default the largest, so that a stack moves half of itself (plus one) at a time.
  explicit tier_guard(unsigned cap, unsigned nobjs = 0,
                      unsigned unit = corepool::ds::kThreadCacheUnitMax) {
    b.fill(nobjs);
    rc = t.init(cap, unit, below::sink, below::source, &b);
  }
  ~tier_guard() { t.destroy(true); }
  unsigned total() const { return b.count() + t.count(); }
};

#define REQUIRE_TIER(g)                                                            \
  do {                                                                             \
    if ((g).rc == -ENOTSUP) GTEST_SKIP() << "no thread tier here (rseq or fence)"; \
    ASSERT_EQ((g).rc, 0);                                                          \
  } while (0)

// As the pools call the tier.
void *pop(thread_cache &t) {
  return corepool::ds::thread_cache_get(t);
}
void push(thread_cache &t, void *o) {
  EXPECT_EQ(corepool::ds::thread_cache_put(t, o), 0);
}

// Every object exactly once across the tier and below.
void expect_all_once(tier_guard &g, unsigned n) {
  std::vector<int> seen(n, 0);
  void *buf[64];
  for (unsigned k; (k = g.t.steal(buf, 64)) > 0;)
    for (unsigned i = 0; i < k; i++) seen[below::id(buf[i])]++;
  for (unsigned k; (k = below::source(&g.b, buf, 64)) > 0;)
    for (unsigned i = 0; i < k; i++) seen[below::id(buf[i])]++;
  for (unsigned i = 0; i < n; i++) EXPECT_EQ(seen[i], 1) << "object " << i;
}

TEST(ThreadCache, OffWithoutRseq) {
  tier_guard g(8);
  if (!corepool::platform::rseq_registered_area()) {
    EXPECT_EQ(g.rc, -ENOTSUP);
    EXPECT_FALSE(g.t.enabled());
    EXPECT_EQ(g.t.capacity(), 0u);
    return;
  }
  EXPECT_EQ(g.rc, 0);
}

TEST(ThreadCache, InvalidArguments) {
  below b;
  thread_cache t;
  EXPECT_EQ(t.init(0, 4, below::sink, below::source, &b), -EINVAL);
  EXPECT_EQ(t.init(corepool::ds::kThreadCacheMax + 1, 4, below::sink, below::source, &b), -EINVAL);
  EXPECT_EQ(t.init(4, 0, below::sink, below::source, &b), -EINVAL);
  EXPECT_EQ(t.init(4, corepool::ds::kThreadCacheUnitMax + 1, below::sink, below::source, &b),
            -EINVAL);
  EXPECT_EQ(t.init(4, 4, nullptr, below::source, &b), -EINVAL);
  EXPECT_FALSE(t.enabled());
}

TEST(ThreadCache, HitsAfterFirstMissRefillAndSpill) {
  tier_guard g(8, 64);
  REQUIRE_TIER(g);
  EXPECT_EQ(corepool::ds::thread_cache_pop(g.t), nullptr);  // no stack yet
  void *o = g.t.pop_slow();  // attaches, refills half a stack plus one, keeps one
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(g.t.count(), 4u);
  EXPECT_EQ(g.b.sourced.load(), 5);
  std::vector<void *> mine{o};
  for (int i = 0; i < 4; i++) {
    void *x = corepool::ds::thread_cache_pop(g.t);
    ASSERT_NE(x, nullptr);
    mine.push_back(x);
  }
  EXPECT_EQ(corepool::ds::thread_cache_pop(g.t), nullptr);  // empty: a miss
  EXPECT_EQ(g.b.sourced.load(), 5) << "hits do not touch the pool below";
  for (int i = 0; i < 4; i++) {
    void *x = nullptr;
    ASSERT_EQ(below::source(&g.b, &x, 1), 1u);
    mine.push_back(x);
  }
  // Nine in hand: eight fit; the ninth moves half the stack plus one (a refill's worth)
  // below and stays.
  for (int i = 0; i < 8; i++) EXPECT_TRUE(corepool::ds::thread_cache_push(g.t, mine[i]));
  EXPECT_FALSE(corepool::ds::thread_cache_push(g.t, mine[8]));  // full
  g.t.push_slow(mine[8]);
  EXPECT_EQ(g.t.count(), 4u);
  EXPECT_EQ(g.b.sunk.load(), 5);
  EXPECT_EQ(g.total(), 64u);
  expect_all_once(g, 64);
}

// A stack larger than twice the unit refills and spills `unit` objects at a time: the pool
// below pays its per-batch cost once per unit, as it does without the tier.
TEST(ThreadCache, LargeStackMovesOneUnitAtATime) {
  tier_guard g(256, 300, 48);
  REQUIRE_TIER(g);
  std::vector<void *> mine;
  for (int i = 0; i < 300; i++) {
    void *o = pop(g.t);
    ASSERT_NE(o, nullptr);
    mine.push_back(o);
    // Refills at pops 1, 49, 97, ...: each asks the pool below for 48 (the last for what is left).
    const int want = (i / 48 + 1) * 48;
    EXPECT_EQ(g.b.sourced.load(), want < 300 ? want : 300) << "pop " << i;
  }
  EXPECT_EQ(g.b.sunk.load(), 0);
  for (int i = 0; i < 256; i++) push(g.t, mine[i]);
  EXPECT_EQ(g.b.sunk.load(), 0) << "256 fit";
  push(g.t, mine[256]);  // full: 48 of the stack go below, this one takes their place
  EXPECT_EQ(g.b.sunk.load(), 48);
  EXPECT_EQ(g.t.count(), 209u);
  for (int i = 257; i < 300; i++) push(g.t, mine[i]);
  EXPECT_EQ(g.total(), 300u);
  expect_all_once(g, 300);
}

TEST(ThreadCache, ExitFlushesTheThreadsStack) {
  tier_guard g(16, 32);
  REQUIRE_TIER(g);
  std::thread([&] {
    void *o = pop(g.t);
    ASSERT_NE(o, nullptr);
    push(g.t, o);
    EXPECT_GT(g.t.count(), 0u);
  }).join();
  EXPECT_EQ(g.t.count(), 0u) << "the exiting thread's stack went below";
  EXPECT_EQ(g.b.count(), 32u);
  // A later thread adopts the ownerless stack instead of mapping another.
  thread_cache::node *first = g.t.head_.load(std::memory_order_relaxed);
  std::thread([&] { push(g.t, pop(g.t)); }).join();
  EXPECT_EQ(g.t.head_.load(std::memory_order_relaxed), first);
  expect_all_once(g, 32);
}

// A thread stopped in a signal handler, at whatever instruction of a tier operation the
// signal found it: its stack is stolen, and when it resumes it goes on without loss.
std::atomic<bool> g_stop_release{false};
std::atomic<int> g_stopped{0}, g_resumed{0};
void stop_handler(int) {
  g_stopped.fetch_add(1, std::memory_order_acq_rel);
  corepool::chaos::park_self_until(g_stop_release);
  g_resumed.fetch_add(1, std::memory_order_acq_rel);
}

TEST(ThreadCache, StealFromAThreadStoppedInsideTierOperations) {
  constexpr unsigned kObjs = 48;
  tier_guard g(16, kObjs);
  REQUIRE_TIER(g);
  struct sigaction sa = {}, old = {};
  sa.sa_handler = stop_handler;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR2, &sa, &old), 0);
  std::atomic<bool> done{false};
  std::atomic<int> violations{0};
  std::vector<std::atomic<int>> holder(kObjs);
  std::thread w([&] {
    void *held[8];
    while (!done.load(std::memory_order_relaxed)) {
      unsigned n = 0;
      for (; n < 8; n++) {
        held[n] = pop(g.t);
        if (!held[n]) break;
        if (holder[below::id(held[n])].exchange(1) != 0) violations++;
      }
      for (unsigned i = 0; i < n; i++) {
        if (holder[below::id(held[i])].exchange(0) != 1) violations++;
        push(g.t, held[i]);
      }
    }
  });
  for (int round = 0; round < 50; round++) {
    g_stop_release.store(false, std::memory_order_relaxed);
    const int before = g_stopped.load(std::memory_order_acquire);
    pthread_kill(w.native_handle(), SIGUSR2);
    while (g_stopped.load(std::memory_order_acquire) == before) std::this_thread::yield();
    // Stopped: everything but its stack and what it holds is below; take its stack too.
    void *buf[64];
    unsigned k = g.t.steal(buf, 64);
    EXPECT_EQ(g.t.count(), 0u) << "the stopped thread's stack is stealable";
    below::sink(&g.b, buf, k);
    g_stop_release.store(true, std::memory_order_release);
    while (g_resumed.load(std::memory_order_acquire) != before + 1) std::this_thread::yield();
  }
  done.store(true, std::memory_order_relaxed);
  w.join();
  sigaction(SIGUSR2, &old, nullptr);
  EXPECT_EQ(violations.load(), 0);
  expect_all_once(g, kObjs);
}

// A stealer stopped while it holds a stack's fence, and the owner exits meanwhile: the
// exit flush cannot take the stack, which stays ownerless with its objects (H4), reachable
// by the next steal or by the next thread to attach.
TEST(ThreadCache, OwnerExitsWhileAStealerHoldsItsStack) {
#ifndef COREPOOL_INJECT
  GTEST_SKIP() << "needs injection points";
#else
  constexpr unsigned kObjs = 32;
  tier_guard g(16, kObjs);
  REQUIRE_TIER(g);
  std::atomic<bool> filled{false}, exit_now{false};
  std::thread owner([&] {
    push(g.t, pop(g.t));  // a stack with a refill's worth
    filled.store(true, std::memory_order_release);
    while (!exit_now.load(std::memory_order_acquire)) std::this_thread::yield();
  });
  while (!filled.load(std::memory_order_acquire)) std::this_thread::yield();
  const unsigned in_stack = g.t.count();
  ASSERT_GT(in_stack, 1u);
  corepool::chaos::park_point_guard guard;
  void *got[1] = {};
  unsigned stolen = 0;
  std::thread stealer([&] {
    corepool::chaos::park_at = "pcpu_cache.steal.fenced";
    stolen = g.t.steal(got, 1);
  });
  guard.wait_parked();
  exit_now.store(true, std::memory_order_release);
  owner.join();  // its flush found the fence held
  EXPECT_EQ(g.t.count(), in_stack) << "the stack keeps its objects";
  guard.release();
  stealer.join();
  EXPECT_EQ(stolen, 1u);
  below::sink(&g.b, got, 1);
  // The next thread adopts the ownerless stack with what it holds: a hit at once.
  std::thread([&] {
    EXPECT_EQ(corepool::ds::thread_cache_pop(g.t), nullptr);  // not attached yet
    void *o = g.t.pop_slow();
    ASSERT_NE(o, nullptr);
    push(g.t, o);
    EXPECT_GE(g.t.count(), in_stack - 1);
  }).join();
  expect_all_once(g, kObjs);
#endif
}

TEST(ThreadCache, IdleStacksAreFlushedBySlowPaths) {
  tier_guard g(16, 64);
  REQUIRE_TIER(g);
  g.t.idle_ns_ = 0;
  std::atomic<bool> filled{false}, leave{false};
  std::thread idle([&] {
    push(g.t, pop(g.t));
    filled.store(true, std::memory_order_release);
    while (!leave.load(std::memory_order_acquire)) std::this_thread::yield();
  });
  while (!filled.load(std::memory_order_acquire)) std::this_thread::yield();
  const unsigned idle_objs = g.t.count();
  ASSERT_GT(idle_objs, 0u);
  // Our slow paths (a cap-1 stack misses on every other call): two sweeps see the idle
  // stack unmoved and flush it.
  for (int i = 0; i < 4 * 64 && g.t.count() >= idle_objs; i++) {
    void *o = g.t.pop_slow();
    ASSERT_NE(o, nullptr);
    g.t.push_slow(o);
  }
  EXPECT_LT(g.t.count(), idle_objs) << "the idle thread's stack was flushed";
  leave.store(true, std::memory_order_release);
  idle.join();
  expect_all_once(g, 64);
}

TEST(ThreadCache, DestroyedWhileThreadsThatUsedItLive) {
  std::atomic<int> phase{0};
  auto *g = new tier_guard(16, 32);
  if (g->rc == -ENOTSUP) {
    delete g;
    GTEST_SKIP() << "no thread tier here";
  }
  ASSERT_EQ(g->rc, 0);
  std::thread w([&] {
    push(g->t, pop(g->t));
    phase.store(1, std::memory_order_release);
    while (phase.load(std::memory_order_acquire) != 2) std::this_thread::yield();
    // The pool is gone; a new one may have its slot: this thread starts without a stack.
    tier_guard again(8, 16);
    EXPECT_EQ(corepool::ds::thread_cache_pop(again.t), nullptr);
    push(again.t, pop(again.t));
    EXPECT_GT(again.t.count(), 0u);
  });  // exits after its pools are gone (ASan: no use after unmap)
  while (phase.load(std::memory_order_acquire) != 1) std::this_thread::yield();
  EXPECT_GT(g->t.count(), 0u);
  g->t.destroy(true);
  EXPECT_EQ(g->b.count(), 32u) << "destroy drained the live thread's stack";
  delete g;
  phase.store(2, std::memory_order_release);
  w.join();
}

TEST(ThreadCache, AtMostSlotsTiersAtOnce) {
  std::vector<std::unique_ptr<tier_guard>> v;
  int enospc = 0;
  for (unsigned i = 0; i < corepool::ds::kThreadCacheSlots + 2; i++) {
    v.push_back(std::make_unique<tier_guard>(4));
    if (v.back()->rc == -ENOTSUP) GTEST_SKIP() << "no thread tier here";
    if (v.back()->rc == -ENOSPC) enospc++;
  }
  EXPECT_GE(enospc, 2);
  v.clear();
  tier_guard g(4);
  EXPECT_EQ(g.rc, 0) << "slots come back on destroy";
}

// Threads on the tier with migration, parking and a signal storm whose handler pops and
// pushes on the same tier, first use in a handler included.
struct chaos_ctx {
  tier_guard *g;
  std::vector<std::atomic<int>> holder;
  std::atomic<int> violations{0};
  explicit chaos_ctx(tier_guard *t, unsigned n) : g(t), holder(n) {}
  void take(void *o, int who) {
    int e = 0;
    if (!holder[below::id(o)].compare_exchange_strong(e, who)) violations++;
  }
  void give(void *o, int who) {
    int e = who;
    if (!holder[below::id(o)].compare_exchange_strong(e, 0)) violations++;
  }
};

void chaos_signal(int worker, void *arg) {
  auto *c = static_cast<chaos_ctx *>(arg);
  if (void *o = pop(c->g->t)) {
    c->take(o, 1000 + worker);
    c->give(o, 1000 + worker);
    push(c->g->t, o);
  }
}

class ThreadCacheChaos : public ::testing::TestWithParam<int> {};

TEST_P(ThreadCacheChaos, NothingLostNothingTwice) {
  const int threads = GetParam();
  constexpr unsigned kObjs = 96;
  tier_guard g(8, kObjs);
  REQUIRE_TIER(g);
  chaos_ctx c(&g, kObjs);
  corepool::chaos::options opt;
  opt.threads = threads;
  opt.signal_storm = true;
  opt.park = threads > 1;
  const int iters = 200000 / threads;
  auto rep = corepool::chaos::run(
      opt,
      [&](int w) {
        corepool::chaos::rng r(static_cast<uint64_t>(w) + 3);
        void *held[6];
        for (int i = 0; i < iters && !corepool::chaos::should_stop(); i++) {
          unsigned n = 1 + static_cast<unsigned>(r.below(6)), k = 0;
          for (; k < n; k++) {
            held[k] = pop(g.t);
            if (!held[k]) {  // all in other stacks or hands: steal like a pool that ran dry
              void *s[1];
              if (g.t.steal(s, 1) == 0) break;
              held[k] = s[0];
            }
            c.take(held[k], w + 1);
          }
          for (unsigned j = 0; j < k; j++) {
            c.give(held[j], w + 1);
            push(g.t, held[j]);
          }
        }
      },
      chaos_signal, &c);
  ASSERT_TRUE(rep.in_time);
  EXPECT_EQ(c.violations.load(), 0);
  EXPECT_EQ(g.total(), kObjs);
  expect_all_once(g, kObjs);
}

INSTANTIATE_TEST_SUITE_P(Threads, ThreadCacheChaos, ::testing::Values(1, 2, 8, 32));

}  // namespace
