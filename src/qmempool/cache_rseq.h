// qmempool's per-CPU cache fast path as restartable sequences on a cache header.
//
// The same protocol as platform/rseq.h (one sequence, single commit store, CP_RSEQ_OK /
// FAIL / ABORT), with two differences that matter on a path of a dozen instructions:
//   - the caller passes the thread's rseq area (qmempool caches it per thread), so the
//     rseq mode is not looked up again inside the sequence;
//   - the cache header {top, cap} and the slots that follow it are addressed from one
//     pointer, and the popped object comes back in a register.
// Candidates for src/platform/ (platform/rseq.h now has rseq_fenced_stack_pop/push taking
// the area; these differ in addressing everything from the header and returning the object
// in a register). Until then they live here; other architectures use the platform
// operations. `static inline`, as platform/rseq.h requires of anything holding a sequence.
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

#if defined(__x86_64__)
#include "qmempool/cache_rseq_x86_64.h"
#else
namespace corepool::qmempool_detail {
using platform::rseq_abi;
// pop:  if (h->top == 0) FAIL; *out = slots[top - 1]; h->top -= 1.       commit: h->top
static inline int cache_pop(rseq_abi *, cache_head *h, void **out, int cpu) noexcept {
  return platform::rseq_stack_pop(&h->top, cache_slots(h), out, cpu);
}
// push: if (h->top >= h->cap) FAIL; slots[top] = obj; h->top += 1.       commit: h->top
static inline int cache_push(rseq_abi *, cache_head *h, void *obj, int cpu) noexcept {
  return platform::rseq_stack_push(&h->top, cache_slots(h), h->cap, obj, cpu);
}
}  // namespace corepool::qmempool_detail
#endif
