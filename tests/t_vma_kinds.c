/* Every kind of VMA a plain program has (anonymous, shared anonymous, heap, stack,
 * private and shared file mappings, PROT_NONE, guard pages, split mappings, VMA flags
 * and names), checked from inside after restore against /proc/self/smaps and data. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tlib.h"

#define PAGE 4096UL
#define HEAP_LEN (64UL << 10)
#define HEAP_GROW (1UL << 20)
#define SNAP_LEN 2048

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

enum {
	R_ANON, R_SHM, R_SHM_ALIAS, R_SHM_NAMED, R_FILE_PRIV, R_FILE_SHARED, R_NONE_EMPTY,
	R_NONE_DATA, R_GUARD, R_PIECES, R_DONTFORK, R_WIPEONFORK, R_DONTDUMP, R_HUGE,
	R_NOHUGE, R_LOCKED, R_LOCKED_ONFAULT, R_NAMED, NR_REGIONS
};

struct region {
	const char *name;
	size_t pages;
	const char *want;	/* a VmFlags mnemonic or path part the setup must produce */
	uint8_t *p;
	char before[SNAP_LEN];
};

static struct region regions[NR_REGIONS] = {
	[R_ANON] = { "anonymous", 16, NULL },
	[R_SHM] = { "shared anonymous", 8, "sh" },
	[R_SHM_ALIAS] = { "shared anonymous alias", 8, "sh" },
	[R_SHM_NAMED] = { "named shared anonymous", 4, "[anon_shmem:cryo-shm-name]" },
	[R_FILE_PRIV] = { "private file", 8, ".priv" },
	[R_FILE_SHARED] = { "shared file", 4, ".shared" },
	[R_NONE_EMPTY] = { "PROT_NONE empty", 4, NULL },
	[R_NONE_DATA] = { "PROT_NONE with data", 2, NULL },
	[R_GUARD] = { "guard pages", 8, NULL },
	[R_PIECES] = { "mprotect pieces", 8, NULL },
	[R_DONTFORK] = { "MADV_DONTFORK", 4, " dc" },
	[R_WIPEONFORK] = { "MADV_WIPEONFORK", 4, " wf" },
	[R_DONTDUMP] = { "MADV_DONTDUMP", 4, " dd" },
	[R_HUGE] = { "MADV_HUGEPAGE", 4, " hg" },
	[R_NOHUGE] = { "MADV_NOHUGEPAGE", 4, " nh" },
	[R_LOCKED] = { "mlock", 4, " lo" },
	[R_LOCKED_ONFAULT] = { "mlock2 MLOCK_ONFAULT", 4, " lf" },
	[R_NAMED] = { "named anonymous", 4, "[anon:cryo-anon-name]" },
};

static char smaps[1 << 20];
static char path_priv[512], path_shared[512];
static uint8_t *heap;
static void *brk_before;
static char stack_before[SNAP_LEN];
static sigjmp_buf segv_env;

static size_t rlen(int r)
{
	return regions[r].pages * PAGE;
}

static uint64_t seed_of(int r)
{
	return 1000 + r;
}

/* ---- /proc/self/smaps ---- */

static void read_smaps(void)
{
	int fd = open("/proc/self/smaps", O_RDONLY);
	size_t n = 0;
	ssize_t got;

	if (fd < 0)
		tl_fail("open /proc/self/smaps: %s", strerror(errno));
	while (n < sizeof(smaps) - 1 && (got = read(fd, smaps + n, sizeof(smaps) - 1 - n)) > 0)
		n += got;
	close(fd);
	if (n >= sizeof(smaps) - 1)
		tl_fail("/proc/self/smaps is too large");
	smaps[n] = 0;
}

struct vma_line {
	unsigned long start, end, off;
	char perms[8], path[256], flags[256];
};

/* Parse the header line at s; false if s is not a header line. */
static bool parse_header(const char *s, struct vma_line *v)
{
	unsigned int maj, min;
	unsigned long ino;
	int n = 0;

	if (sscanf(s, "%lx-%lx %7s %lx %x:%x %lu %n", &v->start, &v->end, v->perms, &v->off,
		   &maj, &min, &ino, &n) < 7 || !n)
		return false;
	sscanf(s + n, "%255[^\n]", v->path);
	return true;
}

