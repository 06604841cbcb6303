/* corepool/percpu.h - the dynamic per-CPU allocator (Linux mm/percpu.c in user space).
 *
 * cp_alloc_percpu(size, align) returns a handle to `size` bytes that exist once per possible
 * CPU (cp_nr_cpu_ids() copies, declared in corepool/cpu.h). cp_per_cpu_ptr(h, cpu) finds
 * CPU `cpu`'s copy; cp_this_cpu_ptr(h) the calling CPU's. The handle is opaque: use it only
 * through these functions and the C++ wrapper (corepool/percpu.hpp). Every function but
 * cp_free_percpu also accepts handle + offset inside the allocation (e.g. &h->field), which
 * addresses the same offset in each copy.
 *
 * Memory: a CPU that never touches an allocation's chunk (through cp_this_cpu_* or
 * cp_per_cpu_ptr) costs no resident page for it; see docs/percpu.md.
 *
 * What a caller may do with a this-CPU pointer outside a restartable sequence:
 * cp_this_cpu_ptr() returns the copy of the CPU the thread ran on at some instant of the
 * call. The thread may migrate at once, and other threads may run on that CPU, so the
 * pointer is a snapshot of "a CPU's copy", not "my CPU's copy":
 *   - reading it, or updating it with atomic read-modify-write operations (__atomic_*,
 *     C11 atomics), is always correct (the update lands on some CPU's copy; sums stay exact);
 *   - a plain read-modify-write (x = x + 1) can lose updates: another thread may do the same
 *     on the same copy between the load and the store. For exact counters use
 *     cp_this_cpu_add_u64, which runs a restartable sequence (never mix plain `+=` or
 *     atomics with cp_this_cpu_add_u64 on the same u64: its rseq commit is a plain store);
 *   - a copy is never freed while the handle lives, so the pointer stays valid until
 *     cp_free_percpu(handle).
 */
#ifndef COREPOOL_PERCPU_H
#define COREPOOL_PERCPU_H

#include <stddef.h>
#include <stdint.h>

#include <corepool/cpu.h> /* cp_nr_cpu_ids(): highest possible CPU id + 1 */

#ifdef __cplusplus
extern "C" {
#endif

/* Allocates `size` bytes (1 .. 32768) aligned to `align` (a power of two, at most the page
 * size) on every possible CPU; every copy reads as zero.
 * Returns the handle, or NULL with errno EINVAL (bad size or align) or ENOMEM (address space
 * exhausted), and cp_last_error() set. Thread-safe; may block (takes the allocator's lock,
 * may map memory): not for signal handlers (use corepool/percpu_pool.h there). */
void *cp_alloc_percpu(size_t size, size_t align);

/* Frees a handle from cp_alloc_percpu (every CPU's copy). NULL is a no-op.
 * Lock-free and async-signal-safe: it marks the area in a per-chunk pending-free bitmap that
 * the next allocation or the background worker processes; never blocks, never allocates.
 * A pointer that is not a live handle is undefined behaviour (detected double frees of a
 * handle not yet reused are ignored and set cp_last_error()). */
void cp_free_percpu(void *pcp);

/* CPU `cpu`'s copy (cpu < cp_nr_cpu_ids()), writable; marks that CPU as a user of the
 * handle's chunk (its pages may become resident). NULL if `cpu` is out of range.
 * Async-signal-safe, lock-free. */
void *cp_per_cpu_ptr(void *pcp, unsigned cpu);

/* The calling CPU's copy: a snapshot (see the header comment). Async-signal-safe. */
void *cp_this_cpu_ptr(void *pcp);

/* Read-only view of CPU `cpu`'s copy that does not make untouched pages resident: for a CPU
 * that never used the chunk it returns a shared zero area. NULL if `cpu` is out of range.
 * Async-signal-safe. (corepool extension, used by sums.) */
const void *cp_per_cpu_cptr(const void *pcp, unsigned cpu);

/* Adds v to the calling CPU's u64 at `pcp` (8-byte aligned). Exact under preemption,
 * migration and signals: with rseq it is one restartable sequence (no atomic
 * read-modify-write); without rseq it is an atomic add. Lock-free, async-signal-safe. */
void cp_this_cpu_add_u64(void *pcp, uint64_t v);

/* The sum of the u64 at `pcp` over all possible CPUs (a racy snapshot while others add).
 * Async-signal-safe, lock-free; reads only the copies of CPUs that used the chunk. */
uint64_t cp_percpu_sum_u64(void *pcp);

/* Statistics, as the kernel's /sys/kernel/debug/percpu_stats. */
struct cp_percpu_stats {
  uint64_t nr_alloc, nr_dealloc, nr_cur_alloc, nr_max_alloc;
  uint32_t nr_chunks, nr_max_chunks;
  size_t min_alloc_size, max_alloc_size;
  size_t populated_bytes, empty_populated_bytes;
};
/* Fills *out (processes pending frees first). Thread-safe; may block (allocator lock). */
void cp_percpu_get_stats(struct cp_percpu_stats *out);

/* Writes one line per chunk (free bytes, largest free run, fragmentation, allocations,
 * CPUs using it) to file descriptor `fd`. Returns 0 or a negative errno. May block. */
int cp_percpu_dump(int fd);

#ifdef __cplusplus
}
#endif
#endif /* COREPOOL_PERCPU_H */
