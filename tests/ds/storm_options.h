// The ds structures' chaos runs: every worker migrated, parked and interrupted by the
// signal storm, under one 30 s deadline.
#pragma once

#include <chrono>

#include "chaos.h"

namespace corepool::test {
inline corepool::chaos::options storm_and_park(int threads) {
  corepool::chaos::options opt;
  opt.threads = threads;
  opt.park = true;
  opt.signal_storm = true;
  opt.deadline = std::chrono::milliseconds(30000);
  return opt;
}
}  // namespace corepool::test
