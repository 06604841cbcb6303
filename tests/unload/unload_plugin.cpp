// A plugin for unload_test: a shared object that uses an objpool and is dlopen'd, used by
// several threads, then dlclose'd. Built twice: with a private static copy of corepool (the
// shape of the DPDK driver: the sequences and their descriptors are inside this object),
// and linked with libcorepool.so (the sequences are in the library it pulls in).
#include <corepool/objpool.h>

#include <cstdint>

namespace {
cp_objpool *g_pool;
}

extern "C" {

// Creates the pool: 1 when its operations run restartable sequences, 0 when not, or a
// negative errno.
__attribute__((visibility("default"))) int unload_plugin_create(int nr_objs) {
  int err = cp_objpool_init(&g_pool, nr_objs, 64, nullptr, nullptr, nullptr);
  if (err) return err;
  return cp_objpool_uses_rseq(g_pool);
}

// Pop/push loops, single and bulk, from any number of threads: 0, or -1 when an object came
// back corrupted or a push was refused.
__attribute__((visibility("default"))) int unload_plugin_churn(unsigned iters) {
  void *objs[8];
  for (unsigned i = 0; i < iters; i++) {
    if (void *obj = cp_objpool_pop(g_pool)) {
      static_cast<uint64_t *>(obj)[0]++;  // the object is ours until the push
      if (cp_objpool_push(obj, g_pool)) return -1;
    }
    unsigned k = cp_objpool_pop_bulk(g_pool, objs, 8);
    if (k && cp_objpool_push_bulk(objs, k, g_pool)) return -1;
  }
  return 0;
}

// Frees the pool; every object must be back (no thread in churn).
__attribute__((visibility("default"))) void unload_plugin_destroy(void) {
  cp_objpool_free(g_pool);
  g_pool = nullptr;
}
}
