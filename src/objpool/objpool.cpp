// objpool: fixed pool of pre-allocated objects, one ring per CPU (corepool/objpool.h).
//
// Synchronization protocol (docs/objpool.md has the full argument).
//
// A ring (ds/cpu_ring.h) is an array of mask + 1 slots and two free-running 64-bit indices,
// `head` (next to consume) and `tail` (next to fill); consumers from any CPU take objects by
// CAS on head after reading the slots. Its invariants R1-R4 (head only grows by CAS; head <=
// tail; a consumer's CAS succeeds only for the slots it read; a producer fills only free
// slots) are stated there and hold for both producer protocols below.
//
// Two producer protocols, chosen per ring when the pool is created:
//
//  rseq ring (pool created with rseq on; per-CPU rings): `tail` is written ONLY by the
//    restartable sequence rseq_ring_push on the ring's own CPU: read tail and head, check
//    room, store the slot (speculative), commit tail + 1. Two such sequences never
//    interleave (platform/rseq.h), so each CPU ring has exactly one producer at a time
//    whatever the preemption, migration or signals; an aborted sequence committed nothing
//    and its speculative slot store hit a free slot (R4) that no consumer may read yet (R2).
//    Threads for which rseq_cpu_start() returns -1 never write a rseq ring's tail: they
//    push to the overflow ring.
//
//  multi-producer ring (rseq off: every per-CPU ring; and the shared overflow ring always):
//    every slot has a sequence word seq[i & mask] = i + 1 once index i is published.
//    push: reserve t by CAS tail t -> t+1 (after checking room, R4), store the slot, then
//    publish seq = t + 1 (release; pairs with the consumer's acquire load of seq).
//    pop: consume index h only if seq[h & mask] == h + 1. A producer stopped between its
//    reserve and its publish hides the later indices of that one ring (consumers do not
//    pass an unpublished index) but never makes anyone wait: pop moves on to other rings.
//
// push never fails for a valid object: the overflow ring has room for nr_objs, and
// tail - head of a ring counts only objects in it or being pushed into it (each consumed
// index is below head), so it can never be full; per-CPU rings are sized for nr_objs too
// unless the caller bounds them (then a full ring sends the push to the overflow ring).
//
// Memory ordering. An object's contents written by its previous holder must be visible to
// the next: the producer's slot store precedes its publication (rseq: commit store, x86
// stores are ordered; MP: seq store-release) and the consumer reads tail/seq with acquire
// before the slot. The consumer's CAS is acq_rel: its release pairs with the producer's
// acquire load of head before reusing the slot (R3/R4: the slot read happens before the
// overwrite).
#include <corepool/cpu.h>
#include <corepool/objpool.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#include "ds/cpu_ring.h"
#include "ds/pcpu_cache.h"
#include "error.h"
#include "inject.h"
#include "platform/memory.h"
#include "platform/rseq.h"

namespace {
using namespace corepool::platform;
using namespace corepool::ds;

constexpr size_t kLine = 64;
constexpr unsigned kDefaultCache = 256;  // objects per CPU cache unless the caller says

// One ring (ds/cpu_ring.h): 64-byte header, then mask + 1 slots, then (multi-producer only)
// mask + 1 sequence words. Allocated on its CPU's node.
using ring = corepool::ds::cpu_ring;

}  // namespace

struct cp_objpool {
  // Read-only after init.
  char *slab;             // nr_objs objects, `stride` bytes apart, page-aligned base
  size_t slab_bytes;      // mapped size
  size_t objs_bytes;      // nr_objs * stride
  uint64_t stride_inv;    // inverse of stride's odd part mod 2^64 (see valid())
  unsigned stride_shift;  // trailing zero bits of stride
  uint32_t stride;
  int nr_objs;
  int object_size;
  unsigned nr_cpus;   // cp_nr_cpu_ids()
  unsigned ring_cap;  // slots per CPU ring (power of two)
  bool rseq;          // per-CPU rings are rseq rings
  ring *overflow;     // multi-producer ring with room for every object
  // Per-CPU rseq stacks in front of the rings (disabled without rseq or the rseq fence, or
  // by CP_OBJPOOL_F_NOCACHE). Objects there are still reachable from every CPU: pop steals
  // them (fence + drain) when every ring is empty.
  corepool::ds::pcpu_cache cache;
  void *context;
  cp_objpool_fini_cb release;
  size_t self_bytes;
  // Lifetime: 1 for the pool + 1 per object (each object holds one until dropped; fini
  // turns the free objects' references and the pool's into one subtraction).
  alignas(kLine) std::atomic<int64_t> ref;
  alignas(kLine) ring *rings[];  // nr_cpus entries, nullptr for impossible CPUs
};

