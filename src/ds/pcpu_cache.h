// pcpu_cache: the per-CPU cache tier of objpool, qmempool and the DPDK driver. A bounded
// LIFO stack of pointers per CPU, operated by restartable sequences on its own CPU, drained
// from any other thread by fencing; and, for threads that cannot run sequences, a second
// stack per CPU under a try-lock.
//
// The fast path a per-CPU pool wants: push and pop on the calling CPU's stack with no atomic
// read-modify-write, one restartable sequence each, no stack frame. What user space adds to
// the kernel's "disable preemption": objects in CPU c's stack must stay reachable from every
// thread, because a pool may be empty everywhere else (the thread that filled c's stack
// migrated, or stopped). So any thread may take objects out of c's stack (a pool created
// with kStealable).
//
// Protocol
//   rseq stack of CPU c {top, fence, cap, slots[cap]} (platform::rseq_stack):
//     O1  owner side, any thread while it runs on CPU c: one rseq_stack_* sequence. It loads
//         `fence` inside the sequence and FAILs if it is raised; its commit store is `top`.
//         Pairs with S2: a sequence that passed its fence check before S1 commits before S2
//         returns (or aborts), and its stores are visible to the stealer after S2.
//     S1  remote side (steal; any thread, any CPU, signal handlers included): CAS fence
//         0 -> 1, acquire. Pairs with S4 of the previous stealer (its S3 stores are visible).
//         Fails when another stealer holds c: skip c, never wait.
//     S2  rseq_fence(c): afterwards no owner sequence is between its fence check and its
//         commit, and every later O1 on c FAILs. So `top` and the slots are ours alone.
//     S3  take up to n objects from the top with plain loads, store the new top.
//     S4  store fence = 0, release. Pairs with O1's fence load in the next owner sequence
//         (x86 loads are ordered: it loads fence before top) and with S1 of the next
//         stealer: both see S3's top.
//   fallback stack of CPU c {lock, top, slots[cap]} (pools created with kFallback), for
//   threads without rseq (rseq off, the TSan build, a failed registration) and for threads
//   whose CPU id has no slot (see I5):
//     L1  exchange lock 0 -> 1, acquire. Pairs with L2 of the previous holder: its top and
//         slot stores are visible. A thread that finds the lock held (another thread, or the
//         code its own signal handler interrupted) misses at once, never waits.
//     L2  store lock = 0, release.
//
// Invariants
//   I1  Every object in a stack (a slot below top) was put there by exactly one committed
//       push (O1, or a push under L1) and leaves by exactly one committed pop (O1), one S3,
//       or one pop under L1. Nothing is lost or handed out twice.
//   I2  An rseq stack is changed by owner sequences of its CPU or by the stealer that holds
//       its fence, never by both at once (S1 + S2); two owner sequences never interleave
//       (platform/rseq.h).
//   I3  A fallback stack is changed only by the holder of its lock. rseq commits are plain
//       stores, so the two stacks of a CPU never share a word.
//   I4  No operation waits for another thread: a held fence or lock is a miss.
//   I5  A CPU id the kernel reports at or above nr_cpus (a possible-CPU mask smaller than the
//       CPUs threads run on) has no rseq stack: every rseq operation of that thread misses,
//       the slow paths use a fallback stack (of platform::current_cpu() modulo nr_cpus).
//   I6  Hiding: a stealer stopped between S1 and S4 holds c's rseq stack (at most cap
//       objects: owner sequences FAIL, callers go to their slow paths, other stealers skip
//       c); a thread stopped holding a fallback lock holds that stack (at most cap objects).
//       Nothing else is ever out of reach, and nothing waits for either.
//
// Concurrency (same stack; different stacks never interact)
//   |                     | owner sequence | steal         | fallback op | count | init/destroy |
//   | owner sequence      | yes (I2)       | yes (S1-S4)   | yes (I3)    | yes   | no           |
//   | steal               |                | yes (one wins)| yes (I3)    | yes   | no           |
//   | fallback op         |                |               | yes (L1)    | yes   | no           |
//   | drain_quiescent     | no             | no            | no          | no    | no           |
//
// Availability: rseq stacks need rseq (x86-64), and for kStealable the rseq fence
// (membarrier, Linux 5.10+). Without them a cache with kFallback runs on its fallback stacks
// alone; one without kFallback is disabled (init returns -ENOTSUP) and every call misses.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "platform/rseq.h"

namespace corepool::ds {

class pcpu_cache {
 public:
  enum : unsigned {
    kStealable = 1u,  // steal() must work: rseq stacks only with the rseq fence
    kFallback = 2u,   // a fallback stack per CPU for threads that miss the rseq stacks
  };

