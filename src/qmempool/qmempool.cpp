// qmempool: per-CPU caches -> shared ALF queue -> backing allocator (see corepool/qmempool.h).
//
// Synchronization protocol
//   rseq cache of CPU c  {top, fence = 0, cap, slots[cap]}: modified only by rseq sequences on
//       CPU c (the platform's rseq_stack_pop/push on the fast path, their bulk forms on the
//       slow path). The commit store is `top`; the kernel restarts a sequence that was
//       preempted, migrated or interrupted by a signal, so two modifications never
//       interleave. Never touched by fallback threads.
//   fallback cache of CPU c {lock, top, slots}: modified only by a thread that won the
//       try-lock (exchange 0 -> 1, acquire; released by a store of 0, release). A thread that
//       loses goes to the shared queue instead of waiting, so a signal handler that
//       interrupts the holder, or a preempted holder, never blocks anyone.
//   depot of CPU c: a ds::cpu_ring of localq_sz slots (ds/cpu_ring.h, invariants R1-R4):
//       filled only by restartable sequences on CPU c (spills of rseq threads), emptied by
//       CAS from any thread. Neither side ever leaves a half-done step behind: a preempted
//       producer restarts, a preempted consumer's CAS fails. So a stopped thread never hides
//       objects in a depot.
//   shared queue: the ALF queue, any thread, lock-free, never waits (alf_queue.h). A thread
//       stopped between claiming slots and publishing them hides those slots and the ones
//       behind them until it resumes (under oversubscription, milliseconds): the depots keep
//       most traffic off it, and a refill looks in the other CPUs' depots before it goes
//       to the backing allocator.
//   above_high: a relaxed counter of consecutive spills that found the shared queue above
//       its high watermark; a hint only (races make the trim earlier or later, never wrong).
// Every object is at any instant in exactly one place: a caller's hands, one cache slot
// below `top`, one depot slot in [head, tail), one published ALF slot, or a local `elems`
// array of one operation in progress. Each step below moves objects between places without
// copying them twice: a bulk pop commits (top -= k, or the depot's head CAS) before the
// objects are pushed elsewhere, and a failed all-or-nothing push leaves them in the local
// array for the next place in the chain.
#include <corepool/qmempool.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include <corepool/cpu.h>

#include "alf/alf_ring.h"
#include "ds/cpu_ring.h"
#include "error.h"
#include "inject.h"
#include "platform/cpu.h"
#include "platform/memory.h"
#include "platform/rseq.h"

namespace {
using namespace corepool::platform;
using corepool::set_error;
using ring = corepool::alf::ring;
// One CPU's rseq cache: the platform's stack header line {top, fence, cap}, then localq_sz
// slots. Nothing takes a qmempool cache over from another CPU, so fence stays 0.
using rhead = rseq_stack;

// Refill / spill unit between a CPU cache and the shared queue: half the cache (so a cache
// that just overflowed or ran dry is half full and the next few thousand operations stay on
// the fast path), at most kMaxBulk (it is copied through an array on the stack, and alloc
// and free may run in signal handlers). The bulk API and trimming move kBulk at a time.
constexpr int kBulk = 16;
constexpr int kMaxBulk = 128;
constexpr uint32_t kTrimAfter = 8;  // consecutive spills above the high watermark
constexpr std::size_t kLine = 64;

struct alignas(kLine) fhead {
  std::atomic<uint32_t> lock;
  uint32_t top;
};
}  // namespace

struct cp_qmempool {
  // First line: everything alloc and free read on the fast path (and on a refill / spill).
  alignas(kLine) char *rcaches = nullptr;
  std::size_t stride = 0;  // bytes per CPU cache: one header line + localq_sz slots
  unsigned ncpu = 0;
  int bulk = 0;  // refill / spill unit: min(localq_sz / 2, kMaxBulk)
  ring *shared = nullptr;
  uint32_t localq_sz = 0, sharedq_sz = 0, high_wm = 0, low_wm = 0;
  // Colder: slow paths, create / destroy.
  char *depots = nullptr;        // CPU c's depot at depots + c * depot_stride; NULL: rseq off
  std::size_t depot_stride = 0;  // page multiple: ring header + localq_sz slots
  char *fcaches = nullptr;
  cp_qmempool_backing backing{};
  std::size_t obj_size = 0;
  alignas(kLine) std::atomic<uint32_t> above_high{0};
};

