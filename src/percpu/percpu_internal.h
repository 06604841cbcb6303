// Internal view of the per-CPU allocator, for tests and for percpu_pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace corepool::pcpu {

constexpr size_t kMinAlloc = 8;              // bytes per bitmap bit
constexpr size_t kUnitSize = 64 * 1024;      // bytes per CPU per chunk (the stride)
constexpr size_t kMaxAllocSize = 32 * 1024;  // largest allocation (PCPU_MIN_UNIT_SIZE)
constexpr size_t kBlockSize = 4096;          // bytes per hint block

struct chunk_info {
  char *base;      // unit 0
  size_t stride;   // unit u is at base + u * stride
  unsigned units;  // nr_cpu_ids + 1 (the last one is the fallback-add unit)
  size_t free_bytes, contig_bytes;
  unsigned nr_allocs;
};

// Processes pending frees, then releases every fully free chunk but one (what the background
// worker does after frees). Returns the number of chunks released. May block.
int reclaim_now() noexcept;
// Registers the allocator's fork() handlers: its lock is held across a fork, so a child never
// finds it held by a thread that does not exist there. Idempotent. A component whose locks
// are taken before the allocator's (percpu_pool's fill lock, the static-variable lock) calls
// it before registering its own handlers, so that its prepare handler runs first (prepare
// handlers run in the reverse order of registration).
void fork_handlers_init() noexcept;
std::vector<chunk_info> chunks();
// Frees that the allocator rejected (double free, not a handle) since start.
unsigned long bad_frees() noexcept;
// What cp_this_cpu_add_u64 does in a thread that cannot use rseq while the process runs in
// rseq mode: an atomic add to the chunk's fallback-add unit. Exposed so tests can mix it with
// rseq threads (a failed rseq registration cannot be forced portably).
void add_u64_no_rseq_thread(void *pcp, uint64_t v) noexcept;
// Makes the calling thread act as a thread that cannot run sequences (all of its this_cpu
// operations use the fallback copy) while the process is in rseq mode. Call it before the
// thread's first per-CPU operation. Tests only: a failed registration cannot be forced.
void force_fallback_thread(bool on) noexcept;

}  // namespace corepool::pcpu
