// Helper processes: protocol between corepool-bench and the process that runs one contender
// for one repetition (corepool-bench itself for its own contenders, corepool-bench-<allocator>
// for the allocators that replace malloc):
//   parent: <exe> --child jemalloc --size 64 --capacity N --duration S --warmup S
//           --long-scale K --grace G --pin-w3 1 --tasks W1:1,W2:1,W3:2,W4:1,W4:2 ...
//   child:  "P <path of the object that provides malloc>" (malloc helpers), then per task, as
//           soon as it is measured, "R <ok 0/1> <ns> <ops> <failures> <extra>"; or
//           "S <ops> <ns>" when that task's workers are still running G seconds after its stop
//           flag (the child exits right after it: its threads are not waited for); or
//           "E <message>" and exit 1.
// The parent also gives the whole child a deadline (every task's time plus a grace each) and
// kills it past that, so that no contender can hold up a run.
#include "child.h"

#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace cpb {

std::string self_dir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  std::string s(buf);
  auto k = s.rfind('/');
  return k == std::string::npos ? "." : s.substr(0, k);
}

namespace {

std::string tasks_arg(const std::vector<Task> &tasks) {
  std::string s;
  for (const Task &t : tasks) {
    if (!s.empty()) s += ',';
    s += t.workload + ":" + std::to_string(t.threads);
  }
  return s;
}

struct ChildRunner final : Runner {
  std::string name, exe;
  bool run_rep(const std::vector<Task> &tasks, const Params &p, std::vector<Measurement> &out,
               std::string &err) override {
    int fds[2];
    if (pipe(fds) != 0) {
      err = "pipe failed";
      return false;
    }
    std::vector<std::string> args = {exe,
                                     "--child",
                                     name,
                                     "--size",
                                     std::to_string(p.size),
                                     "--capacity",
                                     std::to_string(p.capacity),
                                     "--duration",
                                     std::to_string(p.duration_s),
                                     "--warmup",
                                     std::to_string(p.warmup_s),
                                     "--long-scale",
                                     std::to_string(p.long_scale),
                                     "--grace",
                                     std::to_string(p.stall_grace_s),
                                     "--pin-w3",
                                     p.pin_w3 ? "1" : "0",
                                     "--tasks",
                                     tasks_arg(tasks)};
    // The child's deadline: its tasks' time, a grace per task, and start-up (EAL, helpers).
    double budget = 10;
    for (const Task &t : tasks)
      budget += run_seconds(t, p) + warmup_seconds(t, p) + p.stall_grace_s;
    pid_t pid = fork();
    if (pid < 0) {
      err = "fork failed";
      return false;
    }
    if (pid == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      close(fds[1]);
      std::vector<char *> av;
      for (auto &a : args) av.push_back(const_cast<char *>(a.c_str()));
      av.push_back(nullptr);
      execv(exe.c_str(), av.data());
      _exit(127);
    }
    close(fds[1]);
    std::string text;
    char buf[4096];
    bool killed = false;
    const uint64_t limit = now_ns() + uint64_t(budget * 1e9);
    for (;;) {
      uint64_t now = now_ns();
      if (now >= limit) {
        kill(pid, SIGKILL);
        killed = true;
        break;
      }
      pollfd pf{fds[0], POLLIN, 0};
      int left_ms = int((limit - now) / 1000000) + 1;
      int r = poll(&pf, 1, left_ms);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) continue;  // timeout: the loop head kills it
      ssize_t n = read(fds[0], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buf, size_t(n));
    }
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    std::istringstream in(text);
    std::string line;
    bool stalled = false;
    while (std::getline(in, line)) {
      if (line.size() < 2) continue;
      if (line[0] == 'E') {
        err = name + ": " + line.substr(2);
        return false;
      }
      if (line[0] == 'R' || line[0] == 'S') {
        Measurement m;
        std::istringstream ls(line.substr(2));
        unsigned long long ops = 0, fails = 0;
        if (line[0] == 'R') {
          int ok = 0;
          ls >> ok >> m.ns >> ops >> fails >> m.extra;
          m.ok = ok != 0 && ls;
          if (!m.ok) m.err = "failed in helper";
        } else {
          ls >> ops >> m.ns;
          m.stalled = stalled = true;
          m.err = "stalled: workers still running " + std::to_string(p.stall_grace_s) +
                  " s after the stop flag";
        }
        m.ops = ops;
        m.failures = fails;
        out.push_back(m);
        if (stalled) break;
      }
    }
    if (killed && !stalled && out.size() < tasks.size()) {
      // No stall line (a stall outside run_threads, or in start-up): the task it was in.
      Measurement m;
      m.stalled = stalled = true;
      m.err = "stalled: no result within the deadline of " + std::to_string(budget) + " s";
      out.push_back(m);
    }
    if (stalled) return true;  // out ends with the stalled task; the tasks after it did not run
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || out.size() != tasks.size()) {
      err = name + ": helper " + exe + " exited with status " +
            std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
      if (WIFEXITED(st) && WEXITSTATUS(st) == 127) err += " (not found)";
      return false;
    }
    return true;
  }
};

