#include <corepool/cpu.h>
#include <corepool/error.h>
#include <corepool/version.h>
#include <stdio.h>

int main(void) {
  unsigned cpu = cp_current_cpu();
  printf("c consumer: corepool %s, source %s, cpu %u of %u, last error '%s'\n", cp_version_string(),
         cp_cpu_id_source_name(cp_cpu_id_source()), cpu, cp_nr_cpu_ids(), cp_last_error());
  return cpu < cp_nr_cpu_ids() && cp_version() == COREPOOL_VERSION ? 0 : 1;
}
