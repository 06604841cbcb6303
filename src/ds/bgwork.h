// Deferred work on one shared background thread, and the watermark refill engine built on it.
//
// Pools that must never block their fast path (percpu_pool's alloc, gen_pool's growth hook)
// hand slow work (mmap, user callbacks) to this worker. The contract that makes that safe:
//
//   bgwork_start()         not async-signal-safe (may create the thread); call it where
//                          the pool is created. Idempotent.
//   work_init(w, ...)      registers an item with the worker (takes a lock; normal context).
//   work_fini(w)           cancels it and takes it off the registry; after it returns the
//                          item may be freed. The destructor does it too.
//   schedule_work(w)       lock-free and async-signal-safe: one CAS on the item, one atomic
//                          add and one futex wake. Never waits for the worker.
//   cancel_work_sync(w)    may block: drops a queued run and waits for a running one.
//   flush_work(w)          may block: waits until `w` is neither queued nor running.
//   Not from a signal handler. From work running on the worker (inside any item's fn)
//   neither waits for the worker: cancel of another item never waits (only the running item
//   is waited for, and that is the caller); cancel of the caller's own item, and flush of
//   an item that is queued or running, return -EDEADLK.
//
// Item states (one atomic word): IDLE -> QUEUED (schedule) -> RUNNING (worker took it) ->
// IDLE; schedule during RUNNING sets QUEUED|RUNNING so the item runs once more after the
// current run (no request is lost); cancel sets CANCEL, which drops a queued run and makes
// schedule a no-op until work_reset.
//
// Protocol. The worker finds work by scanning the registry (under g_book) for QUEUED items,
// so a schedule is complete the moment its CAS succeeds: there is no second step a thread
// could stop in, and no queue a fork could cut in half.
//   S1 schedule: CAS state (acq_rel) sets QUEUED; S2 g_wake.fetch_add (release).
//   W1 worker: g_wake.load (acquire) before its scan; W2 the scan's state loads (acquire,
//      under g_book). If W1 reads S2's value, S1 happens-before W2, so the scan sees QUEUED;
//      otherwise the worker's futex wait on the value W1 read returns at once.
//   Invariant B1: QUEUED and RUNNING change only under g_book, except S1 (which only sets
//      QUEUED) and cancel's CANCEL bit; so under g_book the registry is a complete picture of
//      pending work.
//
// fork(): the fork handlers hold g_book across the fork, so the child's registry is whole.
// The item the parent's worker was running is QUEUED again in the child (it runs there
// from its start). The child gets its own worker: at once (from the fork handler) when an
// item registered with kWorkAnyContext exists (its schedules may come from signal handlers,
// which cannot start threads), otherwise at the child's first bgwork_start or flush_work.
// A child that never needs the worker (it execs, or only uses pools without background
// work) starts no thread. A fork from inside a work function keeps that thread as the
// child's worker.
#pragma once

#include <atomic>
#include <cstdint>

namespace corepool::ds {

// work_init flag: the item is scheduled from contexts that cannot start a thread (signal
// handlers, lock-free allocation paths); a fork child starts its worker at once for it.
constexpr unsigned kWorkAnyContext = 1;

struct work_item {
  void (*fn)(work_item *) = nullptr;  // runs on the worker thread; may block, may allocate
  void *arg = nullptr;                // for fn
  std::atomic<uint32_t> state{0};
  // Registry links and flags (g_book).
  work_item *reg_prev = nullptr, *reg_next = nullptr;
  unsigned flags = 0;
  std::atomic<bool> registered{false};

  work_item() = default;
  work_item(const work_item &) = delete;
  work_item &operator=(const work_item &) = delete;
  ~work_item();
};

void bgwork_start() noexcept;
// Stops and joins the worker (pending items run first). Tests and process exit.
void bgwork_stop() noexcept;
// Sets fn/arg and registers the item (normal context; takes a lock). Idempotent.
void work_init(work_item *w, void (*fn)(work_item *), void *arg, unsigned flags) noexcept;
// Cancels (waits for a running one) and unregisters. -EDEADLK (and nothing done) when called
// from the item's own fn.
int work_fini(work_item *w) noexcept;
// Returns true if this call queued the item (false: already queued/running-and-requeued,
// cancelled, not registered, or the worker is not started).
bool schedule_work(work_item *w) noexcept;
// 0, or -EDEADLK (and nothing changed) from the item's own fn.
int cancel_work_sync(work_item *w) noexcept;
// 0, or -EDEADLK on the worker when `w` is queued or running (it cannot run meanwhile).
int flush_work(work_item *w) noexcept;
// Re-enables scheduling of an item after cancel_work_sync.
void work_reset(work_item *w) noexcept;
// True on the worker thread (inside some item's fn).
bool on_worker() noexcept;

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

  // Registers the work item (kWorkAnyContext: note_level and kick are async-signal-safe).
  void init(void (*fill_fn)(void *, int), void *c, int lo, int hi) noexcept;
  bool note_level(int level) noexcept;  // true when a fill was queued by this call
  bool kick() noexcept;                 // queue a fill to `high` regardless of the level
  // Cancels a pending fill and waits for a running one; later note_level/kick work again.
  // -EDEADLK (nothing reset) from the engine's own fill.
  int cancel() noexcept {
    if (int r = cancel_work_sync(&work)) return r;
    work_reset(&work);
    return 0;
  }
};

}  // namespace corepool::ds
