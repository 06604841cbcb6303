// The dynamic per-CPU allocator: chunks of per-CPU units, a bitmap allocator with block
// hints, lazy population, lock-free frees, background reclaim. Design: docs/percpu.md.
//
// Chunk layout (one address-space reservation, aligned to `span`, a power of two):
//
//   base + 0*stride  unit of CPU 0        |
//   base + 1*stride  unit of CPU 1        |  committed read/write at creation, never touched
//   ...                                   |  by the allocator unless that CPU used the chunk
//   base + N*stride  fallback-add unit    |  (N = cp_nr_cpu_ids())
//   base + meta_off  struct chunk + its `touched` bitmap (metadata; resident)
//
// A handle is base + offset (a pointer into unit 0), so the chunk of any handle is
// (handle & ~(span - 1)) + meta_off: free and per-CPU access need no lookup table.
//
// Synchronization protocol
//   lock (g_lock): allocation, the bitmaps alloc_map / bound_map / hints, slot lists, the
//     chunk registry, statistics, draining of pending frees, reclaim decisions.
//   pending[]   (atomic, per chunk): bit b set = "the area starting at bit b was freed".
//     Set by cp_free_percpu (any thread, signal handlers) with fetch_or; cleared by the
//     drainer (under lock) with exchange.
//   pending_flag / pending_next / g_pending_head: a chunk with pending bits is pushed on a
//     Treiber stack, once per drain (flag 0 -> 1 by exchange). The only consumer takes the
//     whole stack with exchange (under lock), so there is no pop-side ABA.
//   live / pooled bitmaps (checked mode only; misuse.cpp): set by allocation (under lock),
//     claimed by cp_free_percpu before F1; a free that cannot claim is reported and stops.
//   inflight (per chunk): frees currently inside cp_free_percpu for this chunk. Reclaim
//     unmaps a chunk only when it is fully free, inflight == 0 and pending_flag == 0.
//   touched[]   (atomic, per chunk): bit u set = unit u may hold non-zero bytes. Set (before
//     the caller can write) by cp_per_cpu_ptr / cp_this_cpu_* ; read by allocation, which
//     zeroes reused ranges only on touched units (untouched units are still zero pages).
//
// Which operations may run concurrently
//               alloc  free  per_cpu_ptr/add  stats/dump  reclaim
//   alloc        lock   yes       yes            lock       lock
//   free         yes    yes       yes            yes        yes
//   per_cpu/add  yes    yes       yes            yes        yes (live handles only)
#include <corepool/percpu.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "check.h"
#include "ds/bgwork.h"
#include "ds/hint_bitmap.h"
#include "error.h"
#include "inject.h"
#include "percpu/percpu_access.h"
#include "percpu/percpu_internal.h"
#include "platform/cpu.h"
#include "platform/fd.h"
#include "platform/memory.h"
#include "platform/rseq.h"
#include "platform/thread.h"
#include "platform/topology.h"

