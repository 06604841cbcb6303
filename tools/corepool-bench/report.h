// Results of one corepool-bench run and the writers (terminal tables, JSON, CSV, SVG).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "bench.h"

namespace cpb {

struct Row {
  Task task;
  std::string contender;
  Kind kind = Kind::peer;
  std::vector<double> samples;          // one per repetition (ns per pair/object/op)
  double median = 0, min = 0, max = 0;  // 0 when no repetition completed (stalled)
  double spread = 0;                    // (p75 - p25) / median of the samples
  bool wide = false;                    // spread above 10%: do not compare this figure closely
  bool stalled = false;                 // a run was still going stall_grace_s after its stop flag
  uint64_t stalled_ops = 0;             // pairs that run had completed
  double stalled_ns = 0;                // its time up to the stop flag / those pairs (0: none)
  uint64_t failures = 0;
  double extra = -1;                // A3: fraction of allocs that found the pool empty (median)
  std::string best_peer;            // fastest peer in this task
  double speedup_vs_best_peer = 0;  // best peer's median / this median (> 1: faster)
  std::string lower_bound;          // the bound that applies to this task
  double x_lower_bound = 0;         // this median / the bound's median (>= 1 normally)
};

struct ContenderStatus {
  std::string name, family, config, status, reason;
  Kind kind = Kind::peer;
  std::vector<std::string> workloads;
  std::vector<std::string> stalled;  // tasks cut off as stalled
};

struct Report {
  std::map<std::string, std::string> machine;  // ordered keys
  std::map<std::string, std::string> params;
  std::vector<std::string> argv;
  std::vector<Task> tasks;
  std::vector<ContenderStatus> contenders;
  std::vector<Row> rows;
  double wall_s = 0;
};

const char *unit_of(const std::string &workload);
std::string describe_task(const Task &t);
void print_tables(const Report &r, FILE *out);
bool write_json(const Report &r, const std::string &path);
bool write_csv(const Report &r, const std::string &path);
// Returns the files written.
std::vector<std::string> write_svgs(const Report &r, const std::string &dir);

}  // namespace cpb
