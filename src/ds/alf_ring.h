// alf_ring: the ALF queue ("Array-based Lock-Free", Brouer's qmempool RFC), a bounded
// multi-producer multi-consumer ring of pointers with bulk operations that never waits for
// another thread. The one implementation: the C API (src/alf/, <corepool/alf_queue.h>),
// the C++ wrapper (through the C API) and qmempool's shared queue use it.
//
// Index i lives in slot i & mask; each slot holds a pointer and a 64-bit seq saying whose
// turn it is: seq == i free for index i's producer; i + 1 published; i + size released
// (free for index i + size). Two 64-bit indexes, `tail` and `head`, only grow.
//
// Synchronizing pairs:
//   E1  producer: acquire-load of a slot's seq == i (free)          pairs with D3
//   E2  producer: claim [t, t+n) by CAS on tail (sp: plain store; relaxed, carries no data)
//   E3  producer: write value, release-store seq = i + 1             pairs with D1
//   D1  consumer: acquire-load of a slot's seq == i + 1 (published)  pairs with E3
//   D2  consumer: claim [h, h+k) by CAS on head (sc: plain store; relaxed, carries no data)
//   D3  consumer: read value, release-store seq = i + size           pairs with E1
//
// Invariants:
//   R1  head <= tail <= head + size (E2 claims only slots whose seq says free, D2 only
//       published ones).
//   R2  A slot's seq only grows; only the thread that claimed index i writes slot i's value
//       and seq.
//   R3  A successful E2 from t proves nobody claimed an index of [t, t+n) (tail only grows:
//       no ABA), so the slots checked free are still free; likewise D2 for published slots.
//   R4  No operation waits: a slot not in the state it needs ends the operation (0 or a
//       shorter burst) unless the index moved (another thread progressed: retry).
//   R5  Dequeue is FIFO: a burst is the published run from head; it stops at the first
//       unpublished index.
//   R6  (what a stopped producer hides) A producer stopped forever between E2 and E3 holds
//       indexes [t, t+n): its own n elements, and, by R5, every element enqueued after
//       them into this queue (consumers never pass index t), until it resumes. It hides
//       no element enqueued before t. Callers that need "a stopped thread hides only its
//       own elements" must not enqueue behind a producer that may be stopped: the DPDK
//       driver gives each of its queues one producer at a time by a try-lock.
//   R7  (what a stopped consumer hides) A consumer stopped between D2 and D3 holds its k
//       elements, and makes its k slots unavailable to producers one lap later: an enqueue
//       that needs one of them returns 0 ("less room") until it resumes. It hides nothing
//       else.
//
// Which operations may run at the same time on one ring:
//
//                    mp_enqueue  sp_enqueue  mc_dequeue  sc_dequeue  count/empty  destroy
//   mp_enqueue          yes         no          yes         yes          yes        no
//   sp_enqueue          no          no          yes         yes          yes        no
//   mc_dequeue          yes         yes         yes         no           yes        no
//   sc_dequeue          yes         yes         no          no           yes        no
//   count/empty         yes         yes         yes         yes          yes        no
// All but create/destroy are lock-free and async-signal-safe (no locks, allocation or
// system calls): a handler may use mp/mc operations on the ring its thread was using.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include "inject.h"

namespace corepool::ds {

inline constexpr std::size_t kAlfLine = 64;

// Not copyable; created and destroyed with create()/destroy() (one allocation holding the
// indexes and the slots).
class alf_ring {
  struct slot {
    std::atomic<uint64_t> seq;
    void *value;
  };

 public:
  alf_ring(const alf_ring &) = delete;
  alf_ring &operator=(const alf_ring &) = delete;

  static bool valid_size(uint32_t size) noexcept { return size >= 2 && (size & (size - 1)) == 0; }

  // nullptr if the size is invalid or memory is short. Not async-signal-safe.
  static alf_ring *create(uint32_t size) noexcept {
    if (!valid_size(size)) return nullptr;
    const std::size_t bytes = sizeof(alf_ring) + std::size_t{size} * sizeof(slot);
    void *mem = ::operator new (bytes, std::align_val_t{kAlfLine}, std::nothrow);
    if (!mem) return nullptr;
    auto *r = ::new (mem) alf_ring(size);
    r->slots_ = reinterpret_cast<slot *>(static_cast<char *>(mem) + sizeof(alf_ring));
    for (uint32_t i = 0; i < size; i++) {
      ::new (&r->slots_[i]) slot{};
      r->slots_[i].seq.store(i, std::memory_order_relaxed);  // free for index i
    }
    return r;
  }

  static void destroy(alf_ring *r) noexcept {
    if (!r) return;
    r->~alf_ring();
    ::operator delete (static_cast<void *>(r), std::align_val_t{kAlfLine});
  }

  uint32_t capacity() const noexcept { return size_; }

