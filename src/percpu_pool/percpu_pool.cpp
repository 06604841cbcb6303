// percpu_pool: a watermark-refilled cache of per-CPU areas, allocation from any context.
// Design: docs/percpu_pool.md.
//
// Storage: an append-only list of segments of kSegSlots atomic slots. A slot holds one
// cached area or null. `nr` counts the areas that allocators may claim.
//
// Protocol (invariant I: the number of non-null slots >= nr + the claims not yet served)
//   publish (filler, under fill_lock):  P1 CAS a null slot -> area (release)
//                                       P2 nr.fetch_add(1) (release)          keeps I
//   alloc (any thread, signal handlers): A1 claim: CAS nr -> nr - 1 while nr > 0 (acquire,
//                                          pairs with P2: the slot store of P1 is visible)
//                                       A2 scan slots, exchange(non-null -> null) (acquire,
//                                          pairs with P1); by I some slot holds an area that
//                                          no other claimant will take, so the scan ends
//   empty (under fill_lock):            E1 claim everything: nr.exchange(0); E2 take that
//                                          many areas as A2 does, and free them
// No slot is ever written non-null except by the single filler (fill_lock), and an
// exchange hands each area to exactly one taker: no area is handed out twice.
// C1 (checked mode, check.h): an area is marked cached (pcpu::set_pooled) from before its P1
// until right after the A2 / E2 exchange that takes it, so a cp_free_percpu of it meanwhile
// (a stale free by someone who had the same handle before) is refused and reported.
// Segments are only appended (release) and freed at destroy, so scans never see freed
// memory. alloc takes no lock and makes no system call except the worker's futex wake.
//
//               alloc  fill  empty  nr  destroy
//   alloc        yes   yes   yes    yes  no
//   fill         yes   lock  lock   yes  no
//   empty        yes   lock  lock   yes  no
#include <corepool/percpu_pool.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <new>

#include "check.h"
#include "ds/bgwork.h"
#include "error.h"
#include "inject.h"
#include "percpu/percpu_internal.h"
#include "percpu_pool/percpu_pool_internal.h"
#include "platform/memory.h"
#include "platform/thread.h"
#include "stats/stats.h"

namespace corepool::percpu_pool {
namespace {

constexpr unsigned kSegSlots = 64;

struct segment {
  std::atomic<void *> slot[kSegSlots] = {};
  std::atomic<segment *> next{nullptr};
};

struct impl {
  cp_percpu_pool *pool;
  std::atomic<int> nr{0};
  std::atomic<bool> inhibit{false};
  segment first;  // segments: first, then first.next ... (append-only)
  // Where take scans start (any value is correct: a full scan follows a miss). Segments are
  // never freed before destroy, so a stale hint still points to a live segment.
  std::atomic<segment *> take_seg{nullptr};
  std::atomic<unsigned> take_idx{0};
  segment *put_seg = nullptr;  // where publish scans start (fill_lock)
  unsigned put_idx = 0;
  std::mutex fill_lock;  // fills, empty, segment growth
  ds::refill_engine engine;
  // executor hook
  cp_percpu_pool_executor exec = nullptr;
  void *exec_user = nullptr;
  std::atomic<bool> exec_pending{false};  // a request is out (handed to exec, not yet run)
  // Set by destroy (fill_lock). A request still out then owns the impl: its run frees it.
  bool dead = false;
  std::atomic<uint64_t> gen{0};  // bumped by empty: requests older than it are dropped
  std::atomic<uint64_t> exec_gen{0};
  // Statistics (cp_percpu_pool_stats), relaxed: counts, ordering nothing.
  std::atomic<uint64_t> triggers{0}, empty_allocs{0};
  std::atomic<uint64_t> filled{0}, fill_failures{0}, emptied{0};
  stats::registration reg;                // in the COREPOOL_STATS exit report
  impl *prev = nullptr, *next = nullptr;  // every live impl (g_init), for fork()
};

// Creation and destruction of impls, and the list of live ones. Across fork() the prepare
// handler holds g_init and then every pool's fill_lock (order: g_init, fill_lock, then the
// per-CPU allocator's lock that a fill takes), so a child never finds one held by a thread
// that is not there. Nothing takes g_init while holding a fill_lock.
std::mutex g_init;
impl *g_impls = nullptr;  // guarded by g_init

void fork_prepare() {
  g_init.lock();
  for (impl *im = g_impls; im; im = im->next) im->fill_lock.lock();
}
void fork_release() {
  for (impl *im = g_impls; im; im = im->next) im->fill_lock.unlock();
  g_init.unlock();
}
void fork_handlers_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    pcpu::fork_handlers_init();  // first: its prepare must run after ours
    platform::on_fork(fork_prepare, fork_release, fork_release);
  });
}

