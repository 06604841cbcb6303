// Atomic bitmap helpers of gen_pool: word-at-a-time scans over its granule map.
//
// The map: word j (a std::atomic<uint64_t>) holds granules [32j, 32j + 32), their alloc bits
// in its low half and their start bits in its high half, so that a claim sets an
// allocation's alloc bits and its start mark with one CAS, and a free clears both with one.
// Scans see only alloc bits, 64 granules at a time: view(map, k) is granules [64k, 64k + 64)
// from words 2k and 2k + 1 (two loads, not one snapshot; no scan needs one).
//
// Scans use relaxed loads: they only choose a candidate; the claim CAS (acq_rel) decides.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace corepool::genpool {

using aword = std::atomic<uint64_t>;
inline constexpr uint64_t kNone = ~uint64_t{0};
inline constexpr uint64_t kAllocHalf = 0xffffffffULL;

// Alloc bits of granules [64k, 64k + 64).
inline uint64_t view(const aword *map, uint64_t k,
                     std::memory_order mo = std::memory_order_relaxed) noexcept {
  return (map[2 * k].load(mo) & kAllocHalf) | (map[2 * k + 1].load(mo) << 32);
}
// Alloc bit and start bit of granule i in its word map[i / 32].
inline uint64_t alloc_bit(uint64_t i) noexcept {
  return uint64_t{1} << (i % 32);
}
inline uint64_t start_bit(uint64_t i) noexcept {
  return uint64_t{1} << (32 + i % 32);
}

// Mask of bits [b, b+len) inside one word (0 < len, b + len <= 64).
inline uint64_t word_mask(unsigned b, uint64_t len) noexcept {
  return (len >= 64 ? ~uint64_t{0} : ((uint64_t{1} << len) - 1)) << b;
}

// First index in [pos, end) whose bit equals `want`, or `end`.
template <bool want>
inline uint64_t find_next(const aword *map, uint64_t pos, uint64_t end) noexcept {
  while (pos < end) {
    uint64_t w = view(map, pos / 64);
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
inline uint64_t find_next_zero(const aword *map, uint64_t pos, uint64_t end) noexcept {
  return find_next<false>(map, pos, end);
}
inline uint64_t find_next_set(const aword *map, uint64_t pos, uint64_t end) noexcept {
  return find_next<true>(map, pos, end);
}

// First s with lo <= s < hi, s + n <= end, (s + off) % (mask + 1) == 0 and bits [s, s+n)
// all clear in the snapshot the scan reads; kNone if there is none. (The kernel's
// bitmap_find_next_zero_area_off, bounded to a window of start positions.)
inline uint64_t find_area(const aword *map, uint64_t lo, uint64_t hi, uint64_t end, uint64_t n,
                          uint64_t mask, uint64_t off) noexcept {
  uint64_t pos = lo;
  for (;;) {
    uint64_t s = find_next_zero(map, pos, end);
    if (s >= end) return kNone;
    s = ((s + off + mask) & ~mask) - off;
    if (s >= hi || s + n > end || s + n < s) return kNone;
    uint64_t i = find_next_set(map, s, s + n);
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
// lo <= s < hi, s + n <= end and bits [s, s+n) clear in the words the scan reads, or kNone.
// A run may cross one word boundary (the free bits at the top of the previous word are
// carried into the next word's free bits at its bottom). The words read are stored in
// snap[0], snap[1], ... (from the word holding lo; at most (hi - lo) / 64 + 2 of them), so
// that a caller can tell later whether a bit it saw set has been cleared since. `end` is a
// multiple of 64: a caller whose limit is not rounds it up only where the bits past the limit
// are set (gen_pool's bits past the chunk's end), so no word needs masking.
inline uint64_t find_fit(const aword *map, uint64_t lo, uint64_t hi, uint64_t end, uint64_t n,
                         uint64_t *snap) noexcept {
  // run_starts(., n) as six fixed shift-and steps (shift 0 = no-op): no branch per word.
  const uint8_t *sh = kFitShifts[n].data();
  uint64_t pos = lo & ~uint64_t{63};
  uint64_t carry = 0;  // free bits ending at pos - 1, all at or after lo
  uint64_t below = (uint64_t{1} << (lo % 64)) - 1;  // bits before lo count as taken
  while (pos < end) {
    uint64_t raw = view(map, pos / 64);
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
      return s < hi ? s : kNone;
    }
    // No start in this word (so it is not all clear): its top run is carried.
    carry = static_cast<uint64_t>(__builtin_clzll(w));
    pos += 64;
    if (pos - carry >= hi) return kNone;
  }
  return kNone;
}

// Start of the clear run that ends at `pos` (exclusive), not below `lo`: one past the last
// set bit in [lo, pos), or lo.
inline uint64_t clear_run_start(const aword *map, uint64_t pos, uint64_t lo) noexcept {
  while (pos > lo) {
    uint64_t wi = (pos - 1) / 64;
    unsigned top = static_cast<unsigned>((pos - 1) % 64);
    uint64_t w = view(map, wi);
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

}  // namespace corepool::genpool
