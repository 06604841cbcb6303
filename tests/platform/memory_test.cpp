#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "platform/memory.h"

namespace {
using namespace corepool::platform;

TEST(Memory, ReserveCommitRelease) {
  const size_t pg = page_size();
  const size_t len = 64 * pg;
  char *p = static_cast<char *>(os_reserve(len, 1 << 21));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (1 << 21), 0u);
  EXPECT_EQ(os_resident_pages(p, len), 0);  // reserved, not backed
  ASSERT_EQ(os_commit(p, 4 * pg), 0);
  EXPECT_EQ(os_resident_pages(p, len), 0);  // lazily backed
  std::memset(p, 0xab, 2 * pg);
  EXPECT_EQ(os_resident_pages(p, len), 2);
  EXPECT_EQ(p[4 * pg - 1], 0);  // committed, untouched: reads as zero
  int b = os_bind_node(p, len, 0);
  EXPECT_TRUE(b == 0 || b == -ENOSYS) << b;
  EXPECT_EQ(os_bind_node(p, len, -1), -EINVAL);
  EXPECT_EQ(os_release(p, len), 0);
}

TEST(Memory, AllocIsZeroedAndAligned) {
  void *p = os_alloc(100000, 1 << 16);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (1 << 16), 0u);
  const char *c = static_cast<const char *>(p);
  for (size_t i = 0; i < 100000; i += 997) EXPECT_EQ(c[i], 0);
  EXPECT_EQ(os_release(p, 100000), 0);
}

TEST(Memory, BadArguments) {
  errno = 0;
  EXPECT_EQ(os_reserve(0, 0), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(os_reserve(4096, 3000), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(os_reserve(SIZE_MAX - 10, 1 << 20), nullptr);
  EXPECT_LT(os_commit(reinterpret_cast<void *>(1), 4096), 0);  // unaligned
}

}  // namespace
