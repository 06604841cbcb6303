// gen_pool: lock-free allocator of special memory ranges (see corepool/genpool.h and
// docs/genpool.md).
//
// Protocol
// --------
// Each chunk has a map with two bits per granule, 32 granules per word (bitmap.h):
//   alloc  bit set = granule allocated (or being claimed). The truth for allocation.
//   start  bit set at the first granule of each allocation, set by the same CAS that claims
//          the allocation's first word and cleared by the same CAS that frees it. An
//          allocation is a start granule and the allocated granules after it up to the next
//          start or free granule, so a free validates its size without an end mark, and an
//          allocation within one word costs one CAS to claim and one to free.
// and two levels of hints:
//   bhint[b]  per block of 512 granules: {seq:34, contig:10, left:10, right:10}, upper bounds
//             of the longest free run inside the block, the free run at its start and at
//             its end. A free merges the free run around its range in (so a hint is never
//             "unknown"); claims leave hints high (lowering them eagerly costs more than the
//             occasional scan that finds nothing and then lowers the block).
//   ghint[g]  per group of 64 blocks: {seq:32, val:32}, upper bound of
//             max(contig_b, right_b + left_{b+1}) over the group's blocks.
//
// Invariants
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
//
// Which operations may run concurrently: alloc*/free*/avail/has_addr/virt_to_phys/
// for_each_chunk with each other and with add*; add* with each other (serialized by the add
// lock); destroy/detach with nothing.
//
// Progress: alloc is lock-free. It makes one pass over the chunks; in a chunk the candidate
// start position only moves forward: a claim that meets a set bit undoes its partial set and
// the search continues after the conflicting bit (not from the same start, as the kernel
// does). A word CAS fails only because another thread changed that word, i.e. made progress.
// So an alloc finishes in O(bitmap words + number of concurrent successful claims) steps.
// It may return 0 while space freed behind its cursor exists (as the kernel's may). free is
// lock-free with the same argument (a bounded number of fetch_and, CAS retries only on
// others' progress).
#include "corepool/genpool.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>

#include "corepool/cpu.h"
#include "ds/bgwork.h"
#include "error.h"
#include "genpool/bitmap.h"
#include "inject.h"
#include "platform/cpu.h"
#include "platform/memory.h"
#include "platform/rseq.h"
#include "platform/topology.h"

namespace corepool::genpool {
namespace {

constexpr uint64_t kBlockBits = 512;
constexpr uint64_t kBlockViews = kBlockBits / 64;
constexpr uint64_t kGroupBlocks = 64;
constexpr uint64_t kMagic = 0x6c6f6f706e656763ULL;  // "cgenpool"
constexpr uint32_t kVersion = 3;  // 2: avail striped per CPU, spread flag; 3: one map
constexpr int kMaxOrder = 40;

// ---- hints ---------------------------------------------------------------------------------
struct bh {
  uint64_t seq;
  uint32_t contig, left, right;
};
inline bh bh_unpack(uint64_t v) noexcept {
  return {v >> 30, static_cast<uint32_t>((v >> 20) & 1023), static_cast<uint32_t>((v >> 10) & 1023),
          static_cast<uint32_t>(v & 1023)};
}
constexpr uint64_t bh_pack(uint64_t seq, uint64_t contig, uint64_t left, uint64_t right) noexcept {
  return (seq << 30) | (contig << 20) | (left << 10) | right;
}
inline uint64_t gh_val(uint64_t v) noexcept {
  return v & 0xffffffffu;
}
inline uint64_t gh_seq(uint64_t v) noexcept {
  return v >> 32;
}

// ---- layout (all in one mapping for a shared pool; offsets only) ----------------------------
struct chunk {
  std::atomic<int64_t> next;          // offset of the next chunk from the header, 0 = none
  uint64_t start;                     // first address
  uint64_t nbits;                     // granules
  uint64_t phys;                      // UINT64_MAX: none
  uint64_t owner;                     // cookie (process-local meaning)
  uint64_t nviews, nblocks, ngroups;  // nviews: 64-granule views of the map (2 words each)
  uint64_t meta_bytes;
  uint64_t nstripes;     // avail stripes per set, a power of two
  uint64_t home_stride;  // spread mode: granules between CPU k's home and k+1's (home_granule)
  // Bit i set: plain / atomic stripe i may be non-zero (set before its first add; readers
  // sum only these, so reading avail costs what the CPUs that used the chunk cost).
  std::atomic<uint64_t> touched_plain, touched_atomic;
  uint64_t tail_all_free;  // fields of the last block's hint when all its granules are free
  uint64_t pad[2];
  // followed by avail stripes[2 * nstripes] (one cache line each: the plain set, then the
  // atomic set), map[2 * nviews] (bitmap.h), bhint[nblocks], ghint[ngroups]
  std::atomic<int64_t> *stripe(uint64_t i) noexcept {
    return reinterpret_cast<std::atomic<int64_t> *>(reinterpret_cast<char *>(this + 1) + 64 * i);
  }
  aword *alloc() noexcept {
    return reinterpret_cast<aword *>(reinterpret_cast<char *>(this + 1) + 128 * nstripes);
  }
  aword *bhint() noexcept { return alloc() + 2 * nviews; }
  aword *ghint() noexcept { return bhint() + nblocks; }
};
static_assert(sizeof(chunk) % 64 == 0);

struct header {
  uint64_t magic;
  uint32_t version;
  int32_t order;
  uint64_t shared;
  uint64_t mem_size;                // shared: bytes of the region
  std::atomic<uint64_t> bump;       // shared: next free metadata offset (under the lock)
  std::atomic<uint64_t> algo_word;  // algo | value << 8
  std::atomic<uint64_t> spread;     // 1: each CPU's first-fit search starts at its home
  std::atomic<int64_t> first;       // first chunk offset, 0 = none
  int64_t tail;                     // last chunk offset (under the lock)
  pthread_mutex_t lock;             // add lock (robust + process-shared in shared mode)
};
constexpr uint64_t kHeaderBytes = (sizeof(header) + 63) & ~uint64_t{63};

// avail is split into counters per CPU, each on its own cache line: every alloc and free
// updates it, and one shared counter was the line that all CPUs' operations bounced even when
// they worked in different parts of the chunk. Two sets of stripes (a power of two >=
// nr_cpu_ids each, at most 64): the plain set, written only by restartable sequences of
// their CPU (a plain add, no lock prefix), and the atomic set, written only by atomic adds
// (threads without rseq, architectures without the sequences, CPUs 64 and up; any process of a
// shared pool may be one of them). Never both kinds on one stripe: a plain add racing with
// an atomic one could lose either. A CPU id at or past the plain set's size (possible when
// processes of a shared pool disagree on the CPU count) takes the atomic set.
uint64_t stripes_for_machine() noexcept {
  uint64_t n = 1;
  while (n < platform::nr_cpu_ids() && n < 64) n <<= 1;
  return n;
}

uint64_t meta_bytes_for(uint64_t nbits, uint64_t nstripes) noexcept {
  uint64_t nblocks = (nbits + kBlockBits - 1) / kBlockBits;
  uint64_t ngroups = (nblocks + kGroupBlocks - 1) / kGroupBlocks;
  uint64_t nviews = nblocks * kBlockViews;
  return sizeof(chunk) + 128 * nstripes + 8 * (2 * nviews + nblocks + ngroups);
}

}  // namespace
}  // namespace corepool::genpool

