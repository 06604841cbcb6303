// thread_cache: the thread tier of objpool and qmempool. A small LIFO stack of object
// pointers per (thread, pool), in front of the pool's per-CPU cache (ds/pcpu_cache.h).
//
// Why: every per-CPU fast path finds its CPU's data through the CPU id and checks, inside
// its sequence, that it still runs there. A thread's own stack needs neither: the calling
// thread reaches it through one initial-exec TLS load, and its restartable sequence
// (platform::rseq_thread_stack_*) has no CPU to compare. Still no atomic instruction.
//
// What it must keep from the per-CPU design: objects in a thread's stack stay reachable from
// every thread (objpool's pop must find every free object, the owner may stop forever), and
// a signal handler that interrupts a stack operation on the same thread never sees it half
// done. Both come from the stack being operated by restartable sequences only: the kernel
// aborts a sequence when its thread is preempted, migrated or signalled, and a stealer
// fences every CPU (platform::rseq_fence_all) after raising the stack's `fence`.
//
// Protocol (the stack is a platform::rseq_stack {top, fence, cap, slots[cap]})
//   T1  owner side, the owning thread only (signal handlers on it included): one
//       rseq_thread_stack_* sequence. It loads `fence` inside the sequence and FAILs if it
//       is raised; its commit store is `top`. Pairs with S2 exactly as pcpu_cache's O1.
//   S1-S4  remote side: ds::rseq_stack_steal (pcpu_cache.h) with kFenceAll: CAS fence 0 -> 1
//       (acquire), rseq_fence_all(), take from the top with plain loads, fence = 0
//       (release). Used by steal() (a pool that ran dry), the idle sweep, and with
//       kFenceNone by the exiting owner on its own stack (it runs no sequence then).
//   R1  registry lock (one per process, a futex mutex): attach (try-lock only: a thread
//       that finds it held, perhaps by the code its own signal handler interrupted, goes on
//       without its stack this time), thread exit, destroy and fork. Acquire / release
//       pairs: every change of a stack's owner and of a thread's TLS entry is made under it.
//   R2  publication: a new stack is linked at the head of its pool's list with a release
//       store of `head`; stealers walk the list with an acquire load of `head`. Stacks stay
//       linked and mapped until the pool's destroy.
//
// Invariants
//   H1  Every object in a stack (a slot below top) was put there by one committed T1 push
//       and leaves by one committed T1 pop, one S3, or the quiescent drain of destroy.
//   H2  A stack is changed by its owner's sequences or by the holder of its fence, never by
//       both at once (S1 + S2, as pcpu_cache I2).
//   H3  A thread's TLS entry for a pool is NULL or points at a stack of that pool whose
//       owner is that thread; it is written only by that thread or under R1 by destroy (a
//       pool's destroy runs when no thread uses the pool: the contract of the pools).
//   H4  A stack without owner (its thread exited, or did not survive a fork) keeps its
//       objects reachable: steal() takes them, and the next thread to attach adopts the
//       stack with what it holds.
//   H5  Hiding: a thread stopped anywhere inside a tier operation hides at most what its
//       own stack holds, plus the objects that operation has in hand (at most one refill),
//       and only until a stealer fences it: the stopped sequence aborts when it resumes.
//       A stealer stopped between S1 and S4 holds that one stack (as pcpu_cache I6).
//       Nothing waits for either: a fenced stack is a miss, the pool goes on below.
//   H6  A stack is attached only to a thread whose rseq area is registered (a sequence on
//       an unregistered thread would never abort).
//
// Concurrency (same pool; "no": excluded by the pools' contract)
//   |             | owner op  | steal          | attach    | thread exit | destroy   |
//   | owner op    | own (H2)  | yes (S1-S4)    | yes       | -           | no        |
//   | steal       |           | yes (one wins) | yes (R2)  | yes         | no        |
//   | attach      |           |                | yes (R1)  | yes (R1)    | no        |
//   | thread exit |           |                |           | yes (R1)    | yes (R1)  |
//
// Availability: the tier needs rseq sequences on this architecture (x86-64), the rseq fence
// (membarrier, Linux 5.10+) and an allocation-free thread-exit hook
// (platform::thread_exit_hook_init). Without them init returns -ENOTSUP and the pool runs
// without the tier (COREPOOL_RSEQ=0, the TSan build, aarch64 today). At most
// kThreadCacheSlots pools of a process have the tier at once; later ones get -ENOSPC and
// run without it.
//
// Memory: per thread and pool that uses it, 128 + 8 x capacity bytes (a bookkeeping line,
// the stack header, the slots), carved from chunks the pool maps; plus, per thread,
// 8 x (kThreadCacheSlots + 2) bytes of static TLS (detail::thread_tier).
#pragma once

