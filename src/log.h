/* Error and progress reporting: the first error of an operation is kept as one line
 * naming what failed and where; progress lines go to stderr with -v. */
#ifndef CRYO_LOG_H
#define CRYO_LOG_H

#include <stdarg.h>

extern int log_level;	/* 0 quiet, 1 info (-v), 2 debug (-vv) */

/* Record the error (unless one is already recorded) and return -1. */
int cr_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, with ": strerror(errno)" appended. */
int cr_perr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Copy `in` to `out` as one line: control characters become \xNN. Pure. */
void cr_escape_line(const char *in, char *out, size_t len);
/* The recorded error, or NULL. */
const char *cr_last_error(void);
void cr_err_reset(void);
/* True if an error is already recorded. */
int cr_err_set(void);

void pr_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pr_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pr_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
