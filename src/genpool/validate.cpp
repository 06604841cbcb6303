// gen_pool trust of a shared region: every field of the header and of each chunk record that
// the other files rely on is checked before a handle uses it, against the bytes this process
// mapped (`limit`), not against sizes the region itself claims.
//
// What a validated chunk guarantees to the rest of gen_pool (so no index leaves its arrays
// and no shift exceeds 63, whatever the bits and hints hold):
//   V1 1 <= nbits <= 2^56; nblocks, ngroups, nviews are derived from nbits; the record and
//      its arrays (meta_bytes, derived from nbits and the stripe count) lie inside [off, bump)
//      and below `limit`; the stripe count is kSharedStripes (so every touched bit names a
//      stripe that exists).
//   V2 offsets along the list strictly increase (L1): a walk ends after at most
//      limit / sizeof(chunk) steps.
//   V3 a chunk inside the region (rel) lies in [bump, limit); one outside does not wrap and
//      does not start at 0; no two chunks overlap (checked against every chunk before it).
//   V4 tail_all_free and rel hold one of their two legal values.
// Map bits and hint values need no check: every scan is bounded by nbits and nviews, and any
// value is a legal (if useless) hint. Garbage there can only cost allocations, never memory
// safety.
#include <atomic>
#include <cerrno>
#include <cstdint>

#include "error.h"
#include "genpool/internal.h"

namespace corepool::genpool {
namespace {

bool bad(const char *why) noexcept {
  set_error(-EINVAL, why);
  return false;
}

// V1, V3, V4 for the chunk record at `off` (64-byte aligned, above prev: checked by the caller).
bool chunk_ok(cp_gen_pool *p, int64_t off) noexcept {
  header *h = p->hdr;
  const uint64_t limit = p->limit;
  const uint64_t bump = h->bump.load(std::memory_order_acquire);
  const uint64_t o = static_cast<uint64_t>(off);
  if (bump > limit || o < kHeaderBytes || o > bump || bump - o < sizeof(chunk))
    return bad("chunk record outside the region's metadata");
  chunk *c = at(h, off);
  const uint64_t nbits = c->nbits;
  if (nbits == 0 || nbits > kMaxBits) return bad("chunk size out of range");
  const uint64_t nblocks = (nbits + kBlockBits - 1) / kBlockBits;
  if (c->nblocks != nblocks || c->nviews != nblocks * kBlockViews ||
      c->ngroups != (nblocks + kGroupBlocks - 1) / kGroupBlocks)
    return bad("chunk counts do not match its size");
  if (c->avail.nstripes != kSharedStripes) return bad("chunk stripe count is not the shared one");
  const uint64_t meta = (meta_bytes_for(nbits, kSharedStripes) + 63) & ~uint64_t{63};
  if (c->meta_bytes != meta || meta > bump - o) return bad("chunk metadata outside the region");
  const uint64_t tail = nbits - (nblocks - 1) * kBlockBits;
  if (c->tail_all_free != (tail == kBlockBits ? kBhAllFree : bh_pack(0, tail, tail, 0)))
    return bad("chunk tail hint does not match its size");
  const uint64_t order = static_cast<uint64_t>(h->order);
  if (c->rel == ~uint64_t{0}) {
    if (c->start < bump || c->start > limit || nbits > ((limit - c->start) >> order))
      return bad("chunk inside the region out of its bounds");
  } else if (c->rel == 0) {
    if (c->start == 0 || nbits > ((~uint64_t{0} - c->start) >> order))
      return bad("chunk address wraps or is 0");
  } else {
    return bad("chunk placement flag");
  }
  // No overlap with the chunks before it (each validated already).
  const uint64_t s = chunk_start(h, c), bytes = nbits << order;
  for (int64_t x = h->first.load(std::memory_order_acquire); x && x < off;) {
    chunk *d = at(h, x);
    const uint64_t ds = chunk_start(h, d), dbytes = d->nbits << order;
    if (s < ds + dbytes && ds < s + bytes) return bad("chunks overlap");
    const int64_t nx = d->next.load(std::memory_order_acquire);
    if (nx <= x) break;  // (checked when d was validated; a peer may have changed it since)
    x = nx;
  }
  return true;
}

}  // namespace

[[gnu::noinline]] chunk *validate_next(cp_gen_pool *p, int64_t prev, int64_t off) noexcept {
  // V2 and alignment first: nothing of the record is read before its place is known good.
  if (off <= prev || (off & 63) || !chunk_ok(p, off)) return nullptr;
  int64_t v = p->valid_upto.load(std::memory_order_relaxed);
  while (v < off && !p->valid_upto.compare_exchange_weak(v, off, std::memory_order_release,
                                                         std::memory_order_relaxed)) {
  }
  return at(p->hdr, off);
}

bool validate_header(header *h, uint64_t mem_size) noexcept {
  if (h->magic.load(std::memory_order_acquire) != kMagic || h->version != kVersion ||
      h->shared != 1)
    return bad("no shared gen_pool in this region");
  if (h->order < 0 || h->order > kMaxOrder) return bad("region's granule order out of range");
  if (h->mem_size < kHeaderBytes || h->mem_size > mem_size)
    return bad("region's size is larger than the mapping");
  const uint64_t bump = h->bump.load(std::memory_order_acquire);
  if (bump < kHeaderBytes || bump > h->mem_size || (bump & 63))
    return bad("region's metadata offset out of range");
  const uint64_t w = h->algo_word.load(std::memory_order_relaxed);
  const uint64_t algo = w & 0xff, value = w >> 8;
  if (algo > CP_GENPOOL_BEST_FIT) return bad("region's algorithm unknown");
  if (algo == CP_GENPOOL_FIRST_FIT_ALIGN && (value == 0 || (value & (value - 1))))
    return bad("region's alignment is not a power of two");
  return true;
}

}  // namespace corepool::genpool
