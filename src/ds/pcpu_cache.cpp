// pcpu_cache: setup, teardown and the remote drain. The protocol is in pcpu_cache.h.
#include "ds/pcpu_cache.h"

#include <cerrno>
#include <new>

#include "inject.h"
#include "platform/cpu.h"
#include "platform/memory.h"
#include "platform/rseq_fence.h"

namespace corepool::ds {

using namespace corepool::platform;

int pcpu_cache::init(unsigned nr_cpus, unsigned cap) noexcept {
  if (cap == 0 || nr_cpus == 0) return -EINVAL;
  if (!rseq_enabled() || !rseq_arch_supported() || !rseq_fence_init()) return -ENOTSUP;
  size_t stride = page_size();
  unsigned shift = static_cast<unsigned>(__builtin_ctzl(stride));  // page sizes are powers of two
  for (; stride < sizeof(stack) + size_t{cap} * sizeof(void *); stride <<= 1) shift++;
  char *mem = static_cast<char *>(os_alloc(stride * nr_cpus, page_size()));  // zeroed
  if (!mem) return -ENOMEM;
  for (unsigned c = 0; c < nr_cpus; c++) {
    int node = cpu_possible(c) ? cpu_to_node(c) : -1;
    if (node >= 0) (void)os_bind_node(mem + c * stride, stride, node);  // a preference
    stack *s = new (mem + c * stride) stack;
    s->top = 0;
    // A CPU that is not possible never runs a thread; keep its stack fenced for good.
    s->fence = cpu_possible(c) ? 0 : 1;
    s->cap = cap;
  }
  nr_cpus_ = nr_cpus;
  cap_ = cap;
  stride_ = stride;
  stride_shift_ = shift;
  stacks_ = reinterpret_cast<stack *>(mem);
  return 0;
}

void pcpu_cache::destroy() noexcept {
  if (!stacks_) return;
  os_release(stacks_, stride_ * nr_cpus_);
  stacks_ = nullptr;
  nr_cpus_ = 0;
}

__attribute__((noinline)) void pcpu_cache::prime_thread() noexcept {
  (void)rseq_registered_area();
}

unsigned pcpu_cache::steal(unsigned cpu, void **out, unsigned n) noexcept {
  if (!stacks_ || cpu >= nr_cpus_ || n == 0) return 0;
  stack *s = at(cpu);
  // Cheap look first: a fence costs a system call. A stale 0 only makes us skip c this time.
  if (__atomic_load_n(&s->top, __ATOMIC_RELAXED) == 0) return 0;
  // S1: take the stack from other stealers. Acquire: the previous stealer's S3 stores.
  intptr_t open = 0;
  if (!__atomic_compare_exchange_n(&s->fence, &open, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
    return 0;
  CP_INJECT("pcpu_cache.steal.fenced");  // a stealer stopped here holds c's stack
  // S2: from the owner sequences. The raised fence (a locked instruction, so globally
  // visible before the system call) is what every later owner sequence fails on.
  if (rseq_fence(cpu) != 0) {
    __atomic_store_n(&s->fence, 0, __ATOMIC_RELEASE);
    return 0;
  }
  // S3: exclusive. The owners' committed stores are visible after the fence (membarrier
  // orders them before its return).
  intptr_t top = __atomic_load_n(&s->top, __ATOMIC_RELAXED);
  intptr_t k = top < static_cast<intptr_t>(n) ? top : static_cast<intptr_t>(n);
  for (intptr_t i = 0; i < k; i++) out[i] = s->slots()[top - k + i];
  __atomic_store_n(&s->top, top - k, __ATOMIC_RELAXED);
  // S4: release: the new top (and our slot reads) happen before an owner sees fence == 0.
  __atomic_store_n(&s->fence, 0, __ATOMIC_RELEASE);
  return static_cast<unsigned>(k);
}

unsigned pcpu_cache::count(unsigned cpu) const noexcept {
  if (!stacks_ || cpu >= nr_cpus_) return 0;
  intptr_t t = __atomic_load_n(&at(cpu)->top, __ATOMIC_RELAXED);
  return t > 0 ? static_cast<unsigned>(t) : 0;
}

}  // namespace corepool::ds
