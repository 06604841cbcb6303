// corepool::objpool<T> and corepool::objpool_resource (the conventions of docs/cpp.md).
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>
#include <memory_resource>
#include <set>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include <corepool/cpu.h>
#include <corepool/objpool.hpp>

#include "resource_util.h"

namespace {

struct tracked {
  static inline std::atomic<int> alive{0};
  std::string name;
  int value;
  explicit tracked(int v) : name("obj" + std::to_string(v)), value(v) { alive++; }
  tracked(tracked &&o) noexcept : name(std::move(o.name)), value(o.value) { alive++; }
  ~tracked() { alive--; }
};

TEST(ObjpoolCxx, ConstructsInPlaceAndDestroysOnRelease) {
  tracked::alive = 0;
  {
    int next = 0;
    corepool::objpool<tracked> pool(50, [&] { return tracked(next++); });
    EXPECT_EQ(tracked::alive.load(), 50);  // copy elision: no temporaries left over
    EXPECT_EQ(pool.size(), 50);
    EXPECT_EQ(pool.nr_free(), 50u);
    std::set<int> values;
    {
      std::vector<decltype(pool)::handle> hs;
      while (auto h = pool.pop()) {
        values.insert(h->value);
        EXPECT_EQ(h->name, "obj" + std::to_string(h->value));
        hs.push_back(std::move(h));
      }
      EXPECT_EQ(hs.size(), 50u);
      EXPECT_EQ(pool.nr_free(), 0u);
    }  // handles push back
    EXPECT_EQ(values.size(), 50u);
    EXPECT_EQ(pool.nr_free(), 50u);
    tracked *t = pool.try_pop();
    ASSERT_NE(t, nullptr);
    t->value = 1234;  // state survives the round trip
    pool.put(t);
  }
  EXPECT_EQ(tracked::alive.load(), 0);
}

TEST(ObjpoolCxx, HandlesOutliveThePool) {
  tracked::alive = 0;
  auto *pool = new corepool::objpool<tracked>(8, [] { return tracked(7); });
  auto h1 = pool->pop(), h2 = pool->pop();
  delete pool;  // fini: 6 free ones go, 2 outstanding keep the memory
  EXPECT_EQ(tracked::alive.load(), 8);
  EXPECT_EQ(h1->value, 7);
  h1.reset();  // dropped, not pushed
  EXPECT_EQ(tracked::alive.load(), 8);
  h2.reset();  // last reference: every T destroyed
  EXPECT_EQ(tracked::alive.load(), 0);
}

struct thrower {
  static inline std::atomic<int> alive{0};
  explicit thrower(int v) {
    if (v == 5) throw std::runtime_error("fifth");
    alive++;
  }
  ~thrower() { alive--; }
};

TEST(ObjpoolCxx, ThrowingInitDestroysWhatWasBuilt) {
  thrower::alive = 0;
  int next = 0;
  EXPECT_THROW(corepool::objpool<thrower>(10, [&] { return thrower(next++); }), std::runtime_error);
  EXPECT_EQ(thrower::alive.load(), 0);
}

// A bad count is std::system_error with the errno and the C library's message.
TEST(ObjpoolCxx, BadArgumentsAreSystemErrors) {
  try {
    corepool::objpool<int> p(0);
    FAIL() << "no throw";
  } catch (const std::system_error &e) {
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
    EXPECT_NE(std::strstr(e.what(), "nr_objs"), nullptr) << e.what();
  }
  cp_objpool_attr bad{.ring_capacity = 0, .flags = 0x80, .cache_capacity = 0, .thread_cache = 0};
  EXPECT_THROW(corepool::objpool<int>(4, bad), std::system_error);
  EXPECT_THROW(corepool::objpool_resource(0, 8), std::system_error);
}

struct alignas(64) wide {
  char c[70];
};

TEST(ObjpoolCxx, OverAlignedType) {
  corepool::objpool<wide> pool(10);
  std::vector<wide *> v;
  while (wide *w = pool.try_pop()) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(w) % 64, 0u);
    v.push_back(w);
  }
  EXPECT_EQ(v.size(), 10u);
  for (wide *w : v) pool.put(w);
}

