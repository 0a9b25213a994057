/* Lazy restore (--lazy-pages, mem_lazy.c): private anonymous memory registered with
 * userfaultfd and filled after the process runs, by a supplier paired with a guard. */
#ifndef CRYO_LAZY_H
#define CRYO_LAZY_H

#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "task.h"

/* The events a lazily restored process's userfaultfd reports to the supplier. */
#define LAZY_FEATURES (UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | \
		       UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP)
/* userfaultfd(2): faults from user space only (no privilege needed). */
#define CR_UFFD_USER_MODE_ONLY 1

/* A stretch of a lazily restored process's memory and where its bytes are in the page
 * files. Kept in file order (by file, then offset); vaddr follows the process's mremaps, gone its munmaps
 * and MADV_DONTNEEDs (what was there reads as zeros from then on). */
struct lazy_piece {
	uint64_t vaddr, len, off;
	uint32_t src;			/* which page file (rp->srcs) */
	bool gone;
};

struct lazy_pieces {
	struct lazy_piece *p;
	size_t nr, cap;
};

/* Pure helpers (unit-tested). */
/* May this VMA's pages be supplied after the process runs? Private anonymous writable
 * memory only but the heap, and none whose pages the kernel must have at once
 * (locked, guarded, wiped or dropped at fork, droppable). */
bool lazy_vma_ok(const Vma *v);
int lazy_pieces_add(struct lazy_pieces *ps, uint64_t vaddr, uint64_t len, uint32_t src,
		    uint64_t off);
/* Into file order, once all are added. */
void lazy_pieces_sort(struct lazy_pieces *ps);
/* Cut the piece holding addr in two at addr. */
int lazy_pieces_split(struct lazy_pieces *ps, uint64_t addr);
/* [start, end) was unmapped or dropped. */
int lazy_pieces_gone(struct lazy_pieces *ps, uint64_t start, uint64_t end);
/* [from, from + len) moved to `to` (mremap). */
int lazy_pieces_move(struct lazy_pieces *ps, uint64_t from, uint64_t to, uint64_t len);
/* The piece holding addr (gone or not), or NULL. */
const struct lazy_piece *lazy_pieces_at(const struct lazy_pieces *ps, uint64_t addr);
/* The first piece of file src ending after offset off, or NULL. */
const struct lazy_piece *lazy_pieces_from(const struct lazy_pieces *ps, uint32_t src,
					  uint64_t off);

/* Where the on-touch supplier asks whether an address space lives: the first address
 * from LAZY_PROBE_FROM on that no piece holds. */
#define LAZY_PROBE_FROM (1ULL << 20)
uint64_t lazy_probe_addr(const struct lazy_pieces *ps);

/* The tripwire (lazy_wire.c) of one holder of the userfaultfds (the supplier or the
 * guard, each its own): write ends at its lowest fd (0) and its highest. */
struct lazy_wire {
	int top;			/* the high write end's fd */
};
int wire_make(struct lazy_wire *w);
/* Read ends that SIGKILL pid (a whole process) as the holder dies; -1 with the error
 * recorded. */
int wire_arm(const struct lazy_wire *w, pid_t pid, int ends[2]);
/* Close them (every page is in): the holder's end then kills no one. */
void wire_disarm(int ends[2]);

/* Restore, in cryo. */
/* Which VMAs of the process are restored lazily (rp->lazy_vmas, rp->lazy). */
int lazy_mark(struct restore_proc *rp, const bool *has_pages);
/* Is page segment i of the process (rp->segs) lazily restored? */
bool lazy_seg(const struct restore_proc *rp, size_t i);
/* The plan's part: the task makes a userfaultfd, then its table ends; the next one
 * starts by closing it (cryo holds it by then). */
void lazy_plan(struct restore_proc *rp, struct plan *p);
/* Chunks of page file k (rp->srcs) the task reads itself (their checksums are checked
 * before it runs); NULL when it reads all. */
bool *lazy_eager_chunks(const struct restore_proc *rp, size_t k);
/* Start the supplier and its guard (before any task exists). */
int lazy_start(struct restore_ctx *ctx);
/* After the first table: take the task's userfaultfd, register its lazy ranges,
 * hand them to the supplier. */
int lazy_take(struct restore_proc *rp);
/* Before the release: both holders have every process's fds and armed its tripwire
 * (a sync sent after them, answered by the guard through the supplier). */
int lazy_armed(struct restore_ctx *ctx);
/* The tree runs: the supplier fills the rest in the background. */
void lazy_tree_made(struct restore_ctx *ctx);
void lazy_free(struct restore_ctx *ctx);
/* Does userfaultfd (made with `flags`) register a page, copy into it and report
 * `features` here (cryo check: LAZY_FEATURES)? 1 or 0. */
int lazy_probe(uint64_t features, int flags);

/* Shared with the eager fill (mem_fill.c). */
/* Copy len bytes at dst (pages already in, or no longer mapped, are skipped). 0, or
 * -errno: -EAGAIN while an event is pending, -ESRCH once the address space is gone.
 * *first_exists: the first page was not copied (whoever faulted on it may need
 * waking). */
int lazy_uffd_copy(int uffd, uint64_t dst, const uint8_t *src, uint64_t len,
		   bool *first_exists);
/* The pieces of a process of the image: its lazily restored runs, in file order. */
int lazy_proc_pieces(const struct restore_proc *rp, struct lazy_pieces *ps);

/* Eager restore through userfaultfd (mem_fill.c): a process's big private anonymous
 * memory is registered as a lazy one's would be, and cryo copies all of it in, two
 * threads at once, before the task goes on. */
/* May this restore fill so (not --lazy-pages; CRYO_FILL=task says no)? */
bool fill_wanted(const struct restore_ctx *ctx);
/* Is it worth it for this process, its lazy marks made (enough bytes, and a
 * userfaultfd here that can)? */
bool fill_worth(struct restore_proc *rp);
/* At the task's stop: copy every marked byte in through uffd. */
int fill_proc(struct restore_proc *rp, int uffd);
/* The chunks to copy: each (file, chunk) holding bytes of a piece, in file order. */
struct fill_job {
	uint32_t src;
	uint64_t chunk;
};
int fill_jobs(const struct lazy_pieces *ps, uint32_t chunk_size, struct fill_job **jobs,
	      size_t *nr);

#endif
