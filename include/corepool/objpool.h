/* corepool/objpool.h - a fixed pool of pre-allocated objects, one ring per CPU.
 *
 * The user-space form of the Linux kernel's objpool (include/linux/objpool.h, 6.7+): every
 * object is allocated and zero-filled at init; `push` puts an object into the calling CPU's
 * ring, `pop` takes one from the calling CPU's ring first, then from the other possible CPUs'
 * rings in order. Unlike the kernel's, every operation stays correct when the thread is
 * preempted, migrated, stopped or interrupted by a signal at any instruction (see
 * docs/objpool.md for the protocol and its invariants).
 *
 * Contract shared by every function below:
 *  - errors are negative errno values; cp_last_error() says why where it can;
 *  - a NULL pool (or a NULL array with a non-zero count) is an error, never a crash:
 *    functions returning int give -EINVAL, counts and capacities are 0, pop gives NULL,
 *    for_each calls nothing (each with a cp_last_error() message); fini and free ignore it;
 *  - pop, push, their bulk forms, drop and the nr_free functions are thread-safe, lock-free,
 *    never block, never allocate and are async-signal-safe: a signal handler may call them
 *    while the same thread was interrupted inside any of them;
 *  - init, fini and free allocate or release memory (system calls): not for signal handlers.
 *  - the pool never reads or writes an object's contents after `objinit` (no free-list links
 *    inside objects): what the caller stores in an object stays there across push/pop.
 *  - a pointer handed out by pop belongs to the caller until it is pushed back or dropped.
 *    Without checked mode, pushing the same object twice (or one that is not currently
 *    held) is not detected and hands that object out twice: the caller's bug, as in the
 *    kernel. Checked mode (COREPOOL_CHECK=1 in the environment, docs/objpool.md): the pool
 *    has no per-CPU cache nor thread tier, and one state byte per object; a push of an
 *    object already in the pool is refused with
 *    -EALREADY, of a dropped object with -EINVAL, a push after fini with -ESHUTDOWN, a drop
 *    of an object not held with -EALREADY / -EINVAL; each prints one line to stderr and
 *    leaves the pool intact.
 */
#ifndef COREPOOL_OBJPOOL_H
#define COREPOOL_OBJPOOL_H

