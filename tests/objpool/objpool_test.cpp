// objpool C API: semantics, bad input, lifetime, introspection, stop safety.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include <corepool/cpu.h>
#include <corepool/error.h>
#include <corepool/objpool.h>

#include "chaos.h"
#include "inject.h"
#include "platform/rseq_fence.h"

namespace {

// Pops everything (single-threaded), checks uniqueness, pushes all back; returns the count.
int count_unique(cp_objpool *p) {
  std::vector<void *> all;
  while (void *o = cp_objpool_pop(p)) all.push_back(o);
  std::set<void *> uniq(all.begin(), all.end());
  EXPECT_EQ(uniq.size(), all.size()) << "an object was in the pool twice";
  for (void *o : all) EXPECT_EQ(cp_objpool_push(o, p), 0);
  return static_cast<int>(all.size());
}

struct init_ctx {
  int calls = 0;
  int fail_at = -1;  // objinit returns -42 on this call
  bool all_zero = true;
  bool aligned = true;
  int size = 0;
};

int counting_init(void *obj, void *arg) {
  auto *c = static_cast<init_ctx *>(arg);
  auto *b = static_cast<unsigned char *>(obj);
  for (int i = 0; i < c->size; i++)
    if (b[i]) c->all_zero = false;
  if (reinterpret_cast<uintptr_t>(obj) % alignof(max_align_t)) c->aligned = false;
  std::memset(obj, 0xab, static_cast<size_t>(c->size));  // the pool must never touch this
  if (c->calls++ == c->fail_at) return -42;
  return 0;
}

std::atomic<int> g_releases{0};
int count_release(cp_objpool *, void *ctx) {
  g_releases++;
  if (ctx) static_cast<std::atomic<int> *>(ctx)->fetch_add(1);
  return 0;
}

TEST(Objpool, InitCallsObjinitOncePerZeroedAlignedObject) {
  for (int size : {1, 7, 16, 24, 100, 4096, 65536}) {
    init_ctx c;
    c.size = size;
    cp_objpool *p = nullptr;
    const int n = size >= 4096 ? 33 : 1000;
    ASSERT_EQ(cp_objpool_init(&p, n, size, &c, counting_init, nullptr), 0) << size;
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(c.calls, n);
    EXPECT_TRUE(c.all_zero);
    EXPECT_TRUE(c.aligned);
    EXPECT_EQ(cp_objpool_nr_free(p), static_cast<unsigned>(n));
    EXPECT_EQ(cp_objpool_object_size(p), size);
    EXPECT_EQ(cp_objpool_object_stride(p) % static_cast<int>(alignof(max_align_t)), 0);
    EXPECT_EQ(count_unique(p), n);
    // Contents survive push/pop untouched.
    void *o = cp_objpool_pop(p);
    ASSERT_NE(o, nullptr);
    EXPECT_EQ(static_cast<unsigned char *>(o)[size - 1], 0xab);
    EXPECT_EQ(cp_objpool_push(o, p), 0);
    EXPECT_EQ(c.calls, n);  // never again
    cp_objpool_free(p);
  }
}

TEST(Objpool, ObjinitFailureAbortsAndFreesWithoutRelease) {
  init_ctx c;
  c.size = 32;
  c.fail_at = 17;
  cp_objpool *p = reinterpret_cast<cp_objpool *>(0x1);
  std::atomic<int> rel{0};
  g_releases = 0;
  (void)rel;
  EXPECT_EQ(cp_objpool_init(&p, 100, 32, &c, counting_init, count_release), -42);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(c.calls, 18);
  EXPECT_EQ(g_releases.load(), 0);
}

TEST(Objpool, PopEmptyAndRefill) {
  cp_objpool *p = nullptr;
  ASSERT_EQ(cp_objpool_init(&p, 5, 8, nullptr, nullptr, nullptr), 0);
  std::vector<void *> got;
  while (void *o = cp_objpool_pop(p)) got.push_back(o);
  EXPECT_EQ(got.size(), 5u);
  EXPECT_EQ(cp_objpool_pop(p), nullptr);
  EXPECT_EQ(cp_objpool_nr_free(p), 0u);
  for (void *o : got) EXPECT_EQ(cp_objpool_push(o, p), 0);
  EXPECT_EQ(cp_objpool_nr_free(p), 5u);
  cp_objpool_free(p);
}

TEST(Objpool, BulkOps) {
  cp_objpool *p = nullptr;
  ASSERT_EQ(cp_objpool_init(&p, 100, 8, nullptr, nullptr, nullptr), 0);
  void *objs[128];
  EXPECT_EQ(cp_objpool_pop_bulk(p, objs, 0), 0u);
  EXPECT_EQ(cp_objpool_pop_bulk(p, objs, 30), 30u);
  EXPECT_EQ(cp_objpool_pop_bulk(p, objs + 30, 128), 70u);  // up to n: only 70 left
  EXPECT_EQ(cp_objpool_pop_bulk(p, objs + 100, 5), 0u);
  std::set<void *> u(objs, objs + 100);
  EXPECT_EQ(u.size(), 100u);
  EXPECT_EQ(cp_objpool_push_bulk(objs, 0, p), 0);
  EXPECT_EQ(cp_objpool_push_bulk(objs, 100, p), 0);
  EXPECT_EQ(cp_objpool_nr_free(p), 100u);
  EXPECT_EQ(count_unique(p), 100);
  cp_objpool_free(p);
}

// ---- bad input ------------------------------------------------------------------------------

TEST(Objpool, InitRejectsBadSizes) {
  struct row {
    const char *what;
    int nr_objs, object_size;
  } rows[] = {
      {.what = "zero objects", .nr_objs = 0, .object_size = 8},
      {.what = "negative objects", .nr_objs = -1, .object_size = 8},
      {.what = "INT_MIN objects", .nr_objs = INT_MIN, .object_size = 8},
      {.what = "2^24 + 1 objects", .nr_objs = (1 << 24) + 1, .object_size = 8},
      {.what = "zero size", .nr_objs = 4, .object_size = 0},
      {.what = "negative size", .nr_objs = 4, .object_size = -8},
      {.what = "size 65537", .nr_objs = 4, .object_size = 65537},
      {.what = "INT_MAX size", .nr_objs = 4, .object_size = INT_MAX},
  };
  for (const row &r : rows) {
    cp_objpool *p = reinterpret_cast<cp_objpool *>(0x1);
    cp_clear_error();
    EXPECT_EQ(cp_objpool_init(&p, r.nr_objs, r.object_size, nullptr, nullptr, nullptr), -EINVAL)
        << r.what;
    EXPECT_EQ(p, nullptr) << r.what;
    EXPECT_STRNE(cp_last_error(), "") << r.what;
  }
  EXPECT_EQ(cp_objpool_init(nullptr, 4, 8, nullptr, nullptr, nullptr), -EINVAL);
  cp_objpool_attr bad{.ring_capacity = 0, .flags = 2, .cache_capacity = 0, .thread_cache = 0};
  cp_objpool *p = nullptr;
  EXPECT_EQ(cp_objpool_init_attr(&p, 4, 8, nullptr, nullptr, nullptr, &bad), -EINVAL);
  bad = {.ring_capacity = 0,
         .flags = 0,
         .cache_capacity = CP_OBJPOOL_CACHE_CAPACITY_MAX + 1,
         .thread_cache = 0};
  EXPECT_EQ(cp_objpool_init_attr(&p, 4, 8, nullptr, nullptr, nullptr, &bad), -EINVAL);
  bad = {.ring_capacity = (1u << 24) + 1, .flags = 0, .cache_capacity = 0, .thread_cache = 0};
  EXPECT_EQ(cp_objpool_init_attr(&p, 4, 8, nullptr, nullptr, nullptr, &bad), -EINVAL);
  // The limits themselves are accepted.
  ASSERT_EQ(cp_objpool_init(&p, 1, 1, nullptr, nullptr, nullptr), 0);
  cp_objpool_free(p);
  ASSERT_EQ(cp_objpool_init(&p, 2, 65536, nullptr, nullptr, nullptr), 0);
  cp_objpool_free(p);
}

TEST(Objpool, PushRejectsForeignAndMisalignedPointers) {
  cp_objpool *p = nullptr, *other = nullptr;
  ASSERT_EQ(cp_objpool_init(&p, 10, 40, nullptr, nullptr, nullptr), 0);
  ASSERT_EQ(cp_objpool_init(&other, 10, 40, nullptr, nullptr, nullptr), 0);
  void *held = cp_objpool_pop(p);
  ASSERT_NE(held, nullptr);
  // Lowest and highest object addresses, by scanning.
  std::vector<char *> all;
  cp_objpool_for_each(
      p,
      [](void *o, void *a) {
        static_cast<std::vector<char *> *>(a)->push_back(static_cast<char *>(o));
      },
      &all);
  ASSERT_EQ(all.size(), 10u);
  const int stride = cp_objpool_object_stride(p);
  int on_stack = 0;
  void *foreign_obj = cp_objpool_pop(other);
  struct row {
    const char *what;
    void *ptr;
  } rows[] = {
      {.what = "NULL", .ptr = nullptr},
      {.what = "stack variable", .ptr = &on_stack},
      {.what = "object of another pool", .ptr = foreign_obj},
      {.what = "misaligned by 1", .ptr = static_cast<char *>(held) + 1},
      {.what = "misaligned by 16", .ptr = static_cast<char *>(held) + 16},
      {.what = "one before the first object", .ptr = all.front() - stride},
      {.what = "one past the last object", .ptr = all.back() + stride},
      {.what = "inside the last object", .ptr = all.back() + stride - 8},
      {.what = "all ones", .ptr = reinterpret_cast<void *>(~uintptr_t{0})},
  };
  for (const row &r : rows) {
    const unsigned before = cp_objpool_nr_free(p);
    EXPECT_EQ(cp_objpool_push(r.ptr, p), -EINVAL) << r.what;
    EXPECT_EQ(cp_objpool_drop(r.ptr, p), -EINVAL) << r.what;
    void *bulk[3] = {held, r.ptr, held};
    EXPECT_EQ(cp_objpool_push_bulk(bulk, 3, p), -EINVAL) << r.what;
    EXPECT_EQ(cp_objpool_nr_free(p), before) << r.what << ": nothing pushed";
  }
  EXPECT_EQ(cp_objpool_push(held, nullptr), -EINVAL);
  EXPECT_EQ(cp_objpool_drop(held, nullptr), -EINVAL);
  // Pool intact: 9 free + the held one.
  EXPECT_EQ(count_unique(p), 9);
  EXPECT_EQ(cp_objpool_push(held, p), 0);
  EXPECT_EQ(count_unique(p), 10);
  EXPECT_EQ(cp_objpool_push(foreign_obj, other), 0);
  cp_objpool_free(p);
  cp_objpool_free(other);
}

// A NULL pool or array is an error with a message, never a crash: int results are -EINVAL,
// counts are 0, pop gives NULL, for_each does nothing.
TEST(Objpool, NullArgumentsAreErrorsNotCrashes) {
  cp_objpool *p = nullptr;
  ASSERT_EQ(cp_objpool_init(&p, 8, 16, nullptr, nullptr, nullptr), 0);
  auto expect_error = [](const char *what) {
    EXPECT_STRNE(cp_last_error(), "") << what;
    cp_clear_error();
  };
  cp_clear_error();
  EXPECT_EQ(cp_objpool_pop(nullptr), nullptr);
  expect_error("pop(NULL)");
  void *out[4];
  EXPECT_EQ(cp_objpool_pop_bulk(nullptr, out, 4), 0u);
  expect_error("pop_bulk(NULL, objs, 4)");
  EXPECT_EQ(cp_objpool_pop_bulk(p, nullptr, 4), 0u);
  expect_error("pop_bulk(pool, NULL, 4)");
  EXPECT_EQ(cp_objpool_pop_bulk(p, nullptr, 0), 0u);
  EXPECT_EQ(cp_objpool_push_bulk(nullptr, 4, p), -EINVAL);
  expect_error("push_bulk(NULL, 4, pool)");
  EXPECT_EQ(cp_objpool_push_bulk(out, 0, nullptr), -EINVAL);
  expect_error("push_bulk(objs, 0, NULL)");
  EXPECT_EQ(cp_objpool_nr_free(nullptr), 0u);
  expect_error("nr_free(NULL)");
  EXPECT_EQ(cp_objpool_nr_free_cpu(nullptr, 0), -EINVAL);
  expect_error("nr_free_cpu(NULL, 0)");
  EXPECT_EQ(cp_objpool_nr_free_overflow(nullptr), 0u);
  expect_error("nr_free_overflow(NULL)");
  EXPECT_EQ(cp_objpool_ring_capacity(nullptr), 0u);
  expect_error("ring_capacity(NULL)");
  EXPECT_EQ(cp_objpool_object_size(nullptr), -EINVAL);
  expect_error("object_size(NULL)");
  EXPECT_EQ(cp_objpool_object_stride(nullptr), -EINVAL);
  expect_error("object_stride(NULL)");
  EXPECT_EQ(cp_objpool_nr_objs(nullptr), -EINVAL);
  expect_error("nr_objs(NULL)");
  EXPECT_EQ(cp_objpool_cache_capacity(nullptr), 0u);
  expect_error("cache_capacity(NULL)");
  EXPECT_EQ(cp_objpool_uses_rseq(nullptr), -EINVAL);
  expect_error("uses_rseq(NULL)");
  int calls = 0;
  cp_objpool_for_each(
      nullptr, [](void *, void *a) { ++*static_cast<int *>(a); }, &calls);
  expect_error("for_each(NULL, fn, arg)");
  cp_objpool_for_each(p, nullptr, &calls);
  expect_error("for_each(pool, NULL, arg)");
  EXPECT_EQ(calls, 0);
  // The pool is untouched by all of it.
  EXPECT_EQ(cp_objpool_nr_free(p), 8u);
  EXPECT_EQ(count_unique(p), 8);
  cp_objpool_free(p);
}

// The validity check is a divisibility test on the offset from the first object: exercise
// strides with and without an odd factor, every 8th byte around and inside the objects.
TEST(Objpool, PushAcceptsExactlyTheObjectStarts) {
  for (int size : {1, 16, 24, 40, 100, 4096, 65536}) {
    cp_objpool *p = nullptr;
    ASSERT_EQ(cp_objpool_init(&p, 6, size, nullptr, nullptr, nullptr), 0) << size;
    void *objs[6];
    ASSERT_EQ(cp_objpool_pop_bulk(p, objs, 6), 6u);
    char *lo = static_cast<char *>(objs[0]);
    for (void *o : objs) lo = std::min(lo, static_cast<char *>(o));
    const long stride = cp_objpool_object_stride(p);
    for (long off = -stride; off < 7 * stride; off += 8) {
      const bool is_obj = off >= 0 && off < 6 * stride && off % stride == 0;
      void *ptr = lo + off;
      const int rc = cp_objpool_push(ptr, p);
      ASSERT_EQ(rc, is_obj ? 0 : -EINVAL) << "size " << size << " offset " << off;
      if (rc == 0) {
        ASSERT_EQ(cp_objpool_pop(p), ptr);  // the only free object
      }
    }
    ASSERT_EQ(cp_objpool_push_bulk(objs, 6, p), 0);
    EXPECT_EQ(count_unique(p), 6);
    cp_objpool_free(p);
  }
}

// ---- lifetime -------------------------------------------------------------------------------

TEST(Objpool, FiniWithOutstandingObjectsReleasesOnLastDrop) {
  std::atomic<int> releases{0};
  cp_objpool *p = nullptr;
  ASSERT_EQ(cp_objpool_init(&p, 64, 16, &releases, nullptr, count_release), 0);
  std::vector<void *> out;
  for (int i = 0; i < 5; i++) out.push_back(cp_objpool_pop(p));
  cp_objpool_fini(p);  // 59 free ones go, 5 outstanding keep it alive
  EXPECT_EQ(releases.load(), 0);
  std::vector<int> rcs(4);
  std::vector<std::thread> th;
  for (int i = 0; i < 4; i++) th.emplace_back([&, i] { rcs[i] = cp_objpool_drop(out[i], p); });
  for (auto &t : th) t.join();
  for (int rc : rcs) EXPECT_EQ(rc, -EAGAIN);
  EXPECT_EQ(releases.load(), 0);
  int last = -1;
  std::thread([&] { last = cp_objpool_drop(out[4], p); }).join();
  EXPECT_EQ(last, 0);
  EXPECT_EQ(releases.load(), 1);
}

TEST(Objpool, FiniWithNothingOutstandingReleasesAtOnce) {
  std::atomic<int> releases{0};
  cp_objpool *p = nullptr;
  ASSERT_EQ(cp_objpool_init(&p, 1000, 16, &releases, nullptr, count_release), 0);
  void *o = cp_objpool_pop(p);
  EXPECT_EQ(cp_objpool_push(o, p), 0);
  cp_objpool_fini(p);
  EXPECT_EQ(releases.load(), 1);
}

TEST(Objpool, DropBeforeFiniThenFini) {
  std::atomic<int> releases{0};
  cp_objpool *p = nullptr;
  ASSERT_EQ(cp_objpool_init(&p, 3, 16, &releases, nullptr, count_release), 0);
  void *a = cp_objpool_pop(p), *b = cp_objpool_pop(p);
  EXPECT_EQ(cp_objpool_drop(a, p), -EAGAIN);  // a is gone for good
  EXPECT_EQ(cp_objpool_push(b, p), 0);
  EXPECT_EQ(cp_objpool_nr_free(p), 2u);
  cp_objpool_fini(p);
  EXPECT_EQ(releases.load(), 1);
}

TEST(Objpool, FreeRunsReleaseOnce) {
  std::atomic<int> releases{0};
  cp_objpool *p = nullptr;
  ASSERT_EQ(cp_objpool_init(&p, 10, 16, &releases, nullptr, count_release), 0);
  (void)cp_objpool_pop(p);  // outstanding: free does not care
  cp_objpool_free(p);
  EXPECT_EQ(releases.load(), 1);
  cp_objpool_free(nullptr);
  cp_objpool_fini(nullptr);
}

// ---- introspection and bounded rings ----------------------------------------------------------

unsigned sum_rings(cp_objpool *p) {
  unsigned s = cp_objpool_nr_free_overflow(p);
  for (unsigned c = 0; c < cp_nr_cpu_ids(); c++) {
    int n = cp_objpool_nr_free_cpu(p, c);
    if (cp_cpu_possible(c)) {
      EXPECT_GE(n, 0);
    } else {
      EXPECT_EQ(n, -EINVAL);
    }
    if (n > 0) s += static_cast<unsigned>(n);
  }
  return s;
}

TEST(Objpool, PerCpuIntrospection) {
  cp_objpool *p = nullptr;
  ASSERT_EQ(cp_objpool_init(&p, 100, 8, nullptr, nullptr, nullptr), 0);
  EXPECT_EQ(cp_objpool_nr_free_cpu(p, cp_nr_cpu_ids()), -EINVAL);
  EXPECT_EQ(sum_rings(p), 100u);
  EXPECT_EQ(cp_objpool_nr_free_overflow(p), 0u);
  EXPECT_GE(cp_objpool_ring_capacity(p), 100u);
  // The kernel's initial split: every possible CPU holds nr_objs / nr_possible (+1).
  unsigned possible = 0;
  for (unsigned c = 0; c < cp_nr_cpu_ids(); c++) possible += cp_cpu_possible(c);
  for (unsigned c = 0; c < cp_nr_cpu_ids(); c++)
    if (cp_cpu_possible(c)) {
      EXPECT_LE(cp_objpool_nr_free_cpu(p, c), static_cast<int>(100 / possible + 1));
    }
  void *o = cp_objpool_pop(p);
  EXPECT_EQ(sum_rings(p), 99u);
  cp_objpool_push(o, p);
  EXPECT_EQ(sum_rings(p), 100u);
  cp_objpool_free(p);
}

TEST(Objpool, BoundedRingsOverflowAndNeverFail) {
  // No cache: this test counts what lands in the rings.
  cp_objpool_attr attr{
      .ring_capacity = 3, .flags = CP_OBJPOOL_F_NOCACHE, .cache_capacity = 0, .thread_cache = 0};
  cp_objpool *p = nullptr;
  ASSERT_EQ(cp_objpool_init_attr(&p, 200, 8, nullptr, nullptr, nullptr, &attr), 0);
  EXPECT_EQ(cp_objpool_ring_capacity(p), 4u);
  EXPECT_EQ(cp_objpool_nr_free(p), 200u);
  EXPECT_GT(cp_objpool_nr_free_overflow(p), 0u);
  EXPECT_EQ(sum_rings(p), 200u);
  void *objs[200];
  EXPECT_EQ(cp_objpool_pop_bulk(p, objs, 200), 200u);
  for (int i = 0; i < 100; i++) EXPECT_EQ(cp_objpool_push(objs[i], p), 0);
  EXPECT_EQ(cp_objpool_push_bulk(objs + 100, 100, p), 0);
  EXPECT_EQ(sum_rings(p), 200u);
  for (unsigned c = 0; c < cp_nr_cpu_ids(); c++)
    if (cp_cpu_possible(c)) {
      EXPECT_LE(cp_objpool_nr_free_cpu(p, c), 4);
    }
  EXPECT_EQ(count_unique(p), 200);
  cp_objpool_free(p);
}

bool pin_to(unsigned cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  bool ok = pthread_setaffinity_np(pthread_self(), sizeof(s), &s) == 0;
  sched_yield();  // run there now
  return ok;
}

// fini takes every free object out of the pool, also those cached on other CPUs (it steals
// them), so the one object still outstanding is the last reference: its drop releases.
TEST(Objpool, FiniCollectsObjectsCachedOnOtherCpus) {
  if (cp_nr_cpu_ids() < 2 || !cp_cpu_possible(0) || !cp_cpu_possible(1))
    GTEST_SKIP() << "needs CPUs 0 and 1";
  std::atomic<int> releases{0};
  cp_objpool_attr attr{.ring_capacity = 0, .flags = 0, .cache_capacity = 16, .thread_cache = 0};
  cp_objpool *p = nullptr;
  ASSERT_EQ(cp_objpool_init_attr(&p, 64, 16, &releases, nullptr, count_release, &attr), 0);
  if (cp_objpool_cache_capacity(p) == 0) {
    cp_objpool_free(p);
    GTEST_SKIP() << "no per-CPU cache here (needs rseq and the rseq fence)";
  }
  cpu_set_t saved;
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved), 0);
  void *objs[64];
  ASSERT_EQ(cp_objpool_pop_bulk(p, objs, 64), 64u);
  if (!pin_to(0) || !pin_to(1)) {
    pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
    ASSERT_EQ(cp_objpool_push_bulk(objs, 64, p), 0);
    cp_objpool_free(p);
    GTEST_SKIP() << "cannot pin to CPUs 0 and 1";
  }
  ASSERT_TRUE(pin_to(0));
  for (int i = 0; i < 40; i++) ASSERT_EQ(cp_objpool_push(objs[i], p), 0);
  EXPECT_EQ(cp_objpool_nr_free_cpu(p, 0), 40);  // 16 of them in CPU 0's cache
  ASSERT_TRUE(pin_to(1));
  for (int i = 40; i < 63; i++) ASSERT_EQ(cp_objpool_push(objs[i], p), 0);
  cp_objpool_fini(p);  // on CPU 1: CPU 0's cache only by stealing
  EXPECT_EQ(releases.load(), 0);
  EXPECT_EQ(cp_objpool_drop(objs[63], p), 0) << "fini left free objects in the pool";
  EXPECT_EQ(releases.load(), 1);
  pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
}

