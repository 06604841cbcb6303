// objpool's pool header and object check, shared by its operations (objpool.cpp) and its
// accessors (objpool_info.cpp). The composition and its invariants are in objpool.cpp.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "ds/cas_array.h"
#include "ds/cpu_ring.h"
#include "ds/pcpu_cache.h"
#include "ds/striped_counter.h"
#include "ds/thread_cache.h"
#include "stats/stats.h"

namespace corepool::objpool_impl {
constexpr size_t kLine = 64;
// One ring (ds/cpu_ring.h): 64-byte header, then mask + 1 slots. Allocated on its CPU's node.
using ring = corepool::ds::cpu_ring;
constexpr unsigned kOverflowRings = 2;  // O2
// Slow-path statistics (cp_objpool_stats). Spills and overflows cost nothing: the rings'
// tails are free-running counts of every object ever pushed (R5), so they are the rings'
// tails less the objects init put there, plus the spill array's puts (counted, a last
// resort). Refills count cache misses, only where the cache serves the thread: for a
// thread it cannot serve (no cache, no rseq) every pop goes to the rings, its normal path.
// Counters of the pool's striped bank:
enum : unsigned { kRefills, kSpillArrayPuts, kSteals };
}  // namespace corepool::objpool_impl

struct cp_objpool {
  // Read-only after init.
  char *slab;             // nr_objs objects, `stride` bytes apart, page-aligned base
  size_t slab_bytes;      // mapped size
  size_t objs_bytes;      // nr_objs * stride
  uint64_t stride_inv;    // inverse of stride's odd part mod 2^64 (see valid())
  unsigned stride_shift;  // trailing zero bits of stride
  uint32_t stride;
  int nr_objs;
  int object_size;
  unsigned initial_overflow;  // objects init put in overflow[0] (stats: its tail less these)
  unsigned nr_cpus;           // cp_nr_cpu_ids()
  unsigned ring_cap;          // slots per CPU ring (power of two)
  bool rseq;                  // per-CPU rings have the rseq producer (else the locked one)
  corepool::objpool_impl::ring
      *overflow[corepool::objpool_impl::kOverflowRings];  // locked-producer rings, each with room
                                                          // for every object
  corepool::ds::cas_array *spill;  // a slot per object: where a push goes when all refuse
  // Per-CPU rseq stacks in front of the rings (disabled without rseq or the rseq fence, or
  // by CP_OBJPOOL_F_NOCACHE). Objects there are still reachable from every CPU: pop steals
  // them (fence + drain) when every ring is empty.
  corepool::ds::pcpu_cache cache;
  // Per-thread stacks in front of the cache (off unless asked for; see init). Objects there
  // are reachable too: pop steals them after the CPU caches.
  corepool::ds::thread_cache tier;
  // Checked mode (check.h; O3 in objpool.cpp, misuse.cpp): one state byte per object, NULL
  // when off; the pool then has neither cache nor tier.
  std::atomic<uint8_t> *state;
  size_t state_bytes;
  std::atomic<bool> finished;  // checked mode: fini has run
  void *context;
  cp_objpool_fini_cb release;
  size_t self_bytes;
  // Lifetime: 1 for the pool + 1 per object (each object holds one until dropped; fini
  // turns the free objects' references and the pool's into one subtraction).
  alignas(corepool::objpool_impl::kLine) std::atomic<int64_t> ref;
  corepool::ds::striped_bank counters;  // lines in this mapping, after rings[]
  corepool::stats::registration reg;    // in the COREPOOL_STATS exit report
  alignas(corepool::objpool_impl::kLine)
      corepool::objpool_impl::ring *rings[];  // nr_cpus entries, nullptr for impossible CPUs
};

namespace corepool::objpool_impl {

// ---- object validity: O(1), always on -------------------------------------------------------

// Membership in one compare (Hacker's Delight, "exact division by constants"): write
// stride = 2^k * d with d odd and inv = d^-1 mod 2^64. For off = q * stride, off * inv =
// q * 2^k exactly and rotating right by k gives q. Any other off gives a huge value: if one of
// its low k bits is set, inv being odd keeps it set and the rotate moves it to the top; if
// not, off = m * 2^k with m not a multiple of d, and m -> m * inv is a bijection mod 2^(64-k)
// that maps the multiples of d onto 0 .. (2^(64-k) - 1) / d, so m lands above that, far above
// nr_objs (< 2^24). So off is an object's start iff rotr(off * inv, k) < nr_objs, which also
// covers off >= objs_bytes and obj < slab (off wraps). One multiply, one rotate, one compare
// on every push: W1 3.8-3.9 ns per pair against 4.3 for a range check plus the same test, and
// 3.1-3.3 with no check at all (the push's branch waits on the multiply).
inline bool valid(const cp_objpool *p, const void *obj) noexcept {
  const uint64_t off = reinterpret_cast<uintptr_t>(obj) - reinterpret_cast<uintptr_t>(p->slab);
  return std::rotr(off * p->stride_inv, static_cast<int>(p->stride_shift)) <
         static_cast<uint64_t>(p->nr_objs);
}

// A NULL pool: the accessors' one rule (corepool/objpool.h): -EINVAL, 0 or NULL, never a crash.
int null_pool() noexcept;

// ---- checked mode (O3; misuse.cpp) -----------------------------------------------------------

// An object's state. kFree is 0: the zeroed table starts with every object in the pool.
enum : uint8_t { kFree = 0, kHeld = 1, kGone = 2 };

// The index of a valid object (the quotient valid() computes).
inline uint32_t index_of(const cp_objpool *p, const void *obj) noexcept {
  const uint64_t off = reinterpret_cast<uintptr_t>(obj) - reinterpret_cast<uintptr_t>(p->slab);
  return static_cast<uint32_t>(std::rotr(off * p->stride_inv, static_cast<int>(p->stride_shift)));
}

// K1 for n valid objects a caller gives back (push, push_bulk: `fn`): all or nothing. 0, or
// the error of the rule (-ESHUTDOWN after fini, -EALREADY in the pool, -EINVAL dropped), one
// stderr line, and every state as it was. Lock-free, async-signal-safe.
int give_back_checked(cp_objpool *p, void *const *objs, unsigned n, const char *fn) noexcept;
// K2 for n objects a pop took out of the pool's tiers.
void take_checked(cp_objpool *p, void *const *objs, unsigned n) noexcept;
// K3 for a valid object given to drop: 0, or -EALREADY (in the pool) / -EINVAL (dropped
// already) with one stderr line and the reference kept.
int drop_checked(cp_objpool *p, const void *obj) noexcept;

}  // namespace corepool::objpool_impl
