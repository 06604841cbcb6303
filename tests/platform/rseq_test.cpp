// The rseq primitives: single-thread semantics, then exactness under the chaos harness.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include <corepool/cpu.h>

#include "chaos.h"
#include "platform/rseq.h"
#include "rseq_test_util.h"

namespace {
using namespace corepool::platform;

using corepool::platform::test::on_this_cpu;

// A stack as the sequences address it: the header line, then N slots right after it.
template <int N>
struct test_stack {
  rseq_stack h{};
  void *slots[N] = {};
  test_stack() { h.cap = N; }
};
static_assert(offsetof(test_stack<1>, slots) == sizeof(rseq_stack));

// A thread's area is unknown to the fast paths until its first slow call, then known and
// the same as rseq_area(); without rseq it stays unknown (the fast paths then always miss).
TEST(Rseq, RegisteredAreaKnownAfterFirstSlowCall) {
  rseq_abi *before = reinterpret_cast<rseq_abi *>(1), *slow = nullptr, *after = nullptr,
           *area = nullptr;
  int cpu = -2;
  std::thread t([&] {
    before = rseq_registered_area_if_known();
    slow = rseq_registered_area();
    after = rseq_registered_area_if_known();
    cpu = rseq_cpu_start();
    area = rseq_area();
  });
  t.join();
  EXPECT_EQ(before, nullptr) << "a new thread's area must not be known before its first call";
  if (cpu >= 0) {
    EXPECT_EQ(slow, area);
    EXPECT_EQ(after, area);
  } else {
    EXPECT_EQ(cp_cpu_id_source(), CP_CPU_ID_GETCPU);
    EXPECT_EQ(slow, nullptr);
    EXPECT_EQ(after, nullptr);
  }
}

TEST(Rseq, CompareAndStore) {
  REQUIRE_RSEQ();
  intptr_t v = 5;
  EXPECT_EQ(on_this_cpu([&](int c) { return rseq_cmpeqv_storev(&v, 4, 9, c); }), CP_RSEQ_FAIL);
  EXPECT_EQ(v, 5);
  EXPECT_EQ(on_this_cpu([&](int c) { return rseq_cmpeqv_storev(&v, 5, 9, c); }), CP_RSEQ_OK);
  EXPECT_EQ(v, 9);
}

TEST(Rseq, WrongCpuAborts) {
  REQUIRE_RSEQ();
  intptr_t v = 1;
  test_stack<4> st;
  int wrong = rseq_cpu_start() + 1;  // never the current CPU
  EXPECT_EQ(rseq_addv(&v, 5, wrong), CP_RSEQ_ABORT);
  EXPECT_EQ(rseq_cmpeqv_storev(&v, 1, 7, wrong), CP_RSEQ_ABORT);
  EXPECT_EQ(rseq_stack_push(&st.h, &v, wrong, rseq_area()), CP_RSEQ_ABORT);
  EXPECT_EQ(v, 1);
  EXPECT_EQ(st.h.top, 0);
}

TEST(Rseq, Add) {
  REQUIRE_RSEQ();
  intptr_t v = 10;
  EXPECT_EQ(on_this_cpu([&](int c) { return rseq_addv(&v, -3, c); }), CP_RSEQ_OK);
  EXPECT_EQ(v, 7);
}

TEST(Rseq, StackPushPop) {
  REQUIRE_RSEQ();
  test_stack<3> st;
  rseq_abi *rs = rseq_area();
  int a, b, c, d;
  void *out = nullptr;
  auto push = [&](void *p) {
    return on_this_cpu([&](int k) { return rseq_stack_push(&st.h, p, k, rs); });
  };
  auto pop = [&] { return on_this_cpu([&](int k) { return rseq_stack_pop(&st.h, &out, k, rs); }); };
  EXPECT_EQ(pop(), CP_RSEQ_FAIL);
  for (void *p : {static_cast<void *>(&a), static_cast<void *>(&b), static_cast<void *>(&c)})
    EXPECT_EQ(push(p), CP_RSEQ_OK);
  EXPECT_EQ(push(&d), CP_RSEQ_FAIL);
  EXPECT_EQ(st.h.top, 3);
  EXPECT_EQ(pop(), CP_RSEQ_OK);
  EXPECT_EQ(out, &c);
  EXPECT_EQ(st.h.top, 2);
  // A raised fence (a remote owner) fails both, storing nothing.
  st.h.fence = 1;
  out = nullptr;
  EXPECT_EQ(pop(), CP_RSEQ_FAIL);
  EXPECT_EQ(push(&d), CP_RSEQ_FAIL);
  EXPECT_EQ(out, nullptr);
  EXPECT_EQ(st.h.top, 2);
  st.h.fence = 0;
  EXPECT_EQ(pop(), CP_RSEQ_OK);
  EXPECT_EQ(out, &b);
}

TEST(Rseq, StackBulk) {
  REQUIRE_RSEQ();
  test_stack<8> st;
  rseq_abi *rs = rseq_area();
  intptr_t &top = st.h.top;
  void **slots = st.slots;
  int obj[10];
  void *in[10];
  for (int i = 0; i < 10; i++) in[i] = &obj[i];
  // all or nothing
  EXPECT_EQ(on_this_cpu([&](int k) { return rseq_stack_push_bulk(&st.h, in, 9, k, rs); }),
            CP_RSEQ_FAIL);
  EXPECT_EQ(top, 0);
  EXPECT_EQ(on_this_cpu([&](int k) { return rseq_stack_push_bulk(&st.h, in, 6, k, rs); }),
            CP_RSEQ_OK);
  EXPECT_EQ(top, 6);
  EXPECT_EQ(on_this_cpu([&](int k) { return rseq_stack_push_bulk(&st.h, in, 3, k, rs); }),
            CP_RSEQ_FAIL);
  EXPECT_EQ(on_this_cpu([&](int k) { return rseq_stack_push_bulk(&st.h, in, 0, k, rs); }),
            CP_RSEQ_OK);
  for (int i = 0; i < 6; i++) EXPECT_EQ(slots[i], in[i]);
  // up to n
  void *out[10] = {};
  intptr_t got = 0;
  EXPECT_EQ(on_this_cpu([&](int k) { return rseq_stack_pop_bulk(&st.h, out, 4, &got, k, rs); }),
            CP_RSEQ_OK);
  EXPECT_EQ(got, 4);
  EXPECT_EQ(top, 2);
  for (int i = 0; i < 4; i++) EXPECT_EQ(out[i], in[2 + i]);
  EXPECT_EQ(on_this_cpu([&](int k) { return rseq_stack_pop_bulk(&st.h, out, 9, &got, k, rs); }),
            CP_RSEQ_OK);
  EXPECT_EQ(got, 2);
  EXPECT_EQ(top, 0);
  EXPECT_EQ(out[0], in[0]);
  EXPECT_EQ(out[1], in[1]);
  EXPECT_EQ(on_this_cpu([&](int k) { return rseq_stack_pop_bulk(&st.h, out, 9, &got, k, rs); }),
            CP_RSEQ_FAIL);
  // A raised fence fails the bulk forms too.
  st.h.fence = 1;
  EXPECT_EQ(on_this_cpu([&](int k) { return rseq_stack_push_bulk(&st.h, in, 2, k, rs); }),
            CP_RSEQ_FAIL);
  EXPECT_EQ(top, 0);
  top = 2;
  EXPECT_EQ(on_this_cpu([&](int k) { return rseq_stack_pop_bulk(&st.h, out, 1, &got, k, rs); }),
            CP_RSEQ_FAIL);
  EXPECT_EQ(top, 2);
}

// A negative count is refused and stores nothing (it is not a decrement of top).
TEST(Rseq, StackBulkNegativeCountFails) {
  REQUIRE_RSEQ();
  test_stack<8> st;
  rseq_abi *rs = rseq_area();
  int obj[4];
  void *in[4] = {&obj[0], &obj[1], &obj[2], &obj[3]};
  ASSERT_EQ(on_this_cpu([&](int k) { return rseq_stack_push_bulk(&st.h, in, 4, k, rs); }),
            CP_RSEQ_OK);
  for (intptr_t n : {intptr_t{-1}, intptr_t{-3}, INTPTR_MIN}) {
    EXPECT_EQ(on_this_cpu([&](int k) { return rseq_stack_push_bulk(&st.h, in, n, k, rs); }),
              CP_RSEQ_FAIL)
        << n;
    EXPECT_EQ(st.h.top, 4) << n;
    void *out[4] = {};
    intptr_t got = 7;
    EXPECT_EQ(on_this_cpu([&](int k) { return rseq_stack_pop_bulk(&st.h, out, n, &got, k, rs); }),
              CP_RSEQ_FAIL)
        << n;
    EXPECT_EQ(st.h.top, 4) << n;
    EXPECT_EQ(got, 7) << n;
  }
}

// ---- the foundation's acceptance test: an exact per-CPU counter under chaos -------------

// One cache line per CPU. `local` is modified only by rseq_addv on its CPU; `shared` is the
// fallback word, modified only by atomic fetch_add (threads that cannot use rseq). The two
// never share a word, so mixing rseq and fallback threads stays exact.
struct alignas(64) counter_slot {
  intptr_t local;
  std::atomic<int64_t> shared;
};

struct percpu_counter {
  std::unique_ptr<counter_slot[]> slots{new counter_slot[cp_nr_cpu_ids()]()};
  void inc() noexcept {
    for (;;) {
      int cpu = rseq_cpu_start();
      if (cpu < 0) {
        slots[cp_current_cpu()].shared.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      if (rseq_addv(&slots[cpu].local, 1, cpu) == CP_RSEQ_OK) return;
      // aborted: preempted, migrated or signalled before the commit; nothing was added
    }
  }
  int64_t sum() const noexcept {
    int64_t s = 0;
    for (unsigned c = 0; c < cp_nr_cpu_ids(); c++)
      s += slots[c].local + slots[c].shared.load(std::memory_order_relaxed);
    return s;
  }
};

struct counter_ctx {
  percpu_counter counter;
  std::atomic<int64_t> handler_incs{0};
};

void inc_in_handler(int, void *arg) {
  auto *ctx = static_cast<counter_ctx *>(arg);
  ctx->counter.inc();
  ctx->handler_incs.fetch_add(1, std::memory_order_relaxed);
}

class CounterChaos : public ::testing::TestWithParam<int> {};

TEST_P(CounterChaos, SumIsExact) {
  const int T = GetParam();
  const int64_t M = 8000000 / T;
  counter_ctx ctx;
  corepool::chaos::options opt;
  opt.threads = T;
  opt.migrate = true;
  opt.signal_storm = true;
  auto rep = corepool::chaos::run(
      opt,
      [&](int) {
        for (int64_t i = 0; i < M; i++) ctx.counter.inc();
      },
      inc_in_handler, &ctx);
  ASSERT_TRUE(rep.in_time);
  EXPECT_EQ(ctx.counter.sum(), T * M + ctx.handler_incs.load());
  EXPECT_GT(rep.signals, 0u);
  std::printf("T=%d: %lld incs, %llu in handlers, %llu migrations, %.2fs\n", T,
              static_cast<long long>(T * M), static_cast<unsigned long long>(rep.signals),
              static_cast<unsigned long long>(rep.migrations), rep.seconds);
}

INSTANTIATE_TEST_SUITE_P(Threads, CounterChaos, ::testing::Values(1, 2, 8, 32));

// ---- per-CPU stacks under chaos: nothing lost, nothing handed out twice -----------------

constexpr int kObjs = 64;
constexpr int kCap = kObjs;  // one stack can hold every object, so a push never finds it full

struct stack_ctx {
  std::unique_ptr<test_stack<kCap>[]> stacks { new test_stack<kCap>[ cp_nr_cpu_ids() ]() };
  std::atomic<int> owner[kObjs];  // 0 = in a stack, else holder id
  int ids[kObjs];
  std::atomic<int> violations{0};

