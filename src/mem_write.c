/* Dump: writing a process's page file. Two threads each fill half of the file (at a
 * chunk boundary), straight into a mapping of it, checksumming their own chunks (one
 * thread, in order, into a --stream); pages mapped by this process alone are read
 * with process_vm_readv, the others through /proc/PID/mem. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "mem.h"
#include "page_map.h"
#include "remote/remote.h"
#include "stats.h"
#include "sys.h"
#include "util.h"

#define WR_THREADS 2
/* One checksum chunk: read, checksummed and written while it is still in the cache
 * (a 4 MiB buffer was read back from memory twice). */
#define WR_BUF IMG_CHUNK_SIZE
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_PRESENT (1ULL << 63)
#define PM_BATCH 4096			/* pagemap entries read at once */

/* A piece of memory and where it goes in the file; `own`: read it with
 * process_vm_readv (every page present and mapped by this process only). */
struct seg {
	uint64_t addr, len, off;
	bool own;
};

struct segs {
	struct seg *s;
	size_t nr, cap;
};

struct page_write;

struct worker {
	struct page_write *pw;
	uint64_t from, to;		/* file range, from on a chunk boundary */
	pthread_t thread;
	bool started;
	int rc;
	char err[256];
};

struct page_write {
	struct dump_proc *p;
	const struct runs *runs;
	struct segs segs;
	int mem_fd;
	struct raw_writer *out;
	bool stream;			/* out goes into a stream: in order, by raw_write */
	bool running;			/* a pre-dump: the process runs meanwhile */
	uint8_t *map;			/* the page file mapped: written in place */
	uint32_t *crcs;
	_Atomic uint64_t done;
	_Atomic int stop;		/* a worker failed: the others give up */
	struct worker workers[WR_THREADS];
};

static int segs_add(struct segs *ss, uint64_t addr, uint64_t len, uint64_t off, bool own)
{
	struct seg *l = ss->nr ? &ss->s[ss->nr - 1] : NULL;

	if (l && l->own == own && l->addr + l->len == addr && l->off + l->len == off) {
		l->len += len;
		return 0;
	}
	if (cr_grow(&ss->s, &ss->cap, ss->nr + 1, sizeof(*ss->s), 256))
		return -1;
	ss->s[ss->nr++] = (struct seg){ addr, len, off, own };
	return 0;
}

/* Split one run (all in one VMA) by which of its pages this process alone maps. */
static int split_run(int pm_fd, const struct run *r, uint64_t off, struct segs *ss)
{
	static uint64_t pm[PM_BATCH];

	for (uint64_t i = 0; i < r->nr_pages;) {
		uint64_t n = CR_MIN(r->nr_pages - i, (uint64_t)PM_BATCH);
		uint64_t addr = r->start + i * CR_PAGE_SIZE;
		ssize_t got = pread(pm_fd, pm, n * 8, addr / CR_PAGE_SIZE * 8);

		if (got != (ssize_t)(n * 8))
			return cr_perr("cannot read the page map at 0x%lx", (unsigned long)addr);
		for (uint64_t k = 0; k < n; k++) {
			bool own = (pm[k] & (PM_PRESENT | PM_EXCLUSIVE)) ==
				   (PM_PRESENT | PM_EXCLUSIVE);

			if (segs_add(ss, addr + k * CR_PAGE_SIZE, CR_PAGE_SIZE,
				     off + (i + k) * CR_PAGE_SIZE, own))
				return -1;
		}
		i += n;
	}
	return 0;
}

/* Pinning a page shared copy-on-write (with a parent or child) or merged by KSM makes
 * the kernel copy it, so only pages this process alone maps are pinned, and none of
 * a process that may have mergeable memory (KSM could merge a page meanwhile), nor
 * of one that runs meanwhile (a pre-dump: it may fork). */
static bool may_pin(const struct dump_proc *p)
{
	for (size_t i = 0; i < p->vmas.nr; i++)
		if (p->vmas.v[i].vm_flags & VMF(MG))
			return false;
	return true;
}

/* process_vm_readv reads only what the process itself may read (/proc/PID/mem forces
 * its way into PROT_NONE and write-only memory). */
static bool readable(const struct dump_proc *p, uint64_t addr)
{
	size_t lo = 0, hi = p->vmas.nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct proc_vma *v = &p->vmas.v[mid];

		if (addr < v->start)
			hi = mid;
		else if (addr >= v->end)
			lo = mid + 1;
		else
			return v->prot & PROT_READ;
	}
	return false;
}