/* "um": registered with userfaultfd, what a lazy restore shows until every page is
 * in (it differs from the dump only meanwhile). */
static void drop_uffd_flag(char *flags)
{
	char *um = strstr(flags, " um");

	if (um && (um[3] == ' ' || !um[3]))
		memmove(um, um + 3, strlen(um + 3) + 1);
}

/* The VmFlags of the entry whose header is at s (s points into smaps). */
static void parse_flags(const char *s, struct vma_line *v)
{
	const char *f = strstr(s, "\nVmFlags:");
	size_t n;

	v->flags[0] = 0;
	if (!f)
		return;
	f += strlen("\nVmFlags:");
	n = strcspn(f, "\n");
	while (n && f[n - 1] == ' ')
		n--;
	if (n >= sizeof(v->flags))
		n = sizeof(v->flags) - 1;
	memcpy(v->flags, f, n);
	v->flags[n] = 0;
	drop_uffd_flag(v->flags);
}

/* Calls fn for every VMA of the current smaps snapshot; stops when fn returns true. */
static bool for_each_vma(bool (*fn)(const struct vma_line *, void *), void *arg)
{
	const char *s = smaps;

	while (*s) {
		struct vma_line v;

		memset(&v, 0, sizeof(v));
		if (parse_header(s, &v)) {
			parse_flags(s, &v);
			if (fn(&v, arg))
				return true;
		}
		s = strchr(s, '\n');
		if (!s)
			break;
		s++;
	}
	return false;
}

struct snap_arg {
	unsigned long start, end;
	char *out;
	size_t len;
};

static bool snap_one(const struct vma_line *v, void *arg)
{
	struct snap_arg *a = arg;
	size_t used = strlen(a->out);

	if (v->end <= a->start || v->start >= a->end)
		return false;
	snprintf(a->out + used, a->len - used, "    %lx-%lx %s %lx %s [%s]\n", v->start, v->end,
		 v->perms, v->off, v->path, v->flags);
	return false;
}

/* The smaps lines of a region: ranges, perms, offsets, paths and VmFlags. */
static void snapshot(int r, char *out, size_t len)
{
	struct snap_arg a = { (unsigned long)regions[r].p,
			      (unsigned long)regions[r].p + rlen(r), out, len };

	out[0] = 0;
	for_each_vma(snap_one, &a);
}

struct find_arg {
	unsigned long addr;
	struct vma_line *out;
};

static bool find_one(const struct vma_line *v, void *arg)
{
	struct find_arg *a = arg;

	if (a->addr < v->start || a->addr >= v->end)
		return false;
	*a->out = *v;
	return true;
}

static void find_vma(const void *addr, struct vma_line *v)
{
	struct find_arg a = { (unsigned long)addr, v };

	if (!for_each_vma(find_one, &a))
		tl_fail("no VMA contains %p", addr);
}

static void stack_snapshot(const void *addr, char *out, size_t len)
{
	struct vma_line v;

	find_vma(addr, &v);
	snprintf(out, len, "%s %s [%s]", v.perms, v.path, v.flags);
}

/* ---- helpers ---- */

static long verify_at(const uint8_t *p, uint64_t base, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != tl_pattern(base + i, seed))
			return (long)i;
	return -1;
}

static void check_data(const char *what, const uint8_t *p, uint64_t base, size_t len,
		       uint64_t seed)
{
	long bad = verify_at(p, base, len, seed);

	TL_CHECK(bad < 0, "%s: data differs at offset %ld (byte 0x%02x)", what, bad, p[bad]);
}

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(segv_env, 1);
}

static void catch_segv(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_segv;
	sigaction(SIGSEGV, &sa, NULL);
}

static bool faults(const volatile uint8_t *p)
{
	if (sigsetjmp(segv_env, 1))
		return true;
	(void)*p;
	return false;
}

static void map_at(int r, int prot, int flags, int fd)
{
	void *p = mmap(regions[r].p, rlen(r), prot, flags | MAP_FIXED, fd, 0);

	TL_CHECK(p == regions[r].p, "mmap of the %s region: %s", regions[r].name, strerror(errno));
}

