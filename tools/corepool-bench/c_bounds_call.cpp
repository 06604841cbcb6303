// bound-tl-array-call's out-of-line operations (see tl_array.h). Their own translation unit,
// so that the caller's compiler sees neither their bodies nor the registers they use.
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

}  // namespace cpb
