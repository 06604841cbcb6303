// corepool-bench: corepool's pools side by side with the pools and allocators people use
// today, on the machine it runs on. See docs/bench.md.
#if defined(__GNUC__) && !defined(__clang__)
// g++ 12 reports a false -Wmaybe-uninitialized inside libstdc++'s <regex> (std::function in
// _State) at -O2 with sanitizers; the location is in the library header, parsed before any
// push/pop around <regex> could be, so it is off for this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <gnu/libc-version.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <corepool/cpu.h>

#include "bench.h"
#include "child.h"
#include "counters.h"
#include "report.h"

#ifndef CPB_BUILD_TYPE
#define CPB_BUILD_TYPE "unknown"
#endif

namespace cpb {
namespace {

struct Options {
  bool quick = false, list = false;
  std::string filter;
  std::vector<int> threads = {1, 2, 8, 32};
  size_t size = 64;
  int reps = 0;      // 0: default for the mode
  int max_reps = 0;  // 0: 3 x reps
  double duration_s = 0;
  double long_scale = 3;
  double grace_s = 0;  // 0: default for the mode
  std::string json_path, out_dir;
  bool no_plots = false, in_process = false, w3_free = false;
};

void usage(FILE *f) {
  std::fprintf(f,
               "usage: corepool-bench [options]\n"
               "  --quick          short runs (the whole default set in under a minute)\n"
               "  --filter REGEX   run only rows whose 'TASK/CONTENDER' matches, e.g.\n"
               "                   'W1/' or 'W3/|objpool' or '^(W1|W2)/(glibc|objpool)'\n"
               "  --threads LIST   thread counts for the scaling runs (default 1,2,8,32;\n"
               "                   up to the online CPU count = W4, above = W5 oversubscribed)\n"
               "  --size BYTES     object size (default 64)\n"
               "  --reps N         repetitions, each figure is their median (default 5, min 1)\n"
               "  --max-reps N     more repetitions, interleaved, for contenders with a figure\n"
               "                   whose spread is over 10%% (default 3 x reps; = reps: never)\n"
               "  --duration SEC   measured time per figure and repetition (default 0.1,\n"
               "                   --quick 0.02); every run is preceded by a warm-up of 1/5 that\n"
               "  --long-scale K   W3, W4 and W5 runs last K x duration (default 3)\n"
               "  --grace SEC      a run whose workers have not stopped SEC after its end is\n"
               "                   cut off and reported as stalled (default 2, --quick 1)\n"
               "  --in-process     run corepool-bench's own contenders in this process (no\n"
               "                   stall cut-off; default: a fresh process per repetition)\n"
               "  --w3-free        let the scheduler place W3's two threads (default: pinned\n"
               "                   to two CPUs; the row shows how often they shared one)\n"
               "  --json PATH      also write the JSON report to PATH\n"
               "  --out DIR        results folder (default results/<date-time>)\n"
               "  --no-plots       do not write SVG files\n"
               "  --list           list contenders (built or missing) and workloads, then exit\n");
}

std::vector<int> parse_int_list(const std::string &s) {
  std::vector<int> v;
  std::istringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) v.push_back(std::stoi(item));
  return v;
}

bool parse(int argc, char **argv, Options &o) {
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto val = [&](std::string &out) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "corepool-bench: %s needs a value\n", a.c_str());
        return false;
      }
      out = argv[++i];
      return true;
    };
    std::string v;
    try {
      if (a == "--quick")
        o.quick = true;
      else if (a == "--list")
        o.list = true;
      else if (a == "--no-plots")
        o.no_plots = true;
      else if (a == "--filter") {
        if (!val(o.filter)) return false;
      } else if (a == "--threads") {
        if (!val(v)) return false;
        o.threads = parse_int_list(v);
        if (o.threads.empty()) return false;
        for (int t : o.threads)
          if (t < 1 || t > 1024) return false;
      } else if (a == "--size") {
        if (!val(v)) return false;
        o.size = std::stoul(v);
        if (o.size < 1 || o.size > 65536) return false;
      } else if (a == "--reps") {
        if (!val(v)) return false;
        o.reps = std::stoi(v);
        if (o.reps < 1) return false;
      } else if (a == "--max-reps") {
        if (!val(v)) return false;
        o.max_reps = std::stoi(v);
        if (o.max_reps < 1) return false;
      } else if (a == "--long-scale") {
        if (!val(v)) return false;
        o.long_scale = std::stod(v);
        if (!(o.long_scale >= 1 && o.long_scale <= 100)) return false;
      } else if (a == "--grace") {
        if (!val(v)) return false;
        o.grace_s = std::stod(v);
        if (!(o.grace_s > 0 && o.grace_s <= 600)) return false;
      } else if (a == "--in-process") {
        o.in_process = true;
      } else if (a == "--w3-free") {
        o.w3_free = true;
      } else if (a == "--duration") {
        if (!val(v)) return false;
        o.duration_s = std::stod(v);
        if (!(o.duration_s > 0 && o.duration_s < 60)) return false;
      } else if (a == "--json") {
        if (!val(o.json_path)) return false;
      } else if (a == "--out") {
        if (!val(o.out_dir)) return false;
      } else if (a == "--help" || a == "-h") {
        usage(stdout);
        std::exit(0);
      } else {
        std::fprintf(stderr, "corepool-bench: unknown option %s\n", a.c_str());
        return false;
      }
    } catch (const std::exception &) {
      std::fprintf(stderr, "corepool-bench: bad value for %s\n", a.c_str());
      return false;
    }
  }
  return true;
}

