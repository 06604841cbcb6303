// gen_pool allocation: the fit algorithms (first fit guided by hints, with start alignment and
// a per-CPU home in spread mode; best fit; fixed offset), the walk over the chunks and the
// public alloc functions.
//
// Progress: alloc is lock-free. It makes one pass over the chunks; in a chunk the candidate
// start position only moves forward: a claim that meets a set bit undoes its partial set and
// the search continues after the conflicting bit (not from the same start, as the kernel
// does). A word CAS fails only because another thread changed that word, i.e. made progress.
// So an alloc finishes in O(bitmap words + number of concurrent successful claims) steps.
// It may return 0 while space freed behind its cursor exists (as the kernel's may).
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "error.h"
#include "genpool/claim.h"
#include "genpool/internal.h"
#include "platform/cpu.h"
#include "platform/rseq.h"
#include "platform/topology.h"

namespace corepool::genpool {
namespace {

// The CPU the caller runs on (a hint: it may migrate at once). One TLS load with rseq.
[[gnu::noinline]] unsigned this_cpu_slow() noexcept {
  platform::rseq_registered_area();  // primes the fast path's TLS pointer when rseq works
  return platform::current_cpu();
}
inline unsigned this_cpu() noexcept {
  platform::rseq_abi *rs = platform::rseq_registered_area_if_known();
  if (__builtin_expect(rs != nullptr, 1))
    return std::atomic_ref<uint32_t>(rs->cpu_id).load(std::memory_order_relaxed);
  return this_cpu_slow();
}

// Searches start positions in [lo, hi) (runs ending by `end`) and claims the first that
// holds, continuing past conflicts. Returns the start or kNone. `snap` (room for
// (hi - lo + 62) / 64 + 2 words): when the search fails in one find_fit pass from lo (word
// aligned), *whole is set and snap holds the words that pass read, from lo's word on.
[[gnu::always_inline]] inline uint64_t scan_claim(chunk *c, uint64_t lo, uint64_t hi, uint64_t end,
                                                  uint64_t n, uint64_t mask, uint64_t off,
                                                  uint64_t *snap, bool *whole) noexcept {
  uint64_t pos = lo;
  *whole = false;
  while (pos < hi) {
    bool fit = mask == 0 && n <= 64;
    // find_fit's end rounded up to a word: only past nbits, where the bits are set (B1).
    uint64_t s = fit ? ds::find_fit(c->bits(), pos, hi, (end + 63) & ~uint64_t{63}, n, snap)
                     : ds::find_area(c->bits(), pos, hi, end, n, mask, off);
    if (s == kNone) {
      *whole = fit && pos == lo && lo % 64 == 0;
      return kNone;
    }
    uint64_t conflict;
    if (claim(c, s, n, &conflict)) return s;
    pos = conflict + 1;
  }
  return kNone;
}

// First fit among the starts in [slo, shi) of chunk c, for n <= kBlockBits, guided by
// hints; mask/off describe the start alignment in granules. A fitting run starting in block
// b ends in b or b+1: contig_b >= n or right_b + left_{b+1} >= n is necessary. A block whose
// starts the range covers only in part (a spread search from a home inside it) is scanned
// over that part and never lowered: its failed scan did not look at every start.
uint64_t fit_blocks(chunk *c, uint64_t n, uint64_t mask, uint64_t off, uint64_t slo,
                    uint64_t shi) noexcept {
  const uint64_t nb = c->nblocks;
  const uint64_t bfirst = slo / kBlockBits, blast = (shi + kBlockBits - 1) / kBlockBits;
  aword *bhv = c->bhint();
  for (uint64_t g = bfirst / kGroupBlocks; g * kGroupBlocks < blast; ++g) {
    uint64_t g0 = c->ghint()[g].load(std::memory_order_acquire);
    if (gh_val(g0) < n) continue;
    const uint64_t gfirst = g * kGroupBlocks, gend = std::min(nb, gfirst + kGroupBlocks);
    const uint64_t bbeg = std::max(bfirst, gfirst), bend = std::min(blast, gend);
    uint64_t hv = bhv[bbeg].load(std::memory_order_acquire);
    for (uint64_t b = bbeg; b < bend; ++b) {
      uint64_t nv = b + 1 < nb ? bhv[b + 1].load(std::memory_order_acquire) : 0;
      bh h = bh_unpack(hv), hn = bh_unpack(nv);
      // (A run that starts in b + 1 is b + 1's: the pair counts only with right_b > 0.)
      bool cross = (h.right != 0) & (h.right + hn.left >= n);
      if (h.contig >= n || cross) {
        const uint64_t bs = b * kBlockBits;
        const uint64_t lo = std::max(bs, slo), hi = std::min(bs + kBlockBits, shi);
        uint64_t snap[kBlockViews + 2];
        bool whole;
        uint64_t s = scan_claim(c, lo, hi, std::min(c->nbits, bs + 2 * kBlockBits), n, mask, off,
                                snap, &whole);
        if (s != kNone) return s;
        if (lo != bs || hi != bs + kBlockBits) {
          hv = nv;  // part of the block only: nothing learned about the rest of its starts
          continue;
        }
        // Lowered from hv, the value loaded before the scan read the bits (I3).
        if (mask == 0)
          cap_block(c, b, hv, n, whole ? snap : nullptr);
        else
          refresh_block(c, b);
        if (cross && b + 1 < nb) refresh_block(c, b + 1);
        nv = b + 1 < nb ? bhv[b + 1].load(std::memory_order_acquire) : 0;
      }
      hv = nv;
    }
    // A group is lowered only after a walk over all its blocks (a spread search starting or
    // ending inside it saw part of it, and recomputing the group costs 64 hint loads).
    if (bbeg == gfirst && bend == gend) lower_group(c, g, g0);
  }
  return kNone;
}

// First fit in chunk c; mask/off describe the start alignment in granules. Requests of up to
// one block start at granule `home` (0: plain first fit): the lowest fitting start at or past
// it, else the lowest one before it.
uint64_t first_fit(chunk *c, uint64_t n, uint64_t mask, uint64_t off, uint64_t home = 0) noexcept {
  const uint64_t nb = c->nblocks;
  aword *bhv = c->bhint();
  if (n <= kBlockBits) {
    uint64_t s = fit_blocks(c, n, mask, off, home, nb * kBlockBits);
    if (s == kNone && home) s = fit_blocks(c, n, mask, off, 0, home);
    return s;
  }
  // Large requests (> one block): a run starting in b is at most right_b + whole free
  // blocks + left of the block that ends it. A candidate region [b, last] is scanned
  // exactly once for every start inside it, then the walk continues after it.
  for (uint64_t b = 0; b < nb;) {
    bh h = bh_unpack(bhv[b].load(std::memory_order_acquire));
    if (h.right == 0) {
      ++b;
      continue;
    }
    uint64_t total = h.right, last = b;
    while (total < n && last + 1 < nb) {
      bh hc = bh_unpack(bhv[++last].load(std::memory_order_acquire));
      if (hc.contig >= kBlockBits) {
        total += kBlockBits;
      } else {
        total += hc.left;
        break;
      }
    }
    if (total < n) {  // no run starting in b..last-1 is long enough
      b = std::max(last, b + 1);
      continue;
    }
    uint64_t lo = b * kBlockBits, hi = std::min(c->nbits, (last + 1) * kBlockBits);
    uint64_t snap[kBlockViews + 2];  // unused: n > 64 never takes find_fit
    bool whole;
    uint64_t s = scan_claim(c, lo, hi, c->nbits, n, mask, off, snap, &whole);
    if (s != kNone) return s;
    for (uint64_t x = b; x <= last; ++x) refresh_block(c, x);
    b = last + 1;
  }
  return kNone;
}

// Best fit in chunk c: the smallest free run >= n (first such on ties), exact runs win at
// once. Linear in the bitmap words, like the kernel's; a lost claim retries a few times and
// then falls back to first fit.
uint64_t best_fit(chunk *c, uint64_t n) noexcept {
  const ds::paired_view m = c->bits();
  for (int attempt = 0; attempt < 4; ++attempt) {
    uint64_t best = kNone, best_len = kNone, pos = 0;
    while (pos < c->nbits) {
      uint64_t z = ds::find_next_zero(m, pos, c->nbits);
      if (z >= c->nbits) break;
      uint64_t o = ds::find_next_set(m, z, c->nbits);
      uint64_t len = o - z;
      if (len >= n && len < best_len) {
        best = z;
        best_len = len;
        if (len == n) break;
      }
      pos = o;
    }
    if (best == kNone) return kNone;
    uint64_t conflict;
    if (claim(c, best, n, &conflict)) return best;
  }
  return first_fit(c, n, 0, 0);
}

// Runs the algorithm on one chunk; returns the start granule or kNone.
// `cpu`: the caller's CPU for a spread pool, or -1.
uint64_t alloc_in_chunk(header *h, chunk *c, uint64_t n, const algo_req &r, int cpu) noexcept {
  const uint64_t home = cpu >= 0 ? home_granule(c, static_cast<unsigned>(cpu)) : 0;
  switch (r.algo) {
    case CP_GENPOOL_FIRST_FIT:
      return first_fit(c, n, 0, 0, home);
    case CP_GENPOOL_FIRST_FIT_ORDER_ALIGN: {
      uint64_t p = 1;
      while (p < n) p <<= 1;
      return first_fit(c, n, p - 1, 0, home);
    }
    case CP_GENPOOL_FIRST_FIT_ALIGN: {
      // Aligned in this process's address space (a chunk inside a shared region may sit at
      // differently aligned addresses in different processes).
      const uint64_t cs = chunk_start(h, c);
      uint64_t a = r.value, g = gran(h);
      if (a <= g) return (cs & (a - 1)) ? kNone : first_fit(c, n, 0, 0, home);
      if (cs & (g - 1)) return kNone;  // no granule boundary is aligned
      uint64_t mask = (a >> h->order) - 1;
      return first_fit(c, n, mask, (cs >> h->order) & mask, home);
    }
    case CP_GENPOOL_FIXED: {
      if (r.value & (gran(h) - 1)) return kNone;
      uint64_t s = r.value >> h->order;
      if (s >= c->nbits || n > c->nbits - s) return kNone;
      uint64_t conflict;
      return claim(c, s, n, &conflict) ? s : kNone;
    }
    case CP_GENPOOL_BEST_FIT:
      return best_fit(c, n);
  }
  return kNone;
}

uintptr_t do_alloc(cp_gen_pool *pool, size_t size, const algo_req &r, void **owner) noexcept {
  if (!pool) return set_error(-EINVAL, "pool is NULL"), 0;
  if (size == 0) return 0;
  header *h = pool->hdr;
  uint64_t n = granules(h, size);
  // Spread mode: the caller's CPU picks the home. A CPU id at or above nr_cpu_ids() (the
  // kernel runs threads on CPUs a smaller possible mask leaves out) has no home, as
  // cp_gen_pool_home() says: plain first fit.
  int cpu = -1;
  if (h->spread.load(std::memory_order_relaxed)) {
    const unsigned me = this_cpu();
    if (me < platform::nr_cpu_ids()) cpu = static_cast<int>(me);
  }
  for (chunk *c = first_chunk(pool); c; c = next_chunk(pool, c)) {
    // (No avail check here, unlike the kernel: summing the stripes costs more than the
    // group hints do to pass a full chunk.)
    if (n > c->nbits) continue;
    uint64_t s = alloc_in_chunk(h, c, n, r, cpu);
    if (s == kNone) continue;
    if (owner) *owner = reinterpret_cast<void *>(static_cast<uintptr_t>(c->owner));
    if (pool->threshold.load(std::memory_order_relaxed)) note_growth(pool);
    return static_cast<uintptr_t>(chunk_start(h, c) + (s << h->order));
  }
  pool->counters.add(1, kFailedAllocs);
  if (pool->threshold.load(std::memory_order_relaxed)) note_growth(pool);
  return 0;
}

}  // namespace

bool decode_algo(cp_genpool_algo algo, const void *data, algo_req *out) noexcept {
  out->algo = algo;
  out->value = 0;
  switch (algo) {
    case CP_GENPOOL_FIRST_FIT:
    case CP_GENPOOL_FIRST_FIT_ORDER_ALIGN:
    case CP_GENPOOL_BEST_FIT:
      return true;
    case CP_GENPOOL_FIRST_FIT_ALIGN: {
      if (!data) return set_error(-EINVAL, "FIRST_FIT_ALIGN needs cp_genpool_data_align"), false;
      size_t a = static_cast<const cp_genpool_data_align *>(data)->align;
      if (a == 0 || (a & (a - 1)))
        return set_error(-EINVAL, "alignment must be a power of two"), false;
      out->value = a;
      return true;
    }
    case CP_GENPOOL_FIXED:
      if (!data) return set_error(-EINVAL, "FIXED needs cp_genpool_data_fixed"), false;
      out->value = static_cast<const cp_genpool_data_fixed *>(data)->offset;
      return true;
  }
  set_error(-EINVAL, "unknown gen_pool algorithm");
  return false;
}

}  // namespace corepool::genpool

