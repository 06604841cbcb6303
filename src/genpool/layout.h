// gen_pool's memory format: the pool header, the chunk records and their maps and hints, all
// reached by offsets from the header (for a shared pool everything lies in one mapping).
//
// Map (one per chunk, two bits per granule, 32 granules per word):
//   word j (std::atomic<uint64_t>) holds granules [32j, 32j + 32): their alloc bits in its
//   low half and their start bits in its high half, so that a claim sets an allocation's
//   alloc bits and its start mark with one CAS, and a free clears both with one. Scans see
//   only the alloc bits, 64 granules at a time, through ds::paired_view (words 2k and 2k + 1
//   make view k). Granules past nbits are permanently allocated (alloc bits, no start), so
//   scans need no tail special case (ds/hint_bitmap.h B1).
// Hints (the protocol is in hints.h):
//   bhint[b]  per block of 512 granules: {seq:34, contig:10, left:10, right:10}.
//   ghint[g]  per group of 64 blocks: {seq:32, val:32}.
// avail: a ds::striped_counter per chunk (stripe_set in the chunk record, lines after it).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "corepool/genpool.h"
#include "ds/bgwork.h"
#include "ds/hint_bitmap.h"
#include "ds/striped_counter.h"
#include "platform/pshared_mutex.h"
#include "stats/stats.h"

