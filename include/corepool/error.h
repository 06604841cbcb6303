/* corepool/error.h - why the last call failed.
 *
 * Every corepool function reports failure with a negative errno value (or NULL + errno where
 * its header says so). Where a failure has several possible causes, the function also records
 * a short static message for the calling thread, read with cp_last_error(). This is the one
 * error-message mechanism of the library.
 */
#ifndef COREPOOL_ERROR_H
#define COREPOOL_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* The message of the calling thread's most recent failure, or "" if none. The string is
 * static (never freed, never changes). Thread-safe, async-signal-safe. */
const char *cp_last_error(void);
/* Forget the calling thread's last message. Async-signal-safe. */
void cp_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif /* COREPOOL_ERROR_H */
