// gen_pool: what its files share beyond the format (layout.h) and the hint protocol
// (hints.h): the algorithm request, the growth hook's entry points, the add lock.
#pragma once

#include <cstddef>
#include <cstdint>

#include "genpool/layout.h"

namespace corepool::genpool {

struct algo_req {
  cp_genpool_algo algo;
  uint64_t value;  // align bytes or fixed offset
};
// Checks `data` for `algo` (cp_last_error() set and false when it is unusable).
bool decode_algo(cp_genpool_algo algo, const void *data, algo_req *out) noexcept;

// Home granule of `cpu` in chunk c for a spread pool: the CPUs' homes are spread evenly over
// the chunk, cpu * home_stride with home_stride = granules / nr_cpu_ids rounded down to a
// multiple of 256 (one cache line of map words), so threads on different CPUs claim, free
// and lower hints on different cache lines. (A chunk of fewer than 256 granules per CPU has
// every home at 0: its map is too small to give each CPU a line.)
inline uint64_t home_granule(chunk *c, unsigned cpu) noexcept {
  uint64_t h = cpu * c->home_stride;
  return h < c->nbits ? h : 0;  // a CPU the chunk's adder did not know of (shared pools)
}

// Growth hook (grow.cpp): queues the hook when avail is under the threshold.
void note_growth(cp_gen_pool *pool) noexcept;
void stop_growth(cp_gen_pool *pool) noexcept;

}  // namespace corepool::genpool
