/* objpool example: a pool of pre-allocated request buffers shared by threads.
 *
 * Each worker pops a buffer, fills it, and pushes it back; pop and push never allocate,
 * never block and may be called from signal handlers. At the end the pool is torn down with
 * fini while one buffer is still held: that buffer keeps the pool alive until it is dropped.
 */
#include <corepool/objpool.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct request {
  int id;
  char payload[120];
};

static int number_requests(void *obj, void *context) {
  struct request *r = obj; /* zero-filled by the pool */
  int *next = context;
  r->id = (*next)++;
  return 0;
}

static int on_release(struct cp_objpool *pool, void *context) {
  (void)pool;
  printf("pool released after %d objects were created\n", *(int *)context);
  return 0;
}

static struct cp_objpool *pool;

static void *worker(void *arg) {
  long handled = 0;
  for (int i = 0; i < 100000; i++) {
    struct request *r = cp_objpool_pop(pool);
    if (!r) continue; /* all in use right now */
    snprintf(r->payload, sizeof r->payload, "worker %ld, round %d", (long)(size_t)arg, i);
    handled++;
    if (cp_objpool_push(r, pool) != 0) return (void *)-1L;
  }
  return (void *)handled;
}

int main(void) {
  static int next_id;
  int rc =
      cp_objpool_init(&pool, 64, sizeof(struct request), &next_id, number_requests, on_release);
  if (rc != 0) {
    fprintf(stderr, "cp_objpool_init: %s\n", strerror(-rc));
    return 1;
  }
  pthread_t th[4];
  for (long i = 0; i < 4; i++) pthread_create(&th[i], NULL, worker, (void *)i);
  long total = 0;
  for (int i = 0; i < 4; i++) {
    void *ret;
    pthread_join(th[i], &ret);
    if ((long)ret < 0) return 1;
    total += (long)ret;
  }
  printf("%ld requests handled, %u of 64 buffers free\n", total, cp_objpool_nr_free(pool));
  if (cp_objpool_nr_free(pool) != 64) return 1;

  /* Bad pointers are refused, the pool stays intact. */
  struct request not_ours;
  if (cp_objpool_push(&not_ours, pool) != -EINVAL) return 1;

  /* A buffer's contents stay across push and pop; one a worker never drew is still empty,
   * so main writes its own before holding it across fini. */
  struct request *kept = cp_objpool_pop(pool);
  if (!kept) return 1;
  snprintf(kept->payload, sizeof kept->payload, "held by main across fini");
  cp_objpool_fini(pool); /* 63 free buffers go; `kept` keeps the pool */
  printf("after fini, kept request %d: %s\n", kept->id, kept->payload);
  rc = cp_objpool_drop(kept, pool); /* the last reference: release runs now */
  return rc == 0 ? 0 : 1;
}
