// rseq_ring_push / rseq_ring_push_bulk (appended for objpool): single-thread semantics, then
// one producer per CPU under chaos against consumers that CAS the head from any CPU.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include <corepool/cpu.h>

#include "chaos.h"
#include "platform/rseq.h"
#include "rseq_test_util.h"

namespace {
using namespace corepool::platform;

using corepool::platform::test::on_this_cpu;

TEST(RseqRing, PushChecksRoomAgainstHead) {
  REQUIRE_RSEQ();
  void *slots[4] = {};
  intptr_t tail = 6, head = 3;  // 3 in the ring, room for 1
  int a, b;
  EXPECT_EQ(on_this_cpu([&](int c) { return rseq_ring_push(&tail, &head, slots, 3, &a, c); }),
            CP_RSEQ_OK);
  EXPECT_EQ(tail, 7);
  EXPECT_EQ(slots[6 & 3], &a);
  EXPECT_EQ(on_this_cpu([&](int c) { return rseq_ring_push(&tail, &head, slots, 3, &b, c); }),
            CP_RSEQ_FAIL);  // full: tail - head == 4
  EXPECT_EQ(tail, 7);
  head = 4;  // a consumer took one
  EXPECT_EQ(on_this_cpu([&](int c) { return rseq_ring_push(&tail, &head, slots, 3, &b, c); }),
            CP_RSEQ_OK);
  EXPECT_EQ(slots[7 & 3], &b);
  EXPECT_EQ(tail, 8);
}

TEST(RseqRing, WrongCpuAborts) {
  REQUIRE_RSEQ();
  void *slots[4] = {};
  intptr_t tail = 0, head = 0;
  int a;
  void *items[1] = {&a};
  int wrong = rseq_cpu_start() + 1;
  EXPECT_EQ(rseq_ring_push(&tail, &head, slots, 3, &a, wrong), CP_RSEQ_ABORT);
  EXPECT_EQ(rseq_ring_push_bulk(&tail, &head, slots, 3, items, 1, wrong), CP_RSEQ_ABORT);
  EXPECT_EQ(tail, 0);
}

TEST(RseqRing, BulkAllOrNothingAndWraps) {
  REQUIRE_RSEQ();
  void *slots[8] = {};
  intptr_t tail = 13, head = 10;  // 3 in, room for 5
  int obj[8];
  void *in[8];
  for (int i = 0; i < 8; i++) in[i] = &obj[i];
  EXPECT_EQ(
      on_this_cpu([&](int c) { return rseq_ring_push_bulk(&tail, &head, slots, 7, in, 6, c); }),
      CP_RSEQ_FAIL);
  EXPECT_EQ(tail, 13);
  EXPECT_EQ(
      on_this_cpu([&](int c) { return rseq_ring_push_bulk(&tail, &head, slots, 7, in, 5, c); }),
      CP_RSEQ_OK);
  EXPECT_EQ(tail, 18);
  for (int i = 0; i < 5; i++) EXPECT_EQ(slots[(13 + i) & 7], in[i]) << i;  // wraps at 16
  EXPECT_EQ(
      on_this_cpu([&](int c) { return rseq_ring_push_bulk(&tail, &head, slots, 7, in, 0, c); }),
      CP_RSEQ_OK);
  EXPECT_EQ(tail, 18);
}

// A negative count is refused and stores nothing (it is not a decrement of tail).
TEST(RseqRing, BulkNegativeCountFails) {
  REQUIRE_RSEQ();
  void *slots[8] = {};
  intptr_t tail = 13, head = 10;
  int obj;
  void *in[1] = {&obj};
  for (intptr_t n : {intptr_t{-1}, intptr_t{-3}, INTPTR_MIN}) {
    EXPECT_EQ(
        on_this_cpu([&](int c) { return rseq_ring_push_bulk(&tail, &head, slots, 7, in, n, c); }),
        CP_RSEQ_FAIL)
        << n;
    EXPECT_EQ(tail, 13) << n;
  }
}

// Per-CPU rings, rseq producers, CAS consumers from anywhere: nothing lost or duplicated.
constexpr int kObjs = 48;
constexpr uint64_t kCap = 64;

struct alignas(64) cring {
  std::atomic<uint64_t> head{0};
  std::atomic<uint64_t> tail{0};
  std::atomic<void *> slots[kCap];
};

struct ring_ctx {
  unsigned n = cp_nr_cpu_ids();
  std::unique_ptr<cring[]> rings{new cring[n]};
  int ids[kObjs];
  std::atomic<int> owner[kObjs];
  std::atomic<int> violations{0};

  void push(void *p) {
    for (;;) {
      int cpu = rseq_cpu_start();
      cring &r = rings[cpu];
      int rc = rseq_ring_push(reinterpret_cast<intptr_t *>(&r.tail),
                              reinterpret_cast<const intptr_t *>(&r.head),
                              reinterpret_cast<void **>(r.slots), kCap - 1, p, cpu);
      if (rc == CP_RSEQ_OK) return;
      if (rc == CP_RSEQ_FAIL) {  // impossible: kCap > kObjs
        violations++;
        return;
      }
    }
  }
  void *pop() {
    int start = rseq_cpu_start();
    for (unsigned k = 0; k < n; k++) {
      cring &r = rings[(start + k) % n];
      uint64_t h = r.head.load(std::memory_order_acquire);
      for (;;) {
        uint64_t t = r.tail.load(std::memory_order_acquire);
        if (t == h) break;
        void *o = r.slots[h & (kCap - 1)].load(std::memory_order_relaxed);
        if (r.head.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel)) return o;
      }
    }
    return nullptr;
  }
  void take(void *p, int who) {
    int e = 0;
    if (!owner[*static_cast<int *>(p)].compare_exchange_strong(e, who)) violations++;
  }
  void give(void *p, int who) {
    int e = who;
    if (!owner[*static_cast<int *>(p)].compare_exchange_strong(e, 0)) violations++;
  }
};

void ring_handler(int w, void *arg) {
  auto *c = static_cast<ring_ctx *>(arg);
  if (void *p = c->pop()) {
    c->take(p, 1000 + w);
    c->give(p, 1000 + w);
    c->push(p);
  }
}

class RingChaos : public ::testing::TestWithParam<int> {};

TEST_P(RingChaos, NoLossNoDuplicate) {
  REQUIRE_RSEQ();
  ring_ctx c;
  for (int i = 0; i < kObjs; i++) {
    c.ids[i] = i;
    c.owner[i] = 0;
    c.push(&c.ids[i]);
  }
  const int T = GetParam();
  corepool::chaos::options opt;
  opt.threads = T;
  opt.signal_storm = true;
  opt.deadline = std::chrono::milliseconds(30000);
  const int iters = 200000 / T;
  auto rep = corepool::chaos::run(
      opt,
      [&](int w) {
        for (int i = 0; i < iters && !corepool::chaos::should_stop(); i++) {
          void *p = c.pop();
          if (!p) continue;
          c.take(p, w + 1);
          c.give(p, w + 1);
          c.push(p);
        }
      },
      ring_handler, &c);
  ASSERT_TRUE(rep.in_time);
  EXPECT_EQ(c.violations.load(), 0);
  std::vector<int> seen(kObjs, 0);
  while (void *p = c.pop()) seen[*static_cast<int *>(p)]++;
  for (int i = 0; i < kObjs; i++) EXPECT_EQ(seen[i], 1) << "object " << i;
}

INSTANTIATE_TEST_SUITE_P(Threads, RingChaos, ::testing::Values(1, 2, 8, 32));

}  // namespace
