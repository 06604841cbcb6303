// Internal view of the per-CPU allocator, for tests and for percpu_pool.
#pragma once

#include <cstddef>
#include <vector>

namespace corepool::pcpu {

constexpr size_t kMinAlloc = 8;             // bytes per bitmap bit
constexpr size_t kUnitSize = 64 * 1024;     // bytes per CPU per chunk (the stride)
constexpr size_t kMaxAllocSize = 32 * 1024; // largest allocation (PCPU_MIN_UNIT_SIZE)
constexpr size_t kBlockSize = 4096;         // bytes per hint block

struct chunk_info {
  char *base;           // unit 0
  size_t stride;        // unit u is at base + u * stride
  unsigned units;       // nr_cpu_ids + 1 (the last one is the fallback-add unit)
  size_t free_bytes, contig_bytes;
  unsigned nr_allocs;
};

// Processes pending frees, then releases every fully free chunk but one (what the background
// worker does after frees). Returns the number of chunks released. May block.
int reclaim_now() noexcept;
std::vector<chunk_info> chunks();
// Frees that the allocator rejected (double free, not a handle) since start.
unsigned long bad_frees() noexcept;

}  // namespace corepool::pcpu
