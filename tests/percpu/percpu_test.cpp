// The per-CPU allocator: bad input, allocation patterns against a reference model, per-CPU
// copies, exact counters under chaos, frees from signal handlers, reclaim, C++ wrapper.
#include <gtest/gtest.h>

#include <corepool/error.h>
#include <corepool/percpu.h>
#include <corepool/percpu.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "chaos.h"
#include "inject.h"
#include "percpu/percpu_internal.h"
#include "platform/memory.h"

#if defined(__SANITIZE_THREAD__)
#define PCPU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PCPU_TSAN 1
#endif
#endif
#ifndef PCPU_TSAN
#define PCPU_TSAN 0
#endif

namespace {
namespace pc = corepool::pcpu;
namespace pf = corepool::platform;

cp_percpu_stats stats() {
  cp_percpu_stats s;
  cp_percpu_get_stats(&s);
  return s;
}

unsigned last_possible_cpu() {
  unsigned c = cp_nr_cpu_ids();
  while (c > 0 && !cp_cpu_possible(c - 1)) c--;
  return c - 1;
}

// ---- bad input ---------------------------------------------------------------------------

struct bad_case {
  size_t size, align;
  int err;  // 0 = must succeed
  const char *what;
};

TEST(Percpu, BadInputTable) {
  const size_t pg = pf::page_size();
  const bad_case cases[] = {
      {.size = 0, .align = 8, .err = EINVAL, .what = "size 0"},
      {.size = 32769, .align = 8, .err = EINVAL, .what = "size above 32 KiB"},
      {.size = SIZE_MAX, .align = 8, .err = EINVAL, .what = "huge size"},
      {.size = 8, .align = 0, .err = EINVAL, .what = "align 0"},
      {.size = 8, .align = 3, .err = EINVAL, .what = "align not a power of two"},
      {.size = 8, .align = 24, .err = EINVAL, .what = "align not a power of two (24)"},
      {.size = 8, .align = 2 * pg, .err = EINVAL, .what = "align above a page"},
      {.size = 1, .align = 1, .err = 0, .what = "smallest"},
      {.size = 32768, .align = pg, .err = 0, .what = "largest, page aligned"},
  };
  for (const bad_case &c : cases) {
    errno = 0;
    void *p = cp_alloc_percpu(c.size, c.align);
    if (c.err) {
      EXPECT_EQ(p, nullptr) << c.what;
      EXPECT_EQ(errno, c.err) << c.what;
      EXPECT_NE(std::string(cp_last_error()).find("cp_alloc_percpu"), std::string::npos) << c.what;
    } else {
      ASSERT_NE(p, nullptr) << c.what;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % c.align, 0u) << c.what;
      cp_free_percpu(p);
    }
  }
  cp_free_percpu(nullptr);  // no-op
  EXPECT_EQ(cp_per_cpu_ptr(nullptr, 0), nullptr);
}

TEST(Percpu, DetectedBadFrees) {
  void *p = cp_alloc_percpu(16, 8);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(cp_per_cpu_ptr(p, cp_nr_cpu_ids()), nullptr);  // CPU out of range
  unsigned long before = pc::bad_frees();
  cp_free_percpu(static_cast<char *>(p) + 8);  // not the start of an allocation
  stats();                                     // drains pending frees
  EXPECT_EQ(pc::bad_frees(), before + 1);
  cp_free_percpu(p);
  cp_free_percpu(p);  // double free before reuse: still pending
  stats();
  EXPECT_EQ(pc::bad_frees(), before + 2);
  int local;
  cp_free_percpu(reinterpret_cast<char *>(&local) + 1);  // misaligned: not a handle
  EXPECT_EQ(pc::bad_frees(), before + 3);
}

// ---- allocation patterns against a reference model ---------------------------------------

