// The per-CPU allocator in checked mode (COREPOOL_CHECK=1: ctest sets it for this binary):
// a free that does not own a live allocation (a double free after the first free was
// processed, a pointer into an area) is reported at the call, with one line on stderr and
// cp_last_error(), and changes nothing; the allocation it pointed into stays usable.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <corepool/error.h>
#include <corepool/percpu.h>

#include "percpu/percpu_internal.h"

namespace {
namespace pc = corepool::pcpu;

bool checked_env() {
  const char *v = std::getenv("COREPOOL_CHECK");
  return v && std::strcmp(v, "1") == 0;
}

uint64_t live() {
  cp_percpu_stats s;
  cp_percpu_get_stats(&s);  // drains pending frees
  return s.nr_cur_alloc;
}

std::string free_captured(void *h) {
  cp_clear_error();
  testing::internal::CaptureStderr();
  cp_free_percpu(h);
  return testing::internal::GetCapturedStderr();
}

TEST(PercpuChecked, DoubleFreeAfterTheFirstWasProcessedIsReportedAtTheCall) {
  ASSERT_TRUE(checked_env()) << "run with COREPOOL_CHECK=1 (ctest sets it)";
  void *keep = cp_alloc_percpu(64, 8);  // keeps the chunk mapped
  void *h = cp_alloc_percpu(64, 8);
  ASSERT_NE(keep, nullptr);
  ASSERT_NE(h, nullptr);
  cp_free_percpu(h);
  const uint64_t before_live = live();  // the free is processed: h is not pending any more
  const unsigned long bad = pc::bad_frees();
  const std::string err = free_captured(h);
  EXPECT_EQ(pc::bad_frees(), bad + 1);  // at the call, not at the next drain
  EXPECT_NE(std::strstr(cp_last_error(), "double free"), nullptr) << cp_last_error();
  EXPECT_NE(err.find("corepool: cp_free_percpu: double free"), std::string::npos) << err;
  EXPECT_EQ(live(), before_live);
  EXPECT_EQ(pc::bad_frees(), bad + 1);  // and not counted again by the drain
  cp_free_percpu(keep);
}

TEST(PercpuChecked, PointerIntoAnAreaIsReportedAndTheAreaStaysAllocated) {
  ASSERT_TRUE(checked_env()) << "run with COREPOOL_CHECK=1 (ctest sets it)";
  void *h = cp_alloc_percpu(64, 8);
  ASSERT_NE(h, nullptr);
  const uint64_t before_live = live();
  const unsigned long bad = pc::bad_frees();
  const std::string err = free_captured(static_cast<char *>(h) + 8);
  EXPECT_EQ(pc::bad_frees(), bad + 1);
  EXPECT_NE(err.find("cp_free_percpu: double free, or not the start of an allocation"),
            std::string::npos)
      << err;
  EXPECT_EQ(live(), before_live);
  EXPECT_TRUE(pc::live_handle(h));
  cp_free_percpu(h);  // the owner's free is still accepted
  EXPECT_EQ(live(), before_live - 1);
  EXPECT_EQ(pc::bad_frees(), bad + 1);
  EXPECT_FALSE(pc::live_handle(h));
}

TEST(PercpuChecked, ForeignPointerIsReported) {
  ASSERT_TRUE(checked_env()) << "run with COREPOOL_CHECK=1 (ctest sets it)";
  alignas(64) char buf[64];
  const unsigned long bad = pc::bad_frees();
  const std::string err = free_captured(buf);
  EXPECT_EQ(pc::bad_frees(), bad + 1);
  EXPECT_NE(err.find("corepool: cp_free_percpu: not a per-CPU handle (0x"), std::string::npos)
      << err;
}

}  // namespace