using namespace corepool;
using namespace corepool::genpool;

struct cp_gen_pool {
  header *hdr = nullptr;
  bool shared = false;
  // Growth hook (process-local).
  std::atomic<size_t> threshold{0};
  cp_gen_pool_grow_fn grow = nullptr;
  void *grow_ctx = nullptr;
  bool engine_ready = false;
  ds::refill_engine engine;
};

namespace corepool::genpool {
namespace {

inline chunk *at(header *h, int64_t off) noexcept {
  return off ? reinterpret_cast<chunk *>(reinterpret_cast<uintptr_t>(h) +
                                         static_cast<uint64_t>(off))
             : nullptr;
}
inline int64_t off_of(header *h, chunk *c) noexcept {
  return static_cast<int64_t>(reinterpret_cast<uintptr_t>(c) - reinterpret_cast<uintptr_t>(h));
}
// Acquire pairs with add's release publication: the chunk's fields and zeroed maps are seen.
inline chunk *first_chunk(header *h) noexcept {
  return at(h, h->first.load(std::memory_order_acquire));
}
inline chunk *next_chunk(header *h, chunk *c) noexcept {
  return at(h, c->next.load(std::memory_order_acquire));
}
inline uint64_t gran(header *h) noexcept {
  return uint64_t{1} << h->order;
}
inline uint64_t granules(header *h, size_t size) noexcept {
  return (size >> h->order) + ((size & (gran(h) - 1)) != 0);
}
// The CPU the caller runs on (a hint: it may migrate at once). One TLS load with rseq.
[[gnu::noinline]] unsigned this_cpu_slow() noexcept {
  platform::rseq_registered_area();  // primes the fast path's TLS pointer when rseq works
  return corepool::platform::current_cpu();
}
inline unsigned this_cpu() noexcept {
  const platform::rseq_abi *rs = platform::rseq_registered_area_if_known();
  if (__builtin_expect(rs != nullptr, 1)) return __atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);
  return this_cpu_slow();
}
#ifdef COREPOOL_INJECT
}  // namespace
}  // namespace corepool::genpool
// Tests only: this thread takes avail_add's atomic path, as a thread without rseq would (a
// failed registration cannot be forced portably), to mix both kinds of adds in one chunk.
extern "C" thread_local bool cp_genpool_test_atomic_avail;
thread_local bool cp_genpool_test_atomic_avail = false;
namespace corepool::genpool {
namespace {
constexpr bool kTestHooks = true;
#else
constexpr bool kTestHooks = false;
static bool cp_genpool_test_atomic_avail = false;
#endif

// avail_add without a usable sequence: primes the thread's rseq area and retries the
// sequence (after an abort: preempted, migrated or signalled), else adds atomically to an
// atomic stripe. Any stripe is correct (only the sum means anything).
// Marks stripe i of a set touched before its first add: a reader that loads the mask
// (acquire) after an add completed sees the bit (the OR is ordered before the add).
inline void touch(std::atomic<uint64_t> &mask, uint64_t i) noexcept {
  if (!((mask.load(std::memory_order_relaxed) >> i) & 1))
    mask.fetch_or(uint64_t{1} << i, std::memory_order_seq_cst);
}
[[gnu::noinline]] void avail_add_slow(chunk *c, int64_t d) noexcept {
  if (platform::rseq_arch_supported() && platform::rseq_registered_area() &&
      !(kTestHooks && cp_genpool_test_atomic_avail)) {
    for (;;) {
      int cpu = platform::rseq_cpu_start();
      if (cpu < 0 || static_cast<unsigned>(cpu) >= c->nstripes) break;
      touch(c->touched_plain, static_cast<unsigned>(cpu));
      if (platform::rseq_addv(reinterpret_cast<intptr_t *>(c->stripe(static_cast<unsigned>(cpu))),
                              d, cpu) == platform::CP_RSEQ_OK)
        return;
    }
  }
  const uint64_t i = this_cpu() & (c->nstripes - 1);
  touch(c->touched_atomic, i);
  c->stripe(c->nstripes + i)->fetch_add(d, std::memory_order_relaxed);
}
// Adds d to the caller's avail stripe: one restartable sequence adding to this CPU's plain
// stripe (kill-safe: the commit is the add itself, one instruction), else avail_add_slow.
// CPUs past the plain set (more than 64, or more than the adder of the chunk knew of) add
// atomically.
inline void avail_add(chunk *c, int64_t d) noexcept {
  if constexpr (platform::rseq_arch_supported()) {
    platform::rseq_abi *rs = platform::rseq_registered_area_if_known();
    if (__builtin_expect(rs != nullptr && !(kTestHooks && cp_genpool_test_atomic_avail), 1)) {
      unsigned cpu = __atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);
      if (__builtin_expect(cpu < c->nstripes, 1) &&
          __builtin_expect((c->touched_plain.load(std::memory_order_relaxed) >> cpu) & 1, 1) &&
          platform::rseq_addv(reinterpret_cast<intptr_t *>(c->stripe(cpu)), d,
                              static_cast<int>(cpu), rs) == platform::CP_RSEQ_OK)
        return;
    }
  }
  avail_add_slow(c, d);
}
// Free granules of c: the sum of its stripes (a stripe alone may be negative). Exact when no
// operation is in flight; while some are, see I6.
inline int64_t avail_sum(chunk *c) noexcept {
  int64_t a = 0;
  for (uint64_t m = c->touched_plain.load(std::memory_order_acquire); m; m &= m - 1)
    a += c->stripe(static_cast<uint64_t>(__builtin_ctzll(m)))->load(std::memory_order_acquire);
  for (uint64_t m = c->touched_atomic.load(std::memory_order_acquire); m; m &= m - 1)
    a += c->stripe(c->nstripes + static_cast<uint64_t>(__builtin_ctzll(m)))
             ->load(std::memory_order_acquire);
  return a;
}
inline uint64_t avail_of(chunk *c) noexcept {
  int64_t a = avail_sum(c);
  return a < 0 ? 0 : static_cast<uint64_t>(a);
}
chunk *find_chunk(header *h, uint64_t addr) noexcept {
  for (chunk *c = first_chunk(h); c; c = next_chunk(h, c)) {
    if (addr >= c->start && addr - c->start < (c->nbits << h->order)) return c;
  }
  return nullptr;
}

inline uint64_t umax(uint64_t a, uint64_t b) noexcept {
  return a ^ ((a ^ b) & (uint64_t{0} - (a < b)));
}

// Exact {contig, left, right} of block b from the alloc bits (bits past nbits are set), a word
// at a time: `run` is the clear run reaching the current word from below.
// With `snap`, the words read are stored in snap[0..kBlockViews).
uint64_t block_hint_exact(chunk *c, uint64_t b, uint64_t *snap = nullptr,
                          std::memory_order mo = std::memory_order_relaxed) noexcept {
  uint64_t contig = 0, left = kNone, run = 0;
  for (uint64_t i = 0; i < kBlockViews; ++i) {
    uint64_t w = view(c->alloc(), b * kBlockViews + i, mo);
    if (snap) snap[i] = w;
    if (w == 0) {
      run += 64;
      continue;
    }
    if (w == ~uint64_t{0}) {  // full word: it ends the run reaching it
      if (left == kNone) left = run;
      contig = std::max(contig, run);
      run = 0;
      continue;
    }
    run += static_cast<uint64_t>(__builtin_ctzll(w));
    if (left == kNone) left = run;
    contig = std::max(contig, run);
    // Runs inside the word: measured only if one beats contig (inner runs are < 63).
    uint64_t x = inner_clear(w);
    if (x && contig < 62) contig = longest_run_over(x, contig);
    run = static_cast<uint64_t>(__builtin_clzll(w));
  }
  if (left == kNone) left = run;
  return bh_pack(0, std::max(contig, run), left, run);
}

// Group value that covers block b: max(contig_b, right_b + left_{b+1}) (the pair with the
// next block counts for b's group, also across a group boundary).
inline uint64_t block_need(chunk *c, uint64_t b, std::memory_order mo) noexcept {
  bh h = bh_unpack(c->bhint()[b].load(mo));
  uint64_t nl = b + 1 < c->nblocks ? bh_unpack(c->bhint()[b + 1].load(mo)).left : 0;
  return std::max<uint64_t>(h.contig, h.right + nl);
}

// Raises group g's value to at least `need` (I5). Any raise bumps the seq, so a lowering
// CAS based on an older read fails.
void raise_group(chunk *c, uint64_t g, uint64_t need) noexcept {
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
void raise_groups(chunk *c, uint64_t b, const bh &h, const bh &n) noexcept {
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

constexpr uint64_t kBhFields = (uint64_t{1} << 30) - 1;  // contig, left, right of a bhint
constexpr uint64_t kBhAllFree = bh_pack(0, kBlockBits, kBlockBits, kBlockBits);
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
void raise_hints(chunk *c, uint64_t s, uint64_t e) noexcept {
  const aword *m = c->alloc();
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
      uint64_t a = clear_run_start(m, std::max(s, bs), bs);
      uint64_t z = find_next_set(m, std::min(e, be), be);
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
      cleared |= snap[i] & ~view(c->alloc(), b * kBlockViews + i, std::memory_order_seq_cst);
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

// Lowers block b's hint to the exact value unless a free raises it meanwhile: `seen` is read
// (acquire) before the bits, and the CAS fails if the seq moved (I3). Only lowers, field by
// field: bits cleared by a free whose raise has not landed may make the exact value larger
// than `seen`, and a raise here would let that free find nothing grown and skip its group
// (I5). A lowering that lands is rechecked against the bits (I7).
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

// Clears granules [s, e) (alloc bits; the start bit of s with the first word) from the last
// word back to the first, so that what is still set is always s's start and a prefix (I2).
// seq_cst: release for the next owner; ordered before the caller's hint load (I7).
void release_backward(aword *m, uint64_t s, uint64_t e) noexcept {
  for (uint64_t w = (e - 1) / 32; w > s / 32; --w) {
    m[w].fetch_and(~word_mask(0, std::min<uint64_t>(32, e - w * 32)), std::memory_order_seq_cst);
    CP_INJECT("genpool.release.mid");
  }
  const uint64_t first = std::min<uint64_t>(32 - s % 32, e - s);
  m[s / 32].fetch_and(~(word_mask(static_cast<unsigned>(s % 32), first) | start_bit(s)),
                      std::memory_order_seq_cst);
}

// Claims granules [s, s+n): their alloc bits and the start bit of s, word by word from the
// first. Returns kNone on success; otherwise the index of a bit found set (the partial claim
// is undone first) so the caller continues the search after it.
uint64_t claim(chunk *c, uint64_t s, uint64_t n) noexcept {
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
        uint64_t conflict =
            (i & ~uint64_t{31}) + static_cast<uint64_t>(__builtin_ctzll(old & mask));
        if (i > s) {
          release_backward(m, s, i);
          raise_hints(c, s, i);
        }
        avail_add(c, static_cast<int64_t>(n));  // I6
        return conflict;
      }
      // acq_rel: acquire pairs with the release clear of the previous owner's free.
    } while (!w.compare_exchange_weak(old, old | set, std::memory_order_acq_rel,
                                      std::memory_order_relaxed));
    i += len;
    if (i < e) CP_INJECT("genpool.claim.mid");
  }
  return kNone;
}

// Searches start positions in [lo, hi) (runs ending by `end`) and claims the first that
// holds, continuing past conflicts. Returns the start or kNone. `snap` (room for
// (hi - lo) / 64 + 2 words): when the search fails in one find_fit pass from lo (word
// aligned), *whole is set and snap holds the words that pass read, from lo's word on.
[[gnu::always_inline]] inline uint64_t scan_claim(chunk *c, uint64_t lo, uint64_t hi, uint64_t end,
                                                  uint64_t n, uint64_t mask, uint64_t off,
                                                  uint64_t *snap, bool *whole) noexcept {
  uint64_t pos = lo;
  *whole = false;
  while (pos < hi) {
    bool fit = mask == 0 && n <= 64;
    // find_fit's end rounded up to a word: only past nbits, where the bits are set.
    uint64_t s = fit ? find_fit(c->alloc(), pos, hi, (end + 63) & ~uint64_t{63}, n, snap)
                     : find_area(c->alloc(), pos, hi, end, n, mask, off);
    if (s == kNone) {
      *whole = fit && pos == lo && lo % 64 == 0;
      return kNone;
    }
    uint64_t conflict = claim(c, s, n);
    if (conflict == kNone) return s;
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
        if (mask == 0) {
          // An unaligned scan of every start in b found nothing: every run starting in b
          // (inside it, at its start, at its end) is shorter than n. Lowered from hv, the
          // value loaded before the scan read the bits (I3): no recompute needed.
          uint64_t cap = n - 1;
          uint64_t low = bh_pack(h.seq, std::min<uint64_t>(h.contig, cap),
                                 std::min<uint64_t>(h.left, cap), std::min<uint64_t>(h.right, cap));
          CP_INJECT("genpool.lower.cas");
          // seq_cst and rechecked when it lands: a free that skipped its raise because
          // hv covered its run is seen by the re-read (I7); the words the scan read tell
          // whether anything was freed in b since.
          if (low != hv && bhv[b].compare_exchange_strong(hv, low, std::memory_order_seq_cst,
                                                          std::memory_order_relaxed))
            recheck_lowered(c, b, low, whole ? snap : nullptr);
        } else {
          refresh_block(c, b);
        }
        if (cross && b + 1 < nb) refresh_block(c, b + 1);
        nv = b + 1 < nb ? bhv[b + 1].load(std::memory_order_acquire) : 0;
      }
      hv = nv;
    }
    // A group is lowered only after a walk over all its blocks (a spread search starting or
    // ending inside it saw part of it, and recomputing the group costs 64 hint loads).
    if (bbeg != gfirst || bend != gend) continue;
    // The group's value from the hints as they are now (after the refreshes).
    uint64_t best = 0;
    for (uint64_t b = gfirst; b < gend; ++b)
      best = std::max(best, block_need(c, b, std::memory_order_relaxed));
    // Nothing fit in the group: lower its hint unless a free raised it meanwhile (I5),
    // then look at the blocks again: a free whose block raise this pass missed either
    // sees the lowered value (and raises it) or its raise is seen here.
    if (best < gh_val(g0) &&
        c->ghint()[g].compare_exchange_strong(
            g0, (gh_seq(g0) << 32) | best, std::memory_order_seq_cst, std::memory_order_relaxed)) {
      uint64_t again = 0;
      for (uint64_t b = gfirst; b < gend; ++b)
        again = std::max(again, block_need(c, b, std::memory_order_seq_cst));
      if (again > best) raise_group(c, g, again);
    }
  }
  return kNone;
}

