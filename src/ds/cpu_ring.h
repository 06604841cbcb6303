// cpu_ring: a bounded ring of pointers with ONE producer at a time and any number of
// consumers (any thread on any CPU) that take objects by CAS. Two ways to be "the" producer:
//
//  rseq producer   the restartable sequences of one CPU (cpu_ring_push_bulk): two of them
//                  never interleave (platform/rseq.h), whatever the preemption, migration or
//                  signals; an aborted one committed nothing.
//  locked producer whoever holds the ring's producer try-lock (cpu_ring_try_push_bulk). A
//                  thread that finds it held pushes somewhere else: nobody waits for it.
//
// A ring uses one of the two for its whole life (the owner decides at creation). Consumers
// are the same for both.
//
// Free-running 64-bit indices `head` (next to consume) and `tail` (next to fill); index i
// lives in slot i & mask. Indices never wrap (2^64 operations), so no ABA.
//
// Synchronizing pairs:
//   P1  producer: slot stores, then the commit of tail (rseq: plain store, x86-64 TSO;
//       locked: store-release)                                        pairs with C1
//   P2  producer: acquire load of head before reusing slots            pairs with C3
//   C1  consumer: acquire load of tail before reading the slots        pairs with P1
//   C3  consumer: acq_rel CAS head h -> h + k after reading the slots  pairs with P2
//   L1  locked producer: acquire RMW of `producer` 0 -> 1              pairs with L2
//   L2  locked producer: release store of `producer` = 0 (after its commit), so the next
//       holder reads the tail this one committed                       pairs with L1
//
// Invariants:
//   R1  head only grows, and only by CAS, from any thread on any CPU.
//   R2  head <= tail: a CAS moves head from h to h + k only after reading tail >= h + k.
//   R3  A consumer reads the slots BEFORE its CAS; the CAS succeeds only if head still equals
//       the h it read, i.e. nobody consumed index h and no producer can have reused the slot
//       (R4). So a successful CAS returns exactly the objects stored for h .. h+k-1, once.
//   R4  A producer writes index t only when t - head <= mask (room); head only grows, so
//       index t - (mask + 1) was consumed and its slot is free.
//   R5  Every index below tail holds an object that is in the ring (published): tail moves
//       only in the producer's commit, after its slot stores. So a consumer never waits for,
//       or stops at, an unfinished push.
//   R6  (liveness) A thread stopped forever anywhere in an operation on the ring hides only
//       the objects that operation holds: a stopped producer has committed nothing (its
//       objects are still its own); a stopped consumer holds nothing (its CAS fails later,
//       R3). Every committed object stays poppable by every thread and signal handler. A
//       locked producer stopped while holding the lock only makes the ring refuse other
//       locked pushes (BUSY), which go to another ring.
//
// Which operations may run at the same time on one ring:
//
//                      pop(_bulk)  push (rseq)  try_push (locked)  nr_free  init
//   pop(_bulk)            yes         yes            yes             yes      no
//   push (rseq)           yes         yes(1)         no(2)           yes      no
//   try_push (locked)     yes         no(2)          yes(3)          yes      no
//   nr_free               yes         yes            yes             yes      no
//   (1) only the sequences on the ring's CPU, which the kernel serializes.
//   (2) a ring has one kind of producer for its whole life.
//   (3) one holds the lock, the others return CP_RING_BUSY.
// Everything but init is lock-free for consumers, never waits, and is async-signal-safe: a
// handler may pop or push on the ring that the thread it interrupted was pushing to (a
// locked push then returns BUSY, an rseq push restarts).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include "inject.h"
#include "platform/rseq.h"

namespace corepool::ds {

// 64-byte header, then mask + 1 slots.
struct alignas(64) cpu_ring {
  std::atomic<uint64_t> head;      // next index to consume: CAS only (R1)
  std::atomic<uint64_t> tail;      // next index to fill: the producer's commit only (R5)
  uint64_t mask;                   // slots - 1
  size_t bytes;                    // size of the ring's mapping, for the owner
  std::atomic<uint32_t> producer;  // locked producer: 1 while a push holds the ring (L1/L2)

