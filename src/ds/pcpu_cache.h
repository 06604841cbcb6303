// pcpu_cache: a bounded LIFO stack of pointers per CPU, operated by restartable sequences on
// its own CPU and drained from any other thread by fencing.
//
// The fast path a per-CPU pool wants: push and pop on the calling CPU's stack with no atomic
// read-modify-write, one restartable sequence each. What user space adds to the kernel's
// "disable preemption": objects in CPU c's stack must stay reachable from every thread,
// because a pool may be empty everywhere else (the thread that filled c's stack migrated,
// or stopped). So any thread may take objects out of c's stack:
//
//   Owner side (any thread while it runs on CPU c): rseq_stack_* sequences on
//     c's stack. Each reads `fence` inside the sequence and fails if it is raised.
//   Remote side (steal; any thread, any CPU, signal handlers included):
//     S1  CAS fence 0 -> 1. Fails when another stealer holds c: skip c, never wait.
//     S2  rseq_fence(c): afterwards no owner sequence is between its fence check and its
//         commit (it committed, and we see its stores, or it will abort), and every later
//         owner sequence fails its fence check. So `top` and the slots are ours alone.
//     S3  take up to n objects from the top with plain loads/stores, store the new top.
//     S4  store fence = 0 (release: S3's stores are visible to whoever sees fence == 0;
//         an owner sequence loads fence before top, x86 loads are ordered).
//   A stealer stopped between S1 and S4 holds c's stack: owner sequences fail (callers fall
//   back to their slow paths), other stealers skip it. Nothing waits for it; the objects in
//   c's stack are out of reach until it resumes, never lost or duplicated.
//
// Invariant: every object in a stack was put there by exactly one committed push (owner) and
// leaves by exactly one committed pop (owner) or one S3 (stealer), and S3 never overlaps an
// owner commit on the same stack (S1 + S2). Hence nothing is lost or handed out twice.
//
// Availability: needs rseq (x86-64) and the rseq fence (membarrier, Linux 5.10+). Where
// either is missing, init returns -ENOTSUP and callers go without a cache. Threads whose
// rseq_cpu_start() is -1 miss on every push and pop (they may still steal).
#pragma once

#include <atomic>
#include <cstdint>

#include "platform/rseq.h"

namespace corepool::ds {

class pcpu_cache {
 public:
  // One stack of `cap` (>= 1) slots for each possible CPU below nr_cpus. 0; -ENOTSUP when
  // rseq or the fence is unavailable (the cache stays disabled: every fast call misses);
  // -EINVAL for cap 0; -ENOMEM. Not async-signal-safe (maps memory, registers membarrier).
  int init(unsigned nr_cpus, unsigned cap) noexcept;
  // Unmaps the stacks; whatever they held is forgotten (drain first). Quiescent only.
  void destroy() noexcept;

  bool enabled() const noexcept { return stacks_ != nullptr; }
  unsigned capacity() const noexcept { return cap_; }

  // Remote drain (S1-S4 above): takes up to n objects out of CPU `cpu`'s stack. 0 when it is
  // empty, held by another stealer, or cannot be fenced. Lock-free, never waits;
  // async-signal-safe; a system call when the stack is non-empty (about 2 us).
  unsigned steal(unsigned cpu, void **out, unsigned n) noexcept;

  // Objects in CPU `cpu`'s stack (a snapshot; 0 for impossible CPUs or a disabled cache).
  unsigned count(unsigned cpu) const noexcept;

  // Internals, public for the fast paths below (free functions, see there).
  // One per possible CPU, on its node: header line {top, fence, cap}, then cap slots.
  // top: owner sequences' commit word (stealers: S3 only); fence: 0 open, 1 held by a
  // stealer (S1 / S4).
  using stack = platform::rseq_stack;

  // The calling CPU's stack and its id, or nullptr (no rseq for this thread, not primed yet,
  // or disabled). `rs` is the thread's rseq area, read once for the CPU id and the sequence.
  stack *local(int &cpu, platform::rseq_abi *&rs) const noexcept {
    rs = platform::rseq_registered_area_if_known();
    // NULL: no rseq for this thread, or its area is not known yet (see prime_thread()).
    if (__builtin_expect(rs == nullptr, 0)) return nullptr;
    cpu = static_cast<int>(__atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED));
    // nr_cpus_ is 0 while the cache is disabled: every call misses here.
    if (__builtin_expect(static_cast<unsigned>(cpu) >= nr_cpus_, 0)) return nullptr;
    return at(static_cast<unsigned>(cpu));
  }
  stack *at(unsigned cpu) const noexcept {
    char *p = reinterpret_cast<char *>(stacks_) + (size_t{cpu} << stride_shift_);
    if (p == nullptr) __builtin_unreachable();  // only called while enabled (stacks_ != NULL)
    return reinterpret_cast<stack *>(p);
  }

  // Makes the calling thread's rseq area known to the fast paths (registering it in mode
  // `own`). The fast paths miss until a thread's first call of this, so callers run it on
  // their miss path; it stays out of line so that the fast paths need no stack frame.
  // Async-signal-safe.
  static void prime_thread() noexcept;

  stack *stacks_ = nullptr;    // CPU c's stack at stacks_ + (c << stride_shift_) (one mapping)
  size_t stride_ = 0;          // a power of two >= the page size; each CPU's pages on its node
  unsigned stride_shift_ = 0;  // log2(stride_): a shift, not a multiply, on the fast path
  unsigned nr_cpus_ = 0;       // 0 while disabled
  unsigned cap_ = 0;
};

// Fast paths: true / the object / the count on a hit; false / nullptr / 0 on a miss (no rseq
// for this thread or not primed yet, stack full or empty, stack fenced). Lock-free,
// async-signal-safe. Objects are non-NULL pointers: never push NULL.
// `static inline`, not members: a function with a restartable sequence inlined into it must
// not be emitted as a mergeable inline copy (see the linkage note in platform/rseq.h); the
// callers' own functions must follow the same rule.

static inline bool pcpu_cache_push(pcpu_cache &c, void *obj) noexcept {
  for (;;) {
    int cpu;
    platform::rseq_abi *rs;
    pcpu_cache::stack *s = c.local(cpu, rs);
    if (!s) return false;
    int rc = platform::rseq_stack_push(s, obj, cpu, rs);
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
    int rc = platform::rseq_stack_pop(s, &obj, cpu, rs);
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
    int rc = platform::rseq_stack_push_bulk(s, objs, n, cpu, rs);
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
    int rc = platform::rseq_stack_pop_bulk(s, out, n, &k, cpu, rs);
    if (rc == platform::CP_RSEQ_OK) return static_cast<unsigned>(k);
    if (rc == platform::CP_RSEQ_FAIL) return 0;
  }
}

}  // namespace corepool::ds
