// CPU and NUMA topology, read once from sysfs (and libnuma where present).
// Part of the platform CPU API (platform/cpu.h), on which the public corepool/cpu.h is built.
#pragma once

#include <cstddef>

namespace corepool::platform {

unsigned nr_cpu_ids() noexcept;  // highest possible id + 1
bool cpu_possible(unsigned cpu) noexcept;
int cpu_to_node(unsigned cpu) noexcept;  // 0 when unknown
int nr_nodes() noexcept;                 // >= 1
size_t cache_line_size() noexcept;

// Parses a sysfs CPU list ("0-3,8,10-11") into a bitmap of `nbits` bits (bit i of word
// i / 64). Returns highest id + 1, or -1 on a malformed list. Exposed for tests.
int parse_cpu_list(const char *s, unsigned long long *bits, unsigned nbits) noexcept;

namespace testing {
// Pretend the machine has `n` possible CPUs (n >= the real count; extra ids are possible,
// never online, node 0). Call before any per-CPU structure is created; for tests of sparse
// or large CPU counts only.
void set_nr_cpu_ids(unsigned n) noexcept;
}  // namespace testing

}  // namespace corepool::platform