namespace {

rhead *rc(cp_qmempool *p, unsigned cpu) noexcept {
  return reinterpret_cast<rhead *>(p->rcaches + cpu * p->stride);
}
corepool::ds::cpu_ring *depot(cp_qmempool *p, unsigned cpu) noexcept {
  return reinterpret_cast<corepool::ds::cpu_ring *>(p->depots + cpu * p->depot_stride);
}
fhead *fc(cp_qmempool *p, unsigned cpu) noexcept {
  return reinterpret_cast<fhead *>(p->fcaches + cpu * p->stride);
}
template <class H>
void **slots_of(H *h) noexcept {
  return reinterpret_cast<void **>(reinterpret_cast<char *>(h) + kLine);
}

// ---- the two kinds of per-CPU cache, one interface -----------------------------------------
// pop/push: one object; pop_bulk: up to n (0 if empty or busy); push_bulk: all or nothing.

// Restartable sequences on the current CPU; ABORT means nothing was committed, so re-read
// the CPU and run again.
struct rseq_cache {
  cp_qmempool *p;
  template <class Op>
  int run(Op op) const noexcept {
    for (;;) {
      const int cpu = rseq_cpu_start();
      if (cpu < 0) return CP_RSEQ_FAIL;  // cannot happen on a thread that chose this path
      const int r = op(rc(p, static_cast<unsigned>(cpu)), cpu);
      if (r != CP_RSEQ_ABORT) return r;
    }
  }
  bool pop(void **out) const noexcept {
    rseq_abi *rs = rseq_area();
    return run([&](rhead *h, int cpu) { return rseq_stack_pop(h, out, cpu, rs); }) == CP_RSEQ_OK;
  }
  bool push(void *obj) const noexcept {
    rseq_abi *rs = rseq_area();
    return run([&](rhead *h, int cpu) { return rseq_stack_push(h, obj, cpu, rs); }) == CP_RSEQ_OK;
  }
  int pop_bulk(void **out, int n) const noexcept {
    intptr_t got = 0;
    if (n <= 0) return 0;
    rseq_abi *rs = rseq_area();
    const int r =
        run([&](rhead *h, int cpu) { return rseq_stack_pop_bulk(h, out, n, &got, cpu, rs); });
    return r == CP_RSEQ_OK ? static_cast<int>(got) : 0;
  }
  bool push_bulk(void *const *in, int n) const noexcept {
    if (n <= 0) return true;
    rseq_abi *rs = rseq_area();
    return run([&](rhead *h, int cpu) { return rseq_stack_push_bulk(h, in, n, cpu, rs); }) ==
           CP_RSEQ_OK;
  }
};

// Threads without rseq: the current CPU's fallback cache under a try-lock. Busy counts as
// empty (pop) or full (push), so the caller moves on to the shared queue.
struct locked_cache {
  cp_qmempool *p;
  fhead *lock() const noexcept {
    fhead *h = fc(p, corepool::platform::current_cpu());
    // L1: acquire pairs with L2 of the previous holder: its top/slots writes are visible.
    if (h->lock.exchange(1, std::memory_order_acquire) != 0) return nullptr;
    CP_INJECT("qmempool.locked");
    return h;
  }
  static void unlock(fhead *h) noexcept { h->lock.store(0, std::memory_order_release); }  // L2
  bool pop(void **out) const noexcept {
    fhead *h = lock();
    if (!h) return false;
    const bool ok = h->top > 0;
    if (ok) *out = slots_of(h)[--h->top];
    unlock(h);
    return ok;
  }
  bool push(void *obj) const noexcept {
    fhead *h = lock();
    if (!h) return false;
    const bool ok = h->top < p->localq_sz;
    if (ok) slots_of(h)[h->top++] = obj;
    unlock(h);
    return ok;
  }
  int pop_bulk(void **out, int n) const noexcept {
    fhead *h = lock();
    if (!h) return 0;
    const int k = n < static_cast<int>(h->top) ? n : static_cast<int>(h->top);
    for (int i = 0; i < k; i++) out[i] = slots_of(h)[h->top - k + i];
    h->top -= k;
    unlock(h);
    return k;
  }
  bool push_bulk(void *const *in, int n) const noexcept {
    if (n <= 0) return true;
    fhead *h = lock();
    if (!h) return false;
    const bool ok = h->top + static_cast<uint32_t>(n) <= p->localq_sz;
    if (ok) {
      for (int i = 0; i < n; i++) slots_of(h)[h->top + i] = in[i];
      h->top += n;
    }
    unlock(h);
    return ok;
  }
};

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
// j objects and lost one).
int backing_alloc(cp_qmempool *p, void **out, int n) noexcept {
  int i = 0;
  for (; i < n; i++) {
    out[i] = p->backing.alloc(p->backing.ctx);
    if (!out[i]) break;
  }
  return i;
}
void backing_free(cp_qmempool *p, void *const *objs, int n) noexcept {
  for (int i = 0; i < n; i++) p->backing.free(p->backing.ctx, objs[i]);
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
  for (unsigned i = 1; k == 0 && i < p->ncpu; i++)
    k = from_depot(self + i < p->ncpu ? self + i : self + i - p->ncpu);
  return k;
}

// Put objects in this CPU's cache, or else below it. The cache need not be empty nor be the
// one we started on (migration, a signal handler, an object freed on another CPU):
// push_bulk is all or nothing, and a failure moves on.
template <class Cache>
void stash(cp_qmempool *p, const Cache &c, void *const *objs, int n) noexcept {
  if (n <= 0 || c.push_bulk(objs, n)) return;
  put_below(p, objs, n);
}

// The cache was empty: take half a cache from below it (one CAS), else from the backing
// allocator; keep one, cache the rest.
template <class Cache>
__attribute__((noinline)) void *alloc_slow(cp_qmempool *p, const Cache &c) noexcept {
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
  stash(p, c, elems, k);
  return obj;
}

// The cache was full: move half of it below (one sequence or one CAS), then cache obj.
template <class Cache>
__attribute__((noinline)) void free_slow(cp_qmempool *p, const Cache &c, void *obj) noexcept {
  void *elems[kMaxBulk + 1];
  int k = c.pop_bulk(elems, p->bulk);  // make room (0 if a concurrent pop emptied it, or busy)
  if (!c.push(obj)) elems[k++] = obj;
  put_below(p, elems, k);
}

template <class Cache>
int alloc_bulk(cp_qmempool *p, const Cache &c, void **elems, int n) noexcept {
  int got = 0;
  while (got < n) {
    got += c.pop_bulk(elems + got, n - got);
    if (got == n) break;
    const int k = take_below(p, elems + got, n - got);
    got += k;
    if (got == n || k > 0) continue;
    const int b = backing_alloc(p, elems + got, n - got < kBulk ? n - got : kBulk);
    if (b == 0) break;
    got += b;
  }
  return got;
}

template <class Cache>
void free_bulk(cp_qmempool *p, const Cache &c, void *const *elems, int n) noexcept {
  void *buf[kBulk];
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (elems[i]) buf[m++] = elems[i];
    if (m == kBulk || (i == n - 1 && m > 0)) {
      if (!c.push_bulk(buf, m)) put_below(p, buf, m);
      m = 0;
    }
  }
}