#include <atomic>
#include <cstdint>

#include "ds/pcpu_cache.h"
#include "platform/rseq.h"

namespace corepool::ds {

struct thread_cache_chunk;
inline constexpr unsigned kThreadCacheSlots = 16;
inline constexpr unsigned kThreadCacheMax = 1024;  // largest capacity
inline constexpr unsigned kThreadCacheUnitMax = 128;  // largest refill / spill unit

namespace detail {
// The calling thread's tier, one initial-exec TLS block, so that a fast path finds both
// words from one TLS address: `area`, the thread's registered rseq area, written before its
// first stack entry and never changed after (a registered thread's area is fixed, H6);
// `stacks`, its stack for each pool slot, NULL: none (yet). Entry kThreadCacheSlots is always
// NULL (the slot of a tier that is off).
struct thread_tier {
  platform::rseq_abi *area;
  platform::rseq_stack *stacks[kThreadCacheSlots + 1];
};
extern __thread thread_tier t_tier __attribute__((tls_model("initial-exec")));
}  // namespace detail

class thread_cache {
 public:
  // Where objects go below the tier (a stack that overflowed, an exiting thread's stack, an
  // idle stack, destroy's drain) and come from (a refill): the pool's own path without the
  // tier. sink takes every object; source returns up to n (0: the pool is empty).
  using sink_fn = void (*)(void *ctx, void *const *objs, unsigned n);
  using source_fn = unsigned (*)(void *ctx, void **out, unsigned n);

  // `cap` objects per thread (1..kThreadCacheMax). `unit` (1..kThreadCacheUnitMax): the most
  // objects one refill asks of source and one spill gives to sink, the pool's own refill
  // unit, so that a thread that only gets (or only puts) pays the pool's cost per batch
  // below the tier once per that many objects, as without the tier; a stack moves
  // min(unit, cap / 2 + 1) at a time. 0; -ENOTSUP (see Availability), -ENOSPC (every slot
  // taken), -EINVAL, -ENOMEM. Not async-signal-safe.
  int init(unsigned cap, unsigned unit, sink_fn sink, source_fn source, void *ctx) noexcept;
  // Detaches every thread's stack and unmaps them. drain: hand what they hold to sink
  // first; else it is forgotten. Only while no thread uses the pool (threads may be
  // exiting). May block (R1). Idempotent.
  void destroy(bool drain) noexcept;

  bool enabled() const noexcept { return slot_ < kThreadCacheSlots; }
  unsigned capacity() const noexcept { return enabled() ? cap_ : 0; }

  // Slow paths after a fast-path miss (attach the thread's stack on its first call). pop:
  // refill one batch from source, keep one; NULL when source has nothing. push: makes
  // room by moving a batch of the stack to sink, or sinks obj; never fails: returns 0 (what a
  // pool's push returns, so that its fast path ends in a tail call). Lock-free (attach only
  // try-locks), async-signal-safe; a batch is copied through the caller's stack (8 x unit
  // bytes, 1 KiB at most, plus what sink or source use).
  void *pop_slow() noexcept;
  int push_slow(void *obj) noexcept;

  // Takes up to n objects out of other threads' stacks (S1-S4, a system call per non-empty
  // stack). Lock-free, async-signal-safe.
  unsigned steal(void **out, unsigned n) noexcept;
  // Objects in every thread's stack (a snapshot).
  unsigned count() const noexcept;

