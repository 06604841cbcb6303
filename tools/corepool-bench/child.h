// Contenders that run in a helper process: allocators that replace malloc when linked, and
// (by default) every other contender, each repetition in a fresh process.
#pragma once
#include <string>
#include <vector>

#include "bench.h"

namespace cpb {
// Registers `name`, run by the executable `helper` found next to corepool-bench.
void add_child_contender(const std::string &name, const std::string &family, Kind kind,
                         const std::string &config, const std::vector<std::string> &workloads,
                         const std::string &helper);
// The helper side: run contender `name` from this process's registry for the tasks given
// on the command line and print one line per task on stdout. Returns the exit status.
int child_main(int argc, char **argv);
std::string malloc_provider();
// A runner that runs contender `name` of corepool-bench's own registry in a fresh
// corepool-bench process per repetition, under the same deadline as the helpers.
std::unique_ptr<Runner> self_runner(const std::string &name);
std::string self_dir();
}  // namespace cpb
