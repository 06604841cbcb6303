// gen_pool growth hook: when an allocation leaves avail under the threshold, the user's grow
// callback runs on corepool's background worker (never on the allocating thread).
#include <atomic>
#include <cerrno>
#include <cstddef>

#include "ds/bgwork.h"
#include "error.h"
#include "genpool/internal.h"

namespace corepool::genpool {
namespace {

void fill_cb(void *ctx, int) {
  auto *pool = static_cast<cp_gen_pool *>(ctx);
  size_t t = pool->threshold.load(std::memory_order_acquire);
  size_t a = pool_avail(pool);
  if (t && pool->grow && a < t) {
    pool->counters.add(1, kGrowCalls);
    pool->grow(pool, a, pool->grow_ctx);
  }
}

}  // namespace

void note_growth(cp_gen_pool *pool) noexcept {
  size_t t = pool->threshold.load(std::memory_order_acquire);
  if (t && pool_avail(pool) < t) pool->engine.note_level(0);  // low = 1: always queues
}

// No callback runs after this returns (waits for a running one). -EDEADLK (and the hook
// left as it is) from the pool's own callback, which is the running one.
int stop_growth(cp_gen_pool *pool) noexcept {
  if (pool->engine_ready && ds::on_worker()) {
    if (int r = pool->engine.cancel()) return r;  // before touching the threshold
  }
  pool->threshold.store(0, std::memory_order_release);
  if (pool->engine_ready) pool->engine.cancel();  // not on the worker: never -EDEADLK
  return 0;
}

}  // namespace corepool::genpool

using namespace corepool;
using namespace corepool::genpool;

extern "C" int cp_gen_pool_set_low_watermark(struct cp_gen_pool *pool, size_t threshold,
                                             cp_gen_pool_grow_fn grow, void *ctx) {
  if (!pool) return set_error(-EINVAL, "pool is NULL");
  if (stop_growth(pool))  // no fill runs with the old callback now
    return set_error(-EDEADLK, "cp_gen_pool_set_low_watermark: called from the pool's own hook");
  if (threshold == 0 || !grow) return 0;
  ds::bgwork_start();
  pool->grow = grow;
  pool->grow_ctx = ctx;
  if (!pool->engine_ready) {
    pool->engine.init(fill_cb, pool, 1, 1);
    pool->engine_ready = true;
  }
  pool->threshold.store(threshold, std::memory_order_release);
  note_growth(pool);
  return 0;
}
