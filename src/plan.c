/* The restore plan region: the restore runner, system call tables and data, built in
 * cryo's own memory at the address the new task will see it at, after a counting
 * pass over the same code has sized it (a count may exceed what is built, never fall
 * short of it); and the search for free room in an address space. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "plan.h"
#include "proc.h"
#include "sys.h"
#include "util.h"

#define RUNNER_AREA CR_PAGE_SIZE
#define PLAN_LOW_LIMIT (1UL << 20)
#define RUNNER_LEN CR_OFF(cr_run_end, cr_run_start)

void plan_count(struct plan *p)
{
	memset(p, 0, sizeof(*p));
	p->counting = true;
}

size_t plan_region_size(const struct plan *c)
{
	return RUNNER_AREA + CR_ALIGN_UP((c->nr_calls + 1) * sizeof(struct plan_call),
					 CR_PAGE_SIZE) +
	       CR_ALIGN_UP(c->data_bytes + 16, CR_PAGE_SIZE);
}

int plan_init(struct plan *p, uint64_t addr, const struct plan *c)
{
	size_t size = plan_region_size(c), calls = c->nr_calls + 1;
	void *m;

	memset(p, 0, sizeof(*p));
	m = mmap((void *)addr, size, PROT_READ | PROT_WRITE | PROT_EXEC,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return cr_perr("cannot map the restore plan at 0x%lx", (unsigned long)addr);
	if ((uint64_t)m != addr) {
		munmap(m, size);
		return cr_err("cannot map the restore plan at 0x%lx", (unsigned long)addr);
	}
	p->labels = calloc(calls + 1, sizeof(*p->labels));
	if (!p->labels) {
		munmap(m, size);
		return cr_err("out of memory");
	}
	p->base = addr;
	p->size = size;
	memcpy(m, cr_run_start, RUNNER_LEN);
	p->calls = (struct plan_call *)(addr + RUNNER_AREA);
	p->max_calls = calls;
	p->data = addr + RUNNER_AREA + CR_ALIGN_UP(calls * sizeof(struct plan_call), CR_PAGE_SIZE);
	p->data_end = addr + size;
	return 0;
}

void plan_free(struct plan *p)
{
	if (p->base)
		munmap((void *)p->base, p->size);
	free(p->labels);
	free(p->scratch);
	memset(p, 0, sizeof(*p));
}

void plan_call(struct plan *p, const char *label, uint32_t flags, long nr, uint64_t a1,
	       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6)
{
	struct plan_call *c;

	if (p->counting) {
		p->nr_calls++;
		return;
	}
	if (p->nr_calls >= p->max_calls) {
		p->overflow = 1;
		return;
	}
	c = &p->calls[p->nr_calls];
	plan_call_set(c, flags, nr, a1, a2, a3, a4, a5, a6);
	p->labels[p->nr_calls++] = label;
}

static uint64_t count_data(struct plan *p, size_t len)
{
	p->data_bytes = CR_ALIGN_UP(p->data_bytes, 16) + len;
	if (len > p->scratch_len) {
		uint8_t *n = realloc(p->scratch, len);

		if (!n) {
			p->overflow = 1;
			return 0;
		}
		p->scratch = n;
		p->scratch_len = len;
	}
	return (uint64_t)p->scratch;
}

uint64_t plan_data(struct plan *p, const void *buf, size_t len)
{
	uint64_t at = CR_ALIGN_UP(p->data, 16);

	if (p->counting)
		return count_data(p, len);
	if (len > p->data_end - at) {
		p->overflow = 1;
		return 0;
	}
	if (buf)
		memcpy((void *)at, buf, len);
	else
		memset((void *)at, 0, len);
	p->data = at + len;
	return at;
}

static void plan_end_marker(struct plan *p)
{
	if (p->counting) {
		p->nr_calls++;
		return;
	}
	if (p->nr_calls >= p->max_calls) {
		p->overflow = 1;
		return;
	}
	memset(&p->calls[p->nr_calls], 0, sizeof(struct plan_call));
	p->calls[p->nr_calls].nr = PLAN_END;
	p->labels[p->nr_calls++] = NULL;
}

uint64_t plan_new_table(struct plan *p)
{
	plan_end_marker(p);
	p->table_start = p->nr_calls;
	return p->counting ? 0 : (uint64_t)&p->calls[p->nr_calls];
}

uint64_t plan_stop_block(struct plan *p, pid_t tgid, pid_t tid, int sig)
{
	struct run_stop st = {
		.mask = ~(1ULL << (sig - 1)), .tgid = tgid, .tid = tid, .sig = sig,
	};

	return plan_data(p, &st, sizeof(st));
}

int plan_seal(struct plan *p)
{
	if (p->overflow)
		return cr_err("internal error: the restore plan overflowed its region");
	if (p->counting)
		return 0;
	if (p->nr_calls >= p->max_calls)
		return cr_err("internal error: the restore plan overflowed its region");
	memset(&p->calls[p->nr_calls], 0, sizeof(struct plan_call));
	p->calls[p->nr_calls].nr = PLAN_END;
	return 0;
}

uint64_t plan_table(const struct plan *p)
{
	return (uint64_t)p->calls;
}

uint64_t plan_stub(const struct plan *p)
{
	return p->base + CR_OFF(cr_run_stub, cr_run_start);
}

uint64_t plan_runner(const struct plan *p)
{
	return p->base + CR_OFF(cr_run_table, cr_run_start);
}

/* ---- finding room in an address space ---- */

