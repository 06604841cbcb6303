// The out-of-line operations of bound-tl-array-call (see tl_array.h) and of
// bound-percpu-seq-call (see percpu_seq.h). Their own translation unit, so that the caller's
// compiler sees neither their bodies nor the registers they use.
#include "percpu_seq.h"
#include "tl_array.h"

namespace cpb {
namespace {
__thread TLState *t_call_state __attribute__((tls_model("initial-exec")));
}  // namespace

void tl_call_bind(TLState *s) noexcept {
  t_call_state = s;
}
void *tl_call_get(void *) noexcept {
  return tl_get(t_call_state);
}
void tl_call_put(void *, void *p) noexcept {
  tl_put(t_call_state, p);
}

template <CounterOp Op>
__attribute__((noinline)) uint64_t percpu_seq_call(PerCpuSeqSlots *s, uint64_t n) noexcept {
  return percpu_seq_op<Op>(*s, n);
}
template uint64_t percpu_seq_call<CounterOp::add>(PerCpuSeqSlots *, uint64_t) noexcept;
template uint64_t percpu_seq_call<CounterOp::read>(PerCpuSeqSlots *, uint64_t) noexcept;
template uint64_t percpu_seq_call<CounterOp::write>(PerCpuSeqSlots *, uint64_t) noexcept;
template uint64_t percpu_seq_call<CounterOp::xchg>(PerCpuSeqSlots *, uint64_t) noexcept;
template uint64_t percpu_seq_call<CounterOp::cmpxchg>(PerCpuSeqSlots *, uint64_t) noexcept;
template uint64_t percpu_seq_call<CounterOp::add_return>(PerCpuSeqSlots *, uint64_t) noexcept;

}  // namespace cpb
