/* A signal handler that needs a fresh per-CPU counter each time it runs: it cannot call
 * cp_alloc_percpu (that may lock and map memory), so it takes one from a percpu_pool that
 * the background worker keeps between its watermarks. */
#include <corepool/percpu.h>
#include <corepool/percpu_pool.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

struct flow_stats {
  uint64_t packets;
};

/* Constant-initialised: usable before main's first allocation, from any context. */
CP_DEFINE_PERCPU_POOL(flow_pool, struct flow_stats, 4, 16);

#define NR_FLOWS 64
static void *volatile flows[NR_FLOWS];
static volatile sig_atomic_t next_flow, misses;

static void on_new_flow(int sig) {
  (void)sig;
  void *f = cp_percpu_pool_alloc(&flow_pool); /* lock-free, async-signal-safe */
  if (!f) {
    misses = misses + 1; /* pool ran empty before the refill finished: drop, count */
    return;
  }
  cp_this_cpu_add_u64(&((struct flow_stats *)f)->packets, 1);
  if (next_flow < NR_FLOWS)
    flows[next_flow++] = f;
  else
    cp_free_percpu(f); /* also async-signal-safe */
}

int main(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_new_flow;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);

  cp_percpu_pool_fill(&flow_pool, 0); /* prime it from normal context: 16 areas */
  for (int i = 0; i < NR_FLOWS; i++) {
    raise(SIGUSR1);
    struct timespec ts = {0, 200000}; /* 0.2 ms between flows: the worker keeps up */
    nanosleep(&ts, NULL);
  }
  uint64_t total = 0;
  for (int i = 0; i < next_flow; i++) {
    total += cp_percpu_sum_u64(flows[i]);
    cp_free_percpu(flows[i]);
  }
  printf("%d flows, %llu packets, %d misses, %d areas cached\n", (int)next_flow,
         (unsigned long long)total, (int)misses, cp_percpu_pool_nr(&flow_pool));
  cp_percpu_pool_destroy(&flow_pool);

  struct cp_percpu_stats st;
  cp_percpu_get_stats(&st);
  return st.nr_cur_alloc == 0 && total == (uint64_t)next_flow && next_flow + misses == NR_FLOWS ? 0
                                                                                                : 1;
}
