// The DPDK mempool ops driver "corepool": rte_mempool's backing store on corepool's ALF
// queue (corepool/alf_queue.h), built as librte_mempool_corepool.so and loaded by the EAL
// with `-d`. See docs/dpdk.md.
//
// Layout of one pool (mp->pool_data):
//
//   cache        a per-CPU stack of up to C objects (ds/pcpu_cache.h), in front of everything
//                below: a put pushes onto the stack of the CPU it runs on and a get pops
//                from it, each one restartable sequence, no atomic read-modify-write. Only
//                when it is full (put) or short (get) does a call reach the shards. Off
//                (C = 0) without rseq or the rseq fence, or for pools too small to share out.
//   shard[0..S)  S ALF queues (S = min(possible CPUs, 16)), each with one producer at a
//                time: a put enqueues only while it holds the shard's producer try-lock
//                (see "Why one producer per shard"). A thread puts into and gets from the
//                shard of the CPU it runs on first (cp_current_cpu(): a read of the rseq
//                area), so threads on different CPUs do not share a cache line in the common
//                case; a get that finds too few objects there takes from the others.
//   overflow     a ds::cas_array of N slots (N = mp->size), one CAS per object: where a put
//                goes when no shard takes it (see "Why an overflow array").
//
// Protocol. An object is at every moment in exactly one of: a CPU stack of the cache (below
// its `top`; from the commit of the push that stored it to the commit of the pop, or the
// steal, that takes it), a shard (between the claim of its enqueue and the claim of its
// dequeue, owned by the ALF queue's protocol), an overflow slot (between the CAS NULL -> obj
// that stores it and the CAS obj -> NULL that takes it), or the hands of one thread. Every
// transfer between these is one committed restartable sequence, one steal (S1-S4 of
// ds/pcpu_cache.h: exclusive by fence), one atomic step of the ALF queue or one CAS on a
// slot, so a thread stopped anywhere holds at most the objects in its hands (or, a stealer
// stopped holding a CPU's fence, that CPU's stack: see below), and nothing is lost or handed
// out twice.
//
// Why objects in the cache stay reachable: a pool has exactly N objects and a get is all or
// nothing, so a get that cannot gather n from its own CPU's stack, the shards and the
// overflow array steals from the other CPUs' stacks (fence + drain, a system call per
// non-empty stack) before it reports -ENOENT. A stealer stopped while it holds a CPU's fence
// makes that stack's objects unavailable until it resumes; the owner CPU's sequences then
// fail and its puts and gets go to the shards: nobody waits.
//
// Object contents: a thread that pops an object from CPU c's stack runs on c after the
// thread that pushed it (the push committed on c before), so it sees the pusher's writes
// (one CPU, program order across the context switch); a stealer sees them through the
// fence (ds/pcpu_cache.h S1/S2: acquire CAS, membarrier); shards and overflow slots order
// them by release/acquire as before.
//
// Why an overflow array: the ALF queue never waits, so a put can fail even when the pool is
// far from full: a consumer stopped between claiming slot i and releasing it keeps slot i
// busy, and one lap later (tail = i + size) every enqueue on that shard returns 0 until it
// resumes. DPDK's put cannot fail (rte_mempool_put returns void: a ring driver that fails
// loses the objects), so the driver tries the other shards and then the overflow array. The
// array cannot be full when a put reaches it: it has N slots and the caller holds at least
// one of the N objects. A CAS on a slot fails only because another thread changed that slot
// (progress), so a put is lock-free and never waits for a stopped thread.
//
// Why one producer per shard: an ALF producer stopped between claiming slot i and
// publishing it hides every later element of its queue from consumers (they stop at the
// first unpublished slot, ds/alf_ring.h R6). So a put enqueues into a shard only while it
// holds that shard's producer try-lock (L1: acquire exchange 0 -> 1, L2: release store 0,
// which also hands the tail to the next holder), and a put that finds the lock held goes
// to the next shard: nothing is ever enqueued behind an unpublished slot, and a thread
// stopped inside a put hides only the objects of that put. The try-lock never makes
// anyone wait: a signal handler that interrupts a put and puts itself finds the shard
// busy and moves on, in the end to the overflow array, which refuses nothing.
//
// Dequeue is all or nothing, as rte_mempool requires (rte_mempool_ops_dequeue_bulk): a get
// that gathers fewer than n objects puts them back and returns -ENOENT. Under concurrency
// "fewer" may be transient (objects in other threads' hands or behind a stopped producer):
// the pool then looks empty for a while, it never blocks.
//
// Operations that may run concurrently: enqueue, dequeue and get_count from any number of
// threads (EAL lcores, non-EAL threads, signal handlers: everything here is lock-free and
// async-signal-safe: rseq sequences, CAS, and membarrier(2) for a steal); alloc and free only
// alone (rte_mempool_create/free). Threads without rseq (rseq off, or the tsan preset, which
// compiles rseq out) miss the cache on every call and use the shards, which are correct
// alongside threads that use the cache.
//
// Memory: S ALF queues of 2*N/S slots (at least 64; 16 bytes a slot) plus the overflow array
// (8 bytes an object and a 64-byte header): about 40 bytes per object, beside the objects (mbufs:
// ~2 KiB); plus one page-rounded stack of C slots per possible CPU for the cache. The pool state is
// process-local memory (malloc): a pool on these ops is for the primary process only, like any
// driver whose pool_data is not in DPDK shared memory.
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <rte_common.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mempool.h>

