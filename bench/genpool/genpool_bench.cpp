// gen_pool benchmarks: alloc+free pairs of mixed sizes (1..8 granules) on one chunk of
// 1 MiB, 64 MiB or 1 GiB at granularity 64 B or 4 KiB, filled to 0/50/90% and fragmented
// (filled with mixed pieces, then random pieces freed), with 1/2/8/32 threads (genpool_spread:
// the same pool with cp_gen_pool_set_spread on), beside a
// mutex-guarded first-fit bitmap (the kernel's scan, no hints) and Boost.Interprocess
// rbtree_best_fit (1 MiB and 64 MiB: Boost needs real memory, gen_pool and the bitmap use
// made-up addresses) and simple_seq_fit (1 MiB: its sorted free list makes filling 64 MiB
// quadratic) in a heap buffer.
//
//   ./build/release/bench/bench_genpool --benchmark_filter='order:6/size_mib:1/' ...
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "corepool/genpool.h"

#ifdef GENPOOL_BENCH_BOOST
#include <boost/interprocess/indexes/null_index.hpp>
#include <boost/interprocess/managed_heap_memory.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/mem_algo/simple_seq_fit.hpp>
#endif

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kSizes[] = {1, 2, 3, 4, 6, 8, 1, 2};  // granules, mixed

struct allocator_fx {
  virtual ~allocator_fx() = default;
  virtual uintptr_t alloc(size_t bytes) = 0;
  virtual void free(uintptr_t a, size_t bytes) = 0;
  // Sequential fill (pieces laid end to end from the start); returns the addresses.
  virtual uintptr_t fill_next(size_t bytes) = 0;
};

struct genpool_fx final : allocator_fx {
  cp_gen_pool *p;
  uint64_t next = 0;
  genpool_fx(int order, uint64_t size, bool spread) : p(cp_gen_pool_create(order, -1)) {
    cp_gen_pool_add(p, uintptr_t{1} << 40, size, -1);  // made up: never touched
    cp_gen_pool_set_spread(p, spread);
  }
  ~genpool_fx() override { cp_gen_pool_detach(p); }
  uintptr_t alloc(size_t n) override { return cp_gen_pool_alloc(p, n); }
  void free(uintptr_t a, size_t n) override { cp_gen_pool_free(p, a, n); }
  uintptr_t fill_next(size_t n) override {
    cp_genpool_data_fixed f{next};
    uintptr_t a = cp_gen_pool_alloc_algo(p, n, CP_GENPOOL_FIXED, &f);
    next += n;
    return a;
  }
};

// The kernel's scheme without lock-freedom or hints: one mutex, first fit from bit 0.
struct mutex_bitmap_fx final : allocator_fx {
  std::mutex m;
  std::vector<uint64_t> bits;
  uint64_t nbits;
  int order;
  uintptr_t base = uintptr_t{1} << 40;
  uint64_t next = 0;
  mutex_bitmap_fx(int o, uint64_t size) : bits((size >> o) / 64 + 1), nbits(size >> o), order(o) {}
  bool test(uint64_t i) const { return (bits[i / 64] >> (i % 64)) & 1; }
  void set(uint64_t s, uint64_t n, bool v) {
    for (uint64_t i = s; i < s + n; ++i)
      if (v)
        bits[i / 64] |= uint64_t{1} << (i % 64);
      else
        bits[i / 64] &= ~(uint64_t{1} << (i % 64));
  }
  uint64_t find_zero(uint64_t pos) const {
    while (pos < nbits) {
      uint64_t w = ~bits[pos / 64] & (~uint64_t{0} << (pos % 64));
      if (w) return std::min(nbits, (pos & ~uint64_t{63}) + __builtin_ctzll(w));
      pos = (pos & ~uint64_t{63}) + 64;
    }
    return nbits;
  }
  uintptr_t alloc(size_t bytes) override {
    uint64_t n = bytes >> order;
    std::lock_guard<std::mutex> g(m);
    for (uint64_t s = find_zero(0); s + n <= nbits; s = find_zero(s + 1)) {
      uint64_t i = s;
      while (i < s + n && !test(i)) ++i;
      if (i == s + n) {
        set(s, n, true);
        return base + (s << order);
      }
      s = i;
    }
    return 0;
  }
  void free(uintptr_t a, size_t bytes) override {
    std::lock_guard<std::mutex> g(m);
    set((a - base) >> order, bytes >> order, false);
  }
  uintptr_t fill_next(size_t bytes) override {
    uint64_t n = bytes >> order;
    if (next + n > nbits) return 0;
    set(next, n, true);
    uintptr_t a = base + (next << order);
    next += n;
    return a;
  }
};

#ifdef GENPOOL_BENCH_BOOST
namespace bip = boost::interprocess;
template <class Algo>
struct boost_fx final : allocator_fx {
  bip::basic_managed_heap_memory<char, Algo, bip::null_index> heap;
  explicit boost_fx(uint64_t size) : heap(size) {}
  uintptr_t alloc(size_t n) override {
    return reinterpret_cast<uintptr_t>(heap.allocate(n, std::nothrow));
  }
  void free(uintptr_t a, size_t) override { heap.deallocate(reinterpret_cast<void *>(a)); }
  uintptr_t fill_next(size_t n) override { return alloc(n); }
};
#endif

