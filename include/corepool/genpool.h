/* corepool/genpool.h - gen_pool: a lock-free allocator of special memory ranges.
 *
 * The user-space counterpart of the kernel's lib/genalloc.c. A pool manages address ranges
 * ("chunks") that malloc does not: device memory, RDMA/GPU-registered buffers, shared-memory
 * segments, hugepage regions, BARs. Addresses are plain integers and are never dereferenced
 * (except by cp_gen_pool_dma_zalloc, which zeroes what it returns). Each chunk has one bit per
 * 2^min_alloc_order bytes ("granule"); sizes are rounded up to whole granules.
 *
 * Context safety (every function below says which applies):
 *   lock-free, async-signal-safe: alloc*, dma_alloc, dma_zalloc, free*, avail, size,
 *     has_addr, virt_to_phys, for_each_chunk (the callback runs on the caller). These never
 *     block and never allocate memory; they may be called from signal handlers and real-time
 *     threads, concurrently with each other and with add*. System calls they may make: a
 *     thread's first call may register it for rseq (one rseq(2) call); with a growth hook set
 *     (set_low_watermark), an allocation that leaves avail under the threshold wakes the
 *     background worker (one futex(2) call). Neither blocks.
 *   may block: create*, attach_shared, add* (take the pool's add lock and allocate metadata),
 *     set_low_watermark, destroy, detach.
 * Chunks are never removed before destroy. See docs/genpool.md for the protocol.
 *
 * Errors: negative errno values, or NULL/0 with a message in cp_last_error()
 * (corepool/error.h); constructors returning NULL also set errno. A NULL pool is answered by
 * every function with its error value (-EINVAL, 0, false, NULL, UINT64_MAX or UINTPTR_MAX)
 * and the message "pool is NULL"; detach of NULL is a no-op.
 */
#ifndef COREPOOL_GENPOOL_H
#define COREPOOL_GENPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct cp_gen_pool;

/* Allocation algorithms (the kernel's genpool_algo_t family). */
enum cp_genpool_algo {
  CP_GENPOOL_FIRST_FIT,             /* lowest fitting address, chunks in add order (default) */
  CP_GENPOOL_FIRST_FIT_ALIGN,       /* data: struct cp_genpool_data_align; aligns the address */
  CP_GENPOOL_FIXED,                 /* data: struct cp_genpool_data_fixed; chunk start+offset */
  CP_GENPOOL_FIRST_FIT_ORDER_ALIGN, /* aligned (from chunk start) to size rounded to 2^k */
  CP_GENPOOL_BEST_FIT,              /* exact fit if any, else the smallest fitting free run */
};
struct cp_genpool_data_align {
  size_t align;
}; /* bytes, power of two */
struct cp_genpool_data_fixed {
  size_t offset;
}; /* from the chunk start */
struct cp_gen_pool_chunk_info {
  uintptr_t start; /* first address */
  size_t size;     /* bytes managed (a whole number of granules) */
  uint64_t phys;   /* physical/device address of start, UINT64_MAX if none */
  void *owner;     /* owner cookie of add_owner (NULL if none) */
  size_t avail;    /* free bytes now */
};

/* Creates an empty process-private pool with granule 2^min_alloc_order bytes
 * (0 <= min_alloc_order <= 40). `nid` is a NUMA hint for the metadata (-1: any).
 * Returns NULL with errno EINVAL (bad order) or ENOMEM. May block. Free with destroy. */
struct cp_gen_pool *cp_gen_pool_create(int min_alloc_order, int nid);

/* Adds the chunk [virt, virt+size) with device address `phys` (UINT64_MAX: none) and owner
 * cookie `owner`. Only whole granules are managed (size is truncated). Errors: -EINVAL (size
 * under one granule, virt 0, range wraps around, overlaps a chunk of this pool; shared pools:
 * straddles the region's end, overlaps its metadata), -ENOMEM (metadata). Takes the add lock;
 * runs concurrently with alloc/free. May block. Not signal-safe. */
int cp_gen_pool_add_owner(struct cp_gen_pool *pool, uintptr_t virt, uint64_t phys, size_t size,
                          int nid, void *owner);
int cp_gen_pool_add_virt(struct cp_gen_pool *pool, uintptr_t virt, uint64_t phys, size_t size,
                         int nid);
