// qmempool: a short composition of tiers (see corepool/qmempool.h, docs/qmempool.md):
//
//   [thread tier (ds/thread_cache.h), optional: sinks to and refills from what follows]
//     -> per-CPU cache (ds/pcpu_cache.h: rseq stacks, fallback stacks under a try-lock)
//     -> per-CPU depot (ds/cpu_ring.h: filled by its CPU's sequences, emptied by CAS)
//     -> shared ALF queue (ds/alf_ring.h)
//     -> backing allocator.
//
// Each tier states its own protocol; what this file adds is the order in which they are
// tried and one invariant over them:
//   Q1  Every object is at any instant in exactly one place: a caller's hands, one thread
//       stack (thread_cache H1), one cache stack (pcpu_cache I1), one depot slot in [head, tail)
//       (cpu_ring R1-R4), one published ALF slot, or the local `elems` array of one operation in
//       progress.
//   Q2  Moves never copy: a bulk pop commits (the cache's top, the depot's head CAS, the
//       ALF dequeue) before the objects go elsewhere, and a failed all-or-nothing push
//       (cache, depot, shared queue) leaves them in `elems` for the next place down.
//   Q3  Threads without rseq never fill a depot (its producer is its CPU's sequences): they
//       spill to the shared queue and may refill from any depot.
//   Q4  above_high is a relaxed counter of consecutive spills that found the shared queue
//       above its high watermark: a hint (races make a trim earlier or later, never wrong).
//   Q5  Checked mode (check.h; the pool has no caches, so every call takes a slow path): an
//       object is in the registry (ds/obj_registry.h) from the backing allocation that
//       brought it in to the backing free that returns it; kHeld from the alloc that hands
//       it out (its change kFree -> kHeld) to the free that takes it back (kHeld -> kFree,
//       before it joins a tier), kFree otherwise. So of two frees of one object exactly one
//       succeeds (R3), and an address the registry does not know is not the pool's.
// Hiding (what a stopped thread makes unreachable until it resumes): a thread stopped
// holding a fallback stack's try-lock, that stack (pcpu_cache I6); one stopped inside an
// ALF operation, the slots it claimed and the ones behind them (alf_queue.h). Depots hide
// nothing: a preempted producer restarts, a preempted consumer's CAS fails. A refill looks
// in the other CPUs' depots before it goes to the backing allocator.
#include <corepool/qmempool.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

#include <corepool/cpu.h>

#include "check.h"
#include "ds/alf_ring.h"
#include "ds/cpu_ring.h"
#include "ds/obj_registry.h"
#include "ds/pcpu_cache.h"
#include "ds/striped_counter.h"
#include "ds/thread_cache.h"
#include "error.h"
#include "inject.h"
#include "platform/cpu.h"
#include "platform/memory.h"
#include "platform/rseq.h"
#include "stats/stats.h"

namespace {
using namespace corepool::platform;
using corepool::report_misuse;
using corepool::set_error;
using corepool::ds::obj_registry;
using corepool::ds::pcpu_cache;
using ring = corepool::ds::alf_ring;

// Refill / spill unit between a CPU cache and what is below it: half the cache (so a cache
// that just overflowed or ran dry is half full and the next few thousand operations stay on
// the fast path), at most kMaxBulk (it is copied through an array on the stack, and alloc
// and free may run in signal handlers). The bulk API and trimming move kBulk at a time.
constexpr int kBulk = 16;
constexpr int kMaxBulk = 128;
static_assert(kMaxBulk <= corepool::ds::kThreadCacheUnitMax, "the tier moves p->bulk at once");
constexpr uint32_t kTrimAfter = 8;  // consecutive spills above the high watermark
constexpr std::size_t kLine = 64;
// The largest obj_size: rounding it up to kLine (default_alloc) cannot overflow, and the
// result is a size malloc may grant (at most PTRDIFF_MAX).
// Slow-path statistics (cp_qmempool_stats): counters of the pool's striped counter.
enum : unsigned { kRefills, kSpills, kDepotSteals, kBackingAllocs, kBackingFrees };
constexpr std::size_t kMaxObjSize = static_cast<std::size_t>(PTRDIFF_MAX) & ~(kLine - 1);
}  // namespace

