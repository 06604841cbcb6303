/* qmempool: a pool of fixed-size packet buffers shared by several threads. Each thread
 * allocates and frees through its CPU's cache; a counting backing allocator shows that
 * destroy gives every object back. */
#include <corepool/error.h>
#include <corepool/qmempool.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct packet {
  unsigned len;
  char data[252];
};

static atomic_long backing_allocs, backing_frees;

static void *backing_alloc(void *ctx) {
  (void)ctx;
  atomic_fetch_add(&backing_allocs, 1);
  return malloc(sizeof(struct packet));
}
static void backing_free(void *ctx, void *obj) {
  (void)ctx;
  atomic_fetch_add(&backing_frees, 1);
  free(obj);
}

static struct cp_qmempool *pool;

static void *worker(void *arg) {
  long id = (long)arg;
  void *burst[32];
  for (int round = 0; round < 20000; round++) {
    struct packet *p = cp_qmempool_alloc(pool); /* fast path: this CPU's cache */
    if (!p) return (void *)1;
    p->len = (unsigned)snprintf(p->data, sizeof p->data, "worker %ld round %d", id, round);
    cp_qmempool_free(pool, p);
    if (round % 100 == 0) { /* now and then a burst, as a NIC driver would */
      int n = cp_qmempool_alloc_bulk(pool, burst, 32);
      cp_qmempool_free_bulk(pool, burst, n);
    }
  }
  return NULL;
}

int main(void) {
  struct cp_qmempool_backing backing = {backing_alloc, backing_free, NULL};
  int err = cp_qmempool_create(&pool, 8, 64, 0, sizeof(struct packet), &backing);
  printf("localq_sz 8: %d (%s)\n", err, cp_last_error());
  if (cp_qmempool_create(&pool, 64, 256, 64, sizeof(struct packet), &backing) != 0) return 1;

  pthread_t t[4];
  for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void *)i);
  int bad = 0;
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    bad |= r != NULL;
  }
  printf("backing allocations while running: %ld (for 4 x 20000 packets)\n",
         atomic_load(&backing_allocs));
  cp_qmempool_destroy(pool);
  printf("after destroy: %ld allocs, %ld frees\n", atomic_load(&backing_allocs),
         atomic_load(&backing_frees));
  return bad || atomic_load(&backing_allocs) != atomic_load(&backing_frees);
}
