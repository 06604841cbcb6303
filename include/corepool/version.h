/* corepool/version.h - the version of these headers, and of the library linked.
 *
 * COREPOOL_VERSION encodes MAJOR * 10000 + MINOR * 100 + PATCH (0.1.0 is 100), so
 * `#if COREPOOL_VERSION >= 100` tests for a release. cp_version() returns the same number
 * for the library actually linked (a shared library may be newer than the headers). Within
 * one MAJOR version (and, while MAJOR is 0, one MINOR version) later libraries keep the C
 * API of earlier ones.
 */
#ifndef COREPOOL_VERSION_H
#define COREPOOL_VERSION_H

#define COREPOOL_VERSION_MAJOR 0
#define COREPOOL_VERSION_MINOR 1
#define COREPOOL_VERSION_PATCH 0
#define COREPOOL_VERSION \
  (COREPOOL_VERSION_MAJOR * 10000 + COREPOOL_VERSION_MINOR * 100 + COREPOOL_VERSION_PATCH)
#define COREPOOL_VERSION_STRING "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

/* COREPOOL_VERSION of the library linked. Thread-safe, async-signal-safe. */
int cp_version(void);
/* COREPOOL_VERSION_STRING of the library linked (a static string). Async-signal-safe. */
const char *cp_version_string(void);

#ifdef __cplusplus
}
#endif
#endif /* COREPOOL_VERSION_H */