int ranges_add(struct ranges *rs, uint64_t start, uint64_t end)
{
	if (cr_grow(&rs->r, &rs->cap, rs->nr + 1, sizeof(*rs->r), 128))
		return -1;
	rs->r[rs->nr].start = start;
	rs->r[rs->nr].end = end;
	rs->nr++;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The lowest gap of `size` bytes (2 MiB aligned) outside every busy range. */
uint64_t ranges_find_gap(struct ranges *busy, uint64_t size)
{
	uint64_t at = PLAN_LOW_LIMIT;

	qsort(busy->r, busy->nr, sizeof(struct range), cmp_range);
	for (size_t i = 0; i < busy->nr; i++) {
		if (busy->r[i].end <= at)
			continue;
		if (busy->r[i].start >= at + size)
			return at;
		at = CR_ALIGN_UP(busy->r[i].end + CR_PAGE_SIZE, 2UL << 20);
	}
	return at + size <= CR_TASK_SIZE ? at : 0;
}

/* A free gap of `size` bytes as close as possible to `hint` (page aligned). */
uint64_t ranges_find_gap_near(struct ranges *busy, uint64_t size, uint64_t hint)
{
	uint64_t best = 0, best_dist = UINT64_MAX, at = PLAN_LOW_LIMIT;

	qsort(busy->r, busy->nr, sizeof(struct range), cmp_range);
	for (size_t i = 0; i <= busy->nr; i++) {
		uint64_t end = i < busy->nr ? busy->r[i].start : CR_TASK_SIZE;

		if (i < busy->nr && busy->r[i].end <= at)
			continue;
		/* Keep a page free on both sides. */
		if (end > at + size + 2 * CR_PAGE_SIZE) {
			uint64_t lo = at + CR_PAGE_SIZE, hi = end - size - CR_PAGE_SIZE;
			uint64_t pick = hint < lo ? lo : hint > hi ? hi : hint & CR_PAGE_MASK;
			uint64_t dist = pick > hint ? pick - hint : hint - pick;

			if (dist < best_dist) {
				best = pick;
				best_dist = dist;
			}
		}
		if (i < busy->nr && busy->r[i].end > at)
			at = busy->r[i].end;
	}
	return best;
}

int ranges_add_self(struct ranges *rs)
{
	struct proc_vmas self = { 0 };
	size_t len;
	char *txt = proc_read_file("/proc/self/maps", &len);
	int rc;

	if (!txt)
		return -1;
	rc = proc_parse_smaps(txt, len, &self);
	free(txt);
	for (size_t i = 0; !rc && i < self.nr; i++)
		rc = ranges_add(rs, self.v[i].start, self.v[i].end);
	proc_vmas_free(&self);
	return rc;
}

void plan_unmap_except(struct plan *p, struct ranges *keep)
{
	uint64_t at = 0;

	if (p->counting) {
		for (size_t i = 0; i <= keep->nr; i++)
			plan_call(p, "unmapping cryo's memory", 0, __NR_munmap, 0, 0, 0, 0, 0, 0);
		return;
	}
	qsort(keep->r, keep->nr, sizeof(struct range), cmp_range);
	for (size_t i = 0; i < keep->nr; i++) {
		if (keep->r[i].start >= keep->r[i].end)
			continue;
		if (keep->r[i].start > at)
			plan_call(p, "unmapping cryo's memory", 0, __NR_munmap, at,
				  keep->r[i].start - at, 0, 0, 0, 0);
		if (keep->r[i].end > at)
			at = keep->r[i].end;
	}
	if (at < CR_TASK_SIZE)
		plan_call(p, "unmapping cryo's memory", 0, __NR_munmap, at, CR_TASK_SIZE - at, 0,
			  0, 0, 0);
}
