/* The restore plan region: the restore runner, system call tables and data, built in
 * cryo's own memory at the address the new task will see it at, after a counting
 * pass over the same code has sized it (a count may exceed what is built, never fall
 * short of it). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "plan.h"
#include "sys.h"

#define RUNNER_AREA CR_PAGE_SIZE
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
