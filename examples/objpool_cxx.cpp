// objpool<T> example: a typed pool of connection objects, each built once in place.
//
// The pool constructs every `conn` when it is created (the init functor's result is built
// directly in the pool's memory) and destroys them when it is released. pop() hands out a
// handle that pushes the object back when it goes; state left in an object stays there.
#include <corepool/objpool.hpp>

#include <cstdio>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

struct conn {
  int id;
  std::string peer;
  long served = 0;
};

int main() {
  int next = 0;
  // Bound each CPU's ring to 64 objects: memory per CPU is 8 * 64 bytes, not 8 * 1024.
  const cp_objpool_attr attr{
      .ring_capacity = 64, .flags = 0, .cache_capacity = 0, .thread_cache = 0};
  corepool::objpool<conn> pool(
      1024,
      [&] {
        return conn{next, "peer-" + std::to_string(next++)};
      },
      attr);

  std::vector<std::thread> th;
  for (int t = 0; t < 4; t++)
    th.emplace_back([&] {
      for (int i = 0; i < 50000; i++)
        if (auto c = pool.pop()) c->served++;  // given back at the end of the statement
    });
  for (auto &t : th) t.join();

  long served = 0;
  std::vector<decltype(pool)::handle> all;
  while (auto c = pool.pop()) {
    served += c->served;
    all.push_back(std::move(c));
  }
  std::printf("%zu connections, %ld requests served, first peer %s\n", all.size(), served,
              all.front()->peer.c_str());
  all.clear();

  int not_ours = 0;
  try {
    pool.put(reinterpret_cast<conn *>(&not_ours));
  } catch (const std::system_error &e) {
    std::printf("refused: %s (%s)\n", e.what(), e.code().message().c_str());
  }
  return served == 200000 && pool.nr_free() == 1024 ? 0 : 1;
}
