// hint_bitmap: word operations of a bitmap allocator (bit set = taken) and the free-space
// hints of its blocks, over plain or atomic words.
//
// A map is read 64 bits at a time through a view: `v(k, mo)` returns bits [64k, 64k + 64).
// Three views are given: plain_view (uint64_t words, bit i in word i / 64; a lock-held
// owner), atomic_view (the same over std::atomic<uint64_t>), paired_view (the low halves of
// two atomic words make one 64-bit view, for a map that keeps a second bit per position in
// the high halves; gen_pool's start marks). All scans are templates on the view, so every
// allocator runs the same code.
//
// Block hints: a block is `nviews` views. Its block_hint says, in bits relative to the block,
//   first_free  first clear bit (the block's size when none),
//   contig      longest clear run inside the block,
//   left        clear run that starts at the block's first bit,
//   right       clear run that ends at the block's last bit.
// block_hint_exact computes them from the bits; merge_blocks combines the hints of a row of
// blocks into the longest clear run of the row (runs may cross blocks: right_b + whole free
// blocks + left_c) and its first clear bit; pair_need gives the longest run that starts in a
// block and ends in it or the next one.
//
// Protocol. This file has no synchronization of its own: a view's loads use the order the
// caller passes (relaxed by default: a scan only chooses a candidate). What the hints mean
// under concurrency is the caller's protocol:
//   - lock-held (the per-CPU allocator): the bits and hints change only under the owner's
//     lock; block_hint_exact after every change keeps each hint exact.
//   - lock-free (gen_pool, src/genpool/hints.h): hints are upper bounds kept by CAS raises
//     and lowerings; the bits are read after the hint value a CAS replaces.
// Invariants the functions rely on:
//   B1 find_fit's `end` is a multiple of 64; the caller's bits past its real limit are set.
//   B2 a hint field never exceeds the block's size in bits (nviews * 64).
// Concurrency: every function is read-only on the map; any number may run with each other
// and with writers of the words (each 64-bit read is one load per word; a paired view is two
// loads, not one snapshot, and no scan needs one).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace corepool::ds {

inline constexpr uint64_t kNoBit = ~uint64_t{0};  // "nothing found"

struct plain_view {
  const uint64_t *m;
  uint64_t operator()(uint64_t k, std::memory_order = std::memory_order_relaxed) const noexcept {
    return m[k];
  }
};
struct atomic_view {
  const std::atomic<uint64_t> *m;
  uint64_t operator()(uint64_t k, std::memory_order mo) const noexcept { return m[k].load(mo); }
};
// Bits [64k, 64k + 64) are the low halves of words 2k and 2k + 1.
struct paired_view {
  const std::atomic<uint64_t> *m;
  static constexpr uint64_t kLow = 0xffffffffULL;
  uint64_t operator()(uint64_t k, std::memory_order mo) const noexcept {
    return (m[2 * k].load(mo) & kLow) | (m[2 * k + 1].load(mo) << 32);
  }
};

// Mask of bits [b, b+len) inside one word (0 < len, b + len <= 64).
inline uint64_t word_mask(unsigned b, uint64_t len) noexcept {
  return (len >= 64 ? ~uint64_t{0} : ((uint64_t{1} << len) - 1)) << b;
}

// First index in [pos, end) whose bit equals `want`, or `end`.
template <bool want, class V>
inline uint64_t find_next(V v, uint64_t pos, uint64_t end) noexcept {
  while (pos < end) {
    uint64_t w = v(pos / 64, std::memory_order_relaxed);
    if (!want) w = ~w;
    w &= ~uint64_t{0} << (pos % 64);
    if (w) {
      uint64_t i = (pos & ~uint64_t{63}) + static_cast<uint64_t>(__builtin_ctzll(w));
      return i < end ? i : end;
    }
    pos = (pos & ~uint64_t{63}) + 64;
  }
  return end;
}
template <class V>
inline uint64_t find_next_zero(V v, uint64_t pos, uint64_t end) noexcept {
  return find_next<false>(v, pos, end);
}
template <class V>
inline uint64_t find_next_set(V v, uint64_t pos, uint64_t end) noexcept {
  return find_next<true>(v, pos, end);
}