// Home granule of `cpu` in chunk c for a spread pool: the CPUs' homes are spread evenly over
// the chunk, cpu * home_stride with home_stride = granules / nr_cpu_ids rounded down to a
// multiple of 256 (one cache line of map words), so threads on different CPUs claim, free
// and lower hints on different cache lines. (A chunk of fewer than 256 granules per CPU has
// every home at 0: its map is too small to give each CPU a line.)
inline uint64_t home_granule(chunk *c, unsigned cpu) noexcept {
  uint64_t h = cpu * c->home_stride;
  return h < c->nbits ? h : 0;  // a CPU the chunk's adder did not know of (shared pools)
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
  const aword *m = c->alloc();
  for (int attempt = 0; attempt < 4; ++attempt) {
    uint64_t best = kNone, best_len = kNone, pos = 0;
    while (pos < c->nbits) {
      uint64_t z = find_next_zero(m, pos, c->nbits);
      if (z >= c->nbits) break;
      uint64_t o = find_next_set(m, z, c->nbits);
      uint64_t len = o - z;
      if (len >= n && len < best_len) {
        best = z;
        best_len = len;
        if (len == n) break;
      }
      pos = o;
    }
    if (best == kNone) return kNone;
    if (claim(c, best, n) == kNone) return best;
  }
  return first_fit(c, n, 0, 0);
}

