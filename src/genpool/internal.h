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

// ---- chunk walks ----------------------------------------------------------------------------
// Every walk of a pool's chunk list goes through these. Private pools: plain offsets. Shared
// pools: the region may have been written by a less trusted process, and peers add chunks
// after attach, so each step requires L1 (the next offset above this one) and a chunk record
// inside the trusted bytes; a chunk beyond what this handle validated so far is validated in
// full first (validate.cpp). A chunk that fails ends the walk (as if the list ended there).
// Acquire pairs with add's release publication: the chunk's fields and zeroed maps are seen.
chunk *validate_next(cp_gen_pool *p, int64_t prev, int64_t off) noexcept;
inline chunk *walk_to(cp_gen_pool *p, int64_t prev, int64_t off) noexcept {
  if (!off) return nullptr;
  if (!p->shared) return at(p->hdr, off);
  if (__builtin_expect(off > prev && off <= p->valid_upto.load(std::memory_order_acquire), 1))
    return at(p->hdr, off);
  return validate_next(p, prev, off);
}
inline chunk *first_chunk(cp_gen_pool *p) noexcept {
  return walk_to(p, 0, p->hdr->first.load(std::memory_order_acquire));
}
inline chunk *next_chunk(cp_gen_pool *p, chunk *c) noexcept {
  return walk_to(p, off_of(p->hdr, c), c->next.load(std::memory_order_acquire));
}
inline chunk *find_chunk(cp_gen_pool *p, uint64_t addr) noexcept {
  header *h = p->hdr;
  for (chunk *c = first_chunk(p); c; c = next_chunk(p, c)) {
    const uint64_t s = chunk_start(h, c);
    if (addr >= s && addr - s < (c->nbits << h->order)) return c;
  }
  return nullptr;
}
size_t pool_avail(cp_gen_pool *p) noexcept;
// Checks a shared region's header against `mem_size` trusted bytes (validate.cpp); the
// chunks are validated by the walks. False: set_error(-EINVAL) done.
bool validate_header(header *h, uint64_t mem_size) noexcept;

// Statistics (stats.cpp): the handle's counters, and its place in the exit report (enroll
// once the handle is complete, withdraw before it is freed).
enum : unsigned { kFailedAllocs, kGrowCalls };
void stats_enroll(cp_gen_pool *pool) noexcept;
void stats_withdraw(cp_gen_pool *pool) noexcept;

// Growth hook (grow.cpp): queues the hook when avail is under the threshold.
void note_growth(cp_gen_pool *pool) noexcept;
int stop_growth(cp_gen_pool *pool) noexcept;

// fork() (fork.cpp): a private pool's add lock is held across every fork while the pool
// is tracked (from create to detach). May block.
void fork_track(cp_gen_pool *pool) noexcept;
void fork_untrack(cp_gen_pool *pool) noexcept;

}  // namespace corepool::genpool
