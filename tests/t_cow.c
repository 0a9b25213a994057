/* Memory shared across fork: a parent fills 512 MiB of private anonymous memory and
 * a shared anonymous region, then forks 4 children that read the private memory (each
 * writes one page of its own there) and write their slot of the shared region. After
 * restore every byte is as it was, the shared region is still one (what a child
 * writes now, the parent sees), and the five processes' total PSS is within 1.2x of
 * what it was: the copy-on-write pages came back shared, not copied. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tlib.h"

#define PRIV_LEN (512UL << 20)
#define SHARED_LEN (4UL << 20)
#define KIDS 4
#define PAGE 4096UL

static uint8_t *priv;
static volatile uint8_t *shared;
static pid_t kids[KIDS];

/* Each child's own page of the private memory. */
static size_t own_page(int k)
{
	return (size_t)(k + 1) * 1000 * PAGE;
}

static void fill_private(void)
{
	for (size_t off = 0; off < PRIV_LEN; off += PAGE)
		memset(priv + off, (uint8_t)(off / PAGE * 7 + 1), PAGE);
}

static uint8_t parent_byte(size_t off)
{
	return (uint8_t)(off / PAGE * 7 + 1);
}

static void check_private(int k)
{
	for (size_t off = 0; off < PRIV_LEN; off += PAGE) {
		uint8_t want = k >= 0 && off == own_page(k) ? (uint8_t)(0xa0 + k) : parent_byte(off);

		TL_CHECK(priv[off] == want && priv[off + PAGE - 1] == want,
			 "%s: private page %zu holds 0x%02x, not 0x%02x",
			 k >= 0 ? "a child" : "the parent", off / PAGE, priv[off], want);
	}
}

static long pss_kb(pid_t pid)
{
	char path[64], buf[4096], *at;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	f = fopen(path, "r");
	TL_CHECK(f, "cannot open %s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	at = strstr(buf, "\nPss:");
	TL_CHECK(at, "no Pss in %s", path);
	return strtol(at + 5, NULL, 10);
}

static long total_pss(void)
{
	long kb = pss_kb(getpid());

	for (int k = 0; k < KIDS; k++)
		kb += pss_kb(kids[k]);
	return kb;
}

static void child(int k)
{
	volatile uint64_t sum = 0;

	for (size_t off = 0; off < PRIV_LEN; off += PAGE)
		sum += priv[off];
	memset(priv + own_page(k), 0xa0 + k, PAGE);
	shared[k * PAGE] = 0x50 + k;
	tl_wait_go();
	check_private(k);
	TL_CHECK(shared[k * PAGE] == 0x50 + k, "child %d: its shared slot was lost", k);
	shared[k * PAGE + 1] = 0x60 + k;	/* the parent must see this */
	_exit(0);
}

int main(void)
{
	long before, after;
	int st;

	tl_init();
	priv = mmap(NULL, PRIV_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	shared = mmap(NULL, SHARED_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	TL_CHECK(priv != MAP_FAILED && shared != MAP_FAILED, "mmap: %s", strerror(errno));
	madvise(priv, PRIV_LEN, MADV_NOHUGEPAGE);
	fill_private();
	for (int k = 0; k < KIDS; k++) {
		kids[k] = fork();
		TL_CHECK(kids[k] >= 0, "fork: %s", strerror(errno));
		if (kids[k] == 0)
			child(k);
	}
	for (int k = 0; k < KIDS; k++)
		while (shared[k * PAGE] != 0x50 + k)
			usleep(1000);
	before = total_pss();
	printf("PSS before: %ld kB\n", before);
	tl_ready();
	tl_wait_go();
	after = total_pss();
	printf("PSS after: %ld kB (%.2fx)\n", after, (double)after / before);
	TL_CHECK(after <= before * 12 / 10, "total PSS %ld kB, %.2fx the %ld kB before", after,
		 (double)after / before, before);
	for (int k = 0; k < KIDS; k++)
		kill(kids[k], SIGUSR1);
	for (int k = 0; k < KIDS; k++) {
		TL_CHECK(waitpid(kids[k], &st, 0) == kids[k] && WIFEXITED(st) && !WEXITSTATUS(st),
			 "child %d ended with status 0x%x", k, st);
		TL_CHECK(shared[k * PAGE + 1] == 0x60 + k,
			 "child %d's write to the shared memory is not seen by the parent", k);
	}
	check_private(-1);
	tl_pass();
}
