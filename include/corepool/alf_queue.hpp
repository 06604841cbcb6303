// corepool/alf_queue.hpp - the ALF queue for C++: an RAII wrapper (corepool::alf_queue<T>)
// over the C API of <corepool/alf_queue.h>, for pointers and trivially copyable types.
//
// The protocol, progress guarantee and concurrency table are in <corepool/alf_queue.h> (the
// algorithm itself lives in the library). A T with the size of a pointer travels through
// the queue's slots as it is; any other T is stored in a cell of a cp_objpool of `size`
// cells (object size sizeof(T), at most 65536 bytes; `size` at most 2^24) and the queue
// carries the cells' addresses. Both keep the C API's semantics (bulk = all or nothing,
// burst = as many as possible, FIFO, never waits, async-signal-safe), with one exception:
// for a T of another size, an enqueue_bulk of more than 64 elements takes a temporary
// array from operator new (nothrow; 0 when that fails), so it may allocate and is not
// async-signal-safe.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include <corepool/alf_queue.h>
#include <corepool/objpool.h>

namespace corepool {

// RAII queue of T (a pointer or a trivially copyable type). Names follow DPDK: bulk = all
// or nothing, burst = as many as possible; mp/mc are the default, sp/sc the single-thread
// forms (see the table in alf_queue.h). Not copyable.
template <class T>
class alf_queue {
  static_assert(std::is_trivially_copyable_v<T>, "alf_queue elements are copied bytewise");
  // A pointer-sized T is the slot's value itself; anything else lives in a cell.
  static constexpr bool kDirect = sizeof(T) == sizeof(void *);
  static constexpr int kChunk = 64;  // elements per dequeue step and per on-stack array
  static_assert(kDirect || sizeof(T) <= CP_OBJPOOL_OBJECT_SIZE_MAX, "alf_queue: T too large");

 public:
  // size: power of two >= 2 (and <= 2^24 unless T has the size of a pointer). Throws
  // std::invalid_argument or std::bad_alloc.
  explicit alf_queue(uint32_t size) : size_(size) {
    int rc = cp_alf_queue_alloc(&q_, size);
    if (rc == -ENOMEM) throw std::bad_alloc();
    if (rc != 0) throw std::invalid_argument("alf_queue size must be a power of two >= 2");
    if constexpr (!kDirect) {
      if (size > static_cast<uint32_t>(CP_OBJPOOL_NR_OBJS_MAX)) {
        cp_alf_queue_free(q_);
        throw std::invalid_argument("alf_queue of this T: size at most 2^24");
      }
      const cp_objpool_attr attr{.ring_capacity = 0,
                                 .flags = CP_OBJPOOL_F_NOCACHE | CP_OBJPOOL_F_NOTHREADCACHE,
                                 .cache_capacity = 0,
                                 .thread_cache = 0};
      rc = cp_objpool_init_attr(&cells_, static_cast<int>(size), static_cast<int>(sizeof(T)),
                                nullptr, nullptr, nullptr, &attr);
      if (rc != 0) {
        cp_alf_queue_free(q_);
        throw std::bad_alloc();
      }
    }
  }
  ~alf_queue() {
    cp_alf_queue_free(q_);
    if constexpr (!kDirect) cp_objpool_free(cells_);
  }
  alf_queue(const alf_queue &) = delete;
  alf_queue &operator=(const alf_queue &) = delete;

  uint32_t capacity() const noexcept { return size_; }
  unsigned count() const noexcept { return cp_alf_queue_count(q_); }
  bool empty() const noexcept { return cp_alf_queue_empty(q_); }

  int enqueue_bulk(const T *in, int n) noexcept { return enqueue<true>(in, n); }
  int dequeue_burst(T *out, int n) noexcept { return dequeue<true>(out, n); }
  int sp_enqueue_bulk(const T *in, int n) noexcept { return enqueue<false>(in, n); }
  int sc_dequeue_burst(T *out, int n) noexcept { return dequeue<false>(out, n); }

  bool try_push(const T &v) noexcept { return enqueue_bulk(&v, 1) == 1; }
  std::optional<T> try_pop() noexcept {
    T v;
    if (dequeue_burst(&v, 1) == 1) return v;
    return std::nullopt;
  }

 private:
  template <bool MP>
  int enqueue(const T *in, int n) noexcept {
    if (n <= 0 || static_cast<uint32_t>(n) > size_) return 0;
    if constexpr (kDirect) {
      auto *p = reinterpret_cast<void *const *>(in);
      return MP ? cp_alf_mp_enqueue(q_, p, n) : cp_alf_sp_enqueue(q_, p, n);
    } else {
      void *stack[kChunk];
      void **cells = n <= kChunk ? stack : new (std::nothrow) void *[static_cast<size_t>(n)];
      if (!cells) return 0;
      const unsigned un = static_cast<unsigned>(n);
      const unsigned got = cp_objpool_pop_bulk(cells_, cells, un);
      int done = 0;
      if (got == un) {
        for (unsigned i = 0; i < un; i++) std::memcpy(cells[i], &in[i], sizeof(T));
        done = MP ? cp_alf_mp_enqueue(q_, cells, n) : cp_alf_sp_enqueue(q_, cells, n);
      }
      if (done != n) cp_objpool_push_bulk(cells, got, cells_);  // never fails for cells
      if (cells != stack) delete[] cells;
      return done == n ? n : 0;
    }
  }

  template <bool MC>
  int dequeue(T *out, int n) noexcept {
    if (n <= 0) return 0;
    if constexpr (kDirect) {
      auto *p = reinterpret_cast<void **>(out);
      return MC ? cp_alf_mc_dequeue(q_, p, n) : cp_alf_sc_dequeue(q_, p, n);
    } else {
      int got = 0;
      while (got < n) {
        void *cells[kChunk];
        const int want = n - got < kChunk ? n - got : kChunk;
        int k = MC ? cp_alf_mc_dequeue(q_, cells, want) : cp_alf_sc_dequeue(q_, cells, want);
        if (k <= 0) break;
        if (k > want)
          k = want;  // never true (the C API returns at most `want`); tells the
                     // compiler that the copies stay inside out[0, n)
        for (int i = 0; i < k; i++) std::memcpy(&out[got + i], cells[i], sizeof(T));
        cp_objpool_push_bulk(cells, static_cast<unsigned>(k), cells_);
        got += k;
        if (k < want) break;  // the burst ended: as the C API's
      }
      return got;
    }
  }

  cp_alf_queue *q_ = nullptr;
  cp_objpool *cells_ = nullptr;  // only for a T not the size of a pointer
  uint32_t size_;
};

}  // namespace corepool
