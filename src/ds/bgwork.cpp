#include "ds/bgwork.h"

#include <climits>
#include <cstdlib>
#include <mutex>

#include "platform/futex.h"
#include "platform/thread.h"

namespace corepool::ds {
namespace {

constexpr uint32_t kQueued = 1, kRunning = 2, kCancel = 4;

// Pending items: a Treiber stack. Producers push with CAS (any thread, signal handlers
// included); the single worker takes the whole stack with one exchange, so there is no
// pop-side ABA.
std::atomic<work_item *> g_head{nullptr};
// Futex word: bumped after every push; the worker sleeps while it is unchanged.
std::atomic<uint32_t> g_wake{0};
std::atomic<bool> g_stop{false};
std::atomic<bool> g_running{false};
std::mutex g_life;             // start/stop only (never on a fast path)
platform::os_thread g_thread;  // guarded by g_life
// Bumped by the worker after each item; waiters in flush/cancel sleep on it.
std::atomic<uint32_t> g_done{0};

// Worker bookkeeping, for fork(): g_batch (items the worker took off g_head and has not
// started, oldest first) and g_current (the item whose fn runs now) change only under g_book.
// The worker never holds g_book while a work function runs, and the fork prepare handler
// takes it, so a child always sees them at a step boundary and can queue them again.
std::mutex g_book;
work_item *g_batch = nullptr;    // guarded by g_book
work_item *g_current = nullptr;  // guarded by g_book
__thread bool t_is_worker = false;

// QUEUED -> RUNNING; false (and the item dropped, IDLE) when it was cancelled. The acquire
// pairs with the release CAS in schedule_work, so the owner's state written before
// scheduling is visible to fn.
bool begin_item(work_item *w) {
  uint32_t s = w->state.load(std::memory_order_acquire);
  for (;;) {
    if (s & kCancel) {
      w->state.fetch_and(~(kQueued | kRunning), std::memory_order_acq_rel);
      return false;
    }
    if (w->state.compare_exchange_weak(s, (s & ~kQueued) | kRunning, std::memory_order_acq_rel))
      return true;
  }
}

void push(work_item *w) {
  work_item *h = g_head.load(std::memory_order_relaxed);
  do w->next = h;
  while (!g_head.compare_exchange_weak(h, w, std::memory_order_release, std::memory_order_relaxed));
}

// RUNNING -> IDLE, unless schedule_work re-queued it meanwhile (QUEUED|RUNNING): then push
// it again so that request runs too.
void finish_item(work_item *w) {
  uint32_t s = w->state.load(std::memory_order_acquire);
  for (;;) {
    uint32_t n = s & ~kRunning;
    if (s & kCancel) n &= ~kQueued;  // a cancelled re-queue request is dropped
    if (w->state.compare_exchange_weak(s, n, std::memory_order_acq_rel)) break;
  }
  if ((s & kQueued) && !(s & kCancel)) push(w);
}

void worker_main() {
  t_is_worker = true;
  for (;;) {
    uint32_t seen = g_wake.load(std::memory_order_acquire);
    {
      std::lock_guard<std::mutex> g(g_book);
      work_item *list = g_head.exchange(nullptr, std::memory_order_acquire);
      // Run oldest first: reverse the stack into the (empty) batch.
      while (list) {
        work_item *n = list->next;
        list->next = g_batch;
        g_batch = list;
        list = n;
      }
    }
    for (;;) {
      work_item *w;
      bool run;
      {
        std::lock_guard<std::mutex> g(g_book);
        w = g_batch;
        if (!w) break;
        g_batch = w->next;
        run = begin_item(w);
        if (run) g_current = w;
      }
      if (run) {
        w->fn(w);
        std::lock_guard<std::mutex> g(g_book);
        finish_item(w);
        g_current = nullptr;
      }
      g_done.fetch_add(1, std::memory_order_release);
      platform::futex_wake(g_done, INT_MAX);
    }
    if (g_head.load(std::memory_order_acquire)) continue;
    if (g_stop.load(std::memory_order_acquire)) return;
    platform::futex_wait(g_wake, seen);  // returns at once if a push bumped g_wake
  }
}

// fork() handlers. The child has only the forking thread. Items the parent's worker held
// (the running one, the taken batch) are queued again, behind the ones still on g_head, and
// a new worker starts, so work queued or running in the parent at the fork runs in the child
// too (a running item runs again from its start). The forking thread holds g_life (so no
// start/stop is half done) and g_book (so those lists are whole) across the fork. When the
// forking thread is the worker itself (a work function forked), it takes only g_book (a stop
// may hold g_life while it waits for this very thread), and the child keeps it as its worker.
void fork_prepare() {
  if (!t_is_worker) g_life.lock();  // order: g_life, then g_book
  g_book.lock();
}
void fork_parent() {
  g_book.unlock();
  if (!t_is_worker) g_life.unlock();
}
void fork_child() {
  if (!t_is_worker) {
    g_thread.forget();
    work_item *held = nullptr;  // newest first, like g_head: the batch, then the running one
    if (g_current) {
      // RUNNING (maybe |QUEUED, |CANCEL) -> QUEUED, or IDLE when it was being cancelled.
      uint32_t s = g_current->state.load(std::memory_order_relaxed);
      uint32_t n = s & ~(kQueued | kRunning);
      if (!(s & kCancel)) n |= kQueued;
      g_current->state.store(n, std::memory_order_relaxed);
      if (n & kQueued) {
        g_current->next = nullptr;
        held = g_current;
      }
    }
    for (work_item *w = g_batch; w;) {  // still QUEUED (begin_item has not seen them)
      work_item *n = w->next;
      w->next = held;
      held = w;
      w = n;
    }
    g_batch = g_current = nullptr;
    if (held) {  // below what is on g_head: all of that was pushed after these were taken
      work_item *top = g_head.load(std::memory_order_relaxed);
      if (!top) {
        g_head.store(held, std::memory_order_relaxed);
      } else {
        while (top->next) top = top->next;
        top->next = held;
      }
    }
    if (g_running.load(std::memory_order_relaxed) && !g_stop.load(std::memory_order_relaxed) &&
        !g_thread.start(worker_main)) {
      g_running.store(false, std::memory_order_relaxed);  // waiters then take items off
    }
  }
  g_book.unlock();
  if (!t_is_worker) g_life.unlock();
}

void wait_done(work_item *w) {
  for (;;) {
    uint32_t seen = g_done.load(std::memory_order_acquire);
    if (!(w->state.load(std::memory_order_acquire) & (kQueued | kRunning))) return;
    if (!g_running.load(std::memory_order_acquire)) {
      // No worker: nothing will run it. Take it off our books.
      w->state.fetch_and(~kQueued, std::memory_order_acq_rel);
      return;
    }
    // Re-check every 10 ms: the item may be waiting for a wake-up.
    platform::futex_wait(g_done, seen, 10 * 1000 * 1000);
  }
}

}  // namespace

void bgwork_start() noexcept {
  if (g_running.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> g(g_life);
  if (g_running.load(std::memory_order_relaxed)) return;
  g_stop.store(false, std::memory_order_relaxed);  // published by g_running's release below
  if (!g_thread.start(worker_main))
    return;  // no worker: schedule_work reports false and callers keep working without it
  static bool registered = false;
  if (!registered) {
    registered = true;
    std::atexit([] { bgwork_stop(); });
    platform::on_fork(fork_prepare, fork_parent, fork_child);
  }
  g_running.store(true, std::memory_order_release);
}

void bgwork_stop() noexcept {
  std::lock_guard<std::mutex> g(g_life);
  if (!g_running.load(std::memory_order_relaxed)) return;
  g_stop.store(true, std::memory_order_release);
  g_wake.fetch_add(1, std::memory_order_release);
  platform::futex_wake(g_wake, 1);
  g_thread.join();
  g_running.store(false, std::memory_order_release);
  // Items queued after the worker's last look stay unrun: unlink them and mark them idle.
  for (work_item *w = g_head.exchange(nullptr, std::memory_order_acquire); w;) {
    work_item *n = w->next;
    w->state.fetch_and(~kQueued, std::memory_order_acq_rel);
    w = n;
  }
}

bool schedule_work(work_item *w) noexcept {
  if (!g_running.load(std::memory_order_acquire)) return false;
  uint32_t s = w->state.load(std::memory_order_relaxed);
  for (;;) {
    if (s & (kQueued | kCancel)) return false;  // already pending, or being cancelled
    // IDLE -> QUEUED, or RUNNING -> RUNNING|QUEUED (the worker re-pushes it after the run).
    // acq_rel: acquire pairs with the worker's release when it set the item IDLE (its last
    // writes to w->next happen-before ours below); release publishes the owner's state.
    if (w->state.compare_exchange_weak(s, s | kQueued, std::memory_order_acq_rel,
                                       std::memory_order_relaxed))
      break;
  }
  if (!(s & kRunning)) push(w);  // we own the link until the worker takes the item
  g_wake.fetch_add(1, std::memory_order_release);
  platform::futex_wake(g_wake, 1);  // async-signal-safe
  return true;
}

void cancel_work_sync(work_item *w) noexcept {
  w->state.fetch_or(kCancel, std::memory_order_acq_rel);
  wait_done(w);
}

void flush_work(work_item *w) noexcept {
  wait_done(w);
}

void work_reset(work_item *w) noexcept {
  w->state.fetch_and(~kCancel, std::memory_order_acq_rel);
}

// ---- refill engine ----------------------------------------------------------------------

namespace {
void refill_run(work_item *w) {
  auto *e = static_cast<refill_engine *>(w->arg);
  e->fill(e->ctx, e->high.load(std::memory_order_relaxed));
  e->runs.fetch_add(1, std::memory_order_release);
}
}  // namespace

void refill_engine::init(void (*fill_fn)(void *, int), void *c, int lo, int hi) noexcept {
  fill = fill_fn;
  ctx = c;
  low.store(lo, std::memory_order_relaxed);
  high.store(hi, std::memory_order_relaxed);
  work.fn = refill_run;
  work.arg = this;
}

bool refill_engine::note_level(int level) noexcept {
  if (level >= low.load(std::memory_order_relaxed)) return false;
  return schedule_work(&work);
}

bool refill_engine::kick() noexcept {
  return schedule_work(&work);
}

}  // namespace corepool::ds
