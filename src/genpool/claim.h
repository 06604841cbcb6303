// gen_pool claim and release of a granule range: the word CASes that set an allocation's
// alloc bits and start mark (claim) and clear them (release_backward), keeping I1, I2 and I6
// (hints.h).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "genpool/hints.h"
#include "inject.h"

namespace corepool::genpool {

// Clears granules [s, e) (alloc bits; the start bit of s with the first word) from the last
// word back to the first, so that what is still set is always s's start and a prefix (I2).
// seq_cst: release for the next owner; ordered before the caller's hint load (I7).
inline void release_backward(aword *m, uint64_t s, uint64_t e) noexcept {
  for (uint64_t w = (e - 1) / 32; w > s / 32; --w) {
    m[w].fetch_and(~word_mask(0, std::min<uint64_t>(32, e - w * 32)), std::memory_order_seq_cst);
    CP_INJECT("genpool.release.mid");
  }
  const uint64_t first = std::min<uint64_t>(32 - s % 32, e - s);
  m[s / 32].fetch_and(~(word_mask(static_cast<unsigned>(s % 32), first) | start_bit(s)),
                      std::memory_order_seq_cst);
}

// Claims granules [s, s+n): their alloc bits and the start bit of s, word by word from the
// first. Returns true when the caller owns the range. Otherwise the partial claim is undone
// and *conflict is the index of a bit found set, so the caller continues its search after it.
static inline bool claim(chunk *c, uint64_t s, uint64_t n, uint64_t *conflict) noexcept {
  aword *m = c->alloc();
  const uint64_t e = s + n;
  // I6: counted as used before any bit is set (given back if the claim fails).
  avail_add(c, -static_cast<int64_t>(n));
  for (uint64_t i = s; i < e;) {
    unsigned b = i % 32;
    uint64_t len = std::min<uint64_t>(32 - b, e - i);
    uint64_t mask = word_mask(b, len);
    uint64_t set = i == s ? mask | start_bit(s) : mask;  // I2: the start with the first word
    aword &w = m[i / 32];
    uint64_t old = w.load(std::memory_order_relaxed);
    do {
      if (old & mask) {
        // I1: we own [s, i) only; give it back (with the start bit) and tell scanners to
        // look again.
        *conflict = (i & ~uint64_t{31}) + static_cast<uint64_t>(__builtin_ctzll(old & mask));
        if (i > s) {
          release_backward(m, s, i);
          raise_hints(c, s, i);
        }
        avail_add(c, static_cast<int64_t>(n));  // I6
        return false;
      }
      // acq_rel: acquire pairs with the release clear of the previous owner's free.
    } while (!w.compare_exchange_weak(old, old | set, std::memory_order_acq_rel,
                                      std::memory_order_relaxed));
    i += len;
    if (i < e) CP_INJECT("genpool.claim.mid");
  }
  return true;
}

}  // namespace corepool::genpool
