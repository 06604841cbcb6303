// corepool::objpool<T> construction beside cp_objpool_init for the same objects: the typed
// pool must stay within a small constant factor of the C init at every size (it builds
// each T in place in one pass after the C pool exists). Each iteration creates and
// releases one pool of n 64-byte objects:
//   C/n          cp_objpool_init with an objinit that writes each object's id, then free;
//   Cxx/n        corepool::objpool<obj>(n, init) doing the same through the constructor;
//   CxxAttr/n    the same with a bounded ring (cp_objpool_attr.ring_capacity = 1024).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>

#include <corepool/objpool.h>
#include <corepool/objpool.hpp>

namespace {

struct obj {
  uint64_t id;
  char pad[56];
};

int c_init(void *o, void *ctx) {
  auto *next = static_cast<uint64_t *>(ctx);
  static_cast<obj *>(o)->id = (*next)++;
  return 0;
}

void C(benchmark::State &s) {
  const int n = static_cast<int>(s.range(0));
  for (auto _ : s) {
    uint64_t next = 0;
    cp_objpool *p = nullptr;
    if (cp_objpool_init(&p, n, sizeof(obj), &next, c_init, nullptr) != 0) std::abort();
    benchmark::DoNotOptimize(p);
    cp_objpool_free(p);
  }
  s.SetItemsProcessed(s.iterations() * n);
}

void Cxx(benchmark::State &s) {
  const int n = static_cast<int>(s.range(0));
  for (auto _ : s) {
    uint64_t next = 0;
    corepool::objpool<obj> p(n, [&] { return obj{next++, {}}; });
    benchmark::DoNotOptimize(p.native());
  }
  s.SetItemsProcessed(s.iterations() * n);
}

void CxxAttr(benchmark::State &s) {
  const int n = static_cast<int>(s.range(0));
  const cp_objpool_attr a{
      .ring_capacity = 1024, .flags = 0, .cache_capacity = 0, .thread_cache = 0};
  for (auto _ : s) {
    uint64_t next = 0;
    corepool::objpool<obj> p(
        n,
        [&] {
          return obj{next++, {}};
        },
        a);
    benchmark::DoNotOptimize(p.native());
  }
  s.SetItemsProcessed(s.iterations() * n);
}

BENCHMARK(C)->Arg(1 << 16)->Arg(1 << 20)->Arg(1 << 22)->Unit(benchmark::kMillisecond);
BENCHMARK(Cxx)->Arg(1 << 16)->Arg(1 << 20)->Arg(1 << 22)->Unit(benchmark::kMillisecond);
BENCHMARK(CxxAttr)->Arg(1 << 16)->Arg(1 << 20)->Arg(1 << 22)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