struct algo_req {
  cp_genpool_algo algo;
  uint64_t value;  // align bytes or fixed offset
};

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
      uint64_t a = r.value, g = gran(h);
      if (a <= g) return (c->start & (a - 1)) ? kNone : first_fit(c, n, 0, 0, home);
      if (c->start & (g - 1)) return kNone;  // no granule boundary is aligned
      uint64_t mask = (a >> h->order) - 1;
      return first_fit(c, n, mask, (c->start >> h->order) & mask, home);
    }
    case CP_GENPOOL_FIXED: {
      if (r.value & (gran(h) - 1)) return kNone;
      uint64_t s = r.value >> h->order;
      if (s >= c->nbits || n > c->nbits - s) return kNone;
      return claim(c, s, n) == kNone ? s : kNone;
    }
    case CP_GENPOOL_BEST_FIT:
      return best_fit(c, n);
  }
  return kNone;
}

size_t pool_avail(header *h) noexcept {
  uint64_t a = 0;
  for (chunk *c = first_chunk(h); c; c = next_chunk(h, c)) a += avail_of(c);
  return static_cast<size_t>(a << h->order);
}

void note_growth(cp_gen_pool *pool) noexcept {
  size_t t = pool->threshold.load(std::memory_order_acquire);
  if (t && pool_avail(pool->hdr) < t) pool->engine.note_level(0);  // low = 1: always queues
}

