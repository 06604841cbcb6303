// The public CPU API (corepool/cpu.h), defined by the platform's own (platform/cpu.h).
#include <corepool/cpu.h>

#include "platform/cpu.h"

namespace {
using corepool::platform::id_source;
static_assert(static_cast<int>(id_source::rseq_glibc) == CP_CPU_ID_RSEQ_GLIBC);
static_assert(static_cast<int>(id_source::rseq_own) == CP_CPU_ID_RSEQ_OWN);
static_assert(static_cast<int>(id_source::getcpu) == CP_CPU_ID_GETCPU);
}  // namespace

extern "C" {

enum cp_cpu_id_source cp_cpu_id_source(void) {
  return static_cast<enum cp_cpu_id_source>(corepool::platform::cpu_id_source());
}

const char *cp_cpu_id_source_name(enum cp_cpu_id_source src) {
  switch (src) {
    case CP_CPU_ID_RSEQ_GLIBC:
      return "rseq-glibc";
    case CP_CPU_ID_RSEQ_OWN:
      return "rseq-own";
    case CP_CPU_ID_GETCPU:
      return "getcpu";
  }
  return "unknown";
}

bool cp_rseq_enabled(void) {
  return corepool::platform::rseq_enabled();
}

unsigned cp_current_cpu(void) {
  return corepool::platform::current_cpu();
}

unsigned cp_nr_cpu_ids(void) {
  return corepool::platform::nr_cpu_ids();
}
bool cp_cpu_possible(unsigned cpu) {
  return corepool::platform::cpu_possible(cpu);
}
int cp_cpu_to_node(unsigned cpu) {
  return corepool::platform::cpu_to_node(cpu);
}
int cp_nr_nodes(void) {
  return corepool::platform::nr_nodes();
}
size_t cp_cache_line_size(void) {
  return corepool::platform::cache_line_size();
}

}  // extern "C"
