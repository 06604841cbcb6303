// File-descriptor output (fd.h).
#include "platform/fd.h"

#include <unistd.h>

#include <cerrno>

namespace corepool::platform {

int write_all(int fd, const void *buf, size_t len) noexcept {
  const char *p = static_cast<const char *>(buf);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -EIO;  // no progress: report it rather than spin
    p += n;
    len -= static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace corepool::platform
