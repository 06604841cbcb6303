// Deferred work on one shared background thread, and the watermark refill engine built on it.
//
// Pools that must never block their fast path (percpu_pool's alloc, gen_pool's growth hook)
// hand slow work (mmap, user callbacks) to this worker. The contract that makes that safe:
//
//   bgwork_start()         not async-signal-safe (may create the thread); call it where
//                          the pool is created. Idempotent.
//   schedule_work(w)       lock-free and async-signal-safe: one CAS on the item, one CAS
//                          push on the queue, one futex wake. Never waits for the worker.
//   cancel_work_sync(w)    may block: waits until `w` is neither queued nor running. Not
//                          from a signal handler, not from the work function itself.
//   flush_work(w)          may block: waits until `w` is not queued and not running.
//
// Item states (one atomic word): IDLE -> QUEUED (schedule) -> RUNNING (worker took it) ->
// IDLE; schedule during RUNNING sets QUEUED|RUNNING so the item runs once more after the
// current run (no request is lost); cancel sets CANCEL, which makes the worker drop a queued
// item and makes schedule a no-op until cancel_work_sync returns.
//
// The worker thread starts on the first bgwork_start() and stops at process exit (an atexit
// handler joins it) or when bgwork_stop() is called (tests; no work may be scheduled
// concurrently). fork(): the child gets a worker of its own, started by the fork handler;
// the items queued in the parent at the fork, and the one the worker was running (run again
// from its start), run in the child as well; the parent's worker goes on. One window is not
// covered: an item whose schedule_work was between its two CASes in another thread at the
// fork stays "queued" in the child and is never run there.
#pragma once

#include <atomic>
#include <cstdint>

namespace corepool::ds {

struct work_item {
  void (*fn)(work_item *) = nullptr;  // runs on the worker thread; may block, may allocate
  void *arg = nullptr;                // for fn
  std::atomic<uint32_t> state{0};
  work_item *next = nullptr;  // queue link, owned by the queue while QUEUED
};

void bgwork_start() noexcept;
// Stops and joins the worker (pending items run first). Tests and process exit.
void bgwork_stop() noexcept;
// Returns true if this call queued the item (false: already queued/running-and-requeued,
// cancelled, or the worker is not started).
bool schedule_work(work_item *w) noexcept;
void cancel_work_sync(work_item *w) noexcept;
void flush_work(work_item *w) noexcept;
// Re-enables scheduling of an item after cancel_work_sync.
void work_reset(work_item *w) noexcept;

// Watermark refill engine: keeps some level between `low` and `high` by running `fill` on
// the worker whenever an observer reports a level under `low`.
//   note_level(level): async-signal-safe; schedules a fill to `high` when level < low.
//   fill(ctx, target): runs on the worker; brings the level up to `target` if it can.
struct refill_engine {
  void (*fill)(void *ctx, int target) = nullptr;
  void *ctx = nullptr;
  std::atomic<int> low{0};
  std::atomic<int> high{0};
  std::atomic<uint64_t> runs{0};  // completed fills (statistics and tests)
  work_item work;

  void init(void (*fill_fn)(void *, int), void *c, int lo, int hi) noexcept;
  bool note_level(int level) noexcept;  // true when a fill was queued by this call
  bool kick() noexcept;                 // queue a fill to `high` regardless of the level
  // Cancels a pending fill and waits for a running one; later note_level/kick work again.
  void cancel() noexcept {
    cancel_work_sync(&work);
    work_reset(&work);
  }
};

}  // namespace corepool::ds
