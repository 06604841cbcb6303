// pcpu_cache: setup, teardown, the remote drain and the slow paths (rseq stack of a thread
// that missed the fast path, or the fallback stack under its try-lock). The protocol, with
// the labels used below, is in pcpu_cache.h.
#include "ds/pcpu_cache.h"

#include <cerrno>
#include <new>

#include "inject.h"
#include "platform/cpu.h"
#include "platform/memory.h"
#include "platform/rseq_fence.h"
#include "platform/topology.h"

namespace corepool::ds {

using namespace corepool::platform;

namespace {

constexpr int kNoSlot = -2;  // run_rseq: this thread has no rseq stack to run on (I5)

// One owner sequence `op(stack, cpu, rs)` on the calling thread's CPU, retried on ABORT:
// CP_RSEQ_OK, CP_RSEQ_FAIL, or kNoSlot (no rseq for this thread, rseq stacks off, or an id
// without a slot). Registers the thread on its first call (prime).
template <class Op>
int run_rseq(const pcpu_cache &c, Op op) noexcept {
  if (!c.stacks_) return kNoSlot;
  rseq_abi *rs = rseq_registered_area();
  if (!rs) return kNoSlot;
  for (;;) {
    const unsigned cpu = std::atomic_ref<uint32_t>(rs->cpu_id).load(std::memory_order_relaxed);
    if (cpu >= c.nr_cpus_) return kNoSlot;  // I5
    const int r = op(c.at(cpu), static_cast<int>(cpu), rs);
    if (r != CP_RSEQ_ABORT) return r;
    // ABORT: preempted, migrated or signalled; nothing committed: retry on the new CPU.
  }
}

}  // namespace

int pcpu_cache::init(unsigned nr_cpus, unsigned cap, unsigned flags) noexcept {
  if (cap == 0 || nr_cpus == 0) return -EINVAL;
  const bool rseq =
      rseq_enabled() && rseq_arch_supported() && (!(flags & kStealable) || rseq_fence_init());
  const bool fallback = (flags & kFallback) != 0;
  if (!rseq && !fallback) return -ENOTSUP;
  size_t stride = page_size();
  unsigned shift = static_cast<unsigned>(__builtin_ctzl(stride));  // page sizes are powers of two
  for (; stride < sizeof(stack) + size_t{cap} * sizeof(void *); stride <<= 1) shift++;
  const size_t kinds = (rseq ? 1 : 0) + (fallback ? 1 : 0);
  const size_t bytes = stride * nr_cpus * kinds;
  char *mem = static_cast<char *>(os_alloc(bytes, page_size()));  // zeroed
  if (!mem) return -ENOMEM;
  char *rseq_base = rseq ? mem : nullptr;
  char *fallback_base = fallback ? mem + (rseq ? stride * nr_cpus : 0) : nullptr;
  for (unsigned c = 0; c < nr_cpus; c++) {
    const bool possible = cpu_possible(c);
    if (possible)  // a preference, set before the pages are touched
      for (char *base : {rseq_base, fallback_base})
        if (base) (void)os_bind_node(base + c * stride, stride, cpu_to_node(c));
    if (rseq_base) {
      stack *s = new (rseq_base + c * stride) stack;
      s->top = 0;
      // A CPU that is not possible never runs a thread; keep its stack fenced for good.
      s->fence = possible ? 0 : 1;
      s->cap = cap;
    }
    if (fallback_base) {
      auto *f = new (fallback_base + c * stride) fallback_stack;
      f->lock.store(0, std::memory_order_relaxed);
      f->top.store(0, std::memory_order_relaxed);
    }
  }
  base_ = mem;
  bytes_ = bytes;
  stacks_ = reinterpret_cast<stack *>(rseq_base);
  fallback_ = fallback_base;
  stride_shift_ = shift;
  nr_cpus_ = rseq ? nr_cpus : 0;
  nr_ids_ = nr_cpus;
  cap_ = cap;
  stealable_ = rseq && (flags & kStealable);
  return 0;
}

void pcpu_cache::destroy() noexcept {
  if (!base_) return;
  os_release(base_, bytes_);
  base_ = nullptr;
  stacks_ = nullptr;
  fallback_ = nullptr;
  nr_cpus_ = 0;
  nr_ids_ = 0;
}

__attribute__((noinline)) void pcpu_cache::prime_thread() noexcept {
  (void)rseq_registered_area();
}

unsigned pcpu_cache::steal(unsigned cpu, void **out, unsigned n) noexcept {
  if (!stealable_ || cpu >= nr_cpus_ || n == 0) return 0;
  return rseq_stack_steal(at(cpu), static_cast<int>(cpu), out, n);
}

unsigned rseq_stack_steal(rseq_stack *s, int fence_cpu, void **out, unsigned n) noexcept {
  if (n == 0) return 0;
  // Cheap look first: a fence costs a system call. A stale 0 only makes us skip s this time.
  if (std::atomic_ref<intptr_t>(s->top).load(std::memory_order_relaxed) == 0) return 0;
  // S1: take the stack from other stealers. Acquire pairs with S4 of the previous stealer.
  intptr_t open = 0;
  if (!std::atomic_ref<intptr_t>(s->fence).compare_exchange_strong(
          open, 1, std::memory_order_acquire, std::memory_order_relaxed))
    return 0;
  CP_INJECT("pcpu_cache.steal.fenced");  // a stealer stopped here holds the stack (I6)
  // S2: from the owner sequences (pairs with O1). The raised fence (a locked instruction, so
  // globally visible before the system call) is what every later owner sequence fails on.
  const int fenced = fence_cpu >= 0           ? rseq_fence(static_cast<unsigned>(fence_cpu))
                     : fence_cpu == kFenceAll ? rseq_fence_all()
                                              : 0;
  if (fenced != 0) {
    std::atomic_ref<intptr_t>(s->fence).store(0, std::memory_order_release);
    return 0;
  }
  // S3: exclusive. The owners' committed stores are visible after the fence (membarrier
  // orders them before its return).
  const intptr_t top = std::atomic_ref<intptr_t>(s->top).load(std::memory_order_relaxed);
  const intptr_t k = top < static_cast<intptr_t>(n) ? top : static_cast<intptr_t>(n);
  for (intptr_t i = 0; i < k; i++) out[i] = s->slots()[top - k + i];
  std::atomic_ref<intptr_t>(s->top).store(top - k, std::memory_order_relaxed);
  // S4: release: the new top (and our slot reads) happen before an owner or the next
  // stealer sees fence == 0.
  std::atomic_ref<intptr_t>(s->fence).store(0, std::memory_order_release);
  return static_cast<unsigned>(k);
}

unsigned pcpu_cache::count(unsigned cpu) const noexcept {
  unsigned n = 0;
  if (cpu < nr_cpus_) {
    const intptr_t t = std::atomic_ref<intptr_t>(at(cpu)->top).load(std::memory_order_relaxed);
    n += t > 0 ? static_cast<unsigned>(t) : 0;
  }
  if (fallback_ && cpu < nr_ids_)
    n += reinterpret_cast<fallback_stack *>(fallback_ + (size_t{cpu} << stride_shift_))
             ->top.load(std::memory_order_relaxed);
  return n;
}

// L1 on the calling CPU's fallback stack: the stack, now ours; NULL when there is none or
// its lock is held (I4: a miss, never a wait). Any id maps to a stack (I5).
pcpu_cache::fallback_stack *pcpu_cache::fallback_lock() noexcept {
  if (!fallback_) return nullptr;
  unsigned cpu = current_cpu();
  if (cpu >= nr_ids_) cpu %= nr_ids_;
  auto *f = reinterpret_cast<fallback_stack *>(fallback_ + (size_t{cpu} << stride_shift_));
  // L1: acquire pairs with L2 of the previous holder: its top and slot stores are visible.
  if (f->lock.exchange(1, std::memory_order_acquire) != 0) return nullptr;
  CP_INJECT("pcpu_cache.fallback.locked");  // a holder stopped here hides this stack (I6)
  return f;
}

namespace {
// L2: release: our top and slot stores happen before the next holder's L1.
void fallback_unlock(pcpu_cache::fallback_stack *f) noexcept {
  f->lock.store(0, std::memory_order_release);
}
}  // namespace

bool pcpu_cache::push_any(void *obj) noexcept {
  const int r = run_rseq(*this, [&](stack *s, int cpu, rseq_abi *rs) {
    return rseq_stack_push(s, obj, cpu, rs);  // O1
  });
  if (r != kNoSlot) return r == CP_RSEQ_OK;
  fallback_stack *f = fallback_lock();
  if (!f) return false;
  const uint32_t top = f->top.load(std::memory_order_relaxed);
  const bool ok = top < cap_;
  if (ok) {
    f->slots()[top] = obj;
    f->top.store(top + 1, std::memory_order_relaxed);
  }
  fallback_unlock(f);
  return ok;
}

void *pcpu_cache::pop_any() noexcept {
  void *obj = nullptr;
  const int r = run_rseq(*this, [&](stack *s, int cpu, rseq_abi *rs) {
    return rseq_stack_pop(s, &obj, cpu, rs);  // O1
  });
  if (r != kNoSlot) return r == CP_RSEQ_OK ? obj : nullptr;
  fallback_stack *f = fallback_lock();
  if (!f) return nullptr;
  const uint32_t top = f->top.load(std::memory_order_relaxed);
  if (top > 0) {
    obj = f->slots()[top - 1];
    f->top.store(top - 1, std::memory_order_relaxed);
  }
  fallback_unlock(f);
  return obj;
}

bool pcpu_cache::push_bulk_any(void *const *objs, unsigned n) noexcept {
  if (n == 0) return true;
  const int r = run_rseq(*this, [&](stack *s, int cpu, rseq_abi *rs) {
    return rseq_stack_push_bulk(s, objs, n, cpu, rs);  // O1
  });
  if (r != kNoSlot) return r == CP_RSEQ_OK;
  fallback_stack *f = fallback_lock();
  if (!f) return false;
  const uint32_t top = f->top.load(std::memory_order_relaxed);
  const bool ok = n <= cap_ - top;
  if (ok) {
    for (unsigned i = 0; i < n; i++) f->slots()[top + i] = objs[i];
    f->top.store(top + n, std::memory_order_relaxed);
  }
  fallback_unlock(f);
  return ok;
}

unsigned pcpu_cache::pop_bulk_any(void **out, unsigned n) noexcept {
  if (n == 0) return 0;
  intptr_t got = 0;
  const int r = run_rseq(*this, [&](stack *s, int cpu, rseq_abi *rs) {
    return rseq_stack_pop_bulk(s, out, n, &got, cpu, rs);  // O1
  });
  if (r != kNoSlot) return r == CP_RSEQ_OK ? static_cast<unsigned>(got) : 0;
  fallback_stack *f = fallback_lock();
  if (!f) return 0;
  const uint32_t top = f->top.load(std::memory_order_relaxed);
  const uint32_t k = n < top ? n : top;
  for (uint32_t i = 0; i < k; i++) out[i] = f->slots()[top - k + i];
  f->top.store(top - k, std::memory_order_relaxed);
  fallback_unlock(f);
  return k;
}

unsigned pcpu_cache::drain_quiescent(unsigned cpu, void **out, unsigned n) noexcept {
  unsigned got = 0;
  if (cpu < nr_cpus_) {
    stack *s = at(cpu);
    const intptr_t top = std::atomic_ref<intptr_t>(s->top).load(std::memory_order_relaxed);
    const intptr_t k = top < static_cast<intptr_t>(n) ? top : static_cast<intptr_t>(n);
    for (intptr_t i = 0; i < k; i++) out[got++] = s->slots()[top - k + i];
    std::atomic_ref<intptr_t>(s->top).store(top - k, std::memory_order_relaxed);
  }
  if (fallback_ && cpu < nr_ids_ && got < n) {
    auto *f = reinterpret_cast<fallback_stack *>(fallback_ + (size_t{cpu} << stride_shift_));
    const uint32_t top = f->top.load(std::memory_order_relaxed);
    const uint32_t k = n - got < top ? n - got : top;
    for (uint32_t i = 0; i < k; i++) out[got++] = f->slots()[top - k + i];
    f->top.store(top - k, std::memory_order_relaxed);
  }
  return got;
}

}  // namespace corepool::ds
