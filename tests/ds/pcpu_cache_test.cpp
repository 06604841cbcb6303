// ds::pcpu_cache, the per-CPU cache tier: push/pop, bulk, capacity, CPU ids without a slot,
// fence + steal, a stealer stopped while it holds a fence, a thread stopped holding a fallback
// lock, and a chaos run (threads, migration, a signal storm whose handler uses the cache,
// parking) that checks that nothing is lost or handed out twice. Also run with
// COREPOOL_RSEQ=0 (every thread on the fallback stacks).
#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include <corepool/cpu.h>

#include "chaos.h"
#include "ds/pcpu_cache.h"
#include "inject.h"
#include "platform/rseq.h"
#include "platform/rseq_fence.h"

namespace {
using corepool::ds::pcpu_cache;

// Distinct non-NULL tokens.
std::vector<void *> tokens(size_t n) {
  std::vector<void *> v(n);
  for (size_t i = 0; i < n; i++) v[i] = reinterpret_cast<void *>(uintptr_t{0x1000} + 16 * i);
  return v;
}

// Restores the calling thread's affinity when it goes out of scope.
struct affinity_guard {
  cpu_set_t saved;
  affinity_guard() { sched_getaffinity(0, sizeof(saved), &saved); }
  ~affinity_guard() { sched_setaffinity(0, sizeof(saved), &saved); }
  // Pins the thread to `cpu` and checks it runs there.
  static bool pin(unsigned cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0) return false;
    sched_yield();
    return sched_getcpu() == static_cast<int>(cpu);
  }
};

// True when this thread runs on the rseq stacks (it has rseq, the cache has them).
bool on_rseq_stacks(const pcpu_cache &c) {
  return c.stacks_ != nullptr && corepool::platform::rseq_registered_area() != nullptr;
}

struct cache_guard {
  pcpu_cache c;
  int rc;
  cache_guard(unsigned nr, unsigned cap, unsigned flags) : rc(c.init(nr, cap, flags)) {}
  ~cache_guard() { c.destroy(); }
};

TEST(PcpuCache, InitRejectsBadArguments) {
  pcpu_cache c;
  EXPECT_EQ(c.init(0, 8, pcpu_cache::kFallback), -EINVAL);
  EXPECT_EQ(c.init(1, 0, pcpu_cache::kFallback), -EINVAL);
  EXPECT_FALSE(c.enabled());
  // Disabled: every call misses, nothing crashes.
  void *o = reinterpret_cast<void *>(0x10);
  EXPECT_FALSE(c.push_any(o));
  EXPECT_EQ(c.pop_any(), nullptr);
  EXPECT_FALSE(corepool::ds::pcpu_cache_push(c, o));
  EXPECT_EQ(corepool::ds::pcpu_cache_pop(c), nullptr);
  EXPECT_EQ(c.steal(0, &o, 1), 0u);
  EXPECT_EQ(c.count(0), 0u);
}

