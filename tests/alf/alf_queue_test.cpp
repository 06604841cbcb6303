// The ALF queue: API contract (bad-input table, all-or-nothing, FIFO, wrap-around), then
// MPMC exactness under the chaos harness, and progress while a thread is parked mid-operation.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <corepool/alf_queue.h>
#include <corepool/error.h>
#include <corepool/alf_queue.hpp>

#include "chaos.h"
#include "inject.h"

namespace {

constexpr int kScale = corepool::chaos::kTsanScale;

struct queue_guard {
  cp_alf_queue *q = nullptr;
  explicit queue_guard(uint32_t size) { EXPECT_EQ(cp_alf_queue_alloc(&q, size), 0); }
  ~queue_guard() { cp_alf_queue_free(q); }
};

// ---- bad input: every documented -EINVAL really happens, with a message -------------------

TEST(AlfQueue, BadInputTable) {
  queue_guard g(8);
  cp_alf_queue *q = g.q;
  void *buf[4] = {};
  struct row {
    const char *what;
    int (*call)(cp_alf_queue *q, void **buf);
  };
  const row rows[] = {
      {.what = "alloc q NULL",
       .call = [](cp_alf_queue *, void **) { return cp_alf_queue_alloc(nullptr, 8); }},
      {.what = "alloc size 0",
       .call =
           [](cp_alf_queue *, void **) {
             cp_alf_queue *x;
             return cp_alf_queue_alloc(&x, 0);
           }},
      {.what = "alloc size 1",
       .call =
           [](cp_alf_queue *, void **) {
             cp_alf_queue *x;
             return cp_alf_queue_alloc(&x, 1);
           }},
      {.what = "alloc size 3",
       .call =
           [](cp_alf_queue *, void **) {
             cp_alf_queue *x;
             return cp_alf_queue_alloc(&x, 3);
           }},
      {.what = "alloc size 96",
       .call =
           [](cp_alf_queue *, void **) {
             cp_alf_queue *x;
             return cp_alf_queue_alloc(&x, 96);
           }},
      {.what = "alloc size 2^31+1",
       .call =
           [](cp_alf_queue *, void **) {
             cp_alf_queue *x;
             return cp_alf_queue_alloc(&x, 0x80000001u);
           }},
      {.what = "mp_enqueue q NULL",
       .call = [](cp_alf_queue *, void **b) { return cp_alf_mp_enqueue(nullptr, b, 1); }},
      {.what = "mp_enqueue n < 0",
       .call = [](cp_alf_queue *x, void **b) { return cp_alf_mp_enqueue(x, b, -1); }},
      {.what = "mp_enqueue ptrs NULL",
       .call = [](cp_alf_queue *x, void **) { return cp_alf_mp_enqueue(x, nullptr, 1); }},
      {.what = "sp_enqueue q NULL",
       .call = [](cp_alf_queue *, void **b) { return cp_alf_sp_enqueue(nullptr, b, 1); }},
      {.what = "sp_enqueue n < 0",
       .call = [](cp_alf_queue *x, void **b) { return cp_alf_sp_enqueue(x, b, -5); }},
      {.what = "sp_enqueue ptrs NULL",
       .call = [](cp_alf_queue *x, void **) { return cp_alf_sp_enqueue(x, nullptr, 2); }},
      {.what = "mc_dequeue q NULL",
       .call = [](cp_alf_queue *, void **b) { return cp_alf_mc_dequeue(nullptr, b, 1); }},
      {.what = "mc_dequeue n < 0",
       .call = [](cp_alf_queue *x, void **b) { return cp_alf_mc_dequeue(x, b, -1); }},
      {.what = "mc_dequeue ptrs NULL",
       .call = [](cp_alf_queue *x, void **) { return cp_alf_mc_dequeue(x, nullptr, 1); }},
      {.what = "sc_dequeue q NULL",
       .call = [](cp_alf_queue *, void **b) { return cp_alf_sc_dequeue(nullptr, b, 1); }},
      {.what = "sc_dequeue n < 0",
       .call = [](cp_alf_queue *x, void **b) { return cp_alf_sc_dequeue(x, b, -1); }},
      {.what = "sc_dequeue ptrs NULL",
       .call = [](cp_alf_queue *x, void **) { return cp_alf_sc_dequeue(x, nullptr, 3); }},
  };
  for (const row &r : rows) {
    cp_clear_error();
    EXPECT_EQ(r.call(q, buf), -EINVAL) << r.what;
    EXPECT_STRNE(cp_last_error(), "") << r.what;
  }
  // Zero-length operations are valid and do nothing, even with NULL ptrs.
  EXPECT_EQ(cp_alf_mp_enqueue(q, nullptr, 0), 0);
  EXPECT_EQ(cp_alf_mc_dequeue(q, nullptr, 0), 0);
  EXPECT_TRUE(cp_alf_queue_empty(q));
  EXPECT_TRUE(cp_alf_queue_empty(nullptr));
  EXPECT_EQ(cp_alf_queue_count(nullptr), 0u);
  cp_alf_queue_free(nullptr);  // no-op
}

TEST(AlfQueue, SmallestAndValidSizes) {
  for (uint32_t size : {2u, 4u, 64u, 1024u}) {
    queue_guard g(size);
    ASSERT_NE(g.q, nullptr);
    std::vector<void *> in(size), out(size);
    for (uint32_t i = 0; i < size; i++) in[i] = reinterpret_cast<void *>(uintptr_t{i + 1});
    EXPECT_EQ(cp_alf_mp_enqueue(g.q, in.data(), static_cast<int>(size)), static_cast<int>(size));
    EXPECT_EQ(cp_alf_queue_count(g.q), size);
    EXPECT_EQ(cp_alf_mp_enqueue(g.q, in.data(), 1), 0);
    EXPECT_EQ(cp_alf_mc_dequeue(g.q, out.data(), static_cast<int>(size) + 5),
              static_cast<int>(size));
    EXPECT_EQ(in, out);
  }
}

// ---- single-thread semantics ---------------------------------------------------------------

void *P(uintptr_t v) {
  return reinterpret_cast<void *>(v);
}

template <bool SP>
void all_or_nothing_fifo() {
  queue_guard g(8);
  auto enq = [&](void *const *p, int n) {
    return SP ? cp_alf_sp_enqueue(g.q, p, n) : cp_alf_mp_enqueue(g.q, p, n);
  };
  auto deq = [&](void **p, int n) {
    return SP ? cp_alf_sc_dequeue(g.q, p, n) : cp_alf_mc_dequeue(g.q, p, n);
  };
  void *in[10], *out[10];
  for (int i = 0; i < 10; i++) in[i] = P(100 + i);
  EXPECT_EQ(enq(in, 9), 0);  // more than the capacity: never fits
  EXPECT_TRUE(cp_alf_queue_empty(g.q));
  EXPECT_EQ(enq(in, 6), 6);
  EXPECT_EQ(enq(in + 6, 3), 0);  // 3 do not fit: nothing is added
  EXPECT_EQ(cp_alf_queue_count(g.q), 6u);
  EXPECT_EQ(enq(in + 6, 2), 2);
  EXPECT_EQ(cp_alf_queue_count(g.q), 8u);
  EXPECT_EQ(deq(out, 3), 3);
  for (int i = 0; i < 3; i++) EXPECT_EQ(out[i], in[i]);
  // wrap around: 3 free slots at the start of the array
  void *more[3] = {P(1), P(2), P(3)};
  EXPECT_EQ(enq(more, 3), 3);
  EXPECT_EQ(deq(out, 10), 8);  // burst: as many as there are
  for (int i = 0; i < 5; i++) EXPECT_EQ(out[i], in[3 + i]);
  for (int i = 0; i < 3; i++) EXPECT_EQ(out[5 + i], more[i]);
  EXPECT_EQ(deq(out, 1), 0);
  EXPECT_TRUE(cp_alf_queue_empty(g.q));
  // many laps
  for (uintptr_t lap = 0; lap < 1000; lap++) {
    void *x[5] = {P(lap), P(lap + 1), P(lap + 2), P(lap + 3), P(lap + 4)};
    ASSERT_EQ(enq(x, 5), 5);
    ASSERT_EQ(deq(out, 2), 2);
    ASSERT_EQ(deq(out + 2, 5), 3);
    for (int i = 0; i < 5; i++) ASSERT_EQ(out[i], x[i]);
  }
}

TEST(AlfQueue, MultiAllOrNothingFifo) {
  all_or_nothing_fifo<false>();
}
TEST(AlfQueue, SingleAllOrNothingFifo) {
  all_or_nothing_fifo<true>();
}

TEST(AlfQueue, CxxWrapper) {
  EXPECT_THROW(corepool::alf_queue<int>(3), std::invalid_argument);
  corepool::alf_queue<uint32_t> q(4);
  EXPECT_EQ(q.capacity(), 4u);
  EXPECT_TRUE(q.try_push(7));
  uint32_t a[3] = {1, 2, 3};
  EXPECT_EQ(q.enqueue_bulk(a, 3), 3);
  EXPECT_FALSE(q.try_push(9));
  EXPECT_EQ(q.count(), 4u);
  EXPECT_EQ(q.try_pop(), std::optional<uint32_t>(7));
  uint32_t b[4];
  EXPECT_EQ(q.sc_dequeue_burst(b, 4), 3);
  EXPECT_EQ(b[2], 3u);
  EXPECT_EQ(q.try_pop(), std::nullopt);
  struct pair16 {
    uint64_t a, b;
  };
  corepool::alf_queue<pair16> big(2);
  pair16 p{1, 2};
  EXPECT_TRUE(big.try_push(p));
  EXPECT_EQ(big.try_pop()->b, 2u);
}

// ---- SPSC under chaos: strict FIFO order across threads -----------------------------------

TEST(AlfQueue, SpscOrderUnderChaos) {
  queue_guard g(64);
  const uint64_t N = 400000 / kScale;
  std::atomic<int> bad{0};
  corepool::chaos::options opt;
  opt.threads = 2;
  opt.signal_storm = true;
  auto rep = corepool::chaos::run(opt, [&](int w) {
    corepool::chaos::rng r(w + 7);
    void *buf[64];
    if (w == 0) {
      uint64_t next = 1;
      while (next <= N && !corepool::chaos::should_stop()) {
        int n = 1 + static_cast<int>(r.below(64));
        if (next + n - 1 > N) n = static_cast<int>(N - next + 1);
        for (int i = 0; i < n; i++) buf[i] = P(next + i);
        int got = cp_alf_sp_enqueue(g.q, buf, n);
        if (got != 0 && got != n) bad++;
        next += got;
      }
    } else {
      uint64_t expect = 1;
      while (expect <= N && !corepool::chaos::should_stop()) {
        int got = cp_alf_sc_dequeue(g.q, buf, 1 + static_cast<int>(r.below(64)));
        for (int i = 0; i < got; i++)
          if (buf[i] != P(expect++)) bad++;
      }
    }
  });
  ASSERT_TRUE(rep.in_time);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_TRUE(cp_alf_queue_empty(g.q));
}

// ---- MPMC under chaos: bulk sizes 1..64, signal handlers use the queue too ----------------

constexpr int kObjs = 1024;
constexpr uint32_t kQueue = 2048;  // every object fits: a failed enqueue is transient

struct mpmc_ctx {
  cp_alf_queue *q = nullptr;
  std::atomic<int> owner[kObjs];  // 0: in the queue, else the holder's id
  int ids[kObjs];
  std::atomic<int> violations{0};
  std::atomic<uint64_t> failed_enq{0}, handler_ops{0};
  // Objects a signal handler could not put back (enqueue found no room): per worker, only
  // touched by that worker's handler (handlers of one thread do not nest: SA_NODEFER off).
  struct alignas(64) stash {
    void *p[64];
    int n = 0;
  };
  std::vector<stash> stashes;

