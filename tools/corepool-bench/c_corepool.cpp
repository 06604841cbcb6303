// corepool's own pools as contenders. Each adapter is written against the pool's public C API
// and compiled only when the header is part of this build, so the tool builds on any
// subset of the pools; a pool whose header is absent is reported as missing.
#include <corepool/cpu.h>
#include <corepool/error.h>

#include "bench.h"

#if __has_include(<corepool/objpool.h>)
#include <corepool/objpool.h>
#define CPB_OBJPOOL 1
#endif
#if __has_include(<corepool/alf_queue.h>)
#include <corepool/alf_queue.h>
#define CPB_ALFQ 1
#endif
#if __has_include(<corepool/qmempool.h>)
#include <corepool/qmempool.h>
#define CPB_QMEMPOOL 1
#endif

namespace cpb {
namespace {

[[maybe_unused]] std::string cp_err(const char *what, int rc) {
  const char *m = cp_last_error();
  return std::string(what) + " failed (" + std::to_string(rc) + ")" + (m && *m ? ": " : "") +
         (m ? m : "");
}

[[maybe_unused]] unsigned pow2_at_least(unsigned n) {
  unsigned p = 2;
  while (p < n) p <<= 1;
  return p;
}

// The thread tier's capacity of the "+thread" contenders: a W2 burst fits in a thread's
// stack, as it fits in the per-CPU caches of the other contenders.
constexpr unsigned kThreadCache = 256;

#ifdef CPB_OBJPOOL
// objpool: capacity objects, no init callback; get = pop, put = push. Thread: the thread
// tier's capacity (0: none, whatever COREPOOL_THREAD_CACHE says).
template <unsigned Thread>
struct Objpool {
  cp_objpool *pool = nullptr;
  ~Objpool() {
    if (pool) cp_objpool_free(pool);
  }
  static std::unique_ptr<Objpool> create(const Params &p, std::string &err) {
    auto c = std::make_unique<Objpool>();
    const cp_objpool_attr a{.ring_capacity = 0,
                            .flags = Thread ? 0u : CP_OBJPOOL_F_NOTHREADCACHE,
                            .cache_capacity = 0,
                            .thread_cache = Thread};
    int rc =
        cp_objpool_init_attr(&c->pool, int(p.capacity), int(p.size), nullptr, nullptr, nullptr, &a);
    if (rc != 0) return err = cp_err("cp_objpool_init_attr", rc), nullptr;
    if (Thread && cp_objpool_thread_cache_capacity(c->pool) != Thread)
      return err = "no thread tier here (needs rseq and the rseq fence)", nullptr;
    return c;
  }
  void *get() { return cp_objpool_pop(pool); }
  void put(void *p) { (void)cp_objpool_push(p, pool); }
  unsigned get_bulk(void **v, unsigned n) { return cp_objpool_pop_bulk(pool, v, n); }
  void put_bulk(void *const *v, unsigned n) { (void)cp_objpool_push_bulk(v, n, pool); }
};
#endif

#ifdef CPB_ALFQ
// The ALF queue used as a free list: a queue of 2^k >= capacity slots holding every object.
struct AlfFreelist {
  Slab slab;
  cp_alf_queue *q = nullptr;
  ~AlfFreelist() {
    if (q) cp_alf_queue_free(q);
  }
  static std::unique_ptr<AlfFreelist> create(const Params &p, std::string &err) {
    auto c = std::make_unique<AlfFreelist>();
    if (!c->slab.init(p.size, p.capacity)) return err = "out of memory", nullptr;
    int rc = cp_alf_queue_alloc(&c->q, pow2_at_least(p.capacity));
    if (rc != 0) return err = cp_err("cp_alf_queue_alloc", rc), nullptr;
    for (unsigned i = 0; i < p.capacity; i++) {
      void *o = c->slab.obj(i);
      if (cp_alf_mp_enqueue(c->q, &o, 1) != 1) return err = "ALF prefill failed", nullptr;
    }
    return c;
  }
  void *get() {
    void *p = nullptr;
    return cp_alf_mc_dequeue(q, &p, 1) == 1 ? p : nullptr;
  }
  void put(void *p) {
    while (cp_alf_mp_enqueue(q, &p, 1) != 1) cpu_relax();  // room for every object
  }
  unsigned get_bulk(void **v, unsigned n) {
    int k = cp_alf_mc_dequeue(q, v, int(n));
    return k > 0 ? unsigned(k) : 0;
  }
  void put_bulk(void *const *v, unsigned n) {
    while (cp_alf_mp_enqueue(q, v, int(n)) != int(n)) cpu_relax();
  }
};
#endif

#ifdef CPB_QMEMPOOL
// qmempool: per-CPU local queue of LocalQ (256 as DPDK's cache contender), shared queue
// 2^k >= capacity, capacity objects pre-allocated, default backing (aligned malloc).
// qmempool-localq1024 runs W4/W5 only: a per-CPU cache that holds several bursts, to show
// what oversubscription does to the shared queue when the cache cannot absorb it
// (docs/qmempool.md, "Oversubscription").
template <uint32_t LocalQ, uint32_t Thread = 0>
struct Qmempool {
  cp_qmempool *pool = nullptr;
  ~Qmempool() {
    if (pool) cp_qmempool_destroy(pool);
  }
  static std::unique_ptr<Qmempool> create(const Params &p, std::string &err) {
    auto c = std::make_unique<Qmempool>();
    unsigned shared = pow2_at_least(p.capacity);
    const cp_qmempool_attr a{.thread_cache = Thread,
                             .flags = Thread ? 0u : CP_QMEMPOOL_F_NOTHREADCACHE};
    int rc = cp_qmempool_create_attr(&c->pool, LocalQ, shared, p.capacity, p.size, nullptr, &a);
    if (rc != 0) return err = cp_err("cp_qmempool_create_attr", rc), nullptr;
    if (Thread && cp_qmempool_thread_cache_capacity(c->pool) != Thread)
      return err = "no thread tier here (needs rseq and the rseq fence)", nullptr;
    return c;
  }
  void *get() { return cp_qmempool_alloc(pool); }
  void put(void *p) { cp_qmempool_free(pool, p); }
  unsigned get_bulk(void **v, unsigned n) {
    int k = cp_qmempool_alloc_bulk(pool, v, int(n));
    return k > 0 ? unsigned(k) : 0;
  }
  void put_bulk(void *const *v, unsigned n) { cp_qmempool_free_bulk(pool, v, int(n)); }
};
#endif

void reg() {
#ifdef CPB_OBJPOOL
  add_inproc<Objpool<0>>("objpool", "corepool", Kind::corepool,
                         "cp_objpool_init(capacity, size), pop/push");
  if (cp_rseq_enabled())  // the thread tier needs rseq (and the rseq fence)
    add_inproc<Objpool<kThreadCache>>("objpool+thread", "corepool", Kind::corepool,
                                      "as objpool with attr.thread_cache 256 (the thread tier)");
  else
    add_missing("objpool+thread", "corepool", Kind::corepool, kPoolWorkloads,
                "the thread tier needs rseq (off in this build or process)");
#else
  add_missing("objpool", "corepool", Kind::corepool, kPoolWorkloads,
              "<corepool/objpool.h> not in this build");
#endif
#ifdef CPB_QMEMPOOL
  add_inproc<Qmempool<256>>("qmempool", "corepool", Kind::corepool,
                            "cp_qmempool_create(localq 256, sharedq 2^k >= capacity, prealloc "
                            "capacity, size, malloc backing), alloc/free");
  if (cp_rseq_enabled())
    add_inproc<Qmempool<256, kThreadCache>>(
        "qmempool+thread", "corepool", Kind::corepool,
        "as qmempool with attr.thread_cache 256 (the thread tier)");
  else
    add_missing("qmempool+thread", "corepool", Kind::corepool, kPoolWorkloads,
                "the thread tier needs rseq (off in this build or process)");
  add_inproc<Qmempool<1024>>("qmempool-localq1024", "corepool", Kind::corepool,
                             "as qmempool with localq 1024 (several bursts per CPU cache)",
                             {"W4", "W5"});
#else
  add_missing("qmempool", "corepool", Kind::corepool, kPoolWorkloads,
              "<corepool/qmempool.h> not in this build");
#endif
#ifdef CPB_ALFQ
  add_inproc<AlfFreelist>("alf-queue-freelist", "corepool", Kind::corepool,
                          "cp_alf_queue (2^k >= capacity) holding every object; get = "
                          "mc_dequeue 1, put = mp_enqueue 1");
#else
  add_missing("alf-queue-freelist", "corepool", Kind::corepool, kPoolWorkloads,
              "<corepool/alf_queue.h> not in this build");
#endif
}
Registrar r(reg);

}  // namespace
}  // namespace cpb