#ifdef __cplusplus
extern "C" {
#endif

struct cp_objpool;

/* Called once per object right after allocation (object zero-filled); non-zero aborts init. */
typedef int (*cp_objpool_init_cb)(void *obj, void *context);
/* Called exactly once, when the pool is finally released (see cp_objpool_fini). The pool's
 * objects are still readable during the call (cp_objpool_for_each works); the return value
 * is ignored. */
typedef int (*cp_objpool_fini_cb)(struct cp_objpool *pool, void *context);

#define CP_OBJPOOL_NR_OBJS_MAX (1 << 24)
#define CP_OBJPOOL_OBJECT_SIZE_MAX (1 << 16)

/* Creates a pool of `nr_objs` objects of `object_size` bytes, in [1, 2^24] and [1, 65536].
 * Objects are zero-filled and aligned to at least alignof(max_align_t) (16 bytes); each
 * CPU's ring and its initial share of the objects are placed on that CPU's NUMA node. Every
 * per-CPU ring can hold all nr_objs objects (the kernel's sizing, see
 * cp_objpool_init_attr to bound it). `objinit` (may be NULL) is called once per object;
 * its first non-zero return aborts init, frees everything (without calling `release`) and
 * is returned. On success *pool is set and 0 returned; on failure *pool is NULL.
 * Errors: -EINVAL (pool NULL, nr_objs or object_size out of range), -ENOMEM, or objinit's.
 * Not async-signal-safe (maps memory). */
int cp_objpool_init(struct cp_objpool **pool, int nr_objs, int object_size, void *context,
                    cp_objpool_init_cb objinit, cp_objpool_fini_cb release);

/* Takes a free object, or returns NULL when none was found. Tries the calling CPU's cache
 * and ring, then every other possible CPU's ring in order, then the overflow rings and the
 * spill array, then the other CPUs' caches (see CP_OBJPOOL_F_NOCACHE: a system call each).
 * Lock-free; async-signal-safe. Every ring has one producer at a time (the CPU's restartable
 * sequence, or the holder of the ring's try-lock), so a thread stopped anywhere inside push
 * or pop hides only the objects of its own operation. NULL does not prove the pool was
 * empty at one instant: objects in other threads' operations are in no ring, and a thread
 * stopped while draining a CPU's cache hides that cache's objects until it resumes. */
void *cp_objpool_pop(struct cp_objpool *pool);

/* Gives `obj` back to the calling CPU's cache, or its ring when the cache is full (to an
 * overflow ring when that ring is full or held by another push, or the thread cannot use
 * rseq; to the spill array, which has a slot per object, when every ring is held). 0, or
 * -EINVAL when `obj` is not an object of this pool (an O(1) range and stride check, always
 * on; the pool is unchanged). Never fails otherwise, never waits: the overflow rings and
 * the spill array can each hold every object. Lock-free; async-signal-safe. Must not run
 * concurrently with cp_objpool_fini. */
int cp_objpool_push(void *obj, struct cp_objpool *pool);

/* Burst pop: takes up to `n` free objects into objs[0..k) and returns k (0 when none).
 * Same search order and guarantees as cp_objpool_pop. */
unsigned cp_objpool_pop_bulk(struct cp_objpool *pool, void **objs, unsigned n);

/* Bulk push (all or nothing): checks every pointer first and returns -EINVAL having pushed
 * none when one is not an object of this pool; otherwise pushes all n and returns 0.
 * objs must not hold the same object twice. Lock-free; async-signal-safe. */
int cp_objpool_push_bulk(void *const *objs, unsigned n, struct cp_objpool *pool);

/* Gives up an outstanding object for good (it never returns to the pool) and drops the
 * reference it held on the pool. 0 when this drop released the pool (the `release` callback
 * has run and the pool's memory is gone), -EAGAIN when references remain, -EINVAL when obj
 * or pool is NULL or obj is not an object of this pool. Async-signal-safe (the final
 * release unmaps memory with munmap and runs `release` on the calling thread). */
int cp_objpool_drop(void *obj, struct cp_objpool *pool);

/* Ends the pool's own life: takes every object still in the pool out of it for good, then
 * drops the pool's reference. Each object still outstanding keeps the pool (and all its
 * memory) alive until it is given to cp_objpool_drop; the last reference releases the pool
 * and runs `release` exactly once. The caller guarantees that no push or pop runs
 * concurrently with fini and none is called after it (a pop in flight when the last
 * reference goes would touch unmapped memory, and a pop that steals may cache objects that
 * fini has already passed); drop may run concurrently. NULL is ignored. */
void cp_objpool_fini(struct cp_objpool *pool);

/* Releases the pool at once, whatever is outstanding: runs `release` (if the pool was not
 * already released) and unmaps all memory, objects included. For pools whose objects are
 * all back or no longer used. NULL is ignored. */
void cp_objpool_free(struct cp_objpool *pool);

/* Number of objects in the pool: a snapshot, exact when no operation is in flight. */
unsigned cp_objpool_nr_free(const struct cp_objpool *pool);

/* ---- beyond the kernel ------------------------------------------------------------------ */

/* Options for cp_objpool_init_attr; zero-initialise and set what you need. */
struct cp_objpool_attr {
  /* Upper bound on the objects one CPU's ring can hold, rounded up to a power of two.
   * 0 (the default) sizes every ring for all nr_objs objects, like the kernel. With a
   * bound, a push that finds its ring full goes to one shared overflow ring sized for
   * nr_objs, so push still never fails for a valid object; memory per CPU drops from
   * 8 * nr_objs bytes to 8 * ring_capacity. */
  unsigned ring_capacity;
  unsigned flags; /* 0, or CP_OBJPOOL_F_NOCACHE and/or CP_OBJPOOL_F_NOTHREADCACHE */
  /* Objects one CPU's cache (see below) holds at most, up to CP_OBJPOOL_CACHE_CAPACITY_MAX.
   * 0 (the default): min(256, nr_objs / (4 x possible CPUs)); a pool that small gets none. */
  unsigned cache_capacity;
  /* Objects each thread's own stack (the thread tier, see below) holds at most, up to
   * CP_OBJPOOL_THREAD_CACHE_MAX. 0 (the default): COREPOOL_THREAD_CACHE from the environment
   * (read once per process; unset or 0: no thread tier). */
  unsigned thread_cache;
};
/* In front of each CPU's ring sits a small per-CPU cache (a LIFO stack) that push and pop
 * reach with one restartable sequence and no atomic read-modify-write. Its objects stay
 * reachable from every CPU: when every ring comes up short, pop fences the CPUs whose cache
 * holds objects (membarrier(2), a system call of about 2 us) and takes them. Pools get the
 * cache when rseq and that fence are available (x86-64, Linux 5.10+) unless this flag is set. */
#define CP_OBJPOOL_F_NOCACHE 1u
#define CP_OBJPOOL_CACHE_CAPACITY_MAX (1u << 16)
/* The thread tier: in front of the per-CPU caches, a small stack per thread that uses the
 * pool, reached through thread-local storage with one restartable sequence, no atomic
 * instruction and no CPU id. Its objects stay reachable from every thread: a pop that finds
 * the rings and the CPU caches empty takes them out of other threads' stacks (membarrier(2),
 * as for the CPU caches); a thread's stack goes back to the pool when the thread exits, and
 * when it has not moved for about a second (noticed by other threads' slow paths). Costs
 * 128 + 8 x thread_cache bytes per thread that uses the pool. Needs what the cache needs
 * (rseq and the fence: x86-64, Linux 5.10+); at most 16 pools of a process have it at once,
 * later ones run without. The bulk calls bypass it. This flag turns it off whatever the
 * environment says. */
#define CP_OBJPOOL_F_NOTHREADCACHE 4u
#define CP_OBJPOOL_THREAD_CACHE_MAX 1024u

/* cp_objpool_init with options (attr may be NULL: the defaults). Extra error: -EINVAL for
 * an unknown bit in attr->flags, ring_capacity above 2^24, cache_capacity or thread_cache
 * above its max. */
int cp_objpool_init_attr(struct cp_objpool **pool, int nr_objs, int object_size, void *context,
                         cp_objpool_init_cb objinit, cp_objpool_fini_cb release,
                         const struct cp_objpool_attr *attr);

/* Introspection (snapshots; thread-safe, async-signal-safe). Free objects in CPU `cpu`'s
 * ring and cache: -EINVAL when cpu >= cp_nr_cpu_ids() or is not possible (no ring). */
int cp_objpool_nr_free_cpu(const struct cp_objpool *pool, unsigned cpu);
/* Free objects in the shared overflow rings and the spill array. */
unsigned cp_objpool_nr_free_overflow(const struct cp_objpool *pool);
/* Objects per CPU ring at most (a power of two). */
unsigned cp_objpool_ring_capacity(const struct cp_objpool *pool);
/* The object size passed to init, and the bytes between consecutive objects. */
int cp_objpool_object_size(const struct cp_objpool *pool);
int cp_objpool_object_stride(const struct cp_objpool *pool);
int cp_objpool_nr_objs(const struct cp_objpool *pool);
/* Objects per CPU cache at most; 0 when the pool has no cache. */
unsigned cp_objpool_cache_capacity(const struct cp_objpool *pool);
/* Objects one thread's stack holds at most (attr.thread_cache or the environment's), 0 when
 * the pool has no thread tier. */
unsigned cp_objpool_thread_cache_capacity(const struct cp_objpool *pool);
/* True (1) when the per-CPU rings run as restartable sequences (chosen at init from
 * cp_rseq_enabled()); 0 when their producer is the holder of each ring's try-lock. */
int cp_objpool_uses_rseq(const struct cp_objpool *pool);
/* Statistics: where the free objects are and how often the slow paths ran. */
struct cp_objpool_stats {
  unsigned nr_objs;          /* objects of the pool */
  unsigned nr_free;          /* free objects: the sum of the four tiers below */
  unsigned nr_free_cache;    /* in the per-CPU caches, all CPUs */
  unsigned nr_free_rings;    /* in the per-CPU rings, all CPUs */
  unsigned nr_free_overflow; /* in the overflow rings and the spill array */
  unsigned nr_free_threads;  /* in the threads' stacks (the thread tier; 0 when off) */
  /* Counted since init. Spills and overflows are read off the rings' free-running indices
   * (no cost on any path); refills and steals are one restartable add each on a per-CPU
   * line, on slow paths only. Refills are cache misses: a pool without a cache
   * (CP_OBJPOOL_F_NOCACHE, no rseq) and a thread the cache cannot serve (no rseq for it)
   * count none, the rings being their normal path. */
  unsigned long long refills;   /* pops the cache could not serve (went to the rings) */
  unsigned long long spills;    /* objects pushed below the caches: into a CPU ring, an
                                 * overflow ring or the spill array (a refill's surplus
                                 * too; without a cache, every push) */
  unsigned long long overflows; /* of those, objects pushed past their CPU's ring: to an
                                 * overflow ring (their ring full or BUSY, or a thread
                                 * without rseq on a pool whose rings run as rseq
                                 * sequences) or the spill array */
  unsigned long long steals;    /* objects taken from other CPUs' caches (a fence each CPU) */
};
/* Fills *st. 0, or -EINVAL when pool or st is NULL. Thread-safe, lock-free,
 * async-signal-safe, never blocks. A snapshot: each field is read once, at a slightly
 * different instant; with operations in flight the tiers may add up to more or less than
 * the free objects at any one instant, and a counter may miss the events in flight. Exact
 * when nothing runs concurrently. */
int cp_objpool_stats(const struct cp_objpool *pool, struct cp_objpool_stats *st);
/* Writes a human-readable report to file descriptor fd: lines of the form
 * "objpool 0x<pool> key=value ...": one with the sizes and tiers of cp_objpool_stats, one
 * per possible CPU ("cpu=N free=F": its cache and ring), one with the slow-path counters. 0,
 * -EINVAL (pool NULL), or the negative errno of the failed write(2). Async-signal-safe (formats on
 * the stack, writes with write(2)); may block on a slow fd. Same snapshot rules as
 * cp_objpool_stats. With COREPOOL_STATS=1 in the environment every live pool's report is
 * written to stderr at exit. */
int cp_objpool_dump(const struct cp_objpool *pool, int fd);
/* Calls fn(obj, arg) for every object of the pool, free or not, in address order. Not
 * synchronised with anything: for setup, teardown (e.g. from `release`) and tests. */
void cp_objpool_for_each(const struct cp_objpool *pool, void (*fn)(void *obj, void *arg),
                         void *arg);

#ifdef __cplusplus
}
#endif
#endif /* COREPOOL_OBJPOOL_H */
