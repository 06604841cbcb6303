#include <corepool/cpu.hpp>

#include <cstdio>
#include <string>

int main() {
  unsigned cpu = corepool::current_cpu();
  std::printf("cmake consumer: source %s, cpu %u of %u\n",
              std::string(corepool::to_string(corepool::cpu_id_source())).c_str(), cpu,
              corepool::nr_cpu_ids());
  return cpu < corepool::nr_cpu_ids() ? 0 : 1;
}