// The model: the set of live areas [p, p + size) with their owner-written patterns. The
// allocator must return aligned, zeroed, pairwise disjoint areas whose copies keep what was
// written to them until freed, and its statistics must agree with the model.
TEST(Percpu, ReferenceModel) {
  struct live {
    size_t size;
    uint8_t tag;
  };
  std::map<uintptr_t, live> model;
  const cp_percpu_stats base = stats();
  // CPU 0 and the last possible CPU: one entry when they are the same (one possible CPU).
  std::vector<unsigned> cpus = {0};
  if (last_possible_cpu() != 0) cpus.push_back(last_possible_cpu());
  corepool::chaos::rng r(42);
  const size_t aligns[] = {1, 2, 4, 8, 16, 64, 256, 4096};
  const int ops = PCPU_TSAN ? 1500 : 6000;
  uint8_t tag = 0;
  auto check_and_free = [&](std::map<uintptr_t, live>::iterator it) {
    void *p = reinterpret_cast<void *>(it->first);
    for (unsigned c : cpus) {
      auto *b = static_cast<uint8_t *>(cp_per_cpu_ptr(p, c));
      uint8_t want = static_cast<uint8_t>(it->second.tag + c);
      ASSERT_EQ(b[0], want);
      ASSERT_EQ(b[it->second.size - 1], want);
    }
    cp_free_percpu(p);
    model.erase(it);
  };
  for (int i = 0; i < ops; i++) {
    if (!model.empty() && r.below(100) < 45) {
      auto it = model.begin();
      std::advance(it, static_cast<long>(r.below(model.size())));
      check_and_free(it);
      continue;
    }
    size_t size = r.below(4) == 0 ? 1 + r.below(32768) : 1 + r.below(256);
    size_t align = aligns[r.below(8)];
    void *p = cp_alloc_percpu(size, align);
    ASSERT_NE(p, nullptr) << size << " " << align;
    uintptr_t u = reinterpret_cast<uintptr_t>(p);
    ASSERT_EQ(u % align, 0u);
    // disjoint from every live area
    auto next = model.lower_bound(u);
    if (next != model.end()) {
      ASSERT_GE(next->first, u + size);
    }
    if (next != model.begin()) {
      auto prev = std::prev(next);
      ASSERT_LE(prev->first + prev->second.size, u);
    }
    tag = static_cast<uint8_t>(tag + 3);
    for (unsigned c : cpus) {
      auto *b = static_cast<uint8_t *>(cp_per_cpu_ptr(p, c));
      for (size_t k = 0; k < size; k++) ASSERT_EQ(b[k], 0) << "copy not zeroed at " << k;
      b[0] = b[size - 1] = static_cast<uint8_t>(tag + c);
    }
    model[u] = {size, tag};
  }
  const cp_percpu_stats mid = stats();
  EXPECT_EQ(mid.nr_cur_alloc - base.nr_cur_alloc, model.size());
  EXPECT_GE(mid.max_alloc_size, 1u);
  while (!model.empty()) check_and_free(model.begin());
  const cp_percpu_stats end = stats();
  EXPECT_EQ(end.nr_cur_alloc, base.nr_cur_alloc);
  EXPECT_EQ(end.nr_alloc - base.nr_alloc, end.nr_dealloc - base.nr_dealloc);
  // Hints agree with the model: with nothing live, every chunk is one free run.
  if (base.nr_cur_alloc == 0)
    for (const pc::chunk_info &ci : pc::chunks()) {
      EXPECT_EQ(ci.nr_allocs, 0u);
      EXPECT_EQ(ci.free_bytes, pc::kUnitSize);
      EXPECT_EQ(ci.contig_bytes, pc::kUnitSize);
    }
}

// Fullest chunk first: small allocations fill holes of an existing chunk before a new one.
TEST(Percpu, PrefersFullestChunk) {
  std::vector<void *> v;
  for (int i = 0; i < 64; i++) v.push_back(cp_alloc_percpu(1024, 8));  // one full chunk
  void *hole = v[10];
  cp_free_percpu(hole);
  void *again = cp_alloc_percpu(1024, 8);
  EXPECT_EQ(again, hole);  // the only fit in a partly used chunk is reused, not a new chunk
  v[10] = again;
  for (void *p : v) cp_free_percpu(p);
}

// ---- per-CPU copies -----------------------------------------------------------------------

TEST(Percpu, HandlesValidOnEveryCpuAndIndependent) {
  const unsigned n = cp_nr_cpu_ids();
  void *a = cp_alloc_percpu(64, 64);
  void *b = cp_alloc_percpu(64, 64);
  ASSERT_TRUE(a && b);
  for (unsigned c = 0; c < n; c++) {
    auto *x = static_cast<uint64_t *>(cp_per_cpu_ptr(a, c));
    auto *y = static_cast<uint64_t *>(cp_per_cpu_ptr(b, c));
    ASSERT_NE(x, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(x) % 64, 0u);
    EXPECT_EQ(x[0], 0u);
    x[0] = 1000 + c;
    y[7] = 2000 + c;
  }
  for (unsigned c = 0; c < n; c++) {
    EXPECT_EQ(static_cast<uint64_t *>(cp_per_cpu_ptr(a, c))[0], 1000 + c);
    EXPECT_EQ(static_cast<uint64_t *>(cp_per_cpu_ptr(a, c))[7], 0u);
    EXPECT_EQ(static_cast<uint64_t *>(cp_per_cpu_ptr(b, c))[0], 0u);
    EXPECT_EQ(static_cast<const uint64_t *>(cp_per_cpu_cptr(b, c))[7], 2000 + c);
  }
  void *mine = cp_this_cpu_ptr(a);
  bool found = false;
  for (unsigned c = 0; c < n; c++) found |= mine == cp_per_cpu_ptr(a, c);
  EXPECT_TRUE(found);
  cp_free_percpu(a);
  cp_free_percpu(b);
}

