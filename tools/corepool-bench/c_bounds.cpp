// Lower bounds, measured in the same run as the contenders:
//   bound-tl-array      thread-private array stack, no atomics (W1 W2 W4 W5)
//   bound-tl-array-call the same stack behind an out-of-line call, as a pool's API function
//                       is called (tl_array.h): what the library's call boundary costs
//   bound-cas-array     the same array whose top index moves by compare-and-swap: one
//                       uncontended CAS per get and per put (W1 W2 W4 W5)
//   bound-percpu-array  a per-CPU array indexed by the rseq CPU id with no restart protection:
//                       the cost of finding this CPU's data and nothing more (W1 W2; it is not
//                       correct with several threads, so it runs single-threaded only)
//   bound-tier-inline   the thread tier's own fast path (ds::thread_cache_get / put, what
//                       objpool and qmempool run inside their API functions) compiled into
//                       the caller, 256 objects per thread, a locked array below it for the
//                       misses: what a +thread row would cost with a header-inline fast path
//                       and no call (W1 W2 W4 W5)
//   bound-spsc-ring     W3 with no pool: the producer cycles through pre-made objects, the
//                       consumer drops them (the shared SPSC ring alone), at the fastest of
//                       twenty-one producer x consumer pacings (see SpscOnly)
//   bound-percpu-slot   A2: the operation as a relaxed load and store on a per-CPU slot indexed
//                       by the rseq CPU id, with no restart protection (not exact when a
//                       thread is preempted between them): finding this CPU's copy, no more
//   bound-percpu-seq    A2: the same slot updated by one of the platform's restartable
//                       sequences (rseq_add, rseq_cmpxchg, ...), inlined, with no call, no
//                       pointer validation and no touched bit: finding this CPU's copy plus
//                       one sequence, what an exact this_cpu operation cannot go below
//   bound-percpu-seq-call  A2, A2-read, A2-cmpxchg: the same sequences behind an out-of-line
//                       call (percpu_seq.h), as the this_cpu operations are called: what a
//                       this_cpu function cannot go below
//   bound-line-roundtrip  W3 table: one cache line bounced between the two threads, ns per
//                       round trip (the cross-core transfer any handoff pays)
#include <corepool/cpu.h>

#include <mutex>
#include <numeric>
#include <vector>

#include "bench.h"
#include "counters.h"
#include "ds/thread_cache.h"
#include "percpu_seq.h"
#include "platform/rseq.h"
#include "tl_array.h"