  std::atomic<void *> *slots() noexcept {
    return reinterpret_cast<std::atomic<void *> *>(this + 1);
  }
  const std::atomic<void *> *slots() const noexcept {
    return reinterpret_cast<const std::atomic<void *> *>(this + 1);
  }
  // Objects in the ring (a snapshot).
  unsigned nr_free() const noexcept {
    uint64_t h = head.load(std::memory_order_acquire);
    uint64_t t = tail.load(std::memory_order_acquire);  // read after head: t >= h (R2)
    return static_cast<unsigned>(t - h);
  }
};
static_assert(sizeof(cpu_ring) == 64);
static_assert(sizeof(std::atomic<void *>) == sizeof(void *));
static_assert(sizeof(std::atomic<uint64_t>) == sizeof(intptr_t));

// Bytes for a ring of `slots` (header included), before the owner's rounding.
constexpr size_t cpu_ring_bytes(uint64_t slots) noexcept {
  return sizeof(cpu_ring) + slots * sizeof(void *);
}

// Constructs an empty ring of `slots` (a power of two) at `mem`, the start of a zeroed
// mapping of `bytes` (at least cpu_ring_bytes(slots)). Not concurrent with anything.
inline cpu_ring *cpu_ring_init(void *mem, uint64_t slots, size_t bytes) noexcept {
  auto *r = new (mem) cpu_ring;
  r->head.store(0, std::memory_order_relaxed);
  r->tail.store(0, std::memory_order_relaxed);
  r->mask = slots - 1;
  r->bytes = bytes;
  r->producer.store(0, std::memory_order_relaxed);
  return r;
}

// Consumer: up to n objects, oldest first; 0 when empty. Lock-free, async-signal-safe.
inline unsigned cpu_ring_pop_bulk(cpu_ring *r, void **out, unsigned n) noexcept {
  uint64_t h = r->head.load(std::memory_order_acquire);
  for (;;) {
    // C1: the slot stores that preceded the commit of `t` are visible below.
    uint64_t t = r->tail.load(std::memory_order_acquire);
    uint64_t k = t - h < n ? t - h : n;
    if (k == 0) return 0;  // empty (t >= h: tail read after head, R2)
    for (uint64_t i = 0; i < k; i++)
      out[i] = r->slots()[(h + i) & r->mask].load(std::memory_order_relaxed);
    CP_INJECT("cpu_ring.pop.read");  // a consumer stopped here holds nothing (R3, R6)
    // C3 (R3): succeeds only if nobody consumed h meanwhile; on failure h is reloaded.
    if (r->head.compare_exchange_weak(h, h + k, std::memory_order_acq_rel,
                                      std::memory_order_acquire))
      return static_cast<unsigned>(k);
  }
}

// Consumer of one object; nullptr when empty. Lock-free, async-signal-safe.
inline void *cpu_ring_pop(cpu_ring *r) noexcept {
  uint64_t h = r->head.load(std::memory_order_acquire);
  for (;;) {
    // C1: the slot store that preceded the commit of `t` is visible below.
    uint64_t t = r->tail.load(std::memory_order_acquire);
    if (t == h) return nullptr;  // empty (t >= h: tail read after head, R2)
    void *obj = r->slots()[h & r->mask].load(std::memory_order_relaxed);
    CP_INJECT("cpu_ring.pop.read");  // a consumer stopped here holds nothing (R3, R6)
    // C3 (R3): succeeds only if nobody consumed h meanwhile, so `obj` is index h's object.
    if (r->head.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel,
                                      std::memory_order_acquire))
      return obj;
  }
}

// rseq producer, all or nothing: one restartable sequence on `cpu` (the ring's CPU, the one
// the caller's rseq_cpu_start() returned). CP_RSEQ_OK, CP_RSEQ_FAIL (no room for n), or
// CP_RSEQ_ABORT (nothing committed: re-read the CPU and retry). `static inline`: it holds a
// sequence (see the linkage note in platform/rseq.h).
static inline int cpu_ring_push_bulk(cpu_ring *r, void *const *objs, unsigned n, int cpu) noexcept {
  return platform::rseq_ring_push_bulk(
      reinterpret_cast<intptr_t *>(&r->tail), reinterpret_cast<const intptr_t *>(&r->head),
      reinterpret_cast<void **>(r->slots()), static_cast<intptr_t>(r->mask), objs,
      static_cast<intptr_t>(n), cpu);
}

// rseq producer of one object: as cpu_ring_push_bulk.
static inline int cpu_ring_push(cpu_ring *r, void *obj, int cpu) noexcept {
  return platform::rseq_ring_push(
      reinterpret_cast<intptr_t *>(&r->tail), reinterpret_cast<const intptr_t *>(&r->head),
      reinterpret_cast<void **>(r->slots()), static_cast<intptr_t>(r->mask), obj, cpu);
}

enum cpu_ring_rc : int { CP_RING_OK = 0, CP_RING_FULL = 1, CP_RING_BUSY = 2 };

// Locked producer, all or nothing: CP_RING_OK (all n committed), CP_RING_FULL (no room for
// n now: nothing stored) or CP_RING_BUSY (another push holds the ring, perhaps stopped:
// nothing stored, push elsewhere). Never waits; async-signal-safe.
inline int cpu_ring_try_push_bulk(cpu_ring *r, void *const *objs, uint64_t n) noexcept {
  // L1. The load first keeps a busy ring's line shared (no RMW when it is held).
  if (r->producer.load(std::memory_order_relaxed) != 0 ||
      r->producer.exchange(1, std::memory_order_acquire) != 0)
    return CP_RING_BUSY;
  const uint64_t t = r->tail.load(std::memory_order_relaxed);  // ours: L1 ordered it
  // P2: consumers' slot reads of index t - (mask + 1) happen before our store there (R4).
  const uint64_t h = r->head.load(std::memory_order_acquire);
  int rc = CP_RING_FULL;
  if (t + n - h <= r->mask + 1) {
    for (uint64_t i = 0; i < n; i++)
      r->slots()[(t + i) & r->mask].store(objs[i], std::memory_order_relaxed);
    CP_INJECT("cpu_ring.push.locked");  // a producer stopped here hides only objs (R6)
    r->tail.store(t + n, std::memory_order_release);  // P1: commit, publishes to C1
    rc = CP_RING_OK;
  }
  r->producer.store(0, std::memory_order_release);  // L2
  return rc;
}

}  // namespace corepool::ds
