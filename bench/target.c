/* The benchmarked process: builds its memory (idle | mem BYTES STEP | vmas N |
 * tree BYTES KIDS | conns PORT N | predump BYTES ROUNDS | beat PATH BYTES | exit),
 * says "R" on fd 3, pauses; SIGUSR1 checks its memory (or reads a byte on each
 * connection) and exits 0 if intact (a tree's root asks each child to check its own
 * first). SIGUSR2 (the copies case; predump has its own) touches 1 page in 20 of mem's
 * (checked, then written) and renames itself "touched" (or "touch-bad"), staying up. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define WORDS (PAGE / sizeof(uint64_t))

/* splitmix64: random-looking, never all-zero pages, cheap to regenerate. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void fill_page(uint64_t *p, uint64_t idx)
{
	for (size_t i = 0; i < WORDS; i++)
		p[i] = mix(idx * WORDS + i);
}

static int page_ok(const uint64_t *p, uint64_t idx)
{
	for (size_t i = 0; i < WORDS; i++)
		if (p[i] != mix(idx * WORDS + i))
			return 0;
	return 1;
}

static int page_zero(const uint64_t *p)
{
	for (size_t i = 0; i < WORDS; i++)
		if (p[i])
			return 0;
	return 1;
}

/* ---- mem BYTES STEP ---- */

static uint8_t *mem_base;
static size_t mem_pages, mem_step;

static int mem_setup(size_t bytes, size_t step)
{
	mem_pages = bytes / PAGE;
	mem_step = step ? step : 1;
	mem_base = mmap(NULL, mem_pages * PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem_base == MAP_FAILED)
		return -1;
	for (size_t i = 0; i < mem_pages; i += mem_step)
		fill_page((uint64_t *)(mem_base + i * PAGE), i);
	return 0;
}

static int mem_check(void)
{
	for (size_t i = 0; i < mem_pages; i++) {
		const uint64_t *p = (const uint64_t *)(mem_base + i * PAGE);

		if (i % mem_step == 0 ? !page_ok(p, i) : !page_zero(p))
			return -1;
	}
	return 0;
}

/* ---- predump BYTES ROUNDS: mem BYTES 1, and on each SIGUSR2 1% of the pages written
 * again (2 MiB blocks spread over the memory, the same contents), then "W" on fd 3,
 * closed after the last round (the last dump sees no pipe to the bench) ---- */

#define BLOCK_PAGES 512UL
static int rounds_left, round_nr;

static void on_usr2(int sig)
{
	size_t blocks = mem_pages / BLOCK_PAGES;
	int saved = errno;

	(void)sig;
	round_nr++;
	for (size_t b = round_nr % 100; b < blocks; b += 100)
		for (size_t i = b * BLOCK_PAGES; i < (b + 1) * BLOCK_PAGES; i++)
			fill_page((uint64_t *)(mem_base + i * PAGE), i);
	if (write(3, "W", 1) != 1 || --rounds_left == 0)
		close(3);
	errno = saved;
}

static int predump_setup(size_t bytes, int rounds)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_RESTART;
	rounds_left = rounds;
	return mem_setup(bytes, 1) || sigaction(SIGUSR2, &sa, NULL) ? -1 : 0;
}

/* A program's work after a restore: 5% of its memory read and written. */
static void on_touch(int sig)
{
	int ok = 1;

	(void)sig;
	for (size_t i = 0; mem_base && i < mem_pages; i += 20) {
		volatile uint64_t *p = (volatile uint64_t *)(mem_base + i * PAGE);

		if (i % mem_step == 0 ? !page_ok((const uint64_t *)p, i) :
					!page_zero((const uint64_t *)p))
			ok = 0;
		p[0] = p[0];
	}
	prctl(PR_SET_NAME, ok ? "touched" : "touch-bad", 0, 0, 0);
}

/* ---- vmas N: one-page mappings, alternately read-only so none merge ---- */

static uint8_t **vmas;
static size_t nr_vmas;

static int vmas_setup(size_t n)
{
	vmas = calloc(n, sizeof(*vmas));
	if (!vmas)
		return -1;
	for (nr_vmas = 0; nr_vmas < n; nr_vmas++) {
		uint8_t *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return -1;
		fill_page((uint64_t *)p, nr_vmas);
		if (nr_vmas % 2 && mprotect(p, PAGE, PROT_READ))
			return -1;
		vmas[nr_vmas] = p;
	}
	return 0;
}

static int vmas_check(void)
{
	for (size_t i = 0; i < nr_vmas; i++)
		if (!page_ok((const uint64_t *)vmas[i], i))
			return -1;
	return 0;
}

/* ---- tree BYTES KIDS: children forked after the fill, sharing it copy-on-write ---- */

#define MAX_KIDS 64

static pid_t kids[MAX_KIDS];
static int nr_kids;

static int tree_setup(size_t bytes, int n)
{
	int ready[2];
	char c;

	if (n < 1 || n > MAX_KIDS || mem_setup(bytes, 1) || pipe(ready))
		return -1;
	for (nr_kids = 0; nr_kids < n; nr_kids++) {
		kids[nr_kids] = fork();
		if (kids[nr_kids] < 0)
			return -1;
		if (kids[nr_kids] == 0) {
			/* fd 3 leads to the benchmark: no child may hold it at the dump. */
			nr_kids = 0;
			close(3);
			close(ready[0]);
			if (write(ready[1], "k", 1) != 1)
				_exit(3);
			close(ready[1]);
			for (;;)
				pause();
		}
	}
	close(ready[1]);
	for (int i = 0; i < n; i++)
		if (read(ready[0], &c, 1) != 1)
			return -1;
	close(ready[0]);
	return 0;
}

