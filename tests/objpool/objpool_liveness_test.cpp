// objpool liveness: a thread stopped forever inside push hides only the object it pushes.
// Runs in every objpool_test variant: with rseq on, the stopped push is in an overflow ring
// (the CPU ring is bounded to one slot and full); with COREPOOL_RSEQ=0 it is in the CPU's
// own ring. Either way, pushes on the same CPU after it, pop/push loops there, pops from
// other threads and from a signal handler on the stopped thread must find every object
// that nobody holds.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <atomic>
#include <cstring>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include <corepool/cpu.h>
#include <corepool/objpool.h>

#include "chaos.h"
#include "park_point.h"

namespace {

#ifdef COREPOOL_INJECT
constexpr unsigned kObjs = 64;

bool pin(unsigned cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  bool ok = pthread_setaffinity_np(pthread_self(), sizeof(s), &s) == 0;
  sched_yield();
  return ok;
}

void unpin() {
  cpu_set_t s;
  CPU_ZERO(&s);
  for (unsigned c = 0; c < cp_nr_cpu_ids() && c < CPU_SETSIZE; c++) CPU_SET(c, &s);
  pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
}

// A pool whose pusher A, pinned to CPU 0, is stopped inside a locked push of objs[1] (with
// rseq on, objs[0] first fills CPU 0's one-slot ring so that objs[1] goes to an overflow
// ring). The test thread, pinned to CPU 0 too, then pushes every other object.
struct stopped_pusher {
  cp_objpool *p = nullptr;
  void *objs[kObjs];
  std::thread a;
  bool rseq = false;
  std::optional<corepool::chaos::park_point_guard> hook;

  bool start() {
    if (!pin(0)) return false;
    cp_objpool_attr attr{.ring_capacity = cp_rseq_enabled() ? 1u : 0u,
                         .flags = CP_OBJPOOL_F_NOCACHE,
                         .cache_capacity = 0,
                         .thread_cache = 0};
    EXPECT_EQ(cp_objpool_init_attr(&p, kObjs, 32, nullptr, nullptr, nullptr, &attr), 0);
    rseq = cp_objpool_uses_rseq(p);
    EXPECT_EQ(cp_objpool_pop_bulk(p, objs, kObjs), kObjs);
    hook.emplace();
    a = std::thread([this] {
      pin(0);
      if (rseq) {
        EXPECT_EQ(cp_objpool_push(objs[0], p), 0);  // fills CPU 0's ring
      }
      corepool::chaos::park_at = "cpu_ring.push.locked";
      EXPECT_EQ(cp_objpool_push(objs[1], p), 0);  // stopped inside
    });
    corepool::chaos::park_point_guard::wait_parked();
    if (!rseq) {
      EXPECT_EQ(cp_objpool_push(objs[0], p), 0);
    }
    for (unsigned i = 2; i < kObjs; i++) EXPECT_EQ(cp_objpool_push(objs[i], p), 0);
    return true;
  }

  // Pops until empty from a thread on another CPU (or unpinned): every object but objs[1].
  std::set<void *> pop_all_elsewhere() {
    std::set<void *> got;
    std::thread b([&] {
      if (cp_nr_cpu_ids() > 1 && cp_cpu_possible(1)) pin(1);
      while (void *o = cp_objpool_pop(p)) EXPECT_TRUE(got.insert(o).second) << "twice: " << o;
    });
    b.join();
    for (void *o : got) EXPECT_EQ(cp_objpool_push(o, p), 0);
    return got;
  }

  void finish() {
    corepool::chaos::park_point_guard::release();
    a.join();
    hook.reset();
    unpin();
    std::set<void *> all;
    while (void *o = cp_objpool_pop(p)) EXPECT_TRUE(all.insert(o).second);
    EXPECT_EQ(all.size(), kObjs) << "an object was lost";
    cp_objpool_free(p);
  }
};

TEST(ObjpoolLiveness, StoppedPusherHidesOnlyItsObject) {
  stopped_pusher s;
  if (!s.start()) GTEST_SKIP() << "cannot pin to CPU 0";
  EXPECT_EQ(cp_objpool_nr_free(s.p), kObjs - 1);
  // A pop/push loop on the stopped pusher's CPU keeps finding objects.
  unsigned empty_last_100 = 0;
  for (int i = 0; i < 1000; i++) {
    void *o = cp_objpool_pop(s.p);
    if (!o) {
      if (i >= 900) empty_last_100++;
      continue;
    }
    EXPECT_EQ(cp_objpool_push(o, s.p), 0);
  }
  EXPECT_EQ(empty_last_100, 0u) << "pops on CPU 0 found the pool empty behind a stopped push";
  // So do pops from another thread, and they find every object that nobody holds.
  std::set<void *> got = s.pop_all_elsewhere();
  EXPECT_EQ(got.size(), kObjs - 1) << "objects hidden behind the stopped push";
  EXPECT_EQ(got.count(s.objs[1]), 0u) << "the stopped push's own object came out early";
  s.finish();
}

// A signal handler on the stopped thread itself (interrupting its push) pops every object
// that nobody holds, and pushes them back.
std::atomic<cp_objpool *> g_sig_pool{nullptr};  // set before the signal is sent
void *g_sig_got[kObjs];
std::atomic<unsigned> g_sig_n{0};
std::atomic<bool> g_sig_done{false};

void pop_all_handler(int) {
  cp_objpool *p = g_sig_pool.load(std::memory_order_acquire);
  unsigned n = 0;
  while (n < kObjs)
    if (void *o = cp_objpool_pop(p))
      g_sig_got[n++] = o;
    else
      break;
  for (unsigned i = 0; i < n; i++) cp_objpool_push(g_sig_got[i], p);
  g_sig_n.store(n, std::memory_order_release);
  g_sig_done.store(true, std::memory_order_release);
}

TEST(ObjpoolLiveness, SignalHandlerOnStoppedPusherFindsEveryObject) {
  stopped_pusher s;
  if (!s.start()) GTEST_SKIP() << "cannot pin to CPU 0";
  struct sigaction sa {};
  sa.sa_handler = pop_all_handler;
  sigemptyset(&sa.sa_mask);
  struct sigaction old {};
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  g_sig_pool.store(s.p, std::memory_order_release);
  g_sig_done.store(false, std::memory_order_relaxed);
  ASSERT_EQ(pthread_kill(s.a.native_handle(), SIGUSR1), 0);
  while (!g_sig_done.load(std::memory_order_acquire)) std::this_thread::yield();
  std::set<void *> got(g_sig_got, g_sig_got + g_sig_n.load(std::memory_order_acquire));
  EXPECT_EQ(got.size(), kObjs - 1) << "the handler found objects hidden by its thread's push";
  EXPECT_EQ(got.count(s.objs[1]), 0u);
  s.finish();
  sigaction(SIGUSR1, &old, nullptr);
}
#endif  // COREPOOL_INJECT

}  // namespace
