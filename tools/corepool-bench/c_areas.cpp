// Per-area rows: each corepool pool that is not an object pool, beside what it replaces.
//   A1  gen_pool alloc+free of mixed sizes in an 8 MiB region at 64 B granularity, beside
//       Boost.Interprocess rbtree_best_fit and simple_seq_fit in a heap buffer and a
//       std::mutex-guarded first-fit bitmap.
//   (A2, the per-CPU operations, are in c_counters.cpp.)
//   A3  cp_percpu_pool_alloc + cp_free_percpu beside cp_alloc_percpu + cp_free_percpu.
//   A4  A1 by T threads sharing the region, each with its own sequence and 256/T live
//       allocations (at least 8); figure = aggregate ns per pair (elapsed / all pairs).
#include <corepool/error.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include "bench.h"
#include "mixed.h"

#if __has_include(<corepool/genpool.h>)
#include <corepool/genpool.h>
#define CPB_GENPOOL 1
#endif
#if __has_include(<corepool/percpu.h>)
#include <corepool/percpu.h>
#define CPB_PERCPU 1
#endif
#if __has_include(<corepool/percpu_pool.h>) && defined(CPB_PERCPU)
#include <corepool/percpu_pool.h>
#define CPB_PERCPU_POOL 1
#endif
#if defined(CPB_HAVE_BOOST) && __has_include(<boost/interprocess/managed_external_buffer.hpp>)
#include <boost/interprocess/indexes/null_index.hpp>
#include <boost/interprocess/managed_external_buffer.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/mem_algo/simple_seq_fit.hpp>
#include <boost/interprocess/sync/mutex_family.hpp>
#define CPB_BOOST_IPC 1
#endif

