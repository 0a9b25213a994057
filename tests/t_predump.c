/* A pre-dump chain: the harness pre-dumps twice, then dumps with --prev-images-dir
 * and --track-mem, telling the program (SIGUSR2) to change its memory after each
 * pre-dump: 1% of its pages rewritten, pages dropped (MADV_DONTNEED) and dropped
 * pages written again, a mapping replaced at the same address, one moved (mremap)
 * and one made new. After restore every page holds what the program wrote last. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "tlib.h"

#define PAGE 4096UL
#define NR_PAGES 4096UL			/* the main region: 16 MiB */
#define SMALL 64UL			/* pages of the other regions */
#define DROPPED 0xff			/* generation of a page dropped: reads zero */

static uint8_t *main_map, *replaced, *moved, *fresh, *hole;
static uint8_t gen[NR_PAGES];		/* what each page of the main region holds */
static uint8_t replaced_gen, moved_gen = 1, fresh_gen;
static volatile sig_atomic_t rewrite_asked;
static int rounds;

static uint64_t seed_of(unsigned long page, uint8_t g)
{
	return page * 1000 + g;
}

static void fill_main(unsigned long page)
{
	tl_fill(main_map + page * PAGE, PAGE, seed_of(page, gen[page]));
}

static uint8_t *map_small(void *at)
{
	uint8_t *m = mmap(at, SMALL * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | (at ? MAP_FIXED : 0), -1, 0);

	TL_CHECK(m != MAP_FAILED, "mmap: %s", strerror(errno));
	return m;
}

static void on_usr2(int sig)
{
	(void)sig;
	rewrite_asked = 1;
}

/* Round k (1, 2, ...): what changes between two dumps. */
static void rewrite(int k)
{
	for (unsigned long i = 0; i < NR_PAGES; i++) {
		if ((i * 7 + k * 13) % 97 == 0) {
			gen[i] = k;
			fill_main(i);
		} else if ((i * 11 + k) % 499 == 0) {
			gen[i] = DROPPED;
			TL_CHECK(!madvise(main_map + i * PAGE, PAGE, MADV_DONTNEED),
				 "madvise: %s", strerror(errno));
		} else if (gen[i] == DROPPED && k > 1) {
			gen[i] = k;
			fill_main(i);
		}
	}
	if (k == 1) {
		/* The same range, a new mapping: nothing of it is tracked. */
		replaced = map_small(replaced);
		replaced_gen = 100 + k;
		tl_fill(replaced, SMALL * PAGE, replaced_gen);
	}
	if (k == 2) {
		uint8_t *to = mremap(moved, SMALL * PAGE, SMALL * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				     hole + 4 * SMALL * PAGE);

		TL_CHECK(to != MAP_FAILED, "mremap: %s", strerror(errno));
		moved = to;
		fresh = map_small(NULL);
		fresh_gen = 200 + k;
		tl_fill(fresh, SMALL * PAGE, fresh_gen);
	}
	printf("REWRITTEN %d\n", k);
	fflush(stdout);
}

static void verify(void)
{
	for (unsigned long i = 0; i < NR_PAGES; i++) {
		const uint8_t *pg = main_map + i * PAGE;

		if (gen[i] == DROPPED) {
			for (unsigned long b = 0; b < PAGE; b++)
				TL_CHECK(!pg[b], "dropped page %lu reads 0x%02x at %lu", i, pg[b], b);
			continue;
		}
		TL_CHECK(tl_verify(pg, PAGE, seed_of(i, gen[i])) < 0,
			 "page %lu differs from generation %u", i, gen[i]);
	}
	TL_CHECK(tl_verify(replaced, SMALL * PAGE, replaced_gen) < 0, "the replaced mapping differs");
	TL_CHECK(tl_verify(moved, SMALL * PAGE, moved_gen) < 0, "the moved mapping differs");
	TL_CHECK(!fresh_gen || tl_verify(fresh, SMALL * PAGE, fresh_gen) < 0,
		 "the new mapping differs");
}

/* A process of its own with a userfaultfd: its memory cannot be tracked. */
static void use_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);

	TL_CHECK(fd >= 0, "userfaultfd: %s", strerror(errno));
	TL_CHECK(!ioctl(fd, UFFDIO_API, &api), "UFFDIO_API: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	tl_init();
	if (argc > 2 && !strcmp(argv[2], "uffd"))
		use_uffd();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR2, &sa, NULL);
	main_map = mmap(NULL, NR_PAGES * PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TL_CHECK(main_map != MAP_FAILED, "mmap: %s", strerror(errno));
	/* Single pages: a rewrite must dirty one page, not a huge page's 512. */
	madvise(main_map, NR_PAGES * PAGE, MADV_NOHUGEPAGE);
	for (unsigned long i = 0; i < NR_PAGES; i++)
		fill_main(i);
	replaced = map_small(NULL);
	tl_fill(replaced, SMALL * PAGE, replaced_gen);
	moved = map_small(NULL);
	tl_fill(moved, SMALL * PAGE, moved_gen);
	/* Room held for the move's destination. */
	hole = mmap(NULL, 8 * SMALL * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TL_CHECK(hole != MAP_FAILED, "mmap: %s", strerror(errno));
	printf("PRE-DUMPS 2\n");
	tl_ready();
	while (!tl_go) {
		if (rewrite_asked) {
			rewrite_asked = 0;
			rewrite(++rounds);
		}
		usleep(1000);
	}
	verify();
	tl_pass();
}
