// objpool's accessors: counts, sizes, capacities, iteration (corepool/objpool.h).
#include <corepool/objpool.h>

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
