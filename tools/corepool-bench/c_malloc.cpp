// malloc/free contenders. glibc's malloc runs in this process. jemalloc, tcmalloc and
// mimalloc replace malloc for the whole process when linked, so each runs in its own helper
// executable (corepool-bench-<name>, this file compiled with CPB_HELPER_NAME and linked with
// that allocator); the parent starts it once per repetition and reads its figures.
#include <dlfcn.h>
#include <gnu/libc-version.h>

#include <cstdlib>

#include "bench.h"
#include "child.h"

namespace cpb {
namespace {

struct MallocC {
  size_t size;
  static std::unique_ptr<MallocC> create(const Params &p, std::string &) {
    auto c = std::make_unique<MallocC>();
    c->size = p.size;
    // Pre-fill: allocate and free as many objects as the pools hold, so every allocator
    // starts with its free lists populated, as the pools start full.
    std::vector<void *> v(p.capacity);
    for (auto &x : v) x = std::malloc(p.size);
    for (auto *x : v) std::free(x);
    return c;
  }
  void *get() { return std::malloc(size); }
  void put(void *p) { std::free(p); }
};

void reg() {
#ifdef CPB_HELPER_NAME
  // Helper: check that the allocator we were linked with really serves malloc.
  add_inproc<MallocC>(CPB_HELPER_NAME, "malloc", Kind::peer, CPB_HELPER_CONFIG);
#else
  add_inproc<MallocC>("glibc-malloc", "malloc", Kind::peer,
                      "glibc " + std::string(gnu_get_libc_version()) +
                          " malloc/free, default tunables (tcache on)");
  struct H {
    const char *name, *config, *pkg;
    bool built;
  };
  const H helpers[] = {
#ifdef CPB_HAVE_JEMALLOC
      {"jemalloc", CPB_JEMALLOC_CONFIG, "libjemalloc-dev", true},
#else
      {"jemalloc", "", "libjemalloc-dev", false},
#endif
#ifdef CPB_HAVE_TCMALLOC
      {"tcmalloc", CPB_TCMALLOC_CONFIG, "libgoogle-perftools-dev", true},
#else
      {"tcmalloc", "", "libgoogle-perftools-dev", false},
#endif
#ifdef CPB_HAVE_MIMALLOC
      {"mimalloc", CPB_MIMALLOC_CONFIG, "libmimalloc-dev", true},
#else
      {"mimalloc", "", "libmimalloc-dev", false},
#endif
  };
  for (const H &h : helpers) {
    if (h.built)
      add_child_contender(h.name, "malloc", Kind::peer, h.config, kPoolWorkloads,
                          std::string("corepool-bench-") + h.name);
    else
      add_missing(h.name, "malloc", Kind::peer, kPoolWorkloads,
                  std::string("not found at build time (install ") + h.pkg +
                      ") or disabled (COREPOOL_BENCH_MALLOC_PEERS=OFF, sanitizer builds)");
  }
#endif
}
Registrar r(reg);

}  // namespace

// Which shared object provides malloc in this process ("" if unknown).
std::string malloc_provider() {
  void *f = dlsym(RTLD_DEFAULT, "malloc");
  Dl_info info{};
  if (f && dladdr(f, &info) && info.dli_fname) return info.dli_fname;
  return "";
}

}  // namespace cpb
