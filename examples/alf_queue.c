/* The ALF queue: a producer thread hands batches of pointers to a consumer thread through
 * a bounded lock-free queue. Enqueue is all-or-nothing (bulk), dequeue takes what is there
 * (burst); neither ever waits on the other thread, so the loops below simply retry. */
#include <corepool/alf_queue.h>
#include <corepool/error.h>

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>

#define ITEMS 100000
#define BATCH 16

static struct cp_alf_queue *q;

static void *producer(void *arg) {
  (void)arg;
  void *batch[BATCH];
  for (uintptr_t next = 1; next <= ITEMS;) {
    int n = 0;
    while (n < BATCH && next + (uintptr_t)n <= ITEMS) {
      batch[n] = (void *)(next + (uintptr_t)n);
      n++;
    }
    if (cp_alf_sp_enqueue(q, batch, n) == n)
      next += (uintptr_t)n;
    else
      sched_yield(); /* full: our choice to yield, the queue never blocks */
  }
  return NULL;
}

int main(void) {
  int err = cp_alf_queue_alloc(&q, 3); /* not a power of two */
  printf("size 3: %d (%s)\n", err, cp_last_error());
  if (cp_alf_queue_alloc(&q, 256) != 0) return 1;

  pthread_t t;
  pthread_create(&t, NULL, producer, NULL);
  uintptr_t expect = 1, sum = 0;
  void *out[BATCH];
  while (expect <= ITEMS) {
    int got = cp_alf_sc_dequeue(q, out, BATCH);
    for (int i = 0; i < got; i++) {
      if ((uintptr_t)out[i] != expect) {
        printf("out of order: %p, expected %lu\n", out[i], (unsigned long)expect);
        return 1;
      }
      sum += expect++;
    }
    if (got == 0) sched_yield();
  }
  pthread_join(t, NULL);
  printf("received %d items in order, sum %lu, queue empty: %d\n", ITEMS, (unsigned long)sum,
         cp_alf_queue_empty(q));
  cp_alf_queue_free(q);
  return sum == (uintptr_t)ITEMS * (ITEMS + 1) / 2 ? 0 : 1;
}
