/* Memory: the VMAs of a process and their contents, dumped through pagemap scans and
 * restored by the task itself mapping them and reading its pages from the image. */
#ifndef CRYO_MEM_H
#define CRYO_MEM_H

#include "task.h"

/* Dump: the VMA list, read before cryo injects anything into the process. */
int mem_read_vmas(struct dump_proc *p);
/* Dump: mm fields, VMAs (file and shmem references), page data. */
int mem_dump(struct dump_proc *p);
int mem_write_shmem_image(struct dump_ctx *ctx);
void mem_dump_free(struct dump_proc *p);

/* Restore: validate the image's memory description and open the page file. */
int mem_restore_prepare(struct restore_proc *rp);
/* Restore: shared anonymous objects are created once, in cryo, and inherited. */
int mem_prepare_shmem(struct restore_ctx *ctx);
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

#endif