static void map_filled(int r, int flags)
{
	map_at(r, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1);
	tl_fill(regions[r].p, rlen(r), seed_of(r));
}

static int make_file(const char *path, size_t len, uint64_t seed)
{
	uint8_t *buf = malloc(len);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (!buf || fd < 0)
		tl_fail("create %s: %s", path, strerror(errno));
	tl_fill(buf, len, seed);
	TL_CHECK(write(fd, buf, len) == (ssize_t)len, "write %s: %s", path, strerror(errno));
	free(buf);
	return fd;
}

static void read_file_at(const char *path, off_t off, uint8_t *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	TL_CHECK(fd >= 0 && pread(fd, buf, len, off) == (ssize_t)len, "read %s: %s", path,
		 strerror(errno));
	close(fd);
}

static void write_file_at(const char *path, off_t off, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_WRONLY);

	TL_CHECK(fd >= 0 && pwrite(fd, buf, len, off) == (ssize_t)len, "write %s: %s", path,
		 strerror(errno));
	close(fd);
}

/* ---- setup ---- */

/* One PROT_NONE arena holding every region with an unmapped page between
 * neighbours, so no region can merge with another one or with foreign VMAs. */
static void place_regions(void)
{
	size_t total = 1;
	uint8_t *arena;

	for (int r = 0; r < NR_REGIONS; r++)
		total += regions[r].pages + 1;
	arena = mmap(NULL, total * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		     -1, 0);
	TL_CHECK(arena != MAP_FAILED, "mmap arena: %s", strerror(errno));
	for (int r = 0, off = 1; r < NR_REGIONS; r++) {
		regions[r].p = arena + off * PAGE;
		off += regions[r].pages + 1;
	}
}

static void unmap_gaps(void)
{
	for (int r = 0; r < NR_REGIONS; r++)
		munmap(regions[r].p - PAGE, PAGE);
	munmap(regions[NR_REGIONS - 1].p + rlen(NR_REGIONS - 1), PAGE);
}

/* Kernels without CONFIG_ANON_VMA_NAME refuse names (EINVAL): skip that check. */
static void name_region(int r, const char *name)
{
	if (!prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, regions[r].p, rlen(r), name))
		return;
	TL_CHECK(errno == EINVAL, "naming the %s region: %s", regions[r].name, strerror(errno));
	printf("note: this kernel cannot name mappings; not checking the %s name\n",
	       regions[r].name);
	regions[r].want = NULL;
}

static void setup_shared_anon(void)
{
	void *alias;

	map_filled(R_SHM, MAP_SHARED);
	alias = mremap(regions[R_SHM].p, 0, rlen(R_SHM), MREMAP_MAYMOVE | MREMAP_FIXED,
		       regions[R_SHM_ALIAS].p);
	TL_CHECK(alias == regions[R_SHM_ALIAS].p, "mremap alias: %s", strerror(errno));
	/* Split the original: its last two pages become read-only. */
	TL_CHECK(!mprotect(regions[R_SHM].p + 6 * PAGE, 2 * PAGE, PROT_READ), "mprotect shm");
	map_filled(R_SHM_NAMED, MAP_SHARED);
	name_region(R_SHM_NAMED, "cryo-shm-name");
}

