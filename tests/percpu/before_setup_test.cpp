// The this_cpu family and the CPU pointers before the allocator is set up (no per-CPU area
// exists yet): every pointer, NULL included, is answered as not an area, without touching it
// and without a crash. Its own process: the first allocation sets the allocator up.
#include <gtest/gtest.h>

#include <corepool/error.h>
#include <corepool/percpu.h>

#include <cstdint>
#include <string>

#include "percpu/percpu_access.h"

namespace {

void answered_as_bad(void *bad, const char *what) {
  cp_clear_error();
  EXPECT_EQ(cp_this_cpu_read_u64(bad), 0u) << what;
  cp_this_cpu_write_u64(bad, 1);
  cp_this_cpu_add_u64(bad, 1);
  EXPECT_EQ(cp_this_cpu_add_return_u64(bad, 1), 0u) << what;
  EXPECT_EQ(cp_this_cpu_xchg_u64(bad, 1), 0u) << what;
  EXPECT_EQ(cp_this_cpu_cmpxchg_u64(bad, 0, 1), 0u) << what;
  EXPECT_EQ(cp_percpu_sum_u64(bad), 0u) << what;
  EXPECT_NE(std::string(cp_last_error()).find("not a per-CPU area"), std::string::npos) << what;
  EXPECT_EQ(cp_per_cpu_ptr(bad, 0), nullptr) << what;
  EXPECT_EQ(cp_this_cpu_ptr(bad), nullptr) << what;
}

TEST(BeforeSetup, EveryPointerIsNotAnArea) {
  ASSERT_FALSE(corepool::pcpu::g_ready.load(std::memory_order_acquire));
  uint64_t on_stack[8] = {};
  answered_as_bad(nullptr, "NULL");
  answered_as_bad(on_stack, "a stack address");
  answered_as_bad(reinterpret_cast<void *>(uintptr_t{1} << 20), "a low address");
  answered_as_bad(reinterpret_cast<void *>(uintptr_t{1} << 62), "outside user space");
  for (uint64_t v : on_stack) EXPECT_EQ(v, 0u);
  // Still not set up: the checks above read the state before setup only.
  EXPECT_FALSE(corepool::pcpu::g_ready.load(std::memory_order_acquire));
  // Then the first allocation works as usual.
  void *h = cp_alloc_percpu(8, 8);
  ASSERT_NE(h, nullptr);
  cp_this_cpu_add_u64(h, 3);
  EXPECT_EQ(cp_percpu_sum_u64(h), 3u);
  cp_free_percpu(h);
}

}  // namespace
