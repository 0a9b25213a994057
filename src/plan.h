/* The restore plan: a region mapped at an address free in both cryo's and the
 * restored process's layout, holding the restore runner, tables of system calls and
 * their data. The new task inherits it at clone time and runs it in one go. A plan is
 * built twice: once counting, which sizes the region, then for real. */
#ifndef CRYO_PLAN_H
#define CRYO_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "remote.h"

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
	/* Counting: nothing is stored, only sizes are added up. */
	bool counting;
	size_t data_bytes;
	uint8_t *scratch;		/* what counting plan_data hands out */
	size_t scratch_len;
};

/* Start a counting pass. */
void plan_count(struct plan *p);
/* Map a plan region sized by a counting pass `c` at `addr`. */
int plan_init(struct plan *p, uint64_t addr, const struct plan *c);
void plan_free(struct plan *p);
/* Total size of the region a counting pass asks for. */
size_t plan_region_size(const struct plan *c);

/* Append a call; `label` (static or plan-lifetime string) names it in errors. */
void plan_call(struct plan *p, const char *label, uint32_t flags, long nr, uint64_t a1,
	       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6);
/* Copy data into the region (zeroed if buf is NULL); returns its address there, 0 on
 * overflow. While counting, the address is of scratch memory the caller may fill. */
uint64_t plan_data(struct plan *p, const void *buf, size_t len);
/* End the current table and start another one (for another thread); returns the
 * new table's address. */
uint64_t plan_new_table(struct plan *p);
/* A stop block for a table run by the restore runner (struct run_stop). */
uint64_t plan_stop_block(struct plan *p, pid_t tgid, pid_t tid, int sig);
/* Finish the table; -1 if anything overflowed. */
int plan_seal(struct plan *p);
uint64_t plan_table(const struct plan *p);
/* The restore runner's `syscall` instruction, and its table entry point. */
uint64_t plan_stub(const struct plan *p);
uint64_t plan_runner(const struct plan *p);

/* ---- finding room in an address space ---- */

struct range {
	uint64_t start, end;
};

struct ranges {
	struct range *r;
	size_t nr, cap;
};

int ranges_add(struct ranges *rs, uint64_t start, uint64_t end);
/* cryo's own mappings. */
int ranges_add_self(struct ranges *rs);
/* The lowest gap of `size` bytes (2 MiB aligned, above 1 MiB) outside every range;
 * 0 if none. Sorts the ranges. */
uint64_t ranges_find_gap(struct ranges *busy, uint64_t size);
/* A gap of `size` bytes as close as possible to `hint` (page aligned, a free page on
 * each side); 0 if none. */
uint64_t ranges_find_gap_near(struct ranges *busy, uint64_t size, uint64_t hint);

/* The calls unmapping all user memory but the ranges in `keep` (sorted here). While
 * counting, as many calls as there could be. */
void plan_unmap_except(struct plan *p, struct ranges *keep);

#endif