uintptr_t do_alloc(cp_gen_pool *pool, size_t size, const algo_req &r, void **owner) noexcept {
  if (!pool || size == 0) return 0;
  header *h = pool->hdr;
  uint64_t n = granules(h, size);
  const int cpu = h->spread.load(std::memory_order_relaxed) ? static_cast<int>(this_cpu()) : -1;
  for (chunk *c = first_chunk(h); c; c = next_chunk(h, c)) {
    // (No avail check here, unlike the kernel: summing the stripes costs more than the
    // group hints do to pass a full chunk.)
    if (n > c->nbits) continue;
    uint64_t s = alloc_in_chunk(h, c, n, r, cpu);
    if (s == kNone) continue;
    if (owner) *owner = reinterpret_cast<void *>(static_cast<uintptr_t>(c->owner));
    if (pool->threshold.load(std::memory_order_relaxed)) note_growth(pool);
    return static_cast<uintptr_t>(c->start + (s << h->order));
  }
  if (pool->threshold.load(std::memory_order_relaxed)) note_growth(pool);
  return 0;
}

// ---- add lock ------------------------------------------------------------------------------
int init_lock(header *h, bool shared) noexcept {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  if (shared) {
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  }
  int r = pthread_mutex_init(&h->lock, &a);
  pthread_mutexattr_destroy(&a);
  return -r;
}
void lock(header *h) noexcept {
  // A dead holder (shared mode) was at most carving metadata that nothing references yet:
  // publication is the last step of add, a single release store.
  if (pthread_mutex_lock(&h->lock) == EOWNERDEAD) pthread_mutex_consistent(&h->lock);
}
void unlock(header *h) noexcept {
  pthread_mutex_unlock(&h->lock);
}

void fill_cb(void *ctx, int) {
  auto *pool = static_cast<cp_gen_pool *>(ctx);
  size_t t = pool->threshold.load(std::memory_order_acquire);
  size_t a = pool_avail(pool->hdr);
  if (t && pool->grow && a < t) pool->grow(pool, a, pool->grow_ctx);
}

cp_gen_pool *new_handle(header *h, bool shared) noexcept {
  auto *p = new (std::nothrow) cp_gen_pool;
  if (!p) return nullptr;
  p->hdr = h;
  p->shared = shared;
  return p;
}

void format_header(header *h, int order, bool shared, uint64_t mem_size) noexcept {
  std::memset(static_cast<void *>(h), 0, sizeof(header));
  h->version = kVersion;
  h->order = order;
  h->shared = shared;
  h->mem_size = mem_size;
  h->bump.store(kHeaderBytes, std::memory_order_relaxed);
  h->algo_word.store(CP_GENPOOL_FIRST_FIT, std::memory_order_relaxed);
  h->spread.store(0, std::memory_order_relaxed);
  h->first.store(0, std::memory_order_relaxed);
  h->tail = 0;
}

}  // namespace
}  // namespace corepool::genpool

