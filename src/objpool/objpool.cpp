// objpool: fixed pool of pre-allocated objects, one ring per CPU (corepool/objpool.h).
//
// A composition of ds tiers (docs/objpool.md has the full argument):
//
//   [thread tier (ds/thread_cache.h), optional] -> per-CPU cache (ds/pcpu_cache.h)
//     -> this CPU's ring (ds/cpu_ring.h) -> overflow rings -> the spill array
//     (ds/cas_array.h) ; pop also: other CPUs' rings, other CPUs' caches, other threads'
//     stacks
//
// Rings (ds/cpu_ring.h, invariants R1-R6): one producer at a time, consumers from any CPU by
// CAS on head after reading the slots. Which producer, per ring, chosen at creation:
//
//  per-CPU rings, pool created with rseq on: the rseq producer of the ring's CPU (tail
//    written only by the restartable sequence rseq_ring_push on that CPU). Threads for which
//    rseq_cpu_start() returns -1 never write a rseq ring's tail: they push to an overflow
//    ring.
//  per-CPU rings with rseq off, and the overflow rings always: the locked producer (the
//    ring's try-lock; a push that finds it held goes to the next ring, never waits).
//
// O1  (liveness) A thread stopped forever anywhere inside a pool operation hides only the
//     objects that operation holds, with rseq on or off, on any architecture and for
//     threads without rseq: a push publishes an object with one commit of tail (R5), so
//     nothing is ever queued behind an unfinished push (R6); a stopped pop holds nothing;
//     a stopped locked push only makes its ring BUSY for other pushes. Every other object
//     stays poppable by every thread and from signal handlers.
// O2  push never fails and never waits for a valid object: a push that finds its ring full
//     or BUSY tries the two overflow rings (each with room for nr_objs: tail - head counts
//     only objects in the ring, so they are never full), then (rseq off) the other CPUs'
//     rings, and if every one is BUSY (their holders stopped, or interrupted by the signal
//     handler that is pushing now) the spill array, which has a slot per object and
//     refuses nothing (ds/cas_array.h C3).
//
// O3  Checked mode (check.h): the pool has neither cache nor thread tier, so every push and
//     pop takes a slow path, and each object has a state byte (kFree, kHeld, kGone) changed only by
//     one CAS: K1 push kHeld -> kFree before the object joins a ring; K2 pop kFree -> kHeld after
//     it left one (cannot fail: only K1 made it kFree, and it was in no ring before); K3 drop kHeld
//     -> kGone. A push or drop whose CAS fails is refused and reported (of two racing pushes of one
//     object exactly one succeeds), and a push after fini is refused. So the rings never hold an
//     object twice and nr_free never exceeds nr_objs.
//
// Memory ordering: an object's contents written by its previous holder are visible to the
// next through the ring's P1/C1 pair (or the cache's own protocol).
#include <corepool/cpu.h>
#include <corepool/objpool.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#include "check.h"
#include "ds/cas_array.h"
#include "ds/cpu_ring.h"
#include "ds/pcpu_cache.h"
#include "ds/striped_counter.h"
#include "ds/thread_cache.h"
#include "error.h"
#include "inject.h"
#include "objpool/objpool_internal.h"
#include "platform/cpu.h"
#include "platform/memory.h"
#include "platform/rseq.h"
#include "stats/stats.h"

