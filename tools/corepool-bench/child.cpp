// Helper processes: protocol between corepool-bench and corepool-bench-<allocator>.
//   parent: corepool-bench-jemalloc --child jemalloc --size 64 --capacity N --duration S
//           --warmup S --tasks W1,W2,W3,W4:1,W4:2 ...
//   helper: "P <path of the object that provides malloc>"  then per task
//           "R <ok 0/1> <ns> <ops> <failures> <extra>"  or "E <message>" and exit 1.
#include "child.h"

#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

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
                                     "--tasks",
                                     tasks_arg(tasks)};
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
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) text.append(buf, size_t(n));
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    std::istringstream in(text);
    std::string line;
    size_t got = 0;
    while (std::getline(in, line)) {
      if (line.size() < 2) continue;
      if (line[0] == 'E') {
        err = name + ": " + line.substr(2);
        return false;
      }
      if (line[0] == 'R') {
        Measurement m;
        int ok = 0;
        std::istringstream ls(line.substr(2));
        unsigned long long ops = 0, fails = 0;
        ls >> ok >> m.ns >> ops >> fails >> m.extra;
        m.ok = ok != 0 && ls;
        m.ops = ops;
        m.failures = fails;
        if (!m.ok) m.err = "failed in helper";
        out.push_back(m);
        got++;
      }
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || got != tasks.size()) {
      err = name + ": helper " + exe + " exited with status " +
            std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
      if (WIFEXITED(st) && WEXITSTATUS(st) == 127) err += " (not found)";
      return false;
    }
    return true;
  }
};

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
  d.make = [name, exe] {
    auto r = std::make_unique<ChildRunner>();
    r->name = name;
    r->exe = exe;
    return std::unique_ptr<Runner>(std::move(r));
  };
  add_contender(std::move(d));
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
    auto r = d.make();
    if (!r->run_rep(tasks, p, out, err)) {
      std::printf("E %s\n", err.c_str());
      return 1;
    }
    for (const Measurement &m : out)
      std::printf("R %d %.6g %llu %llu %.6g\n", m.ok ? 1 : 0, m.ns, (unsigned long long)m.ops,
                  (unsigned long long)m.failures, m.extra);
    return 0;
  }
  std::printf("E no contender named %s in this helper\n", name.c_str());
  return 1;
}

}  // namespace cpb
