/* Preloaded into the reference, criu 3.17, on kernels (6.13 on) whose vDSO has a
 * [vvar_vclock] mapping between [vvar] and [vdso]: every maps file criu reads shows
 * that mapping folded into [vvar], the layout criu knows. Nothing else changes. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAPS_MAX (4 << 20)

typedef int (*openat_fn)(int, const char *, int, ...);

static bool is_maps(const char *path)
{
	size_t n = strlen(path);

	return n >= 4 && !strcmp(path + n - 4, "maps") && (n == 4 || path[n - 5] == '/');
}

/* Copy the maps text `in` to `out`, the [vvar_vclock] line's end replacing the end
 * address of the [vvar] line just before it. Its length. */
static size_t fold_text(const char *in, char *out)
{
	char *prev = NULL, *o = out;

	for (const char *l = in; *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l + 1) : strlen(l);
		const char *tag = strstr(l, "[vvar_vclock]");
		const char *dash = strchr(l, '-');
		char *pdash = prev ? strchr(prev, '-') : NULL;

		if (tag && (!e || tag < e) && prev && strstr(prev, "[vvar]") && dash && pdash &&
		    strchr(prev, ' ') - pdash == strchr(l, ' ') - dash) {
			/* The same width: both ends print as hexadecimal of one length. */
			memcpy(pdash + 1, dash + 1, strchr(l, ' ') - dash - 1);
		} else {
			memcpy(o, l, len);
			prev = o;
			o += len;
		}
		l += len;
	}
	return o - out;
}

/* fd of a maps file: as it is, or a memfd of its folded text. */
static int fold(int fd)
{
	char *in = malloc(MAPS_MAX), *out = malloc(MAPS_MAX);
	size_t n = 0, len;
	ssize_t r;
	int m = -1;

	if (!in || !out)
		goto keep;
	while (n < MAPS_MAX - 1 && (r = read(fd, in + n, MAPS_MAX - 1 - n)) > 0)
		n += r;
	in[n] = 0;
	if (lseek(fd, 0, SEEK_SET) || !strstr(in, "[vvar_vclock]"))
		goto keep;
	len = fold_text(in, out);
	m = memfd_create("maps", MFD_CLOEXEC);
	if (m < 0 || write(m, out, len) != (ssize_t)len || lseek(m, 0, SEEK_SET)) {
		if (m >= 0)
			close(m);
		goto keep;
	}
	close(fd);
	fd = m;
keep:
	free(in);
	free(out);
	return fd;
}

int openat(int dir, const char *path, int flags, ...)
{
	static openat_fn real;
	va_list ap;
	int mode, fd;

	va_start(ap, flags);
	mode = va_arg(ap, int);
	va_end(ap);
	if (!real)
		real = (openat_fn)dlsym(RTLD_NEXT, "openat");
	fd = real(dir, path, flags, mode);
	return fd >= 0 && is_maps(path) ? fold(fd) : fd;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	int mode;

	va_start(ap, flags);
	mode = va_arg(ap, int);
	va_end(ap);
	return openat(AT_FDCWD, path, flags, mode);
}

int openat64(int dir, const char *path, int flags, ...) __attribute__((alias("openat")));
int open64(const char *path, int flags, ...) __attribute__((alias("open")));
