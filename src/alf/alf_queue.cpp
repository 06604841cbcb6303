// The C API of the ALF queue: argument checks and error messages around the one
// implementation, ds::alf_ring (ds/alf_ring.h).
#include <corepool/alf_queue.h>

#include <cerrno>

#include "ds/alf_ring.h"
#include "error.h"

namespace {
using ring = corepool::ds::alf_ring;

// struct cp_alf_queue is never defined: the handle is the ring itself.
ring *R(cp_alf_queue *q) noexcept {
  return reinterpret_cast<ring *>(q);
}
const ring *R(const cp_alf_queue *q) noexcept {
  return reinterpret_cast<const ring *>(q);
}

int check(const cp_alf_queue *q, const void *ptrs, int n) noexcept {
  if (!q) return corepool::set_error(-EINVAL, "alf queue: q is NULL");
  if (n < 0) return corepool::set_error(-EINVAL, "alf queue: n < 0");
  if (!ptrs && n > 0) return corepool::set_error(-EINVAL, "alf queue: ptrs is NULL");
  return 0;
}
}  // namespace

extern "C" {

int cp_alf_queue_alloc(cp_alf_queue **q, uint32_t size) {
  if (!q) return corepool::set_error(-EINVAL, "cp_alf_queue_alloc: q is NULL");
  *q = nullptr;
  if (!ring::valid_size(size))
    return corepool::set_error(-EINVAL, "cp_alf_queue_alloc: size must be a power of two >= 2");
  ring *r = ring::create(size);
  if (!r) return corepool::set_error(-ENOMEM, "cp_alf_queue_alloc: out of memory");
  *q = reinterpret_cast<cp_alf_queue *>(r);
  return 0;
}

void cp_alf_queue_free(cp_alf_queue *q) {
  ring::destroy(R(q));
}

int cp_alf_mp_enqueue(cp_alf_queue *q, void *const *ptrs, int n) {
  if (int e = check(q, ptrs, n)) return e;
  return R(q)->enqueue<true>(ptrs, n);
}

int cp_alf_mc_dequeue(cp_alf_queue *q, void **ptrs, int n) {
  if (int e = check(q, ptrs, n)) return e;
  return R(q)->dequeue<true>(ptrs, n);
}

int cp_alf_sp_enqueue(cp_alf_queue *q, void *const *ptrs, int n) {
  if (int e = check(q, ptrs, n)) return e;
  return R(q)->enqueue<false>(ptrs, n);
}

int cp_alf_sc_dequeue(cp_alf_queue *q, void **ptrs, int n) {
  if (int e = check(q, ptrs, n)) return e;
  return R(q)->dequeue<false>(ptrs, n);
}

bool cp_alf_queue_empty(const cp_alf_queue *q) {
  return q ? R(q)->empty() : true;
}

unsigned cp_alf_queue_count(const cp_alf_queue *q) {
  return q ? R(q)->count() : 0;
}

}  // extern "C"
