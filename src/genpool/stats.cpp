// gen_pool statistics: cp_gen_pool_stats and cp_gen_pool_dump (corepool/genpool.h), and the
// handle's place in the COREPOOL_STATS exit report. Everything but the two counters is read
// off the chunks' maps, so allocation and free pay nothing for it.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>

#include "error.h"
#include "genpool/internal.h"

namespace corepool::genpool {
namespace {

struct chunk_figures {
  uint64_t allocations;   // start marks
  uint64_t longest_free;  // granules
};

// One pass over c's map: the start marks (high halves) and the longest run of clear alloc
// bits, block by block through the exact block hint (a run may cross blocks: right of one,
// whole free blocks, left of the one that ends it). Granules past nbits are allocated.
chunk_figures scan(chunk *c) noexcept {
  chunk_figures f{0, 0};
  const aword *m = c->alloc();
  for (uint64_t j = 0; j < 2 * c->nviews; j++)
    f.allocations +=
        static_cast<uint64_t>(__builtin_popcountll(m[j].load(std::memory_order_relaxed) >> 32));
  uint64_t run = 0;
  for (uint64_t b = 0; b < c->nblocks; b++) {
    const ds::block_hint h = ds::block_hint_exact(c->bits(), b * kBlockViews, kBlockViews, nullptr,
                                                  std::memory_order_relaxed);
    if (h.left == kBlockBits) {
      run += kBlockBits;
      continue;
    }
    run += h.left;
    f.longest_free = std::max<uint64_t>({f.longest_free, run, h.contig});
    run = h.right;
  }
  f.longest_free = std::max(f.longest_free, run);
  return f;
}

}  // namespace

void stats_enroll(cp_gen_pool *pool) noexcept {
  pool->reg = {pool, [](const void *q, int fd) {
                 return cp_gen_pool_dump(static_cast<cp_gen_pool *>(const_cast<void *>(q)), fd);
               }};
  stats::enroll(pool->reg);
}

void stats_withdraw(cp_gen_pool *pool) noexcept {
  stats::withdraw(pool->reg);
}

}  // namespace corepool::genpool

using namespace corepool;
using namespace corepool::genpool;

extern "C" {

int cp_gen_pool_stats(struct cp_gen_pool *pool, struct cp_gen_pool_stats *st) {
  if (!pool || !st) return set_error(-EINVAL, "cp_gen_pool_stats: NULL argument");
  *st = {};
  header *h = pool->hdr;
  uint64_t size = 0, avail = 0, longest = 0;
  for (chunk *c = first_chunk(pool); c; c = next_chunk(pool, c)) {
    const chunk_figures f = scan(c);
    st->nr_chunks++;
    st->nr_allocations += f.allocations;
    size += c->nbits;
    avail += avail_of(c);
    longest = std::max(longest, f.longest_free);
  }
  st->size = static_cast<size_t>(size << h->order);
  st->avail = static_cast<size_t>(avail << h->order);
  st->largest_free = static_cast<size_t>(longest << h->order);
  st->granule = static_cast<size_t>(gran(h));
  st->failed_allocs = static_cast<unsigned long long>(pool->counters.sum(kFailedAllocs));
  st->grow_calls = static_cast<unsigned long long>(pool->counters.sum(kGrowCalls));
  return 0;
}

int cp_gen_pool_dump(struct cp_gen_pool *pool, int fd) {
  struct cp_gen_pool_stats st;
  if (cp_gen_pool_stats(pool, &st) != 0)
    return set_error(-EINVAL, "cp_gen_pool_dump: pool is NULL");
  header *h = pool->hdr;
  stats::line_writer w(fd, "gen_pool", pool);
  w.kv("size", st.size).kv("avail", st.avail).kv("largest_free", st.largest_free);
  w.kv("granule", st.granule).kv("chunks", st.nr_chunks).kv("allocations", st.nr_allocations);
  w.kv("shared", pool->shared ? 1 : 0).end();
  uint64_t i = 0;
  for (chunk *c = first_chunk(pool); c; c = next_chunk(pool, c), i++) {
    const chunk_figures f = scan(c);
    w.kv("chunk", i).kv_hex("start", chunk_start(h, c)).kv("size", c->nbits << h->order);
    w.kv("avail", avail_of(c) << h->order).kv("allocations", f.allocations);
    w.kv("largest_free", f.longest_free << h->order).end();
  }
  w.kv("failed_allocs", st.failed_allocs).kv("grow_calls", st.grow_calls).end();
  return w.result();
}

}  // extern "C"
