// Reference model of gen_pool for the differential test and the fuzzer: per chunk a
// std::map of allocated ranges (granule start -> granules), and the algorithms written the
// plainest way (walk the gaps between allocations). Single-threaded use only.
#pragma once

#include <cerrno>
#include <cstdint>
#include <iterator>
#include <map>
#include <vector>

#include "corepool/genpool.h"

namespace genpool_test {

struct model {
  struct mchunk {
    uint64_t start, nbits;
    std::map<uint64_t, uint64_t> used;
    uint64_t home = 0;  // spread mode: granule where first fit starts for requests <= 512
    uint64_t free_bits() const {
      uint64_t u = 0;
      for (auto &[s, n] : used) u += n;
      return nbits - u;
    }
  };
  int order;
  std::vector<mchunk> chunks;

  explicit model(int o) : order(o) {}
  uint64_t gran() const { return uint64_t{1} << order; }
  uint64_t granules(uint64_t size) const { return (size >> order) + ((size & (gran() - 1)) != 0); }

  int add(uint64_t virt, uint64_t size) {
    uint64_t nbits = size >> order;
    if (nbits == 0) return -EINVAL;
    uint64_t bytes = nbits << order;
    if (virt + bytes < virt) return -EINVAL;
    for (auto &c : chunks)
      if (virt < c.start + (c.nbits << order) && c.start < virt + bytes) return -EINVAL;
    chunks.push_back({virt, nbits, {}});
    total_bits += nbits;
    return 0;
  }

  // Calls f(a, b) for each free gap [a, b) of c in address order; stops when f returns true.
  template <class F>
  static void gaps(const mchunk &c, F f) {
    uint64_t pos = 0;
    for (auto &[s, n] : c.used) {
      if (s > pos && f(pos, s)) return;
      pos = s + n;
    }
    if (pos < c.nbits) f(pos, c.nbits);
  }

  // Lowest aligned start s >= from with [s, s+n) in a gap; spread mode first tries the
  // starts at or past the chunk's home (requests of up to one 512-granule block).
  static uint64_t first_fit(const mchunk &c, uint64_t n, uint64_t mask, uint64_t off) {
    auto from = [&](uint64_t lo) {
      uint64_t r = ~uint64_t{0};
      gaps(c, [&](uint64_t a, uint64_t b) {
        uint64_t x = a > lo ? a : lo;
        uint64_t s = ((x + off + mask) & ~mask) - off;
        if (s >= x && s + n <= b) {
          r = s;
          return true;
        }
        return false;
      });
      return r;
    };
    uint64_t r = n <= 512 && c.home ? from(c.home) : ~uint64_t{0};
    return r != ~uint64_t{0} ? r : from(0);
  }

  uint64_t alloc(uint64_t size, cp_genpool_algo algo, uint64_t value) {
    if (size == 0) return 0;
    uint64_t n = granules(size);
    for (auto &c : chunks) {
      if (n > c.nbits) continue;
      uint64_t s = ~uint64_t{0};
      switch (algo) {
        case CP_GENPOOL_FIRST_FIT:
          s = first_fit(c, n, 0, 0);
          break;
        case CP_GENPOOL_FIRST_FIT_ORDER_ALIGN: {
          uint64_t p = 1;
          while (p < n) p <<= 1;
          s = first_fit(c, n, p - 1, 0);
          break;
        }
        case CP_GENPOOL_FIRST_FIT_ALIGN: {
          if (value <= gran()) {
            if (c.start % value == 0) s = first_fit(c, n, 0, 0);
          } else if (c.start % gran() == 0) {
            uint64_t mask = value / gran() - 1;
            s = first_fit(c, n, mask, (c.start / gran()) & mask);
          }
          break;
        }
        case CP_GENPOOL_FIXED: {
          if (value % gran()) break;
          uint64_t f = value / gran();
          if (f >= c.nbits || n > c.nbits - f) break;
          auto it = c.used.lower_bound(f + n);  // first allocation at or past the end
          bool ok = it == c.used.begin() || [&] {
            auto pv = std::prev(it);
            return pv->first + pv->second <= f;
          }();
          if (ok) s = f;
          break;
        }
        case CP_GENPOOL_BEST_FIT: {
          uint64_t best_len = ~uint64_t{0};
          gaps(c, [&](uint64_t a, uint64_t b) {
            if (b - a >= n && b - a < best_len) {
              best_len = b - a;
              s = a;
              return b - a == n;
            }
            return false;
          });
          break;
        }
      }
      if (s == ~uint64_t{0}) continue;
      c.used[s] = n;
      used_bits += n;
      return c.start + (s << order);
    }
    return 0;
  }

  int free(uint64_t addr, uint64_t size) {
    for (auto &c : chunks) {
      if (addr < c.start || addr - c.start >= (c.nbits << order)) continue;
      uint64_t off = addr - c.start;
      if (off % gran()) return -EINVAL;
      uint64_t s = off / gran(), n = granules(size);
      auto it = c.used.find(s);
      if (it == c.used.end() || it->second != n) return -EINVAL;
      c.used.erase(it);
      used_bits -= n;
      return 0;
    }
    return -EINVAL;
  }

