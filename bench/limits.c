/* Machine limits: what this machine does without cryo, measured in the same run as the
 * cryo figures they are the reference for (memcpy, file writes, page population). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

#define PAGE 4096UL
#define CHUNK (8UL << 20)

static uint8_t *chunk;

/* The 8 MiB source of every write: random-looking, already in memory. */
static const uint8_t *write_chunk(void)
{
	uint64_t x = 88172645463325252ULL;

	if (chunk)
		return chunk;
	chunk = malloc(CHUNK);
	if (!chunk)
		return NULL;
	for (size_t i = 0; i < CHUNK / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(chunk + i * 8, &x, 8);
	}
	return chunk;
}

static void *map_anon(size_t len, int extra)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Best seconds of `reps` memcpys of len bytes between two resident buffers. */
double lim_memcpy(size_t len, int reps)
{
	uint8_t *a = map_anon(len, MAP_POPULATE), *b = map_anon(len, MAP_POPULATE);
	double best = -1;

	if (!a || !b)
		goto out;
	memset(a, 0x5a, len);
	memset(b, 0xa5, len);
	for (int i = 0; i < reps; i++) {
		double t = now();

		memcpy(b, a, len);
		t = now() - t;
		if (best < 0 || t < best)
			best = t;
	}
	if (b[len / 2] != 0x5a)
		best = -1;
out:
	if (a)
		munmap(a, len);
	if (b)
		munmap(b, len);
	return best;
}

/* Create path, write len bytes with 8 MiB write()s, optionally fsync, close. */
double lim_write(const char *path, size_t len, bool do_fsync)
{
	const uint8_t *src = write_chunk();
	double t;
	int fd;

	if (!src)
		return -1;
	unlink(path);
	t = now();
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	for (size_t done = 0; done < len;) {
		size_t n = len - done < CHUNK ? len - done : CHUNK;
		ssize_t w = write(fd, src, n);

		if (w <= 0) {
			close(fd);
			return -1;
		}
		done += w;
	}
	if ((do_fsync && fsync(fd)) || close(fd))
		return -1;
	return now() - t;
}

/* Read len bytes of a (warm) file into fresh anonymous memory: what a restore does at
 * least, with the page cache as its source. */
double lim_read_fresh(const char *path, size_t len)
{
	uint8_t *dst = map_anon(len, 0);
	double t = -1;
	size_t done = 0;
	int fd;

	if (!dst)
		return -1;
	t = now();
	fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd >= 0 && done < len) {
		size_t n = len - done < CHUNK ? len - done : CHUNK;
		ssize_t r = read(fd, dst + done, n);

		if (r <= 0)
			break;
		done += r;
	}
	t = now() - t;
	if (fd >= 0)
		close(fd);
	munmap(dst, len);
	return done == len ? t : -1;
}

/* mmap len bytes and write to every step-th page. */
double lim_touch(size_t len, size_t step)
{
	volatile uint8_t *p;
	double t = now();

	p = map_anon(len, 0);
	if (!p)
		return -1;
	for (size_t off = 0; off < len; off += step * PAGE)
		p[off] = 1;
	t = now() - t;
	munmap((void *)p, len);
	return t;
}

double lim_map_populate(size_t len)
{
	double t = now();
	void *p = map_anon(len, MAP_POPULATE);

	if (!p)
		return -1;
	t = now() - t;
	munmap(p, len);
	return t;
}

/* Create nr one-page mappings, alternately read-only, each with its page filled: the
 * system calls and faults a restore of such a process cannot avoid. */
double lim_vmas(int nr)
{
	uint8_t **v = calloc(nr, sizeof(*v));
	double t;
	int i;

	if (!v)
		return -1;
	t = now();
	for (i = 0; i < nr; i++) {
		v[i] = map_anon(PAGE, 0);
		if (!v[i])
			break;
		memset(v[i], i | 1, PAGE);
		if (i % 2 && mprotect(v[i], PAGE, PROT_READ))
			break;
	}
	t = now() - t;
	for (int k = 0; k < nr && v[k]; k++)
		munmap(v[k], PAGE);
	free(v);
	return i == nr ? t : -1;
}

/* Read /proc/PID/smaps once: a dump has to learn every mapping at least this way. */
double lim_read_smaps(pid_t pid)
{
	static char buf[1 << 16];
	char path[64];
	double t;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	t = now();
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	close(fd);
	return n < 0 ? -1 : now() - t;
}