#include <corepool/alf_queue.h>
#include <corepool/cpu.h>

#include "ds/cas_array.h"
#include "ds/pcpu_cache.h"
#include "inject.h"

namespace {

int cp_logtype = -1;

#define CP_LOG(level, ...) rte_log(RTE_LOG_##level, cp_logtype, "corepool: " __VA_ARGS__)

constexpr unsigned kMaxShards = 16;
constexpr unsigned kMinShardSlots = 64;
constexpr unsigned kSplit = 32;  // bulk size for the piecewise fallbacks
// Per-CPU cache: C = min(kMaxCache, N / (4 * possible CPUs)) objects a CPU, so that the
// stacks together hold at most a quarter of the pool; no cache when that is below kMinCache.
// A full stack spills, an empty one refills, kBatch = C / 2 objects (at most kMaxBatch: they
// pass through an array on the stack, and the ops may run in signal handlers).
constexpr unsigned kMaxCache = 512;
constexpr unsigned kMinCache = 8;
constexpr unsigned kMaxBatch = 128;

struct alignas(64) shard {
  cp_alf_queue *q = nullptr;
  std::atomic<uint32_t> producer{0};  // 1 while a put enqueues here (L1/L2)
};

// Per-lcore counters, proof for the tests that the pool really runs on this driver
// (docs/dpdk.md). Each EAL lcore writes only its own line with relaxed load+store (one
// writer; a signal handler on the same thread may lose an increment, which is harmless);
// non-EAL threads share the last line with fetch_add. The slow-path counters (fails,
// overflow puts, steals) always count; the enqueue and dequeue calls only in a pool created
// while the driver's log type is at debug level (`count_calls`): finding the lcore id costs
// a __tls_get_addr call in a driver loaded with -d, as much as the rest of the fast path.
struct alignas(64) lcore_stats {
  std::atomic<uint64_t> enqueues{0}, dequeues{0}, dequeue_fails{0}, overflow_puts{0}, steals{0};
};

struct pool {
  unsigned nr_cpus = 0;  // cp_nr_cpu_ids()
  unsigned nr_shards = 0;
  unsigned batch = 0;                           // cache spill / refill unit (0: no cache)
  bool count_calls = false;                     // count enqueue / dequeue calls (set at alloc)
  corepool::ds::pcpu_cache cache;               // disabled unless alloc enabled it
  uint16_t *shard_of_cpu = nullptr;             // cp_nr_cpu_ids() entries
  corepool::ds::cas_array *overflow = nullptr;  // mp->size slots
  shard shards[kMaxShards];
  lcore_stats stats[RTE_MAX_LCORE + 1];
};
using corepool::ds::pcpu_cache_pop;
using corepool::ds::pcpu_cache_pop_bulk;
using corepool::ds::pcpu_cache_push;
using corepool::ds::pcpu_cache_push_bulk;

inline pool *pool_of(const rte_mempool *mp) {
  return static_cast<pool *>(mp->pool_data);
}

inline void count(std::atomic<uint64_t> lcore_stats::*field, pool *p, uint64_t v = 1) {
  unsigned id = rte_lcore_id();
  if (id < RTE_MAX_LCORE) {
    std::atomic<uint64_t> &c = p->stats[id].*field;
    c.store(c.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
  } else {
    (p->stats[RTE_MAX_LCORE].*field).fetch_add(v, std::memory_order_relaxed);
  }
}

inline unsigned home_shard(const pool *p) {
  return p->shard_of_cpu[cp_current_cpu()];
}

uint32_t pow2_at_least(uint64_t v) {
  uint64_t s = 2;
  while (s < v) s <<= 1;
  return s > (1ull << 31) ? 0 : static_cast<uint32_t>(s);
}

// ---- shards --------------------------------------------------------------------------------

// Enqueues all n objects into one shard if its producer try-lock is free (else, or when
// they do not all fit now, nothing). Never waits.
bool shard_put(shard &sh, void *const *objs, unsigned n) {
  // L1. The load first keeps a busy shard's line shared.
  if (sh.producer.load(std::memory_order_relaxed) != 0 ||
      sh.producer.exchange(1, std::memory_order_acquire) != 0)
    return false;
  // The only producer now: the single-producer form (no CAS on tail).
  const bool ok = cp_alf_sp_enqueue(sh.q, objs, static_cast<int>(n)) == static_cast<int>(n);
  sh.producer.store(0, std::memory_order_release);  // L2
  return ok;
}

// Puts all n objects somewhere; never fails for objects of this pool. Order of preference:
// the home shard, the other shards, then in pieces, then the overflow array.
int put_all(pool *p, void *const *objs, unsigned n) {
  const unsigned home = home_shard(p);
  for (unsigned k = 0; k < p->nr_shards; k++) {
    unsigned s = home + k < p->nr_shards ? home + k : home + k - p->nr_shards;
    if (shard_put(p->shards[s], objs, n)) return 0;
  }
  // Slow path: no shard took the bulk at once (a stopped consumer or producer, or n larger
  // than a shard). Pieces, then the overflow array.
  unsigned done = 0;
  for (unsigned k = 0; k < p->nr_shards && done < n; k++) {
    shard &sh = p->shards[home + k < p->nr_shards ? home + k : home + k - p->nr_shards];
    while (done < n) {
      unsigned piece = RTE_MIN(n - done, kSplit);
      if (!shard_put(sh, objs + done, piece)) break;
      done += piece;
    }
  }
  if (done < n) {
    count(&lcore_stats::overflow_puts, p, n - done);
    done += corepool::ds::cas_array_put(p->overflow, objs + done, n - done);
  }
  if (done < n) {
    // Only possible when more objects are put than the pool has (a double free).
    CP_LOG(CRIT, "cannot store %u objects: more objects put than the pool holds\n", n - done);
    return -ENOBUFS;
  }
  return 0;
}

// Takes up to `want` objects from one shard (bursts until it returns nothing).
unsigned take_from(shard &sh, void **objs, unsigned want) {
  unsigned got = 0;
  while (got < want) {
    int k = cp_alf_mc_dequeue(sh.q, objs + got, static_cast<int>(want - got));
    if (k <= 0) break;
    got += static_cast<unsigned>(k);
  }
  return got;
}

// ---- the per-CPU cache ---------------------------------------------------------------------

// Objects in the CPU stacks (a snapshot: exact when quiescent).
uint64_t cached(const pool *p) {
  uint64_t c = 0;
  if (p->batch)
    for (unsigned cpu = 0; cpu < p->nr_cpus; cpu++) c += p->cache.count(cpu);
  return c;
}

unsigned shards_and_overflow(const pool *p) {
  uint64_t c = p->overflow->nr_free();
  for (unsigned s = 0; s < p->nr_shards; s++) c += cp_alf_queue_count(p->shards[s].q);
  return static_cast<unsigned>(RTE_MIN(c, uint64_t{UINT32_MAX}));
}

// The n objects did not fit the calling CPU's stack (full, fenced by a stealer, n larger
// than a stack, or this thread has no rseq). If the stack had objects, spill a batch of
// them to the shards (the pop commits first: they are in our hands, then in a shard) and
// push again; whatever still does not fit goes to the shards.
__attribute__((noinline)) int put_slow(pool *p, void *const *objs, unsigned n) {
  corepool::ds::pcpu_cache::prime_thread();  // a thread's first miss: its next calls can hit
  if (p->batch && n <= p->cache.capacity()) {
    void *buf[kMaxBatch];
    const unsigned k = pcpu_cache_pop_bulk(p->cache, buf, p->batch);
    if (k) {
      const int rc = put_all(p, buf, k);  // fails only on a double free (see put_all)
      if (pcpu_cache_push_bulk(p->cache, objs, n)) return rc;
    }
  }
  return put_all(p, objs, n);
}

// Objects in our hands go to the calling CPU's stack if they fit (never without a cache:
// capacity 0), else to the shards.
void stash(pool *p, void *const *objs, unsigned n) {
  if (!(n <= p->cache.capacity() && pcpu_cache_push_bulk(p->cache, objs, n))) put_all(p, objs, n);
}

// Takes up to `want` objects out of the CPUs' stacks (steal: S1-S4 of ds/pcpu_cache.h, a
// system call per non-empty stack; a stack held by another stealer is skipped, never waited
// for). Our own CPU's stack too: the caller may have migrated since its pop. A small request
// steals a whole batch and keeps the rest in the calling CPU's stack, so that a run of small
// gets (rte_mempool_free takes the objects one by one) does not pay a system call each.
unsigned steal_all(pool *p, void **objs, unsigned want) {
  unsigned got = 0;
  for (unsigned cpu = 0; cpu < p->nr_cpus && got < want; cpu++) {
    if (want - got >= p->batch) {
      got += p->cache.steal(cpu, objs + got, want - got);
      continue;
    }
    void *buf[kMaxBatch];
    const unsigned k = p->cache.steal(cpu, buf, p->batch);
    const unsigned use = RTE_MIN(k, want - got);
    memcpy(objs + got, buf, use * sizeof(void *));
    got += use;
    if (k > use) stash(p, buf + use, k - use);
  }
  if (got) count(&lcore_stats::steals, p);
  return got;
}

// After a get that the CPU stack could not serve: move a batch from the home shard into the
// stack, so that the next gets on this CPU hit. Only for a thread that has a stack (rseq);
// a push that fails (migrated onto a fuller stack, fenced) gives the batch back.
void refill(pool *p) {
  int cpu;
  corepool::platform::rseq_abi *rs;
  if (!p->cache.local(cpu, rs)) return;
  void *buf[kMaxBatch];
  const unsigned k = take_from(p->shards[home_shard(p)], buf, p->batch);
  if (k && !pcpu_cache_push_bulk(p->cache, buf, k)) put_all(p, buf, k);
}

// The calling CPU's stack had `got` < n objects (already in objs[0, got)): gather the rest
// from the shards (home first), the overflow array, then the other CPUs' stacks.
__attribute__((noinline)) int get_slow(pool *p, void **objs, unsigned n, unsigned got) {
  corepool::ds::pcpu_cache::prime_thread();  // a thread's first miss: its next calls can hit
  const unsigned hit = got;
  const unsigned home = home_shard(p);
  for (unsigned k = 0; k < p->nr_shards && got < n; k++) {
    unsigned s = home + k < p->nr_shards ? home + k : home + k - p->nr_shards;
    got += take_from(p->shards[s], objs + got, n - got);
  }
  if (got < n) got += corepool::ds::cas_array_take(p->overflow, objs + got, n - got);
  // Steal only when the stacks may hold enough (a snapshot; a get that fails on a transient
  // undercount is what concurrency allows, and the count is exact when quiescent): a get
  // that cannot succeed costs no system calls.
  if (got < n && p->batch && got + cached(p) >= n) got += steal_all(p, objs + got, n - got);
  if (got == n) {
    if (p->batch && hit == 0) refill(p);
    return 0;
  }
  // All or nothing: this thread holds `got` objects; a stop here keeps them out of the pool
  // until it resumes (the chaos test parks threads at this point).
  CP_INJECT("dpdk.dequeue.partial");
  count(&lcore_stats::dequeue_fails, p);
  if (got) stash(p, objs, got);
  return -ENOENT;
}

// ---- the ops -------------------------------------------------------------------------------

int cp_mp_alloc(rte_mempool *mp) {
  if (mp->size == 0 || mp->size > (1u << 30)) return -EINVAL;
  pool *p = new (std::nothrow) pool;
  if (!p) return -ENOMEM;
  p->count_calls = rte_log_can_log(static_cast<uint32_t>(cp_logtype), RTE_LOG_DEBUG);
  const unsigned ncpu = cp_nr_cpu_ids();
  p->nr_cpus = ncpu;
  p->nr_shards = RTE_MIN(RTE_MAX(ncpu, 1u), kMaxShards);
  p->shard_of_cpu = static_cast<uint16_t *>(calloc(ncpu, sizeof(uint16_t)));
  const size_t ovf_bytes = (corepool::ds::cas_array_bytes(mp->size) + 63) / 64 * 64;
  if (void *mem = aligned_alloc(64, ovf_bytes)) {
    memset(mem, 0, ovf_bytes);  // every slot empty
    p->overflow = corepool::ds::cas_array_init(mem, mp->size, ovf_bytes);
  }
  int rc = (p->shard_of_cpu && p->overflow) ? 0 : -ENOMEM;
  for (unsigned c = 0; c < ncpu && rc == 0; c++) p->shard_of_cpu[c] = c % p->nr_shards;
  // Each shard can hold 2N/S objects (rounded up to a power of two), capped where one shard
  // alone holds the whole pool.
  uint64_t per = RTE_MAX(2ull * mp->size / p->nr_shards + 1, uint64_t{kMinShardSlots});
  uint32_t slots = pow2_at_least(RTE_MIN(per, uint64_t{mp->size} + 1));
  for (unsigned s = 0; s < p->nr_shards && rc == 0; s++)
    rc = slots ? cp_alf_queue_alloc(&p->shards[s].q, slots) : -EINVAL;
  // The cache: off (batch 0) when the pool is too small to share out, or when rseq or the
  // rseq fence is not available (init returns -ENOTSUP); the shards alone are correct.
  const unsigned cap =
      static_cast<unsigned>(RTE_MIN(uint64_t{kMaxCache}, mp->size / (4ull * ncpu)));
  int crc = -EINVAL;
  if (rc == 0 && cap >= kMinCache) {
    crc = p->cache.init(ncpu, cap, corepool::ds::pcpu_cache::kStealable);
    if (crc == 0)
      p->batch = RTE_MIN(cap / 2, kMaxBatch);
    else if (crc == -ENOMEM)
      rc = crc;
  }
  if (rc != 0) {
    p->cache.destroy();
    for (unsigned s = 0; s < p->nr_shards; s++) cp_alf_queue_free(p->shards[s].q);
    free(p->overflow);
    free(p->shard_of_cpu);
    delete p;
    return rc;
  }
  mp->pool_data = p;
  CP_LOG(NOTICE, "pool %s: %u objects on %u ALF queues of %u slots, per-CPU cache of %u%s\n",
         mp->name, mp->size, p->nr_shards, slots, p->batch ? cap : 0,
         p->batch          ? ""
         : crc == -ENOTSUP ? " (no rseq or rseq fence)"
                           : " (pool too small)");
  return 0;
}

void cp_mp_free(rte_mempool *mp) {
  pool *p = pool_of(mp);
  if (!p) return;
  uint64_t enq = 0, deq = 0, fails = 0, ovf = 0, steals = 0;
  for (const lcore_stats &s : p->stats) {
    enq += s.enqueues.load(std::memory_order_relaxed);
    deq += s.dequeues.load(std::memory_order_relaxed);
    fails += s.dequeue_fails.load(std::memory_order_relaxed);
    ovf += s.overflow_puts.load(std::memory_order_relaxed);
    steals += s.steals.load(std::memory_order_relaxed);
  }
  // Quiescent (free runs alone). rte_mempool_free has dequeued every object it could before
  // it calls this, so after a clean run the driver holds 0: objects left here (in a CPU
  // stack or elsewhere) were not reachable by those dequeues, which is a driver bug.
  const uint64_t in_caches = cached(p);
  char calls[96] = "calls not counted (log level below debug)";
  if (p->count_calls)
    snprintf(calls, sizeof calls, "%" PRIu64 " enqueue calls, %" PRIu64 " dequeue calls", enq, deq);
  CP_LOG(NOTICE,
         "pool %s freed after %s (%" PRIu64 " found too few objects, %" PRIu64
         " stole from other CPUs), %" PRIu64 " objects put to the overflow array; it held %" PRIu64
         " of %u objects, %" PRIu64 " of them in CPU caches\n",
         mp->name, calls, fails, steals, ovf, shards_and_overflow(p) + in_caches, mp->size,
         in_caches);
  // Each shard's producer lock, taken with acquire, orders the last put's release of it
  // (L2) before the memory goes; a lock still held means a put is running (misuse).
  for (unsigned s = 0; s < p->nr_shards; s++)
    if (p->shards[s].producer.exchange(1, std::memory_order_acquire) != 0)
      CP_LOG(WARNING, "pool %s freed while a put was in progress\n", mp->name);
  p->cache.destroy();
  for (unsigned s = 0; s < p->nr_shards; s++) cp_alf_queue_free(p->shards[s].q);
  free(p->overflow);
  free(p->shard_of_cpu);
  delete p;
  mp->pool_data = nullptr;
}

// Fast paths: one restartable sequence on the calling CPU's stack (pcpu_cache_push/pop
// retry on ABORT, i.e. preemption, migration or a signal, until it commits or FAILs).
// A single object (the common call without a DPDK cache) needs no stack frame: bulks,
// counted calls and everything else are out of line.
inline int put_one(pool *p, void *const *objs) {
  if (pcpu_cache_push(p->cache, objs[0])) return 0;
  return put_slow(p, objs, 1);
}

inline int get_one(pool *p, void **objs) {
  if (void *obj = pcpu_cache_pop(p->cache)) {  // never NULL: NULL is the miss
    objs[0] = obj;
    return 0;
  }
  return get_slow(p, objs, 1, 0);
}

__attribute__((noinline)) int enqueue_rest(pool *p, void *const *objs, unsigned n) {
  if (p->count_calls) count(&lcore_stats::enqueues, p);
  if (n == 0) return 0;
  if (p->batch && n == 1) return put_one(p, objs);
  if (p->batch && pcpu_cache_push_bulk(p->cache, objs, n)) return 0;
  return put_slow(p, objs, n);
}

__attribute__((noinline)) int dequeue_rest(pool *p, void **objs, unsigned n) {
  if (p->count_calls) count(&lcore_stats::dequeues, p);
  if (n == 0) return 0;
  if (p->batch && n == 1) return get_one(p, objs);
  const unsigned got = p->batch ? pcpu_cache_pop_bulk(p->cache, objs, n) : 0;
  if (got == n) return 0;
  return get_slow(p, objs, n, got);
}

inline bool single_fast(const pool *p, unsigned n) {
  return __builtin_expect(n == 1 && p->batch && !p->count_calls, 1);
}

int cp_mp_enqueue(rte_mempool *mp, void *const *objs, unsigned n) {
  pool *p = pool_of(mp);
  return single_fast(p, n) ? put_one(p, objs) : enqueue_rest(p, objs, n);
}

int cp_mp_dequeue(rte_mempool *mp, void **objs, unsigned n) {
  pool *p = pool_of(mp);
  return single_fast(p, n) ? get_one(p, objs) : dequeue_rest(p, objs, n);
}

unsigned cp_mp_get_count(const rte_mempool *mp) {
  const pool *p = pool_of(mp);
  const uint64_t c = uint64_t{shards_and_overflow(p)} + cached(p);
  return static_cast<unsigned>(RTE_MIN(c, uint64_t{mp->size}));
}

rte_mempool_ops cp_ops = {
    .name = "corepool",
    .alloc = cp_mp_alloc,
    .free = cp_mp_free,
    .enqueue = cp_mp_enqueue,
    .dequeue = cp_mp_dequeue,
    .get_count = cp_mp_get_count,
    .calc_mem_size = nullptr,
    .populate = nullptr,
    .get_info = nullptr,
    .dequeue_contig_blocks = nullptr,
};

}  // namespace

RTE_MEMPOOL_REGISTER_OPS(cp_ops);
RTE_INIT(cp_log_init) {
  cp_logtype = rte_log_register_type_and_pick_level("pmd.mempool.corepool", RTE_LOG_NOTICE);
  if (cp_logtype < 0) cp_logtype = RTE_LOGTYPE_MEMPOOL;
}
