#include "inject.h"

#ifdef COREPOOL_INJECT
extern "C" {
void (*cp_inject_hook)(const char *point) = nullptr;
}
#endif
