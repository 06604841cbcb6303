// Atomic bitmap helpers of gen_pool: word-at-a-time scans over std::atomic<uint64_t> arrays.
//
// Scans use relaxed loads: they only choose a candidate; the claim CAS (acq_rel) decides.
#pragma once

#include <atomic>
#include <cstdint>

namespace corepool::genpool {

using aword = std::atomic<uint64_t>;
inline constexpr uint64_t kNone = ~uint64_t{0};

// Mask of bits [b, b+len) inside one word (0 < len, b + len <= 64).
inline uint64_t word_mask(unsigned b, uint64_t len) noexcept {
  return (len >= 64 ? ~uint64_t{0} : ((uint64_t{1} << len) - 1)) << b;
}

// First index in [pos, end) whose bit equals `want`, or `end`.
template <bool want>
inline uint64_t find_next(const aword *map, uint64_t pos, uint64_t end) noexcept {
  while (pos < end) {
    uint64_t w = map[pos / 64].load(std::memory_order_relaxed);
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

inline bool test_bit(const aword *map, uint64_t i) noexcept {
  return (map[i / 64].load(std::memory_order_acquire) >> (i % 64)) & 1;
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

// Clears bits [s, e) word by word (release: the previous owner's writes to the range happen
// before a later claim that reads these words with acquire).
inline void clear_range(aword *map, uint64_t s, uint64_t e) noexcept {
  while (s < e) {
    unsigned b = s % 64;
    uint64_t len = 64 - b < e - s ? 64 - b : e - s;
    map[s / 64].fetch_and(~word_mask(b, len), std::memory_order_release);
    s += len;
  }
}

}  // namespace corepool::genpool
