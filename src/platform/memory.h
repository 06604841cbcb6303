// Address space and NUMA placement: the only place that calls mmap/munmap/mprotect/mbind/mincore.
//
// Contract for all functions: 0 (or a pointer) on success, a negative errno (or nullptr with
// errno set) on failure. None of them blocks on a lock; all are thread-safe. They are system
// calls, so none is for a signal handler unless marked async-signal-safe.
#pragma once

#include <cstddef>

namespace corepool::platform {

size_t page_size() noexcept;  // async-signal-safe after the first call (cached)

// Reserve `size` bytes of address space aligned to `align` (a power of two, at least the
// page size), inaccessible and not backed (PROT_NONE, MAP_NORESERVE).
void *os_reserve(size_t size, size_t align) noexcept;
// Make [p, p+size) readable and writable; pages are zero-filled on first touch. Page-aligned.
int os_commit(void *p, size_t size) noexcept;
// Unmap a range obtained from os_reserve/os_alloc: how memory goes back to the OS (a pool
// releases a whole range once nothing in it is in use; no pool returns pages of a live range).
int os_release(void *p, size_t size) noexcept;
// Reserve + commit in one step: zeroed, readable, writable.
void *os_alloc(size_t size, size_t align) noexcept;

// Prefer NUMA node `node` for the pages of the range (MPOL_PREFERRED; pages already
// faulted in stay where they are). -ENOSYS where the kernel has no NUMA support; 0 on a
// single-node machine.
int os_bind_node(void *p, size_t size, int node) noexcept;
// Number of resident pages in [p, p+size) (mincore), or a negative errno. Diagnostics: the
// tests use it to check that reserved and committed memory stays unbacked until touched.
long os_resident_pages(const void *p, size_t size) noexcept;

}  // namespace corepool::platform