namespace corepool::pcpu {

std::atomic<uint64_t> g_no_chunks{0};
geometry g_geo;
std::atomic<bool> g_ready{false};

namespace {

using platform::CP_RSEQ_OK;

constexpr unsigned kBits = kUnitSize / kMinAlloc;        // 8192 allocation units
constexpr unsigned kBlockBits = kBlockSize / kMinAlloc;  // 512 bits per block
constexpr unsigned kBlocks = kBits / kBlockBits;         // 16 blocks
constexpr unsigned kWords = kBits / 64;                  // 128 bitmap words
constexpr unsigned kSlots = 15;                          // 0 = full, s = 1 + log2(contig)
constexpr uint64_t kMagic = 0x70637075636b6e31ull;       // "pcpuckn1"
static_assert(kBlocks <= 16, "dirty_pages is a 16-bit mask");

// ---- bitmap helpers (bit i of word i / 64) ----------------------------------------------

inline bool test_bit(const uint64_t *m, unsigned i) {
  return m[i / 64] >> (i % 64) & 1;
}
inline void set_bit(uint64_t *m, unsigned i) {
  m[i / 64] |= 1ull << (i % 64);
}

void set_range(uint64_t *m, unsigned lo, unsigned hi, bool v) {
  while (lo < hi) {
    unsigned w = lo / 64, b = lo % 64, n = std::min(64 - b, hi - lo);
    uint64_t mask = (n == 64 ? ~0ull : ((1ull << n) - 1)) << b;
    if (v)
      m[w] |= mask;
    else
      m[w] &= ~mask;
    lo += n;
  }
}

// First index in [lo, hi) whose bit equals `v`, or hi.
unsigned find_next(const uint64_t *m, unsigned lo, unsigned hi, bool v) {
  const ds::plain_view w{m};
  return static_cast<unsigned>(v ? ds::find_next_set(w, lo, hi) : ds::find_next_zero(w, lo, hi));
}

// Free-space hints of one 512-bit block (ds/hint_bitmap.h; bits, relative to the block).
using block_hint = ds::block_hint;

struct chunk {
  uint64_t magic;
  char *base;
  chunk *prev, *next;                                      // slot list (lock)
  unsigned slot;                                           // (lock)
  unsigned free_bits, contig_bits, first_free, nr_allocs;  // (lock)
  uint32_t dirty_pages;            // block b was handed out since the chunk was created (lock)
  size_t reg_index;                // index in g_chunks (lock)
  uint64_t alloc_map[kWords];      // bit set = allocated (lock)
  uint64_t bound_map[kWords + 1];  // bit set = an allocation starts (or one ends) here (lock)
  block_hint hints[kBlocks];       // (lock)
  std::atomic<uint64_t> pending[kWords];
  std::atomic<int> inflight;
  std::atomic<int> pending_flag;
  chunk *pending_next;  // owned by whoever set pending_flag 0 -> 1, until drained
  // followed by the `touched` bitmap: (nr_cpus + 1) bits in atomic words (see touched()),
  // and in checked mode by the live and pooled bitmaps (misuse.cpp)
};

// The touched bitmap sits right after the chunk header: no pointer to load on the hot path.
inline std::atomic<uint64_t> *touched(const chunk *c) noexcept {
  return reinterpret_cast<std::atomic<uint64_t> *>(
      const_cast<char *>(reinterpret_cast<const char *>(c)) + sizeof(chunk));
}

struct config {
  size_t stride = 0, span = 0, meta_off = 0, meta_size = 0, map_size = 0;
  unsigned nr_cpus = 0, units = 0, touched_words = 0;
  bool rseq = false;  // process-wide rseq mode (fixed at load time)
};

// Written once under g_lock before the first handle exists; every later reader got a handle
// through some synchronisation with that allocation, so plain reads are ordered after it.
config g_cfg;

std::mutex g_lock;
chunk *g_slots[kSlots];          // list heads (lock)
chunk *g_tails[kSlots];          // list tails (lock)
std::vector<chunk *> *g_chunks;  // registry (lock); heap so it is never destroyed at exit
std::atomic<chunk *> g_pending_head{nullptr};
std::atomic<unsigned long> g_bad_frees{0};
// Chunk pushes on the pending stack since the last drain: the free that makes it reach
// kWakeAfter wakes the worker (one wake-up per burst, not a futex call per free). Smaller
// batches are drained by the next allocation, which wakes the worker when it leaves more
// than one fully free chunk behind.
constexpr unsigned kWakeAfter = 16;
std::atomic<unsigned> g_pushes{0};
ds::work_item g_reclaim_work;
struct {
  uint64_t nr_alloc, nr_dealloc, nr_cur_alloc, nr_max_alloc;
  uint32_t nr_chunks, nr_max_chunks;
  size_t min_alloc_size, max_alloc_size;
} g_st;  // (lock)

inline chunk *chunk_of(uintptr_t u) noexcept {
  return reinterpret_cast<chunk *>((u & ~(g_cfg.span - 1)) + g_cfg.meta_off);
}

// The chunk directory bit of the chunk at `base` (see geometry::dir). Under the lock.
void dir_mark(const char *base, bool live) {
  // Above 48-bit user space (no directory slot): mmap never returns it.
  if (reinterpret_cast<uintptr_t>(base) & g_geo.reject_mask.load(std::memory_order_relaxed))
    std::abort();
  const uintptr_t slot =
      reinterpret_cast<uintptr_t>(base) >> g_geo.span_shift.load(std::memory_order_relaxed);
  const uint64_t m = 1ull << (slot % 64);
  std::atomic<uint64_t> &w = g_geo.dir.load(std::memory_order_relaxed)[slot / 64];
  if (live)
    w.fetch_or(m, std::memory_order_relaxed);
  else
    w.fetch_and(~m, std::memory_order_relaxed);
}

// ---- hints ------------------------------------------------------------------------------

// Exact hints of block b from alloc_map (under the lock: plain words).
void refresh_block(chunk *c, unsigned b) {
  c->hints[b] = ds::block_hint_exact(ds::plain_view{c->alloc_map}, b * (kBlockBits / 64),
                                     kBlockBits / 64, nullptr, std::memory_order_relaxed);
}

// Chunk-level hints from the block hints: exact longest free run (runs may span blocks via
// right + fully free blocks + left) and the first free bit.
void refresh_chunk(chunk *c) {
  const ds::row_hint r = ds::merge_blocks(c->hints, kBlocks, kBlockBits);
  c->contig_bits = static_cast<unsigned>(r.contig);
  c->first_free = static_cast<unsigned>(r.first_free);
}

unsigned slot_of(unsigned contig_bits) {
  if (contig_bits == 0) return 0;
  return 1 + (31 - static_cast<unsigned>(__builtin_clz(contig_bits)));  // 1 .. 14
}

void slot_unlink(chunk *c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    g_slots[c->slot] = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else
    g_tails[c->slot] = c->prev;
  c->prev = c->next = nullptr;
}

// Appends to its slot's list (older chunks stay in front: allocation reuses them first).
void slot_insert(chunk *c) {
  c->slot = slot_of(c->contig_bits);
  c->next = nullptr;
  c->prev = g_tails[c->slot];
  if (c->prev)
    c->prev->next = c;
  else
    g_slots[c->slot] = c;
  g_tails[c->slot] = c;
}

void after_change(chunk *c, unsigned lo, unsigned hi) {
  for (unsigned b = lo / kBlockBits; b <= (hi - 1) / kBlockBits; b++) refresh_block(c, b);
  refresh_chunk(c);
  if (slot_of(c->contig_bits) != c->slot) {
    slot_unlink(c);
    slot_insert(c);
  }
}

// ---- chunk life -------------------------------------------------------------------------

void init_config() {
  config k;
  k.nr_cpus = platform::nr_cpu_ids();
  k.units = k.nr_cpus + 1;
  k.stride = std::max(kUnitSize, platform::page_size());
  k.touched_words = (k.units + 63) / 64;
  k.meta_off = k.units * k.stride;
  const size_t check_bytes = check_enabled() ? 2 * kCheckWords * 8 : 0;  // checked mode
  k.meta_size = (sizeof(chunk) + k.touched_words * 8 + check_bytes + platform::page_size() - 1) &
                ~(platform::page_size() - 1);
  k.map_size = k.meta_off + k.meta_size;
  k.span = 1;
  while (k.span < k.map_size) k.span <<= 1;
  k.rseq = platform::rseq_enabled() && platform::rseq_arch_supported();
  g_cfg = k;
  geometry &g = g_geo;
  g.stride = k.stride;
  g.span_mask = ~(k.span - 1);
  g.touched_off = k.meta_off + sizeof(chunk);
  g.check_off = check_bytes ? g.touched_off + k.touched_words * 8 : 0;
  const unsigned span_shift = static_cast<unsigned>(__builtin_ctzll(k.span));
  g.span_shift.store(span_shift, std::memory_order_relaxed);
  g.nr_cpus = k.nr_cpus;
  g.rseq = k.rseq;
  constexpr uintptr_t kUser = uintptr_t{1} << 48;  // user space: 47 bits x86-64, 48 aarch64
  if (k.stride & (k.stride - 1)) std::abort();     // a page size: a power of two
  const uintptr_t dir_slots = kUser >> span_shift;
  // Zero pages until a chunk is created in the part they cover; never released. Without it
  // no area can be told apart, so the allocator cannot run.
  void *dir = platform::os_alloc((dir_slots / 64) * sizeof(uint64_t), platform::page_size());
  if (!dir) std::abort();
  g.dir.store(static_cast<std::atomic<uint64_t> *>(dir), std::memory_order_relaxed);
  // Last, release: publishes every field above to is_area's acquire load of the mask
  // (see geometry::reject_mask).
  g.reject_mask.store(~(kUser - 1) | ((k.span - 1) & ~(k.stride - 1)), std::memory_order_release);
  g_chunks = new std::vector<chunk *>();
  g_st.min_alloc_size = SIZE_MAX;
  g_ready.store(true, std::memory_order_release);
}

void reclaim_work_fn(ds::work_item *) {
  reclaim_now();
}

chunk *create_chunk() {
  const config &k = g_cfg;
  char *base = static_cast<char *>(platform::os_reserve(k.map_size, k.span));
  if (!base) return nullptr;
  if (platform::os_commit(base, k.map_size) != 0) {
    platform::os_release(base, k.map_size);
    return nullptr;
  }
  if (platform::nr_nodes() > 1)
    for (unsigned c = 0; c < k.nr_cpus; c++)
      platform::os_bind_node(base + c * k.stride, k.stride, platform::cpu_to_node(c));
  auto *c = new (base + k.meta_off) chunk();
  c->magic = kMagic;
  c->base = base;
  for (unsigned w = 0; w < k.touched_words; w++) new (&touched(c)[w]) std::atomic<uint64_t>(0);
  for (unsigned b = 0; b < kBlocks; b++) c->hints[b] = {0, kBlockBits, kBlockBits, kBlockBits};
  c->free_bits = kBits;
  refresh_chunk(c);
  c->reg_index = g_chunks->size();
  g_chunks->push_back(c);
  slot_insert(c);
  dir_mark(base, true);
  g_st.nr_chunks++;
  g_st.nr_max_chunks = std::max(g_st.nr_max_chunks, g_st.nr_chunks);
  return c;
}

// ---- free processing (under lock) -------------------------------------------------------

void free_area(chunk *c, unsigned bit) {
  if (!test_bit(c->bound_map, bit) || !test_bit(c->alloc_map, bit)) {
    g_bad_frees.fetch_add(1, std::memory_order_relaxed);  // not a live allocation's start
    return;
  }
  unsigned end = find_next(c->bound_map, bit + 1, kBits + 1, true);
  set_range(c->alloc_map, bit, end, false);
  // The bound bits at `bit` and `end` may stay: allocation rewrites the bounds it covers.
  c->free_bits += end - bit;
  c->nr_allocs--;
  g_st.nr_dealloc++;
  g_st.nr_cur_alloc--;
  after_change(c, bit, end);
}

void drain_chunk(chunk *c) {
  for (unsigned w = 0; w < kWords; w++) {
    if (!c->pending[w].load(std::memory_order_relaxed)) continue;
    // D1: pairs with F2 (seq_cst): every bit set before this exchange is taken here.
    uint64_t v = c->pending[w].exchange(0, std::memory_order_seq_cst);
    while (v) {
      unsigned b = static_cast<unsigned>(__builtin_ctzll(v));
      v &= v - 1;
      free_area(c, w * 64 + b);
    }
  }
}

void drain_pending() {
  if (!g_pending_head.load(std::memory_order_relaxed)) return;
  g_pushes.store(0, std::memory_order_relaxed);
  chunk *list = g_pending_head.exchange(nullptr, std::memory_order_acquire);
  while (list) {
    chunk *c = list;
    list = c->pending_next;  // read before clearing the flag: after it a free may re-push c
    // D0: flag 1 -> 0 before the bitmap exchange (D1). A free whose bit D1 misses does its
    // F3 exchange after D0 in the seq_cst order, sees 0 and pushes the chunk again.
    c->pending_flag.store(0, std::memory_order_seq_cst);
    drain_chunk(c);
  }
  // More than one fully free chunk (the top slot holds only those): let the worker reclaim.
  if (g_slots[kSlots - 1] && g_slots[kSlots - 1] != g_tails[kSlots - 1])
    ds::schedule_work(&g_reclaim_work);
}

// ---- allocation (under lock) ------------------------------------------------------------

// First aligned run of n free bits in c, or kBits.
unsigned find_fit(const chunk *c, unsigned n, unsigned a) {
  unsigned s = c->first_free;
  while (s < kBits) {
    // Skip blocks that the hints say are full.
    unsigned b = s / kBlockBits;
    if (c->hints[b].first_free == kBlockBits) {
      s = (b + 1) * kBlockBits;
      continue;
    }
    s = find_next(c->alloc_map, s, kBits, false);
    s = (s + a - 1) & ~(a - 1);
    if (s + n > kBits) return kBits;
    unsigned e = find_next(c->alloc_map, s, s + n, true);
    if (e == s + n) return s;
    s = e + 1;
  }
  return kBits;
}

void *alloc_locked(size_t size, size_t align) {
  const unsigned n = static_cast<unsigned>((size + kMinAlloc - 1) / kMinAlloc);
  const unsigned a = static_cast<unsigned>(std::max<size_t>(align, kMinAlloc) / kMinAlloc);
  drain_pending();
  chunk *c = nullptr;
  unsigned off = kBits;
  // Fullest chunk first: slots are ordered by the longest free run.
  for (unsigned s = slot_of(n); s < kSlots && !c; s++)
    for (chunk *t = g_slots[s]; t; t = t->next) {
      if (t->contig_bits < n) continue;
      off = find_fit(t, n, a);
      if (off < kBits) {
        c = t;
        break;
      }
    }
  if (!c) {
    c = create_chunk();
    if (!c) return nullptr;
    off = 0;
  }
  CP_INJECT("percpu_alloc_found");
  set_range(c->alloc_map, off, off + n, true);
  set_bit(c->bound_map, off);
  set_range(c->bound_map, off + 1, off + n, false);
  set_bit(c->bound_map, off + n);
  c->free_bits -= n;
  c->nr_allocs++;
  after_change(c, off, off + n);
  if (check_enabled()) check_mark_live(c->base + static_cast<size_t>(off) * kMinAlloc);

  // Zero the copies. Blocks never handed out since the chunk was mapped are zero on every
  // unit; otherwise zero the range on the units that may have been written (touched). An
  // untouched unit's pages are still the kernel's zero-fill-on-demand pages: not touched.
  const size_t byte_off = static_cast<size_t>(off) * kMinAlloc;
  const unsigned b0 = off / kBlockBits, b1 = (off + n - 1) / kBlockBits;
  const uint32_t mask = ((2u << b1) - 1) & ~((1u << b0) - 1);
  if (c->dirty_pages & mask)
    for (unsigned u = 0; u < g_cfg.units; u++)
      if (is_touched(reinterpret_cast<uintptr_t>(c->base), u))
        std::memset(c->base + u * g_cfg.stride + byte_off, 0, size);
  c->dirty_pages |= mask;

  g_st.nr_alloc++;
  g_st.nr_cur_alloc++;
  g_st.nr_max_alloc = std::max(g_st.nr_max_alloc, g_st.nr_cur_alloc);
  g_st.min_alloc_size = std::min(g_st.min_alloc_size, size);
  g_st.max_alloc_size = std::max(g_st.max_alloc_size, size);
  return c->base + byte_off;
}

size_t populated(const chunk *c) {
  size_t u = 0;
  for (unsigned w = 0; w < g_cfg.touched_words; w++)
    u += static_cast<size_t>(__builtin_popcountll(touched(c)[w].load(std::memory_order_relaxed)));
  return u * g_cfg.stride;
}

void fork_lock() {
  g_lock.lock();
}
void fork_unlock() {
  g_lock.unlock();
}
// In the child no free is in flight: the threads that were between F1 and F4 are not there.
// One cut after F2 left its bit pending; one cut between F3's flag exchange and its push
// left the flag set and the chunk on no stack, where no drain would ever find it. So every
// chunk is drained here, and its flag and in-flight count start again from zero.
void fork_child() {
  if (g_ready.load(std::memory_order_relaxed)) {
    g_pending_head.store(nullptr, std::memory_order_relaxed);
    g_pushes.store(0, std::memory_order_relaxed);
    for (chunk *c : *g_chunks) {
      c->inflight.store(0, std::memory_order_relaxed);
      c->pending_flag.store(0, std::memory_order_relaxed);
      drain_chunk(c);
    }
  }
  g_lock.unlock();
}

void *alloc_any(size_t size, size_t align, bool start_worker) {
  if (start_worker) {
    // The reclaim worker (idempotent; we are not in a signal handler). Not at load time: a
    // program with static per-CPU variables gets no thread before main. Not under g_lock:
    // bgwork's locks are never taken under another lock (ds/bgwork.h). In a fork child this
    // is where a reclaim queued by a free starts running.
    ds::work_init(&g_reclaim_work, reclaim_work_fn, nullptr, 0);
    ds::bgwork_start();
  }
  fork_handlers_init();
  std::lock_guard<std::mutex> g(g_lock);
  if (!g_ready.load(std::memory_order_relaxed)) init_config();
  return alloc_locked(size, align);
}

}  // namespace

// ---- internal API -----------------------------------------------------------------------

void *alloc_at_load(size_t size, size_t align) noexcept {
  return alloc_any(size, align, false);
}

void fork_handlers_init() noexcept {
  static std::once_flag once;
  std::call_once(once, [] { platform::on_fork(fork_lock, fork_unlock, fork_child); });
}

int reclaim_now() noexcept {
  if (!g_ready.load(std::memory_order_acquire)) return 0;
  // The chunks to unmap, linked through `next` once unlinked: no heap allocation on the
  // worker (a malloc in flight at fork() is what a sanitizer's allocator cannot survive).
  chunk *dead = nullptr;
  int nr_dead = 0;
  {
    std::lock_guard<std::mutex> g(g_lock);
    drain_pending();
    bool spare = false;
    for (chunk *c = g_slots[kSlots - 1]; c;) {
      chunk *next = c->next;
      if (c->free_bits == kBits) {
        // R1: a free of this chunk's last area may still be between F2 and F4; inflight
        // (acquire, pairs with F4) says when it is done, pending_flag whether it pushed the
        // chunk on the stack (then a later drain will read it: keep the chunk for now).
        if (!spare) {
          spare = true;  // keep one fully free chunk (populated) for the next burst
        } else if (c->inflight.load(std::memory_order_acquire) == 0 &&
                   c->pending_flag.load(std::memory_order_seq_cst) == 0) {
          slot_unlink(c);
          chunk *last = g_chunks->back();
          (*g_chunks)[c->reg_index] = last;
          last->reg_index = c->reg_index;
          g_chunks->pop_back();
          g_st.nr_chunks--;
          dir_mark(c->base, false);  // before the unmap: no pointer into it is an area now
          c->next = dead;            // unlinked above: `next` is ours now (read before, into next)
          dead = c;
          nr_dead++;
        }
      }
      c = next;
    }
  }
  while (chunk *c = dead) {  // outside the lock
    dead = c->next;
    platform::os_release(c->base, g_cfg.map_size);
  }
  return nr_dead;
}

std::vector<chunk_info> chunks() {
  std::vector<chunk_info> v;
  if (!g_ready.load(std::memory_order_acquire)) return v;
  std::lock_guard<std::mutex> g(g_lock);
  drain_pending();
  for (chunk *c : *g_chunks)
    v.push_back({c->base, g_cfg.stride, g_cfg.units, c->free_bits * kMinAlloc,
                 c->contig_bits * kMinAlloc, c->nr_allocs});
  return v;
}

unsigned long bad_frees() noexcept {
  return g_bad_frees.load(std::memory_order_relaxed);
}

}  // namespace corepool::pcpu