namespace {

// ---- object validity: O(1), always on -------------------------------------------------------

// Membership in one compare (Hacker's Delight, "exact division by constants"): write
// stride = 2^k * d with d odd and inv = d^-1 mod 2^64. For off = q * stride, off * inv =
// q * 2^k exactly and rotating right by k gives q. Any other off gives a huge value: if one of
// its low k bits is set, inv being odd keeps it set and the rotate moves it to the top; if
// not, off = m * 2^k with m not a multiple of d, and m -> m * inv is a bijection mod 2^(64-k)
// that maps the multiples of d onto 0 .. (2^(64-k) - 1) / d, so m lands above that, far above
// nr_objs (< 2^24). So off is an object's start iff rotr(off * inv, k) < nr_objs, which also
// covers off >= objs_bytes and obj < slab (off wraps). One multiply, one rotate, one compare
// on every push: W1 3.8-3.9 ns per pair against 4.3 for a range check plus the same test, and
// 3.1-3.3 with no check at all (the push's branch waits on the multiply).
inline bool valid(const cp_objpool *p, const void *obj) noexcept {
  const uint64_t off = reinterpret_cast<uintptr_t>(obj) - reinterpret_cast<uintptr_t>(p->slab);
  return std::rotr(off * p->stride_inv, static_cast<int>(p->stride_shift)) <
         static_cast<uint64_t>(p->nr_objs);
}

// ---- consumers (any ring, any thread) ----------------------------------------------------

// rseq ring: index h is filled iff h < tail (the commit published the slot, x86 TSO).
inline void *rseq_ring_pop(ring *r) noexcept {
  uint64_t h = r->head.load(std::memory_order_acquire);
  for (;;) {
    // Acquire: the slot store that preceded the commit of `t` is visible below.
    uint64_t t = r->tail.load(std::memory_order_acquire);
    if (t == h) return nullptr;  // empty (t >= h: tail read after head, R2)
    void *obj = r->slots()[h & r->mask].load(std::memory_order_relaxed);
    CP_INJECT("objpool.pop.read");
    // R3: succeeds only if nobody consumed h meanwhile, so `obj` is index h's object.
    if (r->head.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel,
                                      std::memory_order_acquire))
      return obj;
  }
}

inline unsigned rseq_ring_pop_bulk(ring *r, void **out, unsigned n) noexcept {
  return corepool::ds::cpu_ring_pop_bulk(r, out, n);
}

// multi-producer ring: index h is filled iff seq[h & mask] == h + 1.
inline unsigned mp_ring_pop_bulk(ring *r, void **out, unsigned n) noexcept {
  uint64_t h = r->head.load(std::memory_order_acquire);
  for (;;) {
    uint64_t k = 0;
    for (; k < n; k++) {
      // Acquire pairs with the producer's publishing store-release of seq.
      uint64_t s = r->seq[(h + k) & r->mask].load(std::memory_order_acquire);
      if (s != h + k + 1) break;
      out[k] = r->slots()[(h + k) & r->mask].load(std::memory_order_relaxed);
    }
    if (k == 0) {
      uint64_t s = r->seq[h & r->mask].load(std::memory_order_acquire);
      uint64_t cur = r->head.load(std::memory_order_acquire);
      // Index h empty or reserved but not yet published (s < h + 1, and head still h):
      // give up on this ring rather than wait for its producer.
      if (cur == h && s != h + 1) return 0;
      h = cur;  // stale h (someone consumed it, or it got published meanwhile): retry
      continue;
    }
    CP_INJECT("objpool.pop.read");
    if (r->head.compare_exchange_weak(h, h + k, std::memory_order_acq_rel,
                                      std::memory_order_acquire))
      return static_cast<unsigned>(k);
  }
}

