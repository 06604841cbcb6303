// The ALF queue as the library uses it internally: ds::alf_ring (ds/alf_ring.h, the one
// implementation). Pools built on the queue (qmempool) call it directly, inline, without
// the C API's argument checks.
#pragma once

#include "ds/alf_ring.h"

namespace corepool::alf {
using ring = corepool::ds::alf_ring;
}  // namespace corepool::alf
