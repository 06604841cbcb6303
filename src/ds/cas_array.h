// cas_array: an unordered array of slots, one per object of a pool, each NULL or an object,
// filled and emptied by one CAS per object. The last resort of a pool's put: it never
// refuses an object while the caller holds one of the pool's N objects (N slots, at most
// N - 1 objects elsewhere in it), and no thread, stopped or interrupted anywhere, can make
// another wait or hide anything but the object in its own hands. It costs a scan, so pools
// put here only when every ring refused (full, or held by a push in progress).
//
// Synchronizing pairs:
//   A1  put: release CAS of a slot NULL -> obj (the object's contents)   pairs with A2
//   A2  take: acquire CAS of a slot obj -> NULL                          pairs with A1
//   `hint` is a hint (relaxed): a stale value costs a longer scan. `count` is a reservation
//   counter, all its operations relaxed (atomicity is all it needs; it orders nothing):
//   R1  put: count.fetch_add(1) BEFORE scanning for a slot; a result >= size refuses (undone)
//   R2  take: count.fetch_sub(1) AFTER its CAS emptied a slot
//   so count = objects in slots + puts reserved, not yet stored + takes done, not yet
//   counted down; each of these is a distinct object in the array or in a caller's hands.
//
// Invariants:
//   C1  An object is in at most one slot: only a put of an object the caller holds stores
//       it, and only the CAS that empties the slot hands it out.
//   C2  No ABA hazard: the slot's value IS the object, so a take whose CAS succeeds takes
//       the object that is in the slot at that moment, once.
//   C3  A put never refuses an object while every object put is one the caller holds (so
//       count <= size, R1 succeeds): with its reservation, the slots hold at most size - 1
//       objects at every instant, so an empty slot always exists and the scan (which goes
//       round until a CAS stores) ends. Lock-free, not wait-free: a put may go round again
//       while others fill the empty slots ahead of it, each such fill a put that succeeded.
//       Only a double put (more objects than slots) is refused.
//   C4  (liveness) Each slot changes in one CAS: a thread stopped anywhere holds no slot.
//
// Which operations may run at the same time: put, take and count with each other, from any
// thread and from signal handlers (lock-free, async-signal-safe); init with nothing.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include "inject.h"

namespace corepool::ds {

// 64-byte header, then `size` slots.
struct alignas(64) cas_array {
  std::atomic<uint32_t> count;  // reservations (R1, R2): objects in, or on their way
  std::atomic<uint32_t> hint;   // hint: the slot the last put filled
  uint32_t size;                // slots
  size_t bytes;                 // size of the mapping, for the owner

  std::atomic<void *> *slots() noexcept {
    return reinterpret_cast<std::atomic<void *> *>(this + 1);
  }
  // Objects in the array (a hint: exact when quiescent; counts puts and takes in flight).
  unsigned nr_free() const noexcept { return count.load(std::memory_order_relaxed); }
};
static_assert(sizeof(cas_array) == 64);

constexpr size_t cas_array_bytes(uint32_t size) noexcept {
  return sizeof(cas_array) + size_t{size} * sizeof(void *);
}

// Constructs an empty array of `size` slots at `mem`, zeroed memory of at least
// cas_array_bytes(size) bytes (`bytes` is recorded for the owner). Not concurrent.
inline cas_array *cas_array_init(void *mem, uint32_t size, size_t bytes) noexcept {
  auto *a = new (mem) cas_array;
  a->count.store(0, std::memory_order_relaxed);
  a->hint.store(0, std::memory_order_relaxed);
  a->size = size;
  a->bytes = bytes;
  return a;
}

// Stores each object in an empty slot; returns how many were stored (n, unless more objects
// are put than the array has slots: a double put). Lock-free, async-signal-safe.
inline unsigned cas_array_put(cas_array *a, void *const *objs, unsigned n) noexcept {
  uint32_t i = a->hint.load(std::memory_order_relaxed);
  unsigned done = 0;
  for (; done < n; done++) {
    if (a->count.fetch_add(1, std::memory_order_relaxed) >= a->size) {  // R1
      a->count.fetch_sub(1, std::memory_order_relaxed);  // a double put: no slot is ours
      break;
    }
    // C3: an empty slot exists at every instant; go round until a CAS stores.
    for (;;) {
      if (++i >= a->size) i = 0;
      CP_INJECT("cas_array.put.scan");  // tests: others take and put between two slots
      void *expected = nullptr;
      if (a->slots()[i].compare_exchange_strong(  // A1
              expected, objs[done], std::memory_order_release, std::memory_order_relaxed))
        break;
    }
  }
  a->hint.store(i, std::memory_order_relaxed);
  return done;
}

// Takes up to n objects; one pass (a slot filled behind the scan is found by a later take).
// Lock-free, async-signal-safe.
inline unsigned cas_array_take(cas_array *a, void **out, unsigned n) noexcept {
  if (a->count.load(std::memory_order_relaxed) == 0) return 0;  // no slot holds an object
  unsigned got = 0;
  for (uint32_t i = 0; i < a->size && got < n; i++) {
    void *obj = a->slots()[i].load(std::memory_order_relaxed);
    // A2 (C2): a CAS that succeeds takes the object in the slot at that moment.
    if (obj && a->slots()[i].compare_exchange_strong(obj, nullptr, std::memory_order_acquire,
                                                     std::memory_order_relaxed)) {
      out[got++] = obj;
      a->count.fetch_sub(1, std::memory_order_relaxed);  // R2
    }
  }
  return got;
}

}  // namespace corepool::ds