inline void *mp_ring_pop(ring *r) noexcept {
  void *obj;
  return mp_ring_pop_bulk(r, &obj, 1) ? obj : nullptr;
}

// ---- producers ----------------------------------------------------------------------------

// Multi-producer push of n objects into consecutive indices; false when they do not fit.
inline bool mp_ring_push_bulk(ring *r, void *const *objs, uint64_t n) noexcept {
  uint64_t t = r->tail.load(std::memory_order_relaxed);
  for (;;) {
    // Acquire pairs with consumers' CAS-release: their slot reads happen before our reuse.
    uint64_t h = r->head.load(std::memory_order_acquire);
    // h was read after t, so if t + n - h exceeds the room, the ring really was that full
    // at the instant h was read (tail >= t then); if t is stale the CAS below fails.
    if (static_cast<int64_t>(t + n - h) > static_cast<int64_t>(r->mask + 1)) {
      uint64_t t2 = r->tail.load(std::memory_order_relaxed);
      if (t2 == t) return false;
      t = t2;
      continue;
    }
    // Reserve [t, t + n): R4 holds for each, as head >= h only grows.
    if (r->tail.compare_exchange_weak(t, t + n, std::memory_order_relaxed,
                                      std::memory_order_relaxed))
      break;
  }
  CP_INJECT("objpool.mp_push.reserved");  // a producer stopped here hides t.. of this ring
  for (uint64_t i = 0; i < n; i++) {
    uint64_t idx = t + i;
    r->slots()[idx & r->mask].store(objs[i], std::memory_order_relaxed);
    // Publish: release pairs with the consumer's acquire load of seq (slot + contents).
    r->seq[idx & r->mask].store(idx + 1, std::memory_order_release);
  }
  return true;
}

// The overflow ring can hold every object: this never fails.
inline void overflow_push_bulk(cp_objpool *p, void *const *objs, uint64_t n) noexcept {
  bool ok = mp_ring_push_bulk(p->overflow, objs, n);
  if (__builtin_expect(!ok, 0)) __builtin_trap();  // broken invariant: more pushes than objects
}

inline int start_cpu(const cp_objpool *p) noexcept {
  int cpu = p->rseq ? rseq_cpu_start() : -1;
  if (cpu < 0 || static_cast<unsigned>(cpu) >= p->nr_cpus) cpu = static_cast<int>(cp_current_cpu());
  return cpu;
}

// Below the cache: the local ring, else the overflow ring.
__attribute__((noinline)) void push_to_rings(cp_objpool *p, void *obj) noexcept {
  if (p->rseq) {
    for (;;) {
      int cpu = rseq_cpu_start();
      if (cpu < 0 || static_cast<unsigned>(cpu) >= p->nr_cpus) break;  // never write a tail
      ring *r = p->rings[cpu];
      if (!r) break;
      int rc = rseq_ring_push(
          reinterpret_cast<intptr_t *>(&r->tail), reinterpret_cast<const intptr_t *>(&r->head),
          reinterpret_cast<void **>(r->slots()), static_cast<intptr_t>(r->mask), obj, cpu);
      if (__builtin_expect(rc == CP_RSEQ_OK, 1)) return;
      if (rc == CP_RSEQ_FAIL) break;  // this CPU's ring is full (bounded capacity)
      // CP_RSEQ_ABORT: preempted, migrated or signalled; nothing committed: retry
    }
  } else {
    unsigned cpu = cp_current_cpu();
    ring *r = cpu < p->nr_cpus ? p->rings[cpu] : nullptr;
    if (r && mp_ring_push_bulk(r, &obj, 1)) return;
  }
  overflow_push_bulk(p, &obj, 1);
}

inline void push_one(cp_objpool *p, void *obj) noexcept {
  if (pcpu_cache_push(p->cache, obj)) return;  // the fast path: one rseq sequence, no atomic RMW
  push_to_rings(p, obj);
}

template <bool Rseq>
inline unsigned pop_from(ring *r, void **out, unsigned n) noexcept {
  if (n == 1) {
    void *o = Rseq ? rseq_ring_pop(r) : mp_ring_pop(r);
    if (!o) return 0;
    out[0] = o;
    return 1;
  }
  return Rseq ? rseq_ring_pop_bulk(r, out, n) : mp_ring_pop_bulk(r, out, n);
}