std::unique_ptr<Runner> child_runner(const std::string &name, const std::string &exe) {
  auto r = std::make_unique<ChildRunner>();
  r->name = name;
  r->exe = exe;
  return r;
}

void print_result(const Measurement &m) {
  std::printf("R %d %.6g %llu %llu %.6g\n", m.ok ? 1 : 0, m.ns, (unsigned long long)m.ops,
              (unsigned long long)m.failures, m.extra);
  std::fflush(stdout);
}

[[noreturn]] void report_stall(const Measurement &m) {
  std::printf("S %llu %.6g\n", (unsigned long long)m.ops, m.ns);
  std::fflush(stdout);
  _exit(0);  // the stalled workers still run: no destructor may wait for them
}

}  // namespace

void add_child_contender(const std::string &name, const std::string &family, Kind kind,
                         const std::string &config, const std::vector<std::string> &workloads,
                         const std::string &helper) {
  std::string exe = self_dir() + "/" + helper;
  if (access(exe.c_str(), X_OK) != 0) {
    add_missing(name, family, kind, workloads, "helper executable " + exe + " not found");
    return;
  }
  ContenderDesc d;
  d.name = name;
  d.family = family;
  d.kind = kind;
  d.config = config + " (separate process " + helper + ")";
  d.workloads = workloads;
  d.make = [name, exe] { return child_runner(name, exe); };
  add_contender(std::move(d));
}

std::unique_ptr<Runner> self_runner(const std::string &name) {
  return child_runner(name, self_dir() + "/corepool-bench");
}

int child_main(int argc, char **argv) {
  std::string name;
  Params p;
  std::vector<Task> tasks;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--child")
      name = v;
    else if (k == "--size")
      p.size = std::stoul(v);
    else if (k == "--capacity")
      p.capacity = unsigned(std::stoul(v));
    else if (k == "--duration")
      p.duration_s = std::stod(v);
    else if (k == "--warmup")
      p.warmup_s = std::stod(v);
    else if (k == "--long-scale")
      p.long_scale = std::stod(v);
    else if (k == "--grace")
      p.stall_grace_s = std::stod(v);
    else if (k == "--pin-w3")
      p.pin_w3 = v != "0";
    else if (k == "--tasks") {
      std::istringstream s(v);
      std::string item;
      while (std::getline(s, item, ',')) {
        auto c = item.find(':');
        Task t;
        t.workload = item.substr(0, c);
        t.threads = c == std::string::npos ? 1 : std::stoi(item.substr(c + 1));
        tasks.push_back(t);
      }
    }
  }
#ifdef CPB_HELPER_LIB
  std::string prov = malloc_provider();
  std::printf("P %s\n", prov.c_str());
  if (prov.find(CPB_HELPER_LIB) == std::string::npos) {
    std::printf("E malloc is provided by '%s', not by %s: the helper was not linked as expected\n",
                prov.c_str(), CPB_HELPER_LIB);
    return 1;
  }
#endif
  for (const ContenderDesc &d : registry()) {
    if (d.name != name || !d.available) continue;
    std::vector<Measurement> out;
    std::string err;
    g_stall_grace_s = p.stall_grace_s;
    choose_w3_cpus(p.pin_w3);
    g_on_stall = report_stall;
    g_on_result = print_result;  // each figure goes out as soon as it is measured
    auto r = d.make();
    if (!r->run_rep(tasks, p, out, err)) {
      std::printf("E %s\n", err.c_str());
      return 1;
    }
    return 0;
  }
  std::printf("E no contender named %s in this helper\n", name.c_str());
  return 1;
}

}  // namespace cpb
