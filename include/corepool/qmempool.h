/* corepool/qmempool.h - quick queue-based memory pool (Brouer's qmempool RFC in user space):
 * per-CPU caches in front of a shared lock-free bulk queue (corepool/alf_queue.h), in front
 * of a backing allocator.
 *
 *   alloc: pop from this CPU's cache;
 *          empty -> take a bulk (half a cache: min(localq_sz / 2, 128) objects) from this
 *                   CPU's depot, else the shared queue, else another CPU's depot; keep
 *                   one, cache the rest;
 *          empty -> allocate up to a bulk from the backing allocator (stops at the first
 *                   NULL and uses what it got).
 *   free:  push onto this CPU's cache;
 *          full  -> move a bulk from the cache to this CPU's depot, else the shared queue;
 *          full  -> give them to the backing allocator.
 * A cache that just ran dry or overflowed is left about half full, so the next operations
 * stay on the fast path (one restartable sequence, no atomic instruction).
 *
 * Depots (one per CPU, rseq only, localq_sz objects each): rings that only their CPU's
 * restartable sequences fill and any thread empties by CAS. Unlike the shared queue, a
 * thread stopped anywhere in them hides nothing, so when threads outnumber CPUs (and one
 * is stopped inside the shared queue for a time slice) refills still find objects.
 *
 * Per-CPU caches: on threads with restartable sequences (rseq) the cache of CPU c is a
 * stack changed only by rseq sequences on CPU c, so preemption, migration and signals
 * restart an operation instead of corrupting the cache (the RFC needed softirq context or
 * local_bh_disable). Threads without rseq (COREPOOL_RSEQ=0, TSan builds, a thread whose
 * registration failed) use a second, separate set of per-CPU caches guarded by a try-lock:
 * when the lock is busy (another thread, or the code a signal interrupted) they go straight
 * to the shared queue. The two kinds never share a word, so mixing them is safe.
 *
 * Objects freed on another CPU than the one that allocated them simply join that CPU's
 * cache; caches that overflow feed their depot and the shared queue, caches that run dry
 * draw from those and from the other CPUs' depots.
 *
 * Memory goes back: when a spill finds the shared queue above 3/4 of its size on 8
 * consecutive spills (the pool has had more free objects than it used for that long,
 * measured in traffic, with no clock and no worker thread), the spilling thread returns
 * objects to the backing allocator until the queue is at 1/2. cp_qmempool_destroy returns
 * every cached object.
 *
 * Progress: alloc and free never wait for another thread (lock-free; the try-lock is only
 * ever tried). They are async-signal-safe as long as they do not reach the backing
 * allocator: alloc reaches it when it finds no object in reach (this CPU's cache, the
 * depots, the shared queue), free when it finds no room (the cache, this CPU's depot, the
 * shared queue), and either may when the memory-return above triggers. "In reach" counts
 * what other code hides for the moment: a thread stopped, or interrupted by the very
 * signal handler that now calls the pool, while it holds a fallback cache's try-lock hides
 * that cache (up to localq_sz objects), and one between its claim and its publish in the
 * shared queue hides its slots and every slot behind them (corepool/alf_queue.h). So with
 * rseq off (COREPOOL_RSEQ=0, TSan builds, no depots then) and on threads without rseq, a
 * handler that interrupts pool code on its own thread may reach the backing allocator while
 * the pool holds free objects; with rseq the other CPUs' depots (which hide nothing) make
 * that rarer but not impossible. A handler that calls the pool therefore needs an
 * async-signal-safe backing allocator, or the signal blocked around the pool's calls on the
 * threads it can interrupt. The default backing allocator (malloc) is not
 * async-signal-safe. In checked mode (COREPOOL_CHECK=1, below) a call that reaches the
 * backing allocator may also map memory for the object registry. A refill or spill copies
 * up to 128 pointers through the stack (about 1.1 KiB of stack in all), which a signal
 * handler's stack must allow.
 *
 * Checked mode (COREPOOL_CHECK=1 in the environment, read once at load time; see
 * docs/ARCHITECTURE.md): the pool is created without per-CPU caches (and without the thread
 * tier) and keeps every object
 * it got from the backing allocator in a lock-free side map with its state (free in the
 * pool, or held by a caller). A free of an object the pool already holds as free (double
 * free: the -EALREADY case of the rule) or of a pointer the map does not know (a stack
 * buffer, an interior pointer, an object already given back to the backing allocator:
 * -EINVAL) prints one line to stderr, sets cp_last_error() and is ignored: nothing is handed
 * out twice and no foreign pointer is handed out or passed to backing->free. Of two racing
 * frees of one object exactly one is taken. Without checked mode none of this is detected:
 * a double free hands the object out twice, and any pointer freed joins the pool.
 *
 * Concurrency: alloc, free, alloc_bulk and free_bulk may run concurrently from any threads
 * and signal handlers; create and destroy may not run concurrently with anything on the
 * same pool.
 */