int cp_gen_pool_add(struct cp_gen_pool *pool, uintptr_t addr, size_t size, int nid);

/* Allocates `size` bytes (rounded up to granules) with the pool's algorithm. Returns the
 * address, or 0 when nothing fits (or size is 0). Lock-free, async-signal-safe. */
uintptr_t cp_gen_pool_alloc(struct cp_gen_pool *pool, size_t size);
/* The same with an explicit algorithm; `data` as listed at enum cp_genpool_algo (NULL or a bad
 * alignment: 0 and cp_last_error() set). `owner` (may be NULL) receives the chunk's cookie. */
uintptr_t cp_gen_pool_alloc_algo(struct cp_gen_pool *pool, size_t size, enum cp_genpool_algo algo,
                                 const void *data);
uintptr_t cp_gen_pool_alloc_algo_owner(struct cp_gen_pool *pool, size_t size,
                                       enum cp_genpool_algo algo, const void *data, void **owner);
/* Allocates and returns the address as a pointer; *dma (if not NULL) receives the device
 * address (UINT64_MAX if the chunk has none). zalloc also zeroes the bytes (the range must be
 * real memory). NULL when nothing fits. Lock-free, async-signal-safe. */
void *cp_gen_pool_dma_alloc(struct cp_gen_pool *pool, size_t size, uint64_t *dma);
void *cp_gen_pool_dma_zalloc(struct cp_gen_pool *pool, size_t size, uint64_t *dma);

/* Frees [addr, addr+size) allocated from this pool with exactly this size (after rounding).
 * Returns 0, or -EINVAL with the pool untouched: address outside every chunk, not the start
 * of an allocation, not allocated, double free, size that does not match. `owner` (may be
 * NULL) receives the chunk's cookie. Lock-free, async-signal-safe. A double free that races
 * with a reallocation of the same range cannot be told apart from a valid free (the kernel
 * has the same ABA limit); all sequential misuse is detected. */
/* In checked mode (COREPOOL_CHECK=1, docs/ARCHITECTURE.md) every refusal also writes one
 * line to stderr: "corepool: cp_gen_pool_free: <reason> (<addr>)". */
int cp_gen_pool_free(struct cp_gen_pool *pool, uintptr_t addr, size_t size);
int cp_gen_pool_free_owner(struct cp_gen_pool *pool, uintptr_t addr, size_t size, void **owner);

/* Free bytes / total bytes over all chunks. Lock-free, async-signal-safe. avail is exact
 * while no alloc or free is in flight; while some are, it may be off by their sizes (it is
 * kept per CPU and summed over the CPUs that used each chunk). */
size_t cp_gen_pool_avail(struct cp_gen_pool *pool);
size_t cp_gen_pool_size(struct cp_gen_pool *pool);
/* True if [start, start+size) lies inside one chunk. Lock-free, async-signal-safe. */
bool cp_gen_pool_has_addr(struct cp_gen_pool *pool, uintptr_t start, size_t size);
/* Device address of `addr`, UINT64_MAX if it is in no chunk or its chunk has none. */
uint64_t cp_gen_pool_virt_to_phys(struct cp_gen_pool *pool, uintptr_t addr);
/* Calls func once per chunk, in add order, on the calling thread. Lock-free; chunks added
 * concurrently may or may not be visited. */
void cp_gen_pool_for_each_chunk(struct cp_gen_pool *pool,
                                void (*func)(struct cp_gen_pool *,
                                             const struct cp_gen_pool_chunk_info *, void *),
                                void *data);
/* Statistics (a corepool extension): sizes, fragmentation and the failure counts. */
struct cp_gen_pool_stats {
  size_t size;                       /* bytes managed, all chunks (cp_gen_pool_size) */
  size_t avail;                      /* free bytes (cp_gen_pool_avail) */
  size_t largest_free;               /* bytes of the longest run of free granules in one
                                      * chunk: the largest unaligned request that fits now */
  size_t granule;                    /* bytes per granule (2^min_alloc_order) */
  unsigned long long nr_chunks;      /* chunks added */
  unsigned long long nr_allocations; /* allocations outstanding (their start marks) */
  /* Counted by this handle (for a shared pool: this process's calls) since create or
   * attach; one restartable add on a per-CPU line each, on these paths only: */
  unsigned long long failed_allocs; /* allocation requests no chunk could serve (returned 0) */
  unsigned long long grow_calls;    /* runs of the growth callback (set_low_watermark) */
};
/* Fills *st. 0, or -EINVAL when pool or st is NULL. Lock-free, async-signal-safe, never
 * blocks; reads every chunk's map (time linear in the granules, 32 per word). A snapshot:
 * with allocs and frees in flight the fields may disagree by their sizes; exact when
 * nothing runs concurrently. */