static int tree_check(void)
{
	int st;

	for (int i = 0; i < nr_kids; i++)
		kill(kids[i], SIGUSR1);
	for (int i = 0; i < nr_kids; i++)
		if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st))
			return -1;
	return 0;
}

/* ---- beat PATH BYTES: BYTES of memory and a heartbeat: every 100 us one more page
 * is read and a counter written to PATH (a restored process shows it runs) ---- */

static int beat_fd = -1;

static int beat_setup(const char *path, size_t bytes)
{
	if (mem_setup(bytes, 1))
		return -1;
	beat_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	return beat_fd < 0 ? -1 : 0;
}

static void beat_loop(void)
{
	struct timespec ts = { 0, 100000 };
	volatile uint64_t sink;

	for (uint64_t n = 1;; n++) {
		sink = *(volatile uint64_t *)(mem_base + (n * 7919 % mem_pages) * PAGE);
		(void)sink;
		if (pwrite(beat_fd, &n, sizeof(n), 0) != sizeof(n))
			_exit(4);
		nanosleep(&ts, NULL);
	}
}

/* ---- conns PORT N: N connections to 127.0.0.1:PORT (the bench holds their ends) ---- */

static int *conns, nr_conns;

static int conns_setup(int port, int n)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	conns = calloc(n > 0 ? n : 1, sizeof(*conns));
	if (!conns || port <= 0 || port > 65535)
		return -1;
	for (nr_conns = 0; nr_conns < n; nr_conns++) {
		conns[nr_conns] = socket(AF_INET, SOCK_STREAM, 0);
		if (conns[nr_conns] < 0 ||
		    connect(conns[nr_conns], (struct sockaddr *)&a, sizeof(a)))
			return -1;
	}
	return 0;
}

/* After restore the bench sends one byte on each connection. */
static int conns_check(void)
{
	char c;

	for (int i = 0; i < nr_conns; i++)
		if (read(conns[i], &c, 1) != 1 || c != 'x')
			return -1;
	return 0;
}

static int setup(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "tree"))
		return tree_setup(strtoull(argv[2], NULL, 0), atoi(argv[3]));
	if (argc >= 4 && !strcmp(argv[1], "mem"))
		return mem_setup(strtoull(argv[2], NULL, 0), strtoull(argv[3], NULL, 0));
	if (argc >= 4 && !strcmp(argv[1], "predump"))
		return predump_setup(strtoull(argv[2], NULL, 0), atoi(argv[3]));
	if (argc >= 3 && !strcmp(argv[1], "vmas"))
		return vmas_setup(strtoull(argv[2], NULL, 0));
	if (argc >= 4 && !strcmp(argv[1], "conns"))
		return conns_setup(atoi(argv[2]), atoi(argv[3]));
	if (argc >= 4 && !strcmp(argv[1], "beat"))
		return beat_setup(argv[2], strtoull(argv[3], NULL, 0));
	if (argc >= 2 && !strcmp(argv[1], "idle"))
		return 0;
	return -1;
}

static int check(void)
{
	if (nr_kids && tree_check())
		return -1;
	if (mem_base && mem_check())
		return -1;
	if (vmas && vmas_check())
		return -1;
	if (conns && conns_check())
		return -1;
	return 0;
}

/* The check runs in the handler itself: a flag tested around pause() could miss a signal
 * arriving just before a restarted pause(). */
static void on_usr1(int sig)
{
	(void)sig;
	_exit(check() ? 1 : 0);
}

/* With CRYO_BENCH_NO_VCLOCK set (the bench compares with a criu that predates the
 * mapping, bench/criu_vclock.c): no [vvar_vclock]. The vDSO reads it only for a
 * paravirtual clock, which the bench has checked is not in use. */
static void unmap_vclock(void)
{
	char maps[16384], *at;
	unsigned long start, end;
	ssize_t n = 0, r;
	int fd;

	if (!getenv("CRYO_BENCH_NO_VCLOCK"))
		return;
	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	while (fd >= 0 && n < (ssize_t)sizeof(maps) - 1 &&
	       (r = read(fd, maps + n, sizeof(maps) - 1 - n)) > 0)
		n += r;
	if (fd >= 0)
		close(fd);
	maps[n] = 0;
	at = strstr(maps, "[vvar_vclock]");
	if (!at)
		return;
	while (at > maps && at[-1] != '\n')
		at--;
	if (sscanf(at, "%lx-%lx", &start, &end) == 2)
		munmap((void *)start, end - start);
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	if (argc >= 2 && !strcmp(argv[1], "exit"))
		return 0;
	unmap_vclock();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_touch;	/* predump's setup takes SIGUSR2 for itself */
	sigaction(SIGUSR2, &sa, NULL);
	if (setup(argc, argv))
		return 2;
	if (write(3, "R", 1) != 1)
		return 3;
	if (!rounds_left)
		close(3);
	if (beat_fd >= 0)
		beat_loop();
	for (;;)
		pause();
}
