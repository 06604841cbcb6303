// objpool's accessors: counts, sizes, capacities, iteration (corepool/objpool.h).
#include <corepool/objpool.h>

#include <atomic>
#include <cerrno>

#include "error.h"
#include "objpool/objpool_internal.h"

namespace corepool::objpool_impl {
__attribute__((noinline, cold)) int null_pool() noexcept {
  return corepool::set_error(-EINVAL, "objpool: pool is NULL");
}
}  // namespace corepool::objpool_impl

using corepool::objpool_impl::null_pool;
using corepool::objpool_impl::ring;
using namespace corepool::objpool_impl;

extern "C" {

unsigned cp_objpool_nr_free(const struct cp_objpool *pool) {
  if (!pool) return null_pool(), 0;
  uint64_t n = cp_objpool_nr_free_overflow(pool);
  for (unsigned c = 0; c < pool->nr_cpus; c++)
    if (pool->rings[c]) n += pool->rings[c]->nr_free() + pool->cache.count(c);
  return static_cast<unsigned>(n + pool->tier.count());
}

int cp_objpool_nr_free_cpu(const struct cp_objpool *pool, unsigned cpu) {
  if (!pool || cpu >= pool->nr_cpus || !pool->rings[cpu])
    return corepool::set_error(-EINVAL, "objpool: no ring for this CPU");
  return static_cast<int>(pool->rings[cpu]->nr_free() + pool->cache.count(cpu));
}

unsigned cp_objpool_nr_free_overflow(const struct cp_objpool *pool) {
  if (!pool) return null_pool(), 0;
  unsigned n = 0;
  for (const ring *r : pool->overflow) n += r->nr_free();
  return n + pool->spill->nr_free();
}

unsigned cp_objpool_ring_capacity(const struct cp_objpool *pool) {
  return pool ? pool->ring_cap : (null_pool(), 0);
}
int cp_objpool_object_size(const struct cp_objpool *pool) {
  return pool ? pool->object_size : null_pool();
}
int cp_objpool_object_stride(const struct cp_objpool *pool) {
  return pool ? static_cast<int>(pool->stride) : null_pool();
}
int cp_objpool_nr_objs(const struct cp_objpool *pool) {
  return pool ? pool->nr_objs : null_pool();
}
unsigned cp_objpool_cache_capacity(const struct cp_objpool *pool) {
  if (!pool) return null_pool(), 0;
  return pool->cache.enabled() ? pool->cache.capacity() : 0;
}
unsigned cp_objpool_thread_cache_capacity(const struct cp_objpool *pool) {
  return pool ? pool->tier.capacity() : (null_pool(), 0);
}
int cp_objpool_uses_rseq(const struct cp_objpool *pool) {
  return pool ? (pool->rseq ? 1 : 0) : null_pool();
}

int cp_objpool_stats(const struct cp_objpool *pool, struct cp_objpool_stats *st) {
  if (!pool || !st) return corepool::set_error(-EINVAL, "objpool: NULL argument");
  *st = {};
  st->nr_objs = static_cast<unsigned>(pool->nr_objs);
  // Pushes ever into the CPU rings and into the overflow rings (R5: tail counts them).
  uint64_t cpu_pushes = 0, overflow_pushes = 0;
  for (unsigned c = 0; c < pool->nr_cpus; c++) {
    if (!pool->rings[c]) continue;
    st->nr_free_rings += pool->rings[c]->nr_free();
    st->nr_free_cache += pool->cache.count(c);
    cpu_pushes += pool->rings[c]->tail.load(std::memory_order_relaxed);
  }
  for (const ring *r : pool->overflow) {
    st->nr_free_overflow += r->nr_free();
    overflow_pushes += r->tail.load(std::memory_order_relaxed);
  }
  st->nr_free_overflow += pool->spill->nr_free();
  st->nr_free_threads = pool->tier.count();
  st->nr_free = st->nr_free_cache + st->nr_free_rings + st->nr_free_overflow + st->nr_free_threads;
  auto sum = [&](unsigned k) { return static_cast<unsigned long long>(pool->counters.sum(k)); };
  const unsigned long long puts = sum(kSpillArrayPuts);
  // init's fill (every object, into a CPU ring or overflow[0]) is not a spill.
  st->spills = cpu_pushes + overflow_pushes + puts - static_cast<uint64_t>(pool->nr_objs);
  st->overflows = overflow_pushes - pool->initial_overflow + puts;
  st->refills = sum(kRefills);
  st->steals = sum(kSteals);
  return 0;
}

void cp_objpool_for_each(const struct cp_objpool *pool, void (*fn)(void *obj, void *arg),
                         void *arg) {
  if (!pool || !fn) {
    corepool::set_error(-EINVAL, "objpool: NULL argument");
    return;
  }
  for (int i = 0; i < pool->nr_objs; i++)
    fn(pool->slab + static_cast<size_t>(i) * pool->stride, arg);
}

}  // extern "C"