static int plan_segs(struct page_write *pw, struct segs *ss)
{
	char path[64];
	uint64_t off = 0;
	int pm_fd = -1, rc = -1;

	if (!pw->running && may_pin(pw->p)) {
		snprintf(path, sizeof(path), "/proc/%d/pagemap", pw->p->pid);
		pm_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (pm_fd < 0)
			return cr_perr("cannot open %s", path);
	}
	for (size_t i = 0; i < pw->runs->nr; i++) {
		const struct run *r = &pw->runs->r[i];

		if (pm_fd >= 0 && readable(pw->p, r->start) ? split_run(pm_fd, r, off, ss) :
		    segs_add(ss, r->start, r->nr_pages * CR_PAGE_SIZE, off, false))
			goto out;
		off += r->nr_pages * CR_PAGE_SIZE;
	}
	rc = 0;
out:
	if (pm_fd >= 0)
		close(pm_fd);
	return rc;
}

static int wr_fail(struct worker *w, const char *what, uint64_t addr, ssize_t got)
{
	snprintf(w->err, sizeof(w->err), "process %d: %s at 0x%lx: %s", w->pw->p->pid, what,
		 (unsigned long)addr, got < 0 ? strerror(errno) : "short read");
	return -1;
}

/* A pre-dump reads after the process ran on: what it unmapped meanwhile reads as
 * zeros (mem_track.c: it is not tracked, the next round saves what is there). */
static void read_running(struct worker *w, uint8_t *buf, size_t n, uint64_t addr)
{
	for (size_t at = 0; at < n; at += CR_PAGE_SIZE) {
		size_t len = CR_MIN(n - at, CR_PAGE_SIZE);

		if (pread(w->pw->mem_fd, buf + at, len, addr + at) != (ssize_t)len)
			memset(buf + at, 0, len);
	}
}

/* n bytes of memory at addr into buf; /proc/PID/mem where process_vm_readv fell
 * short (memory it cannot read after all). */
static int read_mem(struct worker *w, const struct seg *s, uint64_t addr, uint8_t *buf,
		    size_t n)
{
	struct iovec l = { buf, n }, r = { (void *)addr, n };
	ssize_t got = -1;

	if (s->own)
		got = process_vm_readv(w->pw->p->pid, &l, 1, &r, 1, 0);
	if (got != (ssize_t)n)
		got = pread(w->pw->mem_fd, buf, n, addr);
	if (got != (ssize_t)n && w->pw->running) {
		read_running(w, buf, n, addr);
		return 0;
	}
	return got == (ssize_t)n ? 0 : wr_fail(w, "cannot read its memory", addr, got);
}

