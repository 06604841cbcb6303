// qmempool in checked mode (COREPOOL_CHECK=1: ctest sets it for this binary). A double
// free, a foreign pointer (a stack buffer, an interior pointer) and a duplicate inside a
// bulk free are each reported with one line on stderr and cp_last_error(), and leave the
// pool intact: nothing is handed out twice, no foreign pointer is ever handed out or given
// to the backing allocator, and backing frees == backing allocs after destroy.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <corepool/error.h>
#include <corepool/qmempool.h>

#include "chaos.h"

namespace {

bool checked_env() {
  const char *v = std::getenv("COREPOOL_CHECK");
  return v && std::strcmp(v, "1") == 0;
}

// malloc-backed, counting, remembers what it handed out (signal safety is not needed here).
struct counting_backing {
  std::atomic<long> allocs{0}, frees{0}, foreign_frees{0};
  std::atomic<long> live_bytes{0};
  cp_qmempool_backing ops{&alloc_fn, &free_fn, this};
  static void *alloc_fn(void *ctx) {
    auto *b = static_cast<counting_backing *>(ctx);
    b->allocs.fetch_add(1, std::memory_order_relaxed);
    auto *o = static_cast<uint64_t *>(std::aligned_alloc(64, 64));
    o[0] = 0xc0ffee;  // a mark: only objects of ours carry it
    return o;
  }
  static void free_fn(void *ctx, void *obj) {
    auto *b = static_cast<counting_backing *>(ctx);
    if (static_cast<uint64_t *>(obj)[0] != 0xc0ffee) {
      b->foreign_frees.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    b->frees.fetch_add(1, std::memory_order_relaxed);
    std::free(obj);
  }
};

class QmempoolChecked : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(checked_env()) << "run with COREPOOL_CHECK=1 (ctest sets it)";
    ASSERT_EQ(cp_qmempool_create(&p, 16, 64, 8, 64, &b.ops), 0);
  }
  void TearDown() override {
    cp_qmempool_destroy(p);
    EXPECT_EQ(b.frees.load(), b.allocs.load());
    EXPECT_EQ(b.foreign_frees.load(), 0);
  }
  // Allocates n objects, requires them distinct and not in `never`, frees them back.
  void expect_distinct(int n, const std::set<void *> &never = {}) {
    std::set<void *> seen;
    std::vector<void *> got;
    for (int i = 0; i < n; i++) {
      void *o = cp_qmempool_alloc(p);
      ASSERT_NE(o, nullptr);
      EXPECT_TRUE(seen.insert(o).second) << "object " << o << " handed out twice";
      EXPECT_EQ(never.count(o), 0u) << "foreign pointer " << o << " handed out";
      got.push_back(o);
    }
    for (void *o : got) cp_qmempool_free(p, o);
  }
  counting_backing b;
  cp_qmempool *p = nullptr;
};

std::string capture(void (*fn)(void *), void *arg) {
  testing::internal::CaptureStderr();
  fn(arg);
  return testing::internal::GetCapturedStderr();
}

int lines(const std::string &s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST_F(QmempoolChecked, DoubleFreeIsReportedAndNothingIsHandedOutTwice) {
  void *a = cp_qmempool_alloc(p);
  ASSERT_NE(a, nullptr);
  cp_qmempool_free(p, a);
  cp_clear_error();
  struct arg {
    cp_qmempool *p;
    void *a;
  } x{p, a};
  const std::string err = capture(
      [](void *v) {
        auto *x = static_cast<arg *>(v);
        cp_qmempool_free(x->p, x->a);
      },
      &x);
  EXPECT_NE(err.find("corepool: cp_qmempool_free: double free (0x"), std::string::npos) << err;
  EXPECT_EQ(lines(err), 1) << err;
  EXPECT_NE(std::strstr(cp_last_error(), "double free"), nullptr) << cp_last_error();
  expect_distinct(100);
}

TEST_F(QmempoolChecked, ForeignPointersAreReportedNeverHandedOut) {
  alignas(64) char stack_buf[64];
  void *a = cp_qmempool_alloc(p);
  ASSERT_NE(a, nullptr);
  void *inside = static_cast<char *>(a) + 8;
  for (void *bad : {static_cast<void *>(stack_buf), inside}) {
    cp_clear_error();
    testing::internal::CaptureStderr();
    cp_qmempool_free(p, bad);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("cp_qmempool_free: not an object of this pool"), std::string::npos) << err;
    EXPECT_NE(std::strstr(cp_last_error(), "not an object of this pool"), nullptr);
  }
  cp_qmempool_free(p, a);  // still held: accepted
  expect_distinct(100, {stack_buf, inside});
}

TEST_F(QmempoolChecked, BulkFreeTakesEachObjectOnce) {
  void *objs[8];
  ASSERT_EQ(cp_qmempool_alloc_bulk(p, objs, 8), 8);
  alignas(64) char stack_buf[64];
  // Every object twice, and a foreign one: 8 accepted, 9 reported.
  void *twice[17];
  for (int i = 0; i < 8; i++) twice[i] = twice[i + 8] = objs[i];
  twice[16] = stack_buf;
  testing::internal::CaptureStderr();
  cp_qmempool_free_bulk(p, twice, 17);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(lines(err), 9) << err;
  expect_distinct(100, {stack_buf});
}

// Threads free the same held objects at once: each object is taken back exactly once.
TEST_F(QmempoolChecked, RacingDoubleFreesAcceptExactlyOne) {
  constexpr int kObjs = 48, kThreads = 4;
  const int rounds = 40 / corepool::chaos::kTsanScale + 1;
  testing::internal::CaptureStderr();  // the expected reports
  for (int r = 0; r < rounds; r++) {
    std::vector<void *> held(kObjs);
    ASSERT_EQ(cp_qmempool_alloc_bulk(p, held.data(), kObjs), kObjs);
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; t++)
      ts.emplace_back([&, t] {
        for (int i = 0; i < kObjs; i++) cp_qmempool_free(p, held[(i + t * 5) % kObjs]);
      });
    for (auto &t : ts) t.join();
    // Exactly the kObjs objects are in the pool, once each.
    std::vector<void *> back(kObjs + 16);
    const int k = cp_qmempool_alloc_bulk(p, back.data(), kObjs + 16);
    ASSERT_EQ(k, kObjs + 16);
    std::set<void *> seen(back.begin(), back.end());
    ASSERT_EQ(seen.size(), back.size()) << "round " << r << ": an object handed out twice";
    cp_qmempool_free_bulk(p, back.data(), k);
  }
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(lines(err), rounds * kObjs * (kThreads - 1));
}

}  // namespace
