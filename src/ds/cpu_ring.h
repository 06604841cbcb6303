// cpu_ring: a ring of pointers with one producer at a time, the restartable sequences of one
// CPU, and any number of consumers, any thread on any CPU, that take objects by CAS.
//
// Free-running 64-bit indices `head` (next to consume) and `tail` (next to fill); index i
// lives in slot i & mask. Indices never wrap (2^64 operations), so no ABA.
//   R1  head only grows, and only by CAS, from any thread on any CPU.
//   R2  head <= tail: a CAS moves head from h to h + k only after reading tail >= h + k.
//   R3  A consumer reads the slots BEFORE its CAS; the CAS succeeds only if head still equals
//       the h it read, i.e. nobody consumed index h and no producer can have reused the slot
//       (R4). So a successful CAS returns exactly the objects stored for h .. h+k-1, once.
//   R4  A producer writes index t only when t - head <= mask (room); head only grows, so
//       index t - (mask + 1) was consumed and its slot is free.
// Producer: platform::rseq_ring_push(_bulk) on the ring's CPU (push_bulk below): read tail
// and head, check room, store the slots (speculative), commit tail. Two such sequences never
// interleave (platform/rseq.h), so the ring has one producer at a time whatever the
// preemption, migration or signals; an aborted one committed nothing, and its speculative
// stores hit free slots (R4) that no consumer reads yet (R2).
// Progress: nothing here ever waits. A preempted producer holds nothing (it restarts), and a
// preempted consumer holds nothing either (its CAS fails later): unlike an array queue whose
// producers publish after claiming, no stopped thread hides other threads' objects.
// Memory ordering: the slot stores precede the tail commit (x86 stores are ordered; rseq is
// x86-64 only) and consumers load tail with acquire before the slots; a consumer's CAS is
// acq_rel, so its slot reads happen before a producer that saw the new head reuses the slots.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include "platform/rseq.h"

namespace corepool::ds {

// 64-byte header, then mask + 1 slots (callers may append more per-slot data: `seq`).
struct alignas(64) cpu_ring {
  std::atomic<uint64_t> head;  // next index to consume: CAS only (R1)
  std::atomic<uint64_t> tail;  // next index to fill: rseq commit (or a caller's own protocol)
  uint64_t mask;               // slots - 1
  std::atomic<uint64_t> *seq;  // for callers with a multi-producer protocol (objpool); unused here
  size_t bytes;                // size of the ring's mapping, for the owner

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

// Constructs an empty ring of `slots` (a power of two) at `mem`, the start of a zeroed
// mapping of `bytes` that holds the header and the slots (and, for a caller with its own
// producer protocol, `seq` after them). Not concurrent with anything.
inline cpu_ring *cpu_ring_init(void *mem, uint64_t slots, size_t bytes,
                               std::atomic<uint64_t> *seq = nullptr) noexcept {
  auto *r = new (mem) cpu_ring;
  r->head.store(0, std::memory_order_relaxed);
  r->tail.store(0, std::memory_order_relaxed);
  r->mask = slots - 1;
  r->seq = seq;
  r->bytes = bytes;
  return r;
}
static_assert(sizeof(std::atomic<void *>) == sizeof(void *));
static_assert(sizeof(std::atomic<uint64_t>) == sizeof(intptr_t));

// Consumer: up to n objects, oldest first; 0 when empty. Lock-free, async-signal-safe.
inline unsigned cpu_ring_pop_bulk(cpu_ring *r, void **out, unsigned n) noexcept {
  uint64_t h = r->head.load(std::memory_order_acquire);
  for (;;) {
    // Acquire: the slot stores that preceded the commit of `t` are visible below.
    uint64_t t = r->tail.load(std::memory_order_acquire);
    uint64_t k = t - h < n ? t - h : n;
    if (k == 0) return 0;  // empty (t >= h: tail read after head, R2)
    for (uint64_t i = 0; i < k; i++)
      out[i] = r->slots()[(h + i) & r->mask].load(std::memory_order_relaxed);
    // R3: succeeds only if nobody consumed h meanwhile; on failure h is reloaded.
    if (r->head.compare_exchange_weak(h, h + k, std::memory_order_acq_rel,
                                      std::memory_order_acquire))
      return static_cast<unsigned>(k);
  }
}

// Producer, all or nothing: one restartable sequence on `cpu` (the ring's CPU, the one the
// caller's rseq_cpu_start() returned). CP_RSEQ_OK, CP_RSEQ_FAIL (no room for n), or
// CP_RSEQ_ABORT (nothing committed: re-read the CPU and retry). `static inline`: it holds a
// sequence (see the linkage note in platform/rseq.h).
static inline int cpu_ring_push_bulk(cpu_ring *r, void *const *objs, unsigned n, int cpu) noexcept {
  return platform::rseq_ring_push_bulk(
      reinterpret_cast<intptr_t *>(&r->tail), reinterpret_cast<const intptr_t *>(&r->head),
      reinterpret_cast<void **>(r->slots()), static_cast<intptr_t>(r->mask), objs,
      static_cast<intptr_t>(n), cpu);
}

}  // namespace corepool::ds
