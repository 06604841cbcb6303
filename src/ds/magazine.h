// magazine: the magazine and depot tier (Bonwick's magazines) behind the per-CPU caches.
// A magazine is one block of up to `cap` object pointers. The depot keeps the full
// magazines in a FIFO (a ds::cpu_ring of magazine pointers) and the empty ones on a
// lock-free stack. A cache that overflows takes an empty magazine, moves a batch of
// objects into it (one pop_bulk on its own stack) and queues it; a cache that runs dry
// takes the oldest full magazine and moves its objects in (one push_bulk). So objects
// change CPUs a magazine at a time: one CAS on each side per `cap` objects, and the
// magazine's lines travel once, instead of a ring's index lines bouncing every few objects.
//
// Why a FIFO of full magazines, not a stack: an object handed over right after the other
// CPU touched it is still in that CPU's caches, and writing it costs a cross-core
// invalidation per object. The oldest magazine holds the objects freed longest ago, so a
// depot with a backlog hands out cold objects (measured in docs/objpool.md).
//
// Layout, one block: this header (the empty stack's head and the object count on their own
// lines), the FIFO (cpu_ring header + a power of two >= nr_mags slots), then nr_mags
// magazines of `stride` bytes, each {next, count, slots[cap]}. Magazines are never freed
// while the depot lives (type-stable), so a thread may read a magazine's `next` after
// someone else took it: the head's tag makes that read harmless.
//
// Empty stack head: (tag << 16) | (index + 1), index + 1 = 0 when empty. Every successful
// CAS on it increments the 48-bit tag.
//
// Synchronizing pairs:
//   F1  put_full: the magazine's count and slots are written, then the FIFO's locked push
//       (cpu_ring L1, slot store, P1: release store of tail, L2)       pairs with F2
//   F2  get_full: the FIFO's pop (cpu_ring C1: acquire load of tail, slot read, C3: CAS
//       head), then the magazine's count and slots are read            pairs with F1
//   M1  put_empty: release CAS of the stack's head h -> (tag + 1, m), after storing
//       m's next = top(h)                                               pairs with M2
//   M2  get_empty: acquire load of head (and acquire on a failed CAS), read next of the
//       top magazine, CAS head h -> (tag + 1, next), acquire            pairs with M1
//   The object count is a relaxed counter, updated after F1 and after F2: a snapshot,
//   exact when quiescent.
//
// Invariants:
//   G1  Every magazine is at any instant in exactly one place: the FIFO (an index in
//       [head, tail) of its ring), the empty stack, or the hands of the one thread whose
//       get returned it (until its put).
//   G2  Objects in a magazine belong to whoever holds it: only the holder reads or writes
//       its slots and count; F1/F2 (and M1/M2 for an empty one) hand it over.
//   G3  ABA on the empty stack: a get reads `next` of top(h) and CASes head from h. If
//       top(h) was taken and put back in between, head's tag moved (every change
//       increments it), so the CAS fails and the get retries; a stale `next` is never
//       installed. The tag has 48 bits: a get would have to stall across 2^48 changes.
//       The FIFO has no ABA: its indices only grow (cpu_ring R1-R3).
//   G4  The FIFO never fills: it has a slot per magazine (G1). A put_full fails only when
//       another put_full holds the FIFO's producer lock (perhaps stopped there): the
//       caller keeps the magazine and puts its objects elsewhere. Nobody waits.
//   G5  (liveness) A get or put changes the depot in one CAS (or one locked push): a thread
//       stopped in one holds nothing but its own magazine; a thread stopped holding a
//       magazine hides that magazine (at most `cap` objects), and one stopped inside a
//       put_full also makes other put_fulls fail (G4) until it resumes.
//
// Which operations may run at the same time on one depot (any thread, any CPU, signal
// handlers included: lock-free, never wait, async-signal-safe):
//
//                 get_full  put_full  get_empty  put_empty  nr_objs  init
//   get_full        yes       yes       yes        yes        yes     no
//   put_full                  yes(1)    yes        yes        yes     no
//   get_empty                           yes        yes        yes     no
//   put_empty                                      yes        yes     no
//   nr_objs                                                   yes     no
//   (1) one holds the FIFO's producer lock, the others fail (G4).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include "ds/cpu_ring.h"
#include "inject.h"