/* The last segment starting at or before file offset `off`. */
static size_t seg_at(const struct segs *ss, uint64_t off)
{
	size_t lo = 0, hi = ss->nr;

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (ss->s[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Fill buf with the file's bytes [off, off + n). */
static int fill(struct worker *w, uint64_t off, uint8_t *buf, size_t n)
{
	const struct segs *ss = &w->pw->segs;

	for (size_t i = seg_at(ss, off); n; i++) {
		const struct seg *s = &ss->s[i];
		uint64_t in = off - s->off, len = CR_MIN(s->len - in, (uint64_t)n);

		if (read_mem(w, s, s->addr + in, buf, len))
			return -1;
		buf += len;
		off += len;
		n -= len;
	}
	return 0;
}

static int put(struct worker *w, const uint8_t *buf, size_t n, uint64_t off)
{
	while (n) {
		ssize_t got = pwrite(w->pw->out->fd, buf, n, off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			snprintf(w->err, sizeof(w->err), "cannot write the page file: %s",
				 strerror(got ? errno : ENOSPC));
			return -1;
		}
		buf += got;
		off += got;
		n -= got;
	}
	return 0;
}

/* Checksum and write one buffer of file bytes [off, off + n) (in the mapping: there
 * already). */
static int write_buf(struct worker *w, const uint8_t *buf, size_t n, uint64_t off)
{
	struct page_write *pw = w->pw;

	if (pw->stream)
		return raw_write(pw->out, buf, n);
	for (size_t c = 0; c < n; c += IMG_CHUNK_SIZE) {
		uint32_t *crc = &pw->crcs[(off + c) / IMG_CHUNK_SIZE];
		size_t len = CR_MIN(n - c, (size_t)IMG_CHUNK_SIZE);

		if (!pw->map)
			*crc = crc32c(0, buf + c, len);
		else if (page_map_crc(buf + c, len, crc)) {
			snprintf(w->err, sizeof(w->err), "the page file was cut short while "
				 "written");
			return -1;
		}
	}
	return pw->map ? 0 : put(w, buf, n, off);
}

/* Read, checksum and write the worker's range, a buffer at a time. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct page_write *pw = w->pw;
	/* Mapped, the page file is the buffer. */
	uint8_t *buf = pw->map ? NULL : mmap(NULL, WR_BUF, PROT_READ | PROT_WRITE,
					     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	w->rc = -1;
	if (buf == MAP_FAILED) {
		snprintf(w->err, sizeof(w->err), "cannot allocate a page buffer: %s",
			 strerror(errno));
		return NULL;
	}
	for (uint64_t off = w->from; off < w->to;) {
		size_t n = CR_MIN(w->to - off, (uint64_t)WR_BUF);
		uint8_t *to = pw->map ? pw->map + off : buf;

		if (atomic_load(&pw->stop) || fill(w, off, to, n) || write_buf(w, to, n, off))
			goto out;
		atomic_fetch_add(&pw->done, n);
		off += n;
		/* The first worker is cryo's main thread: the only one to log. */
		if (w == &pw->workers[0]) {
			stats_progress_set(atomic_load(&pw->done));
			if (ptr_check_deadline())
				goto out;
		}
	}
	w->rc = 0;
out:
	if (w->rc)
		atomic_store(&pw->stop, 1);
	if (buf)
		munmap(buf, WR_BUF);
	return NULL;
}

/* Worker k's file range: the file in nr parts at chunk boundaries. */
static void worker_range(struct worker *w, int k, int nr, uint64_t total)
{
	uint64_t chunks = (total + IMG_CHUNK_SIZE - 1) / IMG_CHUNK_SIZE;
	uint64_t per = (chunks + nr - 1) / nr;

	w->from = CR_MIN(k * per * IMG_CHUNK_SIZE, total);
	w->to = CR_MIN((k + 1) * per * IMG_CHUNK_SIZE, total);
}

static int run_workers(struct page_write *pw, uint64_t total)
{
	int nr = pw->stream ? 1 : WR_THREADS, rc = 0;
	const char *why = NULL;

	for (int k = 0; k < WR_THREADS; k++) {
		struct worker *w = &pw->workers[k];

		w->pw = pw;
		w->rc = 0;
		worker_range(w, k, nr, total);
	}
	for (int k = 1; k < nr; k++) {
		struct worker *w = &pw->workers[k];

		w->started = !pthread_create(&w->thread, NULL, worker_main, w);
		if (!w->started)
			worker_main(w);
	}
	worker_main(&pw->workers[0]);
	for (int k = 0; k < WR_THREADS; k++) {
		struct worker *w = &pw->workers[k];

		if (w->started)
			pthread_join(w->thread, NULL);
		/* A worker that stopped because another failed says nothing. */
		if (w->rc)
			rc = -1;
		if (w->rc && w->err[0] && !why)
			why = w->err;
	}
	return why ? cr_err("%s", why) : rc;
}

/* The page file mapped, to be written in place: the workers copy the process's memory
 * straight into the page cache, with no lock between them (each pwrite takes the
 * inode's: one worker waited while the other wrote, 0.85 s for 1 GiB). Its blocks are
 * allocated first, so a full disk is an error here, never a fault later. 1: not here
 * (no fallocate or no mapping on this file system): pwrite does it. */
static int map_out(struct page_write *pw, uint64_t total)
{
	int fd = pw->out->fd;
	void *m;

	if (!total)
		return 1;
	if (fallocate(fd, 0, 0, total))
		return errno == EOPNOTSUPP || errno == ENOSYS ? 1 :
		       cr_perr("cannot write the page file");
	m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return 1;
	pw->map = m;
	return 0;
}

int mem_write_pages(struct dump_proc *p, const struct runs *all, uint64_t total,
		    bool running, struct raw_writer *out)
{
	struct page_write pw = { .p = p, .runs = all, .out = out, .stream = out->out,
				 .running = running };
	size_t nr_crcs = (total + IMG_CHUNK_SIZE - 1) / IMG_CHUNK_SIZE;
	char path[64];
	int rc = -1;

	snprintf(path, sizeof(path), "/proc/%d/mem", p->pid);
	pw.mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pw.mem_fd < 0)
		return cr_perr("cannot open %s", path);
	pw.crcs = calloc(nr_crcs + 1, sizeof(uint32_t));
	if (!pw.crcs) {
		cr_err("out of memory");
		goto out;
	}
	if (plan_segs(&pw, &pw.segs) || (!pw.stream && map_out(&pw, total) < 0) ||
	    run_workers(&pw, total))
		goto out;
	if (!pw.stream) {
		raw_set_checksums(out, pw.crcs, nr_crcs, total);
		pw.crcs = NULL;
	}
	rc = 0;
out:
	if (pw.map)
		munmap(pw.map, total);
	free(pw.crcs);
	free(pw.segs.s);
	close(pw.mem_fd);
	return rc;
}
