// gen_pool example: carve a region (here an anonymous mapping standing in for device or
// shared memory) into aligned allocations, with handles and with a std::pmr vector.
#include <corepool/genpool.hpp>

#include <sys/mman.h>

#include <cstdio>
#include <memory_resource>
#include <vector>

int main() {
  const size_t bytes = 1 << 20;
  void *mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 1;
  {
    corepool::gen_pool pool(6);  // 64-byte granules
    pool.add(reinterpret_cast<uintptr_t>(mem), bytes, /*phys=*/0x100000000ull);
    {
      auto a = pool.alloc_handle(4096);  // freed when it goes
      uintptr_t b = pool.alloc_aligned(1000, 4096);
      std::printf("handle at +%#lx, aligned at +%#lx (device %#llx)\n",
                  static_cast<unsigned long>(a.addr() - reinterpret_cast<uintptr_t>(mem)),
                  static_cast<unsigned long>(b - reinterpret_cast<uintptr_t>(mem)),
                  static_cast<unsigned long long>(pool.virt_to_phys(b)));
      pool.free(b, 1000);
    }
    // The resource owns the pool now; what does not fit goes to the default resource.
    corepool::gen_pool_resource res(std::move(pool));
    {
      std::pmr::vector<double> v(&res);
      for (int i = 0; i < 10000; i++) v.push_back(i * 0.5);
      std::printf(
          "vector of %zu doubles inside the region: %s\n", v.size(),
          res.pool().has_addr(reinterpret_cast<uintptr_t>(v.data()), v.size() * 8) ? "yes" : "no");
    }
    if (res.pool().avail() != res.pool().size()) return 1;
  }  // every allocation is back, so ~gen_pool frees the metadata
  munmap(mem, bytes);
  return 0;
}
