// A2: the per-CPU operations, one workload per operation, each run by every counter
// contender (corepool's this_cpu family, a shared atomic, a thread_local, a padded per-thread
// array, sched_getcpu() + an atomic on the CPU's slot, the per-CPU slot bounds).
//   A2            add 1                 A2-read      read the copy
//   A2-write      write n               A2-xchg      exchange with n
//   A2-cmpxchg    compare-and-exchange: if copy == e, copy = e + 1; every contender returns
//                 the copy's old value (the kernel's cmpxchg), which gives the next e
//   A2-add_return add 1, use the new value
// 1 and 2 threads; figure = ns per operation as one thread sees it (elapsed x threads / ops).
#pragma once

#include <string>
#include <vector>

#include "bench.h"

namespace cpb {

enum class CounterOp { add, read, write, xchg, cmpxchg, add_return };

inline const std::vector<std::string> kCounterWorkloads = {
    "A2", "A2-read", "A2-write", "A2-xchg", "A2-cmpxchg", "A2-add_return"};

inline bool counter_op_of(const std::string &w, CounterOp &op) {
  static const CounterOp ops[] = {CounterOp::add,  CounterOp::read,    CounterOp::write,
                                  CounterOp::xchg, CounterOp::cmpxchg, CounterOp::add_return};
  for (size_t i = 0; i < kCounterWorkloads.size(); i++)
    if (w == kCounterWorkloads[i]) return op = ops[i], true;
  return false;
}

// Keeps read results alive without a store per operation: one store per batch.
inline std::atomic<uint64_t> g_counter_sink{0};

// Impl: template <CounterOp> uint64_t op(int tid, uint64_t n), returning a value the loop
// folds in (what read, xchg and the *_return forms give back). For cmpxchg `n` is the
// expected value e, the new value is e + 1, and the result is the old value: one call per
// operation, whose result the loop uses as the next e when the compare failed (another
// CPU's copy after a migration, or another thread's store to a shared slot) and whose
// success makes the next e = e + 1. 64 operations between polls of stop.
template <CounterOp Op, class Impl>
Measurement counter_loop(Impl &impl, int threads, double dur) {
  Measurement m = run_threads(
      threads, dur, [](int) {},
      [&](int tid, Harness &h, ThreadOut &o) {
        uint64_t n = 0, acc = 0, e = 0;
        while (n == 0 || !h.stop.load(std::memory_order_relaxed)) {
          for (int k = 0; k < 64; k++) {
            if constexpr (Op == CounterOp::cmpxchg) {
              const uint64_t old = impl.template op<Op>(tid, e);
              e = old == e ? e + 1 : old;
              acc += old;
            } else {
              acc += impl.template op<Op>(tid, n + uint64_t(k));
            }
          }
          n += 64;
          o.progress.store(n, std::memory_order_relaxed);
        }
        g_counter_sink.fetch_add(acc, std::memory_order_relaxed);
        o.ops = n;
      },
      [](int) {});
  if (m.ok) m.ns *= threads;  // per operation as each thread sees it
  return m;
}

template <class Impl>
bool run_counter(Impl &impl, const Task &t, const Params &p, Measurement &m) {
  CounterOp op;
  if (!counter_op_of(t.workload, op)) return false;
  // One compiled loop per operation, in CounterOp order.
  using loop_fn = Measurement (*)(Impl &, int, double);
  static constexpr loop_fn loops[] = {
      &counter_loop<CounterOp::add, Impl>,     &counter_loop<CounterOp::read, Impl>,
      &counter_loop<CounterOp::write, Impl>,   &counter_loop<CounterOp::xchg, Impl>,
      &counter_loop<CounterOp::cmpxchg, Impl>, &counter_loop<CounterOp::add_return, Impl>};
  m = loops[static_cast<int>(op)](impl, t.threads, p.duration_s);
  return true;
}

// The same operations on a plain std::atomic<uint64_t> slot `s`, relaxed. Shared (every
// thread's s is one word) they are RMWs; Private (only this thread writes s, others may read
// it) they are a load and a store, which is what a per-thread slot needs. cmpxchg: `n` is
// the expected value, n + 1 the new one, the old value the result (see counter_loop).
template <CounterOp Op, bool Private>
uint64_t slot_op(std::atomic<uint64_t> &s, uint64_t n) {
  constexpr auto r = std::memory_order_relaxed;
  if constexpr (Op == CounterOp::read) return s.load(r);
  if constexpr (Op == CounterOp::write) {
    s.store(n, r);
    return 0;
  }
  if constexpr (Private) {
    uint64_t v = s.load(r);
    if constexpr (Op == CounterOp::add || Op == CounterOp::add_return)
      s.store(v + 1, r);
    else if constexpr (Op == CounterOp::cmpxchg) {
      if (v == n) s.store(n + 1, r);
    } else
      s.store(n, r);  // xchg
    return Op == CounterOp::add ? 0 : (Op == CounterOp::add_return ? v + 1 : v);
  } else {
    if constexpr (Op == CounterOp::add) {
      s.fetch_add(1, r);
      return 0;
    }
    if constexpr (Op == CounterOp::add_return) return s.fetch_add(1, r) + 1;
    if constexpr (Op == CounterOp::xchg) return s.exchange(n, r);
    uint64_t v = n;  // cmpxchg: v becomes the old value whether or not it stored
    s.compare_exchange_strong(v, n + 1, r, r);
    return v;
  }
}

// Registers a counter contender over every counter workload.
template <class C>
void add_counter(const std::string &name, const std::string &family, Kind kind,
                 const std::string &config) {
  add_inproc<C>(name, family, kind, config, kCounterWorkloads);
}

}  // namespace cpb
