// qmempool example: a per-CPU cached pool of packet buffers, raw and through handles.
#include <corepool/qmempool.hpp>

#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

int main() {
  // 64-object CPU caches, a 1024-object shared queue, 256 buffers of 2 KiB up front.
  corepool::qmempool pool(64, 1024, 256, 2048);

  std::vector<std::thread> th;
  for (int t = 0; t < 4; t++)
    th.emplace_back([&pool, t] {
      void *burst[32];
      for (int i = 0; i < 20000; i++) {
        int n = pool.alloc_bulk(burst, 32);  // fewer only when malloc runs dry
        for (int k = 0; k < n; k++) std::memset(burst[k], t, 64);
        pool.free_bulk(burst, n);
      }
    });
  for (auto &t : th) t.join();

  auto buf = pool.alloc_handle();  // freed back into the pool when `buf` goes
  if (!buf) return 1;
  std::snprintf(static_cast<char *>(buf.get()), pool.object_size(), "hello");
  std::printf("buffer of %zu bytes: %s\n", pool.object_size(), static_cast<char *>(buf.get()));
  return 0;
}