  // Stacks of `cap` (>= 1) slots for each CPU id below nr_cpus. 0; -ENOTSUP when the cache
  // has nothing to run on (no rseq or fence, and no kFallback: every call misses); -EINVAL
  // for cap or nr_cpus 0; -ENOMEM. Not async-signal-safe (maps memory, registers membarrier).
  int init(unsigned nr_cpus, unsigned cap, unsigned flags) noexcept;
  // Unmaps the stacks; whatever they held is forgotten (drain first). Quiescent only.
  void destroy() noexcept;

  // Any stacks at all (rseq or fallback).
  bool enabled() const noexcept { return base_ != nullptr; }
  unsigned capacity() const noexcept { return cap_; }

  // Remote drain (S1-S4 above): takes up to n objects out of CPU `cpu`'s rseq stack. 0 when
  // it is empty, held by another stealer, cannot be fenced, or the cache is not kStealable.
  // Lock-free, never waits; async-signal-safe; a system call when the stack is non-empty
  // (about 2 us).
  unsigned steal(unsigned cpu, void **out, unsigned n) noexcept;

  // Objects in CPU `cpu`'s stacks (a snapshot; 0 for ids without a slot).
  unsigned count(unsigned cpu) const noexcept;

  // Slow paths for any thread, after a fast-path miss (see the free functions below) or on
  // code that has none: make the thread's rseq area known (so that its next fast call can
  // hit), then one sequence on its CPU's rseq stack; a thread without rseq, or whose CPU id
  // has no slot (I5), uses its CPU's fallback stack under the try-lock (kFallback), else
  // misses. Results as for the fast paths: push_bulk is all or nothing, pop_bulk takes up to
  // n. Lock-free, never wait, async-signal-safe.
  bool push_any(void *obj) noexcept;
  void *pop_any() noexcept;
  bool push_bulk_any(void *const *objs, unsigned n) noexcept;
  unsigned pop_bulk_any(void **out, unsigned n) noexcept;

  // Takes up to n objects out of CPU `cpu`'s stacks with plain loads. Only while nothing
  // else runs on the cache (a pool's destroy).
  unsigned drain_quiescent(unsigned cpu, void **out, unsigned n) noexcept;

  // Makes the calling thread's rseq area known to the fast paths (registering it in mode
  // `own`). The fast paths miss until a thread's first call of this, so callers run it on
  // their miss path (the *_any paths do); it stays out of line so that the fast paths need
  // no stack frame. Async-signal-safe.
  static void prime_thread() noexcept;
  // True when the calling thread's fast paths run on one of the rseq stacks now (its rseq
  // area known, the stacks on, its CPU id with a slot): its misses are real misses (a full,
  // empty or fenced stack). False for a thread the stacks cannot serve, whose every call
  // misses. For a pool's miss statistics, after prime_thread(). Async-signal-safe.
  bool serves_thread() const noexcept {
    if (nr_cpus_ == 0) return false;  // the rseq stacks are off: no thread's TLS to read
    int cpu;
    platform::rseq_abi *rs;
    return local(cpu, rs) != nullptr;
  }

  // ---- internals, public for the fast paths below ----
  // Per CPU id c, on its node: rseq stack c at stacks_ + (c << stride_shift_), fallback
  // stack c at fallback_ + (c << stride_shift_); header line, then cap slots.
  using stack = platform::rseq_stack;
  struct alignas(64) fallback_stack {
    std::atomic<uint32_t> lock;  // L1 / L2
    std::atomic<uint32_t> top;   // written under the lock; relaxed loads by count()
    void **slots() noexcept {
      return reinterpret_cast<void **>(reinterpret_cast<char *>(this) + 64);
    }
  };

  // The calling CPU's rseq stack and its id, or nullptr (no rseq for this thread, not primed
  // yet, rseq stacks off, or an id without a slot). `rs` is the thread's rseq area, read
  // once for the CPU id and the sequence.
  stack *local(int &cpu, platform::rseq_abi *&rs) const noexcept {
    rs = platform::rseq_registered_area_if_known();
    // NULL: no rseq for this thread, or its area is not known yet (see prime_thread()).
    if (__builtin_expect(rs == nullptr, 0)) return nullptr;
    cpu = static_cast<int>(std::atomic_ref<uint32_t>(rs->cpu_id).load(std::memory_order_relaxed));
    // I5; and nr_cpus_ is 0 while the rseq stacks are off: every call misses here.
    if (__builtin_expect(static_cast<unsigned>(cpu) >= nr_cpus_, 0)) return nullptr;
    return at(static_cast<unsigned>(cpu));
  }
  stack *at(unsigned cpu) const noexcept {
    char *p = reinterpret_cast<char *>(stacks_) + (size_t{cpu} << stride_shift_);
    if (p == nullptr) __builtin_unreachable();  // only called while enabled (stacks_ != NULL)
    return reinterpret_cast<stack *>(p);
  }