// push goes to the calling CPU's ring; pop tries the calling CPU's ring first (no cache:
// this test is about the rings' order).
// Pins the calling thread to CPU 0 and then CPU 1 and restores its affinity: a reason to
// skip when that cannot work here, else NULL.
const char *cannot_use_cpus_0_and_1() {
  if (cp_nr_cpu_ids() < 2 || !cp_cpu_possible(0) || !cp_cpu_possible(1))
    return "CPUs 0 and 1 are not both possible here: nothing to tell apart";
  cpu_set_t saved;
  if (pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved) != 0)
    return "cannot read this thread's affinity";
  const bool ok = pin_to(0) && cp_current_cpu() == 0 && pin_to(1) && cp_current_cpu() == 1;
  pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
  return ok ? nullptr : "cannot pin this thread to CPU 0 and CPU 1";
}

TEST(Objpool, PushToCallingCpuRingPopLocalFirst) {
  if (const char *why = cannot_use_cpus_0_and_1()) GTEST_SKIP() << why;
  cpu_set_t saved;
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved), 0);
  cp_objpool_attr nocache{
      .ring_capacity = 0, .flags = CP_OBJPOOL_F_NOCACHE, .cache_capacity = 0, .thread_cache = 0};
  cp_objpool *p = nullptr;
  ASSERT_EQ(cp_objpool_init_attr(&p, 8, 16, nullptr, nullptr, nullptr, &nocache), 0);
  EXPECT_EQ(cp_objpool_cache_capacity(p), 0u);
  void *objs[8];
  ASSERT_EQ(cp_objpool_pop_bulk(p, objs, 8), 8u);
  ASSERT_TRUE(pin_to(0));
  ASSERT_EQ(cp_objpool_push(objs[0], p), 0);
  ASSERT_EQ(cp_objpool_push(objs[1], p), 0);
  EXPECT_EQ(cp_objpool_nr_free_cpu(p, 0), 2);
  ASSERT_TRUE(pin_to(1));
  ASSERT_EQ(cp_objpool_push(objs[2], p), 0);
  EXPECT_EQ(cp_objpool_nr_free_cpu(p, 1), 1);
  EXPECT_EQ(cp_objpool_pop(p), objs[2]);  // local ring first
  EXPECT_EQ(cp_objpool_pop(p), objs[0]);  // then CPU 0's, oldest first (a ring)
  EXPECT_EQ(cp_objpool_push(objs[2], p), 0);
  EXPECT_EQ(cp_objpool_push(objs[0], p), 0);
  pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
  for (int i = 3; i < 8; i++) ASSERT_EQ(cp_objpool_push(objs[i], p), 0);
  EXPECT_EQ(count_unique(p), 8);
  cp_objpool_free(p);
}