namespace corepool::ds {

// One magazine: an 8-byte header, then the slots.
struct magazine {
  std::atomic<uint32_t> next;  // index + 1 of the magazine below it on its stack (0: none)
  uint32_t count;              // objects in slots[0, count): the holder's (G2)
  void **slots() noexcept { return reinterpret_cast<void **>(this + 1); }
};
static_assert(sizeof(magazine) == 8);

class mag_depot {
 public:
  static constexpr unsigned kMaxMags = 65535;  // indices fit the head's 16 low bits

  static constexpr size_t stride(unsigned cap) noexcept {
    return (sizeof(magazine) + size_t{cap} * sizeof(void *) + 63) / 64 * 64;
  }
  static constexpr uint64_t fifo_slots(unsigned nr_mags) noexcept {
    uint64_t s = 1;
    while (s < nr_mags) s <<= 1;
    return s;
  }
  static constexpr size_t fifo_bytes(unsigned nr_mags) noexcept {
    return (cpu_ring_bytes(fifo_slots(nr_mags)) + 63) / 64 * 64;
  }
  // Bytes for a depot of nr_mags magazines of cap slots (header and FIFO included).
  static constexpr size_t bytes(unsigned nr_mags, unsigned cap) noexcept {
    return sizeof(mag_depot) + fifo_bytes(nr_mags) + size_t{nr_mags} * stride(cap);
  }

  // Constructs a depot at `mem` (64-byte aligned, at least bytes(nr_mags, cap)), every
  // magazine empty. nr_mags in [1, kMaxMags], cap >= 2. Not concurrent with anything.
  static mag_depot *init(void *mem, unsigned nr_mags, unsigned cap) noexcept {
    auto *d = new (mem) mag_depot;
    d->nr_mags_ = nr_mags;
    d->cap_ = cap;
    d->stride_ = stride(cap);
    d->mags_ = reinterpret_cast<char *>(d + 1) + fifo_bytes(nr_mags);
    d->fifo_ = cpu_ring_init(d + 1, fifo_slots(nr_mags), fifo_bytes(nr_mags));
    d->empty_.store(0, std::memory_order_relaxed);
    d->objs_.store(0, std::memory_order_relaxed);
    for (unsigned i = 0; i < nr_mags; i++) {
      magazine *m = d->at(i);
      m->next.store(i, std::memory_order_relaxed);  // i = index + 1 of magazine i - 1
      m->count = 0;
    }
    d->empty_.store(nr_mags, std::memory_order_relaxed);  // top: the last one, tag 0
    return d;
  }

  unsigned capacity() const noexcept { return cap_; }
  unsigned nr_mags() const noexcept { return nr_mags_; }

  // The oldest full magazine (count >= 1 objects, now the caller's), or nullptr.
  magazine *get_full() noexcept {
    auto *m = static_cast<magazine *>(cpu_ring_pop(fifo_));  // F2
    if (m) objs_.fetch_sub(m->count, std::memory_order_relaxed);
    return m;
  }
  // Queues m's count (>= 1) objects. false when another put_full holds the FIFO (G4):
  // m and its objects are still the caller's.
  bool put_full(magazine *m) noexcept {
    void *v = m;
    const uint32_t n = m->count;  // read before F1: afterwards m is someone else's (G2)
    const int rc = cpu_ring_try_push_bulk(fifo_, &v, 1);  // F1
    if (rc != CP_RING_OK) return false;                   // BUSY (FULL cannot happen: G4)
    objs_.fetch_add(n, std::memory_order_relaxed);
    return true;
  }
  // An empty magazine (its count is 0), or nullptr when every magazine is full or held.
  magazine *get_empty() noexcept {
    uint64_t h = empty_.load(std::memory_order_acquire);  // M2
    for (;;) {
      const auto top = static_cast<unsigned>(h & kIdxMask);
      if (top == 0) return nullptr;
      magazine *m = at(top - 1);
      // Stale when m was taken meanwhile: then head's tag moved and the CAS fails (G3).
      const uint32_t next = m->next.load(std::memory_order_relaxed);
      CP_INJECT("magazine.get.read");  // a get stopped here holds nothing (G5)
      const uint64_t nh = ((h >> 16) + 1) << 16 | next;
      if (empty_.compare_exchange_weak(h, nh, std::memory_order_acquire,  // M2
                                       std::memory_order_acquire))
        return m;
    }
  }
  void put_empty(magazine *m) noexcept {
    m->count = 0;
    const auto idx = static_cast<uint64_t>((reinterpret_cast<char *>(m) - mags_) / stride_ + 1);
    uint64_t h = empty_.load(std::memory_order_relaxed);
    for (;;) {
      m->next.store(static_cast<uint32_t>(h & kIdxMask), std::memory_order_relaxed);
      const uint64_t nh = ((h >> 16) + 1) << 16 | idx;
      if (empty_.compare_exchange_weak(h, nh, std::memory_order_release,  // M1
                                       std::memory_order_relaxed))
        return;
    }
  }

