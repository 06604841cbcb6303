// gen_pool hint lowering: the half of the hint protocol run by scans that found nothing
// (invariants I3, I5, I7 in hints.h).
#include "genpool/hints.h"

#include "inject.h"

namespace corepool::genpool {

// I7, the lowering's half. A free that cleared bits of block b and then loaded b's hint
// before a lowering's CAS replaced it may have skipped its raise because the old value
// covered its run; its clear precedes that CAS (both seq_cst), so a re-read of the bits
// (seq_cst) after the CAS sees it. recheck_lowered runs after a CAS lowered b to `low`:
// - with `snap`, the words of b that the lowering's own computation read: if no bit set
//   there is clear now, every clear run of b now was clear in what the lowering read, so it
//   is covered by what the lowering computed (a failed scan for n: no run of n or more; an
//   exact recompute: within its fields) and, like any run a skipping free saw covered, by
//   the value the CAS replaced; `low` is the minimum of the two. Nothing to do.
// - otherwise (or without a snapshot) the exact value is recomputed from the bits and the
//   block raised to it where it exceeds `low` (seq + 1, then the groups, as a free would).
[[gnu::noinline]] void recheck_lowered(chunk *c, uint64_t b, uint64_t low,
                                       const uint64_t *snap) noexcept {
  if (snap) {
    uint64_t cleared = 0;
    for (uint64_t i = 0; i < kBlockViews; ++i)
      cleared |= snap[i] & ~c->bits()(b * kBlockViews + i, std::memory_order_seq_cst);
    if (!cleared) return;
  }
  bh x = bh_unpack(block_hint_exact(c, b, nullptr, std::memory_order_seq_cst)), l = bh_unpack(low);
  if (x.contig <= l.contig && x.left <= l.left && x.right <= l.right) return;
  aword &w = c->bhint()[b];
  uint64_t v = w.load(std::memory_order_seq_cst);
  for (;;) {
    bh h = bh_unpack(v);
    bh n = {h.seq + 1, std::max(h.contig, x.contig), std::max(h.left, x.left),
            std::max(h.right, x.right)};
    uint64_t nv = bh_pack(n.seq, n.contig, n.left, n.right);
    if (((nv ^ v) & kBhFields) == 0) return;  // covered already (by a raise or a later recheck)
    if (w.compare_exchange_weak(v, nv, std::memory_order_seq_cst, std::memory_order_seq_cst)) {
      raise_groups(c, b, h, n);  // I5
      return;
    }
  }
}

// `seen` is read (acquire) before the bits, and the CAS fails if the seq moved (I3). Only
// lowers, field by field: bits cleared by a free whose raise has not landed may make the
// exact value larger than `seen`, and a raise here would let that free find nothing grown and
// skip its group (I5). A lowering that lands is rechecked against the bits (I7).
void refresh_block(chunk *c, uint64_t b) noexcept {
  uint64_t seen = c->bhint()[b].load(std::memory_order_acquire);
  uint64_t snap[kBlockViews];
  bh o = bh_unpack(seen), x = bh_unpack(block_hint_exact(c, b, snap));
  uint64_t low = bh_pack(o.seq, std::min(o.contig, x.contig), std::min(o.left, x.left),
                         std::min(o.right, x.right));
  CP_INJECT("genpool.lower.cas");
  if (low != seen && c->bhint()[b].compare_exchange_strong(seen, low, std::memory_order_seq_cst,
                                                           std::memory_order_relaxed))
    recheck_lowered(c, b, low, snap);  // I7
}

// An unaligned scan of every start in b found nothing: every run starting in b (inside it, at
// its start, at its end) is shorter than n, so no recompute is needed.
void cap_block(chunk *c, uint64_t b, uint64_t hv, uint64_t n, const uint64_t *snap) noexcept {
  const bh h = bh_unpack(hv);
  const uint64_t cap = n - 1;
  uint64_t low = bh_pack(h.seq, std::min<uint64_t>(h.contig, cap), std::min<uint64_t>(h.left, cap),
                         std::min<uint64_t>(h.right, cap));
  CP_INJECT("genpool.lower.cas");
  // seq_cst and rechecked when it lands: a free that skipped its raise because hv covered
  // its run is seen by the re-read (I7); the words the scan read tell whether anything was
  // freed in b since.
  if (low != hv && c->bhint()[b].compare_exchange_strong(hv, low, std::memory_order_seq_cst,
                                                         std::memory_order_relaxed))
    recheck_lowered(c, b, low, snap);
}

// Nothing fit in the group: lower its hint unless a free raised it meanwhile (I5), then look
// at the blocks again: a free whose block raise this pass missed either sees the lowered
// value (and raises it) or its raise is seen here.
void lower_group(chunk *c, uint64_t g, uint64_t g0) noexcept {
  const uint64_t gfirst = g * kGroupBlocks, gend = std::min(c->nblocks, gfirst + kGroupBlocks);
  // The group's value from the hints as they are now (after the refreshes).
  uint64_t best = 0;
  for (uint64_t b = gfirst; b < gend; ++b)
    best = std::max(best, block_need(c, b, std::memory_order_relaxed));
  if (best < gh_val(g0) &&
      c->ghint()[g].compare_exchange_strong(g0, (gh_seq(g0) << 32) | best,
                                            std::memory_order_seq_cst, std::memory_order_relaxed)) {
    uint64_t again = 0;
    for (uint64_t b = gfirst; b < gend; ++b)
      again = std::max(again, block_need(c, b, std::memory_order_seq_cst));
    if (again > best) raise_group(c, g, again);
  }
}

}  // namespace corepool::genpool