// The per-CPU cache: push lands in the calling CPU's cache (LIFO), and a pop on another CPU
// whose rings are all empty drains it (fence + steal), keeping the surplus on its own CPU.
TEST(Objpool, CacheIsPerCpuAndStolenWhenRingsRunDry) {
  cp_objpool_attr attr{.ring_capacity = 0, .flags = 0, .cache_capacity = 4, .thread_cache = 0};
  cp_objpool *p = nullptr;
  ASSERT_EQ(cp_objpool_init_attr(&p, 64, 16, nullptr, nullptr, nullptr, &attr), 0);
  if (cp_objpool_cache_capacity(p) == 0) {
    // Only without rseq or without the rseq fence: then the pool runs on its rings.
    EXPECT_FALSE(cp_rseq_enabled() && corepool::platform::rseq_fence_init());
    cp_objpool_free(p);
    GTEST_SKIP() << "no per-CPU cache in this process (rseq off, or no rseq fence): "
                    "nothing to steal";
  }
  if (const char *why = cannot_use_cpus_0_and_1()) {
    cp_objpool_free(p);
    GTEST_SKIP() << why << ": the cache's per-CPU placement cannot be checked";
  }
  EXPECT_EQ(cp_objpool_cache_capacity(p), 4u);
  EXPECT_EQ(cp_objpool_uses_rseq(p), 1);
  void *objs[64];
  ASSERT_EQ(cp_objpool_pop_bulk(p, objs, 64), 64u);
  EXPECT_EQ(cp_objpool_nr_free(p), 0u);
  cpu_set_t saved;
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved), 0);
  ASSERT_TRUE(pin_to(0));
  for (int i = 0; i < 3; i++) ASSERT_EQ(cp_objpool_push(objs[i], p), 0);
  EXPECT_EQ(cp_objpool_nr_free_cpu(p, 0), 3);
  EXPECT_EQ(cp_objpool_pop(p), objs[2]);  // the cache is a stack: last in, first out
  ASSERT_EQ(cp_objpool_push(objs[2], p), 0);
  ASSERT_TRUE(pin_to(1));
  // CPU 1's cache and every ring are empty: the pop drains CPU 0's cache.
  void *got = cp_objpool_pop(p);
  EXPECT_TRUE(got == objs[0] || got == objs[1] || got == objs[2]);
  EXPECT_EQ(cp_objpool_nr_free_cpu(p, 0), 0) << "a small pop steals a batch";
  EXPECT_EQ(cp_objpool_nr_free_cpu(p, 1), 2) << "the surplus stays on the thief's CPU";
  void *a = cp_objpool_pop(p), *b = cp_objpool_pop(p);
  EXPECT_NE(a, nullptr);
  EXPECT_NE(b, nullptr);
  EXPECT_EQ(cp_objpool_pop(p), nullptr);
  std::set<void *> three{got, a, b};
  EXPECT_EQ(three, (std::set<void *>{objs[0], objs[1], objs[2]}));
  pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
  // More than the caches hold: the rest goes to the rings; all come back exactly once.
  ASSERT_EQ(cp_objpool_push_bulk(objs, 64, p), 0);
  EXPECT_EQ(cp_objpool_nr_free(p), 64u);
  EXPECT_EQ(count_unique(p), 64);
  cp_objpool_free(p);
}

