// corepool-bench: shared definitions. Every contender (corepool pool, peer, lower bound) is a
// small class with the same shape, and the workloads W1-W5 below are templates over it, so
// each contender's hot loop is compiled inline (no virtual call per object) while the SPSC
// ring, the thread harness, the warm-up and the timing are the same code for all of them.
//
// The contender shape (all members but get/put optional):
//   static std::unique_ptr<C> create(const Params&, std::string &err)  // pool built+prefilled
//   void *get();                      // one object or nullptr
//   void  put(void *);                // give it back
//   unsigned get_bulk(void **, unsigned n);    // up to n  (default: loop of get)
//   void     put_bulk(void *const *, unsigned n);         // (default: loop of put)
//   void thread_init(); void thread_fini();   // per worker thread (DPDK lcore registration)
//   bool custom(const Task &, const Params &, Measurement &)  // a workload it runs itself
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <sched.h>
#include <time.h>

namespace cpb {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Spin politely: pause, and give the CPU away every 256 polls, so a waiting thread does not
// burn the time slice the thread it waits for needs (2 cores, up to 32 threads).
struct Backoff {
  unsigned n = 0;
  void wait() noexcept {
    if (++n & 255)
      cpu_relax();
    else
      sched_yield();
  }
};

inline uint64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

enum class Kind { corepool, peer, bound };
const char *kind_name(Kind k);

struct Params {
  size_t size = 64;           // object size in bytes
  unsigned capacity = 32768;  // objects per pool (enough for 32 threads x 256 + caches)
  double duration_s = 0.1;    // one measured run
  double warmup_s = 0.02;     // run before each measured run, same code path
  // W3, W4 and W5 runs last `long_scale` times as long: their figures depend on how two or
  // more threads' time slices interleave, and a short run samples that instead of measuring it.
  double long_scale = 1;
  // After the stop flag, workers have this long to finish; a run that is still going then is
  // reported as stalled with what it had completed (see run_threads).
  double stall_grace_s = 2;
  bool pin_w3 = true;  // W3's two threads on two CPUs (see g_w3_cpus)
};

// One measured thing: a workload at a thread count ("W4" with threads 2 prints as W4/T=2).
struct Task {
  std::string workload;  // W1..W5, A1..A5
  int threads = 1;
  std::string id() const;
  bool is_long() const { return workload == "W3" || workload == "W4" || workload == "W5"; }
};

// Measured and warm-up time of one run of a task.
inline double run_seconds(const Task &t, const Params &p) {
  return t.is_long() ? p.duration_s * p.long_scale : p.duration_s;
}
inline double warmup_seconds(const Task &t, const Params &p) {
  return t.is_long() ? p.warmup_s * p.long_scale : p.warmup_s;
}

struct Measurement {
  bool ok = false;
  bool stalled = false;   // its workers had not finished stall_grace_s after the stop flag
  double ns = 0;          // ns per pair (per object for W3, per op for area rows)
  uint64_t ops = 0;       // pairs counted
  uint64_t failures = 0;  // get() returned nullptr and the burst was retried
  double extra = -1;      // workload-specific (A3: fraction of allocs that found the pool empty)
  std::string err;
};

// A contender behind a type-erased runner; run_rep builds the pool, runs every task once
// (each after its warm-up) and tears the pool down, so every repetition starts alike.
struct Runner {
  virtual ~Runner() = default;
  virtual bool run_rep(const std::vector<Task> &tasks, const Params &p,
                       std::vector<Measurement> &out, std::string &err) = 0;
};

struct ContenderDesc {
  std::string name;    // unique, e.g. "dpdk-ring-c256-lcore"
  std::string family;  // e.g. "dpdk", "malloc", "freelist"
  Kind kind = Kind::peer;
  std::string config;                  // how it was configured (goes into JSON and the docs)
  std::vector<std::string> workloads;  // which workloads it runs
  bool available = true;
  std::string missing;  // why it is not available
  std::function<std::unique_ptr<Runner>()> make;
  bool in_process = false;  // make() runs it in this process (else it starts a helper)
};

std::vector<ContenderDesc> &registry();
struct Registrar {
  explicit Registrar(void (*fn)()) { fn(); }
};
void add_contender(ContenderDesc d);
void add_missing(const std::string &name, const std::string &family, Kind kind,
                 const std::vector<std::string> &workloads, const std::string &why);

inline const std::vector<std::string> kPoolWorkloads = {"W1", "W2", "W3", "W4", "W5"};

// ---- SPSC ring: the one ring every contender's W3 goes through ------------------------------
// Lamport ring with cached opposite indices. Producer owns head_, consumer owns tail_; each
// publishes its index with a release store that the other reads with acquire, so the slot
// write happens-before the matching read.
class SpscRing {
 public:
  explicit SpscRing(unsigned size_pow2) : mask_(size_pow2 - 1), slots_(new void *[size_pow2]) {}
  bool push(void *p) noexcept {
    uint64_t h = head_.load(std::memory_order_relaxed);
    if (h - tail_cache_ > mask_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (h - tail_cache_ > mask_) return false;
    }
    slots_[h & mask_] = p;
    head_.store(h + 1, std::memory_order_release);
    return true;
  }
  bool pop(void *&p) noexcept {
    uint64_t t = tail_.load(std::memory_order_relaxed);
    if (t == head_cache_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (t == head_cache_) return false;
    }
    p = slots_[t & mask_];
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

 private:
  const uint64_t mask_;
  std::unique_ptr<void *[]> slots_;
  alignas(64) std::atomic<uint64_t> head_{0};
  uint64_t tail_cache_ = 0;
  alignas(64) std::atomic<uint64_t> tail_{0};
  alignas(64) uint64_t head_cache_ = 0;  // its own line: only the consumer touches it
};
inline constexpr unsigned kRingSize = 1024;
inline constexpr unsigned kBurst = 256;

// ---- thread harness --------------------------------------------------------------------------
// T workers are started, run their per-thread init, wait for `go`; the main thread stamps the
// start, sleeps `duration`, raises `stop`; each worker stamps its own end when it sees stop.
// elapsed = latest end - start. Workers poll `stop` once per burst, never block.
struct Harness {
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  uint64_t t0 = 0;
};

struct ThreadOut {
  uint64_t ops = 0, failures = 0, t_end = 0;
  // Pairs completed so far, stored once per batch: what a stalled run reports.
  std::atomic<uint64_t> progress{0};
  char pad[64];
};

// Set by the stall watchdog's owner (a child process, see child.cpp): called when a run's
// workers are still going stall_grace_s after the stop flag, with what they had completed.
// It does not return (the child reports and exits; the parent never waits on those threads).
// Unset (in a process that must not exit), run_threads waits for the workers however long.
inline void (*g_on_stall)(const Measurement &) = nullptr;
inline double g_stall_grace_s = 2;

// Sleeps for s seconds.
inline void sleep_s(double s) {
  timespec d{time_t(s), long((s - double(time_t(s))) * 1e9)};
  nanosleep(&d, nullptr);
}

// body(tid, Harness&, ThreadOut&) runs until h.stop; init/fini wrap it on the worker.
template <class Init, class Body, class Fini>
Measurement run_threads(int nthreads, double duration_s, Init init, Body body, Fini fini) {
  Harness h;
  std::vector<ThreadOut> outs(nthreads);
  std::vector<std::thread> ts;
  std::atomic<int> finished{0};
  ts.reserve(nthreads);
  for (int i = 0; i < nthreads; i++) {
    ts.emplace_back([&, i] {
      init(i);
      h.ready.fetch_add(1);
      while (!h.go.load(std::memory_order_acquire)) std::this_thread::yield();
      body(i, h, outs[i]);
      outs[i].t_end = now_ns();
      finished.fetch_add(1, std::memory_order_release);  // pairs with the watchdog's acquire
      fini(i);
    });
  }
  while (h.ready.load() < nthreads) std::this_thread::yield();
  h.t0 = now_ns();
  h.go.store(true, std::memory_order_release);
  sleep_s(duration_s);
  h.stop.store(true, std::memory_order_relaxed);
  const uint64_t t_stop = now_ns();
  if (g_on_stall) {
    // Watchdog: poll every millisecond until every worker is out of its body.
    const uint64_t limit = t_stop + uint64_t(g_stall_grace_s * 1e9);
    while (finished.load(std::memory_order_acquire) < nthreads) {
      if (now_ns() > limit) {
        Measurement s;
        s.stalled = true;
        for (auto &o : outs) s.ops += o.progress.load(std::memory_order_relaxed);
        s.ns = s.ops ? double(t_stop - h.t0) / double(s.ops) : 0;
        s.err = "stalled: workers still running " + std::to_string(g_stall_grace_s) +
                " s after the stop flag";
        g_on_stall(s);
      }
      sleep_s(0.001);
    }
  }
  for (auto &t : ts) t.join();
  Measurement m;
  uint64_t t_end = h.t0;
  for (auto &o : outs) {
    m.ops += o.ops;
    m.failures += o.failures;
    if (o.t_end > t_end) t_end = o.t_end;
  }
  if (m.ops == 0) {
    m.err = "no operation completed";
    return m;
  }
  m.ns = double(t_end - h.t0) / double(m.ops);
  m.ok = true;
  return m;
}

// ---- workloads over a contender -------------------------------------------------------------
template <class C>
inline void touch(void *p, uint64_t v) {
  *static_cast<volatile unsigned char *>(p) = static_cast<unsigned char>(v);
}

template <class C>
void c_thread_init(C &c) {
  if constexpr (requires { c.thread_init(); }) c.thread_init();
}
template <class C>
void c_thread_fini(C &c) {
  if constexpr (requires { c.thread_fini(); }) c.thread_fini();
}

// W1: get, write a byte, put. 64 pairs between polls of `stop`.
template <class C>
Measurement w1(C &c, double dur) {
  return run_threads(
      1, dur, [&](int) { c_thread_init(c); },
      [&](int, Harness &h, ThreadOut &o) {
        uint64_t n = 0;
        do {  // at least one batch, so a thread that starts late still reports
          for (int i = 0; i < 64; i++) {
            void *p = c.get();
            if (__builtin_expect(p == nullptr, 0)) {
              o.failures++;
              continue;
            }
            touch<C>(p, n);
            c.put(p);
            n++;
          }
          o.progress.store(n, std::memory_order_relaxed);
        } while (!h.stop.load(std::memory_order_relaxed));
        o.ops = n;
      },
      [&](int) { c_thread_fini(c); });
}

// W2/W4/W5: each thread gets 256 objects, writes each, puts all 256, repeatedly.
// When a get fails (pool exhausted by other threads' bursts and caches) the partial burst is
// put back and the burst retried, so no thread can hold objects while waiting for more.
template <class C>
Measurement burst(C &c, int threads, double dur) {
  return run_threads(
      threads, dur, [&](int) { c_thread_init(c); },
      [&](int, Harness &h, ThreadOut &o) {
        void *objs[kBurst];
        uint64_t n = 0;
        while (n == 0 || !h.stop.load(std::memory_order_relaxed)) {
          unsigned got = 0;
          bool stopped = false;
          for (; got < kBurst; got++) {
            // Every get looks at the stop flag too (a relaxed load of a line nobody writes
            // until stop: the same cost for every contender): a pool that stalls under
            // oversubscription (a preempted lock holder or ring producer) must not stretch
            // the run by whole bursts after stop.
            if (n != 0 && h.stop.load(std::memory_order_relaxed)) {
              stopped = true;
              break;
            }
            void *p = c.get();
            if (__builtin_expect(p == nullptr, 0)) break;
            touch<C>(p, got);
            objs[got] = p;
          }
          if (__builtin_expect(stopped, 0)) {
            // A cut burst counts the pairs it completes. Contenders whose teardown frees
            // every object wholesale (abandon_on_stop) leave the partial burst out: putting
            // 256 objects back through a stalled ring takes minutes with 32 threads on 2 CPUs.
            if constexpr (!requires { C::abandon_on_stop; }) {
              for (unsigned i = 0; i < got; i++) c.put(objs[i]);
              n += got;
            }
            break;
          }
          if (__builtin_expect(got < kBurst, 0)) {
            o.failures++;
            for (unsigned i = 0; i < got; i++) c.put(objs[i]);
            std::this_thread::yield();
            continue;
          }
          for (unsigned i = 0; i < kBurst; i++) c.put(objs[i]);
          n += kBurst;
          o.progress.store(n, std::memory_order_relaxed);
        }
        o.ops = n;
      },
      [&](int) { c_thread_fini(c); });
}

// Where the two W3 threads run. A pool with per-CPU caches behaves in two ways in W3: when
// the scheduler puts producer and consumer on one CPU, objects go round that CPU's cache;
// on two CPUs each object crosses between the caches. A figure that averages whichever
// happened is not a measurement, so by default (g_w3_cpus set from the process's affinity
// mask) thread 0 runs on the first allowed CPU and thread 1 on the second; with one allowed
// CPU, or --w3-free, the scheduler places them, and the row shows how often they shared one.
inline int g_w3_cpus[2] = {-1, -1};

inline void pin_to(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)sched_setaffinity(0, sizeof set, &set);
}

// Sets g_w3_cpus to the first two CPUs this process may run on (or leaves them free).
inline void choose_w3_cpus(bool pin) {
  g_w3_cpus[0] = g_w3_cpus[1] = -1;
  cpu_set_t set;
  if (!pin || sched_getaffinity(0, sizeof set, &set) != 0) return;
  int found = 0;
  for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
    if (CPU_ISSET(c, &set)) g_w3_cpus[found++] = c;
  if (found < 2) g_w3_cpus[0] = g_w3_cpus[1] = -1;
}

// The two threads' CPUs, sampled every 256 objects: extra = the fraction of samples in which
// the consumer ran on the CPU the producer last reported.
struct Placement {
  alignas(64) std::atomic<int> producer_cpu{-1};
  alignas(64) uint64_t samples = 0, same = 0;  // consumer only
  double fraction() const { return samples ? double(same) / double(samples) : -1; }
};

// W3: thread 0 gets and writes objects and passes them through the SPSC ring; thread 1 takes
// them out, reads the byte and puts them back. Figure: elapsed / objects that completed.
template <class C>
Measurement w3(C &c, double dur) {
  SpscRing ring(kRingSize);
  std::atomic<bool> producer_done{false};
  Placement where;
  Measurement m = run_threads(
      2, dur,
      [&](int tid) {
        pin_to(g_w3_cpus[tid]);
        c_thread_init(c);
      },
      [&](int tid, Harness &h, ThreadOut &o) {
        if (tid == 0) {
          uint64_t n = 0;
          Backoff b;
          while (n == 0 || !h.stop.load(std::memory_order_relaxed)) {
            if ((n & 255) == 0) where.producer_cpu.store(sched_getcpu(), std::memory_order_relaxed);
            void *p = c.get();
            if (p == nullptr) {
              o.failures++;
              b.wait();
              continue;
            }
            touch<C>(p, n);
            while (!ring.push(p)) b.wait();
            n++;
          }
          producer_done.store(true, std::memory_order_release);
        } else {
          uint64_t n = 0;
          void *p;
          Backoff b;
          for (;;) {
            if (ring.pop(p)) {
              (void)*static_cast<volatile unsigned char *>(p);
              c.put(p);
              if ((++n & 255) == 0) {
                o.progress.store(n, std::memory_order_relaxed);
                where.samples++;
                where.same += sched_getcpu() == where.producer_cpu.load(std::memory_order_relaxed);
              }
              continue;
            }
            if (producer_done.load(std::memory_order_acquire)) {
              while (ring.pop(p)) {
                c.put(p);
                n++;
              }
              break;
            }
            b.wait();
          }
          o.ops = n;
        }
      },
      [&](int) { c_thread_fini(c); });
  m.extra = where.fraction();
  return m;
}

template <class C>
Measurement run_task(C &c, const Task &t, double dur, const Params &p) {
  if constexpr (requires(Measurement & m) { c.custom(t, p, m); }) {
    Measurement m;
    Params q = p;  // a custom workload runs for q.duration_s, this run's length
    q.duration_s = dur;
    q.long_scale = 1;
    if (c.custom(t, q, m)) {
      return m;
    }
  }
  if (t.workload == "W1") return w1(c, dur);
  if (t.workload == "W2") return burst(c, 1, dur);
  if (t.workload == "W3") return w3(c, dur);
  if (t.workload == "W4" || t.workload == "W5") return burst(c, t.threads, dur);
  Measurement m;
  m.err = "workload not supported";
  return m;
}

// Set in a child process: called with each task's measurement as soon as it is taken, so
// that the parent has every figure completed before a later task stalls.
inline void (*g_on_result)(const Measurement &) = nullptr;

// In-process runner: builds C per repetition, warm-up + measurement per task.
template <class C>
struct InProcRunner final : Runner {
  bool run_rep(const std::vector<Task> &tasks, const Params &p, std::vector<Measurement> &out,
               std::string &err) override {
    std::unique_ptr<C> c = C::create(p, err);
    if (!c) return false;
    for (const Task &t : tasks) {
      (void)run_task(*c, t, warmup_seconds(t, p), p);
      out.push_back(run_task(*c, t, run_seconds(t, p), p));
      if (g_on_result) g_on_result(out.back());
    }
    return true;
  }
};

template <class C>
void add_inproc(const std::string &name, const std::string &family, Kind kind,
                const std::string &config, std::vector<std::string> workloads = kPoolWorkloads) {
  ContenderDesc d;
  d.name = name;
  d.family = family;
  d.kind = kind;
  d.config = config;
  d.workloads = std::move(workloads);
  d.make = [] { return std::unique_ptr<Runner>(new InProcRunner<C>()); };
  d.in_process = true;
  add_contender(std::move(d));
}

// Objects for the free-list contenders: one aligned slab, carved in `size` strides.
struct Slab {
  std::unique_ptr<unsigned char[], void (*)(void *)> mem{nullptr, free};
  size_t stride = 0;
  unsigned n = 0;
  bool init(size_t size, unsigned count);
  void *obj(unsigned i) const { return mem.get() + size_t(i) * stride; }
};

}  // namespace cpb