static void setup_files(const char *dir)
{
	uint8_t *p = regions[R_FILE_PRIV].p;
	int fd;

	snprintf(path_priv, sizeof(path_priv), "%s/vma-kinds-%d.priv", dir, getpid());
	snprintf(path_shared, sizeof(path_shared), "%s/vma-kinds-%d.shared", dir, getpid());
	fd = make_file(path_priv, rlen(R_FILE_PRIV), seed_of(R_FILE_PRIV));
	map_at(R_FILE_PRIV, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd);
	close(fd);
	check_data("private file mapping before dump", p, 0, rlen(R_FILE_PRIV),
		   seed_of(R_FILE_PRIV));
	/* Page 1 written whole, page 5 only its first 100 bytes. */
	tl_fill(p + PAGE, PAGE, 2001);
	tl_fill(p + 5 * PAGE, 100, 2005);
	fd = make_file(path_shared, rlen(R_FILE_SHARED), seed_of(R_FILE_SHARED));
	map_at(R_FILE_SHARED, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
	close(fd);
	tl_fill(regions[R_FILE_SHARED].p + 2 * PAGE, PAGE, 2102);
}

static void setup_protections(void)
{
	uint8_t *g = regions[R_GUARD].p, *pc = regions[R_PIECES].p;

	map_at(R_NONE_EMPTY, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	map_filled(R_NONE_DATA, MAP_PRIVATE);
	TL_CHECK(!mprotect(regions[R_NONE_DATA].p, rlen(R_NONE_DATA), PROT_NONE), "mprotect none");
	map_filled(R_GUARD, MAP_PRIVATE);
	TL_CHECK(!madvise(g + 2 * PAGE, 2 * PAGE, MADV_GUARD_INSTALL) &&
		 !madvise(g + 6 * PAGE, PAGE, MADV_GUARD_INSTALL),
		 "MADV_GUARD_INSTALL: %s", strerror(errno));
	TL_CHECK(faults(g + 2 * PAGE) && faults(g + 6 * PAGE) && !faults(g + PAGE),
		 "guard pages do not behave as guard pages before the dump");
	map_filled(R_PIECES, MAP_PRIVATE);
	TL_CHECK(!mprotect(pc + 2 * PAGE, 2 * PAGE, PROT_READ) &&
		 !mprotect(pc + 4 * PAGE, PAGE, PROT_NONE) &&
		 !mprotect(pc + 5 * PAGE, 2 * PAGE, PROT_READ | PROT_EXEC),
		 "mprotect pieces: %s", strerror(errno));
}

static void advise(int r, int advice, const char *what)
{
	map_filled(r, MAP_PRIVATE);
	TL_CHECK(!madvise(regions[r].p, rlen(r), advice), "%s: %s", what, strerror(errno));
}

static void setup_flags(void)
{
	advise(R_DONTFORK, MADV_DONTFORK, "MADV_DONTFORK");
	advise(R_WIPEONFORK, MADV_WIPEONFORK, "MADV_WIPEONFORK");
	advise(R_DONTDUMP, MADV_DONTDUMP, "MADV_DONTDUMP");
	advise(R_HUGE, MADV_HUGEPAGE, "MADV_HUGEPAGE");
	advise(R_NOHUGE, MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE");
	map_filled(R_LOCKED, MAP_PRIVATE);
	TL_CHECK(!mlock(regions[R_LOCKED].p, rlen(R_LOCKED)), "mlock: %s", strerror(errno));
	map_filled(R_LOCKED_ONFAULT, MAP_PRIVATE);
	TL_CHECK(!mlock2(regions[R_LOCKED_ONFAULT].p, rlen(R_LOCKED_ONFAULT), MLOCK_ONFAULT),
		 "mlock2: %s", strerror(errno));
	map_filled(R_NAMED, MAP_PRIVATE);
	name_region(R_NAMED, "cryo-anon-name");
}

static void setup_heap(void)
{
	heap = sbrk(HEAP_LEN);
	TL_CHECK(heap != (void *)-1, "sbrk: %s", strerror(errno));
	tl_fill(heap, HEAP_LEN, 3000);
	brk_before = sbrk(0);
}

/* Record what smaps says of every region; each must show what its setup made. */
static void record_before(const uint8_t *stack_data)
{
	read_smaps();
	for (int r = 0; r < NR_REGIONS; r++) {
		snapshot(r, regions[r].before, SNAP_LEN);
		TL_CHECK(regions[r].before[0], "setup: no VMA for the %s region", regions[r].name);
		TL_CHECK(!regions[r].want || strstr(regions[r].before, regions[r].want),
			 "setup: the %s region lacks '%s':\n%s", regions[r].name, regions[r].want,
			 regions[r].before);
	}
	stack_snapshot(stack_data, stack_before, sizeof(stack_before));
	TL_CHECK(strstr(stack_before, "[stack]"), "setup: stack data is not in [stack]: %s",
		 stack_before);
}

/* ---- checks after restore ---- */

static void compare_smaps(const uint8_t *stack_data)
{
	static char after[SNAP_LEN];

	read_smaps();
	for (int r = 0; r < NR_REGIONS; r++) {
		snapshot(r, after, sizeof(after));
		TL_CHECK(!strcmp(after, regions[r].before),
			 "the %s region changed in /proc/self/smaps; before:\n%s  after:\n%s",
			 regions[r].name, regions[r].before, after);
	}
	stack_snapshot(stack_data, after, sizeof(after));
	TL_CHECK(!strcmp(after, stack_before), "the stack VMA changed: before '%s', after '%s'",
		 stack_before, after);
}

static void check_shared_anon(void)
{
	uint8_t *s = regions[R_SHM].p, *a = regions[R_SHM_ALIAS].p;

	check_data("shared anonymous", s, 0, rlen(R_SHM), seed_of(R_SHM));
	check_data("shared anonymous alias", a, 0, rlen(R_SHM), seed_of(R_SHM));
	check_data("named shared anonymous", regions[R_SHM_NAMED].p, 0, rlen(R_SHM_NAMED),
		   seed_of(R_SHM_NAMED));
	a[100] ^= 0xff;
	TL_CHECK(s[100] == a[100], "a write through the alias does not show in the original");
	a[7 * PAGE + 5] ^= 0xff;
	TL_CHECK(s[7 * PAGE + 5] == a[7 * PAGE + 5],
		 "a write through the alias does not show in the read-only piece");
	s[3 * PAGE] ^= 0xff;
	TL_CHECK(a[3 * PAGE] == s[3 * PAGE], "a write to the original does not show in the alias");
}

static void check_file_private(void)
{
	uint8_t *p = regions[R_FILE_PRIV].p, buf[PAGE];
	uint64_t seed = seed_of(R_FILE_PRIV);

	for (int pg = 0; pg < 8; pg++)
		if (pg != 1 && pg != 5)
			check_data("unwritten page of the private file mapping", p + pg * PAGE,
				   pg * PAGE, PAGE, seed);
	check_data("written page of the private file mapping", p + PAGE, 0, PAGE, 2001);
	check_data("written part of a page of the private file mapping", p + 5 * PAGE, 0, 100,
		   2005);
	check_data("unwritten part of a written page of the private file mapping",
		   p + 5 * PAGE + 100, 5 * PAGE + 100, PAGE - 100, seed);
	read_file_at(path_priv, PAGE, buf, PAGE);
	check_data("the privately mapped file (private writes leaked into it)", buf, PAGE, PAGE,
		   seed);
	/* Pages never written still map the file: a change to it shows through. */
	tl_fill(buf, PAGE, 2003);
	write_file_at(path_priv, 3 * PAGE, buf, PAGE);
	check_data("unwritten private page after the file changed", p + 3 * PAGE, 0, PAGE, 2003);
}

static void check_file_shared(void)
{
	uint8_t *p = regions[R_FILE_SHARED].p, buf[PAGE];
	uint64_t seed = seed_of(R_FILE_SHARED);

	check_data("shared file mapping page 0", p, 0, PAGE, seed);
	check_data("shared file mapping page 2 (written before dump)", p + 2 * PAGE, 0, PAGE, 2102);
	read_file_at(path_shared, 2 * PAGE, buf, PAGE);
	check_data("the shared file page written before dump", buf, 0, PAGE, 2102);
	tl_fill(p + 3 * PAGE, PAGE, 2103);
	read_file_at(path_shared, 3 * PAGE, buf, PAGE);
	check_data("the shared file page written after restore", buf, 0, PAGE, 2103);
	tl_fill(buf, PAGE, 2101);
	write_file_at(path_shared, PAGE, buf, PAGE);
	check_data("the shared mapping after the file changed", p + PAGE, 0, PAGE, 2101);
}

static void check_protections(void)
{
	uint8_t *g = regions[R_GUARD].p, *pc = regions[R_PIECES].p, *nd = regions[R_NONE_DATA].p;
	static const int guards[] = { 2, 3, 6 }, plain[] = { 0, 1, 4, 5, 7 };

	TL_CHECK(faults(regions[R_NONE_EMPTY].p), "the PROT_NONE region is accessible");
	TL_CHECK(faults(nd), "the PROT_NONE region with data is accessible");
	TL_CHECK(!mprotect(nd, rlen(R_NONE_DATA), PROT_READ), "mprotect: %s", strerror(errno));
	check_data("PROT_NONE region with data", nd, 0, rlen(R_NONE_DATA), seed_of(R_NONE_DATA));
	for (size_t i = 0; i < sizeof(guards) / sizeof(guards[0]); i++)
		TL_CHECK(faults(g + guards[i] * PAGE), "guard page %d does not fault", guards[i]);
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		check_data("page next to guard pages", g + plain[i] * PAGE, plain[i] * PAGE, PAGE,
			   seed_of(R_GUARD));
	check_data("mprotect pieces (readable)", pc, 0, 4 * PAGE, seed_of(R_PIECES));
	check_data("mprotect pieces (r-x)", pc + 5 * PAGE, 5 * PAGE, 3 * PAGE, seed_of(R_PIECES));
	TL_CHECK(faults(pc + 4 * PAGE), "the PROT_NONE piece is accessible");
	TL_CHECK(!mprotect(pc + 4 * PAGE, PAGE, PROT_READ), "mprotect: %s", strerror(errno));
	check_data("mprotect pieces (none)", pc + 4 * PAGE, 4 * PAGE, PAGE, seed_of(R_PIECES));
}

/* The fork-related flags still act: the child sees zeros and no mapping. */
static void check_fork_flags(void)
{
	int status;
	pid_t pid = fork();

	TL_CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		for (size_t i = 0; i < rlen(R_WIPEONFORK); i++)
			if (regions[R_WIPEONFORK].p[i])
				_exit(2);
		_exit(faults(regions[R_DONTFORK].p) ? 0 : 3);
	}
	TL_CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	TL_CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 2),
		 "MADV_WIPEONFORK memory was not wiped in a child");
	TL_CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 3),
		 "MADV_DONTFORK memory is mapped in a child");
	TL_CHECK(WIFEXITED(status) && !WEXITSTATUS(status), "fork child status 0x%x", status);
}