// Local ring, then the others in CPU order, then overflow; up to n objects (`any`: stop at
// the first ring that gives something).
template <bool Rseq>
inline unsigned pop_any(cp_objpool *p, void **out, unsigned n, bool any = false) noexcept {
  const unsigned need = any ? 1 : n;
  unsigned got = 0;
  unsigned start = static_cast<unsigned>(start_cpu(p));
  for (unsigned i = start; i < p->nr_cpus && got < need; i++)
    if (ring *r = p->rings[i]) got += pop_from<Rseq>(r, out + got, n - got);
  for (unsigned i = 0; i < start && got < need; i++)
    if (ring *r = p->rings[i]) got += pop_from<Rseq>(r, out + got, n - got);
  if (got < need) got += pop_from<false>(p->overflow, out + got, n - got);
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
      overflow_push_bulk(p, objs, n);
      return;
    }
  } else {
    unsigned cpu = cp_current_cpu();
    ring *r = cpu < p->nr_cpus ? p->rings[cpu] : nullptr;
    if (r && mp_ring_push_bulk(r, objs, n)) return;
  }
  for (unsigned i = 0; i < n; i++) push_one(p, objs[i]);
}

// The last resort, when every ring came up short: drain other CPUs' caches (a system call
// per non-empty cache, see ds/pcpu_cache.h). A small request steals a batch and keeps the
// surplus on this CPU, so a thread that keeps popping where objects are pushed elsewhere
// pays one fence per batch, not per object.
constexpr unsigned kStealBatch = 32;

