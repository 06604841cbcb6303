// thread_cache: the registry (slots, stacks, thread exit, fork), the slow paths, stealing
// and the idle sweep. The protocol, with the labels used below, is in thread_cache.h.
#include "ds/thread_cache.h"

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <new>

#include "platform/cpu.h"
#include "platform/futex.h"
#include "platform/memory.h"
#include "platform/rseq_fence.h"
#include "platform/thread.h"

namespace corepool::ds {

using namespace corepool::platform;

namespace detail {
__thread thread_tier t_tier __attribute__((tls_model("initial-exec"))) = {};
}  // namespace detail

using detail::t_tier;

// One thread's stack of one pool: a bookkeeping line, then the stack (header + slots).
struct thread_cache::node {
  node *next = nullptr;           // R2: set before the node is published, then constant
  thread_cache *cache = nullptr;  // constant
  rseq_stack **owner = nullptr;   // R1: the owner's TLS entry (H3); NULL: no owner (H4)
  std::atomic<intptr_t> seen{0};  // idle sweep: top when the last sweep looked
  uint32_t slow_calls = 0;        // the owner's slow paths (relaxed: its signal handlers too)
  alignas(64) rseq_stack stack;
};

struct thread_cache_chunk {
  thread_cache_chunk *next;
  size_t bytes;
  size_t used;
};

namespace {

using chunk = thread_cache_chunk;
// What a refill or spill moves at once, copied through the caller's stack (1 KiB at most,
// as the pools' own bulk paths).
constexpr unsigned kBatch = kThreadCacheUnitMax;
// What a flush (thread exit, idle sweep, destroy) moves at once: smaller, since the idle
// sweep runs inside a slow path whose batch is still on the stack (a signal handler's too).
constexpr unsigned kFlushBatch = 32;
constexpr size_t kChunkBytes = 16384;
constexpr uint32_t kSweepEvery = 64;  // slow paths of a thread between two clock reads

// R1: a futex mutex (0 free, 1 held, 2 held with waiters).
std::atomic<uint32_t> g_lock{0};
thread_cache *g_slots[kThreadCacheSlots];  // under R1
// The exit hook ran: no more stacks for this thread. Armed: the exit hook will run.
__thread bool t_exited __attribute__((tls_model("initial-exec"))) = false;
__thread bool t_armed __attribute__((tls_model("initial-exec"))) = false;

bool try_lock() noexcept {
  uint32_t c = 0;
  return g_lock.compare_exchange_strong(c, 1, std::memory_order_acquire, std::memory_order_relaxed);
}
void lock() noexcept {
  uint32_t c = 0;
  if (g_lock.compare_exchange_strong(c, 1, std::memory_order_acquire, std::memory_order_relaxed))
    return;
  if (c != 2) c = g_lock.exchange(2, std::memory_order_acquire);
  while (c != 0) {
    futex_wait(g_lock, 2);
    c = g_lock.exchange(2, std::memory_order_acquire);
  }
}
void unlock() noexcept {
  if (g_lock.exchange(0, std::memory_order_release) == 2) futex_wake(g_lock, 1);
}

bool flag(bool &f) noexcept {
  return std::atomic_ref<bool>(f).load(std::memory_order_relaxed);
}
void set_flag(bool &f) noexcept {
  std::atomic_ref<bool>(f).store(true, std::memory_order_relaxed);
}

thread_cache::node *node_of(rseq_stack *s) noexcept {
  return reinterpret_cast<thread_cache::node *>(reinterpret_cast<char *>(s) -
                                                offsetof(thread_cache::node, stack));
}

size_t node_bytes(unsigned cap) noexcept {
  return (sizeof(thread_cache::node) + size_t{cap} * sizeof(void *) + 63) / 64 * 64;
}

chunk *map_chunk(size_t need) noexcept {
  size_t bytes = kChunkBytes > need + 64 ? kChunkBytes : need + 64;
  bytes = (bytes + page_size() - 1) / page_size() * page_size();
  auto *c = static_cast<chunk *>(os_alloc(bytes, page_size()));  // zeroed
  if (!c) return nullptr;
  c->bytes = bytes;
  c->used = 64;  // the header's line
  return c;
}

// Everything `n` holds, to its pool's sink, by S1-S4 with `fence` (kFenceNone: the caller
// is the owner, outside any sequence, or the stack has none). Stops when a stealer holds it.
void flush(thread_cache::node *n, int fence) noexcept {
  void *buf[kFlushBatch];
  for (unsigned k; (k = rseq_stack_steal(&n->stack, fence, buf, kFlushBatch)) > 0;)
    n->cache->sink_(n->cache->ctx_, buf, k);
}

// The thread-exit hook: every stack of this thread goes back to its pool (H4 if a stealer
// holds one now: it keeps its objects, reachable, until stolen or adopted).
void on_thread_exit() {
  set_flag(t_exited);
  lock();
  for (unsigned i = 0; i < kThreadCacheSlots; i++) {
    rseq_stack *s = t_tier.stacks[i];
    if (!s) continue;
    t_tier.stacks[i] = nullptr;
    thread_cache::node *n = node_of(s);
    n->owner = nullptr;
    flush(n, kFenceNone);  // ours, and no sequence of ours runs now
  }
  unlock();
}

// In the child of fork(): only the forking thread exists; the other threads' stacks lose
// their owner (H4). The forking thread held R1 across the fork (on_fork's prepare).
void fork_child() {
  g_lock.store(0, std::memory_order_relaxed);
  for (unsigned i = 0; i < kThreadCacheSlots; i++) {
    if (!g_slots[i]) continue;
    for (thread_cache::node *n = g_slots[i]->head_.load(std::memory_order_relaxed); n; n = n->next)
      if (n->owner != &t_tier.stacks[i]) n->owner = nullptr;
  }
}

unsigned read_env() noexcept {
  const char *v = std::getenv("COREPOOL_THREAD_CACHE");
  if (!v || !*v) return 0;
  char *end = nullptr;
  const unsigned long n = std::strtoul(v, &end, 10);
  if (*end != '\0') return 0;
  return n < kThreadCacheMax ? static_cast<unsigned>(n) : kThreadCacheMax;
}

}  // namespace

unsigned thread_cache_env_capacity() noexcept {
  static const unsigned cap = read_env();
  return cap;
}

int thread_cache::init(unsigned cap, unsigned unit, sink_fn sink, source_fn source,
                       void *ctx) noexcept {
  if (cap == 0 || cap > kThreadCacheMax || unit == 0 || unit > kThreadCacheUnitMax || !sink ||
      !source)
    return -EINVAL;
  if (!rseq_enabled() || !rseq_arch_supported() || !rseq_fence_init() ||
      !thread_exit_hook_init(on_thread_exit))
    return -ENOTSUP;
  // R1 is held across fork(): the child finds the registry whole, and resets the lock.
  static const bool fork_hook = on_fork(lock, unlock, fork_child);
  (void)fork_hook;
  cap_ = cap;
  batch_ = cap / 2 + 1 < unit ? cap / 2 + 1 : unit;
  sink_ = sink;
  source_ = source;
  ctx_ = ctx;
  last_sweep_ns_.store(coarse_clock_ns(), std::memory_order_relaxed);
  // The first chunk now: a thread's first use (perhaps in a signal handler) maps nothing
  // until a pool has more threads than that chunk holds stacks.
  chunk *c = map_chunk(node_bytes(cap));
  if (!c) return -ENOMEM;
  lock();
  unsigned i = 0;
  while (i < kThreadCacheSlots && g_slots[i]) i++;
  if (i < kThreadCacheSlots) {
    g_slots[i] = this;
    chunks_ = c;
    slot_ = i;
  }
  unlock();
  if (i == kThreadCacheSlots) {
    os_release(c, c->bytes);
    return -ENOSPC;
  }
  return 0;
}

void thread_cache::destroy(bool drain) noexcept {
  if (!enabled()) return;
  lock();
  for (node *n = head_.load(std::memory_order_relaxed); n; n = n->next) {
    if (n->owner) *n->owner = nullptr;  // H3: that thread does not use this pool now
    n->owner = nullptr;
    if (drain) flush(n, kFenceNone);  // no thread runs sequences on it (the contract)
  }
  g_slots[slot_] = nullptr;
  chunk *c = chunks_;
  chunks_ = nullptr;
  head_.store(nullptr, std::memory_order_relaxed);
  slot_ = kThreadCacheSlots;
  unlock();
  while (c) {
    chunk *next = c->next;
    os_release(c, c->bytes);
    c = next;
  }
}

// The calling thread's stack, attached now if it has none: an ownerless stack of the pool
// (adopted with its objects, H4) or a new one. NULL when the thread cannot have one (no
// rseq, exiting, no exit hook) or R1 is held (perhaps by the code this signal handler
// interrupted): the caller goes on without the tier.
rseq_stack *thread_cache::attach() noexcept {
  if (!enabled() || flag(t_exited)) return nullptr;
  rseq_abi *const rs = rseq_registered_area();
  if (!rs) return nullptr;  // H6
  if (!flag(t_armed)) {
    if (!thread_exit_hook_arm()) return nullptr;
    set_flag(t_armed);
  }
  if (!try_lock()) return nullptr;
  rseq_stack **entry = &t_tier.stacks[slot_];
  if (!*entry) {  // (a signal handler may have attached it since our caller looked)
    node *n = nullptr;
    for (node *m = head_.load(std::memory_order_relaxed); m && !n; m = m->next)
      if (!m->owner) n = m;
    if (!n) {
      const size_t bytes = node_bytes(cap_);
      chunk *c = chunks_;
      if (c->used + bytes > c->bytes && (c = map_chunk(bytes)) != nullptr) {
        c->next = chunks_;
        chunks_ = c;
      }
      if (c && c->used + bytes <= c->bytes) {
        n = new (reinterpret_cast<char *>(c) + c->used) node;
        c->used += bytes;
        n->cache = this;
        n->stack.top = 0;
        n->stack.fence = 0;
        n->stack.cap = cap_;
        n->next = head_.load(std::memory_order_relaxed);
        head_.store(n, std::memory_order_release);  // R2
      }
    }
    if (n) {
      n->owner = entry;
      t_tier.area = rs;  // H6 (the same value on every attach of this thread)
      // The area and the stack's fields before the entry, for a signal handler on this
      // thread (pairs with the fast paths' fence between the entry and the area).
      std::atomic_signal_fence(std::memory_order_seq_cst);
      *entry = &n->stack;
    }
  }
  rseq_stack *s = *entry;
  unlock();
  return s;
}

void *thread_cache::pop_slow() noexcept {
  rseq_stack *s = t_tier.stacks[slot_];
  if (!s && (s = attach()) != nullptr)  // an adopted stack may hold objects (H4)
    if (void *obj = thread_cache_pop(*this)) return obj;
  void *buf[kBatch];
  const unsigned k = source_(ctx_, buf, s ? batch_ : 1);
  if (k == 0) return nullptr;
  if (k > 1) {  // the rest to our stack in one sequence (all or nothing), else below
    rseq_abi *rs = t_tier.area;  // H6
    int rc;
    while ((rc = rseq_thread_stack_push_bulk(s, buf + 1, k - 1, rs)) == CP_RSEQ_ABORT) {
    }
    if (rc != CP_RSEQ_OK) sink_(ctx_, buf + 1, k - 1);
  }
  if (s) sweep_idle();
  return buf[0];
}

int thread_cache::push_slow(void *obj) noexcept {
  rseq_stack *s = t_tier.stacks[slot_];
  if (!s && (s = attach()) != nullptr && thread_cache_push(*this, obj)) return 0;
  if (!s) return sink_(ctx_, &obj, 1), 0;
  void *buf[kBatch + 1];
  intptr_t k = 0;
  rseq_abi *rs = t_tier.area;  // H6
  int rc;
  // Room first: a whole batch below, then obj on top (FAIL: empty, or fenced by a
  // stealer). Whole batches keep what the pool below moves aligned to its unit: spills of
  // unit - 1 slowed W3 (qmempool: 128 per shared-queue step) by a third.
  while ((rc = rseq_thread_stack_pop_bulk(s, buf, batch_, &k, rs)) == CP_RSEQ_ABORT) {
  }
  if (rc != CP_RSEQ_OK) k = 0;
  while ((rc = rseq_thread_stack_push(s, obj, rs)) == CP_RSEQ_ABORT) {
  }
  if (rc != CP_RSEQ_OK) buf[k++] = obj;
  if (k) sink_(ctx_, buf, static_cast<unsigned>(k));
  sweep_idle();
  return 0;
}

unsigned thread_cache::steal(void **out, unsigned n) noexcept {
  if (!enabled()) return 0;
  rseq_stack *own = t_tier.stacks[slot_];
  unsigned got = 0;
  for (node *m = head_.load(std::memory_order_acquire); m && got < n; m = m->next)  // R2
    // Our own stack needs no fence: we run no sequence while in here (a handler that
    // interrupted one made the kernel abort it first).
    got +=
        rseq_stack_steal(&m->stack, &m->stack == own ? kFenceNone : kFenceAll, out + got, n - got);
  return got;
}

unsigned thread_cache::count() const noexcept {
  if (!enabled()) return 0;
  intptr_t n = 0;
  for (node *m = head_.load(std::memory_order_acquire); m; m = m->next)
    n += std::atomic_ref<intptr_t>(m->stack.top).load(std::memory_order_relaxed);
  return static_cast<unsigned>(n);
}

// From the owner's slow paths, every kSweepEvery-th one: once per idle_ns_ per pool, flush
// the other stacks whose top has not moved since the last sweep (idle threads, ownerless
// stacks). A busy stack whose top happens to match is flushed too: a refill, not an error.
void thread_cache::sweep_idle() noexcept {
  rseq_stack *own = t_tier.stacks[slot_];
  if (!own) return;
  node *self = node_of(own);
  std::atomic_ref<uint32_t> calls(self->slow_calls);
  const uint32_t c = calls.load(std::memory_order_relaxed) + 1;
  calls.store(c, std::memory_order_relaxed);
  if (c % kSweepEvery != 0) return;
  const uint64_t now = coarse_clock_ns();
  uint64_t last = last_sweep_ns_.load(std::memory_order_relaxed);
  if (now - last < idle_ns_ || !last_sweep_ns_.compare_exchange_strong(
                                   last, now, std::memory_order_relaxed, std::memory_order_relaxed))
    return;
  for (node *m = head_.load(std::memory_order_acquire); m; m = m->next) {
    if (m == self) continue;
    const intptr_t top = std::atomic_ref<intptr_t>(m->stack.top).load(std::memory_order_relaxed);
    const intptr_t before = m->seen.exchange(top, std::memory_order_relaxed);
    if (top != 0 && top == before) flush(m, kFenceAll);
  }
}

}  // namespace corepool::ds