impl *get(const cp_percpu_pool *p) {
  return static_cast<impl *>(std::atomic_ref(p->cp_priv_impl).load(std::memory_order_acquire));
}

void fill_from_engine(void *ctx, int target);

// The engine is registered and the worker started outside g_init (bgwork's locks are never
// taken under another lock); a creator that loses the race for a static pool discards its
// impl.
impl *get_or_create(cp_percpu_pool *p) {
  if (impl *im = get(p)) return im;
  fork_handlers_init();
  impl *im = new (std::nothrow) impl();
  if (!im) return nullptr;
  im->pool = p;
  im->engine.init(fill_from_engine, im, p->cp_priv_low, p->cp_priv_high);
  ds::bgwork_start();
  {
    std::lock_guard<std::mutex> g(g_init);
    if (impl *won = get(p)) {
      delete im;  // never scheduled: its work item unregisters at once
      return won;
    }
    im->next = g_impls;
    if (g_impls) g_impls->prev = im;
    g_impls = im;
    std::atomic_ref(p->cp_priv_impl).store(im, std::memory_order_release);
  }
  im->reg = {p, [](const void *q, int fd) {
               return cp_percpu_pool_dump(static_cast<const cp_percpu_pool *>(q), fd);
             }};
  stats::enroll(im->reg);
  return im;
}

void unlink_impl(impl *im) {
  std::lock_guard<std::mutex> g(g_init);
  if (im->prev)
    im->prev->next = im->next;
  else
    g_impls = im->next;
  if (im->next) im->next->prev = im->prev;
}

// A2: take one area; the caller holds a claim (I guarantees one is there for it).
// Scans from the hint to the end, then everything from the first segment.
void *take_claimed(impl *im) {
  for (;;) {
    segment *s = im->take_seg.load(std::memory_order_relaxed);
    unsigned k = im->take_idx.load(std::memory_order_relaxed);
    if (!s || k >= kSegSlots) {
      s = &im->first;
      k = 0;
    }
    for (int pass = 0; pass < 2; pass++) {
      for (; s; s = s->next.load(std::memory_order_acquire), k = 0) {
        for (; k < kSegSlots; k++) {
          if (!s->slot[k].load(std::memory_order_relaxed)) continue;
          if (void *a = s->slot[k].exchange(nullptr, std::memory_order_acquire)) {
            // Checked mode: the area is ours now, no longer the cache's (C1).
            if (corepool::check_enabled()) corepool::pcpu::set_pooled(a, false);
            im->take_seg.store(s, std::memory_order_relaxed);
            im->take_idx.store(k + 1, std::memory_order_relaxed);
            return a;
          }
        }
      }
      s = &im->first;
      k = 0;
    }
    CP_INJECT("percpu_pool_rescan");  // other claimants took the areas we saw; look again
  }
}

