// What unload_test loads, uses and unloads: a shared object with corepool's sequences in it,
// behind three calls (unload_backend_plugin.cpp: unload_plugin.cpp's object;
// unload_backend_dpdk.cpp: the DPDK driver, librte_mempool_corepool.so).
#pragma once

namespace unload {

// Once, before any thread starts.
bool init(const char *path);
// dlopen(path) and a fresh pool. Returns 1 when the pool runs restartable sequences, 0 when
// not, 2 when it cannot tell, -1 on failure (with a message on stderr).
int load(const char *path);
// Pop/push loops on the pool; any number of threads at once. False when an object came back
// wrong.
bool churn(unsigned iters);
// Frees the pool (no churn running) and dlclose()s the object.
void unload();
// Once, after the last thread ended.
void fini();

}  // namespace unload
