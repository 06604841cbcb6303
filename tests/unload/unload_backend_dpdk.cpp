// unload_test's backend over the DPDK driver, loaded with dlopen (as EAL's -d does) after
// rte_eal_init: a mempool on the "corepool" ops, rte_mempool_get/put from non-EAL threads
// (no mempool cache there: every call reaches the driver), rte_mempool_free, dlclose.
#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mempool.h>

#include "unload_backend.h"

namespace unload {
namespace {
void *g_handle;
rte_mempool *g_mp;
}  // namespace

bool init(const char *) {
  std::string prefix = "--file-prefix=cpunload" + std::to_string(getpid());
  std::vector<std::string> args = {
      "unload_test", "--no-huge", "-m", "64",   "--no-pci",
      "--no-shconf", "-l",        "0",  prefix, "--log-level=lib.eal:error"};
  std::vector<char *> argv;
  for (std::string &a : args) argv.push_back(a.data());
  cpu_set_t all;
  if (sched_getaffinity(0, sizeof all, &all) != 0) return false;
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    std::fprintf(stderr, "rte_eal_init: %s\n", rte_strerror(rte_errno));
    return false;
  }
  // EAL pinned this thread to lcore 0; give the workers (created from it) every CPU back,
  // so that the harness can migrate them.
  return sched_setaffinity(0, sizeof all, &all) == 0;
}

int load(const char *path) {
  g_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);  // its constructor registers the ops
  if (!g_handle) {
    std::fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    return -1;
  }
  g_mp = rte_mempool_create_empty("unload", 255, 64, 0, 0, SOCKET_ID_ANY, 0);
  if (!g_mp || rte_mempool_set_ops_byname(g_mp, "corepool", nullptr) != 0 ||
      rte_mempool_populate_default(g_mp) < 0) {
    std::fprintf(stderr, "a mempool on the corepool ops: %s\n", rte_strerror(rte_errno));
    return -1;
  }
  return 2;  // not visible from here: the driver keeps corepool's symbols to itself
}

bool churn(unsigned iters) {
  void *objs[8];
  for (unsigned i = 0; i < iters; i++) {
    if (rte_mempool_get_bulk(g_mp, objs, 8) == 0) rte_mempool_put_bulk(g_mp, objs, 8);
    if (rte_mempool_get(g_mp, objs) == 0) rte_mempool_put(g_mp, objs[0]);
  }
  return true;
}

void unload() {
  rte_mempool_free(g_mp);
  g_mp = nullptr;
  dlclose(g_handle);
}

void fini() {
  rte_eal_cleanup();
}

}  // namespace unload