int cp_gen_pool_stats(struct cp_gen_pool *pool, struct cp_gen_pool_stats *st);
/* Writes a human-readable report to file descriptor fd: lines "gen_pool 0x<pool>
 * key=value ...": one with the figures of cp_gen_pool_stats, one per chunk ("chunk=N
 * start=0x... size=... avail=... allocations=... largest_free=..."), one with the counters.
 * 0, -EINVAL (pool NULL), or the negative errno of the failed write(2). Async-signal-safe
 * (formats on the stack, writes with write(2)); may block on a slow fd. With
 * COREPOOL_STATS=1 in the environment every live handle's report is written to stderr at
 * exit. */
int cp_gen_pool_dump(struct cp_gen_pool *pool, int fd);

/* Sets the algorithm of cp_gen_pool_alloc; `data` is copied (ignored for algorithms that take
 * none; NULL, a bad alignment, or an alignment or offset of 2^56 or more keeps the old
 * algorithm and sets cp_last_error(); cp_gen_pool_alloc_algo takes any value).
 * Lock-free; concurrent allocs use the old or the new setting. */
void cp_gen_pool_set_algo(struct cp_gen_pool *pool, enum cp_genpool_algo algo, const void *data);

/* ---- Spread mode (a corepool extension; off by default) -----------------------------------
 * With spread on, a first-fit search (FIRST_FIT, FIRST_FIT_ALIGN, FIRST_FIT_ORDER_ALIGN) for
 * up to 512 granules starts, in each chunk, at the home of the CPU the caller runs on
 * (cp_gen_pool_home): it returns the lowest fitting start at or past the home, else the
 * lowest one before it. Homes are spread evenly over each chunk (CPU k: granule k * stride,
 * stride = granules / cp_nr_cpu_ids() rounded down to a multiple of 256), so threads on
 * different CPUs claim, free and update hints on different cache lines instead of all
 * crowding the chunk's first free bits. A caller on a CPU id at or above cp_nr_cpu_ids() (a
 * container whose possible mask is smaller than the CPUs it runs on) has no home: plain first
 * fit. The price: addresses are no longer lowest-first
 * across CPUs. Chunks are still tried in add order; larger requests, FIXED and BEST_FIT are
 * unchanged. For a shared pool the setting is the region's (all processes). Lock-free; allocs
 * running concurrently use the old or the new setting. Returns 0, or -EINVAL for a NULL pool.
 * Use it when several threads allocate from one pool (docs/genpool.md has the numbers). */
int cp_gen_pool_set_spread(struct cp_gen_pool *pool, bool on);
bool cp_gen_pool_spread(struct cp_gen_pool *pool);
/* Where `cpu`'s search starts in the chunk that holds `addr`: its home if spread is on, else
 * the chunk's start. 0 if `addr` is in no chunk or cpu >= cp_nr_cpu_ids(). Lock-free,
 * async-signal-safe. */
uintptr_t cp_gen_pool_home(struct cp_gen_pool *pool, uintptr_t addr, unsigned cpu);

/* Destroys the pool: -EBUSY (nothing freed, pool usable) while allocations are outstanding,
 * else 0 and all metadata is released. For a shared pool it releases this process's handle
 * only and returns 0 (other processes' allocations are theirs; the region is the caller's).
 * Cancels a pending growth callback. May block; no concurrent calls on the handle. */
int cp_gen_pool_destroy(struct cp_gen_pool *pool);

