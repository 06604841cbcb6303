// What the per-CPU access paths (this_cpu.cpp, static_area.cpp) need from the allocator
// (percpu.cpp): the chunk geometry, each chunk's `touched` bitmap, and the chunk directory
// that tells a live chunk's address from any other pointer without touching it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace corepool::pcpu {

// The directory of the state before setup: one zero word. Before setup only u == 0 passes the
// reject mask, and its slot is 0 whatever span_shift is, so this word is all such a reader reads.
extern std::atomic<uint64_t> g_no_chunks __attribute__((visibility("hidden")));

// The fields the this_cpu fast paths read come first, in one cache line (the struct is
// line-aligned): the reject mask, the directory pointer, the shifts and offsets.
struct alignas(64) geometry {
  // The address bits no handle has set: those above the 48-bit user space (no directory slot
  // covers them) and the offset bits, within a span, of units 1 and up (stride and span are
  // powers of two, so `u & reject_mask` is zero exactly when u lies below 2^48 in some span's
  // unit 0). One test instead of a slot bound and a unit bound. All ones until setup (every
  // u but 0 rejected: no handle exists yet), so that one test also stands for "no chunk yet".
  // Published (release, by setup) after every other field: a reader whose acquire load sees
  // the set mask sees them too; one that sees all ones reads only dir and span_shift, both
  // atomics, for u == 0.
  std::atomic<uintptr_t> reject_mask{~uintptr_t{0}};
  // One bit per span-aligned slot of the 48-bit user address space: set while a chunk lives
  // there (set by chunk creation before any handle into it exists, cleared before the chunk
  // is unmapped). Lazily populated zero pages: reading an unused part costs no memory.
  // g_no_chunks until setup, never null.
  std::atomic<std::atomic<uint64_t> *> dir{&g_no_chunks};
  std::atomic<unsigned> span_shift{0};  // log2(span)
  unsigned nr_cpus = 0;     // units 0 .. nr_cpus-1 are CPUs; unit nr_cpus is the fallback unit
  uintptr_t span_mask = 0;  // ~(span - 1): the chunk base of any address inside it
  size_t touched_off = 0;   // the touched bitmap, from the chunk base
  size_t stride = 0;        // unit u of a chunk is at base + u * stride (a power of two)
  // Not on the fast paths.
  size_t check_off = 0;  // checked mode: the live and pooled bitmaps, from the chunk base
  bool rseq = false;     // process-wide rseq mode (fixed at load time)
};

// Written once under the allocator lock before the first handle exists (reject_mask and
// g_ready publish it); every caller holding a handle got it through some synchronisation
// with that allocation, so plain reads are ordered after the write.
// Hidden: the shared library addresses it relative to the instruction pointer, with no GOT
// load on the fast paths.
extern geometry g_geo __attribute__((visibility("hidden")));
extern std::atomic<bool> g_ready;

// True when `u` lies in unit 0 of a live chunk: the form of every handle (and handle +
// offset). Never dereferences `u`; lock-free, async-signal-safe.
inline bool is_area(uintptr_t u) noexcept {
  const geometry &g = g_geo;
  // Above user space, not in a unit 0, or no setup yet (then only u == 0 goes on). Acquire:
  // pairs with init_config's release store of the mask, after dir and span_shift.
  if (u & g.reject_mask.load(std::memory_order_acquire)) return false;
  const uintptr_t slot = u >> g.span_shift.load(std::memory_order_relaxed);
  const std::atomic<uint64_t> *dir = g.dir.load(std::memory_order_relaxed);
  return dir[slot / 64].load(std::memory_order_relaxed) >> (slot % 64) & 1;
}

inline std::atomic<uint64_t> *touched_words(uintptr_t u) noexcept {
  return reinterpret_cast<std::atomic<uint64_t> *>((u & g_geo.span_mask) + g_geo.touched_off);
}
// Marks unit `unit` of u's chunk as possibly non-zero. Must happen before the caller can
// write the copy; relaxed is enough: the write that matters to the allocator (a later reuse)
// is ordered by the free's seq_cst fetch_or and the drain's exchange.
inline void mark_touched(uintptr_t u, unsigned unit) noexcept {
  std::atomic<uint64_t> &w = touched_words(u)[unit / 64];
  const uint64_t m = 1ull << (unit % 64);
  if (!(w.load(std::memory_order_relaxed) & m)) w.fetch_or(m, std::memory_order_relaxed);
}
inline bool is_touched(uintptr_t u, unsigned unit) noexcept {
  return touched_words(u)[unit / 64].load(std::memory_order_relaxed) >> (unit % 64) & 1;
}

// Allocates like cp_alloc_percpu but never starts the background worker (load-time use by
// static per-CPU variables, before main). Takes the allocator lock. NULL on failure.
void *alloc_at_load(size_t size, size_t align) noexcept;

// ---- checked mode (misuse.cpp; only called while check_enabled()) ------------------------
// Words of one chunk's live bitmap (and of its pooled bitmap): one bit per allocation unit.
constexpr size_t kCheckWords = 64 * 1024 / 8 / 64;
// Allocation (under the allocator lock): `handle` starts a live allocation.
void check_mark_live(const void *handle) noexcept;
// cp_free_percpu, after its handle checks: true when this free owns the live allocation at
// `pcp` (it cleared the live bit); else reported (one stderr line) and the free must stop.
// Lock-free, async-signal-safe.
bool check_claim(const void *pcp) noexcept;

}  // namespace corepool::pcpu
