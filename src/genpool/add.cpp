// gen_pool chunk add: carving and formatting a chunk's record, map and hints, and its
// publication on the pool's chunk list under the add lock.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "error.h"
#include "genpool/hints.h"
#include "genpool/internal.h"
#include "platform/memory.h"
#include "platform/topology.h"

using namespace corepool;
using namespace corepool::genpool;

namespace corepool::genpool {
namespace {

void lock(header *h) noexcept {
  // A dead holder (shared mode) was at most carving metadata that nothing references yet:
  // publication is the last step of add, a single release store.
  (void)platform::pshared_mutex_lock(&h->lock);
}
void unlock(header *h) noexcept {
  platform::pshared_mutex_unlock(&h->lock);
}

}  // namespace
}  // namespace corepool::genpool

extern "C" {

int cp_gen_pool_add_owner(struct cp_gen_pool *pool, uintptr_t virt, uint64_t phys, size_t size,
                          int nid, void *owner) {
  if (!pool) return set_error(-EINVAL, "pool is NULL");
  header *h = pool->hdr;
  uint64_t nbits = size >> h->order;
  if (nbits == 0) return set_error(-EINVAL, "chunk smaller than one granule");
  uint64_t bytes = nbits << h->order;
  if (virt + bytes < virt) return set_error(-EINVAL, "chunk wraps around the address space");
  if (nbits > (uint64_t{1} << 56)) return set_error(-EINVAL, "chunk too large");
  const uint64_t nstripes = ds::striped_stripes_for_machine();
  uint64_t meta = (meta_bytes_for(nbits, nstripes) + 63) & ~uint64_t{63};

  lock(h);
  for (chunk *c = first_chunk(h); c; c = next_chunk(h, c)) {
    uint64_t cend = c->start + (c->nbits << h->order);
    if (virt < cend && c->start < virt + bytes) {
      unlock(h);
      return set_error(-EINVAL, "chunk overlaps a chunk of this pool");
    }
  }
  chunk *c;
  if (pool->shared) {
    uint64_t b = h->bump.load(std::memory_order_relaxed);
    if (b > h->mem_size || meta > h->mem_size - b) {
      unlock(h);
      return set_error(-ENOMEM, "shared region has no room for the chunk metadata");
    }
    c = reinterpret_cast<chunk *>(reinterpret_cast<char *>(h) + b);
    std::memset(static_cast<void *>(c), 0, meta);
    h->bump.store(b + meta, std::memory_order_relaxed);
  } else {
    c = static_cast<chunk *>(platform::os_alloc(meta, platform::page_size()));
    if (!c) {
      unlock(h);
      return set_error(-ENOMEM, "no memory for chunk metadata");
    }
    if (nid >= 0) platform::os_bind_node(c, meta, nid);
  }
  c->start = virt;
  c->nbits = nbits;
  c->phys = phys;
  c->owner = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(owner));
  c->nblocks = (nbits + kBlockBits - 1) / kBlockBits;
  c->ngroups = (c->nblocks + kGroupBlocks - 1) / kGroupBlocks;
  c->nviews = c->nblocks * kBlockViews;
  c->meta_bytes = meta;
  c->home_stride = (nbits / platform::nr_cpu_ids()) & ~uint64_t{255};
  {
    const uint64_t tail = nbits - (c->nblocks - 1) * kBlockBits;  // granules in the last block
    c->tail_all_free = tail == kBlockBits ? kBhAllFree : bh_pack(0, tail, tail, 0);
  }
  ds::striped_init(c->avail, c->avail_lines(), nstripes, static_cast<int64_t>(nbits));
  // Granules past nbits are permanently allocated (alloc bits, no start), so scans need no
  // tail special case; a free's end check stops at nbits.
  aword *m = c->alloc();
  for (uint64_t i = nbits; i < c->nviews * 64; i = (i & ~uint64_t{31}) + 32)
    m[i / 32].fetch_or(kAllocHalf & (kAllocHalf << (i % 32)), std::memory_order_relaxed);
  for (uint64_t b = 0; b < c->nblocks; ++b)
    c->bhint()[b].store(block_hint_exact(c, b), std::memory_order_relaxed);
  for (uint64_t g = 0; g < c->ngroups; ++g) {
    uint64_t need = 0;
    for (uint64_t b = g * kGroupBlocks; b < std::min(c->nblocks, (g + 1) * kGroupBlocks); ++b)
      need = std::max(need, block_need(c, b, std::memory_order_relaxed));
    c->ghint()[g].store(need, std::memory_order_relaxed);
  }
  c->next.store(0, std::memory_order_relaxed);
  // Publication (release): pairs with the acquire loads of first_chunk/next_chunk.
  int64_t off = off_of(h, c);
  if (h->tail)
    at(h, h->tail)->next.store(off, std::memory_order_release);
  else
    h->first.store(off, std::memory_order_release);
  h->tail = off;
  unlock(h);
  return 0;
}

int cp_gen_pool_add_virt(struct cp_gen_pool *pool, uintptr_t virt, uint64_t phys, size_t size,
                         int nid) {
  return cp_gen_pool_add_owner(pool, virt, phys, size, nid, nullptr);
}

int cp_gen_pool_add(struct cp_gen_pool *pool, uintptr_t addr, size_t size, int nid) {
  return cp_gen_pool_add_owner(pool, addr, UINT64_MAX, size, nid, nullptr);
}

}  // extern "C"
