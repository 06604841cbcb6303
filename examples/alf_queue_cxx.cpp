// ALF queue example in C++: a producer thread hands small structs to a consumer through
// corepool::alf_queue<T>. A T that is not pointer-sized travels in cells of an objpool the
// queue owns; enqueue is all or nothing, dequeue takes what is there, and neither waits on
// the other thread, so both loops simply retry.
#include <corepool/alf_queue.hpp>

#include <cstdint>
#include <cstdio>
#include <thread>

struct sample {
  uint32_t seq;
  float value;
  uint64_t stamp;
};

int main() {
  constexpr uint32_t kItems = 50000, kBatch = 16;
  corepool::alf_queue<sample> q(1024);
  std::thread producer([&q] {
    sample batch[kBatch];
    for (uint32_t next = 0; next < kItems;) {
      const uint32_t n = kItems - next < kBatch ? kItems - next : kBatch;
      for (uint32_t i = 0; i < n; i++) batch[i] = {next + i, 0.5f * float(next + i), next + i};
      if (q.sp_enqueue_bulk(batch, static_cast<int>(n)) == static_cast<int>(n))
        next += n;
      else
        std::this_thread::yield();  // full: our choice to yield, the queue never blocks
    }
  });
  uint64_t sum = 0;
  uint32_t expect = 0;
  sample got[kBatch];
  while (expect < kItems) {
    const int k = q.sc_dequeue_burst(got, static_cast<int>(kBatch));
    for (int i = 0; i < k; i++) {
      if (got[i].seq != expect++) return 1;  // one producer, one consumer: FIFO order
      sum += got[i].stamp;
    }
    if (k == 0) std::this_thread::yield();
  }
  producer.join();
  std::printf("received %u samples in order, sum of stamps %llu\n", expect,
              static_cast<unsigned long long>(sum));
  return sum == uint64_t{kItems} * (kItems - 1) / 2 ? 0 : 1;
}
