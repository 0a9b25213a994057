/* Memory still shared copy-on-write with the parent across fork. Dump compares a
 * child's pagemap with its parent's over the mappings they both have: the pages with
 * the same frame (or swap slot) are not saved again but recorded as kept. Restore
 * forks each child once its parent's memory is in place, so the child inherits those
 * mappings: it keeps them (its clearing spares them), drops what it did not share,
 * and reads only its own pages. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "sys.h"
#include "util.h"

#define PM_PRESENT (1ULL << 63)
#define PM_SWAP (1ULL << 62)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_FRAME ((1ULL << 55) - 1)
#define PM_CHUNK 4096

/* Mapped the same way: what fork copies, and mmap flags that shape the mapping. */
#define SHAPE_FLAGS (VMF(GD) | VMF(NR) | VMF(DP))
/* Not copied by fork (dontfork), or copied empty (wipeonfork). */
#define NOT_FORKED (VMF(DC) | VMF(WF))

/* ---- pure ---- */

bool cow_same_page(uint64_t mine, uint64_t parents)
{
	if ((mine & PM_PRESENT) && (parents & PM_PRESENT))
		return (mine & PM_FRAME) && (mine & PM_FRAME) == (parents & PM_FRAME);
	if ((mine & PM_SWAP) && (parents & PM_SWAP))
		return (mine & PM_FRAME) == (parents & PM_FRAME);
	return false;
}

bool cow_maybe_same(uint64_t mine, uint64_t parents)
{
	return (mine & PM_PRESENT) && (parents & PM_PRESENT) && !(mine & PM_FRAME) &&
	       !(parents & PM_FRAME) && !(mine & PM_EXCLUSIVE) && !(parents & PM_EXCLUSIVE);
}

bool cow_vma_matches(const Vma *c, const Vma *p)
{
	if (c->start != p->start || c->end != p->end || c->kind != p->kind)
		return false;
	if (c->kind != VMA_KIND__VMA_ANON_PRIVATE && c->kind != VMA_KIND__VMA_FILE_PRIVATE)
		return false;
	if (c->kind == VMA_KIND__VMA_FILE_PRIVATE &&
	    (c->file_id != p->file_id || c->pgoff != p->pgoff))
		return false;
	if ((c->vm_flags | p->vm_flags) & NOT_FORKED || c->n_guards || p->n_guards)
		return false;
	return (c->vm_flags & SHAPE_FLAGS) == (p->vm_flags & SHAPE_FLAGS);
}

int cow_subtract(const struct runs *a, const struct runs *b, struct runs *out)
{
	size_t k = 0;

	out->nr = 0;
	for (size_t i = 0; i < a->nr; i++) {
		uint64_t at = a->r[i].start, end = at + a->r[i].nr_pages * CR_PAGE_SIZE;

		while (at < end) {
			uint64_t bs, be;

			while (k < b->nr && b->r[k].start + b->r[k].nr_pages * CR_PAGE_SIZE <= at)
				k++;
			bs = k < b->nr ? b->r[k].start : end;
			be = k < b->nr ? bs + b->r[k].nr_pages * CR_PAGE_SIZE : end;
			if (bs > at) {
				uint64_t stop = bs < end ? bs : end;

				if (runs_add_new(out, at, (stop - at) / CR_PAGE_SIZE))
					return -1;
				at = stop;
				continue;
			}
			at = be < end ? be : end;
		}
	}
	return 0;
}

/* ---- dump ---- */

static const struct dump_proc *parent_of(const struct dump_proc *p)
{
	const struct dump_ctx *ctx = p->ctx;

	for (size_t i = 1; i < ctx->nr_procs; i++)
		if (ctx->procs[i] == p)
			for (size_t k = 0; k < i; k++)
				if (ctx->procs[k]->pid == p->stat.ppid && !ctx->procs[k]->zombie)
					return ctx->procs[k];
	return NULL;
}

int cow_open_parent_pagemap(const struct dump_proc *p)
{
	const struct dump_proc *q = parent_of(p);
	char path[64];
	int fd;

	if (!q)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", q->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		pr_debug("process %d: cannot open %s: %s", p->pid, path, strerror(errno));
	return fd;
}

const Vma *cow_parent_vma(const struct dump_proc *p, const Vma *pb)
{
	const struct dump_proc *q = parent_of(p);

	for (size_t i = 0; q && i < q->mm.n_vmas; i++)
		if (q->mm.vmas[i]->start == pb->start)
			return cow_vma_matches(pb, q->mm.vmas[i]) ? q->mm.vmas[i] : NULL;
	return NULL;
}

/* Frames hidden (no CAP_SYS_ADMIN): a page both map shared counts as kept if its
 * bytes are the parent's, whichever frame it is. 1 if so. */
static int same_bytes(int mem_fd, int pmem_fd, uint64_t at)
{
	static uint8_t a[CR_PAGE_SIZE], b[CR_PAGE_SIZE];

	if (mem_fd < 0 || pmem_fd < 0 ||
	    pread(mem_fd, a, sizeof(a), at) != (ssize_t)sizeof(a) ||
	    pread(pmem_fd, b, sizeof(b), at) != (ssize_t)sizeof(b))
		return 0;
	return !memcmp(a, b, sizeof(a));
}