namespace corepool::genpool {

using aword = std::atomic<uint64_t>;
inline constexpr uint64_t kNone = ds::kNoBit;  // "nothing found"
inline constexpr uint64_t kAllocHalf = ds::paired_view::kLow;

inline constexpr uint64_t kBlockBits = 512;
inline constexpr uint64_t kBlockViews = kBlockBits / 64;
inline constexpr uint64_t kGroupBlocks = 64;
inline constexpr uint64_t kMagic = 0x6c6f6f706e656763ULL;  // "cgenpool"
// 2: avail striped per CPU, spread flag; 3: one map; 4: opaque add lock of 64 bytes;
// 5: chunks inside a shared region stored as offsets, no stored tail, 64 stripes when shared
inline constexpr uint32_t kVersion = 5;
inline constexpr uint64_t kSharedStripes = 64;  // any process's CPU count fits (ds/striped)
inline constexpr uint64_t kMaxBits = uint64_t{1} << 56;  // granules per chunk
inline constexpr int kMaxOrder = 40;

// Alloc bit and start bit of granule i in its word map[i / 32].
inline uint64_t alloc_bit(uint64_t i) noexcept {
  return uint64_t{1} << (i % 32);
}
inline uint64_t start_bit(uint64_t i) noexcept {
  return uint64_t{1} << (32 + i % 32);
}
using ds::word_mask;

// ---- hint packing ---------------------------------------------------------------------------
struct bh {
  uint64_t seq;
  uint32_t contig, left, right;
};
inline bh bh_unpack(uint64_t v) noexcept {
  return {v >> 30, static_cast<uint32_t>((v >> 20) & 1023), static_cast<uint32_t>((v >> 10) & 1023),
          static_cast<uint32_t>(v & 1023)};
}
constexpr uint64_t bh_pack(uint64_t seq, uint64_t contig, uint64_t left, uint64_t right) noexcept {
  return (seq << 30) | (contig << 20) | (left << 10) | right;
}
inline uint64_t gh_val(uint64_t v) noexcept {
  return v & 0xffffffffu;
}
inline uint64_t gh_seq(uint64_t v) noexcept {
  return v >> 32;
}
inline constexpr uint64_t kBhFields = (uint64_t{1} << 30) - 1;  // contig, left, right
inline constexpr uint64_t kBhAllFree = bh_pack(0, kBlockBits, kBlockBits, kBlockBits);

// ---- records --------------------------------------------------------------------------------
struct chunk {
  std::atomic<int64_t> next;          // offset of the next chunk from the header, 0 = none
  uint64_t start;                     // first address, or offset from the header (rel)
  uint64_t nbits;                     // granules
  uint64_t phys;                      // UINT64_MAX: none
  uint64_t owner;                     // cookie (process-local meaning)
  uint64_t nviews, nblocks, ngroups;  // nviews: 64-granule views of the map (2 words each)
  uint64_t meta_bytes;
  uint64_t home_stride;    // spread mode: granules between CPU k's home and k+1's (home_granule)
  ds::stripe_set avail;    // free granules (lines right after this record)
  uint64_t tail_all_free;  // fields of the last block's hint when all its granules are free
  // ~0: the chunk lies inside the shared region and `start` is its offset from the header
  // (every process adds its own mapping's base, chunk_start); 0: `start` is an address.
  uint64_t rel;
  uint64_t pad;
  // followed by the avail lines (ds::striped_bytes(avail.nstripes)), map[2 * nviews],
  // bhint[nblocks], ghint[ngroups]
  std::atomic<int64_t> *avail_lines() noexcept {
    return reinterpret_cast<std::atomic<int64_t> *>(this + 1);
  }
  aword *alloc() noexcept {
    return reinterpret_cast<aword *>(reinterpret_cast<char *>(this + 1) +
                                     ds::striped_bytes(avail.nstripes));
  }
  ds::paired_view bits() noexcept { return {alloc()}; }
  aword *bhint() noexcept { return alloc() + 2 * nviews; }
  aword *ghint() noexcept { return bhint() + nblocks; }
};
static_assert(sizeof(chunk) % 64 == 0);

struct header {
  std::atomic<uint64_t> magic;  // kMagic once formatted (release store, last)
  uint32_t version;
  int32_t order;
  uint64_t shared;
  uint64_t mem_size;                // shared: bytes of the region
  std::atomic<uint64_t> bump;       // shared: next free metadata offset (under the lock)
  std::atomic<uint64_t> algo_word;  // algo | value << 8
  std::atomic<uint64_t> spread;     // 1: each CPU's first-fit search starts at its home
  std::atomic<int64_t> first;       // first chunk offset, 0 = none
  platform::pshared_mutex lock;     // add lock (robust + process-shared in shared mode)
};
inline constexpr uint64_t kHeaderBytes = (sizeof(header) + 63) & ~uint64_t{63};

inline uint64_t meta_bytes_for(uint64_t nbits, uint64_t nstripes) noexcept {
  uint64_t nblocks = (nbits + kBlockBits - 1) / kBlockBits;
  uint64_t ngroups = (nblocks + kGroupBlocks - 1) / kGroupBlocks;
  uint64_t nviews = nblocks * kBlockViews;
  return sizeof(chunk) + ds::striped_bytes(nstripes) + 8 * (2 * nviews + nblocks + ngroups);
}

// ---- navigation -----------------------------------------------------------------------------
// The chunk list (add.cpp keeps it): first -> next -> ... -> 0, offsets from the header. In a
// shared region every chunk record is carved from the bump offset and appended at the tail,
// so offsets strictly increase along the list (L1): a walk that requires it cannot cycle.
inline chunk *at(header *h, int64_t off) noexcept {
  return off ? reinterpret_cast<chunk *>(reinterpret_cast<uintptr_t>(h) +
                                         static_cast<uint64_t>(off))
             : nullptr;
}
inline int64_t off_of(header *h, chunk *c) noexcept {
  return static_cast<int64_t>(reinterpret_cast<uintptr_t>(c) - reinterpret_cast<uintptr_t>(h));
}
inline uint64_t gran(header *h) noexcept {
  return uint64_t{1} << h->order;
}
inline uint64_t granules(header *h, size_t size) noexcept {
  return (size >> h->order) + ((size & (gran(h) - 1)) != 0);
}
// First address of c in this process.
inline uint64_t chunk_start(header *h, chunk *c) noexcept {
  return c->start + (reinterpret_cast<uintptr_t>(h) & c->rel);
}

// ---- avail (I6 in hints.h) ------------------------------------------------------------------
// (static inline, and so every inline function avail_add is inlined into: platform/rseq.h.)
static inline void avail_add(chunk *c, int64_t d) noexcept {
  ds::striped_add(c->avail, c->avail_lines(), d);
}
inline int64_t avail_sum(chunk *c) noexcept {
  return ds::striped_sum(c->avail, c->avail_lines());
}
inline uint64_t avail_of(chunk *c) noexcept {
  int64_t a = avail_sum(c);
  return a < 0 ? 0 : static_cast<uint64_t>(a);
}

}  // namespace corepool::genpool

// A process's handle on a pool (process-local; a shared pool's state is all in `hdr`).
struct cp_gen_pool {
  corepool::genpool::header *hdr = nullptr;
  bool shared = false;
  // Shared: bytes of the region this process trusts (checked at attach; the header's copy
  // may change under it) and the highest chunk offset validated so far (validate.cpp).
  uint64_t limit = 0;
  std::atomic<int64_t> valid_upto{0};
  // Growth hook (process-local, grow.cpp).
  std::atomic<size_t> threshold{0};
  cp_gen_pool_grow_fn grow = nullptr;
  void *grow_ctx = nullptr;
  bool engine_ready = false;
  corepool::ds::refill_engine engine;
  cp_gen_pool *fork_prev = nullptr, *fork_next = nullptr;  // private pools (fork.cpp)
  // Statistics (process-local, stats.cpp): genpool::kFailedAllocs, kGrowCalls.
  corepool::ds::striped_counter counters;
  corepool::stats::registration reg;  // in the COREPOOL_STATS exit report
};
