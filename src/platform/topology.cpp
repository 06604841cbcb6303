#include "platform/topology.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if COREPOOL_HAVE_NUMA
#include <numa.h>
#endif

namespace corepool::platform {
namespace {

constexpr unsigned kMaxCpus = 8192;  // bound on ids we track (Linux NR_CPUS max)
constexpr unsigned kWords = kMaxCpus / 64;

struct topology {
  unsigned nr_ids = 1;
  unsigned long long possible[kWords] = {1};
  short node[kMaxCpus] = {};
  int nr_nodes = 1;
  size_t line = 64;
};

topology g_topo;
std::atomic<int> g_state{0};  // 0 not read, 1 reading, 2 ready
unsigned g_override = 0;

ssize_t read_file(const char *path, char *buf, size_t len) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = ::read(fd, buf, len - 1);
  ::close(fd);
  if (n < 0) return -1;
  buf[n] = 0;
  return n;
}

int node_from_sysfs(unsigned cpu) {
  char path[96];
  std::snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%u", cpu);
  DIR *d = ::opendir(path);
  if (!d) return 0;
  int node = 0;
  while (dirent *e = ::readdir(d)) {
    if (std::strncmp(e->d_name, "node", 4) == 0 && e->d_name[4] >= '0' && e->d_name[4] <= '9') {
      node = std::atoi(e->d_name + 4);
      break;
    }
  }
  ::closedir(d);
  return node;
}

void read_topology() {
  topology &t = g_topo;
  char buf[4096];
  int n = -1;
  if (read_file("/sys/devices/system/cpu/possible", buf, sizeof buf) > 0) {
    std::memset(t.possible, 0, sizeof t.possible);
    n = parse_cpu_list(buf, t.possible, kMaxCpus);
  }
  if (n <= 0) {
    long conf = ::sysconf(_SC_NPROCESSORS_CONF);
    n = conf > 0 ? static_cast<int>(conf < kMaxCpus ? conf : kMaxCpus) : 1;
    std::memset(t.possible, 0, sizeof t.possible);
    for (int i = 0; i < n; i++) t.possible[i / 64] |= 1ull << (i % 64);
  }
  t.nr_ids = static_cast<unsigned>(n);
  int max_node = 0;
#if COREPOOL_HAVE_NUMA
  bool numa = numa_available() >= 0;
#else
  bool numa = false;
#endif
  for (unsigned c = 0; c < t.nr_ids; c++) {
    if (!(t.possible[c / 64] >> (c % 64) & 1)) continue;
    int node = 0;
#if COREPOOL_HAVE_NUMA
    if (numa) node = numa_node_of_cpu(static_cast<int>(c));
#endif
    if (!numa) node = node_from_sysfs(c);
    if (node < 0) node = 0;
    t.node[c] = static_cast<short>(node);
    if (node > max_node) max_node = node;
  }
  t.nr_nodes = max_node + 1;
  long line = ::sysconf(_SC_LEVEL1_DCACHE_LINESIZE);
  if (line <= 0 && read_file("/sys/devices/system/cpu/cpu0/cache/index0/coherency_line_size", buf,
                             sizeof buf) > 0)
    line = std::atol(buf);
  t.line = line > 0 ? static_cast<size_t>(line) : 64;
  if (g_override > t.nr_ids) {
    for (unsigned c = t.nr_ids; c < g_override; c++) t.possible[c / 64] |= 1ull << (c % 64);
    t.nr_ids = g_override;
  }
}

const topology &topo() noexcept {
  if (__builtin_expect(g_state.load(std::memory_order_acquire) == 2, 1)) return g_topo;
  int expected = 0;
  if (g_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    read_topology();
    g_state.store(2, std::memory_order_release);  // pairs with the acquire loads above
  } else {
    while (g_state.load(std::memory_order_acquire) != 2) {
      // Another thread is reading sysfs (microseconds, load-time constructor normally).
    }
  }
  return g_topo;
}

__attribute__((constructor)) void topology_init() {
  (void)topo();
}

}  // namespace

int parse_cpu_list(const char *s, unsigned long long *bits, unsigned nbits) noexcept {
  int highest = -1;
  while (*s && *s != '\n') {
    char *end;
    unsigned long a = std::strtoul(s, &end, 10);
    if (end == s) return -1;
    unsigned long b = a;
    s = end;
    if (*s == '-') {
      b = std::strtoul(s + 1, &end, 10);
      if (end == s + 1 || b < a) return -1;
      s = end;
    }
    if (b >= nbits) return -1;
    for (unsigned long i = a; i <= b; i++) bits[i / 64] |= 1ull << (i % 64);
    if (static_cast<int>(b) > highest) highest = static_cast<int>(b);
    if (*s == ',')
      s++;
    else if (*s && *s != '\n')
      return -1;
  }
  return highest + 1;
}

unsigned nr_cpu_ids() noexcept {
  return topo().nr_ids;
}
bool cpu_possible(unsigned cpu) noexcept {
  const topology &t = topo();
  return cpu < t.nr_ids && (t.possible[cpu / 64] >> (cpu % 64) & 1);
}
int cpu_to_node(unsigned cpu) noexcept {
  const topology &t = topo();
  return cpu < t.nr_ids ? t.node[cpu] : 0;
}
int nr_nodes() noexcept {
  return topo().nr_nodes;
}
size_t cache_line_size() noexcept {
  return topo().line;
}

void testing::set_nr_cpu_ids(unsigned n) noexcept {
  if (n > kMaxCpus) n = kMaxCpus;
  g_override = n;
  topology &t = const_cast<topology &>(topo());
  for (unsigned c = t.nr_ids; c < n; c++) t.possible[c / 64] |= 1ull << (c % 64);
  if (n > t.nr_ids) t.nr_ids = n;
}

}  // namespace corepool::platform
