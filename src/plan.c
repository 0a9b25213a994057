/* The restore plan region: executor blob, system call table and data, built in cryo's
 * own memory at the address the new task will see it at. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "plan.h"
#include "sys.h"

#define BLOB_AREA CR_PAGE_SIZE

size_t plan_region_size(size_t calls, size_t data_bytes)
{
	return BLOB_AREA + CR_ALIGN_UP((calls + 1) * sizeof(struct plan_call), CR_PAGE_SIZE) +
	       CR_ALIGN_UP(data_bytes, CR_PAGE_SIZE);
}

int plan_init(struct plan *p, uint64_t addr, size_t calls, size_t data_bytes)
{
	size_t size = plan_region_size(calls, data_bytes);
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
	memcpy(m, cr_blob_start, CR_BLOB_SIZE);
	p->calls = (struct plan_call *)(addr + BLOB_AREA);
	p->max_calls = calls;
	p->data = addr + BLOB_AREA + CR_ALIGN_UP((calls + 1) * sizeof(struct plan_call),
						 CR_PAGE_SIZE);
	p->data_end = addr + size;
	return 0;
}

void plan_free(struct plan *p)
{
	if (p->base)
		munmap((void *)p->base, p->size);
	free(p->labels);
	memset(p, 0, sizeof(*p));
}

void plan_call(struct plan *p, const char *label, uint32_t flags, long nr, uint64_t a1,
	       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6)
{
	struct plan_call *c;

	if (p->nr_calls >= p->max_calls) {
		p->overflow = 1;
		return;
	}
	c = &p->calls[p->nr_calls];
	plan_call_set(c, flags, nr, a1, a2, a3, a4, a5, a6);
	p->labels[p->nr_calls++] = label;
}

uint64_t plan_data(struct plan *p, const void *buf, size_t len)
{
	uint64_t at = CR_ALIGN_UP(p->data, 16);

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
	return (uint64_t)&p->calls[p->nr_calls];
}

int plan_seal(struct plan *p)
{
	if (p->overflow)
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
	return p->base + CR_BLOB_STUB_OFF;
}

uint64_t plan_blob(const struct plan *p)
{
	return p->base;
}