namespace {
using namespace corepool::platform;
using namespace corepool::ds;
using namespace corepool::objpool_impl;

constexpr unsigned kDefaultCache = 256;  // objects per CPU cache unless the caller says
// The most objects one refill takes from the rings (pop_one_slow), and the thread tier's
// refill / spill unit.
constexpr unsigned kRefill = 64;

// ---- producers ----------------------------------------------------------------------------

// Locked pushes of n objects: the overflow rings, then (rseq off) the CPU rings from `cpu`,
// then the spill array (O2).
inline void overflow_push_bulk(cp_objpool *p, void *const *objs, uint64_t n,
                               unsigned cpu) noexcept {
  for (ring *r : p->overflow) {
    int rc = corepool::ds::cpu_ring_try_push_bulk(r, objs, n);
    if (__builtin_expect(rc == corepool::ds::CP_RING_OK, 1)) return;
    if (rc == corepool::ds::CP_RING_FULL) __builtin_trap();  // more pushes than objects
  }
  for (unsigned i = 0; !p->rseq && i < p->nr_cpus; i++) {
    ring *r = p->rings[(cpu + i) % p->nr_cpus];
    if (r && corepool::ds::cpu_ring_try_push_bulk(r, objs, n) == corepool::ds::CP_RING_OK) return;
  }
  const unsigned k = static_cast<unsigned>(n);
  if (corepool::ds::cas_array_put(p->spill, objs, k) != k) __builtin_trap();  // as above
  p->counters.add(kSpillArrayPuts, k);
}

inline int start_cpu(const cp_objpool *p) noexcept {
  int cpu = p->rseq ? rseq_cpu_start() : -1;
  if (cpu < 0 || static_cast<unsigned>(cpu) >= p->nr_cpus)
    cpu = static_cast<int>(corepool::platform::current_cpu());
  return cpu;
}

// Below the cache: the local ring, else an overflow ring.
__attribute__((noinline)) void push_to_rings(cp_objpool *p, void *obj) noexcept {
  unsigned cpu;
  if (p->rseq) {
    for (;;) {
      int c = rseq_cpu_start();
      if (c < 0 || static_cast<unsigned>(c) >= p->nr_cpus) break;  // never write a tail
      ring *r = p->rings[c];
      if (!r) break;
      int rc = corepool::ds::cpu_ring_push(r, obj, c);
      if (__builtin_expect(rc == CP_RSEQ_OK, 1)) return;
      if (rc == CP_RSEQ_FAIL) break;  // this CPU's ring is full (bounded capacity)
      // CP_RSEQ_ABORT: preempted, migrated or signalled; nothing committed: retry
    }
    cpu = 0;
  } else {
    cpu = corepool::platform::current_cpu();
    ring *r = cpu < p->nr_cpus ? p->rings[cpu] : nullptr;
    if (r && corepool::ds::cpu_ring_try_push_bulk(r, &obj, 1) == corepool::ds::CP_RING_OK) return;
    if (cpu >= p->nr_cpus) cpu = 0;
  }
  overflow_push_bulk(p, &obj, 1, cpu);
}

inline void push_one(cp_objpool *p, void *obj) noexcept {
  if (pcpu_cache_push(p->cache, obj)) return;  // the fast path: one rseq sequence, no atomic RMW
  push_to_rings(p, obj);
}

inline unsigned pop_from(ring *r, void **out, unsigned n) noexcept {
  if (n == 1) {
    void *o = corepool::ds::cpu_ring_pop(r);
    if (!o) return 0;
    out[0] = o;
    return 1;
  }
  return corepool::ds::cpu_ring_pop_bulk(r, out, n);
}

// Local ring, then the others in CPU order, the overflow rings, the spill array; up to n.
inline unsigned pop_any(cp_objpool *p, void **out, unsigned n) noexcept {
  unsigned got = 0;
  unsigned start = static_cast<unsigned>(start_cpu(p));
  for (unsigned i = start; i < p->nr_cpus && got < n; i++)
    if (ring *r = p->rings[i]) got += pop_from(r, out + got, n - got);
  for (unsigned i = 0; i < start && got < n; i++)
    if (ring *r = p->rings[i]) got += pop_from(r, out + got, n - got);
  for (ring *r : p->overflow)
    if (got < n) got += pop_from(r, out + got, n - got);
  if (got < n) got += corepool::ds::cas_array_take(p->spill, out + got, n - got);
  return got;
}

// Pushes n valid objects (all of them: push never fails). Cache, then the local ring in one
// sequence, then one by one (each to its ring or the overflow ring).
inline void push_many(cp_objpool *p, void *const *objs, unsigned n) noexcept {
  if (n == 0 || pcpu_cache_push_bulk(p->cache, objs, n)) return;
  corepool::ds::pcpu_cache::prime_thread();  // a miss: let this thread's next call hit
  if (p->rseq) {
    for (;;) {
      int cpu = rseq_cpu_start();
      if (cpu < 0 || static_cast<unsigned>(cpu) >= p->nr_cpus || !p->rings[cpu]) break;
      ring *r = p->rings[cpu];
      int rc = corepool::ds::cpu_ring_push_bulk(r, objs, n, cpu);
      if (rc == CP_RSEQ_OK) return;
      if (rc == CP_RSEQ_FAIL) break;  // does not fit in one go: one by one below
    }
    if (rseq_cpu_start() < 0) {
      overflow_push_bulk(p, objs, n, 0);
      return;
    }
  } else {
    unsigned cpu = corepool::platform::current_cpu();
    ring *r = cpu < p->nr_cpus ? p->rings[cpu] : nullptr;
    if (r && corepool::ds::cpu_ring_try_push_bulk(r, objs, n) == corepool::ds::CP_RING_OK) return;
    overflow_push_bulk(p, objs, n, cpu < p->nr_cpus ? cpu : 0);
    return;
  }
  for (unsigned i = 0; i < n; i++) push_one(p, objs[i]);
}

// A refill: a miss of the cache, counted where the cache serves this thread (after
// prime_thread()); a thread it cannot serve has the rings as its normal path.
inline void count_refill(cp_objpool *p) noexcept {
  if (p->cache.serves_thread()) p->counters.add(kRefills, 1);
}

// The last resort, when every ring came up short: drain other CPUs' caches (a system call
// per non-empty cache, see ds/pcpu_cache.h). A small request steals a batch and keeps the
// surplus on this CPU, so a thread that keeps popping where objects are pushed elsewhere
// pays one fence per batch, not per object.
constexpr unsigned kStealBatch = 32;

inline unsigned steal_any(cp_objpool *p, void **out, unsigned n) noexcept {
  if (!p->cache.enabled() && !p->tier.enabled()) return 0;
  unsigned got = 0;
  unsigned start = static_cast<unsigned>(start_cpu(p));
  // Victims: the CPU caches from ours on, then the threads' stacks (the last, nr_cpus).
  auto steal = [p, start](unsigned i, void **to, unsigned k) {
    return i < p->nr_cpus ? p->cache.steal((start + i) % p->nr_cpus, to, k) : p->tier.steal(to, k);
  };
  for (unsigned i = 0; i <= p->nr_cpus && got < n; i++) {
    unsigned want = n - got;
    if (want >= kStealBatch) {
      const unsigned k = steal(i, out + got, want);
      if (k) p->counters.add(kSteals, k);
      got += k;
      continue;
    }
    void *buf[kStealBatch];
    unsigned k = steal(i, buf, kStealBatch);
    if (k) p->counters.add(kSteals, k);
    unsigned take = k < want ? k : want;
    for (unsigned j = 0; j < take; j++) out[got + j] = buf[j];
    got += take;
    push_many(p, buf + take, k - take);  // surplus: ours now, so it goes where we run
  }
  return got;
}

// Below the cache: the rings (local first), then other CPUs' caches.
__attribute__((noinline)) unsigned pop_slow(cp_objpool *p, void **out, unsigned n) noexcept {
  corepool::ds::pcpu_cache::prime_thread();  // a miss: let this thread's next call hit
  count_refill(p);
  unsigned got = pop_any(p, out, n);
  if (got < n) got += steal_any(p, out + got, n - got);
  if (p->state) take_checked(p, out, got);
  return got;
}

// The thread tier's pool below it: everything above without the tier.
void tier_sink(void *ctx, void *const *objs, unsigned n) {
  push_many(static_cast<cp_objpool *>(ctx), objs, n);
}
// A refill after a miss of the cache: up to n from the rings, else (they had nothing) up to
// `steal` from other CPUs' caches and the threads' stacks. A short refill is fine; a steal
// fences every CPU, so it is the last resort.
inline unsigned refill(cp_objpool *p, void **out, unsigned n, unsigned steal) noexcept {
  corepool::ds::pcpu_cache::prime_thread();  // a miss: let this thread's next call hit
  count_refill(p);
  const unsigned got = pop_any(p, out, n);
  return got ? got : steal_any(p, out, steal);
}
// The cache, then a refill; a steal only when the cache had nothing either.
unsigned tier_source(void *ctx, void **out, unsigned n) {
  auto *p = static_cast<cp_objpool *>(ctx);
  const unsigned got = pcpu_cache_pop_bulk(p->cache, out, n);
  if (got == n) return got;
  return got + refill(p, out + got, n - got, got ? 0 : n);
}

// ---- setup and teardown ------------------------------------------------------------------

uint64_t pow2_at_least(uint64_t v) {
  uint64_t c = 1;
  while (c < v) c <<= 1;
  return c;
}

size_t round_up(size_t v, size_t a) {
  return (v + a - 1) / a * a;
}

ring *ring_create(uint64_t cap, int node) noexcept {
  size_t bytes = round_up(corepool::ds::cpu_ring_bytes(cap), page_size());
  void *mem = os_alloc(bytes, page_size());  // zeroed
  if (!mem) return nullptr;
  if (node >= 0) (void)os_bind_node(mem, bytes, node);  // a preference; ENOSYS is fine
  return corepool::ds::cpu_ring_init(mem, cap, bytes);
}

// Single-threaded fill during init.
void ring_fill(ring *r, void *obj) noexcept {
  uint64_t t = r->tail.load(std::memory_order_relaxed);
  r->slots()[t & r->mask].store(obj, std::memory_order_relaxed);
  r->tail.store(t + 1, std::memory_order_release);
}

void unmap_all(cp_objpool *p) noexcept {
  corepool::stats::withdraw(p->reg);
  p->tier.destroy(false);
  p->cache.destroy();
  for (unsigned c = 0; c < p->nr_cpus; c++)
    if (p->rings[c]) os_release(p->rings[c], p->rings[c]->bytes);
  for (ring *r : p->overflow)
    if (r) os_release(r, r->bytes);
  if (p->spill) os_release(p->spill, p->spill->bytes);
  if (p->state) os_release(p->state, p->state_bytes);
  if (p->slab) os_release(p->slab, p->slab_bytes);
  os_release(p, p->self_bytes);
}

void release_pool(cp_objpool *p) noexcept {
  if (p->release) p->release(p, p->context);
  unmap_all(p);
}

}  // namespace

