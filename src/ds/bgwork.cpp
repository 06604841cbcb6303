#include "ds/bgwork.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <new>

#include "platform/futex.h"
#include "platform/thread.h"

namespace corepool::ds {
namespace {

constexpr uint32_t kQueued = 1, kRunning = 2, kCancel = 4;

// Futex word: bumped after every schedule (S2); the worker sleeps while it is unchanged.
std::atomic<uint32_t> g_wake{0};
std::atomic<bool> g_stop{false};
// The service is on: schedule_work queues. g_missing: on, but this process has no worker
// thread yet (a fork child before its lazy start).
std::atomic<bool> g_running{false};
std::atomic<bool> g_missing{false};
std::mutex g_life;             // start/stop only (never on a fast path)
platform::os_thread g_thread;  // guarded by g_life
// Bumped by the worker after each item; waiters in flush/cancel sleep on it.
std::atomic<uint32_t> g_done{0};

// The registry (a circular scan from g_cursor), the running item and the count of
// kWorkAnyContext items. All guarded by g_book, which no one holds while a work function
// runs or while taking another lock, so it is a leaf lock (held across fork()).
std::mutex g_book;
work_item *g_first = nullptr;    // guarded by g_book
work_item *g_cursor = nullptr;   // guarded by g_book: where the next scan starts
work_item *g_current = nullptr;  // guarded by g_book
int g_any_context = 0;           // guarded by g_book
__thread bool t_is_worker = false;

// QUEUED -> RUNNING (g_book held); false (and the item dropped, IDLE) when it was cancelled.
// The acquire pairs with S1, so the owner's state written before scheduling is visible to fn.
bool begin_item(work_item *w) {
  uint32_t s = w->state.load(std::memory_order_acquire);
  for (;;) {
    if (s & kCancel) {
      w->state.fetch_and(~kQueued, std::memory_order_acq_rel);
      return false;
    }
    if (w->state.compare_exchange_weak(s, (s & ~kQueued) | kRunning, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
      return true;
  }
}

// RUNNING -> IDLE (g_book held); a QUEUED bit set meanwhile by S1 stays, so the next scan
// finds the item again. A cancelled re-queue request is dropped.
void finish_item(work_item *w) {
  uint32_t s = w->state.load(std::memory_order_acquire);
  for (;;) {
    uint32_t n = s & ~kRunning;
    if (s & kCancel) n &= ~kQueued;
    if (w->state.compare_exchange_weak(s, n, std::memory_order_acq_rel, std::memory_order_acquire))
      return;
  }
}

// W2: the first QUEUED item from the cursor on, made RUNNING; null when none (g_book held).
work_item *take_locked() {
  if (!g_first) return nullptr;
  work_item *start = g_cursor ? g_cursor : g_first;
  work_item *w = start;
  do {
    work_item *next = w->reg_next ? w->reg_next : g_first;
    uint32_t s = w->state.load(std::memory_order_acquire);
    if ((s & kQueued) && !(s & kRunning) && begin_item(w)) {
      g_cursor = next;  // round robin: an item re-queued by its own run waits its turn
      return w;
    }
    w = next;
  } while (w != start);
  return nullptr;
}

void worker_main() {
  t_is_worker = true;
  for (;;) {
    uint32_t seen = g_wake.load(std::memory_order_acquire);  // W1, pairs with S2
    work_item *w;
    {
      std::lock_guard<std::mutex> g(g_book);
      w = take_locked();
      g_current = w;
    }
    if (w) {
      w->fn(w);
      {
        std::lock_guard<std::mutex> g(g_book);
        finish_item(w);
        g_current = nullptr;
      }
      g_done.fetch_add(1, std::memory_order_release);
      platform::futex_wake(g_done, INT_MAX);
      continue;
    }
    if (g_stop.load(std::memory_order_acquire)) return;
    platform::futex_wait(g_wake, seen);  // returns at once if S2 bumped g_wake since W1
  }
}

bool start_thread_locked() {  // g_life held
  if (!g_thread.start(worker_main)) return false;
  g_missing.store(false, std::memory_order_release);
  return true;
}

// fork() handlers. The forking thread holds g_book across the fork, so the registry and the
// running item are whole in the child. g_life is not held (a stop holds it while it joins a
// worker that may be waiting for locks other fork handlers hold): in the child no other
// thread exists, so its g_life is made new; a start or stop another thread was in the middle
// of is settled from the flags.
void fork_prepare() {
  g_book.lock();
}
void fork_parent() {
  g_book.unlock();
}
void fork_child() {
  new (&g_life) std::mutex();
  if (!t_is_worker) {
    g_thread.forget();
    if (work_item *w = g_current) {
      // RUNNING (maybe |QUEUED, |CANCEL) -> QUEUED, or IDLE when it was being cancelled:
      // the child's worker runs it again from its start.
      uint32_t s = w->state.load(std::memory_order_relaxed);
      uint32_t n = s & ~(kQueued | kRunning);
      if (!(s & kCancel)) n |= kQueued;
      w->state.store(n, std::memory_order_relaxed);
      g_current = nullptr;
    }
    if (g_stop.load(std::memory_order_relaxed)) g_running.store(false, std::memory_order_relaxed);
    if (g_running.load(std::memory_order_relaxed)) {
      g_missing.store(true, std::memory_order_relaxed);
      // Schedules from signal handlers cannot start a thread: start it now for them.
      if (g_any_context > 0) start_thread_locked();
    }
  }
  g_book.unlock();
}

void register_fork_handlers_once() {  // g_life held
  static bool registered = false;
  if (registered) return;
  registered = true;
  std::atexit([] { bgwork_stop(); });
  platform::on_fork(fork_prepare, fork_parent, fork_child);
}

// Waits until w is neither queued nor running. In a child whose worker has not started, it
// starts it (we are in normal context: callers may block).
int wait_done(work_item *w) {
  for (;;) {
    uint32_t seen = g_done.load(std::memory_order_acquire);
    if (!(w->state.load(std::memory_order_acquire) & (kQueued | kRunning))) return 0;
    if (t_is_worker) return -EDEADLK;  // this thread is the one that would run it
    if (!g_running.load(std::memory_order_acquire)) {
      // No worker: nothing will run it. Take it off our books.
      std::lock_guard<std::mutex> g(g_book);
      w->state.fetch_and(~kQueued, std::memory_order_acq_rel);
      return 0;
    }
    if (g_missing.load(std::memory_order_acquire)) bgwork_start();
    // Re-check every 10 ms: the worker may not have started (no thread could be created).
    platform::futex_wait(g_done, seen, 10 * 1000 * 1000);
  }
}

}  // namespace

work_item::~work_item() {
  work_fini(this);
}

bool on_worker() noexcept {
  return t_is_worker;
}

void bgwork_start() noexcept {
  if (g_running.load(std::memory_order_acquire) && !g_missing.load(std::memory_order_acquire))
    return;
  std::lock_guard<std::mutex> g(g_life);
  if (g_running.load(std::memory_order_relaxed) && !g_missing.load(std::memory_order_relaxed))
    return;
  g_stop.store(false, std::memory_order_relaxed);  // published by g_running's release below
  if (!start_thread_locked())
    return;  // no worker: schedule_work reports false and callers keep working without it
  register_fork_handlers_once();
  g_running.store(true, std::memory_order_release);
}

void bgwork_stop() noexcept {
  std::lock_guard<std::mutex> g(g_life);
  if (!g_running.load(std::memory_order_relaxed)) return;
  g_stop.store(true, std::memory_order_release);
  g_wake.fetch_add(1, std::memory_order_release);
  platform::futex_wake(g_wake, 1);
  g_thread.join();  // a child that never started its worker has none to join
  g_running.store(false, std::memory_order_release);
  g_missing.store(false, std::memory_order_relaxed);
  // Items queued after the worker's last look stay unrun: mark them idle.
  std::lock_guard<std::mutex> b(g_book);
  for (work_item *w = g_first; w; w = w->reg_next)
    w->state.fetch_and(~kQueued, std::memory_order_acq_rel);
}

void work_init(work_item *w, void (*fn)(work_item *), void *arg, unsigned flags) noexcept {
  std::lock_guard<std::mutex> g(g_book);
  if (w->registered.load(std::memory_order_relaxed)) return;
  w->fn = fn;
  w->arg = arg;
  w->flags = flags;
  w->state.store(0, std::memory_order_relaxed);  // a cancel left by an earlier work_fini
  w->reg_prev = nullptr;
  w->reg_next = g_first;
  if (g_first) g_first->reg_prev = w;
  g_first = w;
  if (flags & kWorkAnyContext) g_any_context++;
  // release: pairs with schedule_work's acquire load; fn and arg are visible to the worker
  // anyway through g_book.
  w->registered.store(true, std::memory_order_release);
}

int work_fini(work_item *w) noexcept {
  if (!w->registered.load(std::memory_order_acquire)) return 0;
  if (int r = cancel_work_sync(w)) return r;
  std::lock_guard<std::mutex> g(g_book);
  if (!w->registered.load(std::memory_order_relaxed)) return 0;
  if (w->reg_prev)
    w->reg_prev->reg_next = w->reg_next;
  else
    g_first = w->reg_next;
  if (w->reg_next) w->reg_next->reg_prev = w->reg_prev;
  if (g_cursor == w) g_cursor = w->reg_next;
  if (w->flags & kWorkAnyContext) g_any_context--;
  w->registered.store(false, std::memory_order_relaxed);
  return 0;
}

bool schedule_work(work_item *w) noexcept {
  if (!g_running.load(std::memory_order_acquire)) return false;
  if (!w->registered.load(std::memory_order_acquire)) return false;
  uint32_t s = w->state.load(std::memory_order_relaxed);
  for (;;) {
    if (s & (kQueued | kCancel)) return false;  // already pending, or being cancelled
    // S1: IDLE -> QUEUED, or RUNNING -> RUNNING|QUEUED (the item runs again after this run).
    // release publishes the owner's state to fn (pairs with begin_item's acquire).
    if (w->state.compare_exchange_weak(s, s | kQueued, std::memory_order_acq_rel,
                                       std::memory_order_relaxed))
      break;
  }
  g_wake.fetch_add(1, std::memory_order_release);  // S2, pairs with W1
  platform::futex_wake(g_wake, 1);                 // async-signal-safe
  return true;
}

int cancel_work_sync(work_item *w) noexcept {
  {
    // Under g_book (B1) a queued run that has not started is dropped here at once; only a
    // running one is waited for.
    std::lock_guard<std::mutex> g(g_book);
    if (t_is_worker && g_current == w) return -EDEADLK;  // its own fn: nothing changed
    uint32_t s = w->state.fetch_or(kCancel, std::memory_order_acq_rel) | kCancel;
    if ((s & kQueued) && !(s & kRunning)) w->state.fetch_and(~kQueued, std::memory_order_acq_rel);
  }
  return wait_done(w);
}

int flush_work(work_item *w) noexcept {
  return wait_done(w);
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
  work_init(&work, refill_run, this, kWorkAnyContext);
}

bool refill_engine::note_level(int level) noexcept {
  if (level >= low.load(std::memory_order_relaxed)) return false;
  return schedule_work(&work);
}

bool refill_engine::kick() noexcept {
  return schedule_work(&work);
}

}  // namespace corepool::ds
