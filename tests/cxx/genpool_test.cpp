// corepool::gen_pool and corepool::gen_pool_resource (the conventions of docs/cpp.md).
#include <gtest/gtest.h>

#include <sys/mman.h>

#include <cerrno>
#include <cstdio>
#include <memory_resource>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include <corepool/genpool.hpp>

#include "resource_util.h"

namespace {

// 1 MiB of real memory, mapped per test (the resource tests dereference what they get).
struct region {
  static constexpr size_t kBytes = 1 << 20;
  void *mem = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ~region() { munmap(mem, kBytes); }
  uintptr_t addr() const { return reinterpret_cast<uintptr_t>(mem); }
};

TEST(GenPoolCxx, RaiiAndPmr) {
  region r;
  corepool::gen_pool pool(6);
  pool.add(r.addr() + 64, region::kBytes - 64);
  corepool::gen_pool_resource res(std::move(pool), std::pmr::null_memory_resource());
  {
    std::pmr::vector<int> v(&res);
    for (int i = 0; i < 10000; ++i) v.push_back(i);
    EXPECT_TRUE(res.pool().has_addr(reinterpret_cast<uintptr_t>(v.data()), v.size() * sizeof(int)));
    void *big = res.allocate(1000, 4096);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(big) % 4096, 0u);
    res.deallocate(big, 1000, 4096);
    EXPECT_THROW((void)res.allocate(2 << 20, 8), std::bad_alloc);
  }
  EXPECT_EQ(res.pool().avail(), res.pool().size());
  corepool::gen_pool moved(std::move(res.pool()));
  EXPECT_EQ(moved.size(), region::kBytes - 64);
  EXPECT_EQ(res.pool().get(), nullptr);
}

TEST(GenPoolCxx, ErrorsAreSystemErrors) {
  try {
    corepool::gen_pool bad(41);
    FAIL() << "no throw";
  } catch (const std::system_error &e) {
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
  }
  static_assert(!std::is_copy_constructible_v<corepool::gen_pool>);
  static_assert(std::is_nothrow_move_constructible_v<corepool::gen_pool>);
  corepool::gen_pool pool(6);
  const uintptr_t base = 0x7100000000ull;
  pool.add(base, 1 << 16);
  EXPECT_THROW(pool.add(base + 64, 1 << 12), std::system_error);  // overlaps
  uintptr_t a = pool.alloc(128);
  ASSERT_NE(a, 0u);
  EXPECT_EQ(pool.try_free(a, 64), -EINVAL);  // wrong size: pool unchanged
  EXPECT_THROW(pool.free(a + 64, 128), std::system_error);
  pool.free(a, 128);
  EXPECT_THROW(pool.free(a, 128), std::system_error);  // double free
  EXPECT_THROW(pool.set_algo(CP_GENPOOL_FIRST_FIT_ALIGN, nullptr), std::system_error);
  EXPECT_EQ(pool.avail(), pool.size());
}

TEST(GenPoolCxx, HandlesAndCheckedDestroy) {
  corepool::gen_pool pool(6);
  pool.add(0x7200000000ull, 1 << 16);
  {
    auto h = pool.alloc_handle(256);
    ASSERT_TRUE(h);
    EXPECT_EQ(pool.avail(), pool.size() - 256);
    auto moved = std::move(h);
    EXPECT_FALSE(h);
    EXPECT_THROW(pool.destroy(), std::system_error);  // EBUSY: pool unchanged, usable
    EXPECT_NE(pool.alloc(64), 0u);
  }
  EXPECT_EQ(pool.avail(), pool.size() - 64);
  EXPECT_FALSE(pool.alloc_handle(1 << 20));  // nothing fits: an empty handle
}

// The destructor with allocations outstanding says so on stderr and leaks the metadata
// (detach) rather than freeing it under its users.
TEST(GenPoolCxx, DestructorWithOutstandingAllocationsSaysSo) {
  testing::internal::CaptureStderr();
  {
    corepool::gen_pool pool(6);
    pool.add(0x7300000000ull, 1 << 16);
    (void)pool.alloc(4096);
  }
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("destroyed with 4096 bytes allocated"), std::string::npos) << err;
  testing::internal::CaptureStderr();
  {
    corepool::gen_pool pool(6);
    pool.add(0x7300000000ull, 1 << 16);
    pool.free(pool.alloc(4096), 4096);
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST(GenPoolCxx, ResourceForwardsAndRecognisesItsRanges) {
  region r;
  cxx_test::counting_resource up;
  corepool::gen_pool pool(4);
  pool.add(r.addr(), 4096);
  corepool::gen_pool_resource res(std::move(pool), &up);
  void *a = res.allocate(4096, 16);  // all of it
  void *b = res.allocate(16, 16);    // nothing fits: upstream
  EXPECT_EQ(up.live(), 1);
  EXPECT_FALSE(res.pool().has_addr(reinterpret_cast<uintptr_t>(b), 1));
  res.deallocate(b, 16, 16);
  EXPECT_EQ(up.live(), 0);
  EXPECT_THROW(res.deallocate(static_cast<char *>(a) + 16, 16, 16), std::system_error);
  res.deallocate(a, 4096, 16);
  EXPECT_EQ(res.pool().avail(), 4096u);
}

TEST(GenPoolCxx, ResourceUnderStandardContainers) {
  region r;
  cxx_test::counting_resource up;
  {
    corepool::gen_pool pool(4);
    pool.add(r.addr(), region::kBytes);
    corepool::gen_pool_resource res(std::move(pool), &up);
    cxx_test::exercise_containers(&res);
    EXPECT_EQ(res.pool().avail(), res.pool().size());
  }
  EXPECT_EQ(up.live(), 0);
}

}  // namespace
