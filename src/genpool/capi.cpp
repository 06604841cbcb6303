// gen_pool C API: pool life (create, attach, detach, destroy), sizing, and the read-only and
// setting functions. Allocation is in alloc.cpp, free in free.cpp, add in add.cpp, the
// growth hook in grow.cpp.
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>

#include "error.h"
#include "genpool/internal.h"
#include "platform/memory.h"
#include "platform/topology.h"

namespace corepool::genpool {
namespace {

cp_gen_pool *new_handle(header *h, bool shared, uint64_t limit) noexcept {
  auto *p = new (std::nothrow) cp_gen_pool;
  if (!p) return nullptr;
  p->hdr = h;
  p->shared = shared;
  p->limit = limit;
  return p;
}

void format_header(header *h, int order, bool shared, uint64_t mem_size) noexcept {
  std::memset(static_cast<void *>(h), 0, sizeof(header));
  h->version = kVersion;
  h->order = order;
  h->shared = shared;
  h->mem_size = mem_size;
  h->bump.store(kHeaderBytes, std::memory_order_relaxed);
  h->algo_word.store(CP_GENPOOL_FIRST_FIT, std::memory_order_relaxed);
  h->spread.store(0, std::memory_order_relaxed);
  h->first.store(0, std::memory_order_relaxed);
}

}  // namespace

size_t pool_avail(cp_gen_pool *p) noexcept {
  uint64_t a = 0;
  for (chunk *c = first_chunk(p); c; c = next_chunk(p, c)) a += avail_of(c);
  return static_cast<size_t>(a << p->hdr->order);
}

}  // namespace corepool::genpool

using namespace corepool;
using namespace corepool::genpool;