// With null_memory_resource() upstream, requests the pool cannot serve throw bad_alloc.
TEST(ObjpoolCxx, MemoryResourceServesObjectSizeOnly) {
  corepool::objpool_resource res(4, 48, std::pmr::null_memory_resource());
  EXPECT_EQ(res.block_size(), 48u);
  EXPECT_GE(res.block_alignment(), alignof(std::max_align_t));
  void *a = res.allocate(48, 16);
  void *b = res.allocate(1, 1);
  EXPECT_NE(a, b);
  EXPECT_THROW((void)res.allocate(49, 8), std::bad_alloc);
  EXPECT_THROW((void)res.allocate(8, 4096), std::bad_alloc);
  void *c = res.allocate(48);
  void *d = res.allocate(48);
  EXPECT_THROW((void)res.allocate(48), std::bad_alloc);  // exhausted
  for (void *p : {a, b, c, d}) res.deallocate(p, 48);
  EXPECT_EQ(res.nr_free(), 4u);
  EXPECT_TRUE(res.is_equal(res));
  corepool::objpool_resource other(1, 48);
  EXPECT_FALSE(res.is_equal(other));
}

TEST(ObjpoolCxx, MemoryResourceBacksAPmrList) {
  // list nodes: two pointers + an int
  corepool::objpool_resource res(100, 64, std::pmr::null_memory_resource());
  {
    std::pmr::list<int> l(&res);
    for (int i = 0; i < 100; i++) l.push_back(i);
    EXPECT_EQ(res.nr_free(), 0u);
    EXPECT_THROW(l.push_back(100), std::bad_alloc);
    EXPECT_EQ(l.size(), 100u);
  }
  EXPECT_EQ(res.nr_free(), 100u);
}

// ---- construction: exception safety at every step ------------------------------------------

struct counted {
  static inline std::atomic<int> alive{0}, built{0};
  static inline int throw_at = -1;  // the constructor call that throws
  std::string payload;              // owns heap memory: a missed destructor leaks (ASan)
  counted() : payload(64, 'p') {
    if (built.load(std::memory_order_relaxed) == throw_at) throw std::runtime_error("T()");
    built.fetch_add(1, std::memory_order_relaxed);
    alive.fetch_add(1, std::memory_order_relaxed);
  }
  ~counted() { alive.fetch_sub(1, std::memory_order_relaxed); }
};

TEST(ObjpoolCxx, ThrowAtEveryPositionDestroysExactlyWhatWasBuilt) {
  const int n = 300;
  for (int at : {0, 1, 2, 150, n - 1}) {
    counted::alive = 0;
    counted::built = 0;
    counted::throw_at = at;
    EXPECT_THROW(corepool::objpool<counted>{n}, std::runtime_error) << at;
    EXPECT_EQ(counted::built.load(), at);
    EXPECT_EQ(counted::alive.load(), 0) << "throw at " << at;
  }
  counted::throw_at = -1;
  counted::built = 0;
  {
    corepool::objpool<counted> ok(n);
    EXPECT_EQ(counted::alive.load(), n);
  }
  EXPECT_EQ(counted::alive.load(), 0);
}

TEST(ObjpoolCxx, ThrowingInitFunctorInABigPool) {
  tracked::alive = 0;
  int calls = 0;
  auto init = [&] {
    if (++calls == 40000) throw std::length_error("init");
    return tracked(calls);
  };
  EXPECT_THROW(corepool::objpool<tracked>(1 << 16, init), std::length_error);
  EXPECT_EQ(calls, 40000);
  EXPECT_EQ(tracked::alive.load(), 0);
}

