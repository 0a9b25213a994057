/* Error and progress reporting: keeps the first error of an operation as one line,
 * prints progress to stderr according to the verbosity. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include "cryo.h"

#include "log.h"

int log_level;
static char first_error[1024];
static FILE *log_file;		/* -o: progress goes there instead of stderr */

static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;

/* One line, whatever a file name holds: control characters are written as \xNN. */
void cr_escape_line(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p && o + 5 < len; p++) {
		if (*p < 0x20 || *p == 0x7f)
			o += snprintf(out + o, len - o, "\\x%02x", *p);
		else
			out[o++] = *p;
	}
	out[o] = 0;
}

static void remember(const char *fmt, va_list ap, int errnum)
{
	char raw[sizeof(first_error)];
	size_t n;

	pthread_mutex_lock(&error_lock);
	if (!first_error[0]) {
		vsnprintf(raw, sizeof(raw), fmt, ap);
		n = strlen(raw);
		if (errnum && n < sizeof(raw))
			snprintf(raw + n, sizeof(raw) - n, ": %s", strerror(errnum));
		cr_escape_line(raw, first_error, sizeof(first_error));
	}
	pthread_mutex_unlock(&error_lock);
	if (log_level >= 2)
		fprintf(log_file ? log_file : stderr, "  error recorded: %s\n", first_error);
}

int cr_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	remember(fmt, ap, 0);
	va_end(ap);
	return -1;
}

int cr_perr(const char *fmt, ...)
{
	int errnum = errno;
	va_list ap;

	va_start(ap, fmt);
	remember(fmt, ap, errnum ? errnum : EIO);
	va_end(ap);
	errno = errnum;
	return -1;
}

const char *cr_last_error(void)
{
	return first_error[0] ? first_error : NULL;
}

int cr_err_set(void)
{
	return first_error[0] != 0;
}

void cr_err_reset(void)
{
	first_error[0] = 0;
}

static void print_line(const char *tag, const char *fmt, va_list ap)
{
	struct timespec ts;

	FILE *out = log_file ? log_file : stderr;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	fprintf(out, "(%5ld.%06ld) %s", (long)ts.tv_sec % 100000, ts.tv_nsec / 1000, tag);
	vfprintf(out, fmt, ap);
	fputc('\n', out);
}

void pr_info(const char *fmt, ...)
{
	va_list ap;

	if (log_level < 1)
		return;
	va_start(ap, fmt);
	print_line("", fmt, ap);
	va_end(ap);
}

void pr_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_level < 2)
		return;
	va_start(ap, fmt);
	print_line("  ", fmt, ap);
	va_end(ap);
}

void pr_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "cryo: warning: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	if (log_file) {
		va_start(ap, fmt);
		fprintf(log_file, "cryo: warning: ");
		vfprintf(log_file, fmt, ap);
		fputc('\n', log_file);
		va_end(ap);
	}
}

const char *cryo_last_error(void)
{
	return cr_last_error();
}

void cryo_set_verbosity(int level)
{
	log_level = level;
}

void cryo_set_log_file(FILE *f)
{
	log_file = f;
}

FILE *cryo_log_file(void)
{
	return log_file;
}

const char *cryo_version(void)
{
	return CRYO_VERSION;
}

int cryo_abi_version(void)
{
	return CRYO_ABI_VERSION;
}
