/* 192 MiB of patterned memory that the restored process changes while a lazy restore
 * may still be filling it: it forks at once (the child checks every byte), drops a
 * range (MADV_DONTNEED: zeros from then on), unmaps one, moves one (mremap), and checks
 * all of it, three times over; 100 more children end as soon as forked. Asks the
 * harness to kill the supplier or the guard at a random moment ("LAZY-KILL"): then it
 * must die, or pass every check. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tlib.h"

#define MIB (1UL << 20)
#define LEN (192 * MIB)
#define QUICK_FORKS 100
#define SEED 0x1a2e
#define DROP_AT (16 * MIB)	/* [16, 24) MiB dropped */
#define GAP_AT (64 * MIB)	/* [64, 72) MiB unmapped */
#define MOVE_AT (128 * MIB)	/* [128, 160) MiB moved elsewhere */
#define SPAN (8 * MIB)
#define MOVE_LEN (32 * MIB)

static void check_range(const uint8_t *p, size_t len, uint64_t from, const char *what)
{
	for (size_t i = 0; i < len; i += 509)
		TL_CHECK(p[i] == tl_pattern(from + i, SEED), "%s: byte %zu is 0x%02x, expected "
			 "0x%02x", what, from + i, p[i], tl_pattern(from + i, SEED));
}

static void check_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i += 4096)
		TL_CHECK(!p[i], "dropped byte %zu is 0x%02x, expected 0", DROP_AT + i, p[i]);
}

/* The child checks every byte it inherited, unchanged. */
static void child(const uint8_t *mem)
{
	long bad = tl_verify(mem, LEN, SEED);

	if (bad >= 0) {
		printf("FAIL: child: byte %ld is 0x%02x, expected 0x%02x\n", bad, mem[bad],
		       tl_pattern(bad, SEED));
		_exit(1);
	}
	_exit(0);
}

/* Children that end and are reaped at once: the supplier may look for one only once
 * it is gone, which must not be taken for a failure (the tree killed). */
static void quick_forks(void)
{
	for (int i = 0; i < QUICK_FORKS; i++) {
		int status;
		pid_t q = fork();

		TL_CHECK(q >= 0, "fork: %s", strerror(errno));
		if (!q)
			_exit(0);
		TL_CHECK(waitpid(q, &status, 0) == q && WIFEXITED(status) && !WEXITSTATUS(status),
			 "a quick child ended with 0x%x", status);
	}
}

int main(void)
{
	uint8_t *mem, *moved;
	int status;
	pid_t c;

	tl_init();
	mem = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TL_CHECK(mem != MAP_FAILED, "mmap: %s", strerror(errno));
	tl_fill(mem, LEN, SEED);
	printf("LAZY-KILL\n");
	tl_ready();
	tl_wait_go();
	c = fork();
	TL_CHECK(c >= 0, "fork: %s", strerror(errno));
	if (!c)
		child(mem);
	quick_forks();
	TL_CHECK(!madvise(mem + DROP_AT, SPAN, MADV_DONTNEED), "madvise: %s", strerror(errno));
	TL_CHECK(!munmap(mem + GAP_AT, SPAN), "munmap: %s", strerror(errno));
	moved = mremap(mem + MOVE_AT, MOVE_LEN, MOVE_LEN, MREMAP_MAYMOVE | MREMAP_FIXED,
		       mem + LEN + 64 * MIB);
	TL_CHECK(moved != MAP_FAILED, "mremap: %s", strerror(errno));
	for (int round = 0; round < 3; round++) {
		check_range(mem, DROP_AT, 0, "before the dropped range");
		check_zero(mem + DROP_AT, SPAN);
		check_range(mem + DROP_AT + SPAN, GAP_AT - DROP_AT - SPAN, DROP_AT + SPAN,
			    "between dropped and unmapped");
		check_range(mem + GAP_AT + SPAN, MOVE_AT - GAP_AT - SPAN, GAP_AT + SPAN,
			    "after the unmapped range");
		check_range(moved, MOVE_LEN, MOVE_AT, "moved");
		check_range(mem + MOVE_AT + MOVE_LEN, LEN - MOVE_AT - MOVE_LEN,
			    MOVE_AT + MOVE_LEN, "after the moved range");
	}
	TL_CHECK(waitpid(c, &status, 0) == c, "waitpid: %s", strerror(errno));
	TL_CHECK(WIFEXITED(status) && !WEXITSTATUS(status), "child ended with 0x%x", status);
	tl_pass();
}