  stack_ctx() {
    // Start with every object in CPU 0's stack (setup is single-threaded).
    for (int i = 0; i < kObjs; i++) {
      ids[i] = i;
      owner[i].store(0);
    }
    for (int i = 0; i < kObjs; i++) {
      unsigned c = static_cast<unsigned>(i) % cp_nr_cpu_ids();
      if (!cp_cpu_possible(c) || stacks[c].h.top == kCap) c = 0;
      stacks[c].slots[stacks[c].h.top++] = &ids[i];
    }
  }
  void take(void *p, int who) {
    int id = *static_cast<int *>(p), expect = 0;
    if (!owner[id].compare_exchange_strong(expect, who)) violations++;
  }
  void give(void *p, int who) {
    int id = *static_cast<int *>(p), expect = who;
    if (!owner[id].compare_exchange_strong(expect, 0)) violations++;
  }
  bool pop(void **out) {
    for (;;) {
      int cpu = rseq_cpu_start();
      int r = rseq_stack_pop(&stacks[cpu].h, out, cpu, rseq_area());
      if (r != CP_RSEQ_ABORT) return r == CP_RSEQ_OK;
    }
  }
  bool push(void *p) {
    for (;;) {
      int cpu = rseq_cpu_start();
      int r = rseq_stack_push(&stacks[cpu].h, p, cpu, rseq_area());
      if (r != CP_RSEQ_ABORT) return r == CP_RSEQ_OK;
    }
  }
};

void stack_handler(int worker, void *arg) {
  auto *s = static_cast<stack_ctx *>(arg);
  void *p;
  const int who = 1000 + worker;  // the handler is its own holder
  if (!s->pop(&p)) return;
  s->take(p, who);
  s->give(p, who);
  if (!s->push(p)) s->violations++;  // impossible: kCap == kObjs
}

class StackChaos : public ::testing::TestWithParam<int> {};

TEST_P(StackChaos, NoLossNoDuplicate) {
  REQUIRE_RSEQ();
  const int T = GetParam();
  stack_ctx s;
  corepool::chaos::options opt;
  opt.threads = T;
  opt.signal_storm = true;
  const int iters = 400000 / T;
  std::vector<std::vector<void *>> held(T);
  auto rep = corepool::chaos::run(
      opt,
      [&](int w) {
        corepool::chaos::rng r(w + 1);
        std::vector<void *> &mine = held[w];
        void *batch[8];
        for (int i = 0; i < iters && !corepool::chaos::should_stop(); i++) {
          if (mine.size() < 4 && (r.below(2) == 0)) {
            int n = 1 + static_cast<int>(r.below(4));
            intptr_t got = 0;
            for (;;) {
              int cpu = rseq_cpu_start();
              int rc = rseq_stack_pop_bulk(&s.stacks[cpu].h, batch, n, &got, cpu, rseq_area());
              if (rc == CP_RSEQ_ABORT) continue;
              if (rc == CP_RSEQ_FAIL) got = 0;
              break;
            }
            for (intptr_t k = 0; k < got; k++) {
              s.take(batch[k], w + 1);
              mine.push_back(batch[k]);
            }
          } else if (!mine.empty()) {
            void *p = mine.back();
            s.give(p, w + 1);
            if (!s.push(p)) s.violations++;  // impossible: kCap == kObjs
            mine.pop_back();
          }
        }
      },
      stack_handler, &s);
  ASSERT_TRUE(rep.in_time);
  EXPECT_EQ(s.violations.load(), 0);
  // Every object is now either in exactly one stack slot or held by exactly one worker.
  std::vector<int> seen(kObjs, 0);
  for (unsigned c = 0; c < cp_nr_cpu_ids(); c++) {
    ASSERT_GE(s.stacks[c].h.top, 0);
    ASSERT_LE(s.stacks[c].h.top, kCap);
    for (intptr_t k = 0; k < s.stacks[c].h.top; k++)
      seen[*static_cast<int *>(s.stacks[c].slots[k])]++;
  }
  for (auto &m : held)
    for (void *p : m) seen[*static_cast<int *>(p)]++;
  for (int i = 0; i < kObjs; i++) EXPECT_EQ(seen[i], 1) << "object " << i;
}

INSTANTIATE_TEST_SUITE_P(Threads, StackChaos, ::testing::Values(1, 2, 8, 32));

}  // namespace
