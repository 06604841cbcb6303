// Free lists over pre-allocated objects: what a programmer writes or pulls in when malloc is
// too slow. Every one holds `capacity` objects from one slab, filled before the run.
#include <mutex>

#include "bench.h"

#if defined(CPB_HAVE_BOOST) && __has_include(<boost/lockfree/stack.hpp>)
#include <boost/lockfree/stack.hpp>
#define CPB_BOOST_LOCKFREE 1
#endif
#if defined(CPB_HAVE_CONCURRENTQUEUE)
#if __has_include(<concurrentqueue/concurrentqueue.h>)
#include <concurrentqueue/concurrentqueue.h>
#define CPB_MOODYCAMEL 1
#elif __has_include(<concurrentqueue.h>)
#include <concurrentqueue.h>
#define CPB_MOODYCAMEL 1
#endif
#endif

namespace cpb {
namespace {

// std::mutex + vector used as a stack.
struct MutexVec {
  Slab slab;
  std::mutex mu;
  std::vector<void *> v;
  static std::unique_ptr<MutexVec> create(const Params &p, std::string &err) {
    auto c = std::make_unique<MutexVec>();
    if (!c->slab.init(p.size, p.capacity)) return err = "out of memory", nullptr;
    c->v.reserve(p.capacity);
    for (unsigned i = 0; i < p.capacity; i++) c->v.push_back(c->slab.obj(i));
    return c;
  }
  void *get() {
    std::lock_guard<std::mutex> g(mu);
    if (v.empty()) return nullptr;
    void *p = v.back();
    v.pop_back();
    return p;
  }
  void put(void *p) {
    std::lock_guard<std::mutex> g(mu);
    v.push_back(p);
  }
};

// Test-and-test-and-set spinlock + vector. It spins with `pause` and yields the CPU after
// 1024 failed polls (as most user-space spinlocks do; a pure spinner makes an oversubscribed
// run take seconds per burst while the holder is preempted).
struct SpinVec {
  Slab slab;
  alignas(64) std::atomic<bool> locked{false};
  std::vector<void *> v;
  void lock() {
    for (;;) {
      if (!locked.exchange(true, std::memory_order_acquire)) return;
      for (unsigned spins = 0; locked.load(std::memory_order_relaxed);) {
        cpu_relax();
        if (++spins == 1024) {
          spins = 0;
          sched_yield();
        }
      }
    }
  }
  void unlock() { locked.store(false, std::memory_order_release); }
  static std::unique_ptr<SpinVec> create(const Params &p, std::string &err) {
    auto c = std::make_unique<SpinVec>();
    if (!c->slab.init(p.size, p.capacity)) return err = "out of memory", nullptr;
    c->v.reserve(p.capacity);
    for (unsigned i = 0; i < p.capacity; i++) c->v.push_back(c->slab.obj(i));
    return c;
  }
  void *get() {
    lock();
    void *p = nullptr;
    if (!v.empty()) {
      p = v.back();
      v.pop_back();
    }
    unlock();
    return p;
  }
  void put(void *p) {
    lock();
    v.push_back(p);
    unlock();
  }
};

#ifdef CPB_BOOST_LOCKFREE
// boost::lockfree::stack with its node free list pre-sized to the capacity; bounded_push
// never allocates.
struct BoostStack {
  Slab slab;
  std::unique_ptr<boost::lockfree::stack<void *>> s;
  static std::unique_ptr<BoostStack> create(const Params &p, std::string &err) {
    auto c = std::make_unique<BoostStack>();
    if (!c->slab.init(p.size, p.capacity)) return err = "out of memory", nullptr;
    c->s = std::make_unique<boost::lockfree::stack<void *>>(p.capacity);
    for (unsigned i = 0; i < p.capacity; i++)
      if (!c->s->bounded_push(c->slab.obj(i))) return err = "prefill failed", nullptr;
    return c;
  }
  void *get() {
    void *p;
    return s->pop(p) ? p : nullptr;
  }
  void put(void *p) {
    while (!s->bounded_push(p)) cpu_relax();  // cannot fail: nodes = capacity
  }
};
#endif

#ifdef CPB_MOODYCAMEL
// moodycamel::ConcurrentQueue with implicit (per-thread, token-less) producers.
struct Moody {
  Slab slab;
  std::unique_ptr<moodycamel::ConcurrentQueue<void *>> q;
  static std::unique_ptr<Moody> create(const Params &p, std::string &err) {
    auto c = std::make_unique<Moody>();
    if (!c->slab.init(p.size, p.capacity)) return err = "out of memory", nullptr;
    c->q = std::make_unique<moodycamel::ConcurrentQueue<void *>>(p.capacity * 2);
    for (unsigned i = 0; i < p.capacity; i++) c->q->enqueue(c->slab.obj(i));
    return c;
  }
  void *get() {
    void *p;
    return q->try_dequeue(p) ? p : nullptr;
  }
  void put(void *p) { q->enqueue(p); }
};
#endif

void reg() {
  add_inproc<MutexVec>("mutex-vector", "freelist", Kind::peer,
                       "std::mutex + std::vector<void*> used as a stack, capacity objects");
  add_inproc<SpinVec>("spinlock-vector", "freelist", Kind::peer,
                      "TTAS spinlock (pause, sched_yield after 1024 polls) + std::vector");
#ifdef CPB_BOOST_LOCKFREE
  add_inproc<BoostStack>("boost-lockfree-stack", "freelist", Kind::peer,
                         "boost::lockfree::stack<void*>(capacity), bounded_push/pop (Boost " +
                             std::to_string(BOOST_VERSION / 100000) + "." +
                             std::to_string(BOOST_VERSION / 100 % 1000) + ")");
#else
  add_missing("boost-lockfree-stack", "freelist", Kind::peer, kPoolWorkloads,
              "Boost headers not found at build time (install libboost-dev)");
#endif
#ifdef CPB_MOODYCAMEL
  add_inproc<Moody>("moodycamel-queue", "freelist", Kind::peer,
                    "moodycamel::ConcurrentQueue<void*>(2 x capacity), implicit producers, "
                    "enqueue/try_dequeue");
#else
  add_missing("moodycamel-queue", "freelist", Kind::peer, kPoolWorkloads,
              "concurrentqueue.h not found at build time (install libconcurrentqueue-dev)");
#endif
}
Registrar r(reg);

}  // namespace
}  // namespace cpb