struct cp_qmempool {
  // First line: what alloc and free read on the fast path (the cache's first fields).
  alignas(kLine) pcpu_cache cache;
  corepool::ds::thread_cache tier;  // off unless asked for
  ring *shared = nullptr;
  int bulk = 0;  // refill / spill unit: min(localq_sz / 2, kMaxBulk)
  uint32_t localq_sz = 0, sharedq_sz = 0, high_wm = 0, low_wm = 0;
  unsigned ncpu = 0;
  char *depots = nullptr;        // CPU c's depot at depots + c * depot_stride; NULL: rseq off
  std::size_t depot_stride = 0;  // page multiple: ring header + localq_sz slots
  cp_qmempool_backing backing{};
  std::size_t obj_size = 0;
  bool checked = false;   // checked mode: no caches, every object in `registry` (Q5)
  obj_registry registry;  // empty unless checked
  alignas(kLine) std::atomic<uint32_t> above_high{0};
  corepool::ds::striped_counter counters;  // kRefills ..., slow paths only
  corepool::stats::registration reg;       // in the COREPOOL_STATS exit report
};

namespace {

corepool::ds::cpu_ring *depot(const cp_qmempool *p, unsigned cpu) noexcept {
  return reinterpret_cast<corepool::ds::cpu_ring *>(p->depots + cpu * p->depot_stride);
}

// ---- backing allocator and shared queue ------------------------------------------------------

void *default_alloc(void *ctx) {
  const std::size_t sz = static_cast<cp_qmempool *>(ctx)->obj_size;
  if (sz >= kLine) return std::aligned_alloc(kLine, (sz + kLine - 1) & ~(kLine - 1));
  return std::malloc(sz);
}
void default_free(void *, void *obj) {
  std::free(obj);
}

// Up to n objects; stops at the first NULL and keeps what it got (the RFC enqueued j-1 of
// j objects and lost one). Checked mode registers each as free (Q5); one that cannot be
// registered goes back and ends the batch.
int backing_alloc(cp_qmempool *p, void **out, int n) noexcept {
  int i = 0;
  for (; i < n; i++) {
    out[i] = p->backing.alloc(p->backing.ctx);
    if (!out[i]) break;
    if (p->checked && !p->registry.insert(out[i], obj_registry::kFree)) {
      p->backing.free(p->backing.ctx, out[i]);
      break;
    }
  }
  p->counters.add(i, kBackingAllocs);
  return i;
}
void backing_free(cp_qmempool *p, void *const *objs, int n) noexcept {
  p->counters.add(n, kBackingFrees);
  for (int i = 0; i < n; i++) {
    if (p->checked) (void)p->registry.erase(objs[i]);  // Q5: before the address can be reused
    p->backing.free(p->backing.ctx, objs[i]);
  }
}

// Return objects from the shared queue to the backing allocator until it holds `target`.
void trim_shared(cp_qmempool *p, unsigned target) noexcept {
  void *e[kBulk];
  for (unsigned rounds = p->sharedq_sz / kBulk + 1; rounds > 0; rounds--) {
    const unsigned n = p->shared->count();
    if (n <= target) break;
    const int want =
        n - target < static_cast<unsigned>(kBulk) ? static_cast<int>(n - target) : kBulk;
    const int k = p->shared->dequeue<true>(e, want);
    if (k == 0) break;
    backing_free(p, e, k);
  }
}

// After a successful spill: memory goes back when the shared queue stays above its high
// watermark for kTrimAfter consecutive spills.
void note_spill(cp_qmempool *p) noexcept {
  if (p->shared->count() <= p->high_wm) {
    if (p->above_high.load(std::memory_order_relaxed) != 0)
      p->above_high.store(0, std::memory_order_relaxed);
    return;
  }
  if (p->above_high.fetch_add(1, std::memory_order_relaxed) + 1 < kTrimAfter) return;
  p->above_high.store(0, std::memory_order_relaxed);
  trim_shared(p, p->low_wm);
}

// Objects leave a cache (or a refill) for the shared queue; if it has no room for all of
// them (several CPUs spilling at once, a consumer still releasing slots), they go back to
// the backing allocator: the RFC's BUG_ON(num == 0) cases.
void spill(cp_qmempool *p, void *const *objs, int n) noexcept {
  if (n <= 0) return;
  if (p->shared->enqueue<true>(objs, n) == n) {
    note_spill(p);
    return;
  }
  backing_free(p, objs, n);
}

// Objects that left a cache (a spill) or did not fit in one: this CPU's depot in one
// sequence (all or nothing), else the shared queue, else the backing allocator. Threads
// without rseq cannot fill a depot (its producer is the CPU's sequences): shared queue.
void put_below(cp_qmempool *p, void *const *objs, int n) noexcept {
  if (n <= 0) return;
  if (p->depots) {
    for (;;) {
      const int cpu = rseq_cpu_start();
      if (cpu < 0 || static_cast<unsigned>(cpu) >= p->ncpu) break;
      const int rc = corepool::ds::cpu_ring_push_bulk(depot(p, static_cast<unsigned>(cpu)), objs,
                                                      static_cast<unsigned>(n), cpu);
      if (rc == CP_RSEQ_OK) return;
      if (rc == CP_RSEQ_FAIL) break;  // no room for all n: the shared queue
      // CP_RSEQ_ABORT: nothing committed; re-read the CPU
    }
  }
  spill(p, objs, n);
}

// Up to n objects from below the caches (one CAS each place): this CPU's depot, the shared
// queue, then the other CPUs' depots (objects spilled on other CPUs, also while a thread
// stopped inside the shared queue hides what it holds). 0 when every place came up empty.
int take_below(cp_qmempool *p, void **out, int n) noexcept {
  if (!p->depots) return p->shared->dequeue<true>(out, n);
  auto from_depot = [&](unsigned cpu) {
    return static_cast<int>(
        corepool::ds::cpu_ring_pop_bulk(depot(p, cpu), out, static_cast<unsigned>(n)));
  };
  const unsigned self = corepool::platform::current_cpu();  // < cp_nr_cpu_ids() == p->ncpu
  int k = from_depot(self);
  if (k == 0) k = p->shared->dequeue<true>(out, n);
  for (unsigned i = 1; k == 0 && i < p->ncpu; i++) {
    k = from_depot(self + i < p->ncpu ? self + i : self + i - p->ncpu);
    p->counters.add(k, kDepotSteals);
  }
  return k;
}

// Objects in our hands: this CPU's cache if they all fit, else below it. The cache need not
// be empty nor be the one we started on (migration, a signal handler, an object freed on
// another CPU): push_bulk is all or nothing, and a failure moves on.
void stash(cp_qmempool *p, void *const *objs, int n) noexcept {
  if (n <= 0 || p->cache.push_bulk_any(objs, static_cast<unsigned>(n))) return;
  p->counters.add(1, kSpills);
  put_below(p, objs, n);
}

// Checked mode (Q5): objects from a caller (n <= kBulk) go from held to free before they
// join the pool; one that is not held is reported and left out. -EALREADY: already free in
// this pool; -EINVAL: not this pool's (foreign, interior, or returned to the backing
// allocator).
void free_checked(cp_qmempool *p, void *const *objs, int n, const char *fn) noexcept {
  void *ok[kBulk];
  int m = 0;
  for (int i = 0; i < n; i++) {
    const obj_registry::state s =
        p->registry.change(objs[i], obj_registry::kHeld, obj_registry::kFree);
    if (s == obj_registry::kHeld)
      ok[m++] = objs[i];
    else if (s == obj_registry::kFree)
      (void)report_misuse(-EALREADY, fn, "double free", objs[i]);
    else
      (void)report_misuse(-EINVAL, fn, "not an object of this pool", objs[i]);
  }
  put_below(p, ok, m);  // no caches in checked mode
}

int alloc_bulk_slow(cp_qmempool *p, void **elems, int n, int got) noexcept;

// The fast path missed: a thread it does not know yet, a fallback thread, or an empty
// cache (always, in checked mode). Take half a cache from below it (one CAS), else from the
// backing allocator; keep one, cache the rest.
__attribute__((noinline)) void *alloc_slow(cp_qmempool *p) noexcept {
  if (p->checked) {
    void *obj;
    return alloc_bulk_slow(p, &obj, 1, 0) == 1 ? obj : nullptr;
  }
  if (void *obj = p->cache.pop_any()) return obj;
  p->counters.add(1, kRefills);
  void *elems[kMaxBulk];
  int k = take_below(p, elems, p->bulk);
  if (k == 0) {
    k = backing_alloc(p, elems, p->bulk);
    if (k == 0) {
      set_error(-ENOMEM, "qmempool: the backing allocator returned NULL");
      return nullptr;
    }
  }
  void *obj = elems[--k];
  stash(p, elems, k);
  return obj;
}

// The fast path missed: an unknown or fallback thread, or a full cache (always, in checked
// mode). Move half of the cache below (one sequence or one CAS), then cache obj.
__attribute__((noinline)) void free_slow(cp_qmempool *p, void *obj) noexcept {
  if (p->checked) return free_checked(p, &obj, 1, "cp_qmempool_free");
  if (p->cache.push_any(obj)) return;
  p->counters.add(1, kSpills);
  void *elems[kMaxBulk + 1];
  // Make room (0 if a concurrent pop emptied it, or its lock is busy).
  int k = static_cast<int>(p->cache.pop_bulk_any(elems, static_cast<unsigned>(p->bulk)));
  if (!p->cache.push_any(obj)) elems[k++] = obj;
  put_below(p, elems, k);
}

// The rest of a bulk allocation, after the fast path's one sequence took `got` objects
// (none, in checked mode: the objects are then marked held, Q5).
__attribute__((noinline)) int alloc_bulk_slow(cp_qmempool *p, void **elems, int n,
                                              int got) noexcept {
  while (got < n) {
    got += static_cast<int>(p->cache.pop_bulk_any(elems + got, static_cast<unsigned>(n - got)));
    if (got == n) break;
    p->counters.add(1, kRefills);
    const int k = take_below(p, elems + got, n - got);
    got += k;
    if (got == n || k > 0) continue;
    const int b = backing_alloc(p, elems + got, n - got < kBulk ? n - got : kBulk);
    if (b == 0) break;
    got += b;
  }
  if (got < n) set_error(-ENOMEM, "qmempool: the backing allocator returned NULL");
  // Q5: every object below the caches is kFree, and only this call holds these.
  if (p->checked)
    for (int i = 0; i < got; i++)
      (void)p->registry.change(elems[i], obj_registry::kFree, obj_registry::kHeld);
  return got;
}

// A bulk free's batch (m <= kBulk) that missed the cache.
__attribute__((noinline)) void free_bulk_slow(cp_qmempool *p, void *const *objs, int m) noexcept {
  if (p->checked) return free_checked(p, objs, m, "cp_qmempool_free_bulk");
  stash(p, objs, m);
}

// The thread tier's pool below it: the caches and what is below them.
void tier_sink(void *ctx, void *const *objs, unsigned n) {
  stash(static_cast<cp_qmempool *>(ctx), objs, static_cast<int>(n));
}
unsigned tier_source(void *ctx, void **out, unsigned n) {
  auto *p = static_cast<cp_qmempool *>(ctx);
  if (unsigned k = p->cache.pop_bulk_any(out, n)) return k;
  p->counters.add(1, kRefills);  // an allocation that went below the caches, as alloc_slow's
  int k = take_below(p, out, static_cast<int>(n));
  if (k == 0) k = backing_alloc(p, out, static_cast<int>(n));
  if (k == 0) set_error(-ENOMEM, "qmempool: the backing allocator returned NULL");
  return static_cast<unsigned>(k);
}

bool pow2(uint32_t v) noexcept {
  return v != 0 && (v & (v - 1)) == 0;
}

void release_pool(cp_qmempool *p) noexcept {
  corepool::stats::withdraw(p->reg);
  p->tier.destroy(false);
  ring::destroy(p->shared);
  if (p->depots) os_release(p->depots, p->depot_stride * p->ncpu);
  p->cache.destroy();
  p->registry.destroy();
  delete p;
}

__attribute__((noinline, cold)) void *alloc_null() noexcept {
  set_error(-EINVAL, "cp_qmempool_alloc: pool is NULL");
  return nullptr;
}
__attribute__((noinline, cold)) void free_null() noexcept {
  set_error(-EINVAL, "cp_qmempool_free: pool is NULL");
}

}  // namespace

