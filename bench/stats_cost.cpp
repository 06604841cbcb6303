// A fixed loop of pool operations for instruction counts under callgrind (not a Google
// Benchmark program): bench_stats_cost <mode> <n>. The cost of one pair is the difference
// of two runs, which cancels set-up and exit: (Ir2 - Ir1) / 102400 from
//   for n in 102400 204800; do valgrind --tool=callgrind --callgrind-out-file=/dev/null
//     build/release/bench/bench_stats_cost op_pair $n; done
// Valgrind has no rseq: under it every call takes the paths of a thread without rseq.
// Modes:
//   op_pair   n x (cp_objpool_pop + cp_objpool_push), a pool of 4096
//   op_burst  n/512 x (512 pops, 512 pushes): past the 256-object cache, the slow paths
//   qm_pair   n x (cp_qmempool_alloc + cp_qmempool_free)
//   qm_burst  n/512 x (512 allocs, 512 frees)
#include <corepool/objpool.h>
#include <corepool/qmempool.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  const char *m = argv[1];
  const long n = std::atol(argv[2]);
  static void *buf[512];
  if (!std::strncmp(m, "op_", 3)) {
    cp_objpool *p = nullptr;
    if (cp_objpool_init(&p, 4096, 64, nullptr, nullptr, nullptr) != 0) return 1;
    if (!std::strcmp(m, "op_pair")) {
      for (long i = 0; i < n; i++) {
        void *o = cp_objpool_pop(p);
        if (!o || cp_objpool_push(o, p) != 0) return 1;
      }
    } else {
      for (long i = 0; i < n / 512; i++) {
        for (int k = 0; k < 512; k++)
          if (!(buf[k] = cp_objpool_pop(p))) return 1;
        for (int k = 0; k < 512; k++)
          if (cp_objpool_push(buf[k], p) != 0) return 1;
      }
    }
    cp_objpool_free(p);
  } else {
    cp_qmempool *p = nullptr;
    if (cp_qmempool_create(&p, 256, 4096, 1024, 64, nullptr) != 0) return 1;
    if (!std::strcmp(m, "qm_pair")) {
      for (long i = 0; i < n; i++) {
        void *o = cp_qmempool_alloc(p);
        if (!o) return 1;
        cp_qmempool_free(p, o);
      }
    } else {
      for (long i = 0; i < n / 512; i++) {
        for (int k = 0; k < 512; k++)
          if (!(buf[k] = cp_qmempool_alloc(p))) return 1;
        for (int k = 0; k < 512; k++) cp_qmempool_free(p, buf[k]);
      }
    }
    cp_qmempool_destroy(p);
  }
  return 0;
}