// One CPU, one stack: LIFO, capacity, all-or-nothing bulk push, up-to-n bulk pop, count.
TEST(PcpuCache, PushPopBulkAndCapacity) {
  affinity_guard ag;
  if (!affinity_guard::pin(0)) GTEST_SKIP() << "cannot pin this thread to CPU 0";
  cache_guard g(cp_nr_cpu_ids(), 8, pcpu_cache::kFallback);
  ASSERT_EQ(g.rc, 0);
  pcpu_cache &c = g.c;
  EXPECT_EQ(c.capacity(), 8u);
  const unsigned cpu = cp_current_cpu();
  std::vector<void *> t = tokens(16);
  for (int i = 0; i < 8; i++) ASSERT_TRUE(c.push_any(t[i])) << i;
  EXPECT_FALSE(c.push_any(t[8])) << "a full stack takes no more";
  EXPECT_EQ(c.count(cpu), 8u);
  for (int i = 7; i >= 0; i--) EXPECT_EQ(c.pop_any(), t[i]) << "last in, first out";
  EXPECT_EQ(c.pop_any(), nullptr);
  EXPECT_EQ(c.count(cpu), 0u);

  ASSERT_TRUE(c.push_bulk_any(t.data(), 5));
  EXPECT_FALSE(c.push_bulk_any(t.data() + 5, 4)) << "push_bulk is all or nothing";
  EXPECT_EQ(c.count(cpu), 5u);
  EXPECT_TRUE(c.push_bulk_any(t.data() + 5, 0));
  void *out[8] = {};
  EXPECT_EQ(c.pop_bulk_any(out, 3), 3u);  // the top three, bottom first
  EXPECT_EQ(std::vector<void *>(out, out + 3), std::vector<void *>(t.begin() + 2, t.begin() + 5));
  EXPECT_EQ(c.pop_bulk_any(out, 8), 2u) << "pop_bulk takes what there is";
  EXPECT_EQ(out[0], t[0]);
  EXPECT_EQ(out[1], t[1]);
  EXPECT_EQ(c.pop_bulk_any(out, 8), 0u);

  // The inline fast paths: on the rseq stacks once the thread is primed, else misses that
  // leave the stack alone.
  pcpu_cache::prime_thread();
  if (on_rseq_stacks(c)) {
    EXPECT_TRUE(corepool::ds::pcpu_cache_push(c, t[0]));
    EXPECT_TRUE(corepool::ds::pcpu_cache_push_bulk(c, t.data() + 1, 7));
    EXPECT_FALSE(corepool::ds::pcpu_cache_push(c, t[8]));
    EXPECT_EQ(corepool::ds::pcpu_cache_pop(c), t[7]);
    EXPECT_EQ(corepool::ds::pcpu_cache_pop_bulk(c, out, 8), 7u);
    EXPECT_EQ(out[0], t[0]);
    EXPECT_EQ(corepool::ds::pcpu_cache_pop(c), nullptr);
  } else {
    EXPECT_FALSE(corepool::ds::pcpu_cache_push(c, t[0]));
    EXPECT_EQ(c.count(cpu), 0u);
  }
  // Quiescent drain takes both kinds of stack.
  ASSERT_TRUE(c.push_bulk_any(t.data(), 6));
  EXPECT_EQ(c.drain_quiescent(cpu, out, 4), 4u);
  EXPECT_EQ(c.drain_quiescent(cpu, out, 8), 2u);
  EXPECT_EQ(c.count(cpu), 0u);
}

// A CPU id at or above the cache's nr_cpus (a possible-CPU mask smaller than the CPUs
// threads run on) has no slot: the rseq paths miss, the slow paths use a fallback stack
// (cp_current_cpu() modulo the cache's ids), and a cache without a fallback misses.
TEST(PcpuCache, CpuIdWithoutSlotTakesTheFallback) {
  affinity_guard ag;
  if (!affinity_guard::pin(1)) GTEST_SKIP() << "cannot pin this thread to CPU 1";
  std::vector<void *> t = tokens(4);
  void *out[4];
  {
    cache_guard g(1, 4, pcpu_cache::kFallback);  // only id 0 has a slot
    ASSERT_EQ(g.rc, 0);
    pcpu_cache &c = g.c;
    pcpu_cache::prime_thread();
    EXPECT_FALSE(corepool::ds::pcpu_cache_push(c, t[0])) << "id 1 has no rseq stack";
    EXPECT_FALSE(corepool::ds::pcpu_cache_push_bulk(c, t.data(), 2));
    EXPECT_EQ(corepool::ds::pcpu_cache_pop(c), nullptr);
    EXPECT_EQ(c.count(1), 0u);
    EXPECT_EQ(c.steal(1, out, 4), 0u);
    const unsigned slot = 0;  // the only one: any id maps to a fallback stack
    ASSERT_TRUE(c.push_any(t[0]));
    ASSERT_TRUE(c.push_bulk_any(t.data() + 1, 3));
    EXPECT_FALSE(c.push_any(t[0])) << "the fallback stack has the same capacity";
    EXPECT_EQ(c.count(slot), 4u) << "the objects went to the fallback stack of id " << slot;
    if (c.stacks_) {
      EXPECT_EQ(c.stacks_->top, 0) << "nothing went to id 0's rseq stack";
    }
    EXPECT_EQ(c.pop_any(), t[3]);
    EXPECT_EQ(c.pop_bulk_any(out, 4), 3u);
    EXPECT_EQ(std::vector<void *>(out, out + 3), std::vector<void *>(t.begin(), t.begin() + 3));
  }
  {
    cache_guard g(1, 4, pcpu_cache::kStealable);
    if (g.rc == -ENOTSUP) GTEST_SKIP() << "no rseq or rseq fence: no stealable cache";
    ASSERT_EQ(g.rc, 0);
    EXPECT_FALSE(g.c.push_any(t[0])) << "no slot and no fallback: a miss";
    EXPECT_FALSE(g.c.push_bulk_any(t.data(), 2));
    EXPECT_EQ(g.c.pop_any(), nullptr);
    EXPECT_EQ(g.c.pop_bulk_any(out, 4), 0u);
  }
}

