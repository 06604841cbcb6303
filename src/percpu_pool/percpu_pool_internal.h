// Internal view of percpu_pool for tests and benchmarks.
#pragma once

#include <corepool/percpu_pool.h>

#include <cstdint>

namespace corepool::percpu_pool {
// Refills requested by alloc so far (scheduled or coalesced with a pending one).
uint64_t triggers(const cp_percpu_pool *p);
// Allocs that found the pool empty.
uint64_t empty_allocs(const cp_percpu_pool *p);
// Waits until no refill is queued or running on the background worker.
void flush(cp_percpu_pool *p);
}  // namespace corepool::percpu_pool
