/* Transparent huge pages: a MADV_HUGEPAGE mapping and one made huge by MADV_COLLAPSE
 * (no flag) are backed by huge pages after restore too (smaps AnonHugePages of each),
 * with their data. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

#include "tlib.h"

#define HUGE (2UL << 20)
#define LEN (8 * HUGE)
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

/* A 2 MiB-aligned private anonymous mapping of LEN bytes (the rest unmapped). */
static uint8_t *map_aligned(void)
{
	uint8_t *raw = mmap(NULL, LEN + HUGE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	TL_CHECK(raw != MAP_FAILED, "mmap: %s", strerror(errno));
	a = ((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1);
	if (a > (uintptr_t)raw)
		munmap(raw, a - (uintptr_t)raw);
	munmap((void *)(a + LEN), (uintptr_t)raw + HUGE - a);
	return (uint8_t *)a;
}

/* AnonHugePages (kB) of the VMA starting at addr, from /proc/self/smaps. */
static long huge_kb(const void *addr)
{
	char line[512];
	bool in = false;
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	TL_CHECK(f, "smaps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;

		/* A VMA's first line; no field name is hex digits and a dash. */
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			if (in)
				break;
			in = s == (uintptr_t)addr;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	TL_CHECK(kb >= 0, "no smaps entry with AnonHugePages at %p", addr);
	return kb;
}

int main(void)
{
	uint8_t *adv, *col;
	long before_adv, before_col;

	tl_init();
	adv = map_aligned();
	col = map_aligned();
	TL_CHECK(!madvise(adv, LEN, MADV_HUGEPAGE), "MADV_HUGEPAGE: %s", strerror(errno));
	tl_fill(adv, LEN, 71);
	tl_fill(col, LEN, 72);
	TL_CHECK(!madvise(col, LEN, MADV_COLLAPSE), "MADV_COLLAPSE: %s", strerror(errno));
	before_adv = huge_kb(adv);
	before_col = huge_kb(col);
	TL_CHECK(before_adv > 0 && before_col > 0,
		 "no huge pages before the dump (%ld kB, %ld kB)", before_adv, before_col);
	tl_ready();
	tl_wait_go();
	TL_CHECK(tl_verify(adv, LEN, 71) < 0, "MADV_HUGEPAGE mapping data differs");
	TL_CHECK(tl_verify(col, LEN, 72) < 0, "collapsed mapping data differs");
	TL_CHECK(huge_kb(adv) > 0, "MADV_HUGEPAGE mapping: no huge pages (%ld kB before)",
		 before_adv);
	TL_CHECK(huge_kb(col) > 0, "collapsed mapping: no huge pages (%ld kB before)",
		 before_col);
	tl_pass();
}