enum kind { GENPOOL, GENPOOL_SPREAD, MUTEX_BITMAP, BOOST_RBTREE, BOOST_SEQFIT };
const char *kind_name[] = {"genpool", "genpool_spread", "mutex_bitmap", "boost_rbtree_best_fit",
                           "boost_simple_seq_fit"};

struct key {
  kind k;
  int order;
  uint64_t size;
  int fill;
  bool operator==(const key &) const = default;
};

// One fixture at a time (benchmarks run in registration order): 1 GiB ones are big.
std::unique_ptr<allocator_fx> g_fx;
key g_key{GENPOOL, -1, 0, 0};

allocator_fx *get_fixture(const key &k) {
  if (g_fx && g_key == k) return g_fx.get();
  g_fx.reset();
  switch (k.k) {
    case GENPOOL:
    case GENPOOL_SPREAD:
      g_fx = std::make_unique<genpool_fx>(k.order, k.size, k.k == GENPOOL_SPREAD);
      break;
    case MUTEX_BITMAP:
      g_fx = std::make_unique<mutex_bitmap_fx>(k.order, k.size);
      break;
#ifdef GENPOOL_BENCH_BOOST
    case BOOST_RBTREE:
      g_fx = std::make_unique<boost_fx<bip::rbtree_best_fit<bip::mutex_family>>>(k.size);
      break;
    case BOOST_SEQFIT:
      g_fx = std::make_unique<boost_fx<bip::simple_seq_fit<bip::mutex_family>>>(k.size);
      break;
#else
    default:
      break;
#endif
  }
  g_key = k;
  // Fill completely with mixed pieces, then free random pieces down to the target fill:
  // free space ends up scattered in holes of mixed sizes.
  std::vector<std::pair<uintptr_t, size_t>> pieces;
  uint64_t g = uint64_t{1} << k.order, used = 0;
  for (size_t i = 0;; ++i) {
    size_t n = kSizes[i % 8] * g;
    uintptr_t a = g_fx->fill_next(n);
    if (!a) break;
    pieces.push_back({a, n});
    used += n;
  }
  std::mt19937_64 r(42);
  std::shuffle(pieces.begin(), pieces.end(), r);
  uint64_t target = k.size / 100 * static_cast<uint64_t>(k.fill);
  for (auto &[a, n] : pieces) {
    if (used <= target) break;
    g_fx->free(a, n);
    used -= n;
  }
  return g_fx.get();
}

allocator_fx *g_cur;

void bm_pairs(benchmark::State &st, key k) {
  if (st.thread_index() == 0) g_cur = get_fixture(k);
  const uint64_t g = uint64_t{1} << k.order;
  uint64_t i = static_cast<uint64_t>(st.thread_index()) * 3, fails = 0;
  for (auto _ : st) {
    allocator_fx *f = g_cur;
    size_t n = kSizes[i++ % 8] * g;
    uintptr_t a = f->alloc(n);
    if (a)
      f->free(a, n);
    else
      ++fails;
    benchmark::DoNotOptimize(a);
  }
  st.SetItemsProcessed(st.iterations());
  st.counters["fail"] = benchmark::Counter(static_cast<double>(fails));
}

// Lower bound of any lock-free bitmap allocator's alloc+free pair: one CAS that sets the lowest
// clear bit of one word and one RMW that clears it again; no search, no validation, no hints,
// no avail. (The "3x simple_seq_fit" goal is measured against this.)
void bm_bound_cas_pair(benchmark::State &st) {
  alignas(64) static std::atomic<uint64_t> word{0x0f0f};
  for (auto _ : st) {
    uint64_t old = word.load(std::memory_order_relaxed);
    uint64_t bit = ~old & (old + 1);
    word.compare_exchange_strong(old, old | bit, std::memory_order_acq_rel);
    word.fetch_and(~bit, std::memory_order_release);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(bm_bound_cas_pair)->Name("bound/cas_set_and_clear_one_word")->UseRealTime();

int register_all() {
  for (int order : {6, 12})
    for (uint64_t size : {kMiB, 64 * kMiB, 1024 * kMiB})
      for (int fill : {0, 50, 90})
        for (kind k : {GENPOOL, GENPOOL_SPREAD, MUTEX_BITMAP, BOOST_RBTREE, BOOST_SEQFIT}) {
#ifndef GENPOOL_BENCH_BOOST
          if (k >= BOOST_RBTREE) continue;
#endif
          if (k >= BOOST_RBTREE && size > 64 * kMiB) continue;
          // simple_seq_fit keeps one sorted free list: O(n) per free, hours to fill 64 MiB.
          if (k == BOOST_SEQFIT && size > kMiB) continue;
          std::string name =
              std::string("pairs/") + kind_name[k] + "/order:" + std::to_string(order) +
              "/size_mib:" + std::to_string(size / kMiB) + "/fill:" + std::to_string(fill);
          benchmark::RegisterBenchmark(name.c_str(), bm_pairs, key{k, order, size, fill})
              ->Threads(1)
              ->Threads(2)
              ->Threads(8)
              ->Threads(32)
              ->UseRealTime();
        }
  return 0;
}
int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
