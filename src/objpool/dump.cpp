// cp_objpool_dump: the report of cp_objpool_stats, line by line (format in corepool/objpool.h).
#include <corepool/cpu.h>
#include <corepool/objpool.h>

#include <cerrno>

#include "error.h"
#include "stats/stats.h"

extern "C" int cp_objpool_dump(const struct cp_objpool *pool, int fd) {
  struct cp_objpool_stats st;
  if (cp_objpool_stats(pool, &st) != 0)
    return corepool::set_error(-EINVAL, "objpool: pool is NULL");
  corepool::stats::line_writer w(fd, "objpool", pool);
  w.kv("objects", st.nr_objs).kv("free", st.nr_free).kv("cache", st.nr_free_cache);
  w.kv("rings", st.nr_free_rings).kv("overflow", st.nr_free_overflow);
  w.kv("threads", st.nr_free_threads);
  w.kv("cache_capacity", cp_objpool_cache_capacity(pool));
  w.kv("ring_capacity", cp_objpool_ring_capacity(pool)).end();
  for (unsigned c = 0; c < cp_nr_cpu_ids(); c++) {
    const int both = cp_objpool_nr_free_cpu(pool, c);  // ring + cache; < 0: no ring
    if (both < 0) continue;
    w.kv("cpu", c).kv("free", static_cast<unsigned>(both)).end();
  }
  w.kv("refills", st.refills).kv("spills", st.spills).kv("overflows", st.overflows);
  w.kv("steals", st.steals).end();
  return w.result();
}