TEST(ObjpoolCxx, TakesTheAttrOptions) {
  cp_objpool_attr a{
      .ring_capacity = 64, .flags = CP_OBJPOOL_F_NOCACHE, .cache_capacity = 0, .thread_cache = 0};
  corepool::objpool<tracked> pool(
      1000, [] { return tracked(1); }, a);
  EXPECT_EQ(cp_objpool_ring_capacity(pool.native()), 64u);
  EXPECT_EQ(cp_objpool_cache_capacity(pool.native()), 0u);
  std::vector<tracked *> all;
  while (tracked *t = pool.try_pop()) all.push_back(t);
  EXPECT_EQ(all.size(), 1000u);
  for (tracked *t : all) pool.put(t);  // rings full: the overflow ring takes the rest
  EXPECT_EQ(pool.nr_free(), 1000u);
  corepool::objpool<int> plain(
      100, cp_objpool_attr{.ring_capacity = 8, .flags = 0, .cache_capacity = 0, .thread_cache = 0});
  EXPECT_EQ(cp_objpool_ring_capacity(plain.native()), 8u);
}

TEST(ObjpoolCxx, PutReportsForeignPointers) {
  corepool::objpool<int> pool(8);
  int outside = 0;
  EXPECT_EQ(pool.try_put(&outside), -EINVAL);
  try {
    pool.put(&outside);
    FAIL() << "no throw";
  } catch (const std::system_error &e) {
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
  }
  EXPECT_EQ(pool.nr_free(), 8u);
  EXPECT_THROW((void)pool.nr_free_cpu(cp_nr_cpu_ids()), std::system_error);
  int *p = pool.try_pop();
  EXPECT_EQ(pool.try_put(p), 0);
}

TEST(ObjpoolCxx, MovableNotCopyable) {
  static_assert(!std::is_copy_constructible_v<corepool::objpool<int>>);
  static_assert(!std::is_copy_assignable_v<corepool::objpool<int>>);
  static_assert(std::is_nothrow_move_constructible_v<corepool::objpool<int>>);
  static_assert(std::is_nothrow_move_assignable_v<corepool::objpool<int>>);
  tracked::alive = 0;
  {
    corepool::objpool<tracked> a(10, [] { return tracked(3); });
    auto h = a.pop();
    corepool::objpool<tracked> b(std::move(a));
    EXPECT_EQ(b.nr_free(), 9u);
    h.reset();  // the handle names the pool, not the objpool object
    EXPECT_EQ(b.nr_free(), 10u);
    corepool::objpool<tracked> c(4, [] { return tracked(4); });
    c = std::move(b);  // c's old pool is released
    EXPECT_EQ(tracked::alive.load(), 10);
    EXPECT_EQ(c.size(), 10);
  }
  EXPECT_EQ(tracked::alive.load(), 0);
}

// ---- objpool_resource: the pmr rule --------------------------------------------------------

TEST(ObjpoolCxx, ResourceForwardsWhatItCannotServe) {
  cxx_test::counting_resource up;
  {
    corepool::objpool_resource res(2, 32, &up);
    EXPECT_EQ(res.upstream_resource(), &up);
    void *a = res.allocate(32, 16), *b = res.allocate(8, 8);
    EXPECT_EQ(up.allocs.load(), 0);
    void *c = res.allocate(16, 8);    // exhausted: upstream
    void *big = res.allocate(33, 8);  // too large: upstream
    void *al = res.allocate(8, 256);  // more aligned than the blocks: upstream
    EXPECT_EQ(reinterpret_cast<uintptr_t>(al) % 256, 0u);
    EXPECT_EQ(up.live(), 3);
    res.deallocate(c, 16, 8);  // not a block: back upstream
    res.deallocate(big, 33, 8);
    res.deallocate(al, 8, 256);
    EXPECT_EQ(up.live(), 0);
    res.deallocate(a, 32, 16);
    res.deallocate(b, 8, 8);
    EXPECT_EQ(res.nr_free(), 2u);
  }
}

TEST(ObjpoolCxx, ResourceUnderStandardContainers) {
  cxx_test::counting_resource up;
  {
    corepool::objpool_resource res(512, 64, &up);
    cxx_test::exercise_containers(&res);
    EXPECT_GT(up.allocs.load(), 0);  // the vector's growth and the map's buckets
    EXPECT_EQ(res.nr_free(), 512u);
  }
  EXPECT_EQ(up.live(), 0);
}

}  // namespace
