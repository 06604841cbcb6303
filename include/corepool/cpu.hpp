// corepool/cpu.hpp - C++ view of corepool/cpu.h.
#pragma once

#include <corepool/cpu.h>

#include <string_view>

namespace corepool {

enum class cpu_source {
  rseq_glibc = CP_CPU_ID_RSEQ_GLIBC,
  rseq_own = CP_CPU_ID_RSEQ_OWN,
  getcpu = CP_CPU_ID_GETCPU,
};

/// The process's CPU-id source (chosen once, at load time).
inline cpu_source cpu_id_source() noexcept {
  return static_cast<cpu_source>(cp_cpu_id_source());
}
inline std::string_view to_string(cpu_source s) noexcept {
  return cp_cpu_id_source_name(static_cast<enum cp_cpu_id_source>(s));
}
/// A hint: the CPU the caller ran on during the call.
inline unsigned current_cpu() noexcept {
  return cp_current_cpu();
}
/// Highest possible CPU id + 1.
inline unsigned nr_cpu_ids() noexcept {
  return cp_nr_cpu_ids();
}

}  // namespace corepool