// ---- C API ------------------------------------------------------------------------------

using namespace corepool::pcpu;
namespace pf = corepool::platform;

extern "C" {

void *cp_alloc_percpu(size_t size, size_t align) {
  if (size == 0 || size > kMaxAllocSize) {
    errno = EINVAL;
    corepool::set_error(-EINVAL, "cp_alloc_percpu: size must be 1 .. 32768");
    return nullptr;
  }
  if (align == 0 || (align & (align - 1)) != 0 || align > pf::page_size()) {
    errno = EINVAL;
    corepool::set_error(-EINVAL, "cp_alloc_percpu: align must be a power of two <= page size");
    return nullptr;
  }
  void *p = alloc_any(size, align, true);
  if (!p) {
    errno = ENOMEM;
    corepool::set_error(-ENOMEM, "cp_alloc_percpu: cannot map a new chunk");
  }
  return p;
}

void cp_free_percpu(void *pcp) {
  if (!pcp) return;
  const uintptr_t u = reinterpret_cast<uintptr_t>(pcp);
  if (!g_ready.load(std::memory_order_acquire) || !is_area(u) || u % kMinAlloc != 0) {
    g_bad_frees.fetch_add(1, std::memory_order_relaxed);
    corepool::report_misuse(-EINVAL, "cp_free_percpu", "not a per-CPU handle", pcp);
    return;
  }
  chunk *c = chunk_of(u);
  const unsigned bit = static_cast<unsigned>((u & (g_cfg.span - 1)) / kMinAlloc);
  const uint64_t m = 1ull << (bit % 64);
  if (__builtin_expect(corepool::check_enabled(), 0) && !check_claim(pcp)) {
    g_bad_frees.fetch_add(1, std::memory_order_relaxed);  // reported by check_claim
    return;
  }
  // F1: announce ourselves before the area can be seen free (reclaim checks inflight).
  c->inflight.fetch_add(1, std::memory_order_seq_cst);
  // F2: publish the free. From here the area may be reused and the chunk may become fully
  // free; only F3/F4 on the chunk remain, and reclaim waits for them (R1).
  uint64_t old = c->pending[bit / 64].fetch_or(m, std::memory_order_seq_cst);
  bool pushed = false;
  if (old & m) {
    g_bad_frees.fetch_add(1, std::memory_order_relaxed);  // already pending: double free
    corepool::report_misuse(-EINVAL, "cp_free_percpu", "double free", pcp);
  } else if (c->pending_flag.exchange(1, std::memory_order_seq_cst) == 0) {
    // F3: we own c->pending_next until a drain takes the stack.
    chunk *h = g_pending_head.load(std::memory_order_relaxed);
    do c->pending_next = h;
    while (!g_pending_head.compare_exchange_weak(h, c, std::memory_order_release,
                                                 std::memory_order_relaxed));
    pushed = true;
  }
  CP_INJECT("percpu_free_before_done");
  // F4: done with the chunk (pairs with R1's acquire load).
  c->inflight.fetch_sub(1, std::memory_order_release);
  if (pushed && g_pushes.fetch_add(1, std::memory_order_relaxed) + 1 == kWakeAfter)
    corepool::ds::schedule_work(&g_reclaim_work);  // async-signal-safe
}

void cp_percpu_get_stats(struct cp_percpu_stats *out) {
  if (!out)
    return static_cast<void>(corepool::set_error(-EINVAL, "cp_percpu_get_stats: out is NULL"));
  *out = {};
  if (!g_ready.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> g(g_lock);
  drain_pending();
  out->nr_alloc = g_st.nr_alloc;
  out->nr_dealloc = g_st.nr_dealloc;
  out->nr_cur_alloc = g_st.nr_cur_alloc;
  out->nr_max_alloc = g_st.nr_max_alloc;
  out->nr_chunks = g_st.nr_chunks;
  out->nr_max_chunks = g_st.nr_max_chunks;
  out->min_alloc_size = g_st.nr_alloc ? g_st.min_alloc_size : 0;
  out->max_alloc_size = g_st.max_alloc_size;
  for (chunk *c : *g_chunks) {
    size_t p = populated(c);
    out->populated_bytes += p;
    if (c->free_bits == kBits) out->empty_populated_bytes += p;
  }
}

int cp_percpu_dump(int fd) {
  std::vector<std::string> lines;
  char buf[256];
  {
    if (!g_ready.load(std::memory_order_acquire)) return 0;
    std::lock_guard<std::mutex> g(g_lock);
    drain_pending();
    for (chunk *c : *g_chunks) {
      size_t fb = c->free_bits * kMinAlloc, cb = c->contig_bits * kMinAlloc;
      double frag = fb ? 1.0 - static_cast<double>(cb) / static_cast<double>(fb) : 0.0;
      int n = std::snprintf(buf, sizeof buf,
                            "chunk %p: allocs %u free %zu contig %zu frag %.3f slot %u "
                            "populated %zu\n",
                            static_cast<void *>(c->base), c->nr_allocs, fb, cb, frag, c->slot,
                            populated(c));
      lines.emplace_back(buf, static_cast<size_t>(n));
    }
  }
  for (const std::string &l : lines)
    if (int r = pf::write_all(fd, l.data(), l.size()); r < 0) return r;
  return 0;
}

}  // extern "C"
