// Loads a shared object that contains corepool (unload_backend.h), runs pool operations on
// several threads, unloads it, and keeps every thread running under a signal storm and
// migrations. A restartable sequence leaves the thread's rseq_cs pointing at its descriptor
// inside the object until the kernel next looks at it (a preemption, migration or signal);
// were the object unmapped by dlclose, that look would fault and the kernel would kill the
// process with SIGSEGV. corepool's shared objects are linked with -z nodelete, so dlclose
// leaves them mapped and this program exits 0.
//
//   unload_test <plugin.so> [--expect-rseq]
//
// --expect-rseq: fail unless the pool ran restartable sequences (where the build, the kernel
// and COREPOOL_RSEQ allow them), so that the test cannot pass without the hazard. (The DPDK
// driver does not say: its test was checked to fail without -z nodelete.)
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "chaos.h"
#include "unload_backend.h"

namespace {

constexpr int kThreads = 4;
constexpr int kCycles = 40;
const unsigned kIters = 2000 / corepool::chaos::kTsanScale;

const char *g_path;
std::atomic<int> g_uses_rseq{-1};
std::atomic<int> g_errors{0};

// A barrier for kThreads workers. Waiting spins and yields: no lock, so a worker stopped by
// the harness only delays the others.
std::atomic<unsigned> g_arrived{0};
std::atomic<unsigned> g_generation{0};
void barrier() {
  unsigned gen = g_generation.load(std::memory_order_acquire);
  if (g_arrived.fetch_add(1, std::memory_order_acq_rel) + 1 == kThreads) {
    g_arrived.store(0, std::memory_order_relaxed);
    g_generation.store(gen + 1, std::memory_order_release);  // pairs with the acquire below
    return;
  }
  while (g_generation.load(std::memory_order_acquire) == gen) sched_yield();
}

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

void body(int worker) {
  for (int cycle = 0; cycle < kCycles && !corepool::chaos::should_stop(); cycle++) {
    if (worker == 0) {
      int r = unload::load(g_path);
      if (r < 0)
        g_errors.fetch_add(1, std::memory_order_relaxed);
      else
        g_uses_rseq.store(r, std::memory_order_relaxed);
    }
    barrier();
    bool loaded = g_errors.load(std::memory_order_relaxed) == 0;
    if (loaded && !unload::churn(kIters)) g_errors.fetch_add(1, std::memory_order_relaxed);
    barrier();
    // Worker 0's last sequence ran a moment ago: its rseq_cs (and that of every worker not
    // interrupted since) still points into the object while dlclose runs.
    if (worker == 0 && loaded) unload::unload();
    barrier();
    // Keep running while the storm's signals and the migrations make the kernel read
    // rseq_cs on every worker.
    uint64_t until = now_ns() + 2000000;
    while (now_ns() < until) {
    }
    if (!loaded) return;
  }
}

bool kernel_has_rseq() {
  // rseq(NULL, 0, 0, 0) fails with EINVAL where the system call exists, ENOSYS where not.
  return syscall(SYS_rseq, nullptr, 0, 0, 0) != 0 && errno != ENOSYS;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <plugin.so> [--expect-rseq]\n", argv[0]);
    return 2;
  }
  g_path = argv[1];
  bool expect_rseq = argc > 2 && std::strcmp(argv[2], "--expect-rseq") == 0;
  const char *env = std::getenv("COREPOOL_RSEQ");
  if (env && std::strcmp(env, "0") == 0) expect_rseq = false;
  if (!kernel_has_rseq()) expect_rseq = false;
  if (!unload::init(g_path)) return 1;

  corepool::chaos::options opt;
  opt.threads = kThreads;
  opt.migrate = true;
  opt.signal_storm = true;
  opt.storm_hz = 10000;
  opt.deadline = std::chrono::milliseconds(120000);
  corepool::chaos::report rep = corepool::chaos::run(opt, body);
  unload::fini();

  int uses_rseq = g_uses_rseq.load(std::memory_order_relaxed);
  const char *rseq_word = uses_rseq == 1 ? "yes" : uses_rseq == 0 ? "no" : "not known";
  std::printf(
      "%s: %d load/use/unload cycles on %d threads in %.2f s, %llu signals, %llu "
      "migrations, pool uses rseq: %s\n",
      g_path, kCycles, kThreads, rep.seconds, (unsigned long long)rep.signals,
      (unsigned long long)rep.migrations, rseq_word);
  int failed = 0;
  if (g_errors.load(std::memory_order_relaxed)) {
    std::fprintf(stderr, "FAIL: %d plugin errors\n", g_errors.load(std::memory_order_relaxed));
    failed = 1;
  }
  if (!rep.in_time) {
    std::fprintf(stderr, "FAIL: not done in time\n");
    failed = 1;
  }
  if (rep.signals == 0) {
    std::fprintf(stderr, "FAIL: no signal reached the workers\n");
    failed = 1;
  }
  if (expect_rseq && uses_rseq != 1) {
    std::fprintf(stderr, "FAIL: the pool did not run restartable sequences\n");
    failed = 1;
  }
  return failed;
}
