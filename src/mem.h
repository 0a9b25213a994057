/* Memory: the VMAs of a process and their contents, dumped through pagemap scans and
 * restored by the task itself mapping them and reading its pages from the image. */
#ifndef CRYO_MEM_H
#define CRYO_MEM_H

#include <sys/stat.h>

#include "task.h"

/* Page runs: [start, start + nr_pages pages), kept sorted by whoever adds them. */
struct run {
	uint64_t start, nr_pages;
};

struct runs {
	struct run *r;
	size_t nr, cap;
};

int runs_add_new(struct runs *rs, uint64_t start, uint64_t nr_pages);
/* Append a run, extending the last one when it continues it. */
int runs_add(struct runs *rs, uint64_t start, uint64_t nr_pages);
PageRun **runs_to_pb(const struct runs *rs);
/* The page-aligned data runs of a file (SEEK_DATA/SEEK_HOLE) within its first `size`
 * bytes, and (if bytes) how many bytes they cover; a file system without holes
 * reports it all as data. */
int mem_scan_data(int fd, uint64_t size, struct runs *rs, uint64_t *bytes);
struct raw_writer;
/* A shared object's data file is written (`w`, named `name`, holding `rs` in order):
 * close it and record it, its runs and checksums in `obj`. */
int mem_shmem_finish(ShmemObject *obj, struct raw_writer *w, const char *name,
		     const struct runs *rs);
void runs_pb_free(PageRun **runs);

/* Dump: the VMA list, read before cryo injects anything into the process. */
int mem_read_vmas(struct dump_proc *p);
/* Dump: mm fields, VMAs (file and shmem references), page data. */
int mem_dump(struct dump_proc *p);
/* Dump: the pages of runs `all` (total bytes) into the page file `out` opened with
 * raw_open, checksums included (mem_write.c). `running`: a pre-dump, reading while
 * the process runs on. */
int mem_write_pages(struct dump_proc *p, const struct runs *all, uint64_t total,
		    bool running, struct raw_writer *out);
int mem_write_shmem_image(struct dump_ctx *ctx);
/* Dump: a pre-dump's page data, read once the process runs again. */
int mem_dump_late(struct dump_proc *p);
/* Dump: the shared memory object of a file (fd, st), saved once for the tree. */
int mem_shmem_add(struct dump_ctx *ctx, int fd, const struct stat *st, uint32_t *id);
void mem_dump_free(struct dump_proc *p);

/* Restore: validate the image's memory description and open the page file. */
int mem_restore_prepare(struct restore_proc *rp);
/* Restore: shared anonymous objects are created once, in cryo, and inherited. */
int mem_prepare_shmem(struct restore_ctx *ctx);
/* Restore: an object of the image, or NULL; its saved runs written into fd (a file
 * of `size` bytes); an fd made for it elsewhere (a memfd) taken as the object's. */
const ShmemObject *mem_shmem_object(struct restore_ctx *ctx, uint32_t id);
int mem_shmem_write(struct restore_ctx *ctx, const ShmemObject *o, int fd, uint64_t size);
int mem_shmem_adopt(struct restore_ctx *ctx, uint32_t id, int fd);
/* Make a shared anonymous object now (it is held as an fd): cryo's fd for it. */
int mem_shmem_make(struct restore_ctx *ctx, const ShmemObject *o);
/* Plan calls that build the address space (after the old one is gone). */
int mem_plan(struct restore_proc *rp, struct plan *p);
/* Plan the PR_SET_MM_MAP call (after all VMAs exist). */
int mem_plan_mm(struct restore_proc *rp, struct plan *p);
/* Check the results of the page reads after the plan ran. */
int mem_check_reads(struct restore_proc *rp, const struct plan_call *done);

/* Pure helpers (unit-tested). */
/* Does an smaps VMA need its pages saved, and how is it restored? Fills kind. Returns
 * 0, or -1 with the reason the VMA cannot be dumped. */
int mem_classify(const struct proc_vma *v, VmaKind *kind, const char **why);
/* Validate an image's VMA list and page runs (sorted, aligned, inside user space, runs
 * inside page-carrying VMAs). Pure. */
int mem_validate(const MmState *mm, const PageMap *pm);

/* ---- memory still shared with the parent across fork (mem_cow.c) ---- */

/* Pagemap entries: the same page (present, same frame; or the same swap slot). A
 * frame number of 0 (hidden without CAP_SYS_ADMIN) is never the same. Pure. */
bool cow_same_page(uint64_t mine, uint64_t parents);
/* Both present, frames hidden (a reader without CAP_SYS_ADMIN), neither mapped by
 * its process alone: the same page if the bytes are (read then). Pure. */
bool cow_maybe_same(uint64_t mine, uint64_t parents);
/* May a child's private mapping be its parent's, inherited by fork? Pure. */
bool cow_vma_matches(const Vma *child, const Vma *parent);
/* out = the pages of a not in b (both sorted). Pure. */
int cow_subtract(const struct runs *a, const struct runs *b, struct runs *out);
/* Dump: where the parent has the same mapping, its pages the process still shares
 * move from data to pb->kept. pm_fd, parent_pm_fd: the two pagemaps. */
int cow_dump_vma(struct dump_proc *p, int pm_fd, int parent_pm_fd, const Vma *parent_vma,
		 Vma *pb, struct runs *data);
/* Dump: the parent's VMA with this range, if it can be inherited. */
const Vma *cow_parent_vma(const struct dump_proc *p, const Vma *pb);
/* Dump: the parent's pagemap (-1 for the root or a parent outside). */
int cow_open_parent_pagemap(const struct dump_proc *p);
/* Restore: every inherited mapping matches one of the restored parent's. */
int cow_validate(const struct restore_proc *rp);
/* Restore: the ranges the task's clearing keeps (its inherited mappings). */
int cow_add_kept(const struct restore_proc *rp, struct ranges *keep);
/* Restore: an inherited mapping, instead of mmap: its protection, and its pages not
 * kept dropped. */
void cow_plan_vma(struct plan *p, const Vma *v, uint32_t prot);

#endif