  explicit mpmc_ctx(int threads) : stashes(threads) {
    EXPECT_EQ(cp_alf_queue_alloc(&q, kQueue), 0);
    void *all[kObjs];
    for (int i = 0; i < kObjs; i++) {
      ids[i] = i;
      owner[i].store(0);
      all[i] = &ids[i];
    }
    EXPECT_EQ(cp_alf_mp_enqueue(q, all, kObjs), kObjs);
  }
  ~mpmc_ctx() { cp_alf_queue_free(q); }
  void take(void *p, int who) {
    int id = *static_cast<int *>(p), expect = 0;
    if (!owner[id].compare_exchange_strong(expect, who)) violations++;
  }
  void give(void *p, int who) {
    int id = *static_cast<int *>(p), expect = who;
    if (!owner[id].compare_exchange_strong(expect, 0)) violations++;
  }
};

void mpmc_handler(int worker, void *arg) {
  auto *c = static_cast<mpmc_ctx *>(arg);
  const int who = 100000 + worker;
  auto &st = c->stashes[worker];
  if (st.n > 0) {  // retry what an earlier handler could not put back
    for (int i = 0; i < st.n; i++) c->give(st.p[i], who);
    int r = cp_alf_mp_enqueue(c->q, st.p, st.n);
    if (r == st.n) {
      st.n = 0;
    } else {
      if (r != 0) c->violations++;
      for (int i = 0; i < st.n; i++) c->take(st.p[i], who);
    }
    return;
  }
  int n = 1 + worker % 8;
  int got = cp_alf_mc_dequeue(c->q, st.p, n);
  if (got < 0 || got > n) c->violations++;
  if (got <= 0) return;
  for (int i = 0; i < got; i++) c->take(st.p[i], who);
  for (int i = 0; i < got; i++) c->give(st.p[i], who);
  int r = cp_alf_mp_enqueue(c->q, st.p, got);
  if (r == got) return;
  if (r != 0) c->violations++;
  for (int i = 0; i < got; i++) c->take(st.p[i], who);
  st.n = got;  // keep them; the next handler on this thread retries
  c->handler_ops++;
}

class AlfMpmcChaos : public ::testing::TestWithParam<int> {};

TEST_P(AlfMpmcChaos, NoLossNoDuplicateAllOrNothing) {
  const int T = GetParam();
  mpmc_ctx c(T);
  corepool::chaos::options opt;
  opt.threads = T;
  opt.signal_storm = true;
  opt.deadline = std::chrono::milliseconds(40000);
  const int iters = 200000 / T / kScale;
  std::vector<std::vector<void *>> held(T);
  auto rep = corepool::chaos::run(
      opt,
      [&](int w) {
        corepool::chaos::rng r(w + 1);
        std::vector<void *> &mine = held[w];
        void *buf[64];
        for (int i = 0; i < iters && !corepool::chaos::should_stop(); i++) {
          const int n = 1 + static_cast<int>(r.below(64));
          if (mine.size() < 64 && r.below(2) == 0) {
            int got = cp_alf_mc_dequeue(c.q, buf, n);
            if (got < 0 || got > n) c.violations++;
            for (int k = 0; k < got; k++) {
              c.take(buf[k], w + 1);
              mine.push_back(buf[k]);
            }
          } else if (!mine.empty()) {
            const int m = std::min<int>(n, static_cast<int>(mine.size()));
            for (int k = 0; k < m; k++) {
              buf[k] = mine[mine.size() - 1 - k];
              c.give(buf[k], w + 1);
            }
            int r2 = cp_alf_mp_enqueue(c.q, buf, m);
            if (r2 == m) {
              mine.resize(mine.size() - m);
            } else {
              // all or nothing: 0 means none of them went in, so we still own all m
              if (r2 != 0) c.violations++;
              c.failed_enq++;
              for (int k = 0; k < m; k++) c.take(buf[k], w + 1);
            }
          }
        }
      },
      mpmc_handler, &c);
  ASSERT_TRUE(rep.in_time);
  EXPECT_EQ(c.violations.load(), 0);
  EXPECT_GT(rep.signals, 0u);
  // Drain: every object is in the queue, in a worker's hands or in a handler stash, once.
  std::vector<int> seen(kObjs, 0);
  void *buf[64];
  int got;
  while ((got = cp_alf_mc_dequeue(c.q, buf, 64)) > 0)
    for (int k = 0; k < got; k++) seen[*static_cast<int *>(buf[k])]++;
  EXPECT_TRUE(cp_alf_queue_empty(c.q));
  for (auto &m : held)
    for (void *p : m) seen[*static_cast<int *>(p)]++;
  for (auto &st : c.stashes)
    for (int i = 0; i < st.n; i++) seen[*static_cast<int *>(st.p[i])]++;
  for (int i = 0; i < kObjs; i++) ASSERT_EQ(seen[i], 1) << "object " << i;
  std::printf("T=%d: %llu signals, %llu migrations, %llu transient enqueue failures, %.2fs\n", T,
              static_cast<unsigned long long>(rep.signals),
              static_cast<unsigned long long>(rep.migrations),
              static_cast<unsigned long long>(c.failed_enq.load()), rep.seconds);
}

INSTANTIATE_TEST_SUITE_P(Threads, AlfMpmcChaos, ::testing::Values(1, 2, 8, 32));

// ---- a thread parked between claim and publish/release does not stop the others ----------

#ifdef COREPOOL_INJECT
struct park_ctl {
  const char *point = nullptr;
  std::atomic<bool> armed{false};
  std::atomic<bool> parked{false};
  std::atomic<bool> release{false};
};
park_ctl g_park;

void park_hook(const char *point) {
  if (corepool::chaos::worker_id() != 0 || std::strcmp(point, g_park.point) != 0) return;
  if (!g_park.armed.exchange(false)) return;
  g_park.parked.store(true);
  corepool::chaos::park_self_until(g_park.release);
}

class AlfParked : public ::testing::TestWithParam<const char *> {};

// Worker 0 parks right after its first claim of the given kind (indexes claimed, slots not
// yet published/released). The others must keep getting answers, never wait: they dequeue
// what was published before the parked slot and enqueue until the queue is full; past the
// parked slot they see fewer elements (or less room) and get 0, not a spin. They release
// worker 0 after 20000 returned calls with at least one successful dequeue and enqueue.
TEST_P(AlfParked, OthersKeepGoing) {
  const int T = 4;
  mpmc_ctx c(T);
  g_park.point = GetParam();
  g_park.parked = false;
  g_park.release = false;
  g_park.armed = true;
  cp_inject_hook = park_hook;
  std::atomic<uint64_t> calls{0}, ok_enq{0}, ok_deq{0};
  corepool::chaos::options opt;
  opt.threads = T;
  opt.migrate = true;
  opt.deadline = std::chrono::milliseconds(20000);
  std::vector<std::vector<void *>> held(T);
  auto rep = corepool::chaos::run(opt, [&](int w) {
    corepool::chaos::rng r(w + 11);
    std::vector<void *> &mine = held[w];
    void *buf[64];
    while (!corepool::chaos::should_stop() && !g_park.release.load()) {
      const int n = 1 + static_cast<int>(r.below(16));
      const bool parked = w != 0 && g_park.parked.load();
      if (mine.size() < 64 && (mine.empty() || r.below(2) == 0)) {
        int got = cp_alf_mc_dequeue(c.q, buf, n);
        for (int k = 0; k < got; k++) {
          c.take(buf[k], w + 1);
          mine.push_back(buf[k]);
        }
        if (parked && got > 0) ok_deq++;
      } else {
        const int m = std::min<int>(n, static_cast<int>(mine.size()));
        for (int k = 0; k < m; k++) {
          buf[k] = mine[mine.size() - 1 - k];
          c.give(buf[k], w + 1);
        }
        if (cp_alf_mp_enqueue(c.q, buf, m) == m) {
          mine.resize(mine.size() - m);
          if (parked) ok_enq++;
        } else {
          for (int k = 0; k < m; k++) c.take(buf[k], w + 1);
        }
      }
      if (parked && calls.fetch_add(1) + 1 >= 20000 && ok_deq.load() > 0 && ok_enq.load() > 0)
        g_park.release.store(true);
    }
  });
  cp_inject_hook = nullptr;
  ASSERT_TRUE(rep.in_time) << "the others stopped while a thread was parked at " << GetParam();
  EXPECT_TRUE(g_park.parked.load());
  EXPECT_GE(calls.load(), 20000u);
  EXPECT_GT(ok_deq.load(), 0u);
  EXPECT_GT(ok_enq.load(), 0u);
  EXPECT_EQ(c.violations.load(), 0);
  std::vector<int> seen(kObjs, 0);
  void *buf[64];
  int got;
  while ((got = cp_alf_mc_dequeue(c.q, buf, 64)) > 0)
    for (int k = 0; k < got; k++) seen[*static_cast<int *>(buf[k])]++;
  for (auto &m : held)
    for (void *p : m) seen[*static_cast<int *>(p)]++;
  for (int i = 0; i < kObjs; i++) ASSERT_EQ(seen[i], 1) << "object " << i;
  std::printf("parked at %s: the others made %llu calls, %llu dequeues, %llu enqueues, %.2fs\n",
              GetParam(), static_cast<unsigned long long>(calls.load()),
              static_cast<unsigned long long>(ok_deq.load()),
              static_cast<unsigned long long>(ok_enq.load()), rep.seconds);
}

INSTANTIATE_TEST_SUITE_P(Points, AlfParked,
                         ::testing::Values("alf.enqueue.claimed", "alf.dequeue.claimed"));
#endif

}  // namespace