TEST(Percpu, ReusedAreaIsZeroedOnEveryCpu) {
  const unsigned n = cp_nr_cpu_ids();
  for (int round = 0; round < 20; round++) {
    void *p = cp_alloc_percpu(256, 8);
    ASSERT_NE(p, nullptr);
    for (unsigned c = 0; c < n; c++) {
      auto *b = static_cast<uint8_t *>(cp_per_cpu_ptr(p, c));
      for (int k = 0; k < 256; k++) ASSERT_EQ(b[k], 0) << "round " << round << " cpu " << c;
      std::memset(b, 0xa5, 256);
    }
    cp_this_cpu_add_u64(p, 5);
    cp_free_percpu(p);  // the next round most likely gets the same area back
  }
}

// ---- exact counters under chaos -----------------------------------------------------------

struct counter_ctx {
  void *ctr;
  std::atomic<int64_t> handler_adds{0};
};

void add_in_handler(int, void *arg) {
  auto *ctx = static_cast<counter_ctx *>(arg);
  cp_this_cpu_add_u64(ctx->ctr, 1);
  ctx->handler_adds.fetch_add(1, std::memory_order_relaxed);
}

class PercpuCounterChaos : public ::testing::TestWithParam<int> {};

TEST_P(PercpuCounterChaos, SumIsExact) {
  const int T = GetParam();
  const int64_t M = (PCPU_TSAN ? 200000 : 4000000) / T;
  counter_ctx ctx;
  ctx.ctr = cp_alloc_percpu(8, 8);
  ASSERT_NE(ctx.ctr, nullptr);
  void *neighbour = cp_alloc_percpu(8, 8);  // adjacent word must stay untouched
  corepool::chaos::options opt;
  opt.threads = T;
  opt.migrate = true;
  opt.signal_storm = true;
  auto rep = corepool::chaos::run(
      opt,
      [&](int) {
        for (int64_t i = 0; i < M; i++) cp_this_cpu_add_u64(ctx.ctr, 1);
      },
      add_in_handler, &ctx);
  ASSERT_TRUE(rep.in_time);
  EXPECT_GT(rep.signals, 0u);
  EXPECT_EQ(cp_percpu_sum_u64(ctx.ctr), static_cast<uint64_t>(T * M + ctx.handler_adds.load()));
  EXPECT_EQ(cp_percpu_sum_u64(neighbour), 0u);
  std::printf("T=%d rseq=%d: %lld adds, %llu in handlers, %llu migrations\n", T, cp_rseq_enabled(),
              static_cast<long long>(T * M), static_cast<unsigned long long>(rep.signals),
              static_cast<unsigned long long>(rep.migrations));
  cp_free_percpu(ctx.ctr);
  cp_free_percpu(neighbour);
}

INSTANTIATE_TEST_SUITE_P(Threads, PercpuCounterChaos, ::testing::Values(1, 2, 8, 32));

// Threads that cannot use rseq (their adds go to the fallback unit) mixed with rseq threads
// on the same counter, under migrations and a signal storm: the sum stays exact.
void add_in_handler_mixed(int worker, void *arg) {
  auto *ctx = static_cast<counter_ctx *>(arg);
  if (worker % 2)
    pc::add_u64_no_rseq_thread(ctx->ctr, 1);
  else
    cp_this_cpu_add_u64(ctx->ctr, 1);
  ctx->handler_adds.fetch_add(1, std::memory_order_relaxed);
}

class PercpuMixedChaos : public ::testing::TestWithParam<int> {};

TEST_P(PercpuMixedChaos, RseqAndFallbackThreadsExact) {
  const int T = GetParam();
  const int64_t M = (PCPU_TSAN ? 100000 : 4000000) / T;
  counter_ctx ctx;
  ctx.ctr = cp_alloc_percpu(8, 8);
  corepool::chaos::options opt;
  opt.threads = T;
  opt.signal_storm = true;
  auto rep = corepool::chaos::run(
      opt,
      [&](int w) {
        for (int64_t i = 0; i < M; i++) {
          if (w % 2)
            pc::add_u64_no_rseq_thread(ctx.ctr, 1);
          else
            cp_this_cpu_add_u64(ctx.ctr, 1);
        }
      },
      add_in_handler_mixed, &ctx);
  ASSERT_TRUE(rep.in_time);
  EXPECT_EQ(cp_percpu_sum_u64(ctx.ctr), static_cast<uint64_t>(T * M + ctx.handler_adds.load()));
  cp_free_percpu(ctx.ctr);
}

