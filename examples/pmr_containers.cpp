// std::pmr containers on corepool's resources: one resource per pool, each with an
// upstream for what it cannot serve.
#include <corepool/objpool.hpp>
#include <corepool/qmempool.hpp>

#include <cstdio>
#include <list>
#include <memory_resource>
#include <string>
#include <unordered_map>
#include <vector>

int main() {
  // List nodes of up to 64 bytes from a fixed objpool; anything else from the default
  // resource (the vector's growing array, the map's bucket array).
  corepool::objpool_resource nodes(4096, 64);
  std::pmr::list<int> l(&nodes);
  for (int i = 0; i < 1000; i++) l.push_back(i);
  std::printf("list of %zu, %u of 4096 blocks free\n", l.size(), nodes.nr_free());

  // A per-CPU cache of 64-byte blocks drawn from the default resource, under a map.
  corepool::qmempool_resource small(64, 64);
  std::pmr::unordered_map<int, std::pmr::string> names(&small);
  for (int i = 0; i < 100; i++)
    names.emplace(i, std::pmr::string("name-" + std::to_string(i), &small));
  std::printf("map of %zu, names[42] = %s\n", names.size(), names.at(42).c_str());

  // A monotonic arena on top: its buffers come from the objpool resource's upstream.
  std::pmr::monotonic_buffer_resource arena(1024, &nodes);
  std::pmr::vector<std::pmr::string> words(&arena);
  for (const char *w : {"one", "two", "three"}) words.emplace_back(w);
  std::printf("arena vector: %s %s %s\n", words[0].c_str(), words[1].c_str(), words[2].c_str());

  // Refusing instead of forwarding: null_memory_resource() upstream.
  corepool::objpool_resource strict(1, 32, std::pmr::null_memory_resource());
  void *one = strict.allocate(32);
  bool refused = false;
  try {
    (void)strict.allocate(32);
  } catch (const std::bad_alloc &) {
    refused = true;
  }
  strict.deallocate(one, 32);
  std::printf("second block refused: %s\n", refused ? "yes" : "no");
  return refused ? 0 : 1;
}
