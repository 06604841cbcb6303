/* Per-CPU statistics with corepool's per-CPU allocator: exact counters without shared
 * cache lines, read back as a sum over CPUs. */
#include <corepool/percpu.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

struct stats {
  uint64_t packets; /* updated with cp_this_cpu_add_u64 only */
  uint64_t bytes;
};

static void *requests;

static void *worker(void *arg) {
  (void)arg;
  struct stats *any = requests;
  for (int i = 0; i < 100000; i++) {
    cp_this_cpu_add_u64(&any->packets, 1);
    cp_this_cpu_add_u64(&any->bytes, 1500);
  }
  return NULL;
}

int main(void) {
  requests = cp_alloc_percpu(sizeof(struct stats), _Alignof(struct stats));
  if (!requests) {
    perror("cp_alloc_percpu");
    return 1;
  }
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, NULL);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);

  struct stats *h = requests;
  uint64_t packets = cp_percpu_sum_u64(&h->packets), bytes = cp_percpu_sum_u64(&h->bytes);
  printf("packets %llu bytes %llu over %u possible CPUs\n", (unsigned long long)packets,
         (unsigned long long)bytes, cp_nr_cpu_ids());
  cp_free_percpu(requests);

  struct cp_percpu_stats st;
  cp_percpu_get_stats(&st);
  printf("allocations now %llu, chunks %u\n", (unsigned long long)st.nr_cur_alloc, st.nr_chunks);
  return packets == 400000 && bytes == 400000ull * 1500 && st.nr_cur_alloc == 0 ? 0 : 1;
}