std::string read_first(const char *path, const char *key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) {
      auto c = line.find(':');
      if (c == std::string::npos) continue;
      auto s = line.substr(c + 1);
      s.erase(0, s.find_first_not_of(" \t"));
      return s;
    }
  return "";
}

std::map<std::string, std::string> machine() {
  std::map<std::string, std::string> m;
  std::string model = read_first("/proc/cpuinfo", "model name");
  if (model.empty()) model = read_first("/proc/cpuinfo", "CPU part");
  m["cpu_model"] = model.empty() ? "unknown" : model;
  m["cores_online"] = std::to_string(sysconf(_SC_NPROCESSORS_ONLN));
  m["nr_cpu_ids"] = std::to_string(cp_nr_cpu_ids());
  m["numa_nodes"] = std::to_string(cp_nr_nodes());
  utsname u{};
  uname(&u);
  m["kernel"] = std::string(u.sysname) + " " + u.release + " " + u.machine;
  m["glibc"] = gnu_get_libc_version();
#if defined(__clang__)
  m["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  m["compiler"] = std::string("g++ ") + __VERSION__;
#endif
  m["build_type"] = CPB_BUILD_TYPE;
  m["cpu_id_source"] = cp_cpu_id_source_name(cp_cpu_id_source());
  m["rseq"] = cp_rseq_enabled() ? "on" : "off";
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  m["hostname"] = host;
  return m;
}

std::string timestamp(const char *fmt) {
  char buf[64];
  time_t t = time(nullptr);
  tm tmv{};
  gmtime_r(&t, &tmv);
  strftime(buf, sizeof buf, fmt, &tmv);
  return buf;
}

bool mkdirs(const std::string &path) {
  std::string cur;
  std::istringstream in(path);
  std::string part;
  if (!path.empty() && path[0] == '/') cur = "/";
  while (std::getline(in, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) return false;
  }
  return true;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Quantile q of sorted v, linear between order statistics.
double quantile(const std::vector<double> &v, double q) {
  double pos = q * double(v.size() - 1);
  size_t i = size_t(pos);
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (v[i + 1] - v[i]) * (pos - double(i));
}

// Spread of a figure's repetitions: interquartile range / median. It ignores one outlier in
// five, unlike min-max, and is what says whether two medians can be compared: at 10%, the
// medians of two runs of 5 repetitions land within about 10% of each other.
double spread_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double med = median_of(v);
  return med > 0 ? (quantile(v, 0.75) - quantile(v, 0.25)) / med : 0;
}
constexpr double kWideSpread = 0.10;

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

// The lower bound each workload is compared with (see docs/bench.md).
std::string bound_for(const Task &t, const std::set<std::string> &have) {
  auto pick = [&](std::initializer_list<const char *> names) -> std::string {
    for (const char *n : names)
      if (have.count(n)) return n;
    return "";
  };
  if (t.workload == "W1" || t.workload == "W2")
    return pick({"bound-percpu-array", "bound-tl-array"});
  if (t.workload == "W3") return pick({"bound-spsc-ring"});
  if (t.workload == "W4" || t.workload == "W5") return pick({"bound-tl-array"});
  if (t.workload.rfind("A2", 0) == 0)
    return pick({"bound-percpu-seq", "bound-percpu-slot", "counter-thread_local"});
  return "";
}

}  // namespace