// ---- C API ------------------------------------------------------------------------------------
extern "C" {

struct cp_gen_pool *cp_gen_pool_create(int min_alloc_order, int nid) {
  (void)nid;
  if (min_alloc_order < 0 || min_alloc_order > kMaxOrder) {
    set_error(-EINVAL, "min_alloc_order out of range [0, 40]");
    errno = EINVAL;
    return nullptr;
  }
  auto *h = static_cast<header *>(platform::os_alloc(kHeaderBytes, platform::page_size()));
  if (!h) {
    errno = ENOMEM;
    return nullptr;
  }
  format_header(h, min_alloc_order, false, 0);
  init_lock(h, false);
  h->magic = kMagic;
  cp_gen_pool *p = new_handle(h, false);
  if (!p) {
    platform::os_release(h, kHeaderBytes);
    errno = ENOMEM;
  }
  return p;
}

struct cp_gen_pool *cp_gen_pool_create_shared(void *mem, size_t mem_size, int min_alloc_order) {
  if (min_alloc_order < 0 || min_alloc_order > kMaxOrder || !mem ||
      (reinterpret_cast<uintptr_t>(mem) & 63) || mem_size < kHeaderBytes) {
    set_error(-EINVAL, "bad order, or region NULL, not 64-byte aligned or too small");
    errno = EINVAL;
    return nullptr;
  }
  auto *h = static_cast<header *>(mem);
  format_header(h, min_alloc_order, true, mem_size);
  if (init_lock(h, true)) {
    errno = EINVAL;
    return nullptr;
  }
  // The magic is stored last: an attacher that sees it sees a formatted header.
  __atomic_store_n(&h->magic, kMagic, __ATOMIC_RELEASE);
  cp_gen_pool *p = new_handle(h, true);
  if (!p) errno = ENOMEM;
  return p;
}

struct cp_gen_pool *cp_gen_pool_attach_shared(void *mem) {
  auto *h = static_cast<header *>(mem);
  if (!h || (reinterpret_cast<uintptr_t>(mem) & 63) ||
      __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != kMagic || h->version != kVersion ||
      !h->shared) {
    set_error(-EINVAL, "no shared gen_pool in this region");
    errno = EINVAL;
    return nullptr;
  }
  cp_gen_pool *p = new_handle(h, true);
  if (!p) errno = ENOMEM;
  return p;
}

size_t cp_gen_pool_chunk_meta_size(int min_alloc_order, size_t size) {
  if (min_alloc_order < 0 || min_alloc_order > kMaxOrder) return 0;
  uint64_t nbits = size >> min_alloc_order;
  return static_cast<size_t>((meta_bytes_for(nbits, stripes_for_machine()) + 63) & ~uint64_t{63});
}

size_t cp_gen_pool_shared_meta_avail(struct cp_gen_pool *pool) {
  if (!pool || !pool->shared) return 0;
  header *h = pool->hdr;
  uint64_t b = h->bump.load(std::memory_order_relaxed);
  return b < h->mem_size ? static_cast<size_t>(h->mem_size - b) : 0;
}

int cp_gen_pool_add_owner(struct cp_gen_pool *pool, uintptr_t virt, uint64_t phys, size_t size,
                          int nid, void *owner) {
  if (!pool) return set_error(-EINVAL, "pool is NULL");
  header *h = pool->hdr;
  uint64_t nbits = size >> h->order;
  if (nbits == 0) return set_error(-EINVAL, "chunk smaller than one granule");
  uint64_t bytes = nbits << h->order;
  if (virt + bytes < virt) return set_error(-EINVAL, "chunk wraps around the address space");
  if (nbits > (uint64_t{1} << 56)) return set_error(-EINVAL, "chunk too large");
  const uint64_t nstripes = stripes_for_machine();
  uint64_t meta = (meta_bytes_for(nbits, nstripes) + 63) & ~uint64_t{63};

  lock(h);
  for (chunk *c = first_chunk(h); c; c = next_chunk(h, c)) {
    uint64_t cend = c->start + (c->nbits << h->order);
    if (virt < cend && c->start < virt + bytes) {
      unlock(h);
      return set_error(-EINVAL, "chunk overlaps a chunk of this pool");
    }
  }
  chunk *c;
  if (pool->shared) {
    uint64_t b = h->bump.load(std::memory_order_relaxed);
    if (b > h->mem_size || meta > h->mem_size - b) {
      unlock(h);
      return set_error(-ENOMEM, "shared region has no room for the chunk metadata");
    }
    c = reinterpret_cast<chunk *>(reinterpret_cast<char *>(h) + b);
    std::memset(static_cast<void *>(c), 0, meta);
    h->bump.store(b + meta, std::memory_order_relaxed);
  } else {
    c = static_cast<chunk *>(platform::os_alloc(meta, platform::page_size()));
    if (!c) {
      unlock(h);
      return set_error(-ENOMEM, "no memory for chunk metadata");
    }
    if (nid >= 0) platform::os_bind_node(c, meta, nid);
  }
  c->start = virt;
  c->nbits = nbits;
  c->phys = phys;
  c->owner = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(owner));
  c->nblocks = (nbits + kBlockBits - 1) / kBlockBits;
  c->ngroups = (c->nblocks + kGroupBlocks - 1) / kGroupBlocks;
  c->nviews = c->nblocks * kBlockViews;
  c->meta_bytes = meta;
  c->nstripes = nstripes;
  c->home_stride = (nbits / platform::nr_cpu_ids()) & ~uint64_t{255};
  {
    const uint64_t tail = nbits - (c->nblocks - 1) * kBlockBits;  // granules in the last block
    c->tail_all_free = tail == kBlockBits ? kBhAllFree : bh_pack(0, tail, tail, 0);
  }
  c->stripe(nstripes)->store(static_cast<int64_t>(nbits), std::memory_order_relaxed);
  c->touched_atomic.store(1, std::memory_order_relaxed);  // (the chunk's memory is zeroed)
  // Granules past nbits are permanently allocated (alloc bits, no start), so scans need no
  // tail special case; a free's end check stops at nbits.
  aword *m = c->alloc();
  for (uint64_t i = nbits; i < c->nviews * 64; i = (i & ~uint64_t{31}) + 32)
    m[i / 32].fetch_or(kAllocHalf & (kAllocHalf << (i % 32)), std::memory_order_relaxed);
  for (uint64_t b = 0; b < c->nblocks; ++b)
    c->bhint()[b].store(block_hint_exact(c, b), std::memory_order_relaxed);
  for (uint64_t g = 0; g < c->ngroups; ++g) {
    uint64_t need = 0;
    for (uint64_t b = g * kGroupBlocks; b < std::min(c->nblocks, (g + 1) * kGroupBlocks); ++b)
      need = std::max(need, block_need(c, b, std::memory_order_relaxed));
    c->ghint()[g].store(need, std::memory_order_relaxed);
  }
  c->next.store(0, std::memory_order_relaxed);
  // Publication (release): pairs with the acquire loads of first_chunk/next_chunk.
  int64_t off = off_of(h, c);
  if (h->tail)
    at(h, h->tail)->next.store(off, std::memory_order_release);
  else
    h->first.store(off, std::memory_order_release);
  h->tail = off;
  unlock(h);
  return 0;
}

