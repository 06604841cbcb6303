// objpool in checked mode (COREPOOL_CHECK=1: ctest sets it for this binary). A double push
// (also inside one push_bulk, and from racing threads), a push of an object still in the
// pool, a foreign pointer, a push after fini and a double drop are each refused with the
// documented error and one line on stderr, and the pool stays intact: nr_free never exceeds
// nr_objs, nothing is handed out twice, the pool is released exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <corepool/error.h>
#include <corepool/objpool.h>

#include "chaos.h"

namespace {

bool checked_env() {
  const char *v = std::getenv("COREPOOL_CHECK");
  return v && std::strcmp(v, "1") == 0;
}

int lines(const std::string &s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

std::atomic<int> g_releases{0};
int count_release(cp_objpool *, void *) {
  g_releases.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

class ObjpoolChecked : public testing::Test {
 protected:
  static constexpr int kObjs = 64;
  void SetUp() override {
    ASSERT_TRUE(checked_env()) << "run with COREPOOL_CHECK=1 (ctest sets it)";
    g_releases.store(0);
    ASSERT_EQ(cp_objpool_init(&p, kObjs, 32, nullptr, nullptr, count_release), 0);
  }
  void TearDown() override {
    if (p) cp_objpool_fini(p);
    EXPECT_EQ(g_releases.load(), 1);
  }
  // Pops everything: distinct, exactly kObjs; pushes all back.
  void expect_intact() {
    EXPECT_EQ(cp_objpool_nr_free(p), static_cast<unsigned>(kObjs));
    std::vector<void *> all;
    while (void *o = cp_objpool_pop(p)) all.push_back(o);
    EXPECT_EQ(std::set<void *>(all.begin(), all.end()).size(), all.size()) << "handed out twice";
    EXPECT_EQ(all.size(), static_cast<size_t>(kObjs));
    for (void *o : all) EXPECT_EQ(cp_objpool_push(o, p), 0);
  }
  // push(obj) must fail with err and one stderr line containing `what`.
  void expect_refused(void *obj, int err, const char *what) {
    cp_clear_error();
    testing::internal::CaptureStderr();
    EXPECT_EQ(cp_objpool_push(obj, p), err) << what;
    const std::string out = testing::internal::GetCapturedStderr();
    EXPECT_EQ(out.rfind("corepool: cp_objpool_push: ", 0), 0u) << out;
    EXPECT_NE(out.find(what), std::string::npos) << out;
    EXPECT_EQ(lines(out), 1) << out;
    EXPECT_NE(std::strstr(cp_last_error(), what), nullptr) << cp_last_error();
  }
  cp_objpool *p = nullptr;
};

TEST_F(ObjpoolChecked, DoublePushIsRefused) {
  void *a = cp_objpool_pop(p);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(cp_objpool_push(a, p), 0);
  expect_refused(a, -EALREADY, "already free in the pool");
  expect_refused(a, -EALREADY, "already free in the pool");  // the kernel's SIGILL case
  expect_intact();
}

TEST_F(ObjpoolChecked, PushOfAnObjectNeverPoppedIsRefused) {
  void *a = cp_objpool_pop(p);
  ASSERT_NE(a, nullptr);
  void *b = cp_objpool_pop(p);  // a neighbour, then put back
  ASSERT_EQ(cp_objpool_push(b, p), 0);
  expect_refused(b, -EALREADY, "already free in the pool");
  EXPECT_EQ(cp_objpool_push(a, p), 0);
  expect_intact();
}

TEST_F(ObjpoolChecked, ForeignPointerIsRefused) {
  alignas(64) char buf[64];
  expect_refused(buf, -EINVAL, "not an object of this pool");
  void *a = cp_objpool_pop(p);
  ASSERT_NE(a, nullptr);
  expect_refused(static_cast<char *>(a) + 8, -EINVAL, "not an object of this pool");
  EXPECT_EQ(cp_objpool_push(a, p), 0);
  expect_intact();
}

TEST_F(ObjpoolChecked, PushBulkWithADuplicatePushesNothing) {
  void *v[4];
  ASSERT_EQ(cp_objpool_pop_bulk(p, v, 3), 3u);
  v[3] = v[1];
  testing::internal::CaptureStderr();
  EXPECT_EQ(cp_objpool_push_bulk(v, 4, p), -EALREADY);
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("corepool: cp_objpool_push_bulk: already free in the pool"), std::string::npos)
      << out;
  EXPECT_EQ(cp_objpool_nr_free(p), static_cast<unsigned>(kObjs - 3));
  EXPECT_EQ(cp_objpool_push_bulk(v, 3, p), 0);  // still held: all accepted
  expect_intact();
}

TEST_F(ObjpoolChecked, RacingDoublePushesAcceptExactlyOne) {
  constexpr int kThreads = 4;
  const int rounds = 40 / corepool::chaos::kTsanScale + 1;
  testing::internal::CaptureStderr();
  std::atomic<int> accepted{0};
  for (int r = 0; r < rounds; r++) {
    std::vector<void *> held(kObjs);
    ASSERT_EQ(cp_objpool_pop_bulk(p, held.data(), kObjs), static_cast<unsigned>(kObjs));
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; t++)
      ts.emplace_back([&, t] {
        for (int i = 0; i < kObjs; i++)
          if (cp_objpool_push(held[(i + t * 5) % kObjs], p) == 0)
            accepted.fetch_add(1, std::memory_order_relaxed);
      });
    for (auto &t : ts) t.join();
    ASSERT_EQ(accepted.load(), (r + 1) * kObjs) << "round " << r;
    ASSERT_EQ(cp_objpool_nr_free(p), static_cast<unsigned>(kObjs));
  }
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(lines(out), rounds * kObjs * (kThreads - 1));
  expect_intact();
}

TEST_F(ObjpoolChecked, PushAfterFiniIsRefusedAndDropStillReleases) {
  void *a = cp_objpool_pop(p);
  ASSERT_NE(a, nullptr);
  cp_objpool *q = p;
  cp_objpool_fini(q);
  p = nullptr;                      // TearDown must not fini again
  EXPECT_EQ(g_releases.load(), 0);  // a is outstanding
  cp_clear_error();
  testing::internal::CaptureStderr();
  EXPECT_EQ(cp_objpool_push(a, q), -ESHUTDOWN);
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("corepool: cp_objpool_push: push after fini"), std::string::npos) << out;
  EXPECT_EQ(cp_objpool_drop(a, q), 0);  // the last reference: released now
  EXPECT_EQ(g_releases.load(), 1);
}

TEST_F(ObjpoolChecked, DoubleDropIsRefusedAndThePoolNotReleasedEarly) {
  void *a = cp_objpool_pop(p);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(cp_objpool_drop(a, p), -EAGAIN);
  testing::internal::CaptureStderr();
  EXPECT_EQ(cp_objpool_drop(a, p), -EINVAL);
  EXPECT_EQ(cp_objpool_push(a, p), -EINVAL);  // given up for good
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("corepool: cp_objpool_drop: "), std::string::npos) << out;
  EXPECT_EQ(lines(out), 2) << out;
  void *b = cp_objpool_pop(p);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(cp_objpool_drop(b, p), -EAGAIN);  // the pool's reference remains
  EXPECT_EQ(g_releases.load(), 0);
  EXPECT_EQ(cp_objpool_nr_free(p), static_cast<unsigned>(kObjs - 2));
}

}  // namespace