// First s with lo <= s < hi, s + n <= end, (s + off) % (mask + 1) == 0 and bits [s, s+n)
// all clear in what the scan reads; kNoBit if there is none (a zero-area search bounded to a
// window of start positions).
template <class V>
inline uint64_t find_area(V v, uint64_t lo, uint64_t hi, uint64_t end, uint64_t n, uint64_t mask,
                          uint64_t off) noexcept {
  uint64_t pos = lo;
  for (;;) {
    uint64_t s = find_next_zero(v, pos, end);
    if (s >= end) return kNoBit;
    s = ((s + off + mask) & ~mask) - off;
    if (s >= hi || s + n > end || s + n < s) return kNoBit;
    uint64_t i = find_next_set(v, s, s + n);
    if (i >= s + n) return s;
    pos = i + 1;
  }
}

// Bits of `f` at which a run of n (1 <= n <= 64) set bits starts that lies inside the word:
// log2(n) shift-and steps (bit i survives iff bits i .. i+n-1 are all set).
inline uint64_t run_starts(uint64_t f, uint64_t n) noexcept {
  for (uint64_t have = 1; have < n && f;) {
    uint64_t t = have < n - have ? have : n - have;
    f &= f >> t;
    have += t;
  }
  return f;
}

// Shift schedules of run_starts for n = 0..64: shifts 1, 2, 4, ... capped so that they add up
// to n - 1, padded with zeros (no-ops).
inline constexpr auto kFitShifts = [] {
  std::array<std::array<uint8_t, 6>, 65> t{};
  for (uint64_t n = 1; n <= 64; ++n)
    for (uint64_t k = 0, have = 1; k < 6; ++k) {
      uint64_t step = have < n - have ? have : n - have;
      t[n][k] = static_cast<uint8_t>(step);
      have += step;
    }
  return t;
}();

// find_area for unaligned requests of 1 <= n <= 64 bits, a word at a time: the first s with
// lo <= s < hi, s + n <= end and bits [s, s+n) clear in the words the scan reads, or kNoBit.
// A run may cross one word boundary (the clear bits at the top of the previous word are
// carried into the next word's clear bits at its bottom). The words read are stored in
// snap[0], snap[1], ... (from the word holding lo; at most (hi - lo + 62) / 64 + 2), so
// that a caller can tell later whether a bit it saw set has been cleared since. B1: `end` is
// a multiple of 64 and bits past the caller's limit are set, so no word needs masking.
template <class V>
inline uint64_t find_fit(V v, uint64_t lo, uint64_t hi, uint64_t end, uint64_t n,
                         uint64_t *snap) noexcept {
  // run_starts(., n) as six fixed shift-and steps (shift 0 = no-op): no branch per word.
  const uint8_t *sh = kFitShifts[n].data();
  uint64_t pos = lo & ~uint64_t{63};
  uint64_t carry = 0;  // clear bits ending at pos - 1, all at or after lo
  uint64_t below = (uint64_t{1} << (lo % 64)) - 1;  // bits before lo count as taken
  while (pos < end) {
    uint64_t raw = v(pos / 64, std::memory_order_relaxed);
    *snap++ = raw;
    uint64_t w = raw | below;
    below = 0;
    // A run from the previous word continued by this word's low clear bits (an all-clear
    // word counts 63 here, enough: then a start in this word exists too, at or after it),
    // else the first run inside the word. One branch per word.
    uint64_t low = static_cast<uint64_t>(__builtin_ctzll(w | (uint64_t{1} << 63)));
    uint64_t m = ~w;
    for (unsigned k = 0; k < 6; ++k) m &= m >> sh[k];
    bool from_carry = carry + low >= n;
    if (from_carry || m) {
      uint64_t s = from_carry ? pos - carry : pos + static_cast<uint64_t>(__builtin_ctzll(m));
      return s < hi ? s : kNoBit;
    }
    // No start in this word (so it is not all clear): its top run is carried.
    carry = static_cast<uint64_t>(__builtin_clzll(w));
    pos += 64;
    if (pos - carry >= hi) return kNoBit;
  }
  return kNoBit;
}

// Start of the clear run that ends at `pos` (exclusive), not below `lo`: one past the last
// set bit in [lo, pos), or lo.
template <class V>
inline uint64_t clear_run_start(V v, uint64_t pos, uint64_t lo) noexcept {
  while (pos > lo) {
    uint64_t wi = (pos - 1) / 64;
    unsigned top = static_cast<unsigned>((pos - 1) % 64);
    uint64_t w = v(wi, std::memory_order_relaxed);
    if (top != 63) w &= (uint64_t{2} << top) - 1;
    if (w) {
      uint64_t i = wi * 64 + 64 - static_cast<uint64_t>(__builtin_clzll(w));
      return i > lo ? i : lo;
    }
    pos = wi * 64;
  }
  return lo;
}