// ---- stop safety: a thread stopped inside push or pop --------------------------------------

// Only where the build has injection points (debug, asan, tsan, clang presets).
#ifdef COREPOOL_INJECT
std::atomic<bool> g_release_parked{false};
std::atomic<bool> g_is_parked{false};
thread_local const char *t_park_at = nullptr;

void park_hook(const char *point) {
  if (t_park_at && std::strcmp(point, t_park_at) == 0) {
    t_park_at = nullptr;
    g_is_parked = true;
    corepool::chaos::park_self_until(g_release_parked);
  }
}

// A thread stopped between reserving and publishing a multi-producer slot (the overflow ring
// here, forced by a ring capacity of 1) must not stop others popping from the CPU rings.
TEST(Objpool, StoppedPusherDoesNotBlockOtherRings) {
  cp_objpool_attr attr{
      .ring_capacity = 1, .flags = CP_OBJPOOL_F_NOCACHE, .cache_capacity = 0, .thread_cache = 0};
  cp_objpool *p = nullptr;
  ASSERT_EQ(cp_objpool_init_attr(&p, 8, 16, nullptr, nullptr, nullptr, &attr), 0);
  void *objs[8];
  ASSERT_EQ(cp_objpool_pop_bulk(p, objs, 8), 8u);
  cp_inject_hook = park_hook;
  g_release_parked = false;
  g_is_parked = false;
  std::thread a([&] {
    pin_to(0);
    EXPECT_EQ(cp_objpool_push(objs[0], p), 0);  // fills CPU 0's ring (capacity 1)
    t_park_at = "cpu_ring.push.locked";
    EXPECT_EQ(cp_objpool_push(objs[1], p), 0);  // ring full -> overflow; parked inside
  });
  while (!g_is_parked) std::this_thread::yield();
  // objs[0] is in CPU 0's ring: another thread gets it although A is stopped mid-push.
  void *got = cp_objpool_pop(p);
  EXPECT_EQ(got, objs[0]);
  // Pushes still succeed (never fail), and what went to CPU rings is poppable.
  for (int i = 2; i < 8; i++) EXPECT_EQ(cp_objpool_push(objs[i], p), 0);
  g_release_parked = true;
  a.join();
  cp_inject_hook = nullptr;
  EXPECT_EQ(cp_objpool_push(got, p), 0);
  EXPECT_EQ(count_unique(p), 8);
  cp_objpool_free(p);
}