  // ---- what every pool does with magazines (its cache is a pcpu_cache) ----
  // `elsewhere(objs, k)` is the pool's own place for k objects in its hands when the FIFO
  // is busy (G4) or a cache refuses them; it must take them all.

  // A cache ran dry: takes the oldest full magazine and returns one of its objects;
  // `push(objs, k)` is offered the other k (an all-or-nothing push onto the caller's
  // cache). If it refuses, the magazine is queued again (or its objects go elsewhere).
  // nullptr: no full magazine.
  template <class Push, class Elsewhere>
  void *refill(Push &&push, Elsewhere &&elsewhere) noexcept {
    magazine *m = get_full();
    if (!m) return nullptr;
    const uint32_t k = m->count - 1;
    void *obj = m->slots()[k];
    m->count = k;
    if (k == 0 || push(m->slots(), k))
      put_empty(m);
    else
      put_back(m, elsewhere);
    return obj;
  }

  // A cache overflowed: takes an empty magazine, fills it with `pop(slots, cap - 1)`
  // objects (a pop from the caller's cache, up to that many) and obj, and queues it (or,
  // when the FIFO is busy, gives them to `elsewhere`). false, with nothing changed (obj
  // still the caller's), when there is no empty magazine or pop returned 0.
  template <class Pop, class Elsewhere>
  bool spill(void *obj, Pop &&pop, Elsewhere &&elsewhere) noexcept {
    magazine *m = get_empty();
    if (!m) return false;
    unsigned k = pop(m->slots(), cap_ - 1);
    if (k == 0) {
      put_empty(m);
      return false;
    }
    m->slots()[k++] = obj;
    m->count = k;
    put_back(m, elsewhere);
    return true;
  }

  // Up to n objects out of the oldest full magazine (from its top; the rest is queued
  // again, or goes elsewhere). 0 when there is no full magazine.
  template <class Elsewhere>
  unsigned take(void **out, unsigned n, Elsewhere &&elsewhere) noexcept {
    magazine *m = get_full();
    if (!m) return 0;
    const unsigned k = m->count < n ? m->count : n;
    m->count -= k;
    for (unsigned i = 0; i < k; i++) out[i] = m->slots()[m->count + i];
    if (m->count)
      put_back(m, elsewhere);
    else
      put_empty(m);
    return k;
  }

  // All n (1 <= n <= capacity()) objects copied into an empty magazine and queued; false
  // (nothing changed: the objects are still the caller's) when n does not fit one, there
  // is no empty magazine, or the FIFO is busy.
  bool put_bulk(void *const *objs, unsigned n) noexcept {
    if (n == 0 || n > cap_) return false;
    magazine *m = get_empty();
    if (!m) return false;
    for (unsigned i = 0; i < n; i++) m->slots()[i] = objs[i];
    m->count = n;
    if (put_full(m)) return true;
    put_empty(m);
    return false;
  }

  // Objects in full magazines (a snapshot; exact when quiescent).
  unsigned nr_objs() const noexcept {
    const int64_t c = objs_.load(std::memory_order_relaxed);
    return c < 0 ? 0u : static_cast<unsigned>(c);
  }

 private:
  static constexpr uint64_t kIdxMask = 0xffff;

  magazine *at(unsigned i) const noexcept {
    return reinterpret_cast<magazine *>(mags_ + i * stride_);
  }
  // A magazine with count >= 1 objects in our hands goes back in the FIFO, else (busy, G4)
  // its objects go elsewhere and it goes on the empty stack.
  template <class Elsewhere>
  void put_back(magazine *m, Elsewhere &elsewhere) noexcept {
    if (put_full(m)) return;
    elsewhere(m->slots(), m->count);
    put_empty(m);
  }

  alignas(64) std::atomic<uint64_t> empty_;
  alignas(64) std::atomic<int64_t> objs_;
  alignas(64) cpu_ring *fifo_ = nullptr;  // read-only after init, apart from the counters
  char *mags_ = nullptr;
  size_t stride_ = 0;
  unsigned nr_mags_ = 0;
  unsigned cap_ = 0;
};
static_assert(sizeof(mag_depot) == 192);

}  // namespace corepool::ds