int cp_gen_pool_add_virt(struct cp_gen_pool *pool, uintptr_t virt, uint64_t phys, size_t size,
                         int nid) {
  return cp_gen_pool_add_owner(pool, virt, phys, size, nid, nullptr);
}

int cp_gen_pool_add(struct cp_gen_pool *pool, uintptr_t addr, size_t size, int nid) {
  return cp_gen_pool_add_owner(pool, addr, UINT64_MAX, size, nid, nullptr);
}

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
  if (!pool) return 0;
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

int cp_gen_pool_free_owner(struct cp_gen_pool *pool, uintptr_t addr, size_t size, void **owner) {
  if (owner) *owner = nullptr;
  if (!pool) return set_error(-EINVAL, "pool is NULL");
  header *h = pool->hdr;
  chunk *c = find_chunk(h, addr);
  if (!c) return set_error(-EINVAL, "address outside every chunk");
  uint64_t off = addr - c->start;
  if (off & (gran(h) - 1)) return set_error(-EINVAL, "address is not the start of an allocation");
  uint64_t s = off >> h->order, n = granules(h, size);
  if (n == 0 || n > c->nbits - s) return set_error(-EINVAL, "size does not match the allocation");
  const uint64_t e = s + n;
  aword *m = c->alloc();
  // Validation (read-only, so bad input leaves the pool untouched): an allocation is exactly
  // a start at s, alloc bits over [s, e), no start in (s, e), and granule e free or a start
  // (or past the chunk's end) (I2).
  aword &w = m[s / 32];
  const uint64_t sb = start_bit(s);
  uint64_t v = w.load(std::memory_order_acquire);
  if (!(v & sb)) return set_error(-EINVAL, "not allocated, or not its start");
  const uint64_t first = std::min<uint64_t>(32 - s % 32, n);  // granules in s's word
  const uint64_t fmask = word_mask(static_cast<unsigned>(s % 32), first);
  bool ok = (v & fmask) == fmask && !(v & (fmask << 32) & ~sb);
  for (uint64_t i = s + first; ok && i < e; i += 32) {  // the following words, whole or not
    uint64_t wm = word_mask(0, std::min<uint64_t>(32, e - i));
    uint64_t x = m[i / 32].load(std::memory_order_acquire);
    ok = (x & wm) == wm && !(x & (wm << 32));
  }
  if (ok && e < c->nbits) {
    uint64_t x = (e / 32 == s / 32) ? v : m[e / 32].load(std::memory_order_acquire);
    ok = !(x & alloc_bit(e)) || (x & start_bit(e));
  }
  if (!ok) return set_error(-EINVAL, "size does not match the allocation");
  if (first == n) {
    // I4: the free's claim is the CAS that clears the start bit and the alloc bits, requiring
    // all of them set. seq_cst: release for the next owner (its claim CAS is acq_rel), and
    // ordered before the hint load of the raise (I7).
    const uint64_t clr = fmask | sb;
    while (!w.compare_exchange_weak(v, v & ~clr, std::memory_order_seq_cst,
                                    std::memory_order_relaxed)) {
      if ((v & clr) != clr) return set_error(-EINVAL, "double free");
    }
    CP_INJECT("genpool.free.claimed");
    if (!raise_hint_in_word(c, s, e, v & ~clr & kAllocHalf)) raise_hints(c, s, e);
  } else {
    // I4: the claim is the CAS on the last word (its part starts at the word's start),
    // requiring the alloc bits set and no start there; then backward to the first word (I2).
    const uint64_t lw = (e - 1) / 32, lmask = word_mask(0, e - lw * 32);
    aword &l = m[lw];
    uint64_t x = l.load(std::memory_order_relaxed);
    do {
      if ((x & lmask) != lmask || (x & (lmask << 32))) return set_error(-EINVAL, "double free");
    } while (!l.compare_exchange_weak(x, x & ~lmask, std::memory_order_seq_cst,
                                      std::memory_order_relaxed));
    CP_INJECT("genpool.free.claimed");
    release_backward(m, s, lw * 32);
    raise_hints(c, s, e);
  }
  // I6: counted as free only once its bits are clear and its hints raised.
  avail_add(c, static_cast<int64_t>(n));
  if (owner) *owner = reinterpret_cast<void *>(static_cast<uintptr_t>(c->owner));
  return 0;
}

