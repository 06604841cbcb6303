// gen_pool free: validation of the range against the map (read-only, so bad input leaves
// the pool untouched), the one CAS that owns the free (I4), the backward release (I2), the
// hint raise (hints.h) and the avail update (I6).
//
// Progress: lock-free; a bounded number of fetch_and, and CAS retries only on others' progress.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>

#include "check.h"
#include "error.h"
#include "genpool/claim.h"
#include "genpool/internal.h"
#include "inject.h"

using namespace corepool;
using namespace corepool::genpool;

extern "C" {

int cp_gen_pool_free_owner(struct cp_gen_pool *pool, uintptr_t addr, size_t size, void **owner) {
  if (owner) *owner = nullptr;
  if (!pool) return set_error(-EINVAL, "pool is NULL");
  // Every refusal below leaves the pool untouched; checked mode also reports it (check.h).
  const void *at = reinterpret_cast<const void *>(addr);
  auto bad = [at](const char *why) noexcept {
    return report_misuse(-EINVAL, "cp_gen_pool_free", why, at);
  };
  header *h = pool->hdr;
  chunk *c = find_chunk(pool, addr);
  if (!c) return bad("address outside every chunk");
  uint64_t off = addr - chunk_start(h, c);
  if (off & (gran(h) - 1)) return bad("address is not the start of an allocation");
  uint64_t s = off >> h->order, n = granules(h, size);
  if (n == 0 || n > c->nbits - s) return bad("size does not match the allocation");
  const uint64_t e = s + n;
  aword *m = c->alloc();
  // Validation (read-only, so bad input leaves the pool untouched): an allocation is exactly
  // a start at s, alloc bits over [s, e), no start in (s, e), and granule e free or a start
  // (or past the chunk's end) (I2).
  aword &w = m[s / 32];
  const uint64_t sb = start_bit(s);
  const uint64_t first = std::min<uint64_t>(32 - s % 32, n);  // granules in s's word
  const uint64_t fmask = word_mask(static_cast<unsigned>(s % 32), first);
  // True when the map, with s's word holding v, shows exactly this allocation.
  auto valid = [&](uint64_t v) noexcept {
    if (!(v & sb) || (v & fmask) != fmask || (v & (fmask << 32) & ~sb)) return false;
    for (uint64_t i = s + first; i < e; i += 32) {  // the following words, whole or not
      uint64_t wm = word_mask(0, std::min<uint64_t>(32, e - i));
      uint64_t x = m[i / 32].load(std::memory_order_acquire);
      if ((x & wm) != wm || (x & (wm << 32))) return false;
    }
    if (e >= c->nbits) return true;
    uint64_t x = (e / 32 == s / 32) ? v : m[e / 32].load(std::memory_order_acquire);
    return !(x & alloc_bit(e)) || (x & start_bit(e));
  };
  uint64_t v = w.load(std::memory_order_acquire);
  if (!(v & sb)) return bad("not allocated, or not its start");
  if (!valid(v)) return bad("size does not match the allocation");
  CP_INJECT("genpool.free.validated");
  if (first == n) {
    // I4: the free's claim is the CAS that clears the start bit and the alloc bits, requiring
    // all of them set. A retry (the word changed) validates again: a racing double free whose
    // range was reallocated in pieces must not clear a neighbour's bits. seq_cst: release for
    // the next owner (its claim CAS is acq_rel), and ordered before the hint load of the
    // raise (I7).
    const uint64_t clr = fmask | sb;
    while (!w.compare_exchange_weak(v, v & ~clr, std::memory_order_seq_cst,
                                    std::memory_order_relaxed)) {
      if (!valid(v)) return bad("double free");
    }
    CP_INJECT("genpool.free.claimed");
    if (!raise_hint_in_word(c, s, e, v & ~clr & kAllocHalf)) raise_hints(c, s, e);
  } else {
    // I4: the claim is the CAS on the last word (its part starts at the word's start),
    // requiring the alloc bits set and no start there; then backward to the first word (I2),
    // each word only while it is still ours.
    const uint64_t lw = (e - 1) / 32, lmask = word_mask(0, e - lw * 32);
    aword &l = m[lw];
    uint64_t x = l.load(std::memory_order_relaxed);
    do {
      if ((x & lmask) != lmask || (x & (lmask << 32))) return bad("double free");
    } while (!l.compare_exchange_weak(x, x & ~lmask, std::memory_order_seq_cst,
                                      std::memory_order_relaxed));
    CP_INJECT("genpool.free.claimed");
    const uint64_t lo = release_backward_checked(m, s, lw * 32);
    raise_hints(c, lo, e);
    if (lo != s) {
      // A double free that raced with a reallocation: [s, lo) is someone else's now. What it
      // released is counted (I6); the caller is told.
      avail_add(c, static_cast<int64_t>(e - lo));
      return bad("double free (raced with a reallocation of the range)");
    }
  }
  // I6: counted as free only once its bits are clear and its hints raised.
  avail_add(c, static_cast<int64_t>(n));
  if (owner) *owner = reinterpret_cast<void *>(static_cast<uintptr_t>(c->owner));
  return 0;
}

int cp_gen_pool_free(struct cp_gen_pool *pool, uintptr_t addr, size_t size) {
  return cp_gen_pool_free_owner(pool, addr, size, nullptr);
}

}  // extern "C"