bool pow2(uint32_t v) noexcept {
  return v != 0 && (v & (v - 1)) == 0;
}

void release_pool(cp_qmempool *p) noexcept {
  ring::destroy(p->shared);
  if (p->depots) os_release(p->depots, p->depot_stride * p->ncpu);
  ::operator delete (p->rcaches, std::align_val_t{kLine}, std::nothrow);
  ::operator delete (p->fcaches, std::align_val_t{kLine}, std::nothrow);
  delete p;
}

__attribute__((noinline, cold)) void *alloc_null() noexcept {
  set_error(-EINVAL, "cp_qmempool_alloc: pool is NULL");
  return nullptr;
}
__attribute__((noinline, cold)) void free_null() noexcept {
  set_error(-EINVAL, "cp_qmempool_free: pool is NULL");
}

// Threads without rseq (every call comes here and uses the try-lock caches), and the rare
// rseq thread whose cpu_id is out of range.
__attribute__((noinline)) void *alloc_cold(cp_qmempool *p) noexcept {
  if (rseq_registered_area() != nullptr) {  // registers the thread (own area in mode `own`)
    const rseq_cache c{p};
    void *obj;
    if (c.pop(&obj)) return obj;
    return alloc_slow(p, c);
  }
  const locked_cache c{p};
  void *obj;
  if (c.pop(&obj)) return obj;
  return alloc_slow(p, c);
}

__attribute__((noinline)) void free_cold(cp_qmempool *p, void *elem) noexcept {
  if (rseq_registered_area() != nullptr) {
    const rseq_cache c{p};
    if (!c.push(elem)) free_slow(p, c, elem);
    return;
  }
  const locked_cache c{p};
  if (c.push(elem)) return;
  free_slow(p, c, elem);
}

}  // namespace

