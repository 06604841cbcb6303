// The harness itself: it must really migrate, signal and park, and fail on time.
#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "chaos.h"

namespace {
using namespace std::chrono_literals;
namespace chaos = corepool::chaos;

std::atomic<int> g_bad_worker{0};
void check_worker(int worker, void *) {
  if (chaos::worker_id() != worker || !chaos::in_signal_handler()) g_bad_worker++;
}

TEST(Chaos, StormsAndMigrates) {
  chaos::options opt;
  opt.threads = 8;
  opt.signal_storm = true;
  std::atomic<int> cpus_seen_mask{0};
  auto rep = chaos::run(
      opt,
      [&](int w) {
        EXPECT_EQ(chaos::worker_id(), w);
        // At least 300 ms, and on a machine with CPUs to spare until the workers together
        // have run on two of them (a loaded machine may keep them on one for a while; the
        // 10 s cap only bounds a harness that does not migrate, which then fails below).
        const auto start = std::chrono::steady_clock::now();
        const bool want_two = std::thread::hardware_concurrency() > 1;
        for (auto now = start;
             now < start + 300ms ||
             (want_two && __builtin_popcount(cpus_seen_mask.load(std::memory_order_relaxed)) < 2 &&
              now < start + 10s);
             now = std::chrono::steady_clock::now()) {
          int c = sched_getcpu();
          if (c >= 0 && c < 31) cpus_seen_mask.fetch_or(1 << c, std::memory_order_relaxed);
        }
      },
      check_worker, nullptr);
  EXPECT_TRUE(rep.in_time);
  EXPECT_GT(rep.signals, 100u);  // 10 kHz for 0.3 s
  EXPECT_EQ(g_bad_worker.load(), 0);
  EXPECT_EQ(chaos::worker_id(), -1);
  if (std::thread::hardware_concurrency() > 1) {
    EXPECT_GT(rep.migrations, 10u);
    EXPECT_GT(__builtin_popcount(cpus_seen_mask.load(std::memory_order_relaxed)), 1);
  }
}

// A parked worker is stopped while the others keep going.
TEST(Chaos, ParksThreadsWhileOthersRun) {
  chaos::options opt;
  opt.threads = 4;
  opt.migrate = false;
  opt.park = true;
  opt.park_for = 30ms;
  opt.park_every = 10ms;
  opt.deadline = 20s;
  std::atomic<long> progress[4] = {};
  std::atomic<long> max_gap_ms{0};
  // Until the parker has parked three times (on a loaded machine it may run rarely), and at
  // least 100 ms; the harness's deadline ends a run in which it never does.
  auto rep = chaos::run(opt, [&](int w) {
    auto last = std::chrono::steady_clock::now();
    const auto min_end = last + 100ms;
    while ((last < min_end || chaos::parks_so_far() < 3) && !chaos::should_stop()) {
      progress[w]++;
      auto now = std::chrono::steady_clock::now();
      long gap = std::chrono::duration_cast<std::chrono::milliseconds>(now - last).count();
      long prev = max_gap_ms.load();
      while (gap > prev && !max_gap_ms.compare_exchange_weak(prev, gap)) {
      }
      last = now;
    }
  });
  EXPECT_TRUE(rep.in_time);
  EXPECT_GE(rep.parks, 3u);
  EXPECT_GE(max_gap_ms.load(), 25);  // some worker really stood still for a park
  for (auto &p : progress) EXPECT_GT(p.load(), 0);
}

// A body that never finishes on its own makes run() report failure, not hang.
TEST(Chaos, DeadlineFailsInsteadOfHanging) {
  chaos::options opt;
  opt.threads = 2;
  opt.deadline = 200ms;
  auto rep = chaos::run(opt, [](int) {
    while (!chaos::should_stop()) std::this_thread::sleep_for(1ms);
  });
  EXPECT_FALSE(rep.in_time);
}

}  // namespace