// Fence + steal: a remote thread takes the top objects of a CPU's stack, once each.
TEST(PcpuCache, StealTakesTheTopOnce) {
  cache_guard g(cp_nr_cpu_ids(), 8, pcpu_cache::kStealable | pcpu_cache::kFallback);
  ASSERT_EQ(g.rc, 0);
  pcpu_cache &c = g.c;
  if (!c.stacks_) GTEST_SKIP() << "no rseq or rseq fence: nothing to steal from";
  affinity_guard ag;
  if (!affinity_guard::pin(0)) GTEST_SKIP() << "cannot pin this thread to CPU 0";
  if (!on_rseq_stacks(c)) GTEST_SKIP() << "this thread has no rseq";
  std::vector<void *> t = tokens(8);
  ASSERT_TRUE(c.push_bulk_any(t.data(), 5));
  void *out[8] = {};
  unsigned k1 = 0, k2 = 0, k3 = 0;
  std::thread([&] {  // any CPU
    k1 = c.steal(0, out, 3);
    k2 = c.steal(0, out + 3, 8);
    k3 = c.steal(0, out + 5, 8);
  })
      .join();
  EXPECT_EQ(k1, 3u);
  EXPECT_EQ(k2, 2u);
  EXPECT_EQ(k3, 0u);
  EXPECT_EQ(std::set<void *>(out, out + 5), std::set<void *>(t.begin(), t.begin() + 5));
  EXPECT_EQ(std::vector<void *>(out, out + 3), std::vector<void *>(t.begin() + 2, t.begin() + 5));
  EXPECT_EQ(c.count(0), 0u);
  // The owner's sequences work again after the fence is down (S4).
  EXPECT_TRUE(corepool::ds::pcpu_cache_push(c, t[0]));
  EXPECT_EQ(corepool::ds::pcpu_cache_pop(c), t[0]);
  // A cache built without kStealable never steals.
  cache_guard ns(cp_nr_cpu_ids(), 8, pcpu_cache::kFallback);
  ASSERT_EQ(ns.rc, 0);
  ASSERT_TRUE(ns.c.push_any(t[0]));
  EXPECT_EQ(ns.c.steal(0, out, 1), 0u);
  EXPECT_EQ(ns.c.pop_any(), t[0]);
}

#ifdef COREPOOL_INJECT
std::atomic<bool> g_parked{false}, g_release{false};
thread_local const char *t_park_at = nullptr;  // the point this thread stops at, once
void park_hook(const char *point) {
  if (!t_park_at || std::strcmp(point, t_park_at) != 0) return;
  t_park_at = nullptr;
  g_parked.store(true, std::memory_order_release);
  corepool::chaos::park_self_until(g_release);
}

