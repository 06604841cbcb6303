// corepool-bench: the mixed-size area loop of A1, A4 (threads, c_areas.cpp) and A5 (processes,
// c_shared.cpp): 256/n live allocations of 64 B-4 KiB from a fixed xorshift sequence; each step
// frees a random live allocation and allocates a new random size in its place.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "bench.h"

namespace cpb {

inline constexpr unsigned kMixedLive = 256;  // allocations kept live over all workers

// Sizes 64 B .. 4 KiB, mostly small (same sequence for everyone).
inline size_t mixed_size(uint64_t &s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  static const size_t sizes[8] = {64, 64, 128, 192, 256, 512, 1024, 4096};
  return sizes[s & 7];
}

// Impl: uintptr_t alloc(size_t); void free(uintptr_t, size_t). Worker `tid` of `workers`
// runs pairs until h.stop (32 between polls); o gets the pair and failure counts.
template <class Impl>
void mixed_pairs(Impl &impl, int workers, int tid, Harness &h, ThreadOut &o) {
  const unsigned live = std::max(8u, kMixedLive / unsigned(workers));
  uintptr_t addr[kMixedLive];
  size_t size[kMixedLive];
  uint64_t rng = 0x9E3779B97F4A7C15ull * (2 * uint64_t(tid) + 1);  // tid 0: A1's sequence
  for (unsigned i = 0; i < live; i++) {
    size[i] = mixed_size(rng);
    addr[i] = impl.alloc(size[i]);
  }
  uint64_t n = 0;
  while (n == 0 || !h.stop.load(std::memory_order_relaxed)) {
    for (int k = 0; k < 32; k++) {
      unsigned i = unsigned(rng >> 20) % live;
      if (addr[i]) impl.free(addr[i], size[i]);
      size[i] = mixed_size(rng);
      addr[i] = impl.alloc(size[i]);
      if (!addr[i]) o.failures++;
      n++;
    }
  }
  for (unsigned i = 0; i < live; i++)
    if (addr[i]) impl.free(addr[i], size[i]);
  o.ops = n;
}

}  // namespace cpb
