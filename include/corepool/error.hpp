// corepool/error.hpp - how the C++ wrappers report a failed C call (docs/cpp.md).
//
// A C call that returns a negative errno (or NULL with errno set) becomes a
// std::system_error whose code() is that errno in std::generic_category() and whose what()
// names the wrapper and carries cp_last_error(), the C library's message for this thread.
// std::bad_alloc is kept for one case only: an allocation call (pop, alloc, allocate) whose
// pool had nothing left, where the C call returns NULL for exactly that.
#pragma once

#include <corepool/error.h>

#include <string>
#include <system_error>

namespace corepool {

/// Throws std::system_error(err, generic_category(), "<where>: <cp_last_error()>"), err > 0
/// an errno value (a negative one is negated). Call cp_clear_error() before the C call so
/// that an older message is not reported.
[[noreturn]] inline void throw_error(int err, const char *where) {
  const char *why = cp_last_error();
  std::string what(where);
  if (why && *why) what.append(": ").append(why);
  throw std::system_error(err < 0 ? -err : err, std::generic_category(), what);
}

/// rc when rc >= 0; throws as throw_error(rc, where) when rc < 0.
inline int check(int rc, const char *where) {
  if (rc < 0) throw_error(rc, where);
  return rc;
}

}  // namespace corepool