// A stealer stopped while it holds CPU 0's fence (between S1 and S4): the owner's
// operations on CPU 0 do not wait, they miss (the caller goes to its slow path), other
// stealers skip CPU 0; when the stealer resumes it takes exactly what was there.
TEST(PcpuCache, StoppedStealerHoldsOnlyItsStack) {
  cache_guard g(cp_nr_cpu_ids(), 8, pcpu_cache::kStealable);
  if (g.rc == -ENOTSUP) GTEST_SKIP() << "no rseq or rseq fence: nothing to steal from";
  ASSERT_EQ(g.rc, 0);
  pcpu_cache &c = g.c;
  affinity_guard ag;
  if (!affinity_guard::pin(0)) GTEST_SKIP() << "cannot pin this thread to CPU 0";
  if (!on_rseq_stacks(c)) GTEST_SKIP() << "this thread has no rseq";
  std::vector<void *> t = tokens(8);
  ASSERT_TRUE(c.push_bulk_any(t.data(), 4));
  g_parked.store(false, std::memory_order_relaxed);
  g_release.store(false, std::memory_order_relaxed);
  cp_inject_hook = park_hook;
  void *stolen[8] = {};
  unsigned k = 0;
  std::thread stealer([&] {
    t_park_at = "pcpu_cache.steal.fenced";
    k = c.steal(0, stolen, 8);
  });
  for (int i = 0; i < 20000 && !g_parked.load(std::memory_order_acquire); i++)
    std::this_thread::yield();
  ASSERT_TRUE(g_parked.load(std::memory_order_acquire));
  // The owner, on CPU 0: every operation returns at once, as a miss.
  for (int i = 0; i < 1000; i++) {
    EXPECT_FALSE(corepool::ds::pcpu_cache_push(c, t[4]));
    EXPECT_EQ(corepool::ds::pcpu_cache_pop(c), nullptr);
    EXPECT_FALSE(c.push_bulk_any(t.data() + 4, 2));
    void *out[4];
    EXPECT_EQ(c.pop_bulk_any(out, 4), 0u);
  }
  EXPECT_EQ(c.count(0), 4u) << "the stack keeps its objects while the stealer is stopped";
  void *other[8];
  std::thread([&] {
    EXPECT_EQ(c.steal(0, other, 8), 0u) << "a second stealer skips CPU 0";
  }).join();
  g_release.store(true, std::memory_order_release);
  stealer.join();
  cp_inject_hook = nullptr;
  ASSERT_EQ(k, 4u);
  EXPECT_EQ(std::set<void *>(stolen, stolen + 4), std::set<void *>(t.begin(), t.begin() + 4));
  EXPECT_EQ(c.count(0), 0u);
  EXPECT_TRUE(corepool::ds::pcpu_cache_push(c, t[4])) << "the owner's stack is open again";
  EXPECT_EQ(c.pop_any(), t[4]);
}

// A thread stopped while it holds a fallback stack's lock (after L1, before L2): every other
// operation on that stack returns at once as a miss (I4), the stack keeps its objects (I6),
// and when the holder resumes it takes exactly one of them (I1, I3).
TEST(PcpuCache, StoppedFallbackHolderHidesOnlyItsStack) {
  affinity_guard ag;
  // CPU id 1 has no slot in a one-id cache (I5): with or without rseq, threads on CPU 1 use
  // fallback stack 0.
  if (!affinity_guard::pin(1)) GTEST_SKIP() << "cannot pin this thread to CPU 1";
  cache_guard g(1, 8, pcpu_cache::kFallback);
  ASSERT_EQ(g.rc, 0);
  pcpu_cache &c = g.c;
  std::vector<void *> t = tokens(8);
  ASSERT_TRUE(c.push_bulk_any(t.data(), 3));
  ASSERT_EQ(c.count(0), 3u);
  g_parked.store(false, std::memory_order_relaxed);
  g_release.store(false, std::memory_order_relaxed);
  cp_inject_hook = park_hook;
  void *held = nullptr;
  std::thread holder([&] {  // inherits the pin to CPU 1
    t_park_at = "pcpu_cache.fallback.locked";
    held = c.pop_any();
  });
  for (int i = 0; i < 20000 && !g_parked.load(std::memory_order_acquire); i++)
    std::this_thread::yield();
  ASSERT_TRUE(g_parked.load(std::memory_order_acquire));
  for (int i = 0; i < 1000; i++) {
    EXPECT_FALSE(c.push_any(t[4])) << "a held lock is a miss, not a wait";
    EXPECT_EQ(c.pop_any(), nullptr);
    EXPECT_FALSE(c.push_bulk_any(t.data() + 4, 2));
    void *out[4];
    EXPECT_EQ(c.pop_bulk_any(out, 4), 0u);
  }
  EXPECT_EQ(c.count(0), 3u) << "the stack keeps its objects while the holder is stopped";
  g_release.store(true, std::memory_order_release);
  holder.join();
  cp_inject_hook = nullptr;
  EXPECT_EQ(held, t[2]) << "the holder resumes and pops the top";
  EXPECT_EQ(c.count(0), 2u);
  EXPECT_TRUE(c.push_any(t[2])) << "the lock is free again (L2)";
  void *out[4];
  ASSERT_EQ(c.pop_bulk_any(out, 4), 3u);
  EXPECT_EQ(std::vector<void *>(out, out + 3), std::vector<void *>(t.begin(), t.begin() + 3));
}
#endif

