// The library's one error-message mechanism (see corepool/error.h).
#pragma once

namespace corepool {
// Records a static message for the calling thread and returns `err` (a negative errno),
// so a failing path reads `return set_error(-EINVAL, "localq_sz must be a power of two");`.
// Async-signal-safe: stores one pointer.
int set_error(int err, const char *static_msg) noexcept;
}  // namespace corepool