extern "C" {

int cp_qmempool_create(cp_qmempool **pool, uint32_t localq_sz, uint32_t sharedq_sz,
                       uint32_t prealloc, size_t obj_size, const cp_qmempool_backing *backing) {
  return cp_qmempool_create_attr(pool, localq_sz, sharedq_sz, prealloc, obj_size, backing, nullptr);
}

int cp_qmempool_create_attr(cp_qmempool **pool, uint32_t localq_sz, uint32_t sharedq_sz,
                            uint32_t prealloc, size_t obj_size, const cp_qmempool_backing *backing,
                            const cp_qmempool_attr *attr) {
  if (!pool) return set_error(-EINVAL, "cp_qmempool_create: pool is NULL");
  *pool = nullptr;
  const cp_qmempool_attr a = attr ? *attr : cp_qmempool_attr{};
  if (a.flags & ~CP_QMEMPOOL_F_NOTHREADCACHE)
    return set_error(-EINVAL, "cp_qmempool_create: unknown bit in attr.flags");
  if (a.thread_cache > CP_QMEMPOOL_THREAD_CACHE_MAX)
    return set_error(-EINVAL, "cp_qmempool_create: attr.thread_cache above its max");
  if (localq_sz < kBulk) return set_error(-EINVAL, "cp_qmempool_create: localq_sz must be >= 16");
  if (!pow2(localq_sz))
    return set_error(-EINVAL, "cp_qmempool_create: localq_sz must be a power of two");
  if (localq_sz > 65536)
    return set_error(-EINVAL, "cp_qmempool_create: localq_sz must be <= 65536");
  if (sharedq_sz < 2 * kBulk)
    return set_error(-EINVAL, "cp_qmempool_create: sharedq_sz must be >= 32");
  if (!pow2(sharedq_sz))
    return set_error(-EINVAL, "cp_qmempool_create: sharedq_sz must be a power of two");
  if (sharedq_sz > (1u << 24))
    return set_error(-EINVAL, "cp_qmempool_create: sharedq_sz must be <= 2^24");
  if (prealloc > sharedq_sz)
    return set_error(-EINVAL, "cp_qmempool_create: prealloc must be <= sharedq_sz");
  if (obj_size == 0) return set_error(-EINVAL, "cp_qmempool_create: obj_size must be >= 1");
  if (obj_size > kMaxObjSize)
    return set_error(-EINVAL,
                     "cp_qmempool_create: obj_size must be <= PTRDIFF_MAX rounded down to 64");
  if (backing && (!backing->alloc || !backing->free))
    return set_error(-EINVAL, "cp_qmempool_create: backing->alloc and backing->free must be set");

  auto *p = new (std::nothrow) cp_qmempool;
  if (!p) return set_error(-ENOMEM, "cp_qmempool_create: out of memory");
  p->obj_size = obj_size;
  p->localq_sz = localq_sz;
  p->sharedq_sz = sharedq_sz;
  p->bulk = static_cast<int>(localq_sz / 2 < kMaxBulk ? localq_sz / 2 : kMaxBulk);
  p->high_wm = sharedq_sz / 4 * 3;
  p->low_wm = sharedq_sz / 2;
  p->backing = backing ? *backing : cp_qmempool_backing{default_alloc, default_free, p};
  p->ncpu = cp_nr_cpu_ids();
  p->shared = ring::create(sharedq_sz);
  // rseq stacks where the thread can run sequences, fallback stacks for the others (a
  // thread may lack rseq even when the process has it). Nothing steals from a qmempool
  // cache: no fence needed. Checked mode: no caches (every call misses into the checks).
  p->checked = corepool::check_enabled();
  if (p->checked) p->registry.init(12);
  if (!p->shared ||
      (!p->checked && p->cache.init(p->ncpu, localq_sz, pcpu_cache::kFallback) != 0)) {
    release_pool(p);
    return set_error(-ENOMEM, "cp_qmempool_create: out of memory");
  }
  if (cp_rseq_enabled()) {  // depots: only rseq threads can fill them (Q3)
    p->depot_stride = (sizeof(corepool::ds::cpu_ring) + std::size_t{localq_sz} * sizeof(void *) +
                       page_size() - 1) /
                      page_size() * page_size();
    // Zeroed and touched lazily: a CPU that never spills costs no resident page.
    p->depots = static_cast<char *>(os_alloc(p->depot_stride * p->ncpu, page_size()));
    if (!p->depots) {
      release_pool(p);
      return set_error(-ENOMEM, "cp_qmempool_create: out of memory");
    }
    for (unsigned c = 0; c < p->ncpu; c++)
      corepool::ds::cpu_ring_init(depot(p, c), localq_sz, p->depot_stride);
  }
  if (!(a.flags & CP_QMEMPOOL_F_NOTHREADCACHE) && !p->checked) {  // checked mode: no tier either
    const unsigned tc = a.thread_cache ? a.thread_cache : corepool::ds::thread_cache_env_capacity();
    // The tier moves what the cache moves (p->bulk, one depot or shared-queue step).
    const unsigned unit = p->bulk > 0 ? static_cast<unsigned>(p->bulk) : 1;
    if (tc && p->tier.init(tc, unit, tier_sink, tier_source, p) == -ENOMEM) {
      release_pool(p);
      return set_error(-ENOMEM, "cp_qmempool_create: out of memory");
    }
    // -ENOTSUP (no rseq or fence), -ENOSPC (too many pools with the tier): without it.
  }
  // Preallocate into the shared queue (empty and private: every enqueue fits).
  for (uint32_t done = 0; done < prealloc;) {
    void *e[kBulk];
    const int want =
        prealloc - done < static_cast<uint32_t>(kBulk) ? static_cast<int>(prealloc - done) : kBulk;
    const int k = backing_alloc(p, e, want);
    if (k > 0) p->shared->enqueue<false>(e, k);
    done += k;
    if (k < want) {
      cp_qmempool_destroy(p);
      return set_error(-ENOMEM, "cp_qmempool_create: the backing allocator failed during prealloc");
    }
  }
  p->reg = {p, [](const void *q, int fd) {
              return cp_qmempool_dump(static_cast<const cp_qmempool *>(q), fd);
            }};
  corepool::stats::enroll(p->reg);
  *pool = p;
  return 0;
}

// The fast paths: one restartable sequence on this CPU's cache, no call, no stack frame;
// everything else is a tail call out of line.
void *cp_qmempool_alloc(cp_qmempool *p) {
  if (__builtin_expect(p == nullptr, 0)) return alloc_null();
  if (p->tier.enabled())  // one compare when the tier is off
    return corepool::ds::thread_cache_get(p->tier);
  void *obj = pcpu_cache_pop(p->cache);
  if (__builtin_expect(obj != nullptr, 1)) return obj;
  return alloc_slow(p);
}

void cp_qmempool_free(cp_qmempool *p, void *elem) {
  if (__builtin_expect(p == nullptr, 0)) return free_null();
  if (__builtin_expect(elem == nullptr, 0)) return;
  if (p->tier.enabled()) {  // one compare when the tier is off
    corepool::ds::thread_cache_put(p->tier, elem);
    return;
  }
  if (__builtin_expect(pcpu_cache_push(p->cache, elem), 1)) return;
  free_slow(p, elem);
}

int cp_qmempool_alloc_bulk(cp_qmempool *p, void **elems, int n) {
  if (!p) return set_error(-EINVAL, "cp_qmempool_alloc_bulk: pool is NULL");
  if (n < 0) return set_error(-EINVAL, "cp_qmempool_alloc_bulk: n < 0");
  if (!elems && n > 0) return set_error(-EINVAL, "cp_qmempool_alloc_bulk: elems is NULL");
  if (n == 0) return 0;
  const int got = static_cast<int>(pcpu_cache_pop_bulk(p->cache, elems, static_cast<unsigned>(n)));
  if (__builtin_expect(got == n, 1)) return got;
  return alloc_bulk_slow(p, elems, n, got);
}

void cp_qmempool_free_bulk(cp_qmempool *p, void *const *elems, int n) {
  if (!p) return static_cast<void>(set_error(-EINVAL, "cp_qmempool_free_bulk: pool is NULL"));
  if (n < 0) return static_cast<void>(set_error(-EINVAL, "cp_qmempool_free_bulk: n < 0"));
  if (!elems && n > 0)
    return static_cast<void>(set_error(-EINVAL, "cp_qmempool_free_bulk: elems is NULL"));
  void *buf[kBulk];
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (elems[i]) buf[m++] = elems[i];
    if (m == kBulk || (i == n - 1 && m > 0)) {
      if (!pcpu_cache_push_bulk(p->cache, buf, static_cast<unsigned>(m))) free_bulk_slow(p, buf, m);
      m = 0;
    }
  }
}

