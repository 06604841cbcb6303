// corepool::qmempool and corepool::qmempool_resource (the conventions of docs/cpp.md).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <memory_resource>
#include <system_error>
#include <type_traits>
#include <vector>

#include <corepool/qmempool.hpp>

#include "resource_util.h"

namespace {

TEST(QmempoolCxx, ErrorsAndMoves) {
  try {
    corepool::qmempool bad(8, 32, 0, 8);  // localq_sz below 16
    FAIL() << "no throw";
  } catch (const std::system_error &e) {
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
    EXPECT_NE(std::strstr(e.what(), "corepool::qmempool: "), nullptr) << e.what();
  }
  static_assert(!std::is_copy_constructible_v<corepool::qmempool>);
  static_assert(std::is_nothrow_move_constructible_v<corepool::qmempool>);
  static_assert(std::is_nothrow_move_assignable_v<corepool::qmempool>);
  corepool::qmempool a(16, 64, 0, 32);
  auto h = a.alloc_handle();
  ASSERT_TRUE(h);
  corepool::qmempool b(std::move(a));
  EXPECT_EQ(b.object_size(), 32u);
  h.reset();  // the handle names the C pool: still valid after the move
  void *x[4];
  EXPECT_EQ(b.alloc_bulk(x, 4), 4);
  b.free_bulk(x, 4);
  EXPECT_THROW((void)b.alloc_bulk(x, -1), std::system_error);
  corepool::qmempool c(16, 64, 0, 8);
  c = std::move(b);
  EXPECT_EQ(c.object_size(), 32u);
}

// Blocks come from upstream in (block_size, block_align) units: list nodes are pool
// blocks, and everything goes back upstream when the resource goes.
TEST(QmempoolCxx, ResourceCachesUpstreamBlocks) {
  cxx_test::counting_resource up;
  {
    corepool::qmempool_resource res(64, alignof(std::max_align_t), &up, {16, 64, 0});
    {
      std::pmr::list<uint64_t> l(&res);  // nodes (~24 bytes) come from the pool
      for (uint64_t i = 0; i < 1000; i++) l.push_back(i);
      EXPECT_GE(up.allocs.load(), 1000);
      uint64_t sum = 0;
      for (uint64_t x : l) sum += x;
      EXPECT_EQ(sum, 999u * 1000u / 2);
      std::pmr::vector<char> big(&res);
      big.resize(4096);  // larger than a block: upstream
    }
    void *p = res.pool().alloc();
    ASSERT_NE(p, nullptr);
    res.pool().free(p);
  }
  EXPECT_EQ(up.live(), 0);
}

TEST(QmempoolCxx, ResourceHonoursAlignment) {
  cxx_test::counting_resource up;
  {
    corepool::qmempool_resource res(64, 64, &up);
    std::vector<void *> v;
    for (int i = 0; i < 50; i++) {
      v.push_back(res.allocate(64, 64));
      EXPECT_EQ(reinterpret_cast<uintptr_t>(v.back()) % 64, 0u);
    }
    void *more = res.allocate(16, 128);  // more aligned than a block: upstream, aligned
    EXPECT_EQ(reinterpret_cast<uintptr_t>(more) % 128, 0u);
    res.deallocate(more, 16, 128);
    for (void *p : v) res.deallocate(p, 64, 64);
  }
  EXPECT_EQ(up.live(), 0);
  EXPECT_THROW(corepool::qmempool_resource(64, 48), std::system_error);
}

TEST(QmempoolCxx, NullUpstreamRefuses) {
  corepool::qmempool_resource res(32, 16, std::pmr::null_memory_resource());
  EXPECT_THROW((void)res.allocate(32, 16), std::bad_alloc);
  EXPECT_THROW((void)res.allocate(4096, 16), std::bad_alloc);
}

TEST(QmempoolCxx, ResourceUnderStandardContainers) {
  cxx_test::counting_resource up;
  {
    corepool::qmempool_resource res(64, 64, &up);
    cxx_test::exercise_containers(&res);
  }
  EXPECT_EQ(up.live(), 0);
}

}  // namespace
