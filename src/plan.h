/* The restore plan: a region mapped at an address free in both cryo's and the
 * restored process's layout, holding the executor blob, a table of system calls and
 * their data. The new task inherits it at clone time and runs it in one go. */
#ifndef CRYO_PLAN_H
#define CRYO_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "ptrace.h"

struct plan {
	uint64_t base;			/* region address (same in cryo and the task) */
	size_t size;
	struct plan_call *calls;	/* inside the region */
	size_t nr_calls, max_calls;
	uint64_t data;			/* bump allocator for data, inside the region */
	uint64_t data_end;
	size_t table_start;		/* index of the current table's first call */
	const char **labels;		/* what each call does, for error messages */
	int overflow;
};

/* Map a plan region of `calls` entries and `data_bytes` of data at `addr`. */
int plan_init(struct plan *p, uint64_t addr, size_t calls, size_t data_bytes);
void plan_free(struct plan *p);
/* Total size a plan of this many calls and data bytes needs. */
size_t plan_region_size(size_t calls, size_t data_bytes);

/* Append a call; `label` (static or plan-lifetime string) names it in errors. */
void plan_call(struct plan *p, const char *label, uint32_t flags, long nr, uint64_t a1,
	       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6);
/* Copy data into the region; returns its address there (0 on overflow). */
uint64_t plan_data(struct plan *p, const void *buf, size_t len);
/* End the current table and start another one (for another thread); returns the
 * new table's address. */
uint64_t plan_new_table(struct plan *p);
/* Finish the table; -1 if anything overflowed. */
int plan_seal(struct plan *p);
uint64_t plan_table(const struct plan *p);
uint64_t plan_stub(const struct plan *p);
uint64_t plan_blob(const struct plan *p);

#endif
