/* 150 MiB of touched anonymous memory with a pattern, verified byte for byte after
 * restore (many page runs, several page-file buffers and preadv calls). */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "tlib.h"

#define BIG_LEN (150UL << 20)
#define SEED 0xb16

int main(void)
{
	uint8_t *big;
	long bad;

	tl_init();
	big = mmap(NULL, BIG_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TL_CHECK(big != MAP_FAILED, "mmap %lu bytes: %s", BIG_LEN, strerror(errno));
	tl_fill(big, BIG_LEN, SEED);
	tl_ready();
	tl_wait_go();
	bad = tl_verify(big, BIG_LEN, SEED);
	TL_CHECK(bad < 0, "memory differs at offset %ld (page %ld): 0x%02x, expected 0x%02x", bad,
		 bad / 4096, big[bad], tl_pattern(bad, SEED));
	tl_pass();
}
