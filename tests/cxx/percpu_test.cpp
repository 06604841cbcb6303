// corepool::percpu<T> class-level rules and corepool::percpu_pool<T> (docs/cpp.md).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include <corepool/cpu.h>
#include <corepool/percpu.hpp>
#include <corepool/percpu_pool.hpp>

namespace {

struct hits {
  uint64_t n;
  uint64_t bytes;
};

TEST(PercpuCxx, MovableAdoptableEmptiable) {
  static_assert(!std::is_copy_constructible_v<corepool::percpu<hits>>);
  static_assert(std::is_nothrow_move_constructible_v<corepool::percpu<hits>>);
  corepool::percpu<hits> a;
  EXPECT_TRUE(a);
  a.on(0)->n = 5;
  corepool::percpu<hits> b(std::move(a));
  EXPECT_FALSE(a);
  EXPECT_EQ(b.on(0)->n, 5u);
  corepool::percpu<hits> c(corepool::adopt, b.release());
  EXPECT_FALSE(b);
  EXPECT_EQ(c.sum([](const hits &h) { return h.n; }), 5u);
  corepool::percpu<hits> none(corepool::adopt, nullptr);
  EXPECT_FALSE(none);
}

// The typed add reaches the named field of the calling CPU's copy, exactly, from threads
// that migrate and share CPUs.
TEST(PercpuCxx, ExactFieldAdd) {
  corepool::percpu<hits> s;
  constexpr int kThreads = 4, kAdds = 20000;
  std::vector<std::thread> th;
  for (int t = 0; t < kThreads; t++)
    th.emplace_back([&] {
      for (int i = 0; i < kAdds; i++) {
        s.add(&hits::n);
        s.add(&hits::bytes, 3);
      }
    });
  for (auto &t : th) t.join();
  EXPECT_EQ(s.sum(&hits::n), uint64_t{kThreads} * kAdds);
  EXPECT_EQ(s.sum(&hits::bytes), uint64_t{3} * kThreads * kAdds);
  EXPECT_EQ(s.sum([](const hits &h) { return h.bytes; }), uint64_t{3} * kThreads * kAdds);
}

TEST(PercpuPoolCxx, AllocFillEmpty) {
  try {
    corepool::percpu_pool<hits> bad(5, 2);  // low > high
    FAIL() << "no throw";
  } catch (const std::system_error &e) {
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
  }
  static_assert(!std::is_copy_constructible_v<corepool::percpu_pool<hits>>);
  static_assert(std::is_nothrow_move_constructible_v<corepool::percpu_pool<hits>>);
  corepool::percpu_pool<hits> pool(2, 8);
  pool.fill();
  EXPECT_EQ(pool.nr(), 8);
  {
    corepool::percpu<hits> a = pool.alloc();
    ASSERT_TRUE(a);
    for (unsigned cpu = 0; cpu < cp_nr_cpu_ids(); cpu++) {
      if (cp_cpu_possible(cpu)) {
        EXPECT_EQ(a.on(cpu)->n, 0u);  // zero on every CPU
      }
    }
    a.on(0)->bytes = 42;
    EXPECT_EQ(a.sum([](const hits &h) { return h.bytes; }), 42u);
  }  // freed here (cp_free_percpu)
  corepool::percpu_pool<hits> moved(std::move(pool));
  EXPECT_GE(moved.nr(), 1);
  moved.empty();
  EXPECT_EQ(moved.nr(), 0);
  corepool::percpu<hits> none = moved.alloc();  // empty pool: an empty percpu (and a refill)
  (void)none;
}

// stats() is the C call's answer.
TEST(CxxPercpuPool, StatsMatchesTheCall) {
  corepool::percpu_pool<hits> pool(0, 2);
  pool.fill();
  const auto s = pool.stats();
  struct cp_percpu_pool_stats c {};
  ASSERT_EQ(cp_percpu_pool_stats(pool.native(), &c), 0);
  EXPECT_EQ(s.nr, 2);
  EXPECT_EQ(s.filled, 2u);
  EXPECT_EQ(s.elem_size, sizeof(hits));
  EXPECT_EQ(s.filled, c.filled);
  EXPECT_EQ(s.high, c.high);
}

}  // namespace