#ifndef COREPOOL_QMEMPOOL_H
#define COREPOOL_QMEMPOOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct cp_qmempool;

/* The object source (the RFC's kmem_cache). alloc returns one object of the pool's size or
 * NULL; free takes back an object that alloc returned. Both are called without any pool
 * lock held (there is none), possibly from several threads at once. */
struct cp_qmempool_backing {
  void *(*alloc)(void *ctx);
  void (*free)(void *ctx, void *obj);
  void *ctx;
};

/* Creates a pool into *pool.
 *   localq_sz   per-CPU cache capacity: a power of two >= 16, <= 65536;
 *   sharedq_sz  shared queue size: a power of two >= 32 (two bulks), <= 2^24;
 *   prealloc    objects allocated now into the shared queue, <= sharedq_sz;
 *   obj_size    object size in bytes, >= 1 (used by the default backing allocator);
 *   backing     NULL: objects come from malloc (aligned to 64 bytes when obj_size >= 64);
 *               else copied; alloc and free must be non-NULL.
 * Returns 0, -EINVAL (cp_last_error() names the rule that failed) or -ENOMEM (memory for
 * the pool, or the backing allocator failed during prealloc). May allocate; not
 * async-signal-safe. The caller owns *pool and ends it with cp_qmempool_destroy(). */
int cp_qmempool_create(struct cp_qmempool **pool, uint32_t localq_sz, uint32_t sharedq_sz,
                       uint32_t prealloc, size_t obj_size,
                       const struct cp_qmempool_backing *backing);

/* Options for cp_qmempool_create_attr; zero-initialise and set what you need. */
struct cp_qmempool_attr {
  /* Objects each thread's own stack (the thread tier) holds at most, up to
   * CP_QMEMPOOL_THREAD_CACHE_MAX. 0 (the default): COREPOOL_THREAD_CACHE from the
   * environment (read once per process; unset or 0: no thread tier). */
  uint32_t thread_cache;
  unsigned flags; /* 0, or CP_QMEMPOOL_F_NOTHREADCACHE */
};
/* The thread tier: in front of the per-CPU caches, a small stack per thread that uses the
 * pool, reached through thread-local storage with one restartable sequence, no atomic
 * instruction and no CPU id. A thread's stack goes back to the caches when it overflows,
 * when the thread exits, and when it has not moved for about a second (noticed by other
 * threads' slow paths); destroy collects every thread's stack. Costs 128 + 8 x thread_cache
 * bytes per thread that uses the pool. Needs rseq and the rseq fence (x86-64, Linux 5.10+);
 * at most 16 pools of a process have it at once, later ones run without. The bulk calls
 * bypass it. This flag turns it off whatever the environment says. */
#define CP_QMEMPOOL_F_NOTHREADCACHE 1u
#define CP_QMEMPOOL_THREAD_CACHE_MAX 1024u

/* cp_qmempool_create with options (attr may be NULL: the defaults). Extra -EINVAL: an
 * unknown bit in attr->flags or thread_cache above its max. */
int cp_qmempool_create_attr(struct cp_qmempool **pool, uint32_t localq_sz, uint32_t sharedq_sz,
                            uint32_t prealloc, size_t obj_size,
                            const struct cp_qmempool_backing *backing,
                            const struct cp_qmempool_attr *attr);

