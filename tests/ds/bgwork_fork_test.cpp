// bgwork across fork(): work queued or running in the parent at the fork runs in the child
// too (a new worker starts there), and both sides keep scheduling.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "bgwork_counted.h"
#include "ds/bgwork.h"

namespace {
using namespace corepool::ds;
using namespace std::chrono_literals;

// Waits for a child and returns its exit status (-1 when it did not exit normally).
int reap(pid_t pid) {
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(BgWorkFork, QueuedAndRunningWorkRunsInTheChild) {
  bgwork_start();
  counted running, queued;
  running.block.store(true, std::memory_order_relaxed);
  ASSERT_TRUE(schedule_work(&running.w));
  while (!(running.w.state.load(std::memory_order_acquire) & 2)) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(schedule_work(&queued.w));  // behind the running one
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    running.block.store(false, std::memory_order_release);  // the child's copy
    flush_work(&running.w);
    flush_work(&queued.w);
    if (running.runs.load(std::memory_order_relaxed) != 1) _exit(1);  // ran again, from start
    if (queued.runs.load(std::memory_order_relaxed) != 1) _exit(2);
    counted later;  // and the child keeps a worker
    if (!schedule_work(&later.w)) _exit(3);
    flush_work(&later.w);
    _exit(later.runs.load(std::memory_order_relaxed) == 1 ? 0 : 4);
  }
  running.block.store(false, std::memory_order_release);
  flush_work(&running.w);
  flush_work(&queued.w);
  EXPECT_EQ(running.runs.load(std::memory_order_relaxed), 1);
  EXPECT_EQ(queued.runs.load(std::memory_order_relaxed), 1);
  EXPECT_EQ(reap(pid), 0);
}

// Forks at random moments while the worker runs a stream of items; each child must see every
// item run to completion and schedule new work; the parent goes on as if nothing happened.
TEST(BgWorkFork, ForkAtRandomMomentsUnderLoad) {
  bgwork_start();
  constexpr int kItems = 8, kForks = 40;
  std::vector<counted> items(kItems);
  std::mt19937 rng(12345);
  // Other threads keep the CPUs busy (they do not schedule: see bgwork.h on fork).
  std::atomic<bool> stop{false};
  std::atomic<int> running{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 2; t++)
    load.emplace_back([&] {
      running.fetch_add(1, std::memory_order_relaxed);
      volatile unsigned x = 0;
      while (!stop.load(std::memory_order_relaxed)) x = x + 1;
    });
  // No fork before every thread is past its start: a sanitizer runtime's thread start
  // allocates, and its allocator (GCC 12's ASan) has no fork handler, so a fork inside it
  // leaves the child's allocator locked. Forks at random moments of the pool's own work are
  // what this test is about; the worker is started by bgwork_start and has run one item.
  counted warm;
  ASSERT_TRUE(schedule_work(&warm.w));
  flush_work(&warm.w);
  while (running.load(std::memory_order_relaxed) < 2) std::this_thread::yield();
  int scheduled[kItems] = {};
  for (int f = 0; f < kForks; f++) {
    for (int i = 0; i < kItems; i++)
      if (schedule_work(&items[i].w)) scheduled[i]++;
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = 0; i < kItems; i++) {
        flush_work(&items[i].w);  // returns: nothing stays busy in the child
        int before = items[i].runs.load(std::memory_order_relaxed);
        if (!schedule_work(&items[i].w)) _exit(10 + i);
        flush_work(&items[i].w);
        if (items[i].runs.load(std::memory_order_relaxed) != before + 1) _exit(30 + i);
      }
      _exit(0);
    }
    ASSERT_EQ(reap(pid), 0) << "fork " << f;
  }
  stop.store(true, std::memory_order_relaxed);
  for (auto &t : load) t.join();
  for (int i = 0; i < kItems; i++) {
    flush_work(&items[i].w);
    EXPECT_EQ(items[i].runs.load(std::memory_order_relaxed), scheduled[i]) << i;
  }
}

}  // namespace
