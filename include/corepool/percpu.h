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
 * Static per-CPU variables: CP_DEFINE_PER_CPU(type, name) at file scope (below) gives
 * `type *name`, a handle like cp_alloc_percpu's, set before main; every function here works
 * on it (and on &name->field) as on a dynamic area.
 *
 * The this_cpu family (cp_this_cpu_<op>_<width>, width u8 / u16 / u32 / u64) updates the
 * calling thread's copy of a naturally aligned field exactly, under preemption, migration
 * and signals: with rseq each is one restartable sequence (no atomic instruction); a thread
 * without rseq uses atomics on the area's fallback copy (cp_per_cpu_fallback_ptr), which
 * no sequence writes. Every copy thus has one kind of writer, so both kinds of threads may
 * use the same field at once. Never write a field with plain stores or your own atomics
 * while this_cpu operations may run on it (a plain commit could overwrite your atomic).
 *
 * Bad input: a `pcp` that is NULL, not inside a live area (handle + offset < size), or not
 * aligned to the width is detected without touching it (lock-free, through a directory of
 * chunk addresses): the function changes nothing, returns 0 / NULL and sets cp_last_error().
 * errno is left alone (these run in signal handlers). A handle already freed is undefined.
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

#include <stdbool.h>
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
 * Misuse: a pointer outside every chunk, or a second free while the first is pending, is
 * ignored with cp_last_error() set; a double free after the first was processed, or a
 * pointer into an area, is ignored when the pending frees are processed (no message). In
 * checked mode (COREPOOL_CHECK=1, docs/ARCHITECTURE.md) every double free, interior pointer,
 * and free of an area a percpu_pool holds is refused at the call: one line on stderr and
 * cp_last_error(). Not detected in any mode: a double free after the range was allocated
 * again (it frees the new allocation). */
void cp_free_percpu(void *pcp);

/* CPU `cpu`'s copy (cpu < cp_nr_cpu_ids()), writable; marks that CPU as a user of the
 * handle's chunk (its pages may become resident). NULL (cp_last_error() set) if `cpu` is
 * out of range or `pcp` is not an area. Async-signal-safe, lock-free, never blocks. */
void *cp_per_cpu_ptr(void *pcp, unsigned cpu);

/* The fallback copy: the one that threads without rseq update while the process runs in
 * rseq mode (unused, zero, in other modes). Read it too when walking all copies of a
 * structure built with the this_cpu operations (the sums do). NULL if `pcp` is not an area.
 * Async-signal-safe, lock-free. */
void *cp_per_cpu_fallback_ptr(void *pcp);

/* The calling CPU's copy: a snapshot (see the header comment). NULL if `pcp` is not an
 * area. Async-signal-safe. */
void *cp_this_cpu_ptr(void *pcp);

/* Read-only view of CPU `cpu`'s copy that does not make untouched pages resident: for a CPU
 * that never used the chunk it returns a shared zero area. cpu == cp_nr_cpu_ids() gives
 * the fallback copy. NULL if `cpu` is out of range or `pcp` is not an area.
 * Async-signal-safe. (corepool extension, used by sums.) */
const void *cp_per_cpu_cptr(const void *pcp, unsigned cpu);

