// Writing to a file descriptor the caller owns (reports, dumps).
#pragma once

#include <cstddef>

namespace corepool::platform {

// Writes all `len` bytes of `buf` to `fd`, continuing after partial writes and EINTR.
// Returns 0, or the negative errno of the first failing write (the bytes before it stay
// written). May block (a pipe, a slow device); async-signal-safe (write(2) only).
int write_all(int fd, const void *buf, size_t len) noexcept;

}  // namespace corepool::platform
