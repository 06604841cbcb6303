// TBB's scalable allocator, called directly (tbbmalloc does not replace malloc unless the
// proxy library is loaded, so it runs in this process).
#include "bench.h"

#if defined(CPB_HAVE_TBB) && __has_include(<tbb/scalable_allocator.h>)
#include <tbb/scalable_allocator.h>
#include <tbb/version.h>
#define CPB_TBB 1
#endif

namespace cpb {
namespace {

#ifdef CPB_TBB
struct TbbC {
  size_t size;
  static std::unique_ptr<TbbC> create(const Params &p, std::string &) {
    auto c = std::make_unique<TbbC>();
    c->size = p.size;
    std::vector<void *> v(p.capacity);
    for (auto &x : v) x = scalable_malloc(p.size);
    for (auto *x : v) scalable_free(x);
    return c;
  }
  void *get() { return scalable_malloc(size); }
  void put(void *p) { scalable_free(p); }
};
#endif

void reg() {
#ifdef CPB_TBB
  add_inproc<TbbC>("tbb-scalable_malloc", "malloc", Kind::peer,
                   std::string("oneTBB ") + TBB_VERSION_STRING +
                       " scalable_malloc/scalable_free, default settings");
#else
  add_missing("tbb-scalable_malloc", "malloc", Kind::peer, kPoolWorkloads,
              "TBB not found at build time (install libtbb-dev)");
#endif
}
Registrar r(reg);

}  // namespace
}  // namespace cpb
