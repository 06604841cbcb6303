// percpu_pool in checked mode (COREPOOL_CHECK=1: ctest sets it for this binary): a
// cp_free_percpu of an area the pool holds in its cache (a stale second free of a handle
// whose range the pool got again from the allocator) is refused and reported at the free,
// so the pool never hands out a freed area.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <corepool/error.h>
#include <corepool/percpu.h>
#include <corepool/percpu_pool.h>

#include "percpu/percpu_internal.h"

namespace {
namespace pc = corepool::pcpu;

bool checked_env() {
  const char *v = std::getenv("COREPOOL_CHECK");
  return v && std::strcmp(v, "1") == 0;
}

TEST(PercpuPoolChecked, StaleFreeOfACachedAreaIsRefusedAndReported) {
  ASSERT_TRUE(checked_env()) << "run with COREPOOL_CHECK=1 (ctest sets it)";
  void *keep = cp_alloc_percpu(64, 8);  // keeps the chunk mapped
  ASSERT_NE(keep, nullptr);
  void *x = cp_alloc_percpu(64, 8);
  ASSERT_NE(x, nullptr);
  cp_free_percpu(x);        // the owner's free
  (void)pc::reclaim_now();  // processed: x's range is free again
  cp_percpu_pool *pool = nullptr;
  ASSERT_EQ(cp_percpu_pool_create(&pool, 64, 8, 0, 1), 0);
  cp_percpu_pool_fill(pool, 1);  // first fit: the pool's one area is x's range
  ASSERT_EQ(cp_percpu_pool_nr(pool), 1);
  const unsigned long bad = pc::bad_frees();
  cp_clear_error();
  testing::internal::CaptureStderr();
  cp_free_percpu(x);  // the stale second free
  const std::string err = testing::internal::GetCapturedStderr();
  if (!pc::live_handle(x) && pc::bad_frees() == bad)
    GTEST_SKIP() << "the pool's fill did not get x's range";
  EXPECT_EQ(pc::bad_frees(), bad + 1);
  EXPECT_NE(err.find("corepool: cp_free_percpu: the area is cached by a percpu_pool"),
            std::string::npos)
      << err;
  void *y = cp_percpu_pool_alloc(pool);
  ASSERT_EQ(y, x);
  EXPECT_TRUE(pc::live_handle(y)) << "the pool handed out a freed area";
  cp_clear_error();
  cp_free_percpu(y);  // handed out: the holder's free is accepted
  EXPECT_EQ(pc::bad_frees(), bad + 1);
  EXPECT_STREQ(cp_last_error(), "");
  cp_percpu_pool_destroy(pool);
  cp_free_percpu(keep);
}

}  // namespace
