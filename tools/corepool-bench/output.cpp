// Writers of corepool-bench: terminal tables, JSON, CSV, and SVG plots written directly
// (no plotting dependency): bars per task on a log scale and throughput against threads.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "report.h"

namespace cpb {

const char *unit_of(const std::string &w) {
  if (w == "W3") return "ns/object";
  if (w == "A2") return "ns/increment";
  if (w.rfind("A2-", 0) == 0) return "ns/op";
  return "ns/pair";
}

std::string describe_task(const Task &t) {
  const std::string T = std::to_string(t.threads);
  if (t.workload == "W1") return "fast path: one thread gets an object, writes a byte, puts it";
  if (t.workload == "W2") return "burst: one thread gets 256, writes each, puts all 256";
  if (t.workload == "W3")
    return "cross-thread: producer gets and passes through an SPSC ring, consumer puts";
  if (t.workload == "W4") return "scaling: " + T + " thread(s) running W2 (aggregate)";
  if (t.workload == "W5") return "oversubscribed: " + T + " threads running W2 (aggregate)";
  if (t.workload == "A1") return "gen_pool area: alloc+free of mixed sizes 64 B-4 KiB";
  if (t.workload == "A2") return "per-CPU counter: increment, " + T + " thread(s), per thread";
  if (t.workload == "A2-read") return "per-CPU counter: read, " + T + " thread(s), per thread";
  if (t.workload == "A2-write") return "per-CPU counter: write, " + T + " thread(s), per thread";
  if (t.workload == "A2-xchg") return "per-CPU counter: exchange, " + T + " thread(s), per thread";
  if (t.workload == "A2-cmpxchg")
    return "per-CPU counter: compare-exchange with +1, " + T + " thread(s), per thread";
  if (t.workload == "A2-add_return")
    return "per-CPU counter: add returning the new value, " + T + " thread(s), per thread";
  if (t.workload == "A4")
    return "gen_pool area: A1 by " + T + " threads sharing the region (aggregate)";
  if (t.workload == "A5")
    return "gen_pool area: A1 by " + T + " process(es) sharing one region (aggregate)";
  if (t.workload == "A3") return "percpu_pool area: alloc + cp_free_percpu of a 64 B area";
  return t.workload;
}

namespace {

std::string fmt(double v) {
  char b[32];
  if (v >= 1000)
    std::snprintf(b, sizeof b, "%.0f", v);
  else if (v >= 100)
    std::snprintf(b, sizeof b, "%.1f", v);
  else if (v >= 10)
    std::snprintf(b, sizeof b, "%.2f", v);
  else
    std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

std::string tick(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

std::string jstr(const std::string &s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\')
      o += '\\', o += char(c);
    else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else
      o += char(c);
  }
  return o + "\"";
}

std::string jnum(double v) {
  if (!std::isfinite(v)) return "null";
  char b[40];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

std::string xml(const std::string &s) {
  std::string o;
  for (char c : s) {
    if (c == '<')
      o += "&lt;";
    else if (c == '>')
      o += "&gt;";
    else if (c == '&')
      o += "&amp;";
    else
      o += c;
  }
  return o;
}

// The rows of one task, fastest first; with_stalled adds the rows that have no figure (every
// run of theirs stalled) at the end.
std::vector<const Row *> rows_of(const Report &r, const std::string &task_id,
                                 bool with_stalled = false) {
  std::vector<const Row *> v;
  for (const Row &x : r.rows)
    if (x.task.id() == task_id && (x.median > 0 || with_stalled)) v.push_back(&x);
  std::stable_sort(v.begin(), v.end(), [](const Row *a, const Row *b) {
    if ((a->median > 0) != (b->median > 0)) return a->median > 0;
    return a->median < b->median;
  });
  return v;
}

const char *color_of(Kind k) {
  switch (k) {
    case Kind::corepool:
      return "#1f6fb4";
    case Kind::peer:
      return "#e08a1e";
    case Kind::bound:
      return "#3a9a3a";
  }
  return "#888";
}

// Thread counts of the scaling tasks and, per contender, ns/pair at each.
struct Scaling {
  std::vector<int> threads;
  std::vector<std::string> names;
  std::map<std::string, std::map<int, double>> ns;
  std::map<std::string, Kind> kind;
};
Scaling scaling_of(const Report &r) {
  Scaling s;
  std::set<int> ts;
  for (const Row &x : r.rows)
    if ((x.task.workload == "W4" || x.task.workload == "W5") && x.median > 0) {
      ts.insert(x.task.threads);
      if (!s.ns.count(x.contender)) s.names.push_back(x.contender);
      s.ns[x.contender][x.task.threads] = x.median;
      s.kind[x.contender] = x.kind;
    }
  s.threads.assign(ts.begin(), ts.end());
  return s;
}

}  // namespace

void print_tables(const Report &r, FILE *out) {
  std::fprintf(out, "corepool-bench on %s, %s cores online, %s, glibc %s, %s, cpu id: %s\n",
               r.machine.at("cpu_model").c_str(), r.machine.at("cores_online").c_str(),
               r.machine.at("kernel").c_str(), r.machine.at("glibc").c_str(),
               r.machine.at("compiler").c_str(), r.machine.at("cpu_id_source").c_str());
  std::fprintf(out,
               "object size %s B, median of %s to %s repetitions (min-max shown), %s s per "
               "figure (W3-W5: x %s), %s\n",
               r.params.at("size").c_str(), r.params.at("reps").c_str(),
               r.params.at("max_reps").c_str(), r.params.at("duration_s").c_str(),
               r.params.at("long_scale").c_str(), r.params.at("isolation").c_str());
  std::fprintf(out,
               "speedup = best peer's median / this median (> 1: faster than every peer);\n"
               "x bound = this median / the lower bound's median (1 = at the bound);\n"
               "spread = interquartile range / median over the repetitions; '!' marks a "
               "spread above 10%%:\n"
               "do not compare that figure closely\n");
  for (const Task &t : r.tasks) {
    auto v = rows_of(r, t.id(), true);
    if (v.empty()) continue;
    std::fprintf(out, "\n%s  %s  [%s]\n", t.id().c_str(), describe_task(t).c_str(),
                 unit_of(t.workload));
    std::fprintf(out, "  %-26s %-8s %9s %19s %7s %4s %9s %8s %8s\n", "contender", "kind", "median",
                 "min - max", "spread", "reps", "Mops/s", "speedup", "x bound");
    for (const Row *x : v) {
      if (x->median <= 0) {
        std::fprintf(out, "  %-26s %-8s %9s  stalled: cut off after %llu pairs\n",
                     x->contender.c_str(), kind_name(x->kind), "-",
                     (unsigned long long)x->stalled_ops);
        continue;
      }
      std::string mm = fmt(x->min) + " - " + fmt(x->max);
      char spr[16];
      std::snprintf(spr, sizeof spr, "%.0f%%%s", 100 * x->spread, x->wide ? "!" : "");
      double mops = 1e3 / x->median;
      std::string sp = x->speedup_vs_best_peer > 0 ? fmt(x->speedup_vs_best_peer) + "x" : "-";
      std::string lb = x->x_lower_bound > 0 ? fmt(x->x_lower_bound) : "-";
      std::fprintf(out, "  %-26s %-8s %9s %19s %7s %4zu %9s %8s %8s", x->contender.c_str(),
                   kind_name(x->kind), fmt(x->median).c_str(), mm.c_str(), spr, x->samples.size(),
                   fmt(mops).c_str(), sp.c_str(), lb.c_str());
      if (x->stalled)
        std::fprintf(out, "  (one run stalled after %llu pairs)",
                     (unsigned long long)x->stalled_ops);
      if (x->extra >= 0)
        std::fprintf(out, x->task.workload == "W3" ? "  same CPU %.0f%%" : "  empty %.1f%%",
                     100 * x->extra);
      if (x->failures)
        std::fprintf(out, "  (%llu retried bursts)", (unsigned long long)x->failures);
      std::fprintf(out, "\n");
    }
  }
  Scaling s = scaling_of(r);
  if (!s.threads.empty()) {
    std::fprintf(out, "\nScaling (W2 on T threads): aggregate Mpairs/s, and throughput ratios\n");
    std::fprintf(out, "  %-26s", "contender");
    for (int t : s.threads) std::fprintf(out, "   T=%-4d", t);
    bool has1 = std::count(s.threads.begin(), s.threads.end(), 1),
         has2 = std::count(s.threads.begin(), s.threads.end(), 2);
    if (has1 && has2) std::fprintf(out, " %8s", "T2/T1");
    if (has2)
      for (int t : s.threads)
        if (t > 2) std::fprintf(out, "  T%d/T2%s", t, t < 10 ? " " : "");
    std::fprintf(out, "\n");
    for (const std::string &n : s.names) {
      auto &m = s.ns[n];
      std::fprintf(out, "  %-26s", n.c_str());
      for (int t : s.threads) std::fprintf(out, " %8s", m.count(t) ? fmt(1e3 / m[t]).c_str() : "-");
      if (has1 && has2)
        std::fprintf(out, " %8s", m.count(1) && m.count(2) ? fmt(m[1] / m[2]).c_str() : "-");
      if (has2)
        for (int t : s.threads)
          if (t > 2)
            std::fprintf(out, " %8s", m.count(2) && m.count(t) ? fmt(m[2] / m[t]).c_str() : "-");
      std::fprintf(out, "\n");
    }
  }
  bool any = false;
  for (const ContenderStatus &c : r.contenders)
    if (c.status == "missing" || c.status == "failed") {
      if (!any) std::fprintf(out, "\nNot measured:\n");
      any = true;
      std::fprintf(out, "  %-26s %s: %s\n", c.name.c_str(), c.status.c_str(), c.reason.c_str());
    }
}

bool write_json(const Report &r, const std::string &path) {
  std::ofstream f(path);
  if (!f) return false;
  f << "{\n  \"tool\": \"corepool-bench\",\n  \"schema\": 1,\n  \"argv\": [";
  for (size_t i = 0; i < r.argv.size(); i++) f << (i ? ", " : "") << jstr(r.argv[i]);
  f << "],\n  \"wall_s\": " << jnum(r.wall_s) << ",\n  \"machine\": {";
  bool first = true;
  for (auto &[k, v] : r.machine)
    f << (first ? "" : ",") << "\n    " << jstr(k) << ": " << jstr(v), first = false;
  f << "\n  },\n  \"params\": {";
  first = true;
  for (auto &[k, v] : r.params)
    f << (first ? "" : ",") << "\n    " << jstr(k) << ": " << jstr(v), first = false;
  f << "\n  },\n  \"tasks\": [";
  for (size_t i = 0; i < r.tasks.size(); i++) {
    const Task &t = r.tasks[i];
    f << (i ? "," : "") << "\n    {\"task\": " << jstr(t.id())
      << ", \"workload\": " << jstr(t.workload) << ", \"threads\": " << t.threads
      << ", \"unit\": " << jstr(unit_of(t.workload))
      << ", \"description\": " << jstr(describe_task(t)) << "}";
  }
  f << "\n  ],\n  \"contenders\": [";
  for (size_t i = 0; i < r.contenders.size(); i++) {
    const ContenderStatus &c = r.contenders[i];
    f << (i ? "," : "") << "\n    {\"name\": " << jstr(c.name) << ", \"family\": " << jstr(c.family)
      << ", \"kind\": " << jstr(kind_name(c.kind)) << ", \"status\": " << jstr(c.status)
      << ", \"reason\": " << jstr(c.reason) << ", \"config\": " << jstr(c.config)
      << ", \"workloads\": [";
    for (size_t k = 0; k < c.workloads.size(); k++) f << (k ? ", " : "") << jstr(c.workloads[k]);
    f << "], \"stalled\": [";
    for (size_t k = 0; k < c.stalled.size(); k++) f << (k ? ", " : "") << jstr(c.stalled[k]);
    f << "]}";
  }
  f << "\n  ],\n  \"results\": [";
  for (size_t i = 0; i < r.rows.size(); i++) {
    const Row &x = r.rows[i];
    f << (i ? "," : "") << "\n    {\"task\": " << jstr(x.task.id())
      << ", \"workload\": " << jstr(x.task.workload) << ", \"threads\": " << x.task.threads
      << ", \"contender\": " << jstr(x.contender) << ", \"kind\": " << jstr(kind_name(x.kind))
      << ", \"unit\": " << jstr(unit_of(x.task.workload)) << ", \"median\": " << jnum(x.median)
      << ", \"min\": " << jnum(x.min) << ", \"max\": " << jnum(x.max)
      << ", \"mops\": " << (x.median > 0 ? jnum(1e3 / x.median) : "null") << ", \"samples\": [";
    for (size_t k = 0; k < x.samples.size(); k++) f << (k ? ", " : "") << jnum(x.samples[k]);
    f << "], \"spread\": " << jnum(x.spread) << ", \"wide\": " << (x.wide ? "true" : "false")
      << ", \"stalled\": " << (x.stalled ? "true" : "false");
    if (x.stalled)
      f << ", \"stalled_pairs\": " << x.stalled_ops
        << ", \"stalled_ns\": " << (x.stalled_ns > 0 ? jnum(x.stalled_ns) : "null");
    f << ", \"failures\": " << x.failures;
    if (x.extra >= 0)
      f << (x.task.workload == "W3" ? ", \"same_cpu_fraction\": " : ", \"empty_fraction\": ")
        << jnum(x.extra);
    f << ", \"best_peer\": " << jstr(x.best_peer) << ", \"speedup_vs_best_peer\": "
      << (x.speedup_vs_best_peer > 0 ? jnum(x.speedup_vs_best_peer) : "null")
      << ", \"lower_bound\": " << jstr(x.lower_bound)
      << ", \"x_lower_bound\": " << (x.x_lower_bound > 0 ? jnum(x.x_lower_bound) : "null") << "}";
  }
  f << "\n  ]\n}\n";
  return bool(f);
}

bool write_csv(const Report &r, const std::string &path) {
  std::ofstream f(path);
  if (!f) return false;
  f << "# corepool-bench";
  for (auto &[k, v] : r.machine) f << "; " << k << "=" << v;
  f << "\ntask,workload,threads,contender,kind,unit,median,min,max,mops,reps,failures,"
       "best_peer,speedup_vs_best_peer,lower_bound,x_lower_bound,empty_fraction,spread,stalled,"
       "same_cpu_fraction\n";
  for (const Row &x : r.rows)
    f << x.task.id() << "," << x.task.workload << "," << x.task.threads << "," << x.contender << ","
      << kind_name(x.kind) << "," << unit_of(x.task.workload) << "," << jnum(x.median) << ","
      << jnum(x.min) << "," << jnum(x.max) << "," << (x.median > 0 ? jnum(1e3 / x.median) : "")
      << "," << x.samples.size() << "," << x.failures << "," << x.best_peer << ","
      << (x.speedup_vs_best_peer > 0 ? jnum(x.speedup_vs_best_peer) : "") << "," << x.lower_bound
      << "," << (x.x_lower_bound > 0 ? jnum(x.x_lower_bound) : "") << ","
      << (x.extra >= 0 && x.task.workload != "W3" ? jnum(x.extra) : "") << "," << jnum(x.spread)
      << "," << (x.stalled ? "true" : "false") << ","
      << (x.extra >= 0 && x.task.workload == "W3" ? jnum(x.extra) : "") << "\n";
  return bool(f);
}

namespace {

std::string file_of(const Task &t) {
  std::string s = t.id();
  for (char &c : s)
    if (c == '/' || c == '=') c = '-';
  return "bars-" + s + ".svg";
}

void svg_bars(const Report &r, const Task &t, const std::string &path) {
  auto v = rows_of(r, t.id());
  const int left = 230, width = 900, right = 90, top = 50, rowh = 22;
  const int plotw = width - left - right;
  const int height = top + int(v.size()) * rowh + 50;
  double lo = 1e300, hi = 0;
  for (auto *x : v) lo = std::min(lo, x->min), hi = std::max(hi, x->max);
  double l0 = std::floor(std::log10(lo)), l1 = std::ceil(std::log10(hi));
  if (l1 <= l0) l1 = l0 + 1;
  auto X = [&](double val) { return left + (std::log10(val) - l0) / (l1 - l0) * plotw; };
  std::ofstream f(path);
  f << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
    << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' "
       "fill='white'/>\n";
  f << "<text x='10' y='20' font-size='15' font-weight='bold'>"
    << xml(t.id() + ": " + describe_task(t)) << "</text>\n<text x='10' y='38' fill='#555'>"
    << unit_of(t.workload) << ", log scale, lower is better; bar = median, whisker = min-max of "
    << r.params.at("reps") << " repetitions; " << xml(r.machine.at("cpu_model")) << ", "
    << r.machine.at("cores_online") << " cores</text>\n";
  for (double e = l0; e <= l1 + 1e-9; e++) {
    for (int m = 1; m < 10; m++) {
      double val = std::pow(10.0, e) * m;
      if (std::log10(val) > l1 + 1e-9) break;
      double x = X(val);
      f << "<line x1='" << x << "' y1='" << top - 5 << "' x2='" << x << "' y2='"
        << top + int(v.size()) * rowh << "' stroke='" << (m == 1 ? "#bbb" : "#eee") << "'/>\n";
      if (m == 1 || m == 2 || m == 5)
        f << "<text x='" << x << "' y='" << top + int(v.size()) * rowh + 16
          << "' text-anchor='middle' fill='#555'>" << tick(val) << "</text>\n";
    }
  }
  int y = top;
  for (auto *x : v) {
    double xm = X(x->median);
    f << "<text x='" << left - 6 << "' y='" << y + 15 << "' text-anchor='end'>" << xml(x->contender)
      << "</text>\n";
    f << "<rect x='" << left << "' y='" << y + 3 << "' width='" << std::max(1.0, xm - left)
      << "' height='" << rowh - 6 << "' fill='" << color_of(x->kind) << "'/>\n";
    f << "<line x1='" << X(x->min) << "' y1='" << y + rowh / 2 << "' x2='" << X(x->max) << "' y2='"
      << y + rowh / 2 << "' stroke='black'/>\n";
    f << "<text x='" << std::max(xm, X(x->max)) + 5 << "' y='" << y + 15 << "'>" << fmt(x->median)
      << "</text>\n";
    y += rowh;
  }
  int ly = top + int(v.size()) * rowh + 36;
  const char *names[] = {"corepool", "peer", "lower bound"};
  Kind kinds[] = {Kind::corepool, Kind::peer, Kind::bound};
  for (int i = 0; i < 3; i++) {
    f << "<rect x='" << left + i * 120 << "' y='" << ly - 10 << "' width='12' height='12' fill='"
      << color_of(kinds[i]) << "'/><text x='" << left + i * 120 + 16 << "' y='" << ly << "'>"
      << names[i] << "</text>\n";
  }
  f << "</svg>\n";
}

void svg_threads(const Report &r, const std::string &path) {
  Scaling s = scaling_of(r);
  const int left = 70, top = 50, plotw = 560, ploth = 380, legendw = 260;
  const int width = left + plotw + 20 + legendw, height = top + ploth + 60;
  double lo = 1e300, hi = 0;
  for (auto &[n, m] : s.ns)
    for (auto &[t, ns] : m) lo = std::min(lo, 1e3 / ns), hi = std::max(hi, 1e3 / ns);
  double l0 = std::floor(std::log10(lo)), l1 = std::ceil(std::log10(hi));
  if (l1 <= l0) l1 = l0 + 1;
  size_t nt = s.threads.size();
  auto X = [&](size_t i) { return left + (nt > 1 ? double(i) / double(nt - 1) : 0.5) * plotw; };
  auto Y = [&](double mops) { return top + ploth - (std::log10(mops) - l0) / (l1 - l0) * ploth; };
  std::ofstream f(path);
  f << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
    << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' "
       "fill='white'/>\n";
  f << "<text x='10' y='20' font-size='15' font-weight='bold'>Throughput against threads (W2 burst "
       "of 256 on every thread)</text>\n<text x='10' y='38' fill='#555'>aggregate million "
       "get+put pairs per second, log scale, higher is better; "
    << r.machine.at("cores_online") << " cores online (beyond them: oversubscribed)</text>\n";
  for (double e = l0; e <= l1 + 1e-9; e++)
    for (int m = 1; m < 10; m++) {
      double val = std::pow(10.0, e) * m;
      if (std::log10(val) > l1 + 1e-9) break;
      double y = Y(val);
      f << "<line x1='" << left << "' y1='" << y << "' x2='" << left + plotw << "' y2='" << y
        << "' stroke='" << (m == 1 ? "#bbb" : "#eee") << "'/>\n";
      if (m == 1 || m == 2 || m == 5)
        f << "<text x='" << left - 6 << "' y='" << y + 4 << "' text-anchor='end' fill='#555'>"
          << tick(val) << "</text>\n";
    }
  for (size_t i = 0; i < nt; i++)
    f << "<text x='" << X(i) << "' y='" << top + ploth + 18
      << "' text-anchor='middle'>T=" << s.threads[i] << "</text>\n";
  static const char *pal[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                              "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939",
                              "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354"};
  int li = 0;
  for (const std::string &n : s.names) {
    const char *col = pal[li % (sizeof pal / sizeof *pal)];
    Kind k = s.kind[n];
    int sw = k == Kind::corepool ? 3 : 1;
    std::string dash = k == Kind::bound ? " stroke-dasharray='5,3'" : "";
    std::ostringstream pts;
    for (size_t i = 0; i < nt; i++)
      if (s.ns[n].count(s.threads[i])) pts << X(i) << "," << Y(1e3 / s.ns[n][s.threads[i]]) << " ";
    f << "<polyline fill='none' stroke='" << col << "' stroke-width='" << sw << "'" << dash
      << " points='" << pts.str() << "'/>\n";
    for (size_t i = 0; i < nt; i++)
      if (s.ns[n].count(s.threads[i]))
        f << "<circle cx='" << X(i) << "' cy='" << Y(1e3 / s.ns[n][s.threads[i]])
          << "' r='3' fill='" << col << "'/>\n";
    int ly = top + li * 18;
    f << "<line x1='" << left + plotw + 20 << "' y1='" << ly << "' x2='" << left + plotw + 44
      << "' y2='" << ly << "' stroke='" << col << "' stroke-width='" << sw << "'" << dash
      << "/><text x='" << left + plotw + 50 << "' y='" << ly + 4 << "'>" << xml(n)
      << (k == Kind::corepool ? " (corepool)" : "") << "</text>\n";
    li++;
  }
  f << "</svg>\n";
}

}  // namespace

std::vector<std::string> write_svgs(const Report &r, const std::string &dir) {
  std::vector<std::string> files;
  for (const Task &t : r.tasks) {
    if (rows_of(r, t.id()).empty()) continue;
    std::string p = dir + "/" + file_of(t);
    svg_bars(r, t, p);
    files.push_back(p);
  }
  if (!scaling_of(r).threads.empty()) {
    std::string p = dir + "/threads.svg";
    svg_threads(r, p);
    files.insert(files.begin(), p);
  }
  // One page with every plot and the tables.
  std::ofstream h(dir + "/index.html");
  h << "<!doctype html><meta charset='utf-8'><title>corepool-bench</title><body "
       "style='font-family:sans-serif'><h1>corepool-bench</h1>\n";
  for (const std::string &p : files) h << "<p><img src='" << p.substr(dir.size() + 1) << "'></p>\n";
  char *buf = nullptr;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (m) {
    print_tables(r, m);
    std::fclose(m);
    h << "<pre>" << xml(std::string(buf, len)) << "</pre>\n";
    std::free(buf);
  }
  h << "</body>\n";
  return files;
}

}  // namespace cpb
