// platform/futex.h and platform/thread.h: wait, wake, timeouts, errno, thread start/join.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>

#include "platform/futex.h"
#include "platform/thread.h"

namespace cpl = corepool::platform;

namespace {
std::atomic<uint32_t> g_word{0};
std::atomic<int> g_ran{0};

void waiter() {
  // Sleeps until the word leaves 0 (a spurious return only loops).
  while (g_word.load(std::memory_order_acquire) == 0) cpl::futex_wait(g_word, 0);
  g_ran.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

TEST(PlatformFutex, WaitReturnsAtOnceWhenTheWordDiffers) {
  std::atomic<uint32_t> w{5};
  errno = 1234;
  cpl::futex_wait(w, 4);  // never sleeps: the kernel sees 5, not 4
  EXPECT_EQ(errno, 1234);
}

TEST(PlatformFutex, TimedWaitReturnsAfterItsTimeoutAndKeepsErrno) {
  std::atomic<uint32_t> w{0};
  errno = 4321;
  auto t0 = std::chrono::steady_clock::now();
  cpl::futex_wait(w, 0, 20 * 1000 * 1000);  // the kernel reports ETIMEDOUT
  auto dt = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(errno, 4321);
  EXPECT_GE(dt, std::chrono::milliseconds(15));  // it slept (timer slack aside)
}

TEST(PlatformThread, StartWakeJoin) {
  g_word.store(0, std::memory_order_relaxed);
  g_ran.store(0, std::memory_order_relaxed);
  cpl::os_thread t;
  errno = 77;
  ASSERT_TRUE(t.start(waiter));
  EXPECT_EQ(errno, 77);
  EXPECT_TRUE(t.live());
  g_word.store(1, std::memory_order_release);
  cpl::futex_wake(g_word, 1);
  t.join();  // returns only when the waiter saw the wake (or the new value)
  EXPECT_FALSE(t.live());
  EXPECT_EQ(g_ran.load(std::memory_order_relaxed), 1);
}