  // All n or nothing: returns n, or 0 when they do not all fit now. MP = false: the caller
  // guarantees no concurrent enqueue. Never waits; async-signal-safe.
  template <bool MP>
  int enqueue(void *const *in, int n) noexcept {
    if (n <= 0 || static_cast<uint32_t>(n) > size_) return 0;
    uint64_t t = tail_.load(std::memory_order_relaxed);
    for (;;) {
      // E1: every slot of [t, t+n) must be free for this lap (seq == index). diff < 0: the
      // slot still holds an element of the previous lap or its consumer has not released it.
      // diff > 0: another producer claimed it already, so t is stale.
      int64_t diff = 0;
      for (uint64_t i = t; i != t + static_cast<uint64_t>(n); i++) {
        diff = static_cast<int64_t>(slots_[i & mask_].seq.load(std::memory_order_acquire) - i);
        if (diff != 0) break;
      }
      if (diff == 0) {
        if constexpr (MP) {
          // E2: the one read-modify-write per bulk. Success means nobody claimed an index of
          // [t, t+n) (tail only grows, so no ABA), hence their seq is still == index.
          if (!tail_.compare_exchange_weak(t, t + n, std::memory_order_relaxed,
                                           std::memory_order_relaxed))
            continue;  // t reloaded: someone else enqueued (or a spurious failure)
        } else {
          tail_.store(t + n, std::memory_order_relaxed);
        }
        break;
      }
      if constexpr (!MP) return 0;  // we are the only producer: t is never stale
      const uint64_t now = tail_.load(std::memory_order_relaxed);
      if (now == t) return 0;  // full, or a consumer still releasing: do not wait
      t = now;                 // stale: others made progress, look again
    }
    CP_INJECT("alf.enqueue.claimed");  // a producer stopped here: see R6 above
    for (int k = 0; k < n; k++) {
      slot &s = slots_[(t + k) & mask_];
      s.value = in[k];
      s.seq.store(t + k + 1, std::memory_order_release);  // E3: publish to D1
    }
    return n;
  }

  // Up to n, FIFO: returns 0..n. MC = false: the caller guarantees no concurrent dequeue.
  // Never waits; async-signal-safe.
  template <bool MC>
  int dequeue(void **out, int n) noexcept {
    if (n <= 0) return 0;
    uint64_t h = head_.load(std::memory_order_relaxed);
    int k;
    for (;;) {
      // D1: count the published slots from h (seq == index + 1). A slot not yet published
      // (empty, or its producer is between E2 and E3) ends the burst.
      k = 0;
      for (; k < n; k++) {
        const uint64_t i = h + static_cast<uint64_t>(k);
        if (slots_[i & mask_].seq.load(std::memory_order_acquire) != i + 1) break;
      }
      if (k > 0) {
        if constexpr (MC) {
          // D2: one read-modify-write per burst; success means nobody else claimed [h, h+k),
          // so those slots stay published until our D3.
          if (!head_.compare_exchange_weak(h, h + k, std::memory_order_relaxed,
                                           std::memory_order_relaxed))
            continue;
        } else {
          head_.store(h + k, std::memory_order_relaxed);
        }
        break;
      }
      if constexpr (!MC) return 0;
      const uint64_t now = head_.load(std::memory_order_relaxed);
      if (now == h) return 0;  // empty, or a producer still publishing: do not wait
      h = now;
    }
    CP_INJECT("alf.dequeue.claimed");  // a consumer stopped here: see R7 above
    for (int j = 0; j < k; j++) {
      const uint64_t i = h + static_cast<uint64_t>(j);
      slot &s = slots_[i & mask_];
      out[j] = s.value;
      s.seq.store(i + size_, std::memory_order_release);  // D3: hand the slot to E1
    }
    return k;
  }

  // Snapshot of tail - head (claims in progress included), 0..size.
  unsigned count() const noexcept {
    const uint64_t h = head_.load(std::memory_order_acquire);  // head first: head <= tail
    const uint64_t t = tail_.load(std::memory_order_acquire);
    const int64_t d = static_cast<int64_t>(t - h);
    if (d <= 0) return 0;
    return d > static_cast<int64_t>(size_) ? size_ : static_cast<unsigned>(d);
  }
  bool empty() const noexcept { return count() == 0; }

 private:
  explicit alf_ring(uint32_t size) noexcept : mask_(size - 1), size_(size) {}
  ~alf_ring() = default;

  alignas(kAlfLine) std::atomic<uint64_t> tail_{0};  // producers' line
  alignas(kAlfLine) std::atomic<uint64_t> head_{0};  // consumers' line
  alignas(kAlfLine) uint64_t mask_;                  // read-only after create
  uint32_t size_;
  slot *slots_ = nullptr;
};

}  // namespace corepool::ds
