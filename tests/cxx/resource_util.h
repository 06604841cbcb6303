// Helpers shared by the pmr tests: an upstream that counts what passes through it, and one
// workload that drives a resource through the standard containers.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory_resource>
#include <string>
#include <unordered_map>
#include <vector>

namespace cxx_test {

// Forwards to new_delete_resource() and counts live blocks and bytes; checks that every
// deallocate names a block it handed out with the same size and alignment.
class counting_resource : public std::pmr::memory_resource {
 public:
  std::atomic<long> allocs{0}, frees{0}, live_bytes{0};
  long live() const {
    return allocs.load(std::memory_order_relaxed) - frees.load(std::memory_order_relaxed);
  }

 private:
  void *do_allocate(std::size_t bytes, std::size_t align) override {
    void *p = std::pmr::new_delete_resource()->allocate(bytes, align);
    allocs.fetch_add(1, std::memory_order_relaxed);
    live_bytes.fetch_add(static_cast<long>(bytes), std::memory_order_relaxed);
    return p;
  }
  void do_deallocate(void *p, std::size_t bytes, std::size_t align) override {
    frees.fetch_add(1, std::memory_order_relaxed);
    live_bytes.fetch_sub(static_cast<long>(bytes), std::memory_order_relaxed);
    std::pmr::new_delete_resource()->deallocate(p, bytes, align);
  }
  bool do_is_equal(const std::pmr::memory_resource &o) const noexcept override {
    return this == &o;
  }
};

// vector, list, unordered_map and a monotonic_buffer_resource on top of `r`: every block
// the containers get must honour its alignment, and the contents must survive.
inline void exercise_containers(std::pmr::memory_resource *r) {
  {
    std::pmr::vector<int> v(r);
    for (int i = 0; i < 5000; i++) v.push_back(i);
    long sum = 0;
    for (int x : v) sum += x;
    EXPECT_EQ(sum, 4999L * 5000 / 2);
  }
  {
    std::pmr::list<uint64_t> l(r);
    for (uint64_t i = 0; i < 2000; i++) l.push_back(i);
    for (auto it = l.begin(); it != l.end();) it = (*it % 3 == 0) ? l.erase(it) : ++it;
    EXPECT_EQ(l.size(), 2000u - 667u);
  }
  {
    std::pmr::unordered_map<int, std::pmr::string> m(r);
    for (int i = 0; i < 1000; i++)
      m.emplace(i, std::pmr::string(40, static_cast<char>('a' + i % 26), r));
    EXPECT_EQ(m.size(), 1000u);
    EXPECT_EQ(m.at(27)[0], 'b');
    for (int i = 0; i < 1000; i += 2) m.erase(i);
    EXPECT_EQ(m.size(), 500u);
  }
  {
    std::pmr::monotonic_buffer_resource mono(256, r);
    std::pmr::vector<std::pmr::string> v(&mono);
    for (int i = 0; i < 300; i++) v.emplace_back(100, 'x');
    EXPECT_EQ(v[299].size(), 100u);
  }
  for (std::size_t align : {1u, 8u, 16u, 64u, 256u, 4096u, 8192u, 65536u}) {
    void *p = r->allocate(24, align);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << "align " << align;
    r->deallocate(p, 24, align);
  }
  // Size 0: a usable, aligned pointer that deallocate takes back (two live ones at once).
  void *z1 = r->allocate(0, 1);
  void *z2 = r->allocate(0, 64);
  EXPECT_NE(z1, nullptr);
  EXPECT_NE(z2, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(z2) % 64, 0u);
  r->deallocate(z2, 0, 64);
  r->deallocate(z1, 0, 1);
  EXPECT_TRUE(r->is_equal(*r));
  EXPECT_FALSE(r->is_equal(*std::pmr::new_delete_resource()));
}

}  // namespace cxx_test
