// Address space and NUMA placement: the only place that calls mmap/madvise/mbind.
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
// Give the pages back to the OS and make the range inaccessible again (reserve state).
int os_decommit(void *p, size_t size) noexcept;
// Give the pages back but keep the range accessible: it reads as zeros on next touch.
int os_purge(void *p, size_t size) noexcept;
// Unmap a range obtained from os_reserve/os_alloc.
int os_release(void *p, size_t size) noexcept;
// Reserve + commit in one step: zeroed, readable, writable.
void *os_alloc(size_t size, size_t align) noexcept;

// Prefer NUMA node `node` for the pages of the range (MPOL_PREFERRED; pages already
// faulted in stay where they are). -ENOSYS where the kernel has no NUMA support; 0 on a
// single-node machine.
int os_bind_node(void *p, size_t size, int node) noexcept;
// Ask for transparent huge pages on the range (MADV_HUGEPAGE); -EINVAL where unsupported.
int os_hugepage_hint(void *p, size_t size) noexcept;
// Number of resident pages in [p, p+size) (mincore), or a negative errno.
long os_resident_pages(const void *p, size_t size) noexcept;

}  // namespace corepool::platform