void cp_qmempool_destroy(cp_qmempool *p) {
  if (!p) return;
  // No concurrent users (contract): the caches and depots can be drained with plain loads.
  p->tier.destroy(true);  // every thread's stack into the caches first
  void *e[kBulk];
  for (unsigned c = 0; c < p->ncpu; c++)
    for (unsigned k; (k = p->cache.drain_quiescent(c, e, kBulk)) > 0;)
      backing_free(p, e, static_cast<int>(k));
  if (p->depots)
    for (unsigned c = 0; c < p->ncpu; c++)
      for (unsigned k; (k = corepool::ds::cpu_ring_pop_bulk(depot(p, c), e, kBulk)) > 0;)
        backing_free(p, e, static_cast<int>(k));
  for (int k; (k = p->shared->dequeue<true>(e, kBulk)) > 0;) backing_free(p, e, k);
  release_pool(p);
}

uint32_t cp_qmempool_thread_cache_capacity(const cp_qmempool *p) {
  return p ? p->tier.capacity() : 0;
}

int cp_qmempool_stats(const cp_qmempool *p, struct cp_qmempool_stats *st) {
  if (!p || !st) return set_error(-EINVAL, "cp_qmempool_stats: NULL argument");
  *st = {};
  for (unsigned c = 0; c < p->ncpu; c++) {
    st->nr_free_cache += p->cache.count(c);
    if (p->depots) st->nr_free_depots += depot(p, c)->nr_free();
  }
  st->nr_free_shared = p->shared->count();
  st->nr_free_threads = p->tier.count();
  st->nr_free = st->nr_free_cache + st->nr_free_depots + st->nr_free_shared + st->nr_free_threads;
  auto sum = [p](unsigned k) { return static_cast<unsigned long long>(p->counters.sum(k)); };
  st->refills = sum(kRefills);
  st->spills = sum(kSpills);
  st->depot_steals = sum(kDepotSteals);
  st->backing_allocs = sum(kBackingAllocs);
  st->backing_frees = sum(kBackingFrees);
  return 0;
}

int cp_qmempool_dump(const cp_qmempool *p, int fd) {
  struct cp_qmempool_stats st;
  if (cp_qmempool_stats(p, &st) != 0) return set_error(-EINVAL, "cp_qmempool_dump: pool is NULL");
  corepool::stats::line_writer w(fd, "qmempool", p);
  w.kv("free", st.nr_free).kv("cache", st.nr_free_cache).kv("depots", st.nr_free_depots);
  w.kv("shared", st.nr_free_shared).kv("threads", st.nr_free_threads);
  w.kv("localq_sz", p->localq_sz);
  w.kv("sharedq_sz", p->sharedq_sz).kv("obj_size", p->obj_size).end();
  for (unsigned c = 0; c < p->ncpu; c++) {
    if (!cp_cpu_possible(c)) continue;
    w.kv("cpu", c).kv("cache", p->cache.count(c));
    w.kv("depot", p->depots ? depot(p, c)->nr_free() : 0).end();
  }
  w.kv("refills", st.refills).kv("spills", st.spills).kv("depot_steals", st.depot_steals);
  w.kv("backing_allocs", st.backing_allocs).kv("backing_frees", st.backing_frees).end();
  return w.result();
}

}  // extern "C"
