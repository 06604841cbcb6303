// gen_pool in checked mode (COREPOOL_CHECK=1: ctest sets it for this binary). The frees that
// gen_pool always refuses (-EINVAL, pool untouched) are also reported: one line on stderr
// naming the function, the reason and the address.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include <corepool/error.h>
#include <corepool/genpool.h>

namespace {

bool checked_env() {
  const char *v = std::getenv("COREPOOL_CHECK");
  return v && std::strcmp(v, "1") == 0;
}

TEST(GenPoolChecked, EveryRefusedFreeIsReportedOnOneLine) {
  ASSERT_TRUE(checked_env()) << "run with COREPOOL_CHECK=1 (ctest sets it)";
  cp_gen_pool *p = cp_gen_pool_create(6, -1);
  ASSERT_NE(p, nullptr);
  const uintptr_t base = 0x40000000;
  ASSERT_EQ(cp_gen_pool_add(p, base, 64 * 1024, -1), 0);
  const uintptr_t a = cp_gen_pool_alloc(p, 256);
  const uintptr_t f = cp_gen_pool_alloc(p, 64);
  ASSERT_EQ(cp_gen_pool_free(p, f, 64), 0);
  struct bad {
    const char *name;
    uintptr_t addr;
    size_t size;
    const char *reason;
  };
  const bad cases[] = {
      {.name = "foreign", .addr = 0x1000, .size = 64, .reason = "address outside every chunk"},
      {.name = "double free", .addr = f, .size = 64, .reason = "not allocated, or not its start"},
      {.name = "interior", .addr = a + 64, .size = 64, .reason = "not allocated, or not its start"},
      {.name = "unaligned", .addr = a + 1, .size = 256, .reason = "not the start"},
      {.name = "wrong size", .addr = a, .size = 128, .reason = "size does not match"},
  };
  const size_t avail = cp_gen_pool_avail(p);
  for (const bad &c : cases) {
    testing::internal::CaptureStderr();
    EXPECT_EQ(cp_gen_pool_free(p, c.addr, c.size), -EINVAL) << c.name;
    const std::string err = testing::internal::GetCapturedStderr();
    char hex[32];
    std::snprintf(hex, sizeof hex, "(0x%jx)\n", static_cast<uintmax_t>(c.addr));
    EXPECT_EQ(err.rfind("corepool: cp_gen_pool_free: ", 0), 0u) << c.name << ": " << err;
    EXPECT_NE(err.find(c.reason), std::string::npos) << c.name << ": " << err;
    EXPECT_NE(err.find(hex), std::string::npos) << c.name << ": " << err;
    EXPECT_EQ(err.find('\n'), err.size() - 1) << c.name << ": one line";
    EXPECT_EQ(cp_gen_pool_avail(p), avail) << c.name << ": pool must stay untouched";
  }
  testing::internal::CaptureStderr();
  EXPECT_EQ(cp_gen_pool_free(p, a, 256), 0);  // a correct free says nothing
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

}  // namespace
