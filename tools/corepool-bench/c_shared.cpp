// Shared-memory area rows:
//   A5  A1 by P processes sharing one region (P = 1, 2, 8): each process maps the region at
//       its own address, runs its own mixed sequence with 256/P live allocations (at least 8);
//       figure = aggregate ns per pair (elapsed up to the last process's end / all pairs).
// gen_pool's process-shared mode (metadata and data in one memfd) beside Boost.Interprocess
// managed_shared_memory with rbtree_best_fit and simple_seq_fit (its segment manager takes a
// process-shared mutex around every allocate and deallocate).
#include <corepool/error.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "bench.h"
#include "mixed.h"

#if __has_include(<corepool/genpool.h>)
#include <corepool/genpool.h>
#define CPB_GENPOOL 1
#endif
#if defined(CPB_HAVE_BOOST) && __has_include(<boost/interprocess/managed_shared_memory.hpp>)
#include <boost/interprocess/indexes/null_index.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/mem_algo/simple_seq_fit.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <boost/interprocess/sync/mutex_family.hpp>
#define CPB_BOOST_SHM 1
#endif

namespace cpb {
namespace {

constexpr size_t kData = 8u << 20;  // managed bytes, as in A1

// Runs body(pid_index, Harness&, ThreadOut&) in `nproc` forked processes, each after
// child_init(index) (which returns false to fail the run). Harness and outputs live in a
// shared mapping; timing as run_threads.
template <class Init, class Body>
Measurement run_processes(int nproc, double duration_s, Init child_init, Body body) {
  struct Ctl {
    Harness h;
    std::atomic<int> failed{0};
    ThreadOut out[64];
  };
  Measurement m;
  if (nproc < 1 || nproc > 64) return m.err = "process count out of range", m;
  void *mem = mmap(nullptr, sizeof(Ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return m.err = "mmap failed", m;
  Ctl *c = new (mem) Ctl();
  std::vector<pid_t> pids;
  for (int i = 0; i < nproc; i++) {
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid < 0) {
      c->failed.fetch_add(1);
      break;
    }
    if (pid == 0) {
      bool ok = child_init(i);
      if (!ok) c->failed.fetch_add(1);
      c->h.ready.fetch_add(1);
      if (ok) {
        while (!c->h.go.load(std::memory_order_acquire)) sched_yield();
        body(i, c->h, c->out[i]);
        c->out[i].t_end = now_ns();
      }
      _exit(ok ? 0 : 1);
    }
    pids.push_back(pid);
  }
  while (c->h.ready.load() < int(pids.size())) sched_yield();
  c->h.t0 = now_ns();
  c->h.go.store(true, std::memory_order_release);
  timespec d{time_t(duration_s), long((duration_s - double(time_t(duration_s))) * 1e9)};
  nanosleep(&d, nullptr);
  c->h.stop.store(true, std::memory_order_relaxed);
  for (pid_t pid : pids) {
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
      c->failed.fetch_add(1);
  }
  uint64_t t_end = c->h.t0;
  for (int i = 0; i < nproc; i++) {
    m.ops += c->out[i].ops;
    m.failures += c->out[i].failures;
    if (c->out[i].t_end > t_end) t_end = c->out[i].t_end;
  }
  const int failed = c->failed.load();
  const uint64_t t0 = c->h.t0;
  munmap(mem, sizeof(Ctl));
  if (failed) return m.err = "a process failed to start or exit cleanly", m;
  if (m.ops == 0) return m.err = "no operation completed", m;
  m.ns = double(t_end - t0) / double(m.ops);
  m.ok = true;
  return m;
}

struct SharedBase {
  void *get() { return nullptr; }
  void put(void *) {}
};

template <class Impl>
bool run_shared(Impl &impl, const Task &t, const Params &p, Measurement &m) {
  if (t.workload != "A5") return false;
  const int nproc = t.threads;
  m = run_processes(
      nproc, p.duration_s, [&](int i) { return impl.child_init(i); },
      [&](int i, Harness &h, ThreadOut &o) { mixed_pairs(impl, nproc, i, h, o); });
  return true;
}

#ifdef CPB_GENPOOL
// One memfd: [pool metadata | 8 MiB chunk]. The creator formats it; each process maps it
// anew (its own address) and attaches.
template <bool Spread>
struct GenPoolShared : SharedBase {
  int fd = -1;
  size_t meta = 0, total = 0;
  void *map = nullptr;
  cp_gen_pool *pool = nullptr;
  ~GenPoolShared() {
    if (pool) cp_gen_pool_detach(pool);
    if (map) munmap(map, total);
    if (fd >= 0) close(fd);
  }
  static std::unique_ptr<GenPoolShared> create(const Params &, std::string &err) {
    auto c = std::make_unique<GenPoolShared>();
    c->meta = (cp_gen_pool_chunk_meta_size(6, kData) + 4096 + 4095) & ~size_t{4095};
    c->total = c->meta + kData;
    c->fd = memfd_create("cpb_genpool", 0);
    if (c->fd < 0 || ftruncate(c->fd, off_t(c->total)) != 0) return err = "memfd", nullptr;
    c->map = mmap(nullptr, c->total, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
    if (c->map == MAP_FAILED) return c->map = nullptr, err = "mmap", nullptr;
    c->pool = cp_gen_pool_create_shared(c->map, c->total, 6);
    if (!c->pool)
      return err = std::string("cp_gen_pool_create_shared: ") + cp_last_error(), nullptr;
    int rc = cp_gen_pool_add(c->pool, uintptr_t(c->map) + c->meta, kData, -1);
    if (rc == 0 && Spread) rc = cp_gen_pool_set_spread(c->pool, true);
    if (rc != 0) return err = std::string("cp_gen_pool_add: ") + cp_last_error(), nullptr;
    return c;
  }
  // In the child: its own mapping and handle (the inherited ones are left alone).
  bool child_init(int) {
    void *m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return false;
    pool = cp_gen_pool_attach_shared(m, total);
    return pool != nullptr;
  }
  uintptr_t alloc(size_t size) { return cp_gen_pool_alloc(pool, size); }
  void free(uintptr_t a, size_t size) { (void)cp_gen_pool_free(pool, a, size); }
  bool custom(const Task &t, const Params &p, Measurement &m) { return run_shared(*this, t, p, m); }
};
#endif

#ifdef CPB_BOOST_SHM
namespace bi = boost::interprocess;
// managed_shared_memory with the given algorithm (no name index: allocate/deallocate only).
template <class Algo>
struct BoostShm : SharedBase {
  using Seg = bi::basic_managed_shared_memory<char, Algo, bi::null_index>;
  std::string name;
  std::unique_ptr<Seg> seg;
  ~BoostShm() {
    seg.reset();
    if (!name.empty()) bi::shared_memory_object::remove(name.c_str());
  }
  static std::unique_ptr<BoostShm> create(const Params &, std::string &err) {
    auto c = std::make_unique<BoostShm>();
    c->name = "cpb_boost_" + std::to_string(getpid());
    bi::shared_memory_object::remove(c->name.c_str());
    try {
      // The segment's own header and free-block bookkeeping come out of it: add room.
      c->seg = std::make_unique<Seg>(bi::create_only, c->name.c_str(), kData + (256u << 10));
    } catch (const std::exception &e) {
      return err = std::string("managed_shared_memory: ") + e.what(), nullptr;
    }
    return c;
  }
  // In the child: open the segment by name (its own mapping, at another address).
  bool child_init(int) {
    try {
      seg.release();  // the inherited mapping stays; the parent's object owns it
      seg = std::make_unique<Seg>(bi::open_only, name.c_str());
    } catch (const std::exception &) {
      return false;
    }
    return true;
  }
  uintptr_t alloc(size_t size) { return uintptr_t(seg->allocate(size, std::nothrow)); }
  void free(uintptr_t a, size_t) { seg->deallocate(reinterpret_cast<void *>(a)); }
  bool custom(const Task &t, const Params &p, Measurement &m) { return run_shared(*this, t, p, m); }
};
using BoostShmRbtree = BoostShm<bi::rbtree_best_fit<bi::mutex_family>>;
using BoostShmSeqFit = BoostShm<bi::simple_seq_fit<bi::mutex_family>>;
#endif

void reg() {
  const std::vector<std::string> a5 = {"A5"};
#ifdef CPB_GENPOOL
  add_inproc<GenPoolShared<false>>(
      "genpool-shared", "corepool", Kind::corepool,
      "cp_gen_pool_create_shared(order 6) over a memfd: metadata, then one 8 MiB chunk inside "
      "the region; each process maps it and attaches; first fit",
      a5);
  add_inproc<GenPoolShared<true>>("genpool-shared-spread", "corepool", Kind::corepool,
                                  "as genpool-shared, with cp_gen_pool_set_spread(pool, true)", a5);
#else
  for (const char *n : {"genpool-shared", "genpool-shared-spread"})
    add_missing(n, "corepool", Kind::corepool, a5, "<corepool/genpool.h> not in this build");
#endif
#ifdef CPB_BOOST_SHM
  add_inproc<BoostShmRbtree>("boost-shm-rbtree_best_fit", "area", Kind::peer,
                             "Boost.Interprocess basic_managed_shared_memory<char, "
                             "rbtree_best_fit<mutex_family>, null_index>, 8 MiB + 256 KiB; each "
                             "process opens it by name",
                             a5);
  add_inproc<BoostShmSeqFit>("boost-shm-simple_seq_fit", "area", Kind::peer,
                             "Boost.Interprocess basic_managed_shared_memory<char, "
                             "simple_seq_fit<mutex_family>, null_index>, 8 MiB + 256 KiB; each "
                             "process opens it by name",
                             a5);
#else
  for (const char *n : {"boost-shm-rbtree_best_fit", "boost-shm-simple_seq_fit"})
    add_missing(n, "area", Kind::peer, a5,
                "Boost.Interprocess headers not found at build time (install libboost-dev)");
#endif
}
Registrar r(reg);

}  // namespace
}  // namespace cpb
