/* Iterative dumps (mem_track.c): the pages written since the parent image, found by
 * userfaultfd write protection in asynchronous mode and PAGEMAP_SCAN; the tracker
 * process that holds each userfaultfd between rounds; restore reading the chain. */
#ifndef CRYO_MEM_TRACK_H
#define CRYO_MEM_TRACK_H

#include "cryo.h"
#include "mem.h"
#include "task.h"

/* Dump: the parent image and its tracker (before the tree is seized). */
int track_dump_start(struct dump_ctx *ctx, const struct cryo_dump_opts *opts);
/* Dump, per process, once its VMAs are read: the parent's page map, its userfaultfd
 * taken from the tracker, the VMAs it registered told apart from the process's own. */
int track_proc_start(struct dump_proc *p);
/* Dump, last of a process's collection, when the tracking is left for the next
 * round: a userfaultfd made in its mm if the tracker had none for it, every VMA whose
 * pages were saved registered and protected, the page map's tracked ranges. */
int track_arm(struct dump_proc *p);
/* Dump: the present pages `data` of VMA i split into those this image saves (left in
 * data) and those unchanged since the parent (in_parent, empty on entry); the VMA
 * armed for the next round when asked. */
int track_vma_pages(struct dump_proc *p, int pm_fd, size_t i, struct runs *data,
		    struct runs *in_parent);
/* Dump: the data runs a pre-dump reads after the tree runs again (NULL: read now);
 * track_keep_late keeps a copy of them. */
const struct runs *track_late(const struct dump_proc *p);
int track_keep_late(struct dump_proc *p, struct runs *all);
/* Dump: the page map's runs, both kinds in address order (runs_pb_free frees them). */
PageRun **track_runs_to_pb(const struct runs *data, const struct runs *parent, size_t *n);
/* Dump: before the images are written: the tracker left for the next round. */
int track_dump_arm(struct dump_ctx *ctx);
/* Dump: the inventory's fields. */
int track_dump_inventory(struct dump_ctx *ctx, Inventory *inv);
/* Dump: after the tree was given back or killed. */
void track_dump_end(struct dump_ctx *ctx, bool ok);
void track_proc_free(struct dump_proc *p);

/* Restore: refuse a pre-dump; check a chain's inventory. */
int track_check_inventory(struct restore_ctx *ctx);
/* Restore: where each page of the process comes from (rp->srcs, rp->segs). */
int track_restore_sources(struct restore_proc *rp);
void track_restore_free(struct restore_proc *rp);
void track_restore_ctx_free(struct restore_ctx *ctx);

/* cryo check: 1 if asynchronous write protection tracks writes here. */
int track_probe(void);

/* Pure (unit-tested): the pages of `present` the parent image has unchanged: not
 * written since (not in `written`) and inside one of the parent's runs (`covered`). */
int track_from_parent(const struct runs *present, const struct runs *written,
		      const struct runs *covered, struct runs *out);
/* The starttime field of /proc/PID/stat text, or 0. */
uint64_t track_parse_starttime(const char *stat);

#endif
