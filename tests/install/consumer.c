#include <corepool/cpu.h>
#include <corepool/error.h>
#include <stdio.h>

int main(void) {
  unsigned cpu = cp_current_cpu();
  printf("c consumer: source %s, cpu %u of %u, last error '%s'\n",
         cp_cpu_id_source_name(cp_cpu_id_source()), cpu, cp_nr_cpu_ids(), cp_last_error());
  return cpu < cp_nr_cpu_ids() ? 0 : 1;
}
