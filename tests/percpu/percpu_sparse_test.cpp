// Resident memory with many possible CPUs (256 simulated): only CPUs that used a chunk have
// resident pages in it, across allocation, use, free and reuse. Its own process: the CPU
// count must be set before the first per-CPU allocation.
#include <gtest/gtest.h>

#include <corepool/percpu.h>

#include <sched.h>

#include <cstring>
#include <thread>
#include <vector>

#include "percpu/percpu_internal.h"
#include "platform/memory.h"
#include "platform/topology.h"

namespace {
namespace pc = corepool::pcpu;
namespace pf = corepool::platform;

// Pages resident in units [lo, hi) of every chunk.
long resident_in_units(unsigned lo, unsigned hi) {
  long n = 0;
  for (const pc::chunk_info &c : pc::chunks())
    for (unsigned u = lo; u < hi && u < c.units; u++)
      n += pf::os_resident_pages(c.base + u * c.stride, c.stride);
  return n;
}

// CPUs this process's threads can run on: the possible ones, and any the kernel runs them on
// beyond a smaller possible mask (a container's /sys/devices/system/cpu/possible).
unsigned real_cpus() {
  unsigned n = cp_nr_cpu_ids();
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (unsigned c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &set) && c + 1 > n) n = c + 1;
  return n;
}

TEST(PercpuSparse, UnusedCpusHaveNoResidentPages) {
  const unsigned real = real_cpus();
  ASSERT_LE(real, 255u) << "machine already has 256 CPUs: nothing to simulate";
  pf::testing::set_nr_cpu_ids(256);
  ASSERT_EQ(cp_nr_cpu_ids(), 256u);

  // Allocate counters and structs; use them from threads (they run on real CPUs only).
  std::vector<void *> ctr, obj;
  for (int i = 0; i < 3000; i++) ctr.push_back(cp_alloc_percpu(8, 8));
  for (int i = 0; i < 200; i++) obj.push_back(cp_alloc_percpu(512, 64));
  for (void *p : obj) ASSERT_NE(p, nullptr);
  auto use = [&] {
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; t++)
      ts.emplace_back([&] {
        for (int r = 0; r < 20; r++) {
          for (void *p : ctr) cp_this_cpu_add_u64(p, 1);
          for (void *p : obj) std::memset(cp_this_cpu_ptr(p), 7, 512);
        }
      });
    for (auto &t : ts) t.join();
  };
  use();
  for (void *p : ctr) ASSERT_EQ(cp_percpu_sum_u64(p), 80u);
  // A read-only look at an unused CPU sees zeros and faults nothing in.
  EXPECT_EQ(*static_cast<const uint64_t *>(cp_per_cpu_cptr(ctr[0], 200)), 0u);

  const long used = resident_in_units(0, real);
  const long unused = resident_in_units(real, 256);
  EXPECT_GT(used, 0);
  EXPECT_EQ(unused, 0) << "pages of never-used CPUs became resident";
  cp_percpu_stats s;
  cp_percpu_get_stats(&s);
  // Populated: at most the real CPUs' units plus the fallback unit, per chunk.
  EXPECT_LE(s.populated_bytes, s.nr_chunks * (real + 1) * pc::kUnitSize);

  // Free everything and allocate again: reuse zeroes only the units that were used.
  for (void *p : ctr) cp_free_percpu(p);
  for (void *p : obj) cp_free_percpu(p);
  ctr.clear();
  obj.clear();
  for (int i = 0; i < 3000; i++) ctr.push_back(cp_alloc_percpu(8, 8));
  for (int i = 0; i < 200; i++) obj.push_back(cp_alloc_percpu(512, 64));
  for (void *p : ctr) ASSERT_EQ(cp_percpu_sum_u64(p), 0u) << "reused counter not zeroed";
  for (void *p : obj)
    for (unsigned c = 0; c < real; c++)
      ASSERT_EQ(static_cast<const uint8_t *>(cp_per_cpu_cptr(p, c))[511], 0);
  use();
  EXPECT_EQ(resident_in_units(real, 256), 0);

  // Writing one unused CPU's copy makes only that CPU's page resident.
  std::memset(cp_per_cpu_ptr(obj[0], 100), 1, 512);
  EXPECT_EQ(resident_in_units(real, 100), 0);
  EXPECT_GE(resident_in_units(100, 101), 1);
  EXPECT_EQ(resident_in_units(101, 256), 0);

  for (void *p : ctr) cp_free_percpu(p);
  for (void *p : obj) cp_free_percpu(p);
  pc::reclaim_now();
  cp_percpu_get_stats(&s);
  EXPECT_EQ(s.nr_cur_alloc, 0u);
  EXPECT_LE(s.nr_chunks, 1u);
}

}  // namespace