extern "C" {

struct cp_gen_pool *cp_gen_pool_create(int min_alloc_order, int nid) {
  (void)nid;
  if (min_alloc_order < 0 || min_alloc_order > kMaxOrder) {
    set_error(-EINVAL, "min_alloc_order out of range [0, 40]");
    errno = EINVAL;
    return nullptr;
  }
  auto *h = static_cast<header *>(platform::os_alloc(kHeaderBytes, platform::page_size()));
  if (!h) {
    errno = ENOMEM;
    return nullptr;
  }
  format_header(h, min_alloc_order, false, 0);
  platform::pshared_mutex_init(&h->lock, false);
  h->magic.store(kMagic, std::memory_order_relaxed);
  cp_gen_pool *p = new_handle(h, false, 0);
  if (!p) {
    platform::os_release(h, kHeaderBytes);
    errno = ENOMEM;
    return nullptr;
  }
  fork_track(p);
  stats_enroll(p);
  return p;
}

struct cp_gen_pool *cp_gen_pool_create_shared(void *mem, size_t mem_size, int min_alloc_order) {
  if (min_alloc_order < 0 || min_alloc_order > kMaxOrder || !mem ||
      (reinterpret_cast<uintptr_t>(mem) & 63) || mem_size < kHeaderBytes) {
    set_error(-EINVAL, "bad order, or region NULL, not 64-byte aligned or too small");
    errno = EINVAL;
    return nullptr;
  }
  auto *h = static_cast<header *>(mem);
  format_header(h, min_alloc_order, true, mem_size);
  if (platform::pshared_mutex_init(&h->lock, true)) {
    errno = EINVAL;
    return nullptr;
  }
  // The magic is stored last: an attacher that sees it sees a formatted header.
  h->magic.store(kMagic, std::memory_order_release);
  cp_gen_pool *p = new_handle(h, true, mem_size);
  if (!p) {
    errno = ENOMEM;
    return nullptr;
  }
  stats_enroll(p);
  return p;
}

struct cp_gen_pool *cp_gen_pool_attach_shared(void *mem, size_t mem_size) {
  auto *h = static_cast<header *>(mem);
  if (!h || (reinterpret_cast<uintptr_t>(mem) & 63) || mem_size < kHeaderBytes) {
    set_error(-EINVAL, "region NULL, not 64-byte aligned or too small");
    errno = EINVAL;
    return nullptr;
  }
  if (!validate_header(h, mem_size)) {
    errno = EINVAL;
    return nullptr;
  }
  cp_gen_pool *p = new_handle(h, true, h->mem_size);
  if (!p) {
    errno = ENOMEM;
    return nullptr;
  }
  // Every chunk published so far is validated now (the walks validate later ones): a
  // region that fails is refused whole.
  chunk *last = nullptr;
  for (chunk *c = first_chunk(p); c; c = next_chunk(p, c)) last = c;
  if ((last ? last->next.load(std::memory_order_acquire)
            : h->first.load(std::memory_order_acquire)) != 0) {
    delete p;
    errno = EINVAL;
    return nullptr;
  }
  stats_enroll(p);
  return p;
}

uintptr_t cp_gen_pool_shared_offset(struct cp_gen_pool *pool, uintptr_t addr) {
  if (!pool) return set_error(-EINVAL, "pool is NULL"), UINTPTR_MAX;
  if (!pool->shared) return UINTPTR_MAX;
  uintptr_t base = reinterpret_cast<uintptr_t>(pool->hdr);
  return addr >= base && addr - base < pool->limit ? addr - base : UINTPTR_MAX;
}

uintptr_t cp_gen_pool_shared_addr(struct cp_gen_pool *pool, uintptr_t offset) {
  if (!pool) return set_error(-EINVAL, "pool is NULL"), 0;
  if (!pool->shared || offset >= pool->limit) return 0;
  return reinterpret_cast<uintptr_t>(pool->hdr) + offset;
}

size_t cp_gen_pool_chunk_meta_size(int min_alloc_order, size_t size) {
  if (min_alloc_order < 0 || min_alloc_order > kMaxOrder) return 0;
  uint64_t nbits = size >> min_alloc_order;
  // The shared stripe count: enough for a shared pool on any machine and for a private one.
  return static_cast<size_t>((meta_bytes_for(nbits, kSharedStripes) + 63) & ~uint64_t{63});
}

size_t cp_gen_pool_shared_meta_avail(struct cp_gen_pool *pool) {
  if (!pool) return set_error(-EINVAL, "pool is NULL"), 0;
  if (!pool->shared) return 0;
  header *h = pool->hdr;
  uint64_t b = h->bump.load(std::memory_order_relaxed);
  return b < pool->limit ? static_cast<size_t>(pool->limit - b) : 0;
}

size_t cp_gen_pool_avail(struct cp_gen_pool *pool) {
  if (!pool) return set_error(-EINVAL, "pool is NULL"), 0;
  return pool_avail(pool);
}

size_t cp_gen_pool_size(struct cp_gen_pool *pool) {
  if (!pool) return set_error(-EINVAL, "pool is NULL"), 0;
  uint64_t n = 0;
  for (chunk *c = first_chunk(pool); c; c = next_chunk(pool, c)) n += c->nbits;
  return static_cast<size_t>(n << pool->hdr->order);
}

bool cp_gen_pool_has_addr(struct cp_gen_pool *pool, uintptr_t start, size_t size) {
  if (!pool) return set_error(-EINVAL, "pool is NULL"), false;
  chunk *c = find_chunk(pool, start);
  if (!c) return false;
  return size <= (c->nbits << pool->hdr->order) - (start - chunk_start(pool->hdr, c));
}

uint64_t cp_gen_pool_virt_to_phys(struct cp_gen_pool *pool, uintptr_t addr) {
  if (!pool) return set_error(-EINVAL, "pool is NULL"), UINT64_MAX;
  chunk *c = find_chunk(pool, addr);
  if (!c || c->phys == UINT64_MAX) return UINT64_MAX;
  return c->phys + (addr - chunk_start(pool->hdr, c));
}

void cp_gen_pool_for_each_chunk(struct cp_gen_pool *pool,
                                void (*func)(struct cp_gen_pool *,
                                             const struct cp_gen_pool_chunk_info *, void *),
                                void *data) {
  if (!pool || !func) return static_cast<void>(set_error(-EINVAL, "pool or func is NULL"));
  header *h = pool->hdr;
  for (chunk *c = first_chunk(pool); c; c = next_chunk(pool, c)) {
    cp_gen_pool_chunk_info info{static_cast<uintptr_t>(chunk_start(h, c)),
                                static_cast<size_t>(c->nbits << h->order), c->phys,
                                reinterpret_cast<void *>(static_cast<uintptr_t>(c->owner)),
                                static_cast<size_t>(avail_of(c) << h->order)};
    func(pool, &info, data);
  }
}

void cp_gen_pool_set_algo(struct cp_gen_pool *pool, enum cp_genpool_algo algo, const void *data) {
  if (!pool) return static_cast<void>(set_error(-EINVAL, "pool is NULL"));
  algo_req r;
  if (!decode_algo(algo, data, &r)) return;
  if (r.value >> 56) {  // the region's word holds 56 bits of data
    set_error(-EINVAL, "alignment or offset too large for cp_gen_pool_set_algo");
    return;
  }
  pool->hdr->algo_word.store(static_cast<uint64_t>(algo) | (r.value << 8),
                             std::memory_order_relaxed);
}

int cp_gen_pool_set_spread(struct cp_gen_pool *pool, bool on) {
  if (!pool) return set_error(-EINVAL, "pool is NULL");
  pool->hdr->spread.store(on ? 1 : 0, std::memory_order_relaxed);
  return 0;
}

bool cp_gen_pool_spread(struct cp_gen_pool *pool) {
  if (!pool) return set_error(-EINVAL, "pool is NULL"), false;
  return pool->hdr->spread.load(std::memory_order_relaxed);
}

uintptr_t cp_gen_pool_home(struct cp_gen_pool *pool, uintptr_t addr, unsigned cpu) {
  if (!pool) return set_error(-EINVAL, "pool is NULL"), 0;
  header *h = pool->hdr;
  chunk *c = find_chunk(pool, addr);
  if (!c || cpu >= platform::nr_cpu_ids()) return 0;
  uint64_t g = h->spread.load(std::memory_order_relaxed) ? home_granule(c, cpu) : 0;
  return static_cast<uintptr_t>(chunk_start(h, c) + (g << h->order));
}

void cp_gen_pool_detach(struct cp_gen_pool *pool) {
  if (!pool) return;
  stats_withdraw(pool);  // before the chunks go: the exit report reads them
  stop_growth(pool);
  header *h = pool->hdr;
  if (!pool->shared) {
    fork_untrack(pool);
    for (chunk *c = first_chunk(pool); c;) {
      chunk *nx = next_chunk(pool, c);
      platform::os_release(c, c->meta_bytes);
      c = nx;
    }
    platform::pshared_mutex_destroy(&h->lock);
    platform::os_release(h, kHeaderBytes);
  }
  delete pool;
}

int cp_gen_pool_destroy(struct cp_gen_pool *pool) {
  if (!pool) return set_error(-EINVAL, "pool is NULL");
  // A shared handle is this process's only: other processes' allocations are theirs.
  if (!pool->shared)
    for (chunk *c = first_chunk(pool); c; c = next_chunk(pool, c))
      if (avail_sum(c) != static_cast<int64_t>(c->nbits))
        return set_error(-EBUSY, "allocations outstanding");
  cp_gen_pool_detach(pool);
  return 0;
}

}  // extern "C"
