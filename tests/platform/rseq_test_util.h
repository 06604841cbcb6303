// Helpers shared by the rseq primitive tests.
#pragma once

#include <gtest/gtest.h>

#include <corepool/cpu.h>

#include "platform/rseq.h"

namespace corepool::platform::test {

// Runs `op(cpu)` on the current CPU until it does not abort; -100 when rseq is off.
template <class Op>
int on_this_cpu(Op op) {
  for (;;) {
    int cpu = rseq_cpu_start();
    if (cpu < 0) return -100;
    int r = op(cpu);
    if (r != CP_RSEQ_ABORT) return r;
  }
}

}  // namespace corepool::platform::test

// Returns from the test when rseq is off. Not a skip: the source must then say so.
#define REQUIRE_RSEQ()                               \
  if (corepool::platform::rseq_cpu_start() < 0) {    \
    EXPECT_EQ(cp_cpu_id_source(), CP_CPU_ID_GETCPU); \
    return;                                          \
  }
