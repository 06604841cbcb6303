// Checked mode of the per-CPU allocator (check.h; declared in percpu_access.h and
// percpu_internal.h). With COREPOOL_CHECK=1 each chunk's metadata ends with two bitmaps of
// one bit per allocation unit (kCheckWords words each, at geometry::check_off; zero pages
// otherwise unused, absent when checked mode is off):
//   live    bit b set = a live allocation starts at unit b. K1: set by allocation (under the
//           allocator lock, before the handle is returned); K2: cleared by the one
//           cp_free_percpu whose fetch_and finds it set (of two racing frees one wins), before
//           the free's F1. A free that finds it clear (a double free, whenever the first
//           was; a pointer into an area) is reported and changes nothing.
//   pooled  bit b set = a percpu_pool holds the allocation in its cache (percpu_pool C1): a
//           free of it is refused (a stale free by someone who had the same handle before).
// Not detected: a double free after the range was allocated again (its live bit is set
// again); a stale free racing with the percpu_pool alloc that takes the area.
// Relaxed is enough everywhere: the bits order nothing; each is one atomic RMW or load.
#include <atomic>
#include <cerrno>
#include <cstdint>

#include "check.h"
#include "percpu/percpu_access.h"
#include "percpu/percpu_internal.h"

namespace corepool::pcpu {
namespace {

// The word of `map` (0: live, 1: pooled) and the bit of the handle `pcp`, or NULL when
// `pcp` is not a unit-aligned address in a live chunk (or checked mode is off).
uint64_t *check_word(const void *pcp, unsigned map, uint64_t *bit) noexcept {
  const auto u = reinterpret_cast<uintptr_t>(pcp);
  // g_ready first: its acquire load pairs with setup's release store, after which g_geo
  // (check_off included) is read-only.
  if (!g_ready.load(std::memory_order_acquire) || !g_geo.check_off || !is_area(u) ||
      u % kMinAlloc != 0)
    return nullptr;
  const size_t b = (u & ~g_geo.span_mask) / kMinAlloc;
  *bit = uint64_t{1} << (b % 64);
  auto *words = reinterpret_cast<uint64_t *>((u & g_geo.span_mask) + g_geo.check_off);
  return words + map * kCheckWords + b / 64;
}

}  // namespace

void check_mark_live(const void *handle) noexcept {
  uint64_t m;
  if (uint64_t *w = check_word(handle, 0, &m))
    std::atomic_ref<uint64_t>(*w).fetch_or(m, std::memory_order_relaxed);  // K1
}

bool check_claim(const void *pcp) noexcept {
  uint64_t m;
  uint64_t *live = check_word(pcp, 0, &m);
  if (!live) return true;  // not a handle: the caller's own check answers it
  const char *why = nullptr;
  if (std::atomic_ref<uint64_t>(live[kCheckWords]).load(std::memory_order_relaxed) & m)
    why = "the area is cached by a percpu_pool (a stale free)";
  else if (!(std::atomic_ref<uint64_t>(*live).fetch_and(~m, std::memory_order_relaxed) & m))  // K2
    why = "double free, or not the start of an allocation";
  if (!why) return true;
  (void)report_misuse(-EINVAL, "cp_free_percpu", why, pcp);
  return false;
}

bool live_handle(const void *pcp) noexcept {
  if (!check_enabled()) return true;
  uint64_t m;
  const uint64_t *w = check_word(pcp, 0, &m);
  return w && (std::atomic_ref<const uint64_t>(*w).load(std::memory_order_relaxed) & m);
}

void set_pooled(const void *pcp, bool on) noexcept {
  uint64_t m;
  uint64_t *w = check_word(pcp, 1, &m);
  if (!w) return;
  if (on)
    std::atomic_ref<uint64_t>(*w).fetch_or(m, std::memory_order_relaxed);
  else
    std::atomic_ref<uint64_t>(*w).fetch_and(~m, std::memory_order_relaxed);
}

}  // namespace corepool::pcpu