int cp_gen_pool_free(struct cp_gen_pool *pool, uintptr_t addr, size_t size) {
  return cp_gen_pool_free_owner(pool, addr, size, nullptr);
}

size_t cp_gen_pool_avail(struct cp_gen_pool *pool) {
  return pool ? pool_avail(pool->hdr) : 0;
}

size_t cp_gen_pool_size(struct cp_gen_pool *pool) {
  if (!pool) return 0;
  uint64_t n = 0;
  for (chunk *c = first_chunk(pool->hdr); c; c = next_chunk(pool->hdr, c)) n += c->nbits;
  return static_cast<size_t>(n << pool->hdr->order);
}

bool cp_gen_pool_has_addr(struct cp_gen_pool *pool, uintptr_t start, size_t size) {
  if (!pool) return false;
  chunk *c = find_chunk(pool->hdr, start);
  if (!c) return false;
  return size <= (c->nbits << pool->hdr->order) - (start - c->start);
}

uint64_t cp_gen_pool_virt_to_phys(struct cp_gen_pool *pool, uintptr_t addr) {
  if (!pool) return UINT64_MAX;
  chunk *c = find_chunk(pool->hdr, addr);
  if (!c || c->phys == UINT64_MAX) return UINT64_MAX;
  return c->phys + (addr - c->start);
}

void cp_gen_pool_for_each_chunk(struct cp_gen_pool *pool,
                                void (*func)(struct cp_gen_pool *,
                                             const struct cp_gen_pool_chunk_info *, void *),
                                void *data) {
  if (!pool || !func) return;
  header *h = pool->hdr;
  for (chunk *c = first_chunk(h); c; c = next_chunk(h, c)) {
    cp_gen_pool_chunk_info info{static_cast<uintptr_t>(c->start),
                                static_cast<size_t>(c->nbits << h->order), c->phys,
                                reinterpret_cast<void *>(static_cast<uintptr_t>(c->owner)),
                                static_cast<size_t>(avail_of(c) << h->order)};
    func(pool, &info, data);
  }
}

void cp_gen_pool_set_algo(struct cp_gen_pool *pool, enum cp_genpool_algo algo, const void *data) {
  if (!pool) return;
  algo_req r;
  if (!decode_algo(algo, data, &r)) return;
  pool->hdr->algo_word.store(static_cast<uint64_t>(algo) | (r.value << 8),
                             std::memory_order_relaxed);
}

int cp_gen_pool_set_spread(struct cp_gen_pool *pool, bool on) {
  if (!pool) return set_error(-EINVAL, "pool is NULL");
  pool->hdr->spread.store(on ? 1 : 0, std::memory_order_relaxed);
  return 0;
}

bool cp_gen_pool_spread(struct cp_gen_pool *pool) {
  return pool && pool->hdr->spread.load(std::memory_order_relaxed);
}

uintptr_t cp_gen_pool_home(struct cp_gen_pool *pool, uintptr_t addr, unsigned cpu) {
  if (!pool) return 0;
  header *h = pool->hdr;
  chunk *c = find_chunk(h, addr);
  if (!c || cpu >= platform::nr_cpu_ids()) return 0;
  uint64_t g = h->spread.load(std::memory_order_relaxed) ? home_granule(c, cpu) : 0;
  return static_cast<uintptr_t>(c->start + (g << h->order));
}

int cp_gen_pool_set_low_watermark(struct cp_gen_pool *pool, size_t threshold,
                                  cp_gen_pool_grow_fn grow, void *ctx) {
  if (!pool) return set_error(-EINVAL, "pool is NULL");
  pool->threshold.store(0, std::memory_order_release);
  if (pool->engine_ready) pool->engine.cancel();  // no fill runs with the old callback now
  if (threshold == 0 || !grow) return 0;
  ds::bgwork_start();
  pool->grow = grow;
  pool->grow_ctx = ctx;
  if (!pool->engine_ready) {
    pool->engine.init(fill_cb, pool, 1, 1);
    pool->engine_ready = true;
  }
  pool->threshold.store(threshold, std::memory_order_release);
  note_growth(pool);
  return 0;
}

void cp_gen_pool_detach(struct cp_gen_pool *pool) {
  if (!pool) return;
  pool->threshold.store(0, std::memory_order_release);
  if (pool->engine_ready) pool->engine.cancel();
  header *h = pool->hdr;
  if (!pool->shared) {
    for (chunk *c = first_chunk(h); c;) {
      chunk *nx = next_chunk(h, c);
      platform::os_release(c, c->meta_bytes);
      c = nx;
    }
    pthread_mutex_destroy(&h->lock);
    platform::os_release(h, kHeaderBytes);
  }
  delete pool;
}

int cp_gen_pool_destroy(struct cp_gen_pool *pool) {
  if (!pool) return set_error(-EINVAL, "pool is NULL");
  for (chunk *c = first_chunk(pool->hdr); c; c = next_chunk(pool->hdr, c))
    if (avail_sum(c) != static_cast<int64_t>(c->nbits))
      return set_error(-EBUSY, "allocations outstanding");
  cp_gen_pool_detach(pool);
  return 0;
}

}  // extern "C"