static int open_mem(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* The runs of [start, end) whose pages the two pagemaps share. */
static int shared_runs(pid_t pid, pid_t ppid, int pm_fd, int ppm_fd, uint64_t start,
		       uint64_t end, struct runs *kept)
{
	static uint64_t mine[PM_CHUNK], theirs[PM_CHUNK];
	int mem_fd = -1, pmem_fd = -1, rc = 0;

	for (uint64_t at = start; at < end;) {
		uint64_t n = (end - at) / CR_PAGE_SIZE;
		off_t off = at / CR_PAGE_SIZE * 8;

		if (n > PM_CHUNK)
			n = PM_CHUNK;
		if (pread(pm_fd, mine, n * 8, off) != (ssize_t)(n * 8) ||
		    pread(ppm_fd, theirs, n * 8, off) != (ssize_t)(n * 8)) {
			rc = cr_perr("process %d: cannot compare its pages at 0x%lx with its "
				     "parent's", pid, (unsigned long)at);
			break;
		}
		for (uint64_t i = 0; i < n && !rc; i++) {
			uint64_t page = at + i * CR_PAGE_SIZE;
			bool same = cow_same_page(mine[i], theirs[i]);

			if (!same && cow_maybe_same(mine[i], theirs[i])) {
				if (mem_fd < 0 && pmem_fd < 0) {
					mem_fd = open_mem(pid);
					pmem_fd = open_mem(ppid);
				}
				same = same_bytes(mem_fd, pmem_fd, page);
			}
			if (same && runs_add(kept, page, 1))
				rc = -1;
		}
		at += n * CR_PAGE_SIZE;
	}
	if (mem_fd >= 0)
		close(mem_fd);
	if (pmem_fd >= 0)
		close(pmem_fd);
	return rc;
}

int cow_dump_vma(struct dump_proc *p, int pm_fd, int parent_pm_fd, const Vma *parent_vma,
		 Vma *pb, struct runs *data)
{
	struct runs kept = { 0 }, own = { 0 };
	int rc = -1;

	(void)parent_vma;
	if (shared_runs(p->pid, p->stat.ppid, pm_fd, parent_pm_fd, pb->start, pb->end, &kept))
		goto out;
	if (!kept.nr) {
		rc = 0;		/* nothing shared: mapped afresh */
		goto out;
	}
	if (cow_subtract(data, &kept, &own))
		goto out;
	pb->kept = runs_to_pb(&kept);
	if (!pb->kept)
		goto out;
	pb->n_kept = kept.nr;
	pb->has_inherited = pb->inherited = 1;
	free(data->r);
	*data = own;
	own.r = NULL;
	rc = 0;
out:
	free(kept.r);
	free(own.r);
	return rc;
}

/* ---- restore ---- */

int cow_validate(const struct restore_proc *rp)
{
	const MmState *mm = rp->core->mm;

	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Vma *v = mm->vmas[i];
		const MmState *pm = rp->parent ? rp->parent->core->mm : NULL;
		bool found = false;

		if (!v->inherited) {
			if (v->n_kept)
				return cr_err("image: VMA 0x%llx of process %d keeps pages it does "
					      "not inherit", (unsigned long long)v->start, rp->pid);
			continue;
		}
		for (size_t k = 0; pm && k < pm->n_vmas && !found; k++)
			found = cow_vma_matches(v, pm->vmas[k]);
		if (!found)
			return cr_err("image: process %d inherits the mapping at 0x%llx from its "
				      "parent, which has no such mapping", rp->pid,
				      (unsigned long long)v->start);
		for (size_t r = 0; r < v->n_kept; r++) {
			const PageRun *k = v->kept[r];
			const PageRun *prev = r ? v->kept[r - 1] : NULL;

			if (k->vaddr % CR_PAGE_SIZE || k->vaddr < v->start || k->vaddr >= v->end ||
			    !k->nr_pages || k->nr_pages > (v->end - k->vaddr) / CR_PAGE_SIZE ||
			    (prev && k->vaddr < prev->vaddr + prev->nr_pages * CR_PAGE_SIZE))
				return cr_err("image: VMA 0x%llx of process %d keeps an invalid run",
					      (unsigned long long)v->start, rp->pid);
		}
	}
	return 0;
}

int cow_add_kept(const struct restore_proc *rp, struct ranges *keep)
{
	const MmState *mm = rp->core->mm;

	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->inherited && ranges_add(keep, mm->vmas[i]->start, mm->vmas[i]->end))
			return -1;
	return 0;
}

/* Dropped pages come back as the mapping has them without the process's writes:
 * zeroes, or the file's bytes. */
static void plan_drop(struct plan *p, uint64_t start, uint64_t end)
{
	if (end > start)
		plan_call(p, "dropping pages not shared with the parent", 0, __NR_madvise, start,
			  end - start, MADV_DONTNEED, 0, 0, 0);
}

void cow_plan_vma(struct plan *p, const Vma *v, uint32_t prot)
{
	uint64_t at = v->start;

	plan_call(p, "mprotect", 0, __NR_mprotect, v->start, v->end - v->start, prot, 0, 0, 0);
	for (size_t r = 0; r < v->n_kept; r++) {
		plan_drop(p, at, v->kept[r]->vaddr);
		at = v->kept[r]->vaddr + v->kept[r]->nr_pages * CR_PAGE_SIZE;
	}
	plan_drop(p, at, v->end);
}