static void check_heap(void)
{
	struct vma_line v, w;
	uint8_t *more;

	TL_CHECK(sbrk(0) == brk_before, "brk moved from %p to %p", brk_before, sbrk(0));
	check_data("heap", heap, 0, HEAP_LEN, 3000);
	more = sbrk(HEAP_GROW);
	TL_CHECK(more == brk_before, "sbrk after restore returned %p, expected %p", more,
		 brk_before);
	tl_fill(more, HEAP_GROW, 3001);
	check_data("heap grown after restore", more, 0, HEAP_GROW, 3001);
	check_data("heap", heap, 0, HEAP_LEN, 3000);
	read_smaps();
	find_vma(heap, &v);
	find_vma(more + HEAP_GROW - 1, &w);
	TL_CHECK(!strcmp(v.path, "[heap]"), "the heap is '%s', not [heap]", v.path);
	TL_CHECK(v.start == w.start && v.end == w.end,
		 "the grown heap is not one VMA: %lx-%lx %s and %lx-%lx %s", v.start, v.end,
		 v.path, w.start, w.end, w.path);
}

static void check_all_data(const uint8_t *stack_data)
{
	check_data("stack", stack_data, 0, 8192, 3100);
	check_data("anonymous", regions[R_ANON].p, 0, rlen(R_ANON), seed_of(R_ANON));
	for (int r = R_DONTFORK; r <= R_NAMED; r++)
		check_data(regions[r].name, regions[r].p, 0, rlen(r), seed_of(r));
	check_shared_anon();
	check_file_private();
	check_file_shared();
	check_protections();
	check_fork_flags();
	check_heap();
}

int main(int argc, char **argv)
{
	uint8_t stack_data[8192];

	tl_init();
	catch_segv();
	TL_CHECK(argc > 1, "usage: t_vma_kinds WORKDIR");
	tl_fill(stack_data, sizeof(stack_data), 3100);
	place_regions();
	map_filled(R_ANON, MAP_PRIVATE);
	setup_shared_anon();
	setup_files(argv[1]);
	setup_protections();
	setup_flags();
	unmap_gaps();
	setup_heap();
	record_before(stack_data);
	tl_ready();
	tl_wait_go();
	compare_smaps(stack_data);
	check_all_data(stack_data);
	unlink(path_priv);
	unlink(path_shared);
	tl_pass();
}
