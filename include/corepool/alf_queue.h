/* corepool/alf_queue.h - a bounded lock-free multi-producer multi-consumer pointer queue with
 * bulk operations (the "Array-based Lock-Free" queue of Brouer's qmempool RFC), that never
 * waits on another thread.
 *
 * Ring of `size` (a power of two) slots. Each slot holds a pointer and a 64-bit sequence
 * number; two 64-bit indexes, `tail` (producers) and `head` (consumers), only grow. Index i
 * lives in slot i & (size - 1), and that slot's sequence number says whose turn it is:
 *
 *   seq == i          free: the producer that claims index i may write it
 *   seq == i + 1      published: the consumer that claims index i may read it
 *   seq == i + size   released: free for index i + size (the next lap)
 *
 * Enqueue of n (all or nothing): read tail t; if any of the slots t .. t+n-1 is not free,
 * return 0 (the queue is full, or a consumer has not yet released a slot: never wait);
 * claim the n indexes with ONE compare-and-swap tail t -> t+n; write the pointers; publish
 * each slot (seq = i + 1, release). Dequeue of up to n: read head h; count the k <= n
 * consecutive published slots from h (acquire); if k == 0 return 0; claim them with ONE
 * compare-and-swap head h -> h+k; read the pointers; release each slot (seq = i + size,
 * release). A failed compare-and-swap means another thread made progress; the operation
 * retries with the new index. The single-producer / single-consumer forms replace the
 * compare-and-swap by a plain store.
 *
 * Progress guarantee: lock-free, and no operation ever waits for another thread: others
 * return 0 or a shorter burst instead of spinning. A thread preempted, stopped or
 * interrupted by a signal between its claim and its publish hides its own elements and
 * every element enqueued after them into the queue until it resumes (consumers stop at its
 * unpublished slot: FIFO); one stopped between its claim and its release holds its own
 * elements and makes their slots unavailable to enqueues one lap later (less room). No
 * element is lost or returned twice. A caller that needs a stopped producer to hide only
 * its own elements gives the queue one producer at a time. Not waiting is the fix for the
 * RFC's (and the classic DPDK ring's) producer that spins on the tail until earlier
 * producers finish, which can soft-lock-up under preemption.
 *
 * Which operations may run at the same time on one queue:
 *
 *                    mp_enqueue  sp_enqueue  mc_dequeue  sc_dequeue  count/empty  free
 *   mp_enqueue          yes         no          yes         yes          yes        no
 *   sp_enqueue          no          no          yes         yes          yes        no
 *   mc_dequeue          yes         yes         yes         no           yes        no
 *   sc_dequeue          yes         yes         no          no           yes        no
 *   count/empty         yes         yes         yes         yes          yes        no
 *
 * "no" for sp/sc means: the caller guarantees at most one such thread (a signal handler
 * that interrupts the single producer and enqueues counts as a second producer).
 * All enqueue/dequeue/count/empty functions are async-signal-safe (no locks, no
 * allocation, no system calls): a handler may use the queue that the thread it interrupted
 * was using, with mp/mc operations.
 */
#ifndef COREPOOL_ALF_QUEUE_H
#define COREPOOL_ALF_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct cp_alf_queue;

/* Creates a queue of `size` slots into *q. `size` must be a power of two >= 2 (and
 * <= 2^31). Returns 0, -EINVAL (q NULL or bad size; cp_last_error() says which) or -ENOMEM.
 * May allocate; not async-signal-safe. The caller owns *q and frees it with
 * cp_alf_queue_free(). */
int cp_alf_queue_alloc(struct cp_alf_queue **q, uint32_t size);

/* Frees the queue (not the objects still in it). NULL is a no-op. No other operation may
 * run on q at the same time. Not async-signal-safe. */
void cp_alf_queue_free(struct cp_alf_queue *q);

/* Multi-producer bulk enqueue: appends all n pointers in order, or none. Returns n, or 0
 * when they do not all fit now (the queue is full, or a consumer is still releasing the
 * slots). n == 0 returns 0. -EINVAL: q NULL, n < 0, or ptrs NULL with n > 0. Lock-free,
 * never waits, async-signal-safe. The queue holds the pointers, not the objects. */
int cp_alf_mp_enqueue(struct cp_alf_queue *q, void *const *ptrs, int n);

/* Multi-consumer burst dequeue: removes up to n pointers in FIFO order into ptrs[0..k) and
 * returns k (0..n). It stops early at a slot whose producer has not yet published it.
 * -EINVAL: q NULL, n < 0, or ptrs NULL with n > 0. Lock-free, never waits,
 * async-signal-safe. */
int cp_alf_mc_dequeue(struct cp_alf_queue *q, void **ptrs, int n);

/* Single-producer form of cp_alf_mp_enqueue (see the table above): same results, no
 * compare-and-swap. Wait-free, async-signal-safe. */
int cp_alf_sp_enqueue(struct cp_alf_queue *q, void *const *ptrs, int n);

/* Single-consumer form of cp_alf_mc_dequeue: same results, no compare-and-swap.
 * Wait-free, async-signal-safe. */
int cp_alf_sc_dequeue(struct cp_alf_queue *q, void **ptrs, int n);

/* A snapshot: true when no element was claimed-for but not yet claimed-by a consumer at
 * the moment of the read (may be stale as soon as it returns). Claims in progress count
 * as elements. NULL reads as empty. Wait-free, async-signal-safe. */
bool cp_alf_queue_empty(const struct cp_alf_queue *q);

/* A snapshot of the element count, tail - head (0 .. size), including elements whose
 * producer or consumer is still in progress. NULL reads as 0. Wait-free,
 * async-signal-safe. */
unsigned cp_alf_queue_count(const struct cp_alf_queue *q);

#ifdef __cplusplus
}
#endif
#endif /* COREPOOL_ALF_QUEUE_H */