using namespace corepool::genpool;

extern "C" {

uintptr_t cp_gen_pool_alloc_algo_owner(struct cp_gen_pool *pool, size_t size,
                                       enum cp_genpool_algo algo, const void *data, void **owner) {
  if (owner) *owner = nullptr;
  algo_req r;
  if (!decode_algo(algo, data, &r)) return 0;
  return do_alloc(pool, size, r, owner);
}

uintptr_t cp_gen_pool_alloc_algo(struct cp_gen_pool *pool, size_t size, enum cp_genpool_algo algo,
                                 const void *data) {
  return cp_gen_pool_alloc_algo_owner(pool, size, algo, data, nullptr);
}

uintptr_t cp_gen_pool_alloc(struct cp_gen_pool *pool, size_t size) {
  if (__builtin_expect(!pool, 0)) return corepool::set_error(-EINVAL, "pool is NULL"), 0;
  uint64_t w = pool->hdr->algo_word.load(std::memory_order_relaxed);
  algo_req r{static_cast<cp_genpool_algo>(w & 0xff), w >> 8};
  return do_alloc(pool, size, r, nullptr);
}

void *cp_gen_pool_dma_alloc(struct cp_gen_pool *pool, size_t size, uint64_t *dma) {
  uintptr_t a = cp_gen_pool_alloc(pool, size);
  if (dma) *dma = a ? cp_gen_pool_virt_to_phys(pool, a) : UINT64_MAX;
  return reinterpret_cast<void *>(a);
}

void *cp_gen_pool_dma_zalloc(struct cp_gen_pool *pool, size_t size, uint64_t *dma) {
  void *p = cp_gen_pool_dma_alloc(pool, size, dma);
  if (p) std::memset(p, 0, size);
  return p;
}

}  // extern "C"
