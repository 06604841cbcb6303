/* gen_pool shared between processes: one memfd holds the pool's metadata and the memory it
 * manages; each process maps it at its own address, allocates and frees lock-free, and hands
 * allocations to the others as offsets into the region. A producer fills messages, a consumer
 * in another process reads and frees them. A process killed at any point (try kill -9) would
 * leak only what it held. */
#define _GNU_SOURCE
#include <corepool/genpool.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

enum { REGION = 1 << 20, META = 128 * 1024, NMSG = 1000, RING = 64 };

/* The hand-over ring (outside the pool; any shared channel works: a pipe, a socket). */
struct ring {
  _Atomic uint64_t off[RING]; /* offset of a message in the region, 0: empty */
};

static void *map_region(int fd) {
  void *m = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return m == MAP_FAILED ? NULL : m;
}

static int consumer(int fd, struct ring *r) {
  /* A mapping of its own, at whatever address the kernel picks. */
  void *mem = map_region(fd);
  struct cp_gen_pool *pool = mem ? cp_gen_pool_attach_shared(mem, REGION) : NULL;
  if (!pool) return 1;
  printf("consumer: region at %p\n", mem);
  fflush(stdout); /* the child leaves with _exit */
  for (int got = 0, i = 0; got < NMSG; i = (i + 1) % RING) {
    uint64_t off = atomic_load_explicit(&r->off[i], memory_order_acquire);
    if (!off) {
      if (i == RING - 1) usleep(100);
      continue;
    }
    char *msg = (char *)cp_gen_pool_shared_addr(pool, off); /* this process's address */
    int n = 0;
    if (sscanf(msg, "message %d", &n) != 1) return 1;
    if (cp_gen_pool_free(pool, (uintptr_t)msg, strlen(msg) + 1) != 0) return 1;
    atomic_store_explicit(&r->off[i], 0, memory_order_release);
    ++got;
  }
  cp_gen_pool_detach(pool);
  munmap(mem, REGION);
  return 0;
}

int main(void) {
  int fd = memfd_create("genpool_shared", 0);
  if (fd < 0 || ftruncate(fd, REGION) != 0) return 1;
  struct ring *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED) return 1;
  memset(r, 0, sizeof *r);

  /* Metadata in the first META bytes, the managed data after it, in the same region. */
  void *mem = map_region(fd);
  struct cp_gen_pool *pool = mem ? cp_gen_pool_create_shared(mem, REGION, 6) : NULL;
  if (!pool) return 1;
  if (cp_gen_pool_chunk_meta_size(6, REGION - META) > META - 4096) return 1;
  if (cp_gen_pool_add(pool, (uintptr_t)mem + META, REGION - META, -1) != 0) return 1;

  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) _exit(consumer(fd, r));

  printf("producer: region at %p\n", mem);
  for (int i = 0, slot = 0; i < NMSG; slot = (slot + 1) % RING) {
    if (atomic_load_explicit(&r->off[slot], memory_order_acquire)) {
      if (slot == RING - 1) usleep(100);
      continue;
    }
    char text[64];
    int len = snprintf(text, sizeof text, "message %d", i);
    char *msg = (char *)cp_gen_pool_alloc(pool, (size_t)len + 1);
    if (!msg) {
      usleep(100); /* full: the consumer frees */
      continue;
    }
    memcpy(msg, text, (size_t)len + 1);
    atomic_store_explicit(&r->off[slot], cp_gen_pool_shared_offset(pool, (uintptr_t)msg),
                          memory_order_release);
    ++i;
  }
  int st = 0;
  if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 1;

  /* Every message came back; the region is whole again. */
  printf("avail %zu of %zu after %d messages\n", cp_gen_pool_avail(pool), cp_gen_pool_size(pool),
         NMSG);
  if (cp_gen_pool_avail(pool) != cp_gen_pool_size(pool)) return 1;
  /* A region this process cannot trust is refused, not a crash. */
  if (cp_gen_pool_attach_shared(mem, 4096) != NULL || errno != EINVAL) return 1;
  cp_gen_pool_detach(pool);
  munmap(mem, REGION);
  close(fd);
  return 0;
}