/* ---- the this_cpu family -------------------------------------------------------------
 * For each width W in u8, u16, u32, u64 (type uintW_t), on the calling thread's copy of
 * the field at `pcp` (aligned to its width). All are lock-free, async-signal-safe and never
 * block; a restartable sequence that is preempted, migrated or interrupted by a signal is
 * retried on the new CPU, so each operation takes effect exactly once, on one copy.
 * Arithmetic wraps modulo 2^width. Bad input: see the header comment (returns 0).
 *
 *   cp_this_cpu_read_W(pcp)              the copy's value (one load; no sequence needed)
 *   cp_this_cpu_write_W(pcp, v)          copy = v
 *   cp_this_cpu_add_W(pcp, v)            copy += v     (also sub / inc / dec, inline below)
 *   cp_this_cpu_add_return_W(pcp, v)     copy += v, returns the new value (sub / inc / dec
 *                                        _return inline below)
 *   cp_this_cpu_xchg_W(pcp, v)           copy = v, returns the old value
 *   cp_this_cpu_cmpxchg_W(pcp, old, v)   if copy == old: copy = v; returns the value the
 *                                        copy had (== old: it stored). The copy is the one
 *                                        of the CPU the thread runs on at that instant: a
 *                                        read before it may have seen another CPU's copy.
 *   cp_this_cpu_try_cmpxchg_W(pcp, &old, v)  the same as a bool; on failure *old = value.
 *   cp_percpu_sum_W(pcp)                 sum over every CPU's copy and the fallback copy,
 *                                        modulo 2^width (see "Sums" below).
 *
 * Memory order: read acquire, write release, add_return / xchg / cmpxchg acq_rel, add
 * relaxed, the same with and without rseq.
 *
 * Sums: each copy is read once, with an atomic load, while others may update: the result
 * adds values that each copy had at some instant during the call, not all at one instant.
 * A field that is only ever increased sums to a value between its totals at the call's
 * start and end; with decrements, or a value moved from one CPU's copy to another's, a
 * concurrent sum may see a total that never existed (the move counted twice or not at all).
 * Once the updates happen-before the sum (joined threads, a lock, a release/acquire pair),
 * the sum is exact. Reads only copies that were used (no page fault for the others). */
#define CP__THIS_CPU_DECLARE(W, T)                                         \
  T cp_this_cpu_read_##W(const void *pcp);                                 \
  void cp_this_cpu_write_##W(void *pcp, T v);                              \
  void cp_this_cpu_add_##W(void *pcp, T v);                                \
  T cp_this_cpu_add_return_##W(void *pcp, T v);                            \
  T cp_this_cpu_xchg_##W(void *pcp, T v);                                  \
  T cp_this_cpu_cmpxchg_##W(void *pcp, T old, T v);                        \
  T cp_percpu_sum_##W(const void *pcp);                                    \
  static inline void cp_this_cpu_sub_##W(void *pcp, T v) {                 \
    cp_this_cpu_add_##W(pcp, (T)(0u - v));                                 \
  }                                                                        \
  static inline void cp_this_cpu_inc_##W(void *pcp) {                      \
    cp_this_cpu_add_##W(pcp, 1);                                           \
  }                                                                        \
  static inline void cp_this_cpu_dec_##W(void *pcp) {                      \
    cp_this_cpu_add_##W(pcp, (T) ~(T)0);                                   \
  }                                                                        \
  static inline T cp_this_cpu_sub_return_##W(void *pcp, T v) {             \
    return cp_this_cpu_add_return_##W(pcp, (T)(0u - v));                   \
  }                                                                        \
  static inline T cp_this_cpu_inc_return_##W(void *pcp) {                  \
    return cp_this_cpu_add_return_##W(pcp, 1);                             \
  }                                                                        \
  static inline T cp_this_cpu_dec_return_##W(void *pcp) {                  \
    return cp_this_cpu_add_return_##W(pcp, (T) ~(T)0);                     \
  }                                                                        \
  static inline bool cp_this_cpu_try_cmpxchg_##W(void *pcp, T *old, T v) { \
    T seen = cp_this_cpu_cmpxchg_##W(pcp, *old, v);                        \
    if (seen == *old) return true;                                         \
    *old = seen;                                                           \
    return false;                                                          \
  }
CP__THIS_CPU_DECLARE(u8, uint8_t)
CP__THIS_CPU_DECLARE(u16, uint16_t)
CP__THIS_CPU_DECLARE(u32, uint32_t)
CP__THIS_CPU_DECLARE(u64, uint64_t)
#undef CP__THIS_CPU_DECLARE

