#include "error.h"

#include <corepool/error.h>

namespace corepool {
namespace {
__thread const char *t_last_error = nullptr;
}
int set_error(int err, const char *static_msg) noexcept {
  t_last_error = static_msg;
  return err;
}
}  // namespace corepool

extern "C" {
const char *cp_last_error(void) {
  const char *m = corepool::t_last_error;
  return m ? m : "";
}
void cp_clear_error(void) {
  corepool::t_last_error = nullptr;
}
}