// A popper stopped after reading a slot, before its CAS, must not get that object once
// someone else took it (R3), and must not stop the others.
TEST(Objpool, StoppedPopperLosesItsClaim) {
  cp_objpool *p = nullptr;
  // No cache: the pop must reach the ring (a cache would hold objs[0] on small machines).
  cp_objpool_attr nocache{
      .ring_capacity = 0, .flags = CP_OBJPOOL_F_NOCACHE, .cache_capacity = 0, .thread_cache = 0};
  ASSERT_EQ(cp_objpool_init_attr(&p, 4, 16, nullptr, nullptr, nullptr, &nocache), 0);
  void *objs[4];
  ASSERT_EQ(cp_objpool_pop_bulk(p, objs, 4), 4u);
  pin_to(0);
  ASSERT_EQ(cp_objpool_push(objs[0], p), 0);  // the only free object, CPU 0's ring
  cp_inject_hook = park_hook;
  g_release_parked = false;
  g_is_parked = false;
  void *a_got = reinterpret_cast<void *>(1);
  std::thread a([&] {
    pin_to(0);
    t_park_at = "cpu_ring.pop.read";
    a_got = cp_objpool_pop(p);
  });
  while (!g_is_parked) std::this_thread::yield();
  void *mine = cp_objpool_pop(p);  // A read objs[0]'s slot but did not claim it
  EXPECT_EQ(mine, objs[0]);
  ASSERT_EQ(cp_objpool_push(objs[1], p), 0);  // may reuse slots; A's CAS must fail
  ASSERT_EQ(cp_objpool_push(objs[2], p), 0);
  g_release_parked = true;
  a.join();
  cp_inject_hook = nullptr;
  EXPECT_NE(a_got, mine) << "the stopped popper got an object someone else holds";
  EXPECT_TRUE(a_got == objs[1] || a_got == objs[2]);
  cpu_set_t all;
  CPU_ZERO(&all);
  for (unsigned c = 0; c < cp_nr_cpu_ids(); c++) CPU_SET(c, &all);
  pthread_setaffinity_np(pthread_self(), sizeof(all), &all);
  cp_objpool_push(mine, p);
  cp_objpool_push(a_got, p);
  cp_objpool_push(objs[3], p);
  EXPECT_EQ(count_unique(p), 4);
  cp_objpool_free(p);
}

#endif  // COREPOOL_INJECT

}  // namespace
