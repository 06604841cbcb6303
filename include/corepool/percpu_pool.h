/* corepool/percpu_pool.h - a watermark-refilled pool of per-CPU areas (Tejun Heo's 2014
 * percpu_pool patch): allocate per-CPU areas from contexts that must not take a lock or map
 * memory (signal handlers, real-time threads, packet paths).
 *
 * Semantics (the patch's):
 *  - The pool starts empty. Unless filled explicitly, the first alloc fails and triggers
 *    filling.
 *  - fill is synchronous. fill(pool, 0) fills up to `high`; fill(pool, n) up to n; if n is
 *    non-zero and lower than `low`, automatic refilling is inhibited until the pool is
 *    completely empty (boot-time pre-fill).
 *  - alloc takes one area; when the pool is then empty, or below `low` and refilling is not
 *    inhibited, it clears the inhibition and schedules asynchronous filling up to `high`
 *    (on corepool's background worker, or on the user's executor). The pool may run empty
 *    before the refill completes.
 *  - empty cancels pending fill work and frees every cached area.
 *  - Each area is a cp_alloc_percpu handle, zeroed on every CPU, freed with cp_free_percpu.
 *
 * Static pools: CP_DEFINE_PERCPU_POOL(name, type, low, high) and
 * CP_DEFINE_PERCPU_POOL_SIZED(name, size, align, low, high) define `struct cp_percpu_pool
 * name` at file scope, constant-initialised, and a load-time constructor that creates its
 * bookkeeping and starts the background worker (a thread before main; no per-CPU area is
 * allocated then). So the pool can be used from any context and is refilled automatically
 * from its first use on, a signal handler's included: like any pool it starts empty, so that
 * first alloc returns NULL and schedules the refill. After cp_percpu_pool_destroy a static
 * pool is back to its initial state without bookkeeping: alloc returns NULL and schedules
 * nothing until cp_percpu_pool_fill creates it again.
 *
 * Bad input: a NULL pool is answered by every function (alloc NULL, nr 0, the others do
 * nothing; destroy of NULL is a no-op) with a cp_last_error() message; so is a negative
 * fill target.
 */
#ifndef COREPOOL_PERCPU_POOL_H
#define COREPOOL_PERCPU_POOL_H

#include <stddef.h>

#include <corepool/percpu.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Complete so that static pools can be defined; the fields are private (use the functions). */
struct cp_percpu_pool {
  size_t cp_priv_size;
  size_t cp_priv_align;
  int cp_priv_low;
  int cp_priv_high;
  int cp_priv_flags;  /* 1: created by cp_percpu_pool_create (destroy frees it) */
  void *cp_priv_impl; /* bookkeeping, created by create or the first fill */
};

/* Creates a static pool's bookkeeping and starts the worker (what the constructor of
 * CP_DEFINE_PERCPU_POOL does). Not async-signal-safe; may block. */
void cp_percpu_pool_static_init(struct cp_percpu_pool *pool);

#define CP_DEFINE_PERCPU_POOL_SIZED(name, size, align, low, high)             \
  struct cp_percpu_pool name = {(size), (align), (low), (high), 0, NULL};     \
  __attribute__((constructor)) static void cp_percpu_pool_ctor_##name(void) { \
    cp_percpu_pool_static_init(&name);                                        \
  }                                                                           \
  extern struct cp_percpu_pool name
#ifdef __cplusplus
#define CP_PERCPU_POOL_ALIGNOF_(type) alignof(type)
#else
#define CP_PERCPU_POOL_ALIGNOF_(type) _Alignof(type)
#endif
#define CP_DEFINE_PERCPU_POOL(name, type, low, high) \
  CP_DEFINE_PERCPU_POOL_SIZED(name, sizeof(type), CP_PERCPU_POOL_ALIGNOF_(type), low, high)

/* Creates an empty pool of areas of `elem_size` bytes aligned to `elem_align` (as
 * cp_alloc_percpu checks them) with watermarks 0 <= low <= high, high >= 1, and starts the
 * background worker. Returns 0, -EINVAL (bad argument; cp_last_error() says which) or
 * -ENOMEM. Not async-signal-safe; may block. */
int cp_percpu_pool_create(struct cp_percpu_pool **pool, size_t elem_size, size_t elem_align,
                          int low, int high);

