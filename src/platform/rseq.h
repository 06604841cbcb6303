// Restartable sequences: the per-CPU critical-section primitives of corepool.
//
// Internal header (platform layer). Algorithms use only what is declared here; no
// #ifdef __x86_64__ outside src/platform/.
//
// Protocol. A caller reads `cpu = rseq_cpu_start()`. If it is >= 0 the calling thread has a
// registered rseq area and `cpu` is the CPU it ran on; the caller computes the address of
// that CPU's data and calls one of the rseq_* operations below with `cpu`. Each operation
// runs as one restartable sequence:
//
//   start:  publish the sequence descriptor in the thread's rseq area
//           if (area.cpu_id != cpu) goto abort        // migrated since cpu_start
//           load / compare / speculative stores       // no effect visible to other CPUs
//                                                     // that matters until the commit
//           single commit store                       // the one store that publishes
//   post_commit:
//   abort:  return CP_RSEQ_ABORT                      // the kernel jumps here on
//                                                     // preemption, migration or signal
//
// Return codes (all operations):
//   CP_RSEQ_OK     the commit store happened: the operation took effect exactly once.
//   CP_RSEQ_FAIL   the precondition did not hold (compare failed, stack full/empty);
//                  nothing was stored.
//   CP_RSEQ_ABORT  the thread was preempted, migrated or signalled, or `cpu` is not the
//                  current CPU: nothing was committed. Re-read the CPU and retry.
//
// Invariant the pools build on: for a word W that only rseq operations on CPU c modify,
// every modification of W is one of these committed sequences, and two of them never
// interleave (the kernel aborts a sequence whenever another thread could run on c). A
// signal handler that runs a sequence on the same thread aborts the interrupted one first.
// rseq operations are NOT atomic with respect to other CPUs: a word also written from
// another CPU (CAS, fetch_add) must not be updated with these plain commit stores.
//
// Linkage: every operation is `static inline`, and so must be every function an operation
// is inlined into that can be emitted in more than one object file (an `inline` function or
// a template): the sequence's descriptor in section __rseq_cs points into the code, and the
// linker discards duplicate copies of inline functions, leaving descriptors that point into
// discarded sections.
//
// When rseq_cpu_start() returns -1 the thread cannot use rseq (process mode getcpu, or a
// thread whose registration failed); the algorithm must take its fallback path, and that
// path must stay correct when other threads concurrently use the rseq path.
#pragma once

#include <atomic>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "platform/glibc_rseq.h"