// The clear bits of w that lie strictly inside it (between its lowest and highest set bit,
// which w must have), as set bits.
inline uint64_t inner_clear(uint64_t w) noexcept {
  uint64_t x = ~w & ~((w & (~w + 1)) - 1);  // drop the clear run at the bottom
  unsigned hb = 63 - static_cast<unsigned>(__builtin_clzll(w));
  return hb == 63 ? x : x & ((uint64_t{2} << hb) - 1);  // and the one at the top
}

// Longest run of set bits of x if it is longer than `floor` (< 64), else `floor`: one
// shift-and step per bit of the answer past floor, after log2(floor) steps.
inline uint64_t longest_run_over(uint64_t x, uint64_t floor) noexcept {
  x = run_starts(x, floor + 1);
  if (!x) return floor;
  uint64_t k = floor + 1;
  while ((x &= x >> 1)) ++k;
  return k;
}

// ---- block hints ----------------------------------------------------------------------------
struct block_hint {
  uint32_t first_free, contig, left, right;  // bits, relative to the block (B2)
};

// Exact hint of the block of `nviews` views starting at view `first`, a word at a time (`run`
// is the clear run reaching the current word from below). With `snap`, the words read are
// stored in snap[0..nviews).
template <class V>
inline block_hint block_hint_exact(V v, uint64_t first, uint64_t nviews, uint64_t *snap,
                                   std::memory_order mo) noexcept {
  uint64_t contig = 0, left = kNoBit, run = 0, ff = kNoBit;
  for (uint64_t i = 0; i < nviews; ++i) {
    uint64_t w = v(first + i, mo);
    if (snap) snap[i] = w;
    if (w == 0) {
      if (ff == kNoBit) ff = i * 64;
      run += 64;
      continue;
    }
    if (w == ~uint64_t{0}) {  // full word: it ends the run reaching it
      if (left == kNoBit) left = run;
      contig = contig > run ? contig : run;
      run = 0;
      continue;
    }
    if (ff == kNoBit) ff = i * 64 + static_cast<uint64_t>(__builtin_ctzll(~w));
    run += static_cast<uint64_t>(__builtin_ctzll(w));
    if (left == kNoBit) left = run;
    contig = contig > run ? contig : run;
    // Runs inside the word: measured only if one beats contig (inner runs are < 63).
    uint64_t x = inner_clear(w);
    if (x && contig < 62) contig = longest_run_over(x, contig);
    run = static_cast<uint64_t>(__builtin_clzll(w));
  }
  if (left == kNoBit) left = run;
  if (ff == kNoBit) ff = nviews * 64;
  return {static_cast<uint32_t>(ff), static_cast<uint32_t>(contig > run ? contig : run),
          static_cast<uint32_t>(left), static_cast<uint32_t>(run)};
}

// Longest clear run that starts in block `h` and ends in it or in the next block `next`
// (a run longer than one block is not covered: callers with larger requests walk the row).
inline uint64_t pair_need(const block_hint &h, const block_hint &next) noexcept {
  uint64_t cross = uint64_t{h.right} + next.left;
  return h.contig > cross ? h.contig : cross;
}

struct row_hint {
  uint64_t contig;      // longest clear run of the row, in bits
  uint64_t first_free;  // first clear bit of the row, nblocks * block_bits when none
};
// The row's exact longest run and first clear bit from exact block hints (blocks of
// block_bits bits): a run crosses blocks as right_b + whole free blocks + left_c.
inline row_hint merge_blocks(const block_hint *h, uint64_t nblocks, uint64_t block_bits) noexcept {
  uint64_t run = 0, best = 0, first = nblocks * block_bits;
  for (uint64_t b = 0; b < nblocks; b++) {
    if (first == nblocks * block_bits && h[b].first_free < block_bits)
      first = b * block_bits + h[b].first_free;
    if (h[b].left == block_bits) {
      run += block_bits;
      best = best > run ? best : run;
      continue;
    }
    run += h[b].left;
    best = best > run ? best : run;
    best = best > h[b].contig ? best : h[b].contig;
    run = h[b].right;
  }
  return {best > run ? best : run, first};
}

}  // namespace corepool::ds