/* ---- static per-CPU variables --------------------------------------------------------
 *   CP_DEFINE_PER_CPU(struct stats, g_stats);        at file scope, one definition
 *   CP_DECLARE_PER_CPU(struct stats, g_stats);       in a header, for other files
 *   cp_this_cpu_inc_u64(&g_stats->packets);          from the first line of main, and in
 *   uint64_t n = cp_percpu_sum_u64(&g_stats->packets);  signal handlers
 *
 * `name` is a `type *` handle (never dereference it: use the functions above). One zeroed
 * copy of `type` per possible CPU (plus the fallback copy), at most 32760 bytes, alignment
 * at most 4096. `static CP_DEFINE_PER_CPU(...)` makes the handle file-local.
 *
 * When it is set: a load-time constructor of priority 101, emitted by the macro, reserves
 * the space of every static per-CPU variable of the module (executable or shared object),
 * packed together in as few areas as fit, and sets the handles. That runs before main,
 * before the module's constructors of default priority, and for a shared object opened
 * with dlopen before dlopen returns. First use in a signal handler is therefore a plain
 * per-CPU access: no allocation, no lock. Before that moment (a constructor of another
 * module that runs earlier) the handle is NULL and the functions answer as for bad input.
 * The process aborts if the memory cannot be reserved at load time. The variables are never
 * freed: do not pass them to cp_free_percpu (it rejects them as not an allocation's start);
 * a shared object unloaded with dlclose leaves its copies allocated (opening it again gives
 * new, zeroed ones). In C++, `CP_DEFINE_PER_CPU_CXX` (corepool/percpu.hpp) gives the typed
 * corepool::static_percpu<T> form. */
struct cp_percpu_static_var {
  void *handle;   /* address of the handle variable (a `type *`), written at load time */
  uint32_t size;  /* sizeof(type) */
  uint32_t align; /* alignment of type */
};
/* Reserves the variables [begin, end) of one module (those not done yet) and sets their
 * handles. Called by the constructors CP_DEFINE_PER_CPU emits; idempotent; takes the
 * allocator lock (not for signal handlers). Returns 0, or -EINVAL (cp_last_error() set) when
 * begin or end is NULL or end < begin; aborts the process on ENOMEM. */
int cp_percpu_static_init(struct cp_percpu_static_var *begin, struct cp_percpu_static_var *end);

/* The module's own table (section cp_percpu_vars; the linker defines its bounds). */
extern struct cp_percpu_static_var __start_cp_percpu_vars[] __attribute__((visibility("hidden")));
extern struct cp_percpu_static_var __stop_cp_percpu_vars[] __attribute__((visibility("hidden")));

#ifdef __cplusplus
#define CP__ALIGNOF(t) alignof(t)
#define CP__STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define CP__ALIGNOF(t) _Alignof(t)
#define CP__STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif
/* Registers the handle at `slot` (of a variable of `type`) under the unique tag `tag`. */
#define CP__PER_CPU_REGISTER(type, slot, tag)                                                \
  CP__STATIC_ASSERT(sizeof(type) <= 32760 && CP__ALIGNOF(type) <= 4096,                      \
                    "a static per-CPU variable is at most 32760 bytes, aligned to <= 4096"); \
  static struct cp_percpu_static_var cp__pcpu_var_##tag                                      \
      __attribute__((section("cp_percpu_vars"), used, aligned(8))) = {                       \
          slot, (uint32_t)sizeof(type), (uint32_t)CP__ALIGNOF(type)};                        \
  __attribute__((constructor(101))) static void cp__pcpu_init_##tag(void) {                  \
    cp_percpu_static_init(__start_cp_percpu_vars, __stop_cp_percpu_vars);                    \
  }                                                                                          \
  struct cp__pcpu_end_##tag /* swallows the caller's semicolon */
#define CP_DEFINE_PER_CPU(type, name) \
  type *name;                         \
  CP__PER_CPU_REGISTER(type, &name, name)
#define CP_DECLARE_PER_CPU(type, name) extern type *name

/* Statistics, as the kernel's /sys/kernel/debug/percpu_stats. */
struct cp_percpu_stats {
  uint64_t nr_alloc, nr_dealloc, nr_cur_alloc, nr_max_alloc;
  uint32_t nr_chunks, nr_max_chunks;
  size_t min_alloc_size, max_alloc_size;
  size_t populated_bytes, empty_populated_bytes;
};
/* Fills *out (processes pending frees first). Thread-safe; may block (allocator lock).
 * out NULL: does nothing and sets cp_last_error(). */
void cp_percpu_get_stats(struct cp_percpu_stats *out);

/* Writes one line per chunk (free bytes, largest free run, fragmentation, allocations,
 * CPUs using it) to file descriptor `fd`. Returns 0 or a negative errno. May block. */
int cp_percpu_dump(int fd);

#ifdef __cplusplus
}
#endif
#endif /* COREPOOL_PERCPU_H */