namespace corepool::platform {

enum : int { CP_RSEQ_OK = 0, CP_RSEQ_FAIL = 1, CP_RSEQ_ABORT = -1 };

// The kernel's struct rseq (ABI v0, 32 bytes). Field layout is fixed by the kernel ABI.
struct alignas(32) rseq_abi {
  uint32_t cpu_id_start;
  uint32_t cpu_id;  // (uint32_t)-1 uninitialised, (uint32_t)-2 registration failed
  uint64_t rseq_cs;
  uint32_t flags;
  uint32_t node_id;
  uint32_t mm_cid;
  uint32_t padding;
};

enum class rseq_mode : int { off = 0, glibc = 1, own = 2 };

namespace detail {
// A rseq_mode value, written once when the mode is chosen (load time), then read-only.
extern int g_mode;
extern __thread rseq_abi g_own_area __attribute__((tls_model("initial-exec")));
extern const rseq_abi g_off_area;  // cpu_id = -1 forever
int rseq_cpu_start_slow() noexcept;
// This thread's rseq area once the thread was seen registered (cpu_id >= 0), else NULL.
extern __thread rseq_abi *t_registered_area __attribute__((tls_model("initial-exec")));
rseq_abi *rseq_registered_area_slow() noexcept;

inline char *thread_pointer() noexcept {
#if defined(__x86_64__)
  char *tp;
  asm("movq %%fs:0, %0" : "=r"(tp));
#else
  char *tp = static_cast<char *>(__builtin_thread_pointer());
#endif
  return tp;
}

inline rseq_abi *glibc_area() noexcept {
  return reinterpret_cast<rseq_abi *>(thread_pointer() + glibc_rseq_offset());
}
}  // namespace detail

// This thread's rseq area (glibc's, ours, or a constant one that reads as "unregistered").
inline rseq_abi *rseq_area() noexcept {
  switch (static_cast<rseq_mode>(std::atomic_ref(detail::g_mode).load(std::memory_order_relaxed))) {
    case rseq_mode::glibc:
      return detail::glibc_area();
    case rseq_mode::own:
      return &detail::g_own_area;
    default:
      return const_cast<rseq_abi *>(&detail::g_off_area);
  }
}

// The CPU to run a sequence on, or -1 when this thread cannot use rseq (see above).
// Registers corepool's own area on a thread's first call in mode `own`. Async-signal-safe.
static inline int rseq_cpu_start() noexcept {
  int cpu = static_cast<int>(std::atomic_ref(rseq_area()->cpu_id).load(std::memory_order_relaxed));
  if (__builtin_expect(cpu >= 0, 1)) return cpu;
  return detail::rseq_cpu_start_slow();
}

// This thread's rseq area if the thread can run sequences, else NULL (process mode off, or
// this thread's registration failed). One initial-exec TLS load once the thread was seen
// registered: the rseq mode is fixed at load time, so a registered thread's area never
// changes. Registers corepool's own area on a thread's first call in mode `own`.
// Async-signal-safe. Callers still read area->cpu_id and pass it to the sequence.
static inline rseq_abi *rseq_registered_area() noexcept {
  rseq_abi *rs = detail::t_registered_area;
  if (__builtin_expect(rs != nullptr, 1)) return rs;
  return detail::rseq_registered_area_slow();
}
// The same without the slow path: NULL until rseq_registered_area() (or the slow path of a
// caller) saw this thread registered. For fast paths that want no call in them; their slow
// path must call rseq_registered_area() so that the next call finds the area.
static inline rseq_abi *rseq_registered_area_if_known() noexcept {
  return detail::t_registered_area;
}

// True when this build can run the sequences below on this architecture (defined by the
// architecture header: x86-64 yes; others no, until they get their own sequences).
constexpr bool rseq_arch_supported() noexcept;

// ---- operations: each is one restartable sequence on CPU `cpu` (see protocol above) -----

// if (*v != expect) FAIL; *v = newv.                                       commit: *v
static inline int rseq_cmpeqv_storev(intptr_t *v, intptr_t expect, intptr_t newv, int cpu) noexcept;
// *v += count.                                                             commit: *v
// The second form takes the thread's rseq area (the one `cpu` was read from).
static inline int rseq_addv(intptr_t *v, intptr_t count, int cpu) noexcept;
static inline int rseq_addv(intptr_t *v, intptr_t count, int cpu, rseq_abi *rs) noexcept;
// Per-CPU array stack as the stack sequences address it: one header line, then `cap` slots.
// `top` (the element count) is the commit word of every sequence; `cap` is written before
// first use. `fence` is 0 while the stack is open; while it is non-zero a remote thread owns
// the stack (see platform/rseq_fence.h) and every sequence FAILs, storing nothing. A stack
// that no remote thread ever takes over keeps fence == 0 (one compare on the header line).
// Every header field sits at a fixed offset from one pointer, so a sequence needs no more
// registers than the header, the item and a scratch register: the callers' fast paths stay
// frame-free. The operations take the thread's rseq area (the one `cpu` was read from), so
// that a caller reads it once.
struct alignas(64) rseq_stack {
  intptr_t top;
  intptr_t fence;
  intptr_t cap;
  intptr_t pad[5];
  void **slots() noexcept { return reinterpret_cast<void **>(this + 1); }
};
static_assert(sizeof(rseq_stack) == 64, "the sequences address the slots at header + 64");
// push: if (fence || top >= cap) FAIL; slots[top] = item; top += 1.         commit: top
static inline int rseq_stack_push(rseq_stack *s, void *item, int cpu, rseq_abi *rs) noexcept;
// pop:  if (fence || top == 0) FAIL; *out = slots[top - 1]; top -= 1.       commit: top
static inline int rseq_stack_pop(rseq_stack *s, void **out, int cpu, rseq_abi *rs) noexcept;
// push_bulk (all or nothing): if (fence || n < 0 || top + n > cap) FAIL;
//           slots[top .. top+n) = items[0 .. n); top += n.                  commit: top
static inline int rseq_stack_push_bulk(rseq_stack *s, void *const *items, intptr_t n, int cpu,
                                       rseq_abi *rs) noexcept;
// pop_bulk (up to n, n >= 1): k = min(n, top); if (fence || k == 0) FAIL;
//           out[0 .. k) = slots[top-k .. top); top -= k; *popped = k.       commit: top
static inline int rseq_stack_pop_bulk(rseq_stack *s, void **out, intptr_t n, intptr_t *popped,
                                      int cpu, rseq_abi *rs) noexcept;

// The same four operations on a stack that belongs to one thread instead of one CPU (a
// thread's own cache): no CPU compare. The kernel aborts a sequence on preemption, migration
// and signal delivery wherever the thread runs, and rseq_fence_all() (platform/rseq_fence.h)
// aborts one in progress on any CPU; a remote thread takes the stack over as for a per-CPU
// stack (raise `fence`, then that fence). Only the owning thread runs these on `s`, with its
// own registered area `rs` (rseq_registered_area()): a thread whose rseq is not registered
// must never run them, nothing would abort them.
static inline int rseq_thread_stack_push(rseq_stack *s, void *item, rseq_abi *rs) noexcept;
static inline int rseq_thread_stack_pop(rseq_stack *s, void **out, rseq_abi *rs) noexcept;
static inline int rseq_thread_stack_push_bulk(rseq_stack *s, void *const *items, intptr_t n,
                                              rseq_abi *rs) noexcept;
static inline int rseq_thread_stack_pop_bulk(rseq_stack *s, void **out, intptr_t n,
                                             intptr_t *popped, rseq_abi *rs) noexcept;

// Ring of mask + 1 slots (mask + 1 a power of two) with a producer index `*tail` modified
// only by these sequences on `cpu`, and a consumer index `*head` that any CPU may advance
// (by CAS, never past *tail). Indices are free-running; slot of index i is slots[i & mask].
// ring_push:      if (*tail - *head > mask) FAIL;
//                 slots[*tail & mask] = item; *tail += 1.                  commit: *tail
static inline int rseq_ring_push(intptr_t *tail, const intptr_t *head, void **slots, intptr_t mask,
                                 void *item, int cpu) noexcept;
// ring_push_bulk (all or nothing): if (n < 0 || *tail + n - *head > mask + 1) FAIL;
//                 slots[(*tail + i) & mask] = items[i] for i < n; *tail += n. commit: *tail
static inline int rseq_ring_push_bulk(intptr_t *tail, const intptr_t *head, void **slots,
                                      intptr_t mask, void *const *items, intptr_t n,
                                      int cpu) noexcept;

// ---- per-CPU word operations (the this_cpu family of the per-CPU allocator) -------------
// T is uint8_t, uint16_t, uint32_t or uint64_t; `v` is naturally aligned and is modified only
// by these sequences on `cpu` (see the invariant above); `rs` is the thread's rseq area (the
// one `cpu` was read from). Each is one sequence whose single commit is the store to *v; the
// value outputs are written only when the result is CP_RSEQ_OK.
// store:       *v = newv.                                                  commit: *v
template <class T>
static inline int rseq_store(T *v, T newv, int cpu, rseq_abi *rs) noexcept;
// add:         *v += count (modulo 2^width).                               commit: *v
template <class T>
static inline int rseq_add(T *v, T count, int cpu, rseq_abi *rs) noexcept;
// add_return:  *res = *v + count; *v = *res.                               commit: *v
template <class T>
static inline int rseq_add_return(T *v, T count, T *res, int cpu, rseq_abi *rs) noexcept;
// xchg:        *old = *v; *v = newv.                                       commit: *v
template <class T>
static inline int rseq_xchg(T *v, T newv, T *old, int cpu, rseq_abi *rs) noexcept;
// cmpxchg:     *old = *v; if (*old == expect) *v = newv.                   commit: *v
//              OK whether or not it stored: the caller compares *old with expect. A compare
//              that fails leaves the sequence without a store (it jumps past the commit).
template <class T>
static inline int rseq_cmpxchg(T *v, T expect, T newv, T *old, int cpu, rseq_abi *rs) noexcept;

template <class T>
inline constexpr bool rseq_word_type = std::is_same_v<T, uint8_t> || std::is_same_v<T, uint16_t> ||
                                       std::is_same_v<T, uint32_t> || std::is_same_v<T, uint64_t>;

}  // namespace corepool::platform

#if defined(__x86_64__)
#include "platform/rseq_x86_64.h"
#else
#include "platform/rseq_unsupported.h"
#endif
