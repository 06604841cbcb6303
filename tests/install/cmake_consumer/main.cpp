#include <corepool/version.h>
#include <corepool/cpu.hpp>
#include <corepool/objpool.hpp>

#include <cstdio>
#include <memory_resource>
#include <string>
#include <vector>

int main() {
  unsigned cpu = corepool::current_cpu();
  std::printf("cmake consumer (%s): corepool %s, source %s, cpu %u of %u\n", CONSUMER_KIND,
              cp_version_string(),
              std::string(corepool::to_string(corepool::cpu_id_source())).c_str(), cpu,
              corepool::nr_cpu_ids());
  corepool::objpool_resource res(64, 64);
  std::pmr::vector<int> v(&res);
  for (int i = 0; i < 1000; i++) v.push_back(i);
  return cpu < corepool::nr_cpu_ids() && cp_version() == COREPOOL_VERSION && v[999] == 999 ? 0 : 1;
}
