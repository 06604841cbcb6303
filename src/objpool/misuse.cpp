// objpool's checked mode (O3 in objpool.cpp; declared in objpool_internal.h). Each object's
// state byte changes only by one CAS (acq_rel: a refused push or drop sees the state the
// winner wrote; nothing else is ordered by it):
//   K1 push / push_bulk  kHeld -> kFree, before the object joins a tier;
//   K2 pop               kFree -> kHeld, after it left one (cannot fail: only K1 makes an
//                        object kFree, and it was in no tier before);
//   K3 drop              kHeld -> kGone.
// So of two racing pushes (or drops) of one object exactly one succeeds, the tiers never
// hold an object twice, and nr_free never exceeds nr_objs.
#include <atomic>
#include <cerrno>
#include <cstdint>

#include <corepool/objpool.h>

#include "check.h"
#include "objpool/objpool_internal.h"

namespace corepool::objpool_impl {
namespace {

// Returns the state found: `from` when it changed to `to`.
uint8_t change_state(cp_objpool *p, const void *obj, uint8_t from, uint8_t to) noexcept {
  uint8_t seen = from;
  p->state[index_of(p, obj)].compare_exchange_strong(seen, to, std::memory_order_acq_rel,
                                                     std::memory_order_acquire);
  return seen;
}

}  // namespace

int give_back_checked(cp_objpool *p, void *const *objs, unsigned n, const char *fn) noexcept {
  if (p->finished.load(std::memory_order_acquire))
    return report_misuse(-ESHUTDOWN, fn, "push after fini", n ? objs[0] : nullptr);
  for (unsigned i = 0; i < n; i++) {
    const uint8_t s = change_state(p, objs[i], kHeld, kFree);  // K1
    if (s == kHeld) continue;
    // Undo: the ones changed are in no tier yet, so nobody else can change them back.
    for (unsigned j = i; j > 0; j--) (void)change_state(p, objs[j - 1], kFree, kHeld);
    return s == kFree ? report_misuse(-EALREADY, fn, "already free in the pool", objs[i])
                      : report_misuse(-EINVAL, fn, "dropped: no longer a pool object", objs[i]);
  }
  return 0;
}

void take_checked(cp_objpool *p, void *const *objs, unsigned n) noexcept {
  for (unsigned i = 0; i < n; i++) (void)change_state(p, objs[i], kFree, kHeld);  // K2
}

int drop_checked(cp_objpool *p, const void *obj) noexcept {
  const uint8_t s = change_state(p, obj, kHeld, kGone);  // K3
  if (s == kFree)
    return report_misuse(-EALREADY, "cp_objpool_drop", "already free in the pool", obj);
  if (s == kGone) return report_misuse(-EINVAL, "cp_objpool_drop", "already dropped", obj);
  return 0;
}

}  // namespace corepool::objpool_impl
