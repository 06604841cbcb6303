// gen_pool's lock-free hint protocol: block and group hints kept as upper bounds of the free
// runs in the map while claims, frees and lowerings run concurrently. The raise half (run by
// every free and by a claim's rollback) is here, inline; the lowering half is in hints.cpp.
//
// Hints (layout.h): bhint[b], per block of 512 granules, {seq:34, contig:10, left:10,
// right:10}: upper bounds of the longest free run inside the block, the free run at its start
// and at its end. A free merges the free run around its range in (so a hint is never
// "unknown"); claims leave hints high (lowering them eagerly costs more than the occasional
// scan that finds nothing and then lowers the block). ghint[g], per group of 64 blocks,
// {seq:32, val:32}: upper bound of max(contig_b, right_b + left_{b+1}) over the group's
// blocks (ds::pair_need).
//
// Invariants (I1, I2 and I4 are kept by claim.h and free.cpp, I6 by their avail updates)
//   I1 alloc bits are only set by a successful CAS that found all the claimed bits clear
//      (claim), and only cleared by the thread that owns them (free, or claim's rollback).
//   I2 a start bit lies only on a granule whose alloc bit is set, and an allocation in flight
//      (being claimed, freed or rolled back) is at every instant its start followed by a
//      prefix of its granules: a claim sets the start with its first word's alloc bits and
//      goes forward; a free or a rollback goes backward, from the last word to the first, and
//      clears the start with the first word's alloc bits. So the granule after a live
//      allocation is always free or a start, and a correct free always validates (a free
//      going forward would leave alloc bits without a start after a freed first word; a new
//      allocation ending there could not be freed until they were cleared).
//   I3 block hints are upper bounds of the bits, counting the ranges of frees in flight
//      (cleared, hint not yet raised) as allocated. Every hint write is a CAS from a value
//      loaded (acquire) BEFORE the bits it is computed from are read. Raises (after a free or
//      a claim's rollback cleared bits: merge the free run around the range, seq + 1) retry
//      until they land; lowerings (a scan that found nothing caps the block at n - 1, or
//      recomputes it for an aligned request) keep the seq and are dropped when their CAS
//      fails. A clear that a lowering's read missed belongs to a raise that lands after the
//      lowering's load, so the lowering fails (seq moved) or the raise, re-reading the bits
//      after loading the lowered value, merges the run back in.
//   I4 the free's claim is one CAS, on the allocation's last word: it clears the alloc bits
//      the allocation has there (with the start bit when that is also its first word),
//      requiring them set and no start among them other than its own. The one CAS that
//      succeeds owns the free, so two racing frees of one allocation cannot both clear its
//      bits.
//   I5 group values are upper bounds of their blocks' values. A raise of a block hint
//      (seq_cst CAS) is followed by a seq_cst load of the group, raised by CAS (seq + 1) if
//      it is lower. A scan lowers a group only by a CAS on the seq it read, followed by a
//      seq_cst re-read of the group's block hints (raising the group again if they grew).
//      Store-buffer pattern, both sides seq_cst: either the free's group load sees the
//      lowered value and raises it, or the scan's re-read sees the raised block.
//   I6 avail never counts a granule as free before it is allocatable: a claim subtracts
//      (from its CPU's stripe) before setting bits (adding back if it fails), a free adds
//      after clearing the bits and raising the hints. So a process killed mid-operation
//      leaves avail short by at most its request, and avail == size with nothing in flight
//      means every bit is clear and every hint covers it (the shared-mode kill test relies on
//      this). A reader sums the stripes one by one: while operations are in flight the sum
//      may be off by their sizes (nothing in gen_pool decides on it then).
//   I7 a free whose block hint already covers the run it made (the hint loaded, seq_cst,
//      after its seq_cst clear of the bits) does not write the hint: no CAS, no seq bump. So
//      a lowering can no longer rely on its seq alone (I3): every lowering CAS is seq_cst and
//      is followed by a seq_cst re-read of the block's bits (for a cap at n - 1 one more scan
//      for n, for an exact recompute the exact value), raising the hint back (seq + 1, then
//      the groups, I5) if the bits show more than it wrote. Store-buffer pattern: either the
//      free's hint load comes after the lowering's CAS (it sees the lowered value and raises
//      it itself) or the free's clear comes before the re-read (the lowering sees the run).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "genpool/layout.h"

