/* Shared helpers of the unit tests: CHECK counts a check and prints one line per
 * failure; unit_done() prints the tally and gives the exit status. */
#ifndef CRYO_UNIT_H
#define CRYO_UNIT_H

#include <stdio.h>
#include <string.h>

#include "log.h"

static int unit_checks, unit_failed, unit_cases;

#define CHECK(cond, ...)						\
	do {								\
		unit_checks++;						\
		if (!(cond)) {						\
			unit_failed++;					\
			printf("FAIL %s:%d: ", __FILE__, __LINE__);	\
			printf(__VA_ARGS__);				\
			printf("\n");					\
		}							\
	} while (0)

/* Start a case: a clean error slot, counted. */
static inline void unit_case(void)
{
	unit_cases++;
	cr_err_reset();
}

/* Does the recorded error contain `s`? */
static inline int err_has(const char *s)
{
	const char *e = cr_last_error();

	return e && strstr(e, s);
}

static inline const char *err_text(void)
{
	const char *e = cr_last_error();

	return e ? e : "(none)";
}

static inline int unit_done(const char *name)
{
	printf("%s: %d cases, %d checks, %d failed\n", name, unit_cases, unit_checks,
	       unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
