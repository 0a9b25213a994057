/* Eager restore of big private anonymous memory through userfaultfd: the task
 * registers it as a lazy restore would (mem_lazy.c's marks and plan) and stops; cryo
 * copies each checked chunk in with UFFDIO_COPY, two threads at once, straight from a
 * mapping of the page file, then the task closes the userfaultfd and goes on, every
 * byte in. No page is zeroed before being written and no fault is taken (1 GiB: half
 * the time of the task's own preadv). */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lazy.h"
#include "log.h"
#include "mem.h"
#include "page_map.h"
#include "sys.h"
#include "tid_thread.h"
#include "util.h"

/* Below this, the task's own preadv costs less than the extra stop and the thread. */
#define FILL_MIN_BYTES (16ULL << 20)

struct fill {
	const struct restore_proc *rp;
	int uffd;
	struct lazy_pieces ps;
	struct fill_job *jobs;
	size_t nr_jobs;
	_Atomic size_t next;
	_Atomic int failed;
	char err[2][256];		/* each thread's first error */
};

/* ---- pure ---- */

int fill_jobs(const struct lazy_pieces *ps, uint32_t chunk_size, struct fill_job **jobs,
	      size_t *nr)
{
	size_t cap = 0;

	*jobs = NULL;
	*nr = 0;
	if (!chunk_size)
		return cr_err("image: page file without checksum chunks");
	for (size_t i = 0; i < ps->nr; i++) {
		const struct lazy_piece *p = &ps->p[i];
		uint64_t c = p->off / chunk_size, last = (p->off + p->len - 1) / chunk_size;

		if (!p->len)
			continue;
		for (; c <= last; c++) {
			struct fill_job *prev = *nr ? &(*jobs)[*nr - 1] : NULL;

			if (prev && prev->src == p->src && prev->chunk == c)
				continue;
			if (cr_grow(jobs, &cap, *nr + 1, sizeof(**jobs), 256)) {
				free(*jobs);
				*jobs = NULL;
				*nr = 0;
				return cr_err("out of memory");
			}
			(*jobs)[(*nr)++] = (struct fill_job){ p->src, c };
		}
	}
	return 0;
}

/* ---- deciding ---- */

bool fill_wanted(const struct restore_ctx *ctx)
{
	const char *how = getenv("CRYO_FILL");

	return !ctx->lazy_pages && !(how && !strcmp(how, "task"));
}

bool fill_worth(struct restore_proc *rp)
{
	struct restore_ctx *ctx = rp->ctx;
	uint64_t bytes = 0;

	for (size_t i = 0; i < rp->nr_segs; i++)
		if (rp->lazy_segs[i])
			bytes += rp->segs[i].len;
	if (bytes < FILL_MIN_BYTES)
		return false;
	if (!ctx->fill_ok)
		ctx->fill_ok = lazy_probe(0, CR_UFFD_USER_MODE_ONLY) ? 1 : -1;
	return ctx->fill_ok > 0;
}

/* ---- filling ---- */

static int fill_fail(struct fill *f, int who, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->err[who], sizeof(f->err[who]), fmt, ap);
	va_end(ap);
	atomic_store(&f->failed, 1);
	return -1;
}

/* One chunk, checked, into every piece it holds bytes of. */
static int fill_chunk(struct fill *f, int who, const struct fill_job *j)
{
	const struct page_src *src = &f->rp->srcs[j->src];
	uint64_t cs = src->pm->chunk_size, start = j->chunk * cs;
	const struct lazy_piece *p;
	const uint8_t *buf;
	ssize_t len = page_map_chunk(src, j->chunk, &buf);

	if (len < 0)
		return fill_fail(f, who, "cannot read or check bytes %llu-%llu of %s (damaged "
				 "or unreadable)", (unsigned long long)start,
				 (unsigned long long)(start + cs - 1), src->pm->pages_file);
	for (p = lazy_pieces_from(&f->ps, j->src, start);
	     p && p < f->ps.p + f->ps.nr && p->src == j->src && p->off < start + len; p++) {
		uint64_t from = p->off > start ? p->off : start;
		uint64_t to = CR_MIN(p->off + p->len, start + (uint64_t)len);
		int rc;

		if (from >= to)
			continue;
		rc = lazy_uffd_copy(f->uffd, p->vaddr + (from - p->off), buf + (from - start),
				    to - from, NULL);
		if (rc)
			return fill_fail(f, who, "process %d: cannot copy its pages at 0x%llx: %s",
					 f->rp->pid,
					 (unsigned long long)(p->vaddr + (from - p->off)),
					 strerror(-rc));
	}
	return 0;
}

static void fill_run(struct fill *f, int who)
{
	size_t k;

	while (!atomic_load(&f->failed) && (k = atomic_fetch_add(&f->next, 1)) < f->nr_jobs)
		if (fill_chunk(f, who, &f->jobs[k]))
			break;
}

static void *fill_helper(void *arg)
{
	fill_run(arg, 1);
	return NULL;
}

int fill_proc(struct restore_proc *rp, int uffd)
{
	struct fill f = { .rp = rp, .uffd = uffd };
	struct tid_thread helper = { .started = false };
	bool helper_ran;
	int rc = -1;

	if (lazy_proc_pieces(rp, &f.ps) ||
	    fill_jobs(&f.ps, IMG_CHUNK_SIZE, &f.jobs, &f.nr_jobs))
		goto out;
	for (size_t i = 0; i < rp->nr_srcs; i++)
		if (page_map_open(&rp->srcs[i]))
			goto out;
	/* Without a second thread the fill is only slower. */
	if (tid_thread_start(&helper, rp->ctx, fill_helper, &f)) {
		pr_debug("process %d: its pages are filled by one thread: %s", rp->pid,
			 cr_last_error());
		cr_err_reset();
	}
	helper_ran = helper.started;
	fill_run(&f, 0);
	tid_thread_join(&helper);
	if (atomic_load(&f.failed)) {
		cr_err("%s", f.err[0][0] ? f.err[0] : f.err[1]);
		goto out;
	}
	pr_info("process %d: %zu chunks of pages copied in by cryo (%d threads)", rp->pid,
		f.nr_jobs, helper_ran ? 2 : 1);
	rc = 0;
out:
	for (size_t i = 0; i < rp->nr_srcs; i++)
		page_map_close(&rp->srcs[i]);
	free(f.jobs);
	free(f.ps.p);
	return rc;
}