int run_main(int argc, char **argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    usage(stderr);
    return 2;
  }
  Params p;
  p.size = o.size;
  p.duration_s = o.duration_s > 0 ? o.duration_s : (o.quick ? 0.02 : 0.1);
  p.warmup_s = p.duration_s / 5;
  p.long_scale = o.long_scale;
  p.stall_grace_s = o.grace_s > 0 ? o.grace_s : (o.quick ? 1.0 : 2.0);
  p.pin_w3 = !o.w3_free;
  choose_w3_cpus(p.pin_w3);
  int reps = o.reps > 0 ? o.reps : 5;
  int max_reps = std::max(reps, o.max_reps > 0 ? o.max_reps : 3 * reps);
  int max_threads = *std::max_element(o.threads.begin(), o.threads.end());
  p.capacity = std::max(32768u, unsigned(max_threads) * 2 * kBurst);

  // Tasks in report order.
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  std::vector<Task> all_tasks = {{"W1", 1}, {"W2", 1}, {"W3", 2}};
  std::vector<int> ts = o.threads;
  std::sort(ts.begin(), ts.end());
  ts.erase(std::unique(ts.begin(), ts.end()), ts.end());
  for (int t : ts) all_tasks.push_back({t <= online ? "W4" : "W5", t});
  all_tasks.push_back({"A1", 1});
  for (int t : ts)
    if (t > 1) all_tasks.push_back({"A4", t});
  for (int procs : {1, 2, 8}) all_tasks.push_back({"A5", procs});
  for (const std::string &w : kCounterWorkloads)
    for (int t : {1, 2}) all_tasks.push_back({w, t});
  all_tasks.push_back({"A3", 1});

  std::regex re;
  try {
    re = std::regex(o.filter.empty() ? "." : o.filter, std::regex::ECMAScript);
  } catch (const std::regex_error &) {
    std::fprintf(stderr, "corepool-bench: bad --filter regex '%s'\n", o.filter.c_str());
    return 2;
  }

  auto &reg = registry();
  std::stable_sort(reg.begin(), reg.end(), [](const ContenderDesc &a, const ContenderDesc &b) {
    return int(a.kind) < int(b.kind);
  });
  auto tasks_of = [&](const ContenderDesc &d) {
    std::vector<Task> v;
    for (const Task &t : all_tasks)
      if (std::find(d.workloads.begin(), d.workloads.end(), t.workload) != d.workloads.end() &&
          std::regex_search(t.id() + "/" + d.name, re))
        v.push_back(t);
    return v;
  };

  if (o.list) {
    std::printf("Workloads (size %zu B):\n", p.size);
    for (const Task &t : all_tasks)
      std::printf("  %-10s %s\n", t.id().c_str(), describe_task(t).c_str());
    std::printf("\nContenders:\n");
    for (const ContenderDesc &d : reg) {
      std::string wl;
      for (auto &w : d.workloads) wl += (wl.empty() ? "" : " ") + w;
      std::printf("  %-26s %-9s %-8s %-16s %s\n", d.name.c_str(), kind_name(d.kind),
                  d.family.c_str(), wl.c_str(),
                  d.available ? d.config.c_str() : ("MISSING: " + d.missing).c_str());
    }
    return 0;
  }

  Report rep;
  rep.machine = machine();
  for (int i = 0; i < argc; i++) rep.argv.push_back(argv[i]);
  rep.params["size"] = std::to_string(p.size);
  rep.params["reps"] = std::to_string(reps);
  rep.params["max_reps"] = std::to_string(max_reps);
  rep.params["long_scale"] = num(p.long_scale);
  rep.params["stall_grace_s"] = num(p.stall_grace_s);
  rep.params["isolation"] = o.in_process ? "in-process" : "process per repetition";
  rep.params["w3_cpus"] = g_w3_cpus[0] >= 0
                              ? std::to_string(g_w3_cpus[0]) + "," + std::to_string(g_w3_cpus[1])
                              : "scheduler";
  rep.params["duration_s"] = num(p.duration_s);
  rep.params["warmup_s"] = num(p.warmup_s);
  rep.params["capacity"] = std::to_string(p.capacity);
  rep.params["burst"] = std::to_string(kBurst);
  rep.params["ring"] = std::to_string(kRingSize);
  rep.params["filter"] = o.filter;
  rep.params["quick"] = o.quick ? "true" : "false";
  rep.params["date_utc"] = timestamp("%Y-%m-%dT%H:%M:%SZ");

  struct Sel {
    const ContenderDesc *d;
    std::vector<Task> tasks;
    std::map<std::string, std::vector<Measurement>> results;  // task id -> one per repetition
    std::map<std::string, Measurement> stalled;  // task id -> its stalled run (not run again)
    std::string error;
    size_t status_idx;
    int runs = 0;
  };
  std::vector<Sel> sel;
  for (const ContenderDesc &d : reg) {
    ContenderStatus st{d.name, d.family, d.config, "", "", d.kind, d.workloads, {}};
    auto tv = tasks_of(d);
    if (!d.available) {
      st.status = "missing";
      st.reason = d.missing;
    } else if (tv.empty()) {
      st.status = "not selected";
    } else {
      st.status = "ok";
      sel.push_back({&d, tv, {}, {}, "", rep.contenders.size(), 0});
    }
    rep.contenders.push_back(st);
  }
  for (const Task &t : all_tasks)
    for (const Sel &s : sel)
      if (std::any_of(s.tasks.begin(), s.tasks.end(),
                      [&](const Task &x) { return x.id() == t.id(); })) {
        rep.tasks.push_back(t);
        break;
      }
  for (const ContenderStatus &c : rep.contenders)
    if (c.status == "missing")
      std::fprintf(stderr, "corepool-bench: %s missing: %s\n", c.name.c_str(), c.reason.c_str());

  auto seconds_of = [&](const Sel &s) {
    double t = 0;
    for (const Task &x : s.tasks) t += (run_seconds(x, p) + warmup_seconds(x, p)) * 1.1;
    return t + (o.in_process ? 0 : 0.01);
  };
  double est = 0;
  for (const Sel &s : sel) est += seconds_of(s) * reps;
  std::fprintf(stderr,
               "corepool-bench: %zu contenders, %zu tasks, %d repetitions (up to %d where a "
               "figure spreads), ~%.0f s, at most ~%.0f s\n",
               sel.size(), rep.tasks.size(), reps, max_reps, est, est * max_reps / reps);

  // One repetition of one contender: every task it still runs, in a fresh process unless
  // --in-process. A stalled task is kept with what it completed and not run again.
  auto run_one = [&](Sel &s, int r, int of, double pct) {
    std::vector<Task> tv;
    for (const Task &t : s.tasks)
      if (!s.stalled.count(t.id())) tv.push_back(t);
    if (tv.empty()) return;
    std::fprintf(stderr, "\r\033[K[rep %d/%d %3.0f%%] %s (%zu tasks)", r + 1, of, pct,
                 s.d->name.c_str(), tv.size());
    std::fflush(stderr);
    std::vector<Measurement> out;
    std::string err;
    auto runner = (s.d->in_process && !o.in_process) ? self_runner(s.d->name) : s.d->make();
    if (!runner->run_rep(tv, p, out, err) || out.size() > tv.size()) {
      s.error = err.empty() ? "failed" : err;
      std::fprintf(stderr, "\ncorepool-bench: %s failed: %s\n", s.d->name.c_str(), s.error.c_str());
      return;
    }
    s.runs++;
    for (size_t i = 0; i < out.size(); i++) {
      if (out[i].stalled) {
        s.stalled[tv[i].id()] = out[i];
        std::fprintf(stderr, "\ncorepool-bench: %s %s stalled (%llu pairs completed)\n",
                     s.d->name.c_str(), tv[i].id().c_str(), (unsigned long long)out[i].ops);
      } else {
        s.results[tv[i].id()].push_back(out[i]);
      }
    }
  };

  // Interleaved: each repetition runs every contender once, in an order rotated per rep, so
  // that machine drift over the run reaches every contender alike.
  uint64_t t_start = now_ns();
  double est_done = 0, est_total = est;
  for (int r = 0; r < reps; r++)
    for (size_t k = 0; k < sel.size(); k++) {
      Sel &s = sel[(k + size_t(r)) % sel.size()];
      if (!s.error.empty()) continue;
      run_one(s, r, reps, 100.0 * est_done / est_total);
      est_done += seconds_of(s);
    }
  // More repetitions, still interleaved, for the contenders with a figure whose spread is
  // above kWideSpread, until it is not or max_reps is reached: a median of more runs.
  for (int r = reps; r < max_reps; r++) {
    std::vector<Sel *> wide;
    for (Sel &s : sel) {
      if (!s.error.empty()) continue;
      for (auto &[id, ms] : s.results) {
        std::vector<double> v;
        for (const Measurement &m : ms)
          if (m.ok) v.push_back(m.ns);
        if (v.size() >= 3 && spread_of(v) > kWideSpread) {
          wide.push_back(&s);
          break;
        }
      }
    }
    if (wide.empty()) break;
    for (size_t k = 0; k < wide.size(); k++)
      run_one(*wide[(k + size_t(r)) % wide.size()], r, max_reps, 100.0 * r / max_reps);
  }
  rep.wall_s = double(now_ns() - t_start) / 1e9;
  std::fprintf(stderr, "\r\033[K[done] %.1f s\n", rep.wall_s);

  // Statistics.
  for (Sel &s : sel) {
    ContenderStatus &st = rep.contenders[s.status_idx];
    if (!s.error.empty()) {
      st.status = "failed";
      st.reason = s.error;
      continue;
    }
    for (const Task &t : s.tasks) {
      Row row;
      row.task = t;
      row.contender = s.d->name;
      row.kind = s.d->kind;
      std::vector<double> extras;
      std::string err;
      for (const Measurement &m : s.results[t.id()]) {
        if (!m.ok || !std::isfinite(m.ns) || m.ns <= 0) {
          err = m.err.empty() ? "no valid figure" : m.err;
          continue;
        }
        row.samples.push_back(m.ns);
        row.failures += m.failures;
        if (m.extra >= 0) extras.push_back(m.extra);
      }
      auto stall = s.stalled.find(t.id());
      if (stall != s.stalled.end()) {
        // Reported as stalled with what the stalled run completed; figures of earlier
        // repetitions that did complete are kept but the row is not ranked.
        row.stalled = true;
        row.stalled_ops = stall->second.ops;
        row.stalled_ns = stall->second.ns;
        st.stalled.push_back(t.id());
      }
      if (row.samples.empty()) {
        if (row.stalled) {
          rep.rows.push_back(row);
          continue;
        }
        st.status = "failed";
        st.reason = row.task.id() + ": " + err;
        continue;
      }
      row.median = median_of(row.samples);
      row.min = *std::min_element(row.samples.begin(), row.samples.end());
      row.max = *std::max_element(row.samples.begin(), row.samples.end());
      row.spread = row.samples.size() >= 3 ? spread_of(row.samples) : 0;
      row.wide = row.spread > kWideSpread;
      if (!extras.empty()) row.extra = median_of(extras);
      rep.rows.push_back(row);
    }
  }
  // Ratios: to the fastest peer and to the applicable lower bound, per task.
  for (const Task &t : rep.tasks) {
    std::set<std::string> have;
    const Row *best = nullptr;
    for (const Row &r : rep.rows)
      if (r.task.id() == t.id() && r.median > 0) {
        have.insert(r.contender);
        if (r.kind == Kind::peer && (!best || r.median < best->median)) best = &r;
      }
    std::string lb = bound_for(t, have);
    double lbv = 0;
    for (const Row &r : rep.rows)
      if (r.task.id() == t.id() && r.contender == lb) lbv = r.median;
    std::string best_name = best ? best->contender : "";
    double best_v = best ? best->median : 0;
    for (Row &r : rep.rows) {
      if (r.task.id() != t.id() || r.median <= 0) continue;
      if (best_v > 0) {
        r.best_peer = best_name;
        r.speedup_vs_best_peer = best_v / r.median;
      }
      if (lbv > 0 && r.contender != lb) {
        r.lower_bound = lb;
        r.x_lower_bound = r.median / lbv;
      }
    }
  }

  print_tables(rep, stdout);

  std::string dir = o.out_dir.empty() ? "results/" + timestamp("%Y%m%d-%H%M%S") : o.out_dir;
  if (!mkdirs(dir)) {
    std::fprintf(stderr, "corepool-bench: cannot create %s\n", dir.c_str());
    return 1;
  }
  bool ok = write_json(rep, dir + "/bench.json") && write_csv(rep, dir + "/bench.csv");
  if (!o.json_path.empty()) ok = write_json(rep, o.json_path) && ok;
  std::vector<std::string> plots;
  if (!o.no_plots) plots = write_svgs(rep, dir);
  if (o.out_dir.empty()) {
    std::string latest = "results/latest";
    unlink(latest.c_str());
    if (symlink(dir.substr(8).c_str(), latest.c_str()) != 0) { /* best effort */
    }
  }
  std::printf("\nResults: %s/bench.json, %s/bench.csv%s\n", dir.c_str(), dir.c_str(),
              o.json_path.empty() ? "" : (", " + o.json_path).c_str());
  if (!plots.empty()) {
    std::printf("Plots:   %s/index.html (all plots), for example:\n", dir.c_str());
    for (size_t i = 0; i < plots.size() && i < 3; i++)
      std::printf("         %s\n", plots[i].c_str());
  }
  if (!ok) {
    std::fprintf(stderr, "corepool-bench: could not write the results\n");
    return 1;
  }
  return 0;
}

}  // namespace cpb

int main(int argc, char **argv) {
  if (argc > 1 && std::string(argv[1]) == "--child") return cpb::child_main(argc, argv);
#ifdef CPB_HELPER_NAME
  std::fprintf(stderr, "%s is a helper of corepool-bench; run corepool-bench\n", argv[0]);
  return 2;
#else
  return cpb::run_main(argc, argv);
#endif
}
