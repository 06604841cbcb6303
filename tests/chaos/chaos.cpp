#include "chaos.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace corepool::chaos {
namespace {

thread_local int t_worker = -1;
thread_local bool t_in_handler = false;

// State shared with the signal handlers (one run at a time).
std::atomic<signal_fn> g_on_signal{nullptr};
std::atomic<void *> g_arg{nullptr};
std::atomic<uint64_t> g_signals{0};
std::atomic<bool> g_stop{false};
std::atomic<uint64_t> g_parks{0};  // completed parkings of the current run()
constexpr int kMaxWorkers = 1024;
std::atomic<bool> g_park_release[kMaxWorkers];
std::atomic<bool> g_parked_now[kMaxWorkers];
std::mutex g_run_lock;  // serialises run()

int storm_signo() {
  return SIGRTMIN + 1;
}
int park_signo() {
  return SIGRTMIN + 2;
}

void sleep_us(long us) {
  timespec ts{us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void storm_handler(int) {
  int saved = errno;
  int w = t_worker;
  if (w >= 0) {
    signal_fn fn = g_on_signal.load(std::memory_order_acquire);
    if (fn) {
      bool outer = t_in_handler;
      t_in_handler = true;
      fn(w, g_arg.load(std::memory_order_relaxed));
      t_in_handler = outer;
    }
    g_signals.fetch_add(1, std::memory_order_relaxed);
  }
  errno = saved;
}

void park_handler(int) {
  int saved = errno;
  int w = t_worker;
  if (w >= 0) {
    g_parked_now[w].store(true, std::memory_order_release);
    while (!g_park_release[w].load(std::memory_order_acquire)) sleep_us(200);
    g_parked_now[w].store(false, std::memory_order_release);
  }
  errno = saved;
}

void install(int signo, void (*h)(int)) {
  struct sigaction sa {};
  sa.sa_handler = h;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(signo, &sa, nullptr);
}

}  // namespace

int worker_id() noexcept {
  return t_worker;
}
bool in_signal_handler() noexcept {
  return t_in_handler;
}
bool should_stop() noexcept {
  return g_stop.load(std::memory_order_relaxed);
}

uint64_t parks_so_far() noexcept {
  return g_parks.load(std::memory_order_relaxed);
}

void park_self_until(const std::atomic<bool> &release) noexcept {
  while (!release.load(std::memory_order_acquire)) sleep_us(200);
}

report run(const options &opt, const std::function<void(int)> &body, signal_fn on_signal,
           void *arg) {
  std::lock_guard<std::mutex> serial(g_run_lock);
  const int T = opt.threads < 1 ? 1 : (opt.threads > kMaxWorkers ? kMaxWorkers : opt.threads);
  report rep;
  g_stop.store(false);
  g_parks.store(0, std::memory_order_relaxed);
  g_signals.store(0);
  g_on_signal.store(on_signal, std::memory_order_release);
  g_arg.store(arg);
  install(storm_signo(), storm_handler);
  install(park_signo(), park_handler);
  for (int i = 0; i < T; i++) {
    g_park_release[i].store(true);
    g_parked_now[i].store(false);
  }

  cpu_set_t all;
  CPU_ZERO(&all);
  sched_getaffinity(0, sizeof all, &all);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &all)) cpus.push_back(c);

  std::mutex m;
  std::condition_variable cv;
  int remaining = T;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> workers;
  std::vector<pthread_t> handles(T);
  const long storm_period_ns =
      opt.signal_storm && opt.storm_hz > 0 ? 1000000000L / opt.storm_hz * T : 0;

  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < T; i++) {
    workers.emplace_back([&, i] {
      t_worker = i;
      timer_t timer{};
      bool have_timer = false;
      if (storm_period_ns > 0) {
        sigevent sev{};
        sev.sigev_notify = SIGEV_THREAD_ID;
        sev.sigev_signo = storm_signo();
        sev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
        if (timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0) {
          have_timer = true;
          itimerspec its{};
          its.it_interval.tv_sec = storm_period_ns / 1000000000L;
          its.it_interval.tv_nsec = storm_period_ns % 1000000000L;
          its.it_value = its.it_interval;
          timer_settime(timer, 0, &its, nullptr);
        }
      }
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      body(i);
      if (have_timer) timer_delete(timer);
      std::lock_guard<std::mutex> g(m);
      if (--remaining == 0) cv.notify_all();
    });
    handles[i] = workers.back().native_handle();
  }
  while (ready.load() < T) std::this_thread::yield();

  std::atomic<bool> helpers_stop{false};
  std::atomic<uint64_t> migrations{0};
  std::thread migrator, parker;
  if (opt.migrate && cpus.size() > 1) {
    migrator = std::thread([&] {
      rng r(12345);
      while (!helpers_stop.load(std::memory_order_relaxed)) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[r.below(cpus.size())], &one);
        if (pthread_setaffinity_np(handles[r.below(T)], sizeof one, &one) == 0)
          migrations.fetch_add(1, std::memory_order_relaxed);
        std::this_thread::sleep_for(opt.migrate_every);
      }
    });
  }
  if (opt.park) {
    parker = std::thread([&] {
      rng r(777);
      while (!helpers_stop.load(std::memory_order_relaxed)) {
        std::this_thread::sleep_for(opt.park_every);
        if (helpers_stop.load()) break;
        int w = static_cast<int>(r.below(T));
        g_park_release[w].store(false, std::memory_order_release);
        if (pthread_kill(handles[w], park_signo()) != 0) {
          g_park_release[w].store(true);
          continue;
        }
        std::this_thread::sleep_for(opt.park_for);
        g_park_release[w].store(true, std::memory_order_release);
        g_parks.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }

  go.store(true, std::memory_order_release);
  {
    std::unique_lock<std::mutex> lk(m);
    rep.in_time = cv.wait_for(lk, opt.deadline, [&] { return remaining == 0; });
  }
  helpers_stop.store(true);
  if (migrator.joinable()) migrator.join();
  if (parker.joinable()) parker.join();
  for (int i = 0; i < T; i++) g_park_release[i].store(true);
  if (!rep.in_time) {
    std::unique_lock<std::mutex> lk(m);  // `remaining` is only read under the lock
    std::fprintf(stderr, "chaos: %d of %d workers still running after %lld ms\n", remaining, T,
                 static_cast<long long>(opt.deadline.count()));
    g_stop.store(true);
    if (!cv.wait_for(lk, std::chrono::seconds(10), [&] { return remaining == 0; })) {
      std::fprintf(stderr, "chaos: workers ignored should_stop(); giving up (hang)\n");
      std::fflush(stderr);
      std::_Exit(3);
    }
  }
  for (auto &w : workers) w.join();
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  g_on_signal.store(nullptr);
  // Let stray timer signals already queued land with a null callback, then restore defaults.
  rep.signals = g_signals.load();
  rep.migrations = migrations.load();
  rep.parks = g_parks.load(std::memory_order_relaxed);
  sched_setaffinity(0, sizeof all, &all);
  return rep;
}

}  // namespace corepool::chaos
