// A static CP_DEFINE_PERCPU_POOL used from a signal handler that is installed before main
// (by a constructor), before any per-CPU allocation: the handler's first use gets it refilled.
#include <gtest/gtest.h>

#include <corepool/percpu.h>
#include <corepool/percpu_pool.h>

#include <signal.h>

#include <atomic>

#include "percpu_pool/percpu_pool_internal.h"

namespace {

struct item {
  uint64_t packets, bytes;
};

// constinit: compilation fails unless the pool is constant-initialised (no constructor).
constinit CP_DEFINE_PERCPU_POOL(g_pool, struct item, 2, 8);

std::atomic<int> g_got{0}, g_null{0}, g_dirty{0};

void handler(int) {
  void *a = cp_percpu_pool_alloc(&g_pool);
  if (!a) {
    g_null++;
    return;
  }
  for (unsigned c = 0; c < cp_nr_cpu_ids(); c++) {
    auto *it = static_cast<const item *>(cp_per_cpu_cptr(a, c));
    if (it->packets || it->bytes) g_dirty++;
  }
  cp_this_cpu_add_u64(&static_cast<item *>(a)->packets, 1);
  g_got++;
  cp_free_percpu(a);
}

bool g_installed_before_main = [] {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  return sigaction(SIGUSR1, &sa, nullptr) == 0;
}();

uint64_t live() {
  cp_percpu_stats s;
  cp_percpu_get_stats(&s);
  return s.nr_cur_alloc;
}

TEST(PercpuPoolStatic, UsedFromSignalHandler) {
  ASSERT_TRUE(g_installed_before_main);
  EXPECT_EQ(live(), 0u) << "nothing allocated before the test";
  // Never filled: the handler's first alloc gets NULL (the pool starts empty) and that alloc
  // alone gets the pool refilled: no call from normal context primes it.
  raise(SIGUSR1);
  EXPECT_EQ(g_null.load(), 1);
  corepool::percpu_pool::flush(&g_pool);
  EXPECT_EQ(cp_percpu_pool_nr(&g_pool), 8) << "refilled automatically after a handler's alloc";
  // fill from normal context keeps working; handlers allocate and the worker refills. Every
  // other round of 5 allocs takes the pool (8 areas) below low (2), and the flush after it
  // waits for the refill that this queued, however late the worker gets a CPU.
  cp_percpu_pool_fill(&g_pool, 0);
  EXPECT_EQ(cp_percpu_pool_nr(&g_pool), 8);
  for (int i = 0; i < 200; i++) {
    raise(SIGUSR1);
    if (i % 5 == 4) corepool::percpu_pool::flush(&g_pool);
  }
  EXPECT_GT(g_got.load(), 8) << "the worker refilled the static pool";
  EXPECT_EQ(g_dirty.load(), 0);
  // Refills keep it at or above low once the worker is idle (it refills only below low).
  corepool::percpu_pool::flush(&g_pool);
  EXPECT_GE(cp_percpu_pool_nr(&g_pool), 2);
  cp_percpu_pool_destroy(&g_pool);  // a static pool returns to its initial state
  EXPECT_EQ(live(), 0u);
  EXPECT_EQ(cp_percpu_pool_alloc(&g_pool), nullptr);
  cp_percpu_pool_fill(&g_pool, 3);
  EXPECT_EQ(cp_percpu_pool_nr(&g_pool), 3);
  cp_percpu_pool_destroy(&g_pool);
  EXPECT_EQ(live(), 0u);
}

}  // namespace
