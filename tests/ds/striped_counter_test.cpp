// ds/striped_counter.h: the sum is exact after concurrent adds of both kinds (rseq stripes and
// atomic stripes), with threads migrating between CPUs and signal handlers adding on top.
#include "ds/striped_counter.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

namespace {
using namespace corepool::ds;

struct region {
  alignas(64) stripe_set set;
  alignas(64) unsigned char lines[128 * 64];
  std::atomic<int64_t> *l() { return reinterpret_cast<std::atomic<int64_t> *>(lines); }
};

TEST(StripedCounter, InitialValueAndSingleThread) {
  auto *r = new region;
  std::memset(static_cast<void *>(r), 0, sizeof(*r));
  striped_init(r->set, r->l(), 8, 1000);
  EXPECT_EQ(striped_sum(r->set, r->l()), 1000);
  for (int i = 0; i < 100; ++i) striped_add(r->set, r->l(), -3);
  EXPECT_EQ(striped_sum(r->set, r->l()), 700);
  // S2: only touched stripes may be non-zero.
  for (uint64_t i = 0; i < 16; ++i) {
    uint64_t mask = i < 8 ? r->set.touched_plain.load(std::memory_order_relaxed)
                          : r->set.touched_atomic.load(std::memory_order_relaxed);
    if (!((mask >> (i % 8)) & 1)) {
      EXPECT_EQ(stripe(r->l(), i)->load(std::memory_order_relaxed), 0);
    }
  }
  delete r;
}

// Threads on every CPU, half of them forced to the atomic kind (test builds), migrating; the
// sum must be exact once they are done.
TEST(StripedCounter, ConcurrentAddsOfBothKindsSumExactly) {
  auto *r = new region;
  std::memset(static_cast<void *>(r), 0, sizeof(*r));
  // Fewer stripes than CPUs would leave CPUs past the plain set: use a small set on purpose.
  striped_init(r->set, r->l(), 2, 0);
  const int threads = 8, iters = 20000;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
#ifdef COREPOOL_INJECT
      detail::t_stripe_force_atomic = t % 2 == 1;
#endif
      for (int i = 0; i < iters; ++i) {
        striped_add(r->set, r->l(), t + 1);
        striped_add(r->set, r->l(), -1);
        if (i % 997 == 0) sched_yield();
      }
    });
  for (auto &t : ts) t.join();
  int64_t want = 0;
  for (int t = 0; t < threads; ++t) want += int64_t{t} * iters;
  EXPECT_EQ(striped_sum(r->set, r->l()), want);
  delete r;
}

TEST(StripedCounter, OwningCounter) {
  striped_counter c;
  ASSERT_TRUE(c.ok());
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) c.add(2);
    });
  for (auto &t : ts) t.join();
  EXPECT_EQ(c.sum(), 80000);
}

// The kBankCounters counters of one owning counter share lines but never each other's adds:
// thread t adds (k + 1) to counter k, t + 1 times per round, from both kinds of stripe.
TEST(StripedCounter, CountersOnSharedLinesStayApart) {
  striped_counter c;
  ASSERT_TRUE(c.ok());
  constexpr unsigned K = kBankCounters;
  constexpr int threads = 4, rounds = 2000;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      if constexpr (detail::kStripeTestHooks) detail::t_stripe_force_atomic = (t % 2 == 1);
      for (int i = 0; i < rounds; ++i)
        for (unsigned k = 0; k < K; ++k)
          for (int j = 0; j <= t; ++j) c.add(k + 1, k);
    });
  for (auto &t : ts) t.join();
  for (unsigned k = 0; k < K; ++k)
    EXPECT_EQ(c.sum(k), int64_t{k + 1} * rounds * (1 + 2 + 3 + 4)) << "counter " << k;
}

}  // namespace