namespace cpb {
namespace {

constexpr size_t kRegion = 8u << 20;  // A1 region
constexpr unsigned kGran = 64;        // A1 granularity (bytes)

// Dummy object interface: area contenders only run their own tasks.
struct AreaBase {
  void *get() { return nullptr; }
  void put(void *) {}
};

// ---- A1 --------------------------------------------------------------------------------------
// ns per free+alloc pair (A1: one thread, 256 live; A4: T threads, 256/T live each).
template <class Impl>
bool run_mixed(Impl &impl, const Task &t, const Params &p, Measurement &m) {
  if (t.workload != "A1" && t.workload != "A4") return false;
  const int threads = t.workload == "A1" ? 1 : t.threads;
  m = run_threads(
      threads, p.duration_s, [](int) {},
      [&](int tid, Harness &h, ThreadOut &o) { mixed_pairs(impl, threads, tid, h, o); },
      [](int) {});
  return true;
}

struct Region {
  std::unique_ptr<unsigned char[], void (*)(void *)> mem{nullptr, std::free};
  bool init() {
    void *m = nullptr;
    if (posix_memalign(&m, 4096, kRegion) != 0) return false;
    mem.reset(static_cast<unsigned char *>(m));
    return true;
  }
};

// First-fit bitmap under one std::mutex: one bit per 64 B granule, scanned from bit 0.
struct BitmapFirstFit : AreaBase {
  Region r;
  std::mutex mu;
  std::vector<uint64_t> bits = std::vector<uint64_t>(kRegion / kGran / 64, 0);
  static std::unique_ptr<BitmapFirstFit> create(const Params &, std::string &err) {
    auto c = std::make_unique<BitmapFirstFit>();
    if (!c->r.init()) return err = "out of memory", nullptr;
    return c;
  }
  bool test(size_t b) const { return bits[b / 64] >> (b % 64) & 1; }
  void set_range(size_t b, size_t n, bool v) {
    for (size_t i = b; i < b + n; i++) {
      if (v)
        bits[i / 64] |= 1ull << (i % 64);
      else
        bits[i / 64] &= ~(1ull << (i % 64));
    }
  }
  uintptr_t alloc(size_t size) {
    size_t need = (size + kGran - 1) / kGran, nbits = kRegion / kGran;
    std::lock_guard<std::mutex> g(mu);
    size_t run = 0;
    for (size_t b = 0; b < nbits; b++) {
      if (run == 0 && (b % 64) == 0 && bits[b / 64] == ~0ull) {
        b += 63;  // skip full words
        continue;
      }
      run = test(b) ? 0 : run + 1;
      if (run == need) {
        set_range(b + 1 - need, need, true);
        return uintptr_t(r.mem.get()) + (b + 1 - need) * kGran;
      }
    }
    return 0;
  }
  void free(uintptr_t a, size_t size) {
    size_t need = (size + kGran - 1) / kGran;
    std::lock_guard<std::mutex> g(mu);
    set_range((a - uintptr_t(r.mem.get())) / kGran, need, false);
  }
  bool custom(const Task &t, const Params &p, Measurement &m) { return run_mixed(*this, t, p, m); }
};

#ifdef CPB_BOOST_IPC
namespace bi = boost::interprocess;
template <class Algo>
struct BoostIpc : AreaBase {
  using Seg = bi::basic_managed_external_buffer<char, Algo, bi::null_index>;
  Region r;
  std::unique_ptr<Seg> seg;
  static std::unique_ptr<BoostIpc> create(const Params &, std::string &err) {
    auto c = std::make_unique<BoostIpc>();
    if (!c->r.init()) return err = "out of memory", nullptr;
    c->seg = std::make_unique<Seg>(bi::create_only, c->r.mem.get(), kRegion);
    return c;
  }
  uintptr_t alloc(size_t size) { return uintptr_t(seg->allocate(size, std::nothrow)); }
  void free(uintptr_t a, size_t) { seg->deallocate(reinterpret_cast<void *>(a)); }
  bool custom(const Task &t, const Params &p, Measurement &m) { return run_mixed(*this, t, p, m); }
};
using BoostRbtree = BoostIpc<bi::rbtree_best_fit<bi::mutex_family>>;
using BoostSeqFit = BoostIpc<bi::simple_seq_fit<bi::mutex_family>>;
#endif

#ifdef CPB_GENPOOL
// Spread: cp_gen_pool_set_spread(pool, true), each CPU's first fit starts at its own home.
template <bool Spread>
struct GenPoolT : AreaBase {
  Region r;
  cp_gen_pool *pool = nullptr;
  ~GenPoolT() {
    if (pool) cp_gen_pool_destroy(pool);
  }
  static std::unique_ptr<GenPoolT> create(const Params &, std::string &err) {
    auto c = std::make_unique<GenPoolT>();
    if (!c->r.init()) return err = "out of memory", nullptr;
    c->pool = cp_gen_pool_create(6, -1);
    if (!c->pool) return err = std::string("cp_gen_pool_create: ") + cp_last_error(), nullptr;
    int rc = cp_gen_pool_add(c->pool, uintptr_t(c->r.mem.get()), kRegion, -1);
    if (rc == 0 && Spread) rc = cp_gen_pool_set_spread(c->pool, true);
    if (rc != 0) return err = std::string("cp_gen_pool_add: ") + cp_last_error(), nullptr;
    return c;
  }
  uintptr_t alloc(size_t size) { return cp_gen_pool_alloc(pool, size); }
  void free(uintptr_t a, size_t size) { (void)cp_gen_pool_free(pool, a, size); }
  bool custom(const Task &t, const Params &p, Measurement &m) { return run_mixed(*this, t, p, m); }
};
using GenPool = GenPoolT<false>;
using GenPoolSpread = GenPoolT<true>;
#endif

#ifdef CPB_PERCPU
// ---- A3 --------------------------------------------------------------------------------------
struct PercpuDirect : AreaBase {
  static std::unique_ptr<PercpuDirect> create(const Params &, std::string &) {
    return std::make_unique<PercpuDirect>();
  }
  bool custom(const Task &t, const Params &p, Measurement &m) {
    if (t.workload != "A3") return false;
    m = run_threads(
        1, p.duration_s, [](int) {},
        [&](int, Harness &h, ThreadOut &o) {
          uint64_t n = 0;
          while (n == 0 || !h.stop.load(std::memory_order_relaxed)) {
            for (int k = 0; k < 16; k++) {
              void *a = cp_alloc_percpu(64, 8);
              if (!a) {
                o.failures++;
                continue;
              }
              cp_free_percpu(a);
              n++;
            }
          }
          o.ops = n;
        },
        [](int) {});
    return true;
  }
};
#endif

#ifdef CPB_PERCPU_POOL
// Watermarks low 64, high 256, filled to high before the run. An alloc that finds the pool
// empty falls back to cp_alloc_percpu (counted: the "empty" fraction).
struct PercpuPool : AreaBase {
  cp_percpu_pool *pool = nullptr;
  ~PercpuPool() {
    if (pool) cp_percpu_pool_destroy(pool);
  }
  static std::unique_ptr<PercpuPool> create(const Params &, std::string &err) {
    auto c = std::make_unique<PercpuPool>();
    int rc = cp_percpu_pool_create(&c->pool, 64, 8, 64, 256);
    if (rc != 0) return err = std::string("cp_percpu_pool_create: ") + cp_last_error(), nullptr;
    cp_percpu_pool_fill(c->pool, 0);
    return c;
  }
  bool custom(const Task &t, const Params &p, Measurement &m) {
    if (t.workload != "A3") return false;
    uint64_t empty = 0;
    m = run_threads(
        1, p.duration_s, [](int) {},
        [&](int, Harness &h, ThreadOut &o) {
          uint64_t n = 0;
          while (n == 0 || !h.stop.load(std::memory_order_relaxed)) {
            for (int k = 0; k < 16; k++) {
              void *a = cp_percpu_pool_alloc(pool);
              if (!a) {
                empty++;
                a = cp_alloc_percpu(64, 8);
              }
              if (!a) {
                o.failures++;
                continue;
              }
              cp_free_percpu(a);
              n++;
            }
          }
          o.ops = n;
        },
        [](int) {});
    if (m.ok && m.ops) m.extra = double(empty) / double(m.ops);
    return true;
  }
};
#endif

void reg() {
  const std::vector<std::string> a1 = {"A1", "A4"}, a3 = {"A3"};
#ifdef CPB_GENPOOL
  add_inproc<GenPool>("genpool", "corepool", Kind::corepool,
                      "cp_gen_pool_create(order 6 = 64 B), one 8 MiB chunk, first fit", a1);
  add_inproc<GenPoolSpread>("genpool-spread", "corepool", Kind::corepool,
                            "as genpool, with cp_gen_pool_set_spread(pool, true): each CPU's "
                            "first fit starts at its own home in the chunk",
                            a1);
#else
  add_missing("genpool", "corepool", Kind::corepool, a1, "<corepool/genpool.h> not in this build");
  add_missing("genpool-spread", "corepool", Kind::corepool, a1,
              "<corepool/genpool.h> not in this build");
#endif
#ifdef CPB_BOOST_IPC
  add_inproc<BoostRbtree>("boost-ipc-rbtree_best_fit", "area", Kind::peer,
                          "Boost.Interprocess managed_external_buffer over an 8 MiB heap buffer, "
                          "rbtree_best_fit<mutex_family>, null_index",
                          a1);
  add_inproc<BoostSeqFit>("boost-ipc-simple_seq_fit", "area", Kind::peer,
                          "Boost.Interprocess managed_external_buffer over an 8 MiB heap buffer, "
                          "simple_seq_fit<mutex_family>, null_index",
                          a1);
#else
  add_missing("boost-ipc-rbtree_best_fit", "area", Kind::peer, a1,
              "Boost.Interprocess headers not found at build time (install libboost-dev)");
  add_missing("boost-ipc-simple_seq_fit", "area", Kind::peer, a1,
              "Boost.Interprocess headers not found at build time (install libboost-dev)");
#endif
  add_inproc<BitmapFirstFit>("mutex-bitmap-firstfit", "area", Kind::peer,
                             "std::mutex + one bit per 64 B granule, first fit from bit 0", a1);
#ifdef CPB_PERCPU_POOL
  add_inproc<PercpuPool>("percpu_pool", "corepool", Kind::corepool,
                         "cp_percpu_pool(64 B, low 64, high 256) filled, alloc + cp_free_percpu",
                         a3);
#else
  add_missing("percpu_pool", "corepool", Kind::corepool, a3,
              "<corepool/percpu_pool.h> not in this build");
#endif
#ifdef CPB_PERCPU
  add_inproc<PercpuDirect>("percpu-direct", "corepool", Kind::corepool,
                           "cp_alloc_percpu(64, 8) + cp_free_percpu", a3);
#else
  add_missing("percpu-direct", "corepool", Kind::corepool, a3,
              "<corepool/percpu.h> not in this build");
#endif
}
Registrar r(reg);

}  // namespace
}  // namespace cpb