/* Objects one thread's stack holds at most, 0 when the pool has no thread tier (or pool is
 * NULL). */
uint32_t cp_qmempool_thread_cache_capacity(const struct cp_qmempool *pool);

/* One object, or NULL: pool NULL (cp_last_error() says so) or the backing allocator
 * returned NULL with the caches and the shared queue empty. Lock-free; async-signal-safe
 * unless it reaches the backing allocator (see above). The caller owns the object until it
 * passes it to cp_qmempool_free or cp_qmempool_free_bulk of the same pool. */
void *cp_qmempool_alloc(struct cp_qmempool *pool);

/* Returns an object from this pool's alloc. NULL elem is a no-op; NULL pool records an
 * error and does nothing. Lock-free; async-signal-safe unless it reaches the backing
 * allocator. Not checked: freeing an object twice, or a pointer that is not one of this
 * pool's objects, is undefined (checked mode reports and ignores it, see above). */
void cp_qmempool_free(struct cp_qmempool *pool, void *elem);

/* Up to n objects into elems[0..k); returns k (0..n): fewer than n only when the backing
 * allocator ran dry. -EINVAL: pool NULL, n < 0, or elems NULL with n > 0. Same context
 * rules as cp_qmempool_alloc. */
int cp_qmempool_alloc_bulk(struct cp_qmempool *pool, void **elems, int n);

/* Returns n objects (NULL entries are skipped). pool NULL, n < 0, or elems NULL with
 * n > 0: records -EINVAL and does nothing. Same context rules as cp_qmempool_free. */
void cp_qmempool_free_bulk(struct cp_qmempool *pool, void *const *elems, int n);

/* Returns every cached object (CPU caches and shared queue) to the backing allocator and
 * frees the pool. Objects still held by callers are not tracked: return them first, or
 * they leak. NULL is a no-op. Nothing else may run on the pool concurrently. */
void cp_qmempool_destroy(struct cp_qmempool *pool);

/* Statistics: where the free objects are and how often the slow paths ran. */
struct cp_qmempool_stats {
  unsigned long long nr_free;         /* free objects: the sum of the four tiers below */
  unsigned long long nr_free_cache;   /* in the per-CPU caches (rseq and fallback stacks) */
  unsigned long long nr_free_depots;  /* in the per-CPU depots */
  unsigned long long nr_free_shared;  /* in the shared queue */
  unsigned long long nr_free_threads; /* in the threads' stacks (the thread tier; 0 when off) */
  /* Counted since create; each event is one restartable add on a per-CPU line, on slow
   * paths only (the caches' hits count nothing). */
  unsigned long long refills;        /* times an allocation went below the caches */
  unsigned long long spills;         /* times objects went below the caches (a full cache,
                                      * a refill's surplus that did not fit) */
  unsigned long long depot_steals;   /* objects a refill took from another CPU's depot */
  unsigned long long backing_allocs; /* objects from the backing allocator */
  unsigned long long backing_frees;  /* objects given back to it (shared queue full, trims,
                                      * destroy) */
};
/* Fills *st. 0, or -EINVAL when pool or st is NULL. Thread-safe, lock-free,
 * async-signal-safe, never blocks. A snapshot: each field is read once, at a slightly
 * different instant; with operations in flight the tiers may add up to more or less than
 * the free objects at any one instant, and a counter may miss the events in flight. Exact
 * when nothing runs concurrently. */
int cp_qmempool_stats(const struct cp_qmempool *pool, struct cp_qmempool_stats *st);
/* Writes a human-readable report to file descriptor fd: lines of the form
 * "qmempool 0x<pool> key=value ...": one with the tiers and sizes, one per possible CPU
 * ("cpu=N cache=C depot=D"), one with the slow-path counters. 0, -EINVAL (pool NULL), or
 * the negative errno of the failed write(2). Async-signal-safe (formats on the stack,
 * writes with write(2)); may block on a slow fd. With COREPOOL_STATS=1 in the environment
 * every live pool's report is written to stderr at exit. */
int cp_qmempool_dump(const struct cp_qmempool *pool, int fd);

#ifdef __cplusplus
}
#endif
#endif /* COREPOOL_QMEMPOOL_H */
