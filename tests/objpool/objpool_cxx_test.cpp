// corepool::objpool<T> and corepool::objpool_resource.
#include <gtest/gtest.h>

#include <atomic>
#include <list>
#include <memory_resource>
#include <set>
#include <string>
#include <vector>

#include <corepool/objpool.hpp>

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
  EXPECT_THROW(corepool::objpool<int>(0), std::invalid_argument);
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

TEST(ObjpoolCxx, MemoryResourceServesObjectSizeOnly) {
  corepool::objpool_resource res(4, 48);
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
  corepool::objpool_resource res(100, 64);  // list nodes: two pointers + an int
  {
    std::pmr::list<int> l(&res);
    for (int i = 0; i < 100; i++) l.push_back(i);
    EXPECT_EQ(res.nr_free(), 0u);
    EXPECT_THROW(l.push_back(100), std::bad_alloc);
    EXPECT_EQ(l.size(), 100u);
  }
  EXPECT_EQ(res.nr_free(), 100u);
  EXPECT_THROW(corepool::objpool_resource(0, 8), std::invalid_argument);
}

}  // namespace
