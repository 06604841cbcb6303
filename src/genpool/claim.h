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

// A free's release of granules [s, e) (e at a word boundary, the words before the one its claim
// cleared), backward (I2), each word cleared by a CAS only while it still holds what the free
// validated: all its alloc bits, no start bit but s's. A racing double free whose range was
// reallocated (the ABA that no single-word CAS can rule out) stops at the first word that
// now belongs to someone else, so it never orphans another allocation's start bit or clears
// bits of a word it does not own. Returns the first granule released (s when all of it).
inline uint64_t release_backward_checked(aword *m, uint64_t s, uint64_t e) noexcept {
  for (uint64_t w = (e - 1) / 32; w > s / 32; --w) {
    const uint64_t wm = word_mask(0, std::min<uint64_t>(32, e - w * 32));
    uint64_t x = m[w].load(std::memory_order_relaxed);
    do {
      if ((x & wm) != wm || (x & (wm << 32))) return (w + 1) * 32;
    } while (!m[w].compare_exchange_weak(x, x & ~wm, std::memory_order_seq_cst,
                                         std::memory_order_relaxed));
    CP_INJECT("genpool.release.mid");
  }
  const uint64_t fm =
      word_mask(static_cast<unsigned>(s % 32), std::min<uint64_t>(32 - s % 32, e - s));
  const uint64_t clr = fm | start_bit(s);
  uint64_t x = m[s / 32].load(std::memory_order_relaxed);
  do {
    if ((x & clr) != clr || (x & (fm << 32) & ~start_bit(s))) return (s / 32 + 1) * 32;
  } while (!m[s / 32].compare_exchange_weak(x, x & ~clr, std::memory_order_seq_cst,
                                            std::memory_order_relaxed));
  return s;
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
