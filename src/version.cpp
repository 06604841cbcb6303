// cp_version: the version this library was built as (corepool/version.h).
#include <corepool/version.h>

extern "C" {
int cp_version(void) {
  return COREPOOL_VERSION;
}
const char *cp_version_string(void) {
  return COREPOOL_VERSION_STRING;
}
}
