/* 64 MiB of patterned memory of which the restored process reads one page in 20, then
 * asks the kernel (mincore) which of its pages are in: after a lazy restore with
 * --lazy-fill on-touch exactly those it touched, and still only those a while later;
 * after any other restore all of them (at once, or once the background fill is done).
 * Every byte is checked at the end. The harness names the mode in CRYO_TEST_MODE. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tlib.h"

#define LEN (64UL << 20)
#define PAGE 4096UL
#define PAGES (LEN / PAGE)
#define EVERY 20
#define SEED 0x70c4
#define FILL_WAIT 120.0		/* s: bounds a background fill on a busy machine */

static size_t resident(const uint8_t *mem)
{
	static unsigned char vec[PAGES];
	size_t n = 0;

	TL_CHECK(!mincore((void *)mem, LEN, vec), "mincore: %s", strerror(errno));
	for (size_t i = 0; i < PAGES; i++)
		n += vec[i] & 1;
	return n;
}

static void check_page(const uint8_t *mem, size_t page)
{
	for (size_t i = page * PAGE; i < (page + 1) * PAGE; i += 61)
		TL_CHECK(mem[i] == tl_pattern(i, SEED), "byte %zu is 0x%02x, expected 0x%02x", i,
			 mem[i], tl_pattern(i, SEED));
}

/* On touch: what was read is in, and nothing else, now or later. */
static void check_on_touch(const uint8_t *mem, size_t touched)
{
	size_t n = resident(mem);

	TL_CHECK(n == touched, "%zu of %lu pages in after touching %zu (on touch: only those)",
		 n, PAGES, touched);
	usleep(300 * 1000);
	n = resident(mem);
	TL_CHECK(n == touched, "%zu of %lu pages in 300 ms after touching %zu (on touch, "
		 "nothing fills the rest)", n, PAGES, touched);
}

/* Background: the rest comes without being touched. */
static void check_filled(const uint8_t *mem)
{
	double end = tl_now() + FILL_WAIT;
	size_t n;

	while ((n = resident(mem)) < PAGES && tl_now() < end)
		usleep(20 * 1000);
	TL_CHECK(n == PAGES, "%zu of %lu pages in, %.0f s after the go signal", n, PAGES,
		 FILL_WAIT);
}

int main(void)
{
	const char *mode = getenv("CRYO_TEST_MODE");
	size_t touched = 0;
	uint8_t *mem;
	long bad;

	tl_init();
	mem = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TL_CHECK(mem != MAP_FAILED, "mmap: %s", strerror(errno));
	/* Small pages: a mapping with huge pages is restored eagerly. */
	TL_CHECK(!madvise(mem, LEN, MADV_NOHUGEPAGE), "madvise: %s", strerror(errno));
	tl_fill(mem, LEN, SEED);
	TL_CHECK(resident(mem) == PAGES, "not every page in before the dump");
	tl_ready();
	tl_wait_go();
	for (size_t p = 0; p < PAGES; p += EVERY, touched++)
		check_page(mem, p);
	if (mode && !strcmp(mode, "lazytouch"))
		check_on_touch(mem, touched);
	else
		check_filled(mem);
	bad = tl_verify(mem, LEN, SEED);
	TL_CHECK(bad < 0, "byte %ld is 0x%02x, expected 0x%02x", bad, mem[bad],
		 tl_pattern(bad, SEED));
	TL_CHECK(resident(mem) == PAGES, "not every page in once all were read");
	tl_pass();
}
