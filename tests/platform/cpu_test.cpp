#include <gtest/gtest.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <corepool/cpu.h>
#include <corepool/cpu.hpp>

#include "platform/glibc_rseq.h"
#include "platform/rseq.h"

namespace {

bool kernel_has_rseq() {
#ifdef SYS_rseq
  // An invalid call: EINVAL when the syscall exists, ENOSYS when it does not.
  long r = syscall(SYS_rseq, nullptr, 0, 0, 0);
  return !(r != 0 && errno == ENOSYS);
#else
  return false;
#endif
}

bool env_is(const char *name, const char *needle) {
  const char *v = std::getenv(name);
  return v && std::strstr(v, needle);
}

// The source follows the fallback chain: build option / COREPOOL_RSEQ=0 -> getcpu;
// glibc registered -> rseq-glibc; else our own registration -> rseq-own; else getcpu.
TEST(CpuSource, FollowsTheFallbackChain) {
  enum cp_cpu_id_source expected;
  if (!COREPOOL_TEST_RSEQ_BUILD || !corepool::platform::rseq_arch_supported() ||
      env_is("COREPOOL_RSEQ", "0") || !kernel_has_rseq())
    expected = CP_CPU_ID_GETCPU;
  else if (corepool::platform::detail::glibc_rseq_size() > 0)
    expected = CP_CPU_ID_RSEQ_GLIBC;
  else
    expected = CP_CPU_ID_RSEQ_OWN;
  if (env_is("GLIBC_TUNABLES", "glibc.pthread.rseq=0")) {
    EXPECT_EQ(corepool::platform::detail::glibc_rseq_size(), 0u);
    EXPECT_NE(expected, CP_CPU_ID_RSEQ_GLIBC);
  }
  EXPECT_EQ(cp_cpu_id_source(), expected) << "got " << cp_cpu_id_source_name(cp_cpu_id_source());
  EXPECT_EQ(corepool::cpu_id_source(), static_cast<corepool::cpu_source>(expected));
  EXPECT_EQ(cp_rseq_enabled(), expected != CP_CPU_ID_GETCPU);
  std::printf("cpu id source: %s\n", cp_cpu_id_source_name(cp_cpu_id_source()));
}

TEST(CpuSource, Names) {
  EXPECT_STREQ(cp_cpu_id_source_name(CP_CPU_ID_RSEQ_GLIBC), "rseq-glibc");
  EXPECT_STREQ(cp_cpu_id_source_name(CP_CPU_ID_RSEQ_OWN), "rseq-own");
  EXPECT_STREQ(cp_cpu_id_source_name(CP_CPU_ID_GETCPU), "getcpu");
  EXPECT_STREQ(cp_cpu_id_source_name(static_cast<enum cp_cpu_id_source>(42)), "unknown");
}

TEST(CpuId, RseqStartAgreesWithMode) {
  int cpu = corepool::platform::rseq_cpu_start();
  if (cp_rseq_enabled())
    EXPECT_GE(cpu, 0);
  else
    EXPECT_EQ(cpu, -1);
}

// Pinned to one CPU, every source must name exactly that CPU.
TEST(CpuId, MatchesPinnedCpu) {
  cpu_set_t all;
  ASSERT_EQ(sched_getaffinity(0, sizeof all, &all), 0);
  int checked = 0;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (!CPU_ISSET(c, &all)) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(c, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    EXPECT_EQ(cp_current_cpu(), static_cast<unsigned>(c));
    EXPECT_EQ(sched_getcpu(), c);
    if (cp_rseq_enabled()) {
      EXPECT_EQ(corepool::platform::rseq_cpu_start(), c);
    }
    EXPECT_TRUE(cp_cpu_possible(static_cast<unsigned>(c)));
    checked++;
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof all, &all), 0);
  EXPECT_GT(checked, 0);
}

// New threads get a usable CPU id too (in mode rseq-own each registers on first use).
TEST(CpuId, EveryThreadGetsAnId) {
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int i = 0; i < 16; i++)
    ts.emplace_back([&] {
      for (int k = 0; k < 1000; k++) {
        unsigned c = cp_current_cpu();
        if (c >= cp_nr_cpu_ids()) bad++;
        if (cp_rseq_enabled() && corepool::platform::rseq_cpu_start() < 0) bad++;
      }
    });
  for (auto &t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}

// Registering corepool's own area may run in a signal handler: it must leave errno alone,
// also when the kernel answers EBUSY (the area is registered already, as after a nested
// call). Forcing the area's cpu_id back to "uninitialised" makes the next call register again.
TEST(CpuId, OwnRegistrationKeepsErrno) {
  if (cp_cpu_id_source() != CP_CPU_ID_RSEQ_OWN)
    GTEST_SKIP() << "needs mode rseq-own (ctest runs it with GLIBC_TUNABLES=glibc.pthread.rseq=0)";
  std::thread([] {
    using corepool::platform::detail::g_own_area;
    ASSERT_GE(corepool::platform::rseq_cpu_start(), 0);  // registered
    int clobbered = 0;
    for (int i = 0; i < 100; i++) {
      std::atomic_ref<uint32_t>(g_own_area.cpu_id).store(UINT32_MAX, std::memory_order_relaxed);
      errno = 4242;
      (void)corepool::platform::rseq_cpu_start();  // -1 until the kernel rewrites cpu_id
      if (errno != 4242) clobbered++;
    }
    EXPECT_EQ(clobbered, 0);
  }).join();
}

}  // namespace
