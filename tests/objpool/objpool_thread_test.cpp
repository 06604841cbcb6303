// objpool with the thread tier: the switch (attr, COREPOOL_THREAD_CACHE, the flag that
// overrides it), a pool of a few objects per CPU that still serves every thread while other
// threads keep objects in their stacks, exit flush, and a pool finished and released while
// threads that used it are still alive (they exit later: ASan checks nothing is touched).
// The chaos cases with the tier on are in objpool_chaos_test.cpp.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <thread>
#include <vector>

#include <corepool/cpu.h>
#include <corepool/objpool.h>

namespace {

cp_objpool *make(int nr_objs, unsigned thread, unsigned flags = 0) {
  cp_objpool_attr a{
      .ring_capacity = 0, .flags = flags, .cache_capacity = 0, .thread_cache = thread};
  cp_objpool *p = nullptr;
  EXPECT_EQ(cp_objpool_init_attr(&p, nr_objs, 64, nullptr, nullptr, nullptr, &a), 0);
  return p;
}

// The tier needs rseq and the rseq fence: where a pool asked for it has none, skip.
#define REQUIRE_TIER(p, cap)                                                    \
  do {                                                                          \
    if (cp_objpool_thread_cache_capacity(p) == 0) {                             \
      cp_objpool_free(p);                                                       \
      GTEST_SKIP() << "no thread tier here (rseq off, or no rseq fence)";       \
    }                                                                           \
    ASSERT_EQ(cp_objpool_thread_cache_capacity(p), static_cast<unsigned>(cap)); \
  } while (0)

TEST(ObjpoolThread, TheSwitch) {
  cp_objpool *p = make(64, 8);
  REQUIRE_TIER(p, 8);
  cp_objpool_free(p);
  // The environment's default (this test also runs with COREPOOL_THREAD_CACHE=12).
  const char *env = std::getenv("COREPOOL_THREAD_CACHE");
  p = make(64, 0);
  EXPECT_EQ(cp_objpool_thread_cache_capacity(p), env ? static_cast<unsigned>(std::atoi(env)) : 0u);
  cp_objpool_free(p);
  p = make(64, 8, CP_OBJPOOL_F_NOTHREADCACHE);
  EXPECT_EQ(cp_objpool_thread_cache_capacity(p), 0u) << "the flag wins";
  cp_objpool_free(p);
  cp_objpool_attr bad{.ring_capacity = 0,
                      .flags = 0,
                      .cache_capacity = 0,
                      .thread_cache = CP_OBJPOOL_THREAD_CACHE_MAX + 1};
  EXPECT_EQ(cp_objpool_init_attr(&p, 64, 64, nullptr, nullptr, nullptr, &bad), -EINVAL);
  EXPECT_EQ(cp_objpool_thread_cache_capacity(nullptr), 0u);
}

// Two objects per CPU and stacks of 8: one thread can hold every free object in its stack.
// It stays alive and idle; every other thread must still get objects (stolen from it).
TEST(ObjpoolThread, FewObjectsServeEveryThread) {
  const int n = 2 * static_cast<int>(cp_nr_cpu_ids());
  cp_objpool *p = make(n, 64);
  REQUIRE_TIER(p, 64);
  std::atomic<bool> filled{false}, leave{false};
  std::thread hoarder([&] {
    std::vector<void *> all;
    while (void *o = cp_objpool_pop(p)) all.push_back(o);
    EXPECT_EQ(all.size(), static_cast<size_t>(n));
    for (void *o : all) EXPECT_EQ(cp_objpool_push(o, p), 0);  // all in its own stack
    filled.store(true, std::memory_order_release);
    while (!leave.load(std::memory_order_acquire)) std::this_thread::yield();
  });
  while (!filled.load(std::memory_order_acquire)) std::this_thread::yield();
  EXPECT_EQ(cp_objpool_nr_free(p), static_cast<unsigned>(n));
  for (int t = 0; t < 4; t++)
    std::thread([&] {
      std::vector<void *> got;
      while (void *o = cp_objpool_pop(p)) got.push_back(o);
      EXPECT_EQ(got.size(), static_cast<size_t>(n)) << "every free object, wherever it sits";
      for (void *o : got) EXPECT_EQ(cp_objpool_push(o, p), 0);
    }).join();  // and its stack goes back when it exits
  leave.store(true, std::memory_order_release);
  hoarder.join();
  EXPECT_EQ(cp_objpool_nr_free(p), static_cast<unsigned>(n));
  std::vector<void *> rest(n + 1);
  EXPECT_EQ(cp_objpool_pop_bulk(p, rest.data(), n + 1), static_cast<unsigned>(n));
  EXPECT_EQ(cp_objpool_push_bulk(rest.data(), n, p), 0);
  cp_objpool_free(p);
}

// fini with threads that hold stacks; the pool is released (last drop) before they exit.
TEST(ObjpoolThread, ReleasedBeforeThreadsExit) {
  cp_objpool *p = make(256, 16);
  REQUIRE_TIER(p, 16);
  std::atomic<int> ready{0};
  std::atomic<bool> go_exit{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++)
    ts.emplace_back([&] {
      void *o = cp_objpool_pop(p);
      EXPECT_NE(o, nullptr);
      EXPECT_EQ(cp_objpool_push(o, p), 0);
      ready.fetch_add(1, std::memory_order_acq_rel);
      while (!go_exit.load(std::memory_order_acquire)) std::this_thread::yield();
    });
  while (ready.load(std::memory_order_acquire) != 4) std::this_thread::yield();
  EXPECT_EQ(cp_objpool_nr_free(p), 256u);
  cp_objpool_fini(p);  // collects what the live threads' stacks hold, releases the pool
  go_exit.store(true, std::memory_order_release);
  for (auto &t : ts) t.join();
}

}  // namespace
