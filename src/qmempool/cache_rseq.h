// qmempool's per-CPU cache fast path: the platform's stack sequences (platform/rseq.h) on a
// cache header, with the thread's rseq area passed in (qmempool caches it per thread, so
// the rseq mode is not looked up again) and the popped object returned in a register.
// `static inline`, as platform/rseq.h requires of anything holding a sequence.
#pragma once

#include <cstdint>

#include "platform/rseq.h"

namespace corepool::qmempool_detail {

// One CPU's cache: a header line, then `cap` slots. `top` (the element count) is the commit
// word; `cap` is written once at creation.
struct alignas(64) cache_head {
  intptr_t top;
  intptr_t cap;
};
static_assert(sizeof(cache_head) == 64);

static inline void **cache_slots(cache_head *h) noexcept {
  return reinterpret_cast<void **>(h + 1);
}

}  // namespace corepool::qmempool_detail

namespace corepool::qmempool_detail {
using platform::rseq_abi;
// pop:  if (h->top == 0) FAIL; *out = slots[top - 1]; h->top -= 1.       commit: h->top
static inline int cache_pop(rseq_abi *rs, cache_head *h, void **out, int cpu) noexcept {
  return platform::rseq_fenced_stack_pop(&h->top, &platform::detail::k_never_fenced, cache_slots(h),
                                         out, cpu, rs);
}
// push: if (h->top >= h->cap) FAIL; slots[top] = obj; h->top += 1.       commit: h->top
static inline int cache_push(rseq_abi *rs, cache_head *h, void *obj, int cpu) noexcept {
  return platform::rseq_fenced_stack_push(&h->top, &platform::detail::k_never_fenced,
                                          cache_slots(h), h->cap, obj, cpu, rs);
}
}  // namespace corepool::qmempool_detail
