// Contender registry and small shared pieces of corepool-bench.
#include <cstdlib>

#include "bench.h"

namespace cpb {

const char *kind_name(Kind k) {
  switch (k) {
    case Kind::corepool:
      return "corepool";
    case Kind::peer:
      return "peer";
    case Kind::bound:
      return "bound";
  }
  return "?";
}

std::string Task::id() const {
  if (workload == "W4" || workload == "W5" || workload.rfind("A2", 0) == 0 || workload == "A4")
    return workload + "/T=" + std::to_string(threads);
  if (workload == "A5") return workload + "/P=" + std::to_string(threads);
  return workload;
}

std::vector<ContenderDesc> &registry() {
  static std::vector<ContenderDesc> r;
  return r;
}

void add_contender(ContenderDesc d) {
  registry().push_back(std::move(d));
}

void add_missing(const std::string &name, const std::string &family, Kind kind,
                 const std::vector<std::string> &workloads, const std::string &why) {
  ContenderDesc d;
  d.name = name;
  d.family = family;
  d.kind = kind;
  d.workloads = workloads;
  d.available = false;
  d.missing = why;
  add_contender(std::move(d));
}

bool Slab::init(size_t size, unsigned count) {
  stride = (size + 15) & ~size_t(15);  // malloc's alignment for every object
  n = count;
  void *m = nullptr;
  if (posix_memalign(&m, 64, stride * count) != 0) return false;
  std::memset(m, 0, stride * count);
  mem.reset(static_cast<unsigned char *>(m));
  return true;
}

}  // namespace cpb