  // ---- internals, public for the fast paths and the registry ----
  struct node;
  unsigned slot_ = kThreadCacheSlots;  // index into t_tier.stacks; kThreadCacheSlots: off
  unsigned cap_ = 0;
  unsigned batch_ = 0;  // min(unit, cap / 2 + 1)
  sink_fn sink_ = nullptr;
  source_fn source_ = nullptr;
  void *ctx_ = nullptr;
  std::atomic<node *> head_{nullptr};       // R2
  std::atomic<uint64_t> last_sweep_ns_{0};  // idle sweep: when the last one ran
  uint64_t idle_ns_ = 1000000000;           // a stack unmoved this long is flushed
  thread_cache_chunk *chunks_ = nullptr;    // under R1
  platform::rseq_stack *attach() noexcept;
  void sweep_idle() noexcept;
};

// The fast paths: one restartable sequence on the calling thread's stack (T1), on a miss
// (tier off, no stack yet, full or empty, fenced) what `miss()` returns. Async-signal-safe.
// `static` for the linkage rule of platform/rseq.h.
template <class Miss>
static inline void *thread_cache_pop_or(const thread_cache &c, Miss miss) noexcept {
  // (t_tier by name, not through a reference: UBSan's null check of a TLS address reads
  // flags that the linker's initial-exec relaxation, add -> lea, no longer sets.)
  platform::rseq_stack *s = detail::t_tier.stacks[c.slot_];
  if (__builtin_expect(s == nullptr, 0)) return miss();
  // The entry before the area: a handler that attaches this thread's first stack in between
  // writes the area first (attach). Non-NULL from here on (H6).
  std::atomic_signal_fence(std::memory_order_acquire);
  for (;;) {
    void *obj;
    const int rc = platform::rseq_thread_stack_pop(s, &obj, detail::t_tier.area);  // T1
    if (__builtin_expect(rc == platform::CP_RSEQ_OK, 1)) return obj;
    if (rc == platform::CP_RSEQ_FAIL) return miss();
    // ABORT: preempted or signalled; nothing committed: retry.
  }
}

// `hit` on a hit.
template <class R, class Miss>
static inline R thread_cache_push_or(const thread_cache &c, void *obj, R hit, Miss miss) noexcept {
  platform::rseq_stack *s = detail::t_tier.stacks[c.slot_];
  if (__builtin_expect(s == nullptr, 0)) return miss();
  std::atomic_signal_fence(std::memory_order_acquire);  // (as in pop)
  for (;;) {
    const int rc = platform::rseq_thread_stack_push(s, obj, detail::t_tier.area);  // T1
    if (__builtin_expect(rc == platform::CP_RSEQ_OK, 1)) return hit;
    if (rc == platform::CP_RSEQ_FAIL) return miss();
  }
}

// The object / true on a hit; NULL / false on a miss.
static inline void *thread_cache_pop(const thread_cache &c) noexcept {
  return thread_cache_pop_or(c, [] { return static_cast<void *>(nullptr); });
}
static inline bool thread_cache_push(const thread_cache &c, void *obj) noexcept {
  return thread_cache_push_or(c, obj, true, [] { return false; });
}

// The pools' calls (tier on): a hit, else a tail call to the slow path. get: NULL only when
// the pool has nothing; put: never fails, returns 0.
static inline void *thread_cache_get(thread_cache &c) noexcept {
  return thread_cache_pop_or(c, [&c] { return c.pop_slow(); });
}
static inline int thread_cache_put(thread_cache &c, void *obj) noexcept {
  return thread_cache_push_or(c, obj, 0, [&c, obj] { return c.push_slow(obj); });
}

// The capacity COREPOOL_THREAD_CACHE asks for every pool of the process (read once, at
// load time): 0 when unset, 0 or not a number; capped at kThreadCacheMax.
unsigned thread_cache_env_capacity() noexcept;

}  // namespace corepool::ds