  stack *stacks_ = nullptr;    // rseq stacks; NULL while off (fallback only, or disabled)
  char *fallback_ = nullptr;   // fallback stacks; NULL without kFallback
  unsigned stride_shift_ = 0;  // log2 of a stack's bytes: a shift, not a multiply
  unsigned nr_cpus_ = 0;       // ids with an rseq stack: 0 while they are off
  unsigned nr_ids_ = 0;        // ids with a slot (rseq or fallback)
  unsigned cap_ = 0;
  bool stealable_ = false;
  char *base_ = nullptr;  // the one mapping of both kinds
  size_t bytes_ = 0;

 private:
  fallback_stack *fallback_lock() noexcept;
};

// The remote drain S1-S4 on one platform::rseq_stack, for every tier built on that stack
// (this cache's per-CPU stacks, ds/thread_cache.h's per-thread stacks): takes up to n objects
// from the top of `s`. S2 fences `fence_cpu` (>= 0: a per-CPU stack's CPU), or every CPU
// (kFenceAll: the owner is a thread, which may run anywhere), or nothing (kFenceNone: the
// caller is the stack's owning thread itself, outside any sequence, or no thread owns it).
// 0 when the stack is empty, held by another stealer, or the fence failed. Lock-free,
// async-signal-safe; a system call when it fences a non-empty stack.
enum : int { kFenceAll = -1, kFenceNone = -2 };
unsigned rseq_stack_steal(platform::rseq_stack *s, int fence_cpu, void **out, unsigned n) noexcept;

// Fast paths: true / the object / the count on a hit; false / nullptr / 0 on a miss (no rseq
// for this thread or not primed yet, an id without a slot, stack full or empty, stack
// fenced). Lock-free, async-signal-safe. Objects are non-NULL pointers: never push NULL.
// `static inline`, not members: a function with a restartable sequence inlined into it must
// not be emitted as a mergeable inline copy (see the linkage note in platform/rseq.h); the
// callers' own functions must follow the same rule.

static inline bool pcpu_cache_push(pcpu_cache &c, void *obj) noexcept {
  for (;;) {
    int cpu;
    platform::rseq_abi *rs;
    pcpu_cache::stack *s = c.local(cpu, rs);
    if (!s) return false;
    int rc = platform::rseq_stack_push(s, obj, cpu, rs);  // O1
    if (__builtin_expect(rc == platform::CP_RSEQ_OK, 1)) return true;
    if (rc == platform::CP_RSEQ_FAIL) return false;
    // ABORT: preempted, migrated or signalled; nothing committed: retry on the new CPU.
  }
}

static inline void *pcpu_cache_pop(pcpu_cache &c) noexcept {
  for (;;) {
    int cpu;
    platform::rseq_abi *rs;
    pcpu_cache::stack *s = c.local(cpu, rs);
    if (!s) return nullptr;
    void *obj;
    int rc = platform::rseq_stack_pop(s, &obj, cpu, rs);  // O1
    if (__builtin_expect(rc == platform::CP_RSEQ_OK, 1)) {
      // Stacks hold only what callers pushed, and callers never push NULL (pcpu_cache's
      // contract): telling the compiler lets a caller's "NULL = miss" test fold away.
      if (obj == nullptr) __builtin_unreachable();
      return obj;
    }
    if (rc == platform::CP_RSEQ_FAIL) return nullptr;
  }
}

// All or nothing.
static inline bool pcpu_cache_push_bulk(pcpu_cache &c, void *const *objs, unsigned n) noexcept {
  for (;;) {
    int cpu;
    platform::rseq_abi *rs;
    pcpu_cache::stack *s = c.local(cpu, rs);
    if (!s) return false;
    int rc = platform::rseq_stack_push_bulk(s, objs, n, cpu, rs);  // O1
    if (rc == platform::CP_RSEQ_OK) return true;
    if (rc == platform::CP_RSEQ_FAIL) return false;
  }
}

// Up to n (>= 1) objects.
static inline unsigned pcpu_cache_pop_bulk(pcpu_cache &c, void **out, unsigned n) noexcept {
  for (;;) {
    int cpu;
    platform::rseq_abi *rs;
    pcpu_cache::stack *s = c.local(cpu, rs);
    if (!s) return 0;
    intptr_t k = 0;
    int rc = platform::rseq_stack_pop_bulk(s, out, n, &k, cpu, rs);  // O1
    if (rc == platform::CP_RSEQ_OK) return static_cast<unsigned>(k);
    if (rc == platform::CP_RSEQ_FAIL) return 0;
  }
}

}  // namespace corepool::ds