extern "C" {

int cp_qmempool_create(cp_qmempool **pool, uint32_t localq_sz, uint32_t sharedq_sz,
                       uint32_t prealloc, size_t obj_size, const cp_qmempool_backing *backing) {
  if (!pool) return set_error(-EINVAL, "cp_qmempool_create: pool is NULL");
  *pool = nullptr;
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
  p->stride = kLine + std::size_t{localq_sz} * sizeof(void *);
  p->shared = ring::create(sharedq_sz);
  const std::size_t bytes = p->stride * p->ncpu;
  p->rcaches = static_cast<char *>(::operator new (bytes, std::align_val_t{kLine}, std::nothrow));
  p->fcaches = static_cast<char *>(::operator new (bytes, std::align_val_t{kLine}, std::nothrow));
  if (!p->shared || !p->rcaches || !p->fcaches) {
    release_pool(p);
    return set_error(-ENOMEM, "cp_qmempool_create: out of memory");
  }
  if (cp_rseq_enabled()) {  // depots: only rseq threads can fill them
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
  for (unsigned c = 0; c < p->ncpu; c++) {
    rhead *h = ::new (rc(p, c)) rhead{};
    h->cap = static_cast<intptr_t>(localq_sz);
    fhead *f = ::new (fc(p, c)) fhead;
    f->lock.store(0, std::memory_order_relaxed);
    f->top = 0;
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
  *pool = p;
  return 0;
}

void *cp_qmempool_alloc(cp_qmempool *p) {
  if (__builtin_expect(p == nullptr, 0)) return alloc_null();
  if (rseq_abi *rs = rseq_registered_area_if_known(); __builtin_expect(rs != nullptr, 1)) {
    for (;;) {
      const int cpu = static_cast<int>(__atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED));
      if (__builtin_expect(static_cast<unsigned>(cpu) >= p->ncpu, 0)) break;
      void *obj;
      const int r = rseq_stack_pop(rc(p, static_cast<unsigned>(cpu)), &obj, cpu, rs);
      if (__builtin_expect(r == CP_RSEQ_OK, 1)) return obj;
      if (r == CP_RSEQ_FAIL) return alloc_slow(p, rseq_cache{p});
      // CP_RSEQ_ABORT: preempted, migrated or signalled before the commit; nothing taken
    }
  }
  return alloc_cold(p);
}

void cp_qmempool_free(cp_qmempool *p, void *elem) {
  if (__builtin_expect(p == nullptr, 0)) return free_null();
  if (__builtin_expect(elem == nullptr, 0)) return;
  if (rseq_abi *rs = rseq_registered_area_if_known(); __builtin_expect(rs != nullptr, 1)) {
    for (;;) {
      const int cpu = static_cast<int>(__atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED));
      if (__builtin_expect(static_cast<unsigned>(cpu) >= p->ncpu, 0)) break;
      const int r = rseq_stack_push(rc(p, static_cast<unsigned>(cpu)), elem, cpu, rs);
      if (__builtin_expect(r == CP_RSEQ_OK, 1)) return;
      if (r == CP_RSEQ_FAIL) return free_slow(p, rseq_cache{p}, elem);
    }
  }
  free_cold(p, elem);
}

int cp_qmempool_alloc_bulk(cp_qmempool *p, void **elems, int n) {
  if (!p) return set_error(-EINVAL, "cp_qmempool_alloc_bulk: pool is NULL");
  if (n < 0) return set_error(-EINVAL, "cp_qmempool_alloc_bulk: n < 0");
  if (!elems && n > 0) return set_error(-EINVAL, "cp_qmempool_alloc_bulk: elems is NULL");
  const int got = rseq_cpu_start() >= 0 ? alloc_bulk(p, rseq_cache{p}, elems, n)
                                        : alloc_bulk(p, locked_cache{p}, elems, n);
  if (got < n) set_error(-ENOMEM, "qmempool: the backing allocator returned NULL");
  return got;
}

void cp_qmempool_free_bulk(cp_qmempool *p, void *const *elems, int n) {
  if (!p) return static_cast<void>(set_error(-EINVAL, "cp_qmempool_free_bulk: pool is NULL"));
  if (n < 0) return static_cast<void>(set_error(-EINVAL, "cp_qmempool_free_bulk: n < 0"));
  if (!elems && n > 0)
    return static_cast<void>(set_error(-EINVAL, "cp_qmempool_free_bulk: elems is NULL"));
  if (rseq_cpu_start() >= 0)
    free_bulk(p, rseq_cache{p}, elems, n);
  else
    free_bulk(p, locked_cache{p}, elems, n);
}

void cp_qmempool_destroy(cp_qmempool *p) {
  if (!p) return;
  // No concurrent users (contract): the caches can be read with plain loads.
  for (unsigned c = 0; c < p->ncpu; c++) {
    rhead *r = rc(p, c);
    backing_free(p, slots_of(r), static_cast<int>(r->top));
    r->top = 0;
    fhead *f = fc(p, c);
    backing_free(p, slots_of(f), static_cast<int>(f->top));
    f->top = 0;
  }
  void *e[kBulk];
  if (p->depots)
    for (unsigned c = 0; c < p->ncpu; c++)
      for (unsigned k; (k = corepool::ds::cpu_ring_pop_bulk(depot(p, c), e, kBulk)) > 0;)
        backing_free(p, e, static_cast<int>(k));
  for (int k; (k = p->shared->dequeue<true>(e, kBulk)) > 0;) backing_free(p, e, k);
  release_pool(p);
}

}  // extern "C"
