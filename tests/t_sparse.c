/* A 4 GiB MAP_NORESERVE mapping with exactly 10 touched pages at scattered offsets:
 * after restore those pages hold their data, untouched pages read zero and only the
 * touched pages are resident (restore did not populate the mapping). */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "tlib.h"

#define PAGE 4096UL
#define SPARSE_LEN (4UL << 30)
#define NR_TOUCHED 10

/* Page indexes spread over the 4 GiB, first and last page included. */
static const unsigned long touched[NR_TOUCHED] = {
	0, 1, 4097, 77777, 262144, 300001, 524287, 600000, 999999, SPARSE_LEN / PAGE - 1,
};

static void check_resident(const uint8_t *map)
{
	static unsigned char vec[SPARSE_LEN / PAGE];
	unsigned long resident = 0;

	TL_CHECK(!mincore((void *)map, SPARSE_LEN, vec), "mincore: %s", strerror(errno));
	for (unsigned long i = 0; i < SPARSE_LEN / PAGE; i++)
		resident += vec[i] & 1;
	TL_CHECK(resident <= NR_TOUCHED, "%lu pages are resident, only %d were touched",
		 resident, NR_TOUCHED);
}

static void check_untouched(const uint8_t *map)
{
	static const unsigned long probes[] = { 2, 4096, 4098, 500000, SPARSE_LEN / PAGE - 2 };

	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		const uint8_t *pg = map + probes[i] * PAGE;

		for (unsigned long b = 0; b < PAGE; b++)
			TL_CHECK(!pg[b], "untouched page %lu byte %lu is 0x%02x", probes[i], b,
				 pg[b]);
	}
}

int main(void)
{
	uint8_t *map;

	tl_init();
	map = mmap(NULL, SPARSE_LEN, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	TL_CHECK(map != MAP_FAILED, "mmap 4 GiB: %s", strerror(errno));
	/* No transparent huge pages: a touch must dirty one page, not 512. */
	TL_CHECK(!madvise(map, SPARSE_LEN, MADV_NOHUGEPAGE), "madvise: %s", strerror(errno));
	for (int i = 0; i < NR_TOUCHED; i++)
		tl_fill(map + touched[i] * PAGE, PAGE, 500 + i);
	tl_ready();
	tl_wait_go();
	check_resident(map);
	for (int i = 0; i < NR_TOUCHED; i++) {
		long bad = tl_verify(map + touched[i] * PAGE, PAGE, 500 + i);

		TL_CHECK(bad < 0, "touched page %lu differs at byte %ld", touched[i], bad);
	}
	check_untouched(map);
	tl_pass();
}