namespace cpb {
namespace {

thread_local TLState *t_state;

void tl_init(size_t size) {
  t_state = new TLState;
  t_state->slab.init(size, kPerThread);
  for (unsigned i = 0; i < kPerThread; i++) t_state->slots[i] = t_state->slab.obj(i);
  t_state->top = kPerThread;
  t_state->atop.store(kPerThread);
}
void tl_fini() {
  delete t_state;
  t_state = nullptr;
}

struct TLArray {
  size_t size;
  static std::unique_ptr<TLArray> create(const Params &p, std::string &) {
    auto c = std::make_unique<TLArray>();
    c->size = p.size;
    return c;
  }
  void thread_init() { tl_init(size); }
  void thread_fini() { tl_fini(); }
  void *get() { return tl_get(t_state); }
  void put(void *p) { tl_put(t_state, p); }
};

struct TLArrayCall : TLArray {
  static std::unique_ptr<TLArrayCall> create(const Params &p, std::string &) {
    auto c = std::make_unique<TLArrayCall>();
    c->size = p.size;
    return c;
  }
  void thread_init() {
    tl_init(size);
    tl_call_bind(t_state);
  }
  void thread_fini() {
    tl_call_bind(nullptr);
    tl_fini();
  }
  void *get() { return tl_call_get(this); }
  void put(void *p) { tl_call_put(this, p); }
};

struct CasArray {
  size_t size;
  static std::unique_ptr<CasArray> create(const Params &p, std::string &) {
    auto c = std::make_unique<CasArray>();
    c->size = p.size;
    return c;
  }
  void thread_init() { tl_init(size); }
  void thread_fini() { tl_fini(); }
  void *get() {
    TLState *s = t_state;
    long t = s->atop.load(std::memory_order_relaxed);
    if (t == 0 || !s->atop.compare_exchange_strong(t, t - 1, std::memory_order_acquire))
      return nullptr;
    return s->slots[t - 1];
  }
  void put(void *p) {
    TLState *s = t_state;
    long t = s->atop.load(std::memory_order_relaxed);
    s->slots[t] = p;
    while (!s->atop.compare_exchange_weak(t, t + 1, std::memory_order_release)) {
    }
  }
};

// One array per possible CPU; get takes from the current CPU's array (scanning the others
// when it is empty), put pushes to the current CPU's. Plain loads and stores: only one
// thread ever uses it.
struct PerCpuArray {
  struct alignas(64) Cpu {
    long top = 0;
    void **slots = nullptr;
  };
  Slab slab;
  unsigned ncpu = 0, total = 0;
  std::unique_ptr<Cpu[]> cpus;
  std::unique_ptr<void *[]> store;
  static std::unique_ptr<PerCpuArray> create(const Params &p, std::string &err) {
    auto c = std::make_unique<PerCpuArray>();
    c->ncpu = cp_nr_cpu_ids();
    c->total = 4 * kBurst;
    if (!c->slab.init(p.size, c->total)) return err = "out of memory", nullptr;
    c->cpus.reset(new Cpu[c->ncpu]);
    c->store.reset(new void *[size_t(c->ncpu) * c->total]);
    for (unsigned i = 0; i < c->ncpu; i++) c->cpus[i].slots = &c->store[size_t(i) * c->total];
    for (unsigned i = 0; i < c->total; i++) {
      Cpu &k = c->cpus[i % c->ncpu];
      k.slots[k.top++] = c->slab.obj(i);
    }
    return c;
  }
  static unsigned cpu() {
    int c = corepool::platform::rseq_cpu_start();
    return c >= 0 ? unsigned(c) : cp_current_cpu();
  }
  void *get() {
    Cpu &k = cpus[cpu()];
    if (__builtin_expect(k.top > 0, 1)) return k.slots[--k.top];
    for (unsigned i = 0; i < ncpu; i++)
      if (cpus[i].top > 0) return cpus[i].slots[--cpus[i].top];
    return nullptr;
  }
  void put(void *p) {
    Cpu &k = cpus[cpu()];
    k.slots[k.top++] = p;
  }
};

struct TierInline {
  Slab slab;
  std::mutex lock;  // the pool below: misses only (a thread's first calls, W4/W5 spills)
  std::vector<void *> below;
  corepool::ds::thread_cache tier;
  ~TierInline() { tier.destroy(false); }
  static void sink(void *ctx, void *const *objs, unsigned n) {
    auto *c = static_cast<TierInline *>(ctx);
    std::lock_guard<std::mutex> g(c->lock);
    c->below.insert(c->below.end(), objs, objs + n);
  }
  static unsigned source(void *ctx, void **out, unsigned n) {
    auto *c = static_cast<TierInline *>(ctx);
    std::lock_guard<std::mutex> g(c->lock);
    unsigned k = 0;
    for (; k < n && !c->below.empty(); k++) {
      out[k] = c->below.back();
      c->below.pop_back();
    }
    return k;
  }
  static std::unique_ptr<TierInline> create(const Params &p, std::string &err) {
    auto c = std::make_unique<TierInline>();
    if (!c->slab.init(p.size, p.capacity)) return err = "out of memory", nullptr;
    c->below.reserve(p.capacity);
    for (unsigned i = 0; i < p.capacity; i++) c->below.push_back(c->slab.obj(i));
    // 256 per thread and a batch of 128, as qmempool+thread.
    if (c->tier.init(256, 128, sink, source, c.get()) != 0)
      return err = "no thread tier here (needs rseq and the rseq fence)", nullptr;
    return c;
  }
  void *get() { return corepool::ds::thread_cache_get(tier); }
  void put(void *p) { (void)corepool::ds::thread_cache_put(tier, p); }
};

// The ring's cost per object depends on how the two sides are paced, and not monotonically:
// with nothing to do between objects, the consumer keeps polling the producer's index line
// and every producer store to it costs a cross-core transfer; a producer that is faster than
// the consumer keeps the ring full and re-reads the consumer's index line for every slot
// (measured on the 2-vCPU EPYC VM: 120 ns per object with no work, 39 ns with one pause per
// object on the consumer). A pool's work is not spread evenly either: its caches run for a
// few hundred objects, then one side stops for a refill or a spill, the other side drains or
// fills the ring meanwhile, and the two then work on different lines of it. With only even
// pacings the bound stayed slower than the pools that paid for the ring and more (30.6 ns
// against 9-17). So the bound runs W3 at a grid of pacings, each for a third of the run's
// length, and reports the fastest: even ones (consumer 0, 1, 2, 4, 8 pauses per object x
// producer 0, 2, 8) and bursty ones (a stop of 256 or 1024 pauses every 128 objects on
// either side or both, the shape of a pool's slow path). The figure is the cheapest handoff
// the ring allows, pause time included. The objects are as many as the pools hold and handed
// out in a scattered order (a stride coprime with their number), as a pool's caches and
// queues do: an object comes back long after the other CPU touched it, and no side's
// sequential prefetcher pulls lines the other side is about to write.
struct SpscOnly {
  Slab slab;
  unsigned next = 0, nobjs = 0, stride = 709;
  unsigned pauses_c = 0, pauses_p = 0;  // even pacing of the current sub-run, per object
  unsigned stop_c = 0, stop_p = 0;      // bursty pacing: pauses every kStopEvery objects
  unsigned put_count = 0;               // consumer thread only
  static constexpr unsigned kStopEvery = 128;
  static std::unique_ptr<SpscOnly> create(const Params &p, std::string &err) {
    auto c = std::make_unique<SpscOnly>();
    c->nobjs = p.capacity;
    if (!c->slab.init(p.size, c->nobjs)) return err = "out of memory", nullptr;
    while (std::gcd(c->stride, c->nobjs) != 1) c->stride += 2;
    return c;
  }
  static void pause_n(unsigned n) {
    for (unsigned i = 0; i < n; i++) cpu_relax();
  }
  void *get() {  // producer thread only
    pause_n(pauses_p);
    if (stop_p && next % kStopEvery == 0) pause_n(stop_p);
    const unsigned i = next++;
    return slab.obj(static_cast<unsigned>((uint64_t{i} * stride) % nobjs));
  }
  void put(void *) {  // consumer thread only
    pause_n(pauses_c);
    if (stop_c && ++put_count % kStopEvery == 0) pause_n(stop_c);
  }
  bool custom(const Task &, const Params &p, Measurement &m) {
    m = Measurement{};
    auto run = [&](unsigned kp, unsigned kc, unsigned sp, unsigned sc) {
      pauses_p = kp;
      pauses_c = kc;
      stop_p = sp;
      stop_c = sc;
      Measurement r = w3(*this, p.duration_s / 3);
      if (r.ok && (!m.ok || r.ns < m.ns)) m = r;
    };
    for (unsigned kp : {0u, 2u, 8u})
      for (unsigned kc : {0u, 1u, 2u, 4u, 8u}) run(kp, kc, 0, 0);
    for (unsigned stop : {256u, 1024u}) {
      run(0, 0, stop, 0);
      run(0, 0, 0, stop);
      run(0, 0, stop, stop);
    }
    pauses_c = pauses_p = stop_c = stop_p = 0;
    return m.ok;
  }
};

// What the per-CPU slot bounds share: no pool operations, the counter workloads' loops.
template <class Self>
struct CounterBound {
  void *get() { return nullptr; }
  void put(void *) {}
  bool custom(const Task &t, const Params &p, Measurement &m) {
    return run_counter(static_cast<Self &>(*this), t, p, m);
  }
};

// One 64 B-padded atomic word per possible CPU.
struct PerCpuSlot : CounterBound<PerCpuSlot> {
  struct alignas(64) Slot {
    std::atomic<uint64_t> v{0};
  };
  std::unique_ptr<Slot[]> slots{new Slot[cp_nr_cpu_ids()]};
  // The CPU as the this_cpu operations and bound-percpu-seq find it: the thread's registered
  // rseq area (one TLS load), then its cpu_id.
  static unsigned cpu() {
    if (corepool::platform::rseq_abi *rs = corepool::platform::rseq_registered_area())
      return std::atomic_ref<uint32_t>(rs->cpu_id).load(std::memory_order_relaxed);
    return cp_current_cpu();
  }
  static std::unique_ptr<PerCpuSlot> create(const Params &, std::string &) {
    return std::make_unique<PerCpuSlot>();
  }
  template <CounterOp Op>
  uint64_t op(int, uint64_t n) {
    return slot_op<Op, true>(slots[cpu()].v, n);
  }
};

// The slots of PerCpuSlot as plain words updated by restartable sequences (percpu_seq.h).
template <class Self>
struct SeqBound : PerCpuSeqSlots, CounterBound<Self> {
  static std::unique_ptr<Self> create(const Params &, std::string &err) {
    if (!corepool::platform::rseq_arch_supported()) return err = "no sequences here", nullptr;
    return std::make_unique<Self>();
  }
};

// The sequences inlined into the loop.
struct PerCpuSeq : SeqBound<PerCpuSeq> {
  template <CounterOp Op>
  uint64_t op(int, uint64_t n) {
    return percpu_seq_op<Op>(*this, n);
  }
};

// The same sequences behind an out-of-line call (c_bounds_call.cpp), as the loop calls a
// this_cpu operation.
struct PerCpuSeqCall : SeqBound<PerCpuSeqCall> {
  template <CounterOp Op>
  uint64_t op(int, uint64_t n) {
    return percpu_seq_call<Op>(this, n);
  }
};

struct LineRoundTrip {
  alignas(64) std::atomic<uint64_t> line{0};
  static std::unique_ptr<LineRoundTrip> create(const Params &, std::string &) {
    return std::make_unique<LineRoundTrip>();
  }
  void *get() { return nullptr; }
  void put(void *) {}
  bool custom(const Task &, const Params &p, Measurement &m) {
    line.store(0);
    // Thread 0 turns even values odd, thread 1 odd values even: each increment is one
    // transfer of the line, two make a round trip. Both stop when the main thread says so.
    m = run_threads(
        2, p.duration_s, [](int tid) { pin_to(g_w3_cpus[tid]); },
        [&](int tid, Harness &h, ThreadOut &o) {
          uint64_t n = 0;
          const uint64_t parity = uint64_t(tid);
          Backoff b;
          while ((tid == 0 && n == 0) || !h.stop.load(std::memory_order_relaxed)) {
            uint64_t v = line.load(std::memory_order_acquire);
            if ((v & 1) != parity) {
              b.wait();
              continue;
            }
            line.store(v + 1, std::memory_order_release);
            n++;
          }
          o.ops = tid == 0 ? n : 0;  // one round trip per thread-0 step
        },
        [](int) {});
    return true;
  }
};

void reg() {
  add_inproc<TLArray>("bound-tl-array", "bound", Kind::bound,
                      "thread-private array stack, no atomics", {"W1", "W2", "W4", "W5"});
  add_inproc<TLArrayCall>("bound-tl-array-call", "bound", Kind::bound,
                          "bound-tl-array behind an out-of-line call, as a pool's API function "
                          "is called (direct call into code the caller cannot see, no PLT: "
                          "libcorepool is linked statically)",
                          {"W1", "W2", "W4", "W5"});
  add_inproc<CasArray>("bound-cas-array", "bound", Kind::bound,
                       "thread-private array stack, one uncontended CAS per get and per put",
                       {"W1", "W2", "W4", "W5"});
  add_inproc<PerCpuArray>("bound-percpu-array", "bound", Kind::bound,
                          "per-CPU array indexed by the rseq CPU id, no restart protection "
                          "(single thread only)",
                          {"W1", "W2"});
  if (cp_rseq_enabled())  // the thread tier needs rseq (and the rseq fence)
    add_inproc<TierInline>("bound-tier-inline", "bound", Kind::bound,
                           "the thread tier's fast path (ds::thread_cache_get / put) inlined "
                           "into the caller, 256 per thread, a locked array below: a +thread "
                           "row without the call",
                           {"W1", "W2", "W4", "W5"});
  else
    add_missing("bound-tier-inline", "bound", Kind::bound, {"W1", "W2", "W4", "W5"},
                "the thread tier needs rseq (off in this build or process)");
  add_inproc<SpscOnly>("bound-spsc-ring", "bound", Kind::bound,
                       "the shared SPSC ring alone: pre-made objects, no pool; fastest of "
                       "consumer pacings 0/1/2/4/8 x producer pacings 0/2/8 pauses per object",
                       {"W3"});
  add_counter<PerCpuSlot>("bound-percpu-slot", "bound", Kind::bound,
                          "per-CPU 64 B-padded slot indexed by the rseq CPU id, relaxed load + "
                          "store, no restart protection");
  add_counter<PerCpuSeq>("bound-percpu-seq", "bound", Kind::bound,
                         "the per-CPU slot updated by one restartable sequence (read: one "
                         "load), inlined: no call, no pointer validation, no touched bit");
  add_inproc<PerCpuSeqCall>("bound-percpu-seq-call", "bound", Kind::bound,
                            "bound-percpu-seq behind an out-of-line call, as a this_cpu "
                            "operation is called (direct call into code the caller cannot "
                            "see, no PLT: libcorepool is linked statically)",
                            {"A2", "A2-read", "A2-cmpxchg"});
  add_inproc<LineRoundTrip>("bound-line-roundtrip", "bound", Kind::bound,
                            "one cache line bounced between two threads; ns per round trip",
                            {"W3"});
}
Registrar r(reg);

}  // namespace
}  // namespace cpb