/* ---- Process-shared mode ------------------------------------------------------------------
 * The whole pool state (header, chunk records, bitmaps, hints) lives inside `mem`, a region
 * the caller maps MAP_SHARED in every process, at any address: the state holds only offsets.
 * Several processes then allocate and free lock-free; a process killed at any instruction
 * holds no lock on the alloc/free path and leaks at most what it had allocated (plus the one
 * request it was inside). Chunk metadata for later adds is carved from `mem` after the header;
 * the add lock is a robust process-shared mutex (a holder's death is recovered by the next
 * adder, and an add killed at any step leaves the pool consistent).
 *
 * Addresses. The usual layout puts the managed data in the same region, after the metadata:
 * a chunk added inside [mem, mem + mem_size) is stored as an offset, and every process sees
 * it inside its own mapping: alloc* returns an address in the calling process's mapping, and
 * free* takes one. To hand an allocation to another process, pass
 * cp_gen_pool_shared_offset(pool, addr) and let it call cp_gen_pool_shared_addr(its_pool,
 * offset). A chunk outside the region (device memory, another mapping) keeps its absolute
 * address: every process sees the same integers, meaningful only where that memory is mapped
 * at that address. virt_to_phys maps either kind to phys + (addr - chunk start). Owner
 * cookies are stored as integers and are meaningful only in the process that added the chunk.
 * Chunk metadata is sized for 64 CPUs whatever the adding process's CPU count. */

/* Formats `mem` (mem_size bytes, 64-byte aligned) as an empty pool. Returns a handle for the
 * calling process, or NULL with errno EINVAL (bad order, misaligned or too small region) or
 * ENOMEM. May block. */
struct cp_gen_pool *cp_gen_pool_create_shared(void *mem, size_t mem_size, int min_alloc_order);
/* Opens a pool formatted by create_shared (possibly by another process, at another address)
 * in the `mem_size` bytes mapped at `mem`. Every field the pool will trust is checked first
 * (header, order, metadata offset, every chunk record's place, sizes and counts, every chunk's
 * bounds); chunks added later by other processes are checked when a walk first reaches them
 * (one that fails ends the walk). NULL with errno EINVAL if `mem` holds no pool or one this
 * process cannot trust (a region written by a buggy or hostile process gives EINVAL or a
 * pool that works on what it validated, never a crash), ENOMEM. May block. */
struct cp_gen_pool *cp_gen_pool_attach_shared(void *mem, size_t mem_size);
/* Offset of `addr` from the start of a shared pool's region as this process maps it, or
 * UINTPTR_MAX if addr is outside it (or the pool is not shared). Lock-free, async-signal-safe. */
uintptr_t cp_gen_pool_shared_offset(struct cp_gen_pool *pool, uintptr_t addr);
/* Address in this process's mapping of the region at `offset`, or 0 if offset is past the
 * region (or the pool is not shared). Lock-free, async-signal-safe. */
uintptr_t cp_gen_pool_shared_addr(struct cp_gen_pool *pool, uintptr_t offset);
/* Releases this process's handle without checking for allocations (any pool kind; for a
 * private pool this leaks its metadata if allocations are outstanding, so prefer destroy).
 * May block. */
void cp_gen_pool_detach(struct cp_gen_pool *pool);
/* Bytes of `mem` still free for chunk metadata of later adds (shared pools; 0 otherwise). */
size_t cp_gen_pool_shared_meta_avail(struct cp_gen_pool *pool);
/* Bytes of metadata a chunk of `size` bytes needs at this granularity (for sizing `mem`; the
 * same for any CPU count). */
size_t cp_gen_pool_chunk_meta_size(int min_alloc_order, size_t size);

/* ---- Growth hook (the kernel DMA atomic pool's pattern) -----------------------------------
 * When an allocation leaves cp_gen_pool_avail() under `threshold` bytes, `grow(pool, avail,
 * ctx)` is scheduled on corepool's shared background worker (never on the allocating thread,
 * so allocs stay lock-free and signal-safe); it may call cp_gen_pool_add*. Requests arriving
 * while a run is pending coalesce. threshold 0 or grow NULL removes the hook (waiting for a
 * running callback). Returns 0, -EINVAL (pool NULL) or -EDEADLK (called from this pool's own
 * callback, which cannot wait for itself; nothing changed). From another pool's callback it
 * works and never waits for the worker. The hook keeps working in a child of fork(). May
 * block. Not signal-safe. */
typedef void (*cp_gen_pool_grow_fn)(struct cp_gen_pool *pool, size_t avail, void *ctx);
int cp_gen_pool_set_low_watermark(struct cp_gen_pool *pool, size_t threshold,
                                  cp_gen_pool_grow_fn grow, void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* COREPOOL_GENPOOL_H */
