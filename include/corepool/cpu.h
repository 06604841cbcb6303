/* corepool/cpu.h - which CPU am I on, and how does corepool know.
 *
 * corepool learns the current CPU from the restartable-sequences (rseq) area that the kernel
 * updates on every return to user space. glibc >= 2.35 registers that area for each thread;
 * when it did not (GLIBC_TUNABLES=glibc.pthread.rseq=0, valgrind, an older libc), corepool
 * registers its own for each thread on first use; when rseq is unavailable, or switched off
 * with COREPOOL_RSEQ=0 in the environment or the COREPOOL_ENABLE_RSEQ=OFF build option, it
 * falls back to sched_getcpu(). The source is chosen once per process, at load time.
 *
 * All functions here are thread-safe, async-signal-safe and never block.
 */
#ifndef COREPOOL_CPU_H
#define COREPOOL_CPU_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum cp_cpu_id_source {
  CP_CPU_ID_RSEQ_GLIBC = 1, /* glibc's registered rseq area */
  CP_CPU_ID_RSEQ_OWN = 2,   /* corepool registered rseq itself, per thread */
  CP_CPU_ID_GETCPU = 3,     /* no rseq: sched_getcpu(); per-CPU fast paths use fallbacks */
};

/* The source chosen for this process. */
enum cp_cpu_id_source cp_cpu_id_source(void);
/* "rseq-glibc", "rseq-own", "getcpu"; "unknown" for any other value. */
const char *cp_cpu_id_source_name(enum cp_cpu_id_source src);
/* True when per-CPU fast paths run as restartable sequences (source is not GETCPU). */
bool cp_rseq_enabled(void);

/* The CPU the caller ran on at some instant during the call: a hint, since the thread may
 * migrate right after. Always in [0, cp_nr_cpu_ids()). */
unsigned cp_current_cpu(void);
/* Highest possible CPU id + 1 (from /sys/devices/system/cpu/possible). Ids may be sparse:
 * size per-CPU arrays with this, never with the online count. */
unsigned cp_nr_cpu_ids(void);
/* True when `cpu` is in the possible mask. */
bool cp_cpu_possible(unsigned cpu);
/* The NUMA node of a possible CPU, or 0 when unknown / no NUMA. */
int cp_cpu_to_node(unsigned cpu);
/* Number of NUMA nodes with memory (>= 1). */
int cp_nr_nodes(void);
/* L1 data cache line size in bytes (64 when the system does not say). */
size_t cp_cache_line_size(void);

#ifdef __cplusplus
}
#endif
#endif /* COREPOOL_CPU_H */
