// The this_cpu family on dynamic areas: semantics of each operation and width on one CPU,
// bad input, and exactness under the chaos harness (T = 1, 2, 8, 32 threads, migrations, a
// 10 kHz signal storm whose handler runs the same operations on the same fields), with
// rseq threads alone and mixed with threads that take the fallback path.
#include <gtest/gtest.h>

#include <corepool/error.h>
#include <corepool/percpu.h>
#include <corepool/percpu.hpp>

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "chaos.h"
#include "percpu/percpu_internal.h"

namespace {
namespace pc = corepool::pcpu;
using corepool::chaos::rng;

// ---- the C functions of one width, as a table -------------------------------------------
template <class T>
struct fam;
#define FAM(W, T)                                                                                \
  template <>                                                                                    \
  struct fam<T> {                                                                                \
    static T read(const void *p) { return cp_this_cpu_read_##W(p); }                             \
    static void write(void *p, T v) { cp_this_cpu_write_##W(p, v); }                             \
    static void add(void *p, T v) { cp_this_cpu_add_##W(p, v); }                                 \
    static void sub(void *p, T v) { cp_this_cpu_sub_##W(p, v); }                                 \
    static void inc(void *p) { cp_this_cpu_inc_##W(p); }                                         \
    static void dec(void *p) { cp_this_cpu_dec_##W(p); }                                         \
    static T add_return(void *p, T v) { return cp_this_cpu_add_return_##W(p, v); }               \
    static T sub_return(void *p, T v) { return cp_this_cpu_sub_return_##W(p, v); }               \
    static T inc_return(void *p) { return cp_this_cpu_inc_return_##W(p); }                       \
    static T dec_return(void *p) { return cp_this_cpu_dec_return_##W(p); }                       \
    static T xchg(void *p, T v) { return cp_this_cpu_xchg_##W(p, v); }                           \
    static T cmpxchg(void *p, T o, T v) { return cp_this_cpu_cmpxchg_##W(p, o, v); }             \
    static bool try_cmpxchg(void *p, T *o, T v) { return cp_this_cpu_try_cmpxchg_##W(p, o, v); } \
    static T sum(const void *p) { return cp_percpu_sum_##W(p); }                                 \
  };
FAM(u8, uint8_t)
FAM(u16, uint16_t)
FAM(u32, uint32_t)
FAM(u64, uint64_t)
#undef FAM

// Runs f on one CPU (pinned), so that "this CPU's copy" is one known copy.
template <class F>
void pinned(F f) {
  cpu_set_t old, one;
  pthread_getaffinity_np(pthread_self(), sizeof old, &old);
  int cpu = 0;
  while (!CPU_ISSET(cpu, &old)) cpu++;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  pthread_setaffinity_np(pthread_self(), sizeof one, &one);
  f();
  pthread_setaffinity_np(pthread_self(), sizeof old, &old);
}

template <class T>
void semantics_one_cpu() {
  using F = fam<T>;
  void *h = cp_alloc_percpu(4 * sizeof(T), sizeof(T));
  ASSERT_NE(h, nullptr);
  void *p = static_cast<char *>(h) + sizeof(T);  // handle + offset
  const T max = static_cast<T>(~T{0});
  pinned([&] {
    EXPECT_EQ(F::read(p), 0u);
    F::write(p, 5);
    EXPECT_EQ(F::read(p), 5u);
    F::add(p, 3);
    F::inc(p);
    F::sub(p, 2);
    F::dec(p);
    EXPECT_EQ(F::read(p), 6u);
    EXPECT_EQ(F::add_return(p, 4), 10u);
    EXPECT_EQ(F::sub_return(p, 1), 9u);
    EXPECT_EQ(F::inc_return(p), 10u);
    EXPECT_EQ(F::dec_return(p), 9u);
    EXPECT_EQ(F::add_return(p, max), 8u);  // wraps modulo 2^width
    EXPECT_EQ(F::xchg(p, 42), 8u);
    EXPECT_EQ(F::cmpxchg(p, 41, 7), 42u);  // differs: no store
    EXPECT_EQ(F::read(p), 42u);
    EXPECT_EQ(F::cmpxchg(p, 42, 7), 42u);  // equal: stored
    EXPECT_EQ(F::read(p), 7u);
    T o = 6;
    EXPECT_FALSE(F::try_cmpxchg(p, &o, 1));
    EXPECT_EQ(o, 7u);
    EXPECT_TRUE(F::try_cmpxchg(p, &o, max));
    EXPECT_EQ(F::read(p), max);
    EXPECT_EQ(F::sum(p), max);
  });
  // The neighbours were never touched, on any copy.
  EXPECT_EQ(F::sum(h), 0u);
  EXPECT_EQ(F::sum(static_cast<char *>(h) + 2 * sizeof(T)), 0u);
  cp_free_percpu(h);
}

TEST(ThisCpu, SemanticsEveryWidth) {
  semantics_one_cpu<uint8_t>();
  semantics_one_cpu<uint16_t>();
  semantics_one_cpu<uint32_t>();
  semantics_one_cpu<uint64_t>();
}

// ---- bad input ---------------------------------------------------------------------------

template <class T>
void bad_input_width(void *bad, const char *what) {
  using F = fam<T>;
  errno = 1234;
  cp_clear_error();
  EXPECT_EQ(F::read(bad), 0u) << what;
  F::write(bad, 1);
  F::add(bad, 1);
  F::inc(bad);
  EXPECT_EQ(F::add_return(bad, 1), 0u) << what;
  EXPECT_EQ(F::xchg(bad, 1), 0u) << what;
  EXPECT_EQ(F::cmpxchg(bad, 0, 1), 0u) << what;
  EXPECT_EQ(F::sum(bad), 0u) << what;
  EXPECT_EQ(errno, 1234) << what;  // errno untouched: these run in signal handlers
  EXPECT_NE(std::string(cp_last_error()).find("not a per-CPU area"), std::string::npos) << what;
}

TEST(ThisCpu, BadInputIsAnsweredWithoutTouchingIt) {
  void *h = cp_alloc_percpu(64, 64);
  ASSERT_NE(h, nullptr);
  uint64_t on_stack[8] = {};
  auto heap = std::make_unique<uint64_t[]>(8);
  void *unit1 = cp_per_cpu_ptr(h, cp_nr_cpu_ids() - 1);  // a copy, not a handle
  // The chunk's metadata, right after the last copy (the fallback copy): units are
  // `stride` apart.
  char *fallback = static_cast<char *>(cp_per_cpu_fallback_ptr(h));
  const uintptr_t stride =
      uintptr_t(fallback - static_cast<char *>(cp_per_cpu_ptr(h, 0))) / cp_nr_cpu_ids();
  struct bad {
    void *p;
    const char *what;
  };
  const bad cases[] = {
      {.p = nullptr, .what = "NULL"},
      {.p = on_stack, .what = "a stack address"},
      {.p = heap.get(), .what = "a heap address"},
      {.p = reinterpret_cast<void *>(uintptr_t{1} << 62), .what = "outside user space"},
      {.p = cp_nr_cpu_ids() > 1 ? unit1 : nullptr, .what = "a CPU's copy"},
      {.p = fallback, .what = "the fallback copy"},
      {.p = fallback + stride, .what = "the chunk's metadata"},
      {.p = reinterpret_cast<void *>((uintptr_t{1} << 47) + 4096), .what = "above 47 bits"},
  };
  for (const bad &c : cases) {
    bad_input_width<uint8_t>(c.p, c.what);
    bad_input_width<uint16_t>(c.p, c.what);
    bad_input_width<uint32_t>(c.p, c.what);
    bad_input_width<uint64_t>(c.p, c.what);
    EXPECT_EQ(cp_per_cpu_ptr(c.p, 0), nullptr) << c.what;
    EXPECT_EQ(cp_per_cpu_cptr(c.p, 0), nullptr) << c.what;
    EXPECT_EQ(cp_this_cpu_ptr(c.p), nullptr) << c.what;
    EXPECT_EQ(cp_per_cpu_fallback_ptr(c.p), nullptr) << c.what;
  }
  for (uint64_t v : on_stack) EXPECT_EQ(v, 0u);
  for (int i = 0; i < 8; i++) EXPECT_EQ(heap[i], 0u);
  // Misaligned for the width (the area itself is fine).
  void *odd = static_cast<char *>(h) + 1;
  bad_input_width<uint16_t>(odd, "misaligned u16");
  bad_input_width<uint32_t>(static_cast<char *>(h) + 2, "misaligned u32");
  bad_input_width<uint64_t>(static_cast<char *>(h) + 4, "misaligned u64");
  cp_this_cpu_add_u8(odd, 1);  // u8: any address of the area is aligned
  EXPECT_EQ(cp_percpu_sum_u8(odd), 1u);
  EXPECT_EQ(cp_percpu_sum_u64(h), 0x100u);  // and nothing else changed
  // A freed area's chunk unmapped by reclaim: no longer an area.
  cp_free_percpu(h);
}

// ---- exactness under chaos ---------------------------------------------------------------

// Fields of one width: counters (add/sub/inc/dec, add_return), a cmpxchg-loop counter,
// an xchg token field, a write field, and (64 and 32 bits) a cmpxchg-built tagged stack.
template <class T>
struct fields {
  T add, add_return, cas_ctr, token, written, stack;
};
struct area {
  fields<uint8_t> f8;
  fields<uint16_t> f16;
  fields<uint32_t> f32;
  fields<uint64_t> f64;
};

constexpr unsigned kMaxWorkers = 32;
constexpr unsigned kNodes = 255;  // index + 1 fits the head's low 8 bits

// Per-CPU stack of node indices whose head word is (tag << 8) | (index + 1): every push and
// pop adds the number of copies to the tag, which starts at the copy's unit number, so two
// copies never hold the same tag (no ABA across copies, for 2^24 / copies operations even
// in 32 bits) and one copy does not repeat one within a test.
template <class T>
struct tagged_stack {
  static constexpr unsigned half = 8;
  static constexpr T low = 0xff;
  std::atomic<uint32_t> next[kNodes] = {};  // index + 1 of the next node, 0 = end
  T step = 0;

  static unsigned idx(T head) { return static_cast<unsigned>(head & low); }
  T bump(T head, unsigned i) const {
    return static_cast<T>((((head >> half) + step) << half) | static_cast<T>(i));
  }
  void push(void *h, unsigned node) {
    T head = fam<T>::read(h);
    for (;;) {
      next[node].store(idx(head), std::memory_order_relaxed);
      T seen = fam<T>::cmpxchg(h, head, bump(head, node + 1));
      if (seen == head) return;
      head = seen;
    }
  }
  int pop(void *h) {
    T head = fam<T>::read(h);
    for (;;) {
      if (idx(head) == 0) return -1;
      unsigned n = next[idx(head) - 1].load(std::memory_order_relaxed);
      T seen = fam<T>::cmpxchg(h, head, bump(head, n));
      if (seen == head) return static_cast<int>(idx(head)) - 1;
      head = seen;
    }
  }
};

struct chaos_ctx {
  area *a = nullptr;
  tagged_stack<uint64_t> s64;
  tagged_stack<uint32_t> s32;
  // What was applied, per worker: [0] by the body, [1] by its handler.
  struct applied {
    uint64_t add[4], cas[4];
    uint64_t token[4];  // the token this side holds for each width (0 = none)
    int held64 = -1, held32 = -1;
  } w[kMaxWorkers][2];
  std::vector<std::atomic<uint32_t>> tickets;  // how many times add_return returned v (u32)
  std::atomic<bool> ticket_overflow{false};
};

template <class T>
fields<T> &pick(area *a) {
  if constexpr (sizeof(T) == 1) return a->f8;
  if constexpr (sizeof(T) == 2) return a->f16;
  if constexpr (sizeof(T) == 4) return a->f32;
  if constexpr (sizeof(T) == 8) return a->f64;
}
template <class T>
constexpr int wi() {
  return sizeof(T) == 1 ? 0 : sizeof(T) == 2 ? 1 : sizeof(T) == 4 ? 2 : 3;
}

template <class T>
void step_width(chaos_ctx &c, chaos_ctx::applied &ap, rng &r) {
  using F = fam<T>;
  fields<T> &f = pick<T>(c.a);
  const T k = static_cast<T>(r.below(5));
  switch (r.below(4)) {  // add / sub / inc / dec, the net recorded
    case 0:
      F::add(&f.add, k);
      ap.add[wi<T>()] += k;
      break;
    case 1:
      F::sub(&f.add, k);
      ap.add[wi<T>()] -= k;
      break;
    case 2:
      F::inc(&f.add);
      ap.add[wi<T>()] += 1;
      break;
    default:
      F::dec(&f.add);
      ap.add[wi<T>()] -= 1;
  }
  if constexpr (sizeof(T) == 4) {
    const uint32_t v = F::inc_return(&f.add_return);
    if (v < c.tickets.size())
      c.tickets[v].fetch_add(1, std::memory_order_relaxed);
    else
      c.ticket_overflow.store(true, std::memory_order_relaxed);
  } else {
    F::add_return(&f.add_return, 1);
  }
  // A counter built from read + cmpxchg: exact only if cmpxchg is.
  for (T old = F::read(&f.cas_ctr);;) {
    T seen = F::cmpxchg(&f.cas_ctr, old, static_cast<T>(old + 1));
    if (seen == old) break;
    old = seen;
  }
  ap.cas[wi<T>()]++;
  // Token exchange: tokens are conserved (each is somewhere exactly once).
  ap.token[wi<T>()] = F::xchg(&f.token, static_cast<T>(ap.token[wi<T>()]));
  F::write(&f.written, static_cast<T>(0x5a));
}

void step(chaos_ctx &c, chaos_ctx::applied &ap, rng &r) {
  step_width<uint8_t>(c, ap, r);
  step_width<uint16_t>(c, ap, r);
  step_width<uint32_t>(c, ap, r);
  step_width<uint64_t>(c, ap, r);
  // Stacks: hold at most one node from each; push it back on the next step.
  if (ap.held64 >= 0) {
    c.s64.push(&c.a->f64.stack, static_cast<unsigned>(ap.held64));
    ap.held64 = -1;
  } else {
    ap.held64 = c.s64.pop(&c.a->f64.stack);
  }
  if (ap.held32 >= 0) {
    c.s32.push(&c.a->f32.stack, static_cast<unsigned>(ap.held32));
    ap.held32 = -1;
  } else {
    ap.held32 = c.s32.pop(&c.a->f32.stack);
  }
}

chaos_ctx *g_ctx;
thread_local uint64_t t_handler_runs;  // constant-initialised: no TLS constructor in a handler
void on_signal(int worker, void *) {
  rng r(++t_handler_runs * 7919 + static_cast<uint64_t>(worker));
  step(*g_ctx, g_ctx->w[worker][1], r);
}

template <class T>
std::vector<T> all_copies(void *field) {
  std::vector<T> v;
  for (unsigned cpu = 0; cpu < cp_nr_cpu_ids(); cpu++)
    v.push_back(*static_cast<const T *>(cp_per_cpu_cptr(field, cpu)));
  v.push_back(*static_cast<const T *>(cp_per_cpu_fallback_ptr(field)));
  return v;
}

template <class T>
void check_width(chaos_ctx &c, int threads) {
  using F = fam<T>;
  fields<T> &f = pick<T>(c.a);
  uint64_t add = 0, cas = 0, calls = 0;
  std::vector<uint64_t> held;
  for (int w = 0; w < threads; w++)
    for (auto &ap : c.w[w]) {
      add += ap.add[wi<T>()];
      cas += ap.cas[wi<T>()];
      held.push_back(ap.token[wi<T>()]);
    }
  for (int w = 0; w < threads; w++) calls += c.w[w][0].cas[wi<T>()] + c.w[w][1].cas[wi<T>()];
  EXPECT_EQ(F::sum(&f.add), static_cast<T>(add)) << sizeof(T) * 8 << "-bit add/sub/inc/dec";
  EXPECT_EQ(F::sum(&f.add_return), static_cast<T>(calls)) << sizeof(T) * 8 << "-bit add_return";
  EXPECT_EQ(F::sum(&f.cas_ctr), static_cast<T>(cas)) << sizeof(T) * 8 << "-bit cmpxchg counter";
  // Tokens: the initial ones (1 .. 2 * threads) each exactly once, held or in some copy.
  std::vector<int> seen(2 * kMaxWorkers + 1, 0);
  for (uint64_t t : held) seen[t]++;
  for (T t : all_copies<T>(&f.token)) seen[t]++;
  for (int t = 1; t <= 2 * threads; t++)
    EXPECT_EQ(seen[t], 1) << sizeof(T) * 8 << "-bit token " << t;
  for (T v : all_copies<T>(&f.written)) EXPECT_TRUE(v == 0 || v == 0x5a) << int(v);
}

template <class T>
void check_stack(tagged_stack<T> &s, void *head, const std::vector<int> &held) {
  std::vector<int> seen(kNodes, 0);
  for (int h : held)
    if (h >= 0) seen[h]++;
  for (T hd : all_copies<T>(head))
    for (unsigned i = tagged_stack<T>::idx(hd), n = 0; i != 0 && n <= kNodes; n++) {
      seen[i - 1]++;
      i = s.next[i - 1].load(std::memory_order_relaxed);
    }
  for (unsigned i = 0; i < kNodes; i++)
    EXPECT_EQ(seen[i], 1) << sizeof(T) * 8 << "-bit stack node " << i << " lost or duplicated";
}

template <class T>
void init_stack(tagged_stack<T> &s, void *head) {
  const unsigned copies = cp_nr_cpu_ids() + 1;
  s.step = static_cast<T>(copies);
  // Tag of copy u starts at u; all nodes start on CPU 0's copy.
  for (unsigned u = 0; u < copies; u++) {
    T *p = static_cast<T *>(u < cp_nr_cpu_ids() ? cp_per_cpu_ptr(head, u)
                                                : cp_per_cpu_fallback_ptr(head));
    *p = static_cast<T>(static_cast<T>(u) << tagged_stack<T>::half);
  }
  T *p0 = static_cast<T *>(cp_per_cpu_ptr(head, 0));
  for (unsigned i = 0; i < kNodes; i++) {
    s.next[i].store(static_cast<uint32_t>(i == 0 ? 0 : i), std::memory_order_relaxed);
  }
  *p0 = static_cast<T>(*p0 | static_cast<T>(kNodes));  // top = node kNodes - 1
}

struct chaos_param {
  int threads;
  bool mixed;  // odd workers take the fallback path (rseq mode only)
};

class ThisCpuChaos : public ::testing::TestWithParam<chaos_param> {};

TEST_P(ThisCpuChaos, EveryOperationAndWidthExact) {
  const int T = GetParam().threads;
  const bool mixed = GetParam().mixed;
  const int iters = (corepool::chaos::kUnderTsan ? 16000 : 150000) / T;
  auto ctx = std::make_unique<chaos_ctx>();
  ctx->a = static_cast<area *>(cp_alloc_percpu(sizeof(area), alignof(area)));
  ASSERT_NE(ctx->a, nullptr);
  ctx->tickets = std::vector<std::atomic<uint32_t>>(static_cast<size_t>(iters) * T * 4 + 64);
  for (int w = 0; w < T; w++)
    for (int s = 0; s < 2; s++) {
      const uint64_t tok = static_cast<uint64_t>(2 * w + s + 1);
      for (auto &t : ctx->w[w][s].token) t = tok;
    }
  init_stack(ctx->s64, &ctx->a->f64.stack);
  init_stack(ctx->s32, &ctx->a->f32.stack);
  g_ctx = ctx.get();
  corepool::chaos::options opt;
  opt.threads = T;
  opt.migrate = true;
  opt.signal_storm = true;
  opt.deadline = std::chrono::milliseconds(60000);
  auto rep = corepool::chaos::run(
      opt,
      [&](int w) {
        if (mixed && w % 2) pc::force_fallback_thread(true);
        rng r(static_cast<uint64_t>(w) + 1);
        for (int i = 0; i < iters && !corepool::chaos::should_stop(); i++)
          step(*ctx, ctx->w[w][0], r);
      },
      on_signal, nullptr);
  ASSERT_TRUE(rep.in_time);
  EXPECT_GT(rep.signals, 0u);
  check_width<uint8_t>(*ctx, T);
  check_width<uint16_t>(*ctx, T);
  check_width<uint32_t>(*ctx, T);
  check_width<uint64_t>(*ctx, T);
  std::vector<int> h64, h32;
  for (int w = 0; w < T; w++)
    for (auto &ap : ctx->w[w]) {
      h64.push_back(ap.held64);
      h32.push_back(ap.held32);
    }
  check_stack(ctx->s64, &ctx->a->f64.stack, h64);
  check_stack(ctx->s32, &ctx->a->f32.stack, h32);
  // add_return (u32, +1 only): value v was returned once per copy that reached v.
  EXPECT_FALSE(ctx->ticket_overflow.load());
  std::vector<uint32_t> finals = all_copies<uint32_t>(&ctx->a->f32.add_return);
  for (uint32_t v = 1; v < ctx->tickets.size(); v++) {
    uint32_t copies = 0;
    for (uint32_t fv : finals) copies += fv >= v;
    ASSERT_EQ(ctx->tickets[v].load(), copies) << "add_return value " << v;
  }
  std::printf("T=%d mixed=%d rseq=%d: %llu signals, %llu migrations\n", T, mixed, cp_rseq_enabled(),
              static_cast<unsigned long long>(rep.signals),
              static_cast<unsigned long long>(rep.migrations));
  cp_free_percpu(ctx->a);
}

INSTANTIATE_TEST_SUITE_P(Threads, ThisCpuChaos,
                         ::testing::Values(chaos_param{1, false}, chaos_param{2, false},
                                           chaos_param{8, false}, chaos_param{32, false},
                                           chaos_param{2, true}, chaos_param{8, true}),
                         [](const auto &i) {
                           // snprintf, not string concatenation: GCC 12 -O3 reports a
                           // false -Wrestrict inside operator+ here
                           char name[32];
                           std::snprintf(name, sizeof name, "T%d%s", i.param.threads,
                                         i.param.mixed ? "_mixed" : "");
                           return std::string(name);
                         });

// ---- C++ typed forms ---------------------------------------------------------------------

struct stats {
  uint64_t hits;
  uint32_t drops;
  int16_t level;
  uint8_t flag;
  void *last;
};

TEST(ThisCpuCxx, TypedFieldOperations) {
  corepool::percpu<stats> s;
  pinned([&] {
    s.this_cpu_add(&stats::hits, 1);
    s.this_cpu_inc(&stats::hits);
    s.this_cpu_add(&stats::drops, 7);
    s.this_cpu_dec(&stats::drops);
    EXPECT_EQ(s.this_cpu_add_return(&stats::level, -3), -3);
    s.this_cpu_sub(&stats::level, 2);
    EXPECT_EQ(s.this_cpu_read(&stats::level), -5);
    EXPECT_EQ(s.this_cpu_xchg(&stats::flag, 9), 0);
    int marker;
    EXPECT_EQ(s.this_cpu_cmpxchg(&stats::last, nullptr, &marker), nullptr);
    EXPECT_EQ(s.this_cpu_read(&stats::last), &marker);
    uint8_t o = 8;
    EXPECT_FALSE(s.this_cpu_try_cmpxchg(&stats::flag, o, 1));
    EXPECT_EQ(o, 9);
    s.this_cpu_write(&stats::flag, 3);
  });
  EXPECT_EQ(s.sum(&stats::hits), 2u);
  EXPECT_EQ(s.sum(&stats::drops), 6u);
  EXPECT_EQ(s.sum(&stats::level), -5);
  EXPECT_EQ(s.sum(&stats::flag), 3);
  EXPECT_EQ(s.sum([](const stats &x) { return x.hits; }), 2u);

  corepool::percpu<uint32_t> n;
  n.this_cpu_add(5);
  n.this_cpu_inc();
  EXPECT_EQ(n.sum(), 6u);
}

}  // namespace
