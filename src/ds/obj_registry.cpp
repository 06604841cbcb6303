// obj_registry (obj_registry.h): tables, the window scan, and the E1-E3 steps.
#include "ds/obj_registry.h"

#include "platform/memory.h"

namespace corepool::ds {
namespace {

constexpr uint64_t kEmpty = 0, kTomb = 1;
constexpr unsigned kStateShift = 56;
constexpr uint64_t kAddrMask = (uint64_t{1} << kStateShift) - 1;

uint64_t key_of(const void *addr) noexcept {
  return reinterpret_cast<uintptr_t>(addr) & kAddrMask;
}
uint64_t word(uint64_t key, unsigned s) noexcept {
  return key | uint64_t{s} << kStateShift;
}
// First entry of key's window in a table of 2^bits entries (Fibonacci hashing).
size_t slot_of(uint64_t key, unsigned bits) noexcept {
  return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

}  // namespace

void obj_registry::destroy() noexcept {
  for (unsigned i = 0; i < kMaxTables; i++) {
    std::atomic<uint64_t> *t = tables_[i].load(std::memory_order_relaxed);
    if (!t) break;
    (void)platform::os_release(t, (size_t{1} << (log2_first_ + i)) * sizeof(uint64_t));
    tables_[i].store(nullptr, std::memory_order_relaxed);
  }
}

// E4: addr's entry, with the word loaded from it in *seen; NULL when it has none.
std::atomic<uint64_t> *obj_registry::find(uint64_t key, uint64_t *seen) const noexcept {
  for (unsigned i = 0; i < kMaxTables; i++) {
    std::atomic<uint64_t> *t = table(i);
    if (!t) return nullptr;
    const unsigned bits = log2_first_ + i;
    const size_t mask = (size_t{1} << bits) - 1;
    const size_t h = slot_of(key, bits);
    for (unsigned j = 0; j < kProbe; j++) {
      std::atomic<uint64_t> &e = t[(h + j) & mask];
      const uint64_t w = e.load(std::memory_order_acquire);  // pairs with E1's release
      if (w == kEmpty) break;                                // R2
      if ((w & kAddrMask) == key && (w >> kStateShift) != 0) {
        *seen = w;
        return &e;
      }
    }
  }
  return nullptr;
}

bool obj_registry::insert(const void *addr, state s) noexcept {
  const uint64_t key = key_of(addr);
  for (unsigned i = 0; i < kMaxTables; i++) {
    std::atomic<uint64_t> *t = table(i);
    const unsigned bits = log2_first_ + i;
    if (!t) {
      const size_t bytes = (size_t{1} << bits) * sizeof(uint64_t);
      auto *fresh = static_cast<std::atomic<uint64_t> *>(
          platform::os_alloc(bytes, platform::page_size()));  // zeroed: all empty
      if (!fresh) return false;
      // Publishes the table (acq_rel: its zeroed entries before any reader's acquire).
      if (tables_[i].compare_exchange_strong(t, fresh, std::memory_order_acq_rel,
                                             std::memory_order_acquire))
        t = fresh;
      else
        (void)platform::os_release(fresh, bytes);  // another thread made table i first
    }
    const size_t mask = (size_t{1} << bits) - 1;
    const size_t h = slot_of(key, bits);
    for (unsigned j = 0; j < kProbe; j++) {
      std::atomic<uint64_t> &e = t[(h + j) & mask];
      uint64_t w = e.load(std::memory_order_relaxed);
      while (w == kEmpty || w == kTomb) {
        // E1: release: a change that finds the entry (acquire) sees it whole.
        if (e.compare_exchange_weak(w, word(key, s), std::memory_order_release,
                                    std::memory_order_relaxed))
          return true;
      }
    }
  }
  return false;
}

obj_registry::state obj_registry::change(const void *addr, state from, state to) noexcept {
  const uint64_t key = key_of(addr);
  uint64_t w = 0;
  std::atomic<uint64_t> *e = find(key, &w);
  while (e) {
    const auto cur = static_cast<state>(w >> kStateShift);
    if ((w & kAddrMask) != key || cur == kAbsent) return kAbsent;  // erased (and reused)
    if (cur != from) return cur;
    // E2 (R3): the address and its state in one word.
    if (e->compare_exchange_weak(w, word(key, to), std::memory_order_acq_rel,
                                 std::memory_order_acquire))
      return from;
  }
  return kAbsent;
}

bool obj_registry::erase(const void *addr) noexcept {
  const uint64_t key = key_of(addr);
  uint64_t w = 0;
  std::atomic<uint64_t> *e = find(key, &w);
  while (e) {
    if ((w & kAddrMask) != key || (w >> kStateShift) == 0) return false;
    // E3: release: the tombstone after whatever the eraser did with the object.
    if (e->compare_exchange_weak(w, kTomb, std::memory_order_release, std::memory_order_relaxed))
      return true;
  }
  return false;
}

}  // namespace corepool::ds