// P1 + P2 (fill_lock held). Scans for a null slot from where the last publish stopped.
void publish(impl *im, void *area) {
  // Checked mode: cached from before it can be taken until a taker takes it (C1).
  if (corepool::check_enabled()) corepool::pcpu::set_pooled(area, true);
  segment *s = im->put_seg ? im->put_seg : &im->first;
  unsigned k = im->put_idx;
  for (int pass = 0;; pass++) {
    for (; s; s = s->next.load(std::memory_order_acquire), k = 0) {
      for (; k < kSegSlots; k++) {
        void *expect = nullptr;
        // Only the filler turns null into non-null, so a null slot stays null until this CAS.
        if (s->slot[k].compare_exchange_strong(expect, area, std::memory_order_release,
                                               std::memory_order_relaxed)) {
          im->put_seg = s;
          im->put_idx = k + 1;
          CP_INJECT("percpu_pool_published");
          im->nr.fetch_add(1, std::memory_order_release);  // P2
          return;
        }
      }
      if (pass > 0 && !s->next.load(std::memory_order_acquire)) {
        // Every slot was full on a complete scan: append a segment (normal context only).
        s->next.store(new segment(), std::memory_order_release);
      }
    }
    s = &im->first;
    k = 0;
  }
}

void fill_locked(impl *im, int target_nr) {
  cp_percpu_pool *p = im->pool;
  const int target = target_nr ? target_nr : p->cp_priv_high;
  int need = std::max(target - im->nr.load(std::memory_order_relaxed), 0);
  for (int i = 0; i < need; i++) {
    void *a = cp_alloc_percpu(p->cp_priv_size, p->cp_priv_align);
    if (!a) {
      im->fill_failures.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    publish(im, a);
    im->filled.fetch_add(1, std::memory_order_relaxed);
  }
  im->inhibit.store(target < p->cp_priv_low, std::memory_order_relaxed);
}

void fill_from_engine(void *ctx, int) {
  auto *im = static_cast<impl *>(ctx);
  std::lock_guard<std::mutex> g(im->fill_lock);
  fill_locked(im, 0);  // the patch's work function: fill(pool, 0)
}

// A request that destroy found out owns the impl (dead): it frees it, touching nothing else
// (the pool and the segments may be gone). Otherwise it fills, unless the pool was emptied
// after the request (empty "cancels pending fill work").
void run_from_executor(void *arg) {
  auto *im = static_cast<impl *>(arg);
  bool last;
  {
    std::lock_guard<std::mutex> g(im->fill_lock);
    im->exec_pending.store(false, std::memory_order_relaxed);
    last = im->dead;
    if (!last &&
        im->exec_gen.load(std::memory_order_acquire) == im->gen.load(std::memory_order_acquire))
      fill_locked(im, 0);
  }
  if (last) delete im;
}

void trigger_refill(impl *im) {
  im->triggers.fetch_add(1, std::memory_order_relaxed);
  if (cp_percpu_pool_executor ex = std::atomic_ref(im->exec).load(std::memory_order_acquire)) {
    if (!im->exec_pending.exchange(true, std::memory_order_acq_rel)) {
      im->exec_gen.store(im->gen.load(std::memory_order_acquire), std::memory_order_release);
      ex(run_from_executor, im, im->exec_user);
    }
    return;
  }
  im->engine.kick();  // async-signal-safe; a no-op while a fill is already queued
}

int check_args(size_t size, size_t align, int low, int high) {
  if (size == 0 || size > 32768)
    return set_error(-EINVAL, "cp_percpu_pool_create: elem_size must be 1 .. 32768");
  if (align == 0 || (align & (align - 1)) || align > platform::page_size())
    return set_error(-EINVAL, "cp_percpu_pool_create: elem_align must be a power of two <= page");
  if (low < 0 || low > high || high < 1)
    return set_error(-EINVAL, "cp_percpu_pool_create: need 0 <= low <= high and high >= 1");
  return 0;
}

}  // namespace

