// obj_registry: a lock-free map from an object's address to its state (free in the pool, or
// held by a caller), for the checked mode of a pool whose objects come from elsewhere (the
// backing allocator of qmempool) and so have no index of their own. Only used in checked
// mode: every operation costs a hash and a short scan.
//
// Layout: up to kMaxTables open-addressed tables, table i of (first << i) entries, each made
// when the ones before it have no room and kept until destroy. An entry is one 64-bit word:
// 0 empty, 1 tombstone, else (address & kAddrMask) | state << 56 (kFree 1, kHeld 2), so an
// address and its state change together in one CAS. A user address fits in 56 bits on
// x86-64 (also with 5-level paging) and aarch64; the top byte (aarch64 tags) is ignored.
//
// Protocol
//   E1  insert(addr, s): in each table in order, the first entry of the kProbe-entry window
//       at hash(addr) that is empty or a tombstone, CAS -> addr|s (release). A lost CAS moves
//       on. No room in any table: make table i+1 and publish it by CAS on tables_[i+1]
//       (acq_rel; the loser unmaps its own). May map memory.
//   E2  change(addr, from, to): find addr's entry (acquire loads), CAS addr|from -> addr|to
//       (acq_rel). A failed CAS reloads: it either sees another state (the answer) or, for
//       an entry erased meanwhile, no entry (kAbsent).
//   E3  erase(addr): CAS addr|state -> tombstone (release).
//   E4  lookup: the window of addr's hash in every table, each up to its first empty entry.
//
// Invariants
//   R1  An address has at most one entry: the pool inserts an address when its source
//       hands it out and erases it before giving it back, so the source cannot hand the same
//       address out again while the entry lives.
//   R2  An entry never becomes empty again, so E4 may stop at an empty entry: the insert
//       took the first empty-or-tombstone entry of its window, and the entries before it,
//       live then, are live or tombstones since.
//   R3  A state changes only by one CAS on the address's word: of two racing changes from
//       the same state (two frees of one object) exactly one succeeds, whatever the
//       interleaving, and a change never applies to an entry that another address reused.
//   R4  Lock-free; change, erase and lookup never allocate (async-signal-safe); a thread
//       stopped anywhere holds no entry.
//
// Concurrency (any threads and signal handlers; init/destroy only while nothing else runs)
//   |          | insert         | change       | erase        |
//   | insert   | yes (E1 CAS)   | yes          | yes          |
//   | change   |                | yes (R3)     | yes (R3)     |
//   | erase    |                |              | yes (R1: different addresses) |
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace corepool::ds {

class obj_registry {
 public:
  enum state : unsigned { kAbsent = 0, kFree = 1, kHeld = 2 };
  static constexpr unsigned kMaxTables = 24;
  static constexpr unsigned kProbe = 32;  // window of one address in one table

  // The first table has 2^log2_first entries (>= 6); none is mapped before the first insert.
  void init(unsigned log2_first) noexcept { log2_first_ = log2_first < 6 ? 6 : log2_first; }
  // Unmaps every table. Quiescent only.
  void destroy() noexcept;

  // E1: registers addr (not registered, non-NULL) in state s. False when no table has room
  // and no new one can be mapped. Lock-free; may map memory (not async-signal-safe).
  bool insert(const void *addr, state s) noexcept;
  // E2: `from` when addr was in state `from` and is now in `to`; else the state addr is in
  // (kAbsent: not registered). Lock-free, async-signal-safe.
  state change(const void *addr, state from, state to) noexcept;
  // E3: true when addr was registered (now it is not). Lock-free, async-signal-safe.
  bool erase(const void *addr) noexcept;

 private:
  std::atomic<uint64_t> *find(uint64_t key, uint64_t *seen) const noexcept;
  std::atomic<uint64_t> *table(unsigned i) const noexcept {
    return tables_[i].load(std::memory_order_acquire);  // pairs with the publishing CAS
  }
  std::atomic<std::atomic<uint64_t> *> tables_[kMaxTables] = {};
  unsigned log2_first_ = 12;
};

}  // namespace corepool::ds