  uint64_t avail_bytes() const { return (total_bits - used_bits) << order; }
  uint64_t total_bits = 0, used_bits = 0;
};

// Drives a pool and the model with the same operations, read from `next()` (a PRNG or fuzzer
// bytes). Returns false (and a message) at the first divergence.
struct differential {
  int order;
  cp_gen_pool *pool;
  model m;
  std::vector<std::pair<uint64_t, uint64_t>> live;  // (addr, size) as requested
  std::vector<std::pair<uint64_t, uint64_t>> dead;  // recently freed, for double frees
  uint64_t next_base = 0x100000000ull;
  const char *why = "";
  int home_cpu = -1;  // spread mode: the CPU the caller is pinned to

  explicit differential(int o, int spread_cpu = -1)
      : order(o), pool(cp_gen_pool_create(o, -1)), m(o), home_cpu(spread_cpu) {
    if (home_cpu >= 0) cp_gen_pool_set_spread(pool, true);
  }
  ~differential() {
    for (auto &[a, s] : live) cp_gen_pool_free(pool, a, s);
    if (cp_gen_pool_destroy(pool) != 0) cp_gen_pool_detach(pool);  // never leak metadata
  }

  template <class Next>
  bool step(Next &next) {
    uint64_t op = next() % 100;
    uint64_t g = uint64_t{1} << order;
    if ((op < 3 && m.chunks.size() < 12) || m.chunks.empty()) {  // add
      uint64_t k = next() % 8;
      uint64_t gr = k < 5 ? 1 + next() % 600 : k < 7 ? 1 + next() % 5000 : 30000 + next() % 40000;
      uint64_t start = next_base + (next() % 4 == 0 ? next() % 4096 : 0);
      uint64_t size = gr * g + (next() % 2 ? next() % g : 0);
      if (next() % 16 == 0 && !m.chunks.empty()) {  // overlapping add
        start = m.chunks[next() % m.chunks.size()].start + next() % 64;
      } else {
        next_base += ((size + 2 * g + 0xffff) & ~uint64_t{0xffff}) + 0x10000;
      }
      int r1 = cp_gen_pool_add(pool, start, size, -1), r2 = m.add(start, size);
      if (r1 != r2) return why = "add result differs", false;
      if (r1 == 0 && home_cpu >= 0) {
        // 0: a CPU at or above cp_nr_cpu_ids() (a possible mask smaller than the CPUs
        // threads run on), for which the pool uses plain first fit, as from home 0.
        const uintptr_t h = cp_gen_pool_home(pool, start, static_cast<unsigned>(home_cpu));
        m.chunks.back().home = h ? (h - start) >> order : 0;
      }
    } else if (op < 50 && live.size() < 400) {  // alloc
      uint64_t k = next() % 10;
      uint64_t size = k < 6   ? 1 + next() % (8 * g)
                      : k < 9 ? 1 + next() % (600 * g)
                              : 1 + next() % (3000 * g);
      cp_genpool_algo algo = static_cast<cp_genpool_algo>(next() % 5);
      uint64_t value = 0;
      cp_genpool_data_align da{};
      cp_genpool_data_fixed df{};
      const void *data = nullptr;
      if (algo == CP_GENPOOL_FIRST_FIT_ALIGN) {
        value = uint64_t{1} << (next() % (order + 8));
        da.align = value;
        data = &da;
      } else if (algo == CP_GENPOOL_FIXED) {
        value = next() % 4 == 0 ? next() % (4000 * g) : (next() % 4000) * g;
        df.offset = value;
        data = &df;
      }
      uint64_t a1 = cp_gen_pool_alloc_algo(pool, size, algo, data);
      uint64_t a2 = m.alloc(size, algo, value);
      if (a1 != a2) return why = "alloc address differs", false;
      if (a1) live.push_back({a1, size});
    } else if (op < 95) {  // free
      if (live.empty()) return true;
      size_t i = next() % live.size();
      auto [a, s] = live[i];
      int r1 = cp_gen_pool_free(pool, a, s), r2 = m.free(a, s);
      if (r1 != 0 || r2 != 0) return why = "valid free failed", false;
      live[i] = live.back();
      live.pop_back();
      dead.push_back({a, s});
      if (dead.size() > 16) dead.erase(dead.begin());
    } else {  // bad free: double free, wrong size, interior or random address
      uint64_t a = 0, s = 0, k = next() % 4;
      if (k == 0 && !dead.empty()) {
        std::tie(a, s) = dead[next() % dead.size()];
      } else if (!live.empty()) {
        std::tie(a, s) = live[next() % live.size()];
        if (k == 1)
          s += g;
        else if (k == 2 && s > g)
          s -= g;
        else
          a += g * (1 + next() % 3);
      } else {
        a = next();
        s = 1 + next() % 100;
      }
      int r1 = cp_gen_pool_free(pool, a, s), r2 = m.free(a, s);
      if (r1 != r2) return why = "bad free result differs", false;
      if (r1 == 0) {  // it was valid after all (e.g. a reallocated range): keep books straight
        for (size_t i = 0; i < live.size(); ++i)
          if (live[i].first == a) {
            live[i] = live.back();
            live.pop_back();
            break;
          }
      }
    }
    if (cp_gen_pool_avail(pool) != m.avail_bytes()) return why = "avail differs", false;
    return true;
  }
};

}  // namespace genpool_test
