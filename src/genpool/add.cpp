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
#include "inject.h"
#include "platform/memory.h"
#include "platform/topology.h"

using namespace corepool;
using namespace corepool::genpool;

namespace corepool::genpool {
namespace {

void lock(header *h) noexcept {
  // A dead holder (shared mode) left nothing to repair (A1, A2 in add below): the tail is
  // derived by a walk, and its carved metadata is unpublished.
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
  if (virt == 0) return set_error(-EINVAL, "chunk at address 0 (0 means failure to alloc)");
  if (nbits > kMaxBits) return set_error(-EINVAL, "chunk too large");
  uint64_t bytes = nbits << h->order;
  if (virt + bytes < virt) return set_error(-EINVAL, "chunk wraps around the address space");
  // A shared pool's chunk inside its region is stored as an offset (rel): each process then
  // sees it at its own mapping. One that straddles the region's end is refused.
  const uint64_t base = reinterpret_cast<uintptr_t>(h);
  bool rel = false;
  if (pool->shared && virt < base + pool->limit && base < virt + bytes) {
    if (virt < base || virt + bytes > base + pool->limit)
      return set_error(-EINVAL, "chunk straddles the shared region's bounds");
    rel = true;
  }
  const uint64_t nstripes = pool->shared ? kSharedStripes : ds::striped_stripes_for_machine();
  uint64_t meta = (meta_bytes_for(nbits, nstripes) + 63) & ~uint64_t{63};

  lock(h);
  // A1 (the list's tail is derived, never stored): walk to the real tail under the lock.
  // Whatever step a killed adder died at, the list is exactly the chunks published before it
  // (publication, one release store into the tail's `next` or `first`, is add's last write to
  // shared state that others read), so the next adder links after the true last chunk. A dead
  // adder's carved but unpublished metadata only leaks its space (bump moved past it).
  chunk *tail = nullptr;
  for (chunk *c = first_chunk(pool); c; c = next_chunk(pool, c)) {
    tail = c;
    uint64_t cs = chunk_start(h, c), cend = cs + (c->nbits << h->order);
    if (virt < cend && cs < virt + bytes) {
      unlock(h);
      return set_error(-EINVAL, "chunk overlaps a chunk of this pool");
    }
  }
  if (pool->shared && tail && tail->next.load(std::memory_order_acquire) != 0) {
    unlock(h);  // the walk stopped at a record that fails validation: do not link after it
    return set_error(-EINVAL, "shared region's chunk list is corrupt");
  }
  chunk *c;
  if (pool->shared) {
    // A2: metadata grows from the bump offset and never reaches a chunk inside the region
    // (so every such chunk lies at or above bump: validate.cpp V3).
    uint64_t b = h->bump.load(std::memory_order_relaxed);
    uint64_t room = pool->limit;
    for (chunk *x = first_chunk(pool); x; x = next_chunk(pool, x))
      if (x->rel && x->start >= b && x->start < room) room = x->start;
    if (rel && virt - base >= b && virt - base < room) room = virt - base;
    if (b > room || meta > room - b) {
      unlock(h);
      return set_error(-ENOMEM, "shared region has no room for the chunk metadata");
    }
    if (rel && virt - base < b + meta) {
      unlock(h);
      return set_error(-EINVAL, "chunk overlaps the shared region's metadata");
    }
    c = reinterpret_cast<chunk *>(reinterpret_cast<char *>(h) + b);
    h->bump.store(b + meta, std::memory_order_release);
    CP_INJECT("genpool.add.carved");
    std::memset(static_cast<void *>(c), 0, meta);
  } else {
    c = static_cast<chunk *>(platform::os_alloc(meta, platform::page_size()));
    if (!c) {
      unlock(h);
      return set_error(-ENOMEM, "no memory for chunk metadata");
    }
    if (nid >= 0) platform::os_bind_node(c, meta, nid);
  }
  c->start = rel ? virt - base : virt;
  c->rel = rel ? ~uint64_t{0} : 0;
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
  CP_INJECT("genpool.add.formatted");
  // Publication (release): pairs with the acquire loads of the walks (internal.h).
  int64_t off = off_of(h, c);
  if (tail)
    tail->next.store(off, std::memory_order_release);
  else
    h->first.store(off, std::memory_order_release);
  CP_INJECT("genpool.add.published");
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
