// The rseq fence: make one CPU's restartable sequences yield to a thread on another CPU.
//
// A per-CPU structure whose owner side is updated only by restartable sequences (no atomic
// read-modify-write) can still be taken over from another CPU: the remote thread first
// publishes a flag that every owner sequence reads before its commit, then calls
// rseq_fence(cpu). When rseq_fence returns 0, every sequence that ran on `cpu` has either
// committed (and its stores are visible to the caller) or will abort without committing,
// and every later sequence on `cpu` sees the flag. This is membarrier(2)'s
// MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ with MEMBARRIER_CMD_FLAG_CPU (Linux 5.10): an IPI to
// `cpu` if it runs a thread of this process, which restarts a sequence in progress there; a
// thread preempted inside a sequence restarts it anyway when it runs again.
#pragma once

namespace corepool::platform {

// Registers this process for rseq fences (once; later calls return the first result).
// True when rseq_fence can be used. Thread-safe; not async-signal-safe (a system call under
// a once-flag), call it when creating a pool.
bool rseq_fence_init() noexcept;

// True once rseq_fence_init() succeeded. Async-signal-safe.
bool rseq_fence_ready() noexcept;

// Fences CPU `cpu` (see above). 0, or a negative errno (then nothing is guaranteed: the
// caller must not touch the owner's state). Async-signal-safe; a system call (about 2 us
// here), so keep it off fast paths.
int rseq_fence(unsigned cpu) noexcept;

// Fences every CPU that runs a thread of this process (MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ
// without a CPU): afterwards no sequence that started before the call is in progress
// anywhere, which is what taking over a thread's own stack needs (its owner may run on any
// CPU). 0 or a negative errno, as rseq_fence. Async-signal-safe; a system call and one IPI
// per CPU running a thread of the process.
int rseq_fence_all() noexcept;

}  // namespace corepool::platform
