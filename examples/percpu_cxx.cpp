// percpu<T>, percpu_counter and percpu_pool<T> example: per-CPU statistics.
#include <corepool/percpu.hpp>
#include <corepool/percpu_pool.hpp>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

struct stats {
  uint64_t packets;
  uint64_t bytes;
};

int main() {
  corepool::percpu_counter requests;  // exact: one restartable sequence per add
  std::vector<std::thread> th;
  for (int t = 0; t < 4; t++)
    th.emplace_back([&] {
      for (int i = 0; i < 100000; i++) requests.inc();
    });
  for (auto &t : th) t.join();
  std::printf("requests: %llu\n", static_cast<unsigned long long>(requests.sum()));

  // Per-CPU areas ready for contexts that cannot allocate (signal handlers, RT threads).
  corepool::percpu_pool<stats> pool(2, 8);
  pool.fill();
  corepool::percpu<stats> s = pool.alloc();  // lock-free; empty when the pool is
  if (!s) return 1;
  s.add(&stats::packets, 3);  // exact add to one field of this CPU's copy
  s.add(&stats::bytes, 4500);
  std::printf("packets %llu, bytes %llu, %d areas still cached\n",
              static_cast<unsigned long long>(s.sum(&stats::packets)),
              static_cast<unsigned long long>(s.sum(&stats::bytes)), pool.nr());
  return requests.sum() == 400000 ? 0 : 1;
}