// ---- chaos: nothing lost, nothing handed out twice -------------------------------------------

// Object i is token i; in_hands[i] is 1 while a worker (or a signal handler) holds it, 0
// while it is in a stack or on its way in. A pop that finds 1 means it was handed out twice.
struct chaos_state {
  pcpu_cache c;
  std::vector<void *> objs;
  std::unique_ptr<std::atomic<int>[]> in_hands;
  std::atomic<int> dups{0}, bad{0};
  std::atomic<void *> sig_hold[64] = {};  // one object a signal handler keeps per worker
  explicit chaos_state(size_t n) : objs(tokens(n)), in_hands(new std::atomic<int>[n]) {
    for (size_t i = 0; i < n; i++) in_hands[i].store(1, std::memory_order_relaxed);
  }
  size_t index(void *o) const { return (reinterpret_cast<uintptr_t>(o) - 0x1000) / 16; }
  void taken(void *o) {
    const size_t i = index(o);
    if (i >= objs.size() || objs[i] != o) {
      bad.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // acq_rel: pairs with the release in giving() of whoever put it in.
    if (in_hands[i].exchange(1, std::memory_order_acq_rel) != 0)
      dups.fetch_add(1, std::memory_order_relaxed);
  }
  void giving(void *o) { in_hands[index(o)].store(0, std::memory_order_release); }
  void kept(void *o) { taken(o); }  // a push that failed: back in our hands
};

chaos_state *g_chaos = nullptr;

// The storm's handler, on the interrupted worker: puts back the object it holds, or takes
// one (slow paths, async-signal-safe).
void chaos_on_signal(int w, void *) {
  chaos_state &s = *g_chaos;
  std::atomic<void *> &hold = s.sig_hold[w % 64];
  void *o = hold.load(std::memory_order_relaxed);
  if (o) {
    s.giving(o);
    if (s.c.push_any(o))
      hold.store(nullptr, std::memory_order_relaxed);
    else
      s.kept(o);
  } else if (void *got = s.c.pop_any()) {
    s.taken(got);
    hold.store(got, std::memory_order_relaxed);
  }
}

struct chaos_param {
  int threads;
  bool park;
};

class PcpuCacheChaos : public ::testing::TestWithParam<chaos_param> {};

TEST_P(PcpuCacheChaos, NothingLostNothingTwice) {
  const chaos_param prm = GetParam();
  const int T = prm.threads;
  const size_t per = 48;
  chaos_state s(per * T);
  ASSERT_EQ(s.c.init(cp_nr_cpu_ids(), 16, pcpu_cache::kStealable | pcpu_cache::kFallback), 0);
  g_chaos = &s;
  std::vector<std::vector<void *>> hands(T);
  for (int w = 0; w < T; w++)
    hands[w].assign(s.objs.begin() + w * per, s.objs.begin() + (w + 1) * per);
  corepool::chaos::options opt;
  opt.threads = T;
  opt.signal_storm = true;
  opt.storm_hz = 20000;
  opt.park = prm.park;
  opt.deadline = std::chrono::milliseconds(60000);
  const int iters = 400000 / corepool::chaos::kTsanScale;
  const unsigned ncpu = cp_nr_cpu_ids();
  auto rep = corepool::chaos::run(
      opt,
      [&](int w) {
        corepool::chaos::rng r(w + 11);
        std::vector<void *> &mine = hands[w];
        void *buf[8];
        for (int i = 0; i < iters && !corepool::chaos::should_stop(); i++) {
          switch (r.below(8)) {
            case 0:  // one, fast path
            case 1: {
              if (mine.empty()) break;
              void *o = mine.back();
              s.giving(o);
              if (corepool::ds::pcpu_cache_push(s.c, o) || s.c.push_any(o))
                mine.pop_back();
              else
                s.kept(o);
              break;
            }
            case 2:
            case 3: {
              void *o = corepool::ds::pcpu_cache_pop(s.c);
              if (!o) o = s.c.pop_any();
              if (o) s.taken(o), mine.push_back(o);
              break;
            }
            case 4: {  // bulk push, all or nothing
              const unsigned n = 1 + static_cast<unsigned>(r.below(8));
              if (mine.size() < n) break;
              void *const *from = mine.data() + mine.size() - n;
              for (unsigned j = 0; j < n; j++) s.giving(from[j]);
              const bool ok = r.below(2) ? corepool::ds::pcpu_cache_push_bulk(s.c, from, n)
                                         : s.c.push_bulk_any(from, n);
              if (ok)
                mine.resize(mine.size() - n);
              else
                for (unsigned j = 0; j < n; j++) s.kept(from[j]);
              break;
            }
            case 5: {  // bulk pop, up to n
              const unsigned n = 1 + static_cast<unsigned>(r.below(8));
              const unsigned k = r.below(2) ? corepool::ds::pcpu_cache_pop_bulk(s.c, buf, n)
                                            : s.c.pop_bulk_any(buf, n);
              for (unsigned j = 0; j < k; j++) s.taken(buf[j]), mine.push_back(buf[j]);
              break;
            }
            default: {  // steal from a random CPU (rarely: a system call)
              if (r.below(16) != 0) break;
              const unsigned k =
                  s.c.steal(static_cast<unsigned>(r.below(ncpu)), buf, 1 + r.below(8));
              for (unsigned j = 0; j < k; j++) s.taken(buf[j]), mine.push_back(buf[j]);
              break;
            }
          }
        }
      },
      chaos_on_signal, nullptr);
  g_chaos = nullptr;
  EXPECT_TRUE(rep.in_time);
  EXPECT_GT(rep.signals, 0u) << "the storm's handler never ran inside the cache";
  EXPECT_EQ(s.dups.load(), 0) << "an object was handed out twice";
  EXPECT_EQ(s.bad.load(), 0) << "a pop returned something never pushed";
  // Quiescent: every object is in exactly one place.
  std::vector<void *> all;
  for (auto &m : hands) all.insert(all.end(), m.begin(), m.end());
  for (auto &h : s.sig_hold)
    if (void *o = h.load(std::memory_order_relaxed)) all.push_back(o);
  void *buf[16];
  for (unsigned cpu = 0; cpu < ncpu; cpu++)
    for (unsigned k; (k = s.c.drain_quiescent(cpu, buf, 16)) > 0;)
      all.insert(all.end(), buf, buf + k);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "an object in two places";
  EXPECT_EQ(all.size(), s.objs.size()) << "objects lost";
  s.c.destroy();
}

INSTANTIATE_TEST_SUITE_P(Threads, PcpuCacheChaos,
                         ::testing::Values(chaos_param{.threads = 2, .park = false},
                                           chaos_param{.threads = 8, .park = false},
                                           chaos_param{.threads = 8, .park = true}),
                         [](const auto &i) {
                           return std::to_string(i.param.threads) + (i.param.park ? "_park" : "");
                         });

}  // namespace
