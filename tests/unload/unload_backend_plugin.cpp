// unload_test's backend over unload_plugin.cpp's shared object.
#include <dlfcn.h>

#include <cstdio>
#include <cstring>

#include "unload_backend.h"

namespace unload {
namespace {
using create_fn = int (*)(int);
using churn_fn = int (*)(unsigned);
using destroy_fn = void (*)();
void *g_handle;
create_fn g_create;
churn_fn g_churn;
destroy_fn g_destroy;
}  // namespace

bool init(const char *) {
  return true;
}

int load(const char *path) {
  g_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!g_handle) {
    std::fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    return -1;
  }
  g_create = reinterpret_cast<create_fn>(dlsym(g_handle, "unload_plugin_create"));
  g_churn = reinterpret_cast<churn_fn>(dlsym(g_handle, "unload_plugin_churn"));
  g_destroy = reinterpret_cast<destroy_fn>(dlsym(g_handle, "unload_plugin_destroy"));
  if (!g_create || !g_churn || !g_destroy) {
    std::fprintf(stderr, "%s lacks the plugin's functions\n", path);
    return -1;
  }
  int r = g_create(256);
  if (r < 0) std::fprintf(stderr, "unload_plugin_create: %s\n", std::strerror(-r));
  return r < 0 ? -1 : r;
}

bool churn(unsigned iters) {
  return g_churn(iters) == 0;
}

void unload() {
  g_destroy();
  dlclose(g_handle);
}

void fini() {}

}  // namespace unload