/* Empties the pool (see cp_percpu_pool_empty) and releases its bookkeeping; a pool from
 * cp_percpu_pool_create is freed, a static one returns to its initial state. No other call
 * on the pool may run concurrently or follow (except, for a static pool, starting over).
 * A refill request handed to a user executor and not yet run stays safe to run: it then
 * frees the bookkeeping and touches nothing else (if it never runs, that stays allocated).
 * Safe from work running on the background worker (a gen_pool growth hook): it never waits
 * for the worker there. May block; not async-signal-safe. NULL is a no-op. */
void cp_percpu_pool_destroy(struct cp_percpu_pool *pool);

/* Allocates areas synchronously until the pool holds target_nr (0: `high`) or allocation
 * fails; target_nr in (0, low) inhibits automatic refill until the pool is empty. Creates
 * a static pool's bookkeeping and starts the worker. May block; not async-signal-safe. */
void cp_percpu_pool_fill(struct cp_percpu_pool *pool, int target_nr);

/* Cancels pending fill work (waiting for a running one) and frees every cached area.
 * May block; not async-signal-safe; not from the executor's fill itself. From work running
 * on the background worker (a gen_pool growth hook) it is safe: a refill queued behind that
 * work is dropped at once, never waited for. */
void cp_percpu_pool_empty(struct cp_percpu_pool *pool);

/* Takes one cached area (a cp_alloc_percpu handle, zero on every CPU), or NULL when the
 * pool is empty; schedules a refill as described above. Lock-free and async-signal-safe;
 * never blocks, never maps memory. Free the area with cp_free_percpu (also signal-safe).
 * Checked mode (COREPOOL_CHECK=1): cp_free_percpu refuses and reports a free of an area
 * this pool still caches (a stale double free), so a freed area is never handed out. */
void *cp_percpu_pool_alloc(struct cp_percpu_pool *pool);

/* Number of cached areas now (a snapshot). Async-signal-safe. */
int cp_percpu_pool_nr(const struct cp_percpu_pool *pool);

/* Statistics (a corepool extension). */
struct cp_percpu_pool_stats {
  int nr;                       /* cached areas now (cp_percpu_pool_nr) */
  int low, high;                /* the watermarks */
  size_t elem_size, elem_align; /* of each area */
  /* Counted since the bookkeeping was created (create, a static pool's constructor or first
   * fill), on the fill, empty and refill-request paths only (alloc's claim counts nothing): */
  unsigned long long filled;        /* areas allocated into the pool by fills */
  unsigned long long fill_failures; /* fills that stopped short (cp_alloc_percpu failed) */
  unsigned long long emptied;       /* cached areas freed by empty and destroy */
  unsigned long long refills;       /* refills alloc requested (queued, or joined a pending one) */
  unsigned long long empty_allocs;  /* allocs that found the pool empty (returned NULL) */
};
/* Fills *st. 0, or -EINVAL when pool or st is NULL. Lock-free, async-signal-safe, never
 * blocks. A snapshot: each field is read once; exact when nothing runs concurrently. A
 * static pool without bookkeeping gives its sizes and watermarks and zeros. */
int cp_percpu_pool_stats(const struct cp_percpu_pool *pool, struct cp_percpu_pool_stats *st);
/* Writes a human-readable report to file descriptor fd: lines "percpu_pool 0x<pool>
 * key=value ...": one with the sizes, watermarks and cached areas, one with the counters.
 * 0, -EINVAL (pool NULL), or the negative errno of the failed write(2). Async-signal-safe
 * (formats on the stack, writes with write(2)); may block on a slow fd. With
 * COREPOOL_STATS=1 in the environment every pool with bookkeeping is reported to stderr at
 * exit. */
int cp_percpu_pool_dump(const struct cp_percpu_pool *pool, int fd);

/* corepool extension: run refills on the caller's executor instead of the background
 * worker. When a refill is due, cp_percpu_pool_alloc calls exec(run, run_arg, user) from
 * its own context (possibly a signal handler: exec must be async-signal-safe and must not
 * run `run` itself there); the executor later calls run(run_arg) from a normal thread,
 * which fills the pool to `high`. Pass exec = NULL to go back to the background worker.
 * Not async-signal-safe; call it before the pool is used concurrently. */
typedef void (*cp_percpu_pool_executor)(void (*run)(void *), void *run_arg, void *user);
void cp_percpu_pool_set_executor(struct cp_percpu_pool *pool, cp_percpu_pool_executor exec,
                                 void *user);

#ifdef __cplusplus
}
#endif
#endif /* COREPOOL_PERCPU_POOL_H */