namespace corepool::genpool {

inline uint64_t umax(uint64_t a, uint64_t b) noexcept {
  return a ^ ((a ^ b) & (uint64_t{0} - (a < b)));
}

// Exact {contig, left, right} of block b, packed with seq 0. With `snap`, the words read are
// stored in snap[0..kBlockViews).
inline uint64_t block_hint_exact(chunk *c, uint64_t b, uint64_t *snap = nullptr,
                                 std::memory_order mo = std::memory_order_relaxed) noexcept {
  ds::block_hint x = ds::block_hint_exact(c->bits(), b * kBlockViews, kBlockViews, snap, mo);
  return bh_pack(0, x.contig, x.left, x.right);
}

// Group value that covers block b (ds::pair_need; the pair with the next block counts for
// b's group, also across a group boundary).
inline uint64_t block_need(chunk *c, uint64_t b, std::memory_order mo) noexcept {
  bh h = bh_unpack(c->bhint()[b].load(mo));
  uint64_t nl = b + 1 < c->nblocks ? bh_unpack(c->bhint()[b + 1].load(mo)).left : 0;
  return ds::pair_need({0, h.contig, h.left, h.right}, {0, 0, static_cast<uint32_t>(nl), 0});
}

// Raises group g's value to at least `need` (I5). Any raise bumps the seq, so a lowering
// CAS based on an older read fails.
inline void raise_group(chunk *c, uint64_t g, uint64_t need) noexcept {
  aword &w = c->ghint()[g];
  // seq_cst: the load is ordered after the caller's seq_cst block CAS (I5).
  uint64_t v = w.load(std::memory_order_seq_cst);
  while (gh_val(v) < need &&
         !w.compare_exchange_weak(v, ((gh_seq(v) + 1) << 32) | need, std::memory_order_seq_cst,
                                  std::memory_order_seq_cst)) {
  }
}

// After block b's hint went from `h` to `n` (fields grew): raise the groups the grown values
// count for (I5). contig_b and the pair (b, b+1) count for b's group, the pair (b-1, b) for
// b-1's; the other side of a pair is read after the caller's block CAS (seq_cst), so of two
// raises of the two sides at once, one sees the other's value.
inline void raise_groups(chunk *c, uint64_t b, const bh &h, const bh &n) noexcept {
  if (n.contig > h.contig || n.right > h.right) {
    uint64_t nl =
        b + 1 < c->nblocks ? bh_unpack(c->bhint()[b + 1].load(std::memory_order_seq_cst)).left : 0;
    raise_group(c, b / kGroupBlocks, std::max<uint64_t>(n.contig, n.right + nl));
  }
  if (n.left > h.left && b > 0) {
    uint64_t pr = bh_unpack(c->bhint()[b - 1].load(std::memory_order_seq_cst)).right;
    raise_group(c, (b - 1) / kGroupBlocks, pr + n.left);
  }
}

// True when hint value v of block b says every granule of b is free (then it covers any run
// in b: a free needs no scan, I7). The last block of a chunk whose size is not a multiple of
// 512 granules has its own "all free" value (its run cannot reach the set bits past the end).
inline bool all_free(chunk *c, uint64_t b, uint64_t v) noexcept {
  v &= kBhFields;
  return v == kBhAllFree || (b + 1 == c->nblocks && v == c->tail_all_free);
}

// After alloc bits of [s, e) were cleared (seq_cst; a free or a claim's rollback): merge the
// clear run around [s, e) into the touched block hints, then raise their groups (I3, I5).
// A block whose hint already covers the run is not written at all (I7).
inline void raise_hints(chunk *c, uint64_t s, uint64_t e) noexcept {
  const ds::paired_view m = c->bits();
  const uint64_t b0 = s / kBlockBits, b1 = (e - 1) / kBlockBits;
  for (uint64_t b = b0; b <= b1; ++b) {
    uint64_t bs = b * kBlockBits, be = bs + kBlockBits;
    aword &w = c->bhint()[b];
    // I3: the bits are read after the load of the value the CAS replaces, so a free whose
    // hint CAS landed earlier has its clear seen here, and one that lands in between fails
    // this CAS (its seq bump). seq_cst: ordered after the clear of our bits for I7 (the
    // store-buffer pair with a lowering's CAS and re-read), and for I5.
    uint64_t v = w.load(std::memory_order_seq_cst);
    // A hint that says "all free" covers any run: skip the scans (I7, as below).
    if (all_free(c, b, v)) continue;
    bh h, n;
    for (;;) {
      uint64_t a = ds::clear_run_start(m, std::max(s, bs), bs);
      uint64_t z = ds::find_next_set(m, std::min(e, be), be);
      h = bh_unpack(v);
      // Branch-free merges (which of them grow depends on the data).
      uint64_t len = z - a;
      n = {h.seq + 1, static_cast<uint32_t>(umax(h.contig, len)),
           static_cast<uint32_t>(umax(h.left, len & (uint64_t{0} - (a == bs)))),
           static_cast<uint32_t>(umax(h.right, len & (uint64_t{0} - (z == be))))};
      uint64_t nv = bh_pack(n.seq, n.contig, n.left, n.right);
      // I7: the hint `v`, loaded (seq_cst) after our clear, already covers the run: nothing
      // to write. A lowering that replaces v after this load re-reads the bits after its
      // CAS and sees our clear (it raises the hint back itself); one that landed before this
      // load is what v is, and covers the run.
      if (((nv ^ v) & kBhFields) == 0) break;
      if (w.compare_exchange_weak(v, nv, std::memory_order_seq_cst, std::memory_order_seq_cst)) {
        // I5: only a value that grew can leave a group under its blocks.
        raise_groups(c, b, h, n);
        break;
      }
    }
  }
}

// raise_hints for a one-word free whose CAS left its word as `now` (alloc bits), when the
// clear run around [s, e) lies strictly inside that word (set bits below s and at or after e
// in `now`): then the run is measured from `now` alone, and it cannot reach its block's start
// or end, so only `contig` can grow (an "all free" hint has the largest contig, so it covers
// the run). Returns false (nothing done) when the run reaches a word boundary. Reading the
// run from the CAS's result instead of re-reading after the hint load (I3) is safe here: both
// ends of the run are bits of this word, so whatever changes them later is an RMW on this
// word ordered after ours — a claim (the run we merge is then an over-estimate, and hints
// are upper bounds) or a free (whose own merge re-reads this word after its RMW and so
// includes our range).
inline bool raise_hint_in_word(chunk *c, uint64_t s, uint64_t e, uint64_t now) noexcept {
  const uint64_t below = now & ((uint64_t{1} << (s % 32)) - 1);
  const uint64_t above = (e % 32) ? now & kAllocHalf & (~uint64_t{0} << (e % 32)) : 0;
  if (!below || !above) return false;  // raise_hints (it checks "all free" first)
  const uint64_t len = static_cast<uint64_t>(__builtin_ctzll(above)) -
                       (63 - static_cast<uint64_t>(__builtin_clzll(below))) - 1;
  const uint64_t b = s / kBlockBits;
  aword &w = c->bhint()[b];
  uint64_t v = w.load(std::memory_order_seq_cst);  // after our seq_cst clear (I7)
  for (;;) {
    bh h = bh_unpack(v);
    if (h.contig >= len) return true;  // covered: nothing to write (I7)
    bh n = {h.seq + 1, static_cast<uint32_t>(len), h.left, h.right};
    if (w.compare_exchange_weak(v, bh_pack(n.seq, n.contig, n.left, n.right),
                                std::memory_order_seq_cst, std::memory_order_seq_cst)) {
      raise_groups(c, b, h, n);  // I5
      return true;
    }
  }
}

// ---- lowering (hints.cpp) -------------------------------------------------------------------
// After a CAS lowered block b to `low`: re-reads the bits and raises b back where a free that
// skipped its raise (I7) left more than `low` (snap: the words the lowering read, or NULL).
void recheck_lowered(chunk *c, uint64_t b, uint64_t low, const uint64_t *snap) noexcept;
// Lowers block b's hint to the exact value unless a free raises it meanwhile (I3, I7).
void refresh_block(chunk *c, uint64_t b) noexcept;
// After an unaligned scan of every start in block b found no run of n: caps b's fields at
// n - 1 from `hv`, the value loaded before the scan read the bits (I3, I7). `snap`: the words
// the scan read, or NULL.
void cap_block(chunk *c, uint64_t b, uint64_t hv, uint64_t n, const uint64_t *snap) noexcept;
// After a walk over every block of group g found nothing for a request whose group value was
// g0: lowers the group to its blocks' values (I5).
void lower_group(chunk *c, uint64_t g, uint64_t g0) noexcept;

}  // namespace corepool::genpool