INSTANTIATE_TEST_SUITE_P(Threads, PercpuMixedChaos, ::testing::Values(2, 8));

TEST(Percpu, SumIncludesEveryCpu) {
  void *p = cp_alloc_percpu(8, 8);
  uint64_t want = 0;
  for (unsigned c = 0; c < cp_nr_cpu_ids(); c++) {
    std::atomic_ref(*static_cast<uint64_t *>(cp_per_cpu_ptr(p, c)))
        .fetch_add(c + 1, std::memory_order_relaxed);
    want += c + 1;
  }
  EXPECT_EQ(cp_percpu_sum_u64(p), want);
  cp_free_percpu(p);
}

// ---- cp_free_percpu from signal handlers ---------------------------------------------------

struct free_ctx {
  std::vector<void *> handles;
  std::atomic<size_t> next{0};
};

void free_in_handler(int, void *arg) {
  auto *ctx = static_cast<free_ctx *>(arg);
  size_t i = ctx->next.fetch_add(1, std::memory_order_relaxed);
  if (i < ctx->handles.size()) cp_free_percpu(ctx->handles[i]);
}

TEST(Percpu, FreeFromSignalHandlerWhileAllocating) {
  const cp_percpu_stats base = stats();
  const unsigned long bad = pc::bad_frees();
  free_ctx ctx;
  for (int i = 0; i < 20000; i++) ctx.handles.push_back(cp_alloc_percpu(8 + 8 * (i % 9), 8));
  corepool::chaos::options opt;
  opt.threads = 4;
  opt.signal_storm = true;
  opt.deadline = std::chrono::milliseconds(30000);
  std::atomic<int> errors{0};
  auto rep = corepool::chaos::run(
      opt,
      [&](int w) {
        corepool::chaos::rng r(w + 7);
        std::vector<void *> mine;
        for (int i = 0; i < (PCPU_TSAN ? 3000 : 20000) && !corepool::chaos::should_stop(); i++) {
          if (mine.size() < 32 && r.below(2)) {
            void *p = cp_alloc_percpu(1 + r.below(200), 8);
            if (!p || *static_cast<uint8_t *>(cp_this_cpu_ptr(p)) != 0) errors++;
            *static_cast<uint8_t *>(cp_this_cpu_ptr(p)) = 1;
            mine.push_back(p);
          } else if (!mine.empty()) {
            cp_free_percpu(mine.back());
            mine.pop_back();
          }
        }
        for (void *p : mine) cp_free_percpu(p);
      },
      free_in_handler, &ctx);
  ASSERT_TRUE(rep.in_time);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(rep.signals, 0u);
  for (size_t i = ctx.next.exchange(ctx.handles.size()); i < ctx.handles.size(); i++)
    cp_free_percpu(ctx.handles[i]);
  const cp_percpu_stats end = stats();
  EXPECT_EQ(end.nr_cur_alloc, base.nr_cur_alloc);
  EXPECT_EQ(pc::bad_frees(), bad);
}

// A free from a handler that interrupts the thread holding the allocator lock.
void *g_sig_handle;
void free_handle_handler(int) {
  cp_free_percpu(g_sig_handle);
}

TEST(Percpu, FreeFromHandlerInterruptingAllocation) {
  const cp_percpu_stats base = stats();
  struct sigaction sa {
  }, old{};
  sa.sa_handler = free_handle_handler;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR2, &sa, &old), 0);
#ifdef COREPOOL_INJECT
  // Raise the signal while this thread is inside cp_alloc_percpu with the lock held.
  static std::atomic<bool> armed{false};
  cp_inject_hook = [](const char *point) {
    if (armed.load() && std::strcmp(point, "percpu_alloc_found") == 0) {
      armed = false;
      raise(SIGUSR2);
    }
  };
#endif
  for (int i = 0; i < 100; i++) {
    g_sig_handle = cp_alloc_percpu(32, 8);
#ifdef COREPOOL_INJECT
    armed = true;
#endif
    void *q = cp_alloc_percpu(32, 8);
#ifndef COREPOOL_INJECT
    raise(SIGUSR2);
#endif
    cp_free_percpu(q);
  }