uint64_t triggers(const cp_percpu_pool *p) {
  impl *im = get(p);
  return im ? im->triggers.load(std::memory_order_relaxed) : 0;  // a statistic
}
uint64_t empty_allocs(const cp_percpu_pool *p) {
  impl *im = get(p);
  return im ? im->empty_allocs.load(std::memory_order_relaxed) : 0;  // a statistic
}
void flush(cp_percpu_pool *p) {
  if (impl *im = get(p)) ds::flush_work(&im->engine.work);
}

}  // namespace corepool::percpu_pool

using namespace corepool::percpu_pool;

extern "C" {

int cp_percpu_pool_create(struct cp_percpu_pool **out, size_t elem_size, size_t elem_align, int low,
                          int high) {
  if (!out) return corepool::set_error(-EINVAL, "cp_percpu_pool_create: pool is NULL");
  if (int r = check_args(elem_size, elem_align, low, high)) return r;
  auto *p = new (std::nothrow) cp_percpu_pool{elem_size, elem_align, low, high, 1, nullptr};
  if (!p || !get_or_create(p)) {
    delete p;
    return corepool::set_error(-ENOMEM, "cp_percpu_pool_create: out of memory");
  }
  *out = p;
  return 0;
}

void cp_percpu_pool_static_init(struct cp_percpu_pool *pool) {
  if (!pool)
    return static_cast<void>(
        corepool::set_error(-EINVAL, "cp_percpu_pool_static_init: pool is NULL"));
  if (check_args(pool->cp_priv_size, pool->cp_priv_align, pool->cp_priv_low, pool->cp_priv_high))
    return;  // a static pool defined with bad arguments stays empty (cp_last_error says why)
  get_or_create(pool);
}

void cp_percpu_pool_fill(struct cp_percpu_pool *pool, int target_nr) {
  if (!pool)
    return static_cast<void>(corepool::set_error(-EINVAL, "cp_percpu_pool_fill: pool is NULL"));
  if (target_nr < 0)
    return static_cast<void>(corepool::set_error(-EINVAL, "cp_percpu_pool_fill: target_nr < 0"));
  if (check_args(pool->cp_priv_size, pool->cp_priv_align, pool->cp_priv_low, pool->cp_priv_high))
    return;  // a static pool defined with bad arguments stays empty (cp_last_error says why)
  impl *im = get_or_create(pool);
  if (!im) return;
  std::lock_guard<std::mutex> g(im->fill_lock);
  fill_locked(im, target_nr);
}

void *cp_percpu_pool_alloc(struct cp_percpu_pool *pool) {
  if (__builtin_expect(pool == nullptr, 0))
    return corepool::set_error(-EINVAL, "cp_percpu_pool_alloc: pool is NULL"), nullptr;
  impl *im = get(pool);
  if (!im) return nullptr;  // a static pool never filled: nothing to take, nothing to schedule
  // A1: claim one area if any.
  int n = im->nr.load(std::memory_order_relaxed);
  while (n > 0 && !im->nr.compare_exchange_weak(n, n - 1, std::memory_order_acquire,
                                                std::memory_order_relaxed)) {
  }
  void *a = nullptr;
  int left = 0;
  if (n > 0) {
    CP_INJECT("percpu_pool_claimed");
    a = take_claimed(im);
    left = n - 1;
  } else {
    im->empty_allocs.fetch_add(1, std::memory_order_relaxed);
  }
  // The patch's rule: empty now, or below low and not inhibited -> clear inhibit, refill.
  if (left == 0 || (!im->inhibit.load(std::memory_order_relaxed) && left < pool->cp_priv_low)) {
    im->inhibit.store(false, std::memory_order_relaxed);
    trigger_refill(im);
  }
  return a;
}

int cp_percpu_pool_nr(const struct cp_percpu_pool *pool) {
  if (!pool) return corepool::set_error(-EINVAL, "cp_percpu_pool_nr: pool is NULL"), 0;
  impl *im = get(pool);
  return im ? im->nr.load(std::memory_order_relaxed) : 0;
}

void cp_percpu_pool_empty(struct cp_percpu_pool *pool) {
  if (!pool)
    return static_cast<void>(corepool::set_error(-EINVAL, "cp_percpu_pool_empty: pool is NULL"));
  impl *im = get(pool);
  if (!im) return;
  im->gen.fetch_add(1, std::memory_order_acq_rel);  // drops executor requests made before
  im->engine.cancel();  // waits for a running fill; later allocs may schedule again
  std::lock_guard<std::mutex> g(im->fill_lock);
  int n = im->nr.exchange(0, std::memory_order_acquire);         // E1
  for (int i = 0; i < n; i++) cp_free_percpu(take_claimed(im));  // E2
  im->emptied.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
}

void cp_percpu_pool_destroy(struct cp_percpu_pool *pool) {
  if (!pool) return;
  cp_percpu_pool_empty(pool);
  if (impl *im = get(pool)) {
    corepool::stats::withdraw(im->reg);  // before the segments go: the exit report reads nr
    corepool::ds::cancel_work_sync(&im->engine.work);
    // acquire: pairs with the release store that linked each segment in (its contents)
    for (segment *s = im->first.next.load(std::memory_order_acquire); s;) {
      segment *n = s->next.load(std::memory_order_acquire);
      delete s;
      s = n;
    }
    std::atomic_ref(pool->cp_priv_impl).store(nullptr, std::memory_order_release);
    unlink_impl(im);
    bool request_out;
    {
      std::lock_guard<std::mutex> g(im->fill_lock);
      im->dead = true;
      request_out = im->exec_pending.load(std::memory_order_relaxed);
    }
    if (!request_out) delete im;  // else the executor's run frees it
  }
  if (pool->cp_priv_flags & 1) delete pool;
}

int cp_percpu_pool_stats(const struct cp_percpu_pool *pool, struct cp_percpu_pool_stats *st) {
  if (!pool || !st) return corepool::set_error(-EINVAL, "cp_percpu_pool_stats: NULL argument");
  *st = {};
  st->low = pool->cp_priv_low;
  st->high = pool->cp_priv_high;
  st->elem_size = pool->cp_priv_size;
  st->elem_align = pool->cp_priv_align;
  impl *im = get(pool);
  if (!im) return 0;
  st->nr = im->nr.load(std::memory_order_relaxed);
  st->filled = im->filled.load(std::memory_order_relaxed);
  st->fill_failures = im->fill_failures.load(std::memory_order_relaxed);
  st->emptied = im->emptied.load(std::memory_order_relaxed);
  st->refills = im->triggers.load(std::memory_order_relaxed);
  st->empty_allocs = im->empty_allocs.load(std::memory_order_relaxed);
  return 0;
}

int cp_percpu_pool_dump(const struct cp_percpu_pool *pool, int fd) {
  struct cp_percpu_pool_stats st;
  if (cp_percpu_pool_stats(pool, &st) != 0)
    return corepool::set_error(-EINVAL, "cp_percpu_pool_dump: pool is NULL");
  corepool::stats::line_writer w(fd, "percpu_pool", pool);
  w.kv("nr", static_cast<uint64_t>(st.nr)).kv("low", static_cast<uint64_t>(st.low));
  w.kv("high", static_cast<uint64_t>(st.high)).kv("elem_size", st.elem_size);
  w.kv("elem_align", st.elem_align).end();
  w.kv("filled", st.filled).kv("fill_failures", st.fill_failures).kv("emptied", st.emptied);
  w.kv("refills", st.refills).kv("empty_allocs", st.empty_allocs).end();
  return w.result();
}

void cp_percpu_pool_set_executor(struct cp_percpu_pool *pool, cp_percpu_pool_executor exec,
                                 void *user) {
  if (!pool)
    return static_cast<void>(
        corepool::set_error(-EINVAL, "cp_percpu_pool_set_executor: pool is NULL"));
  impl *im = get_or_create(pool);
  if (!im) return;
  im->exec_user = user;
  std::atomic_ref(im->exec).store(exec, std::memory_order_release);
}

}  // extern "C"
