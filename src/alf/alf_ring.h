// The ALF queue as the library uses it internally: corepool::alf_ring<void *> with the
// library's fault-injection points (CP_INJECT). Pools built on the queue (qmempool) call it
// directly, inline, without the C API's argument checks.
#pragma once

#include <corepool/alf_queue.hpp>

#include "inject.h"

namespace corepool::alf {
struct lib_inject {
  static void point([[maybe_unused]] const char *name) noexcept { CP_INJECT(name); }
};
using ring = alf_ring<void *, lib_inject>;
}  // namespace corepool::alf
