// ds/hint_bitmap.h against a naive model: every scan and every hint, over random maps read
// through each view kind (plain, atomic, paired halves).
#include "ds/hint_bitmap.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <random>
#include <vector>

namespace {
using namespace corepool::ds;

struct maps {
  std::vector<uint64_t> plain;
  std::vector<std::atomic<uint64_t>> atomic, paired;
  explicit maps(const std::vector<bool> &bits)
      : plain(bits.size() / 64), atomic(bits.size() / 64), paired(bits.size() / 32) {
    for (size_t i = 0; i < bits.size(); ++i) {
      if (!bits[i]) continue;
      plain[i / 64] |= uint64_t{1} << (i % 64);
      // Paired: bit i in the low half of word i / 32; the high halves carry noise that no
      // view may see.
      paired[i / 32].fetch_or(uint64_t{1} << (i % 32), std::memory_order_relaxed);
    }
    for (size_t k = 0; k < plain.size(); ++k) atomic[k].store(plain[k], std::memory_order_relaxed);
    for (auto &w : paired) w.fetch_or(0xa5a5a5a5ULL << 32, std::memory_order_relaxed);
  }
};

// Random map: runs of set and clear bits of random lengths (so long runs exist).
std::vector<bool> random_bits(std::mt19937_64 &r, size_t n) {
  std::vector<bool> b(n);
  size_t i = 0;
  bool v = r() & 1;
  while (i < n) {
    size_t len = 1 + r() % ((r() & 3) ? 9 : 700);
    for (size_t k = 0; k < len && i < n; ++k) b[i++] = v;
    v = !v;
  }
  return b;
}

uint64_t m_next(const std::vector<bool> &b, uint64_t pos, uint64_t end, bool want) {
  while (pos < end && b[pos] != want) ++pos;
  return pos;
}
bool m_clear(const std::vector<bool> &b, uint64_t s, uint64_t n) {
  for (uint64_t i = s; i < s + n; ++i)
    if (b[i]) return false;
  return true;
}
uint64_t m_area(const std::vector<bool> &b, uint64_t lo, uint64_t hi, uint64_t end, uint64_t n,
                uint64_t mask, uint64_t off) {
  for (uint64_t s = lo; s < hi && s + n <= end; ++s)
    if (((s + off) & mask) == 0 && m_clear(b, s, n)) return s;
  return kNoBit;
}
block_hint m_hint(const std::vector<bool> &b, uint64_t lo, uint64_t bits) {
  block_hint h{static_cast<uint32_t>(bits), 0, 0, 0};
  uint64_t run = 0;
  bool at_start = true;
  for (uint64_t i = lo; i < lo + bits; ++i) {
    if (b[i]) {
      if (at_start) h.left = static_cast<uint32_t>(run);
      at_start = false;
      run = 0;
      continue;
    }
    if (h.first_free == bits) h.first_free = static_cast<uint32_t>(i - lo);
    ++run;
    if (run > h.contig) h.contig = static_cast<uint32_t>(run);
  }
  if (at_start) h.left = static_cast<uint32_t>(run);
  h.right = static_cast<uint32_t>(run);
  return h;
}
uint64_t m_longest(const std::vector<bool> &b) {
  uint64_t best = 0, run = 0;
  for (bool v : b) {
    run = v ? 0 : run + 1;
    best = std::max(best, run);
  }
  return best;
}

template <class V>
void check_all(const std::vector<bool> &b, V v, std::mt19937_64 &r) {
  const uint64_t n = b.size();
  for (int t = 0; t < 200; ++t) {
    uint64_t pos = r() % n, end = pos + r() % (n - pos + 1);
    ASSERT_EQ(find_next_zero(v, pos, end), m_next(b, pos, end, false));
    ASSERT_EQ(find_next_set(v, pos, end), m_next(b, pos, end, true));
    uint64_t lo = r() % n, hi = lo + 1 + r() % (n - lo), len = 1 + r() % 64;
    uint64_t mask = (uint64_t{1} << (r() % 4)) - 1, off = r() % (mask + 1);
    ASSERT_EQ(find_area(v, lo, hi, n, len, mask, off), m_area(b, lo, hi, n, len, mask, off));
    std::vector<uint64_t> snap((hi - lo + 62) / 64 + 2);
    // find_fit: bits past its end must be set (B1); n is a multiple of 64 here.
    ASSERT_EQ(find_fit(v, lo, hi, n, len, snap.data()), m_area(b, lo, hi, n, len, 0, 0))
        << "lo " << lo << " hi " << hi << " len " << len;
    uint64_t p = r() % (n + 1), l = p ? r() % p : 0;
    uint64_t want = p;
    while (want > l && !b[want - 1]) --want;
    ASSERT_EQ(clear_run_start(v, p, l), want);
  }
  const uint64_t block_bits = 512, nblocks = n / block_bits;
  std::vector<block_hint> hs(nblocks);
  for (uint64_t k = 0; k < nblocks; ++k) {
    std::vector<uint64_t> snap(block_bits / 64);
    block_hint x = block_hint_exact(v, k * 8, 8, snap.data(), std::memory_order_relaxed);
    block_hint m = m_hint(b, k * block_bits, block_bits);
    ASSERT_EQ(x.first_free, m.first_free) << "block " << k;
    ASSERT_EQ(x.contig, m.contig) << "block " << k;
    ASSERT_EQ(x.left, m.left) << "block " << k;
    ASSERT_EQ(x.right, m.right) << "block " << k;
    for (uint64_t i = 0; i < 8; ++i) ASSERT_EQ(snap[i], v(k * 8 + i, std::memory_order_relaxed));
    hs[k] = x;
  }
  row_hint row = merge_blocks(hs.data(), nblocks, block_bits);
  EXPECT_EQ(row.contig, m_longest(b));
  EXPECT_EQ(row.first_free, m_next(b, 0, n, false));
  // pair_need covers every run that starts in a block and ends in it or the next one.
  for (uint64_t k = 0; k + 1 < nblocks; ++k) {
    uint64_t best = 0;
    for (uint64_t s = k * block_bits; s < (k + 1) * block_bits; ++s) {
      uint64_t e = m_next(b, s, (k + 2) * block_bits, true);
      if (s == k * block_bits || b[s - 1]) best = std::max(best, e - s);
    }
    EXPECT_GE(pair_need(hs[k], hs[k + 1]), best) << "block " << k;
  }
}

TEST(HintBitmap, ScansAndHintsMatchTheModelOnEveryView) {
  std::mt19937_64 r(42);
  for (int round = 0; round < 40; ++round) {
    std::vector<bool> b = random_bits(r, 512 * (1 + r() % 6));
    maps m(b);
    check_all(b, plain_view{m.plain.data()}, r);
    check_all(b, atomic_view{m.atomic.data()}, r);
    check_all(b, paired_view{m.paired.data()}, r);
  }
}

TEST(HintBitmap, EdgeMaps) {
  std::mt19937_64 r(7);
  for (bool fill : {false, true}) {
    std::vector<bool> b(1024, fill);
    maps m(b);
    check_all(b, plain_view{m.plain.data()}, r);
    block_hint h =
        block_hint_exact(plain_view{m.plain.data()}, 0, 8, nullptr, std::memory_order_relaxed);
    EXPECT_EQ(h.contig, fill ? 0u : 512u);
    EXPECT_EQ(h.first_free, fill ? 512u : 0u);
  }
}

// The longest run at each end of a row, and across a block boundary.
TEST(HintBitmap, RunsAtTheRowEdges) {
  std::mt19937_64 r(9);
  for (uint64_t len : {1u, 63u, 64u, 511u, 512u, 700u, 1500u}) {
    for (int where = 0; where < 3; ++where) {
      std::vector<bool> b(2048, true);
      uint64_t s = where == 0 ? 0 : where == 1 ? 2048 - len : 512 - len / 2;
      for (uint64_t i = s; i < s + len; ++i) b[i] = false;
      maps m(b);
      check_all(b, plain_view{m.plain.data()}, r);
      check_all(b, paired_view{m.paired.data()}, r);
    }
  }
}

TEST(HintBitmap, WordHelpers) {
  EXPECT_EQ(word_mask(0, 64), ~uint64_t{0});
  EXPECT_EQ(word_mask(4, 3), uint64_t{0x70});
  EXPECT_EQ(run_starts(0b1110111, 3), uint64_t{0b10001});
  EXPECT_EQ(inner_clear(0b1000101), uint64_t{0b0111010});
  EXPECT_EQ(longest_run_over(0b0111011100, 1), 3u);
  EXPECT_EQ(longest_run_over(0b1, 2), 2u);
  for (uint64_t n = 1; n <= 64; ++n) {
    uint64_t total = 0;
    for (uint8_t s : kFitShifts[n]) total += s;
    EXPECT_EQ(total, n - 1);
  }
}

}  // namespace
