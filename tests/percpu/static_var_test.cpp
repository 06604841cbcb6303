// Static per-CPU variables: set before main, used first inside a signal handler that a
// constructor installed, packed apart from each other, rejected by cp_free_percpu, and
// exact under the chaos harness when the handler and the threads update them together.
#include <gtest/gtest.h>

#include <corepool/error.h>
#include <corepool/percpu.h>
#include <corepool/percpu.hpp>

#include <signal.h>

#include <atomic>
#include <cstdint>

#include "chaos.h"
#include "percpu/percpu_internal.h"

namespace {

struct stats {
  uint64_t packets;
  uint32_t drops;
  uint8_t flag;
};

CP_DEFINE_PER_CPU(struct stats, g_stats);
static CP_DEFINE_PER_CPU(uint64_t, g_local_ctr);
CP_DEFINE_PER_CPU_CXX(stats, g_cxx_stats);
struct big {
  char bytes[20000];
};
CP_DEFINE_PER_CPU(struct big, g_big);  // does not fit in the first area with the others

// Set by the constructor that installs the handler: whether the handles were already set.
bool g_set_before_ctor = false;
std::atomic<int> g_handled{0};

void handler(int) {
  cp_this_cpu_inc_u64(&g_stats->packets);
  cp_this_cpu_add_u32(&g_stats->drops, 2);
  cp_this_cpu_inc_u64(g_local_ctr);
  g_cxx_stats.this_cpu_inc(&stats::packets);
  g_handled.fetch_add(1, std::memory_order_relaxed);
}

// Default priority: after the priority-101 constructors that set the handles.
__attribute__((constructor)) void install_early() {
  g_set_before_ctor = g_stats != nullptr && g_local_ctr != nullptr &&
                      g_cxx_stats.handle() != nullptr && g_big != nullptr;
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR2, &sa, nullptr);
  raise(SIGUSR2);  // first use of every variable, inside a handler, before main
}

TEST(StaticPerCpu, UsedFirstInSignalHandlerBeforeMain) {
  EXPECT_TRUE(g_set_before_ctor);
  EXPECT_EQ(g_handled.load(), 1);
  EXPECT_EQ(cp_percpu_sum_u64(&g_stats->packets), 1u);
  EXPECT_EQ(cp_percpu_sum_u32(&g_stats->drops), 2u);
  EXPECT_EQ(cp_percpu_sum_u64(g_local_ctr), 1u);
  EXPECT_EQ(g_cxx_stats.sum(&stats::packets), 1u);
  EXPECT_EQ(cp_percpu_sum_u8(&g_stats->flag), 0u);
  for (int i = 0; i < 100; i++) raise(SIGUSR2);
  EXPECT_EQ(cp_percpu_sum_u64(&g_stats->packets), 101u);
  EXPECT_EQ(cp_percpu_sum_u64(g_local_ctr), 101u);
}

TEST(StaticPerCpu, DistinctZeroedAndNotFreeable) {
  const char *a = reinterpret_cast<const char *>(g_stats);
  const char *b = reinterpret_cast<const char *>(g_local_ctr);
  const char *c = reinterpret_cast<const char *>(g_cxx_stats.handle());
  const char *d = reinterpret_cast<const char *>(g_big);
  auto apart = [](const char *x, size_t nx, const char *y, size_t ny) {
    return x + nx <= y || y + ny <= x;
  };
  EXPECT_TRUE(apart(a, sizeof(stats), b, 8));
  EXPECT_TRUE(apart(a, sizeof(stats), c, sizeof(stats)));
  EXPECT_TRUE(apart(b, 8, c, sizeof(stats)));
  EXPECT_TRUE(apart(d, sizeof(big), a, sizeof(stats)));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % alignof(stats), 0u);
  for (unsigned cpu = 0; cpu < cp_nr_cpu_ids(); cpu++) {
    const char *p = static_cast<const char *>(cp_per_cpu_cptr(g_big, cpu));
    ASSERT_NE(p, nullptr);
    for (size_t i = 0; i < sizeof(big); i += 997) EXPECT_EQ(p[i], 0);
  }
  const unsigned long before = corepool::pcpu::bad_frees();
  cp_free_percpu(g_stats);  // not an allocation's start: rejected, nothing freed
  cp_percpu_stats st;
  cp_percpu_get_stats(&st);  // processes the pending free
  EXPECT_EQ(corepool::pcpu::bad_frees(), before + 1);
  cp_this_cpu_inc_u64(g_local_ctr);  // still usable
  EXPECT_GE(cp_percpu_sum_u64(g_local_ctr), 1u);
}

TEST(StaticPerCpu, InitIsIdempotent) {
  stats *const h = g_stats;
  cp_percpu_static_init(__start_cp_percpu_vars, __stop_cp_percpu_vars);
  EXPECT_EQ(g_stats, h);
}

std::atomic<uint64_t> g_storm_runs{0};
void storm_handler(int, void *) {
  g_storm_runs.fetch_add(1, std::memory_order_relaxed);
  cp_this_cpu_inc_u64(&g_stats->packets);
  g_cxx_stats.this_cpu_add(&stats::drops, 1);
}

TEST(StaticPerCpu, ExactUnderChaosWithHandlerUpdates) {
  for (int threads : {1, 2, 8, 32}) {
    const uint64_t p0 = cp_percpu_sum_u64(&g_stats->packets);
    const uint32_t d0 = g_cxx_stats.sum(&stats::drops);
    g_storm_runs.store(0, std::memory_order_relaxed);
    const int iters = (corepool::chaos::kUnderTsan ? 20000 : 200000) / threads;
    std::atomic<uint64_t> done{0};  // increments made by the workers
    corepool::chaos::options opt;
    opt.threads = threads;
    opt.migrate = true;
    opt.signal_storm = true;
    opt.deadline = std::chrono::milliseconds(60000);
    auto rep = corepool::chaos::run(
        opt,
        [&](int w) {
          if (w % 2) corepool::pcpu::force_fallback_thread(true);
          // At least `iters`, and on until a handler has run (a fast build can finish
          // `iters` before the first signal lands).
          uint64_t n = 0;
          for (; (n < static_cast<uint64_t>(iters) ||
                  g_storm_runs.load(std::memory_order_relaxed) == 0) &&
                 !corepool::chaos::should_stop();
               n++) {
            cp_this_cpu_inc_u64(&g_stats->packets);
            g_cxx_stats.this_cpu_add(&stats::drops, 1);
          }
          done.fetch_add(n, std::memory_order_relaxed);
        },
        storm_handler, nullptr);
    ASSERT_TRUE(rep.in_time);
    const uint64_t runs = g_storm_runs.load(std::memory_order_relaxed);
    EXPECT_GT(runs, 0u);
    const uint64_t expect = done.load(std::memory_order_relaxed) + runs;
    EXPECT_EQ(cp_percpu_sum_u64(&g_stats->packets) - p0, expect) << threads << " threads";
    EXPECT_EQ(static_cast<uint32_t>(g_cxx_stats.sum(&stats::drops) - d0),
              static_cast<uint32_t>(expect))
        << threads << " threads";
  }
}

}  // namespace
