// corepool/alf_queue.hpp - the ALF queue for C++: one implementation of the algorithm
// (corepool::alf_ring, used by the C API too) and an RAII wrapper (corepool::alf_queue<T>)
// for pointers and small trivially copyable element types.
//
// The protocol, progress guarantee and concurrency table are in <corepool/alf_queue.h>; the
// code below labels each synchronizing step:
//   E1  producer: acquire-load of a slot's seq == i (free)       pairs with D3
//   E2  producer: claim [t, t+n) by CAS on tail (sp: plain store)
//   E3  producer: write value, release-store seq = i + 1          pairs with D1
//   D1  consumer: acquire-load of a slot's seq == i + 1 (published) pairs with E3
//   D2  consumer: claim [h, h+k) by CAS on head (sc: plain store)
//   D3  consumer: read value, release-store seq = i + size        pairs with E1
// The indexes themselves carry no data, so E2/D2 are relaxed: ownership of a slot is handed
// over only by its seq. Invariants: head <= tail; tail - head <= size; a slot's seq only
// grows, and only the thread that claimed index i writes the slot of index i.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include <corepool/alf_queue.h>

namespace corepool {

namespace alf_detail {
// Fault-injection policy: called at the points where a thread has claimed indexes but not
// yet published/released them (tests park threads there). The default does nothing.
struct no_inject {
  static void point(const char *) noexcept {}
};
inline constexpr std::size_t kLine = 64;
}  // namespace alf_detail

// The algorithm. Not copyable; created and destroyed with create()/destroy() (one
// allocation holding the indexes and the slots).
template <class T, class Inject = alf_detail::no_inject>
class alf_ring {
  static_assert(std::is_trivially_copyable_v<T>, "alf_ring elements are copied bytewise");

  struct slot {
    std::atomic<uint64_t> seq;
    T value;
  };

 public:
  alf_ring(const alf_ring &) = delete;
  alf_ring &operator=(const alf_ring &) = delete;

  static bool valid_size(uint32_t size) noexcept { return size >= 2 && (size & (size - 1)) == 0; }

  // nullptr if the size is invalid or memory is short. Not async-signal-safe.
  static alf_ring *create(uint32_t size) noexcept {
    if (!valid_size(size)) return nullptr;
    const std::size_t bytes = sizeof(alf_ring) + std::size_t{size} * sizeof(slot);
    void *mem = ::operator new (bytes, std::align_val_t{alf_detail::kLine}, std::nothrow);
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
    ::operator delete (static_cast<void *>(r), std::align_val_t{alf_detail::kLine});
  }

  uint32_t capacity() const noexcept { return size_; }

  // All n or nothing: returns n, or 0 when they do not all fit now. MP = false: the caller
  // guarantees no concurrent enqueue. Never waits; async-signal-safe.
  template <bool MP>
  int enqueue(const T *in, int n) noexcept {
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
    Inject::point("alf.enqueue.claimed");
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
  int dequeue(T *out, int n) noexcept {
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
    Inject::point("alf.dequeue.claimed");
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

  alignas(alf_detail::kLine) std::atomic<uint64_t> tail_{0};  // producers' line
  alignas(alf_detail::kLine) std::atomic<uint64_t> head_{0};  // consumers' line
  alignas(alf_detail::kLine) uint64_t mask_;                  // read-only after create
  uint32_t size_;
  slot *slots_ = nullptr;
};

// RAII queue of T (a pointer or a trivially copyable type). Names follow DPDK: bulk = all
// or nothing, burst = as many as possible; mp/mc are the default, sp/sc the single-thread
// forms (see the table in alf_queue.h).
template <class T>
class alf_queue {
 public:
  // size: power of two >= 2. Throws std::invalid_argument or std::bad_alloc.
  explicit alf_queue(uint32_t size) : ring_(make(size)) {}

  uint32_t capacity() const noexcept { return ring_->capacity(); }
  unsigned count() const noexcept { return ring_->count(); }
  bool empty() const noexcept { return ring_->empty(); }

  int enqueue_bulk(const T *in, int n) noexcept { return ring_->template enqueue<true>(in, n); }
  int dequeue_burst(T *out, int n) noexcept { return ring_->template dequeue<true>(out, n); }
  int sp_enqueue_bulk(const T *in, int n) noexcept { return ring_->template enqueue<false>(in, n); }
  int sc_dequeue_burst(T *out, int n) noexcept { return ring_->template dequeue<false>(out, n); }

  bool try_push(const T &v) noexcept { return enqueue_bulk(&v, 1) == 1; }
  std::optional<T> try_pop() noexcept {
    T v;
    if (dequeue_burst(&v, 1) == 1) return v;
    return std::nullopt;
  }

 private:
  using ring = alf_ring<T>;
  struct deleter {
    void operator()(ring *r) const noexcept { ring::destroy(r); }
  };
  static ring *make(uint32_t size) {
    if (!ring::valid_size(size))
      throw std::invalid_argument("alf_queue size must be a power of two >= 2");
    ring *r = ring::create(size);
    if (!r) throw std::bad_alloc();
    return r;
  }
  std::unique_ptr<ring, deleter> ring_;
};

}  // namespace corepool