inline unsigned steal_any(cp_objpool *p, void **out, unsigned n) noexcept {
  if (!p->cache.enabled()) return 0;
  unsigned got = 0;
  unsigned start = static_cast<unsigned>(start_cpu(p));
  for (unsigned i = 0; i < p->nr_cpus && got < n; i++) {
    unsigned c = (start + i) % p->nr_cpus;
    unsigned want = n - got;
    if (want >= kStealBatch) {
      got += p->cache.steal(c, out + got, want);
      continue;
    }
    void *buf[kStealBatch];
    unsigned k = p->cache.steal(c, buf, kStealBatch);
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
  unsigned got = p->rseq ? pop_any<true>(p, out, n) : pop_any<false>(p, out, n);
  if (got < n) got += steal_any(p, out + got, n - got);
  return got;
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

ring *ring_create(uint64_t cap, bool mp, int node) noexcept {
  size_t bytes = sizeof(ring) + cap * sizeof(void *) + (mp ? cap * sizeof(uint64_t) : 0);
  bytes = round_up(bytes, page_size());
  void *mem = os_alloc(bytes, page_size());  // zeroed: head = tail = 0, seq[] = 0
  if (!mem) return nullptr;
  if (node >= 0) (void)os_bind_node(mem, bytes, node);  // a preference; ENOSYS is fine
  // seq[i] = 0 < i + 1 for every slot i < cap (zeroed mapping): nothing published.
  auto *seq = mp ? reinterpret_cast<std::atomic<uint64_t> *>(static_cast<char *>(mem) +
                                                             sizeof(ring) + cap * sizeof(void *))
                 : nullptr;
  return corepool::ds::cpu_ring_init(mem, cap, bytes, seq);
}

// Single-threaded fill during init.
void ring_fill(ring *r, void *obj) noexcept {
  uint64_t t = r->tail.load(std::memory_order_relaxed);
  r->slots()[t & r->mask].store(obj, std::memory_order_relaxed);
  if (r->seq) r->seq[t & r->mask].store(t + 1, std::memory_order_relaxed);
  r->tail.store(t + 1, std::memory_order_release);
}

void unmap_all(cp_objpool *p) noexcept {
  p->cache.destroy();
  for (unsigned c = 0; c < p->nr_cpus; c++)
    if (p->rings[c]) os_release(p->rings[c], p->rings[c]->bytes);
  if (p->overflow) os_release(p->overflow, p->overflow->bytes);
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
  if (a.flags & ~CP_OBJPOOL_F_NOCACHE)
    return set_error(-EINVAL, "objpool: unknown bit in attr.flags");
  if (a.ring_capacity > static_cast<unsigned>(CP_OBJPOOL_NR_OBJS_MAX))
    return set_error(-EINVAL, "objpool: attr.ring_capacity above 2^24");
  if (a.cache_capacity > CP_OBJPOOL_CACHE_CAPACITY_MAX)
    return set_error(-EINVAL, "objpool: attr.cache_capacity above CP_OBJPOOL_CACHE_CAPACITY_MAX");

  const unsigned ncpu = cp_nr_cpu_ids();
  const size_t self_bytes = round_up(sizeof(cp_objpool) + ncpu * sizeof(ring *), page_size());
  void *mem = os_alloc(self_bytes, page_size());
  if (!mem) return set_error(-ENOMEM, "objpool: out of memory (pool header)");
  cp_objpool *p = new (mem) cp_objpool;
  p->self_bytes = self_bytes;
  p->nr_cpus = ncpu;
  for (unsigned c = 0; c < ncpu; c++) p->rings[c] = nullptr;
  p->overflow = nullptr;
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

  p->slab = static_cast<char *>(os_alloc(p->slab_bytes, page_size()));
  if (!p->slab) {
    set_error(-ENOMEM, "objpool: out of memory (objects)");
    goto fail;
  }
  p->overflow = ring_create(all, true, -1);
  if (!p->overflow) {
    set_error(-ENOMEM, "objpool: out of memory (overflow ring)");
    goto fail;
  }
  {
    // CPU k (k-th possible CPU) gets objects [first, first + share): the kernel's split.
    const unsigned base = static_cast<unsigned>(nr_objs) / npossible;
    const unsigned rem = static_cast<unsigned>(nr_objs) % npossible;
    unsigned k = 0, first = 0;
    for (unsigned c = 0; c < ncpu; c++) {
      if (!cp_cpu_possible(c)) continue;
      int node = cp_cpu_to_node(c);
      p->rings[c] = ring_create(cap, !p->rseq, node);
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
          ring_fill(p->overflow, obj);
      }
      first += share;
      k++;
    }
    // No possible CPU (cannot happen on Linux): every object starts in the overflow ring.
    for (; first < static_cast<unsigned>(nr_objs); first++) {
      void *obj = p->slab + static_cast<size_t>(first) * p->stride;
      if (objinit && (rc = objinit(obj, context)) != 0) goto fail;
      ring_fill(p->overflow, obj);
    }
  }
  {
    // Per-CPU caches: by default a quarter of a CPU's fair share, at most kDefaultCache, so
    // that most objects stay in the rings where any CPU reaches them without a fence.
    unsigned cache_cap = a.cache_capacity;
    if (!cache_cap) {
      unsigned quarter = static_cast<unsigned>(nr_objs) / (4 * npossible);
      cache_cap = quarter < kDefaultCache ? quarter : kDefaultCache;
    }
    if (!(a.flags & CP_OBJPOOL_F_NOCACHE) && cache_cap && p->rseq) {
      int crc = p->cache.init(ncpu, cache_cap, corepool::ds::pcpu_cache::kStealable);
      if (crc == -ENOMEM) {
        set_error(-ENOMEM, "objpool: out of memory (CPU caches)");
        goto fail;
      }
      // -ENOTSUP (no rseq fence on this kernel): no cache, the rings alone.
    }
  }
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
constexpr unsigned kRefill = 64;

__attribute__((noinline)) static void *pop_one_slow(cp_objpool *pool) noexcept {
  corepool::ds::pcpu_cache::prime_thread();  // a miss: let this thread's next call hit
  void *buf[kRefill];
  const unsigned half = pool->cache.capacity() / 2 + 1;
  unsigned want = !pool->cache.enabled() ? 1 : half < kRefill ? half : kRefill;
  unsigned got = pool->rseq ? pop_any<true>(pool, buf, want) : pop_any<false>(pool, buf, want);
  if (got == 0) return steal_any(pool, buf, 1) ? buf[0] : nullptr;
  push_many(pool, buf + 1, got - 1);
  return buf[0];
}

__attribute__((noinline)) static int push_one_slow(void *obj, cp_objpool *pool) noexcept {
  if (!pool || !valid(pool, obj))
    return corepool::set_error(-EINVAL, "objpool: push of a pointer that is not a pool object");
  corepool::ds::pcpu_cache::prime_thread();  // a miss: let this thread's next call hit
  push_to_rings(pool, obj);
  return 0;
}

void *cp_objpool_pop(struct cp_objpool *pool) {
  void *o = pcpu_cache_pop(pool->cache);
  if (__builtin_expect(o != nullptr, 1)) return o;  // the fast path
  return pop_one_slow(pool);
}

unsigned cp_objpool_pop_bulk(struct cp_objpool *pool, void **objs, unsigned n) {
  if (n == 0) return 0;
  unsigned got = pcpu_cache_pop_bulk(pool->cache, objs, n);
  return got == n ? got : got + pop_slow(pool, objs + got, n - got);
}

int cp_objpool_push(void *obj, struct cp_objpool *pool) {
  if (__builtin_expect(pool && valid(pool, obj) && pcpu_cache_push(pool->cache, obj), 1))
    return 0;                       // the fast path
  return push_one_slow(obj, pool);  // checks again, then the rings
}

int cp_objpool_push_bulk(void *const *objs, unsigned n, struct cp_objpool *pool) {
  if (!pool || (n && !objs)) return corepool::set_error(-EINVAL, "objpool: NULL argument");
  for (unsigned i = 0; i < n; i++)
    if (!valid(pool, objs[i]))
      return corepool::set_error(-EINVAL,
                                 "objpool: push_bulk of a pointer that is not a pool object");
  push_many(pool, objs, n);
  return 0;
}

int cp_objpool_drop(void *obj, struct cp_objpool *pool) {
  if (!obj || !pool) return corepool::set_error(-EINVAL, "objpool: NULL argument");
  if (!valid(pool, obj))
    return corepool::set_error(-EINVAL, "objpool: drop of a pointer that is not a pool object");
  // acq_rel: every user's writes happen before the release that the last drop performs.
  if (pool->ref.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    release_pool(pool);
    return 0;
  }
  return -EAGAIN;
}

void cp_objpool_fini(struct cp_objpool *pool) {
  if (!pool) return;
  int64_t count = 1;  // the pool's own reference
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

unsigned cp_objpool_nr_free(const struct cp_objpool *pool) {
  uint64_t n = pool->overflow->nr_free();
  for (unsigned c = 0; c < pool->nr_cpus; c++)
    if (pool->rings[c]) n += pool->rings[c]->nr_free() + pool->cache.count(c);
  return static_cast<unsigned>(n);
}

int cp_objpool_nr_free_cpu(const struct cp_objpool *pool, unsigned cpu) {
  if (!pool || cpu >= pool->nr_cpus || !pool->rings[cpu])
    return corepool::set_error(-EINVAL, "objpool: no ring for this CPU");
  return static_cast<int>(pool->rings[cpu]->nr_free() + pool->cache.count(cpu));
}

unsigned cp_objpool_nr_free_overflow(const struct cp_objpool *pool) {
  return pool->overflow->nr_free();
}

unsigned cp_objpool_ring_capacity(const struct cp_objpool *pool) {
  return pool->ring_cap;
}
int cp_objpool_object_size(const struct cp_objpool *pool) {
  return pool->object_size;
}
int cp_objpool_object_stride(const struct cp_objpool *pool) {
  return static_cast<int>(pool->stride);
}
int cp_objpool_nr_objs(const struct cp_objpool *pool) {
  return pool->nr_objs;
}
unsigned cp_objpool_cache_capacity(const struct cp_objpool *pool) {
  return pool->cache.enabled() ? pool->cache.capacity() : 0;
}
int cp_objpool_uses_rseq(const struct cp_objpool *pool) {
  return pool->rseq ? 1 : 0;
}

void cp_objpool_for_each(const struct cp_objpool *pool, void (*fn)(void *obj, void *arg),
                         void *arg) {
  for (int i = 0; i < pool->nr_objs; i++)
    fn(pool->slab + static_cast<size_t>(i) * pool->stride, arg);
}

}  // extern "C"
