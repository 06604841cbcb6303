/* gen_pool example: hand out pieces of a special memory region (here a static buffer standing
 * in for device SRAM with a device address) lock-free, with alignment, owner cookies, and the
 * spread mode for pools that several threads use. */
#include <corepool/genpool.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static _Alignas(4096) unsigned char sram[64 * 1024];

static void show(struct cp_gen_pool *pool, const struct cp_gen_pool_chunk_info *ci, void *arg) {
  (void)pool;
  (void)arg;
  printf("chunk %#lx size %zu avail %zu phys %#llx owner %s\n", (unsigned long)ci->start, ci->size,
         ci->avail, (unsigned long long)ci->phys, (const char *)ci->owner);
}

int main(void) {
  struct cp_gen_pool *pool = cp_gen_pool_create(6, -1); /* 64-byte granule */
  if (!pool) return 1;
  static const char owner[] = "sram0";
  if (cp_gen_pool_add_owner(pool, (uintptr_t)sram, 0xfe000000u, sizeof sram, -1, (void *)owner) !=
      0)
    return 1;

  /* First fit, as in the kernel; the device address comes with dma_alloc. */
  uint64_t dma = 0;
  char *msg = cp_gen_pool_dma_zalloc(pool, 100, &dma);
  if (!msg) return 1;
  strcpy(msg, "hello from the pool");
  printf("%s at %p, device address %#llx\n", msg, (void *)msg, (unsigned long long)dma);

  /* A 1 KiB-aligned buffer. */
  struct cp_genpool_data_align al = {.align = 1024};
  void *who = NULL;
  uintptr_t buf = cp_gen_pool_alloc_algo_owner(pool, 3000, CP_GENPOOL_FIRST_FIT_ALIGN, &al, &who);
  if (!buf || buf % 1024 != 0 || who != owner) return 1;

  cp_gen_pool_for_each_chunk(pool, show, NULL);

  /* Bad input is refused, not a crash: wrong size, double free. */
  if (cp_gen_pool_free(pool, buf, 100) != -22) return 1;
  if (cp_gen_pool_free(pool, buf, 3000) != 0) return 1;
  if (cp_gen_pool_free(pool, buf, 3000) != -22) return 1;
  if (cp_gen_pool_destroy(pool) != -16) return 1; /* msg still allocated: -EBUSY */
  cp_gen_pool_free(pool, (uintptr_t)msg, 100);
  printf("avail %zu of %zu\n", cp_gen_pool_avail(pool), cp_gen_pool_size(pool));

  /* Several threads allocating from one pool: spread mode starts each CPU's first fit at its
   * own home in the chunk, so CPUs do not fight over the same first free bits. */
  if (cp_gen_pool_set_spread(pool, true) != 0) return 1;
  uintptr_t home = cp_gen_pool_home(pool, (uintptr_t)sram, 0);
  uintptr_t piece = cp_gen_pool_alloc(pool, 256);
  printf("spread: CPU 0's home %#lx, this thread got %#lx\n", (unsigned long)home,
         (unsigned long)piece);
  if (!piece || cp_gen_pool_free(pool, piece, 256) != 0) return 1;
  return cp_gen_pool_destroy(pool) == 0 ? 0 : 1;
}