extern "C" {

int cp_objpool_init_attr(struct cp_objpool **pool, int nr_objs, int object_size, void *context,
                         cp_objpool_init_cb objinit, cp_objpool_fini_cb release,
                         const struct cp_objpool_attr *attr) {
  using corepool::set_error;
  if (!pool) return set_error(-EINVAL, "objpool: pool is NULL");
  *pool = nullptr;
  if (nr_objs < 1 || nr_objs > CP_OBJPOOL_NR_OBJS_MAX)
    return set_error(-EINVAL, "objpool: nr_objs must be in [1, 2^24]");
  if (object_size < 1 || object_size > CP_OBJPOOL_OBJECT_SIZE_MAX)
    return set_error(-EINVAL, "objpool: object_size must be in [1, 65536]");
  cp_objpool_attr a{};
  if (attr) a = *attr;
  if (a.flags & ~(CP_OBJPOOL_F_NOCACHE | CP_OBJPOOL_F_NOTHREADCACHE))
    return set_error(-EINVAL, "objpool: unknown bit in attr.flags");
  if (a.ring_capacity > static_cast<unsigned>(CP_OBJPOOL_NR_OBJS_MAX))
    return set_error(-EINVAL, "objpool: attr.ring_capacity above 2^24");
  if (a.cache_capacity > CP_OBJPOOL_CACHE_CAPACITY_MAX)
    return set_error(-EINVAL, "objpool: attr.cache_capacity above CP_OBJPOOL_CACHE_CAPACITY_MAX");
  if (a.thread_cache > CP_OBJPOOL_THREAD_CACHE_MAX)
    return set_error(-EINVAL, "objpool: attr.thread_cache above CP_OBJPOOL_THREAD_CACHE_MAX");

  const unsigned ncpu = cp_nr_cpu_ids();
  const size_t lines_at = round_up(sizeof(cp_objpool) + ncpu * sizeof(ring *), kLine);
  const uint64_t nstripes = corepool::ds::striped_stripes_for_machine();
  const size_t self_bytes = round_up(lines_at + corepool::ds::striped_bytes(nstripes), page_size());
  void *mem = os_alloc(self_bytes, page_size());
  if (!mem) return set_error(-ENOMEM, "objpool: out of memory (pool header)");
  cp_objpool *p = new (mem) cp_objpool;  // (tier: constructed off)
  p->self_bytes = self_bytes;
  corepool::ds::striped_bank_init(  // the mapping is zeroed
      p->counters, reinterpret_cast<std::atomic<int64_t> *>(static_cast<char *>(mem) + lines_at),
      nstripes);
  p->nr_cpus = ncpu;
  for (unsigned c = 0; c < ncpu; c++) p->rings[c] = nullptr;
  for (ring *&r : p->overflow) r = nullptr;
  p->spill = nullptr;
  p->state = nullptr;
  p->slab = nullptr;
  p->nr_objs = nr_objs;
  p->object_size = object_size;
  p->stride =
      static_cast<uint32_t>(round_up(static_cast<size_t>(object_size), alignof(max_align_t)));
  p->stride_shift = static_cast<unsigned>(__builtin_ctz(p->stride));
  const uint64_t odd = p->stride >> p->stride_shift;
  uint64_t inv = odd;  // correct to 3 bits (odd * odd == 1 mod 8); each step doubles them
  for (int i = 0; i < 5; i++) inv *= 2 - odd * inv;
  p->stride_inv = inv;
  p->objs_bytes = static_cast<size_t>(nr_objs) * p->stride;
  p->slab_bytes = round_up(p->objs_bytes, page_size());
  p->context = context;
  p->release = release;
  p->rseq = cp_rseq_enabled();
  uint64_t all = pow2_at_least(static_cast<uint64_t>(nr_objs));
  uint64_t cap = all;
  if (a.ring_capacity)
    cap = pow2_at_least(a.ring_capacity) < all ? pow2_at_least(a.ring_capacity) : all;
  p->ring_cap = static_cast<unsigned>(cap);
  p->ref.store(static_cast<int64_t>(nr_objs) + 1, std::memory_order_relaxed);

  int rc = -ENOMEM;
  unsigned npossible = 0;
  for (unsigned c = 0; c < ncpu; c++) npossible += cp_cpu_possible(c) ? 1 : 0;
  if (npossible == 0) npossible = 1;  // then the loop below places nothing: see after it

  if (corepool::check_enabled()) {  // O3: zeroed, every object kFree
    p->state_bytes = round_up(static_cast<size_t>(nr_objs), page_size());
    p->state = static_cast<std::atomic<uint8_t> *>(os_alloc(p->state_bytes, page_size()));
    if (!p->state) {
      set_error(-ENOMEM, "objpool: out of memory (checked-mode states)");
      goto fail;
    }
  }
  p->slab = static_cast<char *>(os_alloc(p->slab_bytes, page_size()));
  if (!p->slab) {
    set_error(-ENOMEM, "objpool: out of memory (objects)");
    goto fail;
  }
  for (ring *&r : p->overflow) {
    r = ring_create(all, -1);
    if (!r) {
      set_error(-ENOMEM, "objpool: out of memory (overflow ring)");
      goto fail;
    }
  }
  {
    const auto slots = static_cast<uint32_t>(nr_objs);
    const size_t bytes = round_up(corepool::ds::cas_array_bytes(slots), page_size());
    void *mem = os_alloc(bytes, page_size());  // zeroed: every slot empty
    if (!mem) {
      set_error(-ENOMEM, "objpool: out of memory (spill array)");
      goto fail;
    }
    p->spill = corepool::ds::cas_array_init(mem, slots, bytes);
  }
  {
    // CPU k (k-th possible CPU) gets objects [first, first + share): the kernel's split.
    const unsigned base = static_cast<unsigned>(nr_objs) / npossible;
    const unsigned rem = static_cast<unsigned>(nr_objs) % npossible;
    unsigned k = 0, first = 0;
    for (unsigned c = 0; c < ncpu; c++) {
      if (!cp_cpu_possible(c)) continue;
      int node = cp_cpu_to_node(c);
      p->rings[c] = ring_create(cap, node);
      if (!p->rings[c]) {
        set_error(-ENOMEM, "objpool: out of memory (CPU ring)");
        goto fail;
      }
      unsigned share = base + (k < rem ? 1 : 0);
      if (share) {
        // Bind this CPU's objects to its node before anything touches them.
        size_t lo = static_cast<size_t>(first) * p->stride / page_size() * page_size();
        size_t hi = round_up(static_cast<size_t>(first + share) * p->stride, page_size());
        (void)os_bind_node(p->slab + lo, hi - lo, node);
      }
      for (unsigned i = 0; i < share; i++) {
        void *obj = p->slab + static_cast<size_t>(first + i) * p->stride;
        if (objinit) {
          int r = objinit(obj, context);
          if (r != 0) {
            rc = r;
            goto fail;
          }
        }
        if (i < cap)
          ring_fill(p->rings[c], obj);
        else
          ring_fill(p->overflow[0], obj);
      }
      first += share;
      k++;
    }
    // No possible CPU (cannot happen on Linux): every object starts in the overflow ring.
    for (; first < static_cast<unsigned>(nr_objs); first++) {
      void *obj = p->slab + static_cast<size_t>(first) * p->stride;
      if (objinit && (rc = objinit(obj, context)) != 0) goto fail;
      ring_fill(p->overflow[0], obj);
    }
  }
  // Single-threaded still: what init put in the overflow ring is not an overflow.
  p->initial_overflow = static_cast<unsigned>(p->overflow[0]->tail.load(std::memory_order_relaxed));
  {
    // Per-CPU caches: by default a quarter of a CPU's fair share, at most kDefaultCache, so
    // that most objects stay in the rings where any CPU reaches them without a fence.
    unsigned cache_cap = a.cache_capacity;
    if (!cache_cap) {
      unsigned quarter = static_cast<unsigned>(nr_objs) / (4 * npossible);
      cache_cap = quarter < kDefaultCache ? quarter : kDefaultCache;
    }
    // Checked mode: no cache, so that every push and pop reaches the checks (O3).
    if (!(a.flags & CP_OBJPOOL_F_NOCACHE) && cache_cap && p->rseq && !p->state) {
      int crc = p->cache.init(ncpu, cache_cap, corepool::ds::pcpu_cache::kStealable);
      if (crc == -ENOMEM) {
        set_error(-ENOMEM, "objpool: out of memory (CPU caches)");
        goto fail;
      }
      // -ENOTSUP (no rseq fence on this kernel): no cache, the rings alone.
    }
  }
  if (!(a.flags & CP_OBJPOOL_F_NOTHREADCACHE) && !p->state) {  // checked mode: no tier (O3)
    const unsigned tc = a.thread_cache ? a.thread_cache : corepool::ds::thread_cache_env_capacity();
    if (tc && p->tier.init(tc, kRefill, tier_sink, tier_source, p) == -ENOMEM) {
      set_error(-ENOMEM, "objpool: out of memory (thread stacks)");
      goto fail;
    }
    // -ENOTSUP (no rseq or fence), -ENOSPC (too many pools with the tier): without it.
  }
  p->reg = {p, [](const void *q, int fd) {
              return cp_objpool_dump(static_cast<const cp_objpool *>(q), fd);
            }};
  corepool::stats::enroll(p->reg);
  *pool = p;
  return 0;
fail:
  unmap_all(p);
  return rc;
}

int cp_objpool_init(struct cp_objpool **pool, int nr_objs, int object_size, void *context,
                    cp_objpool_init_cb objinit, cp_objpool_fini_cb release) {
  return cp_objpool_init_attr(pool, nr_objs, object_size, context, objinit, release, nullptr);
}

// The fast paths below need no stack frame: the slow paths are tail calls.
// A cache miss: refill from the rings in one CAS where possible (up to kRefill objects, at
// most half a cache plus one; the surplus goes to this CPU's cache), so a thread that pops
// where others push pays one cross-CPU CAS, and one transfer of the ring's index lines, per
// batch (W3, producer and consumer on two CPUs: 16 -> 64 took 18.4 to 17.1 ns per object).
// Steal only when the rings had nothing at all.

__attribute__((noinline)) static void *pop_one_slow(cp_objpool *pool) noexcept {
  if (pool->state) {  // checked mode (O3): no cache, nothing to refill
    void *o;
    return pop_slow(pool, &o, 1) ? o : nullptr;
  }
  void *buf[kRefill];
  const unsigned half = pool->cache.capacity() / 2 + 1;
  unsigned want = !pool->cache.enabled() ? 1 : half < kRefill ? half : kRefill;
  const unsigned got = refill(pool, buf, want, 1);
  if (got == 0) return nullptr;
  push_many(pool, buf + 1, got - 1);  // (none after a steal of one)
  return buf[0];
}

__attribute__((noinline)) static int push_one_slow(void *obj, cp_objpool *pool) noexcept {
  if (!pool) return corepool::set_error(-EINVAL, "objpool: pool is NULL");
  if (!valid(pool, obj))
    return corepool::report_misuse(-EINVAL, "cp_objpool_push", "not an object of this pool", obj);
  if (pool->state)
    if (int rc = give_back_checked(pool, &obj, 1, "cp_objpool_push")) return rc;
  corepool::ds::pcpu_cache::prime_thread();  // a miss: let this thread's next call hit
  push_to_rings(pool, obj);
  return 0;
}

void *cp_objpool_pop(struct cp_objpool *pool) {
  if (__builtin_expect(!pool, 0)) return null_pool(), nullptr;
  if (pool->tier.enabled())  // one compare when the tier is off
    return corepool::ds::thread_cache_get(pool->tier);
  void *o = pcpu_cache_pop(pool->cache);
  if (__builtin_expect(o != nullptr, 1)) return o;  // the fast path
  return pop_one_slow(pool);
}

unsigned cp_objpool_pop_bulk(struct cp_objpool *pool, void **objs, unsigned n) {
  if (n == 0) return 0;
  if (!pool || !objs) return corepool::set_error(-EINVAL, "objpool: NULL argument"), 0;
  unsigned got = pcpu_cache_pop_bulk(pool->cache, objs, n);
  return got == n ? got : got + pop_slow(pool, objs + got, n - got);
}

int cp_objpool_push(void *obj, struct cp_objpool *pool) {
  if (__builtin_expect(pool && valid(pool, obj), 1)) {
    if (pool->tier.enabled())  // one compare when the tier is off
      return corepool::ds::thread_cache_put(pool->tier, obj);
    if (__builtin_expect(pcpu_cache_push(pool->cache, obj), 1)) return 0;  // the fast path
  }
  return push_one_slow(obj, pool);  // checks again, then the rings
}

int cp_objpool_push_bulk(void *const *objs, unsigned n, struct cp_objpool *pool) {
  if (!pool || (n && !objs)) return corepool::set_error(-EINVAL, "objpool: NULL argument");
  for (unsigned i = 0; i < n; i++)
    if (!valid(pool, objs[i]))
      return corepool::report_misuse(-EINVAL, "cp_objpool_push_bulk", "not an object of this pool",
                                     objs[i]);
  if (pool->state)
    if (int rc = give_back_checked(pool, objs, n, "cp_objpool_push_bulk")) return rc;
  push_many(pool, objs, n);
  return 0;
}

int cp_objpool_drop(void *obj, struct cp_objpool *pool) {
  if (!obj || !pool) return corepool::set_error(-EINVAL, "objpool: NULL argument");
  if (!valid(pool, obj))
    return corepool::report_misuse(-EINVAL, "cp_objpool_drop", "not an object of this pool", obj);
  if (pool->state)
    if (int rc = drop_checked(pool, obj)) return rc;
  // acq_rel: every user's writes happen before the release that the last drop performs.
  if (pool->ref.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    release_pool(pool);
    return 0;
  }
  return -EAGAIN;
}

void cp_objpool_fini(struct cp_objpool *pool) {
  if (!pool) return;
  pool->finished.store(true, std::memory_order_release);  // checked mode: later pushes refused
  int64_t count = 1;                                      // the pool's own reference
  pool->tier.destroy(true);  // every thread's stack into the tiers below
  void *batch[64];
  for (;;) {
    unsigned got = cp_objpool_pop_bulk(pool, batch, 64);
    if (!got) break;
    count += got;  // each free object's reference goes with it
  }
  if (pool->ref.fetch_sub(count, std::memory_order_acq_rel) == count) release_pool(pool);
}

void cp_objpool_free(struct cp_objpool *pool) {
  if (!pool) return;
  release_pool(pool);
}

}  // extern "C"
