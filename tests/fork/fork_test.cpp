// fork() with corepool's pools in use: every pool created before the fork keeps its
// documented background behaviour on both sides (gen_pool growth hooks, percpu_pool's
// automatic refill, the per-CPU allocator's reclaim), setting a hook in the child does not
// block, and a lock that another thread held at the fork does not deadlock the child.
#include <corepool/genpool.h>
#include <corepool/percpu.h>
#include <corepool/percpu_pool.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "percpu/percpu_internal.h"
#include "percpu_pool/percpu_pool_internal.h"

#ifdef COREPOOL_INJECT
#include "park_point.h"
#endif

namespace {
using namespace std::chrono_literals;

// A child that hangs is killed by this alarm (and the test fails on its status).
constexpr unsigned kChildAlarm = 120;
// Waits for something the worker does. Only a hang exceeds it: it is not a timing bound.
constexpr auto kPatience = 60s;

template <class F>
bool eventually(F &&cond) {
  auto end = std::chrono::steady_clock::now() + kPatience;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Exit status of a child, or 1000 + the signal that killed it.
int reap(pid_t pid) {
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  if (WIFSIGNALED(st)) return 1000 + WTERMSIG(st);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// ---- the three background duties, each checked the same way in a child and in the parent ---

// A gen_pool growth hook adds a chunk of kGrow bytes at fresh (never dereferenced) addresses.
constexpr size_t kPage = 4096, kGrow = 64 * kPage, kThreshold = 16 * kPage;
struct hook_ctx {
  std::atomic<uintptr_t> next{0x10000000};
  std::atomic<int> runs{0};
};
void grow_hook(cp_gen_pool *pool, size_t, void *c) {
  auto *x = static_cast<hook_ctx *>(c);
  cp_gen_pool_add(pool, x->next.fetch_add(kGrow + kPage), kGrow, -1);
  x->runs.fetch_add(1, std::memory_order_relaxed);
}

// Allocates until avail is under the threshold (one more alloc under it): the hook set on
// the pool (ctx) must run. Then sets a new hook (must not block) and checks it the same way.
// Leaves the allocations in `held`.
int grow_once(cp_gen_pool *gp, hook_ctx *ctx, std::vector<uintptr_t> *held) {
  int before = ctx->runs.load(std::memory_order_relaxed);
  while (cp_gen_pool_avail(gp) >= kThreshold) {
    uintptr_t a = cp_gen_pool_alloc(gp, kPage);
    if (!a) return 1;
    held->push_back(a);
  }
  held->push_back(cp_gen_pool_alloc(gp, kPage));
  return eventually([&] { return ctx->runs.load(std::memory_order_relaxed) > before; }) ? 0 : 2;
}
int check_growth(cp_gen_pool *gp, hook_ctx *old_ctx, hook_ctx *new_ctx,
                 std::vector<uintptr_t> *held) {
  if (old_ctx && grow_once(gp, old_ctx, held)) return 1;
  if (cp_gen_pool_set_low_watermark(gp, kThreshold, grow_hook, new_ctx) != 0) return 2;
  return grow_once(gp, new_ctx, held) ? 3 : 0;
}

// Takes every cached area (freeing it): the alloc that finds the pool empty must get a refill.
int check_refill(cp_percpu_pool *pp) {
  while (void *a = cp_percpu_pool_alloc(pp)) cp_free_percpu(a);
  if (!eventually([&] { return cp_percpu_pool_nr(pp) > 0; })) return 4;
  return 0;
}

// Creates fully free chunks: the worker must release all of them but one.
int full_free_chunks() {
  int n = 0;
  for (auto &c : corepool::pcpu::chunks()) n += c.nr_allocs == 0;
  return n;
}
int check_reclaim() {
  std::vector<void *> v;
  for (int i = 0; i < 12; i++) v.push_back(cp_alloc_percpu(16 * 1024, 8));  // >= 3 chunks
  for (void *a : v) {
    if (!a) return 5;
    cp_free_percpu(a);
  }
  cp_free_percpu(cp_alloc_percpu(8, 8));  // drains the frees and wakes the worker
  if (!eventually([] { return full_free_chunks() <= 1; })) return 6;
  return 0;
}

// In this order: the refill first (an alloc is all it needs: nothing else may start the
// worker before it), then the hooks, then reclaim.
int check_all(cp_gen_pool *gp, hook_ctx *old_ctx, hook_ctx *new_ctx, cp_percpu_pool *pp,
              std::vector<uintptr_t> *held) {
  if (int r = check_refill(pp)) return r;
  if (int r = check_growth(gp, old_ctx, new_ctx, held)) return r;
  return check_reclaim();
}

// Forks at random moments while other threads keep every duty busy (percpu_pool allocs that
// trigger refills, gen_pool allocs under the threshold that queue the hook, per-CPU frees
// that queue reclaim), so the fork lands inside fills, hooks, reclaims and schedules. Each
// child checks every duty on its own; the parent checks them after the last fork.
TEST(Fork, AtRandomMomentsUnderLoadBothSidesKeepWorking) {
  cp_gen_pool *gp = cp_gen_pool_create(12, -1);
  ASSERT_NE(gp, nullptr);
  ASSERT_EQ(cp_gen_pool_add(gp, 0x1000000, kGrow, -1), 0);
  hook_ctx ctx;
  ASSERT_EQ(cp_gen_pool_set_low_watermark(gp, kThreshold, grow_hook, &ctx), 0);
  cp_percpu_pool *pp = nullptr;
  ASSERT_EQ(cp_percpu_pool_create(&pp, 64, 8, 4, 16), 0);
  cp_percpu_pool_fill(pp, 0);

  std::atomic<bool> stop{false};
  // No fork before every load thread is past its start and holds all the heap it will use
  // (its vectors reserved): a sanitizer runtime's thread start allocates, and GCC 12's ASan
  // allocator has no fork handler, so a fork inside a malloc leaves the child's allocator
  // locked. The library's own work (refills, hooks, reclaim) takes no heap memory outside
  // the locks its fork handlers take, so the forks still land anywhere inside it.
  std::atomic<int> running{0};
  std::vector<std::thread> load;
  load.emplace_back([&] {  // percpu_pool refills
    running.fetch_add(1, std::memory_order_relaxed);
    while (!stop.load(std::memory_order_relaxed))
      if (void *a = cp_percpu_pool_alloc(pp)) cp_free_percpu(a);
  });
  load.emplace_back([&] {  // growth hooks: hold up to 256 pages, then give them back
    std::vector<uintptr_t> v;
    v.reserve(256);
    running.fetch_add(1, std::memory_order_relaxed);
    while (!stop.load(std::memory_order_relaxed)) {
      if (uintptr_t a = cp_gen_pool_alloc(gp, kPage)) v.push_back(a);
      if (v.size() >= 256) {
        for (uintptr_t a : v) cp_gen_pool_free(gp, a, kPage);
        v.clear();
      }
    }
    for (uintptr_t a : v) cp_gen_pool_free(gp, a, kPage);
  });
  load.emplace_back([&] {  // reclaim: chunks filled and freed again
    std::vector<void *> v;
    v.reserve(8);
    running.fetch_add(1, std::memory_order_relaxed);
    while (!stop.load(std::memory_order_relaxed)) {
      for (int i = 0; i < 8; i++) v.push_back(cp_alloc_percpu(16 * 1024, 8));
      for (void *a : v) cp_free_percpu(a);
      v.clear();
    }
  });

  while (running.load(std::memory_order_relaxed) < static_cast<int>(load.size()))
    std::this_thread::yield();
  std::mt19937 rng(20261207);
  constexpr int kForks = 24;
  for (int f = 0; f < kForks; f++) {
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      alarm(kChildAlarm);
      hook_ctx mine;  // a hook set in the child; &ctx is the child's copy of the parent's
      std::vector<uintptr_t> held;
      _exit(check_all(gp, &ctx, &mine, pp, &held));
    }
    ASSERT_EQ(reap(pid), 0) << "fork " << f << " (4 refill, 1-3 growth hooks, 5-6 reclaim)";
  }
  stop.store(true, std::memory_order_relaxed);
  for (auto &t : load) t.join();

  std::vector<uintptr_t> held;
  hook_ctx again;
  EXPECT_EQ(check_all(gp, &ctx, &again, pp, &held), 0) << "the parent after the forks";
  ASSERT_EQ(cp_gen_pool_set_low_watermark(gp, 0, nullptr, nullptr), 0);
  for (uintptr_t a : held)
    if (a) {
      EXPECT_EQ(cp_gen_pool_free(gp, a, kPage), 0);
    }
  cp_percpu_pool_destroy(pp);
  EXPECT_EQ(cp_gen_pool_destroy(gp), 0);
}

// A child that needs no background work (it only allocates, or execs) starts no thread.
int nr_threads() {
  int n = 0;
  if (DIR *d = opendir("/proc/self/task")) {
    while (dirent *e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

TEST(Fork, ChildWithoutBackgroundDutiesStartsNoThread) {
  // The per-CPU allocator's reclaim runs on the worker in this process...
  cp_free_percpu(cp_alloc_percpu(8, 8));
  cp_gen_pool *gp = cp_gen_pool_create(12, -1);  // ...and a pool without a hook
  ASSERT_EQ(cp_gen_pool_add(gp, 0x1000000, kGrow, -1), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(kChildAlarm);
    uintptr_t a = cp_gen_pool_alloc(gp, kPage);
    if (!a || cp_gen_pool_free(gp, a, kPage) != 0) _exit(1);
    if (nr_threads() != 1) _exit(2);
    hook_ctx mine;  // a hook: the worker starts now, and runs it
    std::vector<uintptr_t> held;
    if (int r = check_growth(gp, nullptr, &mine, &held)) _exit(10 + r);
    _exit(nr_threads() == 2 ? 0 : 3);
  }
  EXPECT_EQ(reap(pid), 0);
  EXPECT_EQ(cp_gen_pool_destroy(gp), 0);
}

#ifdef COREPOOL_INJECT
using corepool::chaos::park_point_guard;

// A test fork handler, registered after the library's, so its prepare runs first: it tells
// the releaser that the fork has begun, and its parent handler that it is done.
std::atomic<bool> g_forking{false}, g_forked{false};
void register_test_fork_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    pthread_atfork([] { g_forking.store(true, std::memory_order_release); },
                   [] { g_forked.store(true, std::memory_order_release); }, nullptr);
  });
}

// One thread stops at `point` inside an operation that holds a lock; the main thread forks.
// The stopped thread is released once the fork is done, or 50 ms after it began (a fork that
// waits for the lock cannot finish before). The child then runs `op`, which takes the same
// lock: it must finish.
template <class Holder, class Op>
void fork_while_held(const char *point, Holder holder, Op op) {
  park_point_guard guard;
  std::thread h([&] {
    corepool::chaos::park_at = point;
    holder();
  });
  park_point_guard::wait_parked();
  g_forking.store(false, std::memory_order_relaxed);
  g_forked.store(false, std::memory_order_relaxed);
  std::thread releaser([] {
    while (!g_forking.load(std::memory_order_acquire)) std::this_thread::sleep_for(1ms);
    for (int i = 0; i < 50 && !g_forked.load(std::memory_order_acquire); i++)
      std::this_thread::sleep_for(1ms);
    park_point_guard::release();
  });
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(kChildAlarm);
    _exit(op());
  }
  releaser.join();
  h.join();
  EXPECT_EQ(reap(pid), 0) << point;
}

TEST(Fork, LockHeldByAnotherThreadDoesNotDeadlockTheChild) {
  cp_percpu_pool *pp = nullptr;
  ASSERT_EQ(cp_percpu_pool_create(&pp, 64, 8, 0, 8), 0);
  cp_gen_pool *gp = cp_gen_pool_create(12, -1);
  ASSERT_NE(gp, nullptr);
  cp_free_percpu(cp_alloc_percpu(8, 8));
  register_test_fork_handlers();  // after every library handler: its prepare runs first
  // The per-CPU allocator's lock (an allocation stopped after it found its place).
  fork_while_held(
      "percpu_alloc_found", [] { cp_free_percpu(cp_alloc_percpu(64, 8)); },
      [] {
        void *a = cp_alloc_percpu(64, 8);
        cp_free_percpu(a);
        return a ? 0 : 1;
      });
  // A percpu_pool's fill lock (a fill stopped after publishing an area).
  fork_while_held(
      "percpu_pool_published", [&] { cp_percpu_pool_fill(pp, 8); },
      [&] {
        cp_percpu_pool_empty(pp);
        cp_percpu_pool_fill(pp, 4);
        return cp_percpu_pool_nr(pp) == 4 ? 0 : 1;
      });
  cp_percpu_pool_destroy(pp);
  // A private gen_pool's add lock (an add stopped after formatting its chunk).
  fork_while_held(
      "genpool.add.formatted", [&] { cp_gen_pool_add(gp, 0x1000000, kGrow, -1); },
      [&] { return cp_gen_pool_add(gp, 0x2000000, kGrow, -1) == 0 ? 0 : 1; });
  EXPECT_EQ(cp_gen_pool_destroy(gp), 0);
}
#endif

}  // namespace
