// The thread-private array stack of the bound-tl-array bounds (c_bounds.cpp): one body for
// the inline bound and for the one behind a call (c_bounds_call.cpp).
#pragma once

#include "bench.h"

namespace cpb {

inline constexpr unsigned kPerThread = 2 * kBurst;

struct TLState {
  Slab slab;
  void *slots[kPerThread];
  long top = 0;
  alignas(64) std::atomic<long> atop{0};
};

inline void *tl_get(TLState *s) noexcept {
  return s->top ? s->slots[--s->top] : nullptr;
}
inline void tl_put(TLState *s, void *p) noexcept {
  s->slots[s->top++] = p;
}

// bound-tl-array-call: tl_get / tl_put out of line, on a thread state of their own found
// through initial-exec TLS, in a translation unit the caller cannot see into, called
// directly: the shape of a call into libcorepool.a, which corepool-bench links (static, no
// PLT; -fPIC objects whose TLS accesses the linker relaxes to fixed offsets). `pool` is
// unused, passed as the pools' API functions get theirs.
void tl_call_bind(TLState *s) noexcept;
void *tl_call_get(void *pool) noexcept;
void tl_call_put(void *pool, void *p) noexcept;

}  // namespace cpb