#ifdef COREPOOL_INJECT
  cp_inject_hook = nullptr;
#endif
  sigaction(SIGUSR2, &old, nullptr);
  EXPECT_EQ(stats().nr_cur_alloc, base.nr_cur_alloc);
}

// ---- reclaim ------------------------------------------------------------------------------

long resident_pages_all() {
  long n = 0;
  for (const pc::chunk_info &c : pc::chunks())
    n += pf::os_resident_pages(c.base, c.units * c.stride);
  return n;
}

TEST(Percpu, ReclaimReturnsMemoryAfterBurst) {
  pc::reclaim_now();
  const cp_percpu_stats base = stats();
  std::vector<void *> v;
  for (int i = 0; i < 4000; i++) {
    void *p = cp_alloc_percpu(1024, 8);
    ASSERT_NE(p, nullptr);
    std::memset(cp_this_cpu_ptr(p), 1, 1024);
    v.push_back(p);
  }
  const cp_percpu_stats peak = stats();
  const long peak_pages = resident_pages_all();
  EXPECT_GE(peak.nr_chunks, base.nr_chunks + 60);
  EXPECT_GE(peak_pages, 4000 * 1024 / static_cast<long>(pf::page_size()));
  for (void *p : v) cp_free_percpu(p);
  // The worker reclaims by itself (scheduled by the frees); give it a bounded time.
  cp_percpu_stats now = stats();
  for (int i = 0; i < 400 && now.nr_chunks > base.nr_chunks + 1; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    now = stats();
  }
  EXPECT_LE(now.nr_chunks, base.nr_chunks + 1) << "worker did not reclaim";
  pc::reclaim_now();
  now = stats();
  EXPECT_LE(now.nr_chunks, std::max<uint32_t>(base.nr_chunks, 1) + 1);
  EXPECT_LE(now.populated_bytes,
            base.populated_bytes + 2 * pc::kUnitSize * cp_nr_cpu_ids() + 2 * pc::kUnitSize);
  EXPECT_LT(resident_pages_all(), peak_pages / 10);
  EXPECT_EQ(now.nr_cur_alloc, base.nr_cur_alloc);
  EXPECT_GE(now.nr_max_chunks, peak.nr_chunks);
}

TEST(Percpu, DumpAndStats) {
  void *p = cp_alloc_percpu(100, 8);
  cp_this_cpu_add_u64(p, 1);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  ASSERT_EQ(cp_percpu_dump(fds[1]), 0);
  char buf[4096] = {};
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(buf).find("chunk 0x"), std::string::npos);
  EXPECT_NE(std::string(buf).find("frag"), std::string::npos);
  close(fds[0]);
  close(fds[1]);
  cp_percpu_stats s = stats();
  EXPECT_GE(s.nr_cur_alloc, 1u);
  EXPECT_GE(s.populated_bytes, pc::kUnitSize);
  EXPECT_LE(s.min_alloc_size, 100u);
  EXPECT_GE(s.max_alloc_size, 100u);
  cp_free_percpu(p);
}

// ---- C++ wrapper --------------------------------------------------------------------------

struct hits {
  uint64_t a, b;
  hits &operator+=(const hits &o) {
    a += o.a;
    b += o.b;
    return *this;
  }
};

TEST(PercpuCxx, WrapperAndCounter) {
  const uint64_t live = stats().nr_cur_alloc;
  {
    corepool::percpu<hits> h;
    h.for_each_cpu([](unsigned c, hits &x) { x.a = c; });
    std::atomic_ref(h.local()->b).fetch_add(5, std::memory_order_relaxed);
    hits s = h.sum();
    uint64_t want = 0;
    for (unsigned c = 0; c < cp_nr_cpu_ids(); c++)
      if (cp_cpu_possible(c)) want += c;
    EXPECT_EQ(s.a, want);
    EXPECT_EQ(s.b, 5u);
    EXPECT_EQ(h.sum([](const hits &x) { return x.b; }), 5u);
    corepool::percpu<hits> moved = std::move(h);
    EXPECT_EQ(h.handle(), nullptr);
    EXPECT_EQ(moved.sum().b, 5u);

    corepool::percpu_counter c;
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; t++)
      ts.emplace_back([&] {
        for (int i = 0; i < 10000; i++) c.inc();
      });
    for (auto &t : ts) t.join();
    EXPECT_EQ(c.sum(), 40000u);
    EXPECT_EQ(stats().nr_cur_alloc, live + 2);
  }
  EXPECT_EQ(stats().nr_cur_alloc, live);
}

}  // namespace
