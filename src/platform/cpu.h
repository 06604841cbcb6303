// The platform's CPU API: which CPU the caller runs on, and where corepool learns it.
//
// The public corepool/cpu.h is defined on top of this header (src/capi/cpu.cpp); pools and
// data structures use this one, never the public functions. The possible-CPU count, the
// NUMA node of a CPU and the cache line size come from platform/topology.h, included here.
//
// Every function is thread-safe, async-signal-safe and never blocks.
#pragma once

#include "platform/topology.h"

namespace corepool::platform {

// Where the CPU id comes from; chosen once per process (load time, or the first call).
// The values are those of the public enum cp_cpu_id_source.
enum class id_source : int {
  rseq_glibc = 1,  // glibc's registered rseq area
  rseq_own = 2,    // an area corepool registered for each thread
  getcpu = 3,      // no rseq: sched_getcpu(); per-CPU fast paths take their fallbacks
};

// The source chosen for this process (makes sure it is chosen).
id_source cpu_id_source() noexcept;
// True when per-CPU fast paths run as restartable sequences (the source is not getcpu).
bool rseq_enabled() noexcept;
// The CPU the caller ran on at some instant during the call: a hint, the thread may
// migrate right after. Always in [0, nr_cpu_ids()), also when the kernel reports an id
// outside the possible mask. For a fast path that wants no call, see
// rseq_registered_area_if_known() in platform/rseq.h.
unsigned current_cpu() noexcept;

}  // namespace corepool::platform
