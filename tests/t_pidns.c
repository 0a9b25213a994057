/* What a process restored with --pidns reads of its own identity: getpid() and
 * gettid() as recorded, /proc/self naming it (Pid, NSpid, /proc/self/stat, the link),
 * a child of its own with its PID, found in /proc and reaped by that PID; plus its
 * memory and a pipe's bytes. Any mode: the same must hold after a plain restore. The
 * harness runs several --pidns copies of one image of it at once. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tlib.h"

#define HEAP_LEN (4u << 20)
#define SEED 0x70d5
#define PIPE_MSG "in the pipe across the restore"

static pid_t me, child;

/* The number after `key` in a /proc file; -1 if none. For NSpid: the last of them
 * (the PID in the namespace of the /proc read, its innermost). */
static long proc_field(const char *path, const char *key, bool last)
{
	char buf[4096], *at, *end;
	long v = -1;
	ssize_t n;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n > 0 ? n : 0] = 0;
	at = strstr(buf, key);
	if (!at)
		return -1;
	at += strlen(key);
	for (;;) {
		long x = strtol(at, &end, 10);

		if (end == at)
			break;
		v = x;
		at = end;
		if (!last || *at == '\n')
			break;
	}
	return v;
}

static void check_self(void)
{
	char link[64], want[64];
	ssize_t n;
	long stat_pid = -1;
	FILE *f;

	TL_CHECK(getpid() == me, "getpid() is %d, recorded %d", getpid(), me);
	TL_CHECK(syscall(SYS_gettid) == me, "gettid() is %ld, recorded %d", syscall(SYS_gettid),
		 me);
	TL_CHECK(proc_field("/proc/self/status", "\nPid:\t", false) == me,
		 "/proc/self/status says Pid %ld, getpid() %d",
		 proc_field("/proc/self/status", "\nPid:\t", false), me);
	TL_CHECK(proc_field("/proc/self/status", "\nNSpid:\t", true) == me,
		 "/proc/self/status says NSpid ...%ld, getpid() %d",
		 proc_field("/proc/self/status", "\nNSpid:\t", true), me);
	n = readlink("/proc/self", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	snprintf(want, sizeof(want), "%d", me);
	TL_CHECK(!strcmp(link, want), "/proc/self links to '%s', not %s", link, want);
	f = fopen("/proc/self/stat", "r");
	TL_CHECK(f && fscanf(f, "%ld", &stat_pid) == 1, "cannot read /proc/self/stat");
	fclose(f);
	TL_CHECK(stat_pid == me, "/proc/self/stat says %ld, not %d", stat_pid, me);
}

static void check_child(void)
{
	char path[64];
	int status;
	pid_t got;

	snprintf(path, sizeof(path), "/proc/%d/status", child);
	TL_CHECK(proc_field(path, "\nPPid:\t", false) == me, "%s: PPid is %ld, not %d", path,
		 proc_field(path, "\nPPid:\t", false), me);
	TL_CHECK(!kill(child, SIGTERM), "kill(%d): %s", child, strerror(errno));
	got = waitpid(child, &status, 0);
	TL_CHECK(got == child, "waitpid(%d) gave %d: %s", child, got, strerror(errno));
	TL_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
		 "child %d ended with status 0x%x", child, status);
}

int main(void)
{
	char buf[sizeof(PIPE_MSG)];
	uint8_t *heap;
	int p[2];
	long bad;

	tl_init();
	me = getpid();
	heap = mmap(NULL, HEAP_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TL_CHECK(heap != MAP_FAILED, "mmap: %s", strerror(errno));
	tl_fill(heap, HEAP_LEN, SEED);
	TL_CHECK(!pipe(p) && write(p[1], PIPE_MSG, sizeof(PIPE_MSG)) == sizeof(PIPE_MSG),
		 "pipe: %s", strerror(errno));
	child = fork();
	TL_CHECK(child >= 0, "fork: %s", strerror(errno));
	if (child == 0) {
		/* Gone with its parent, whichever way that ends (a harness mode that
		 * never restores it kills the parent only). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != me)
			_exit(1);
		for (;;)
			pause();
	}
	check_self();
	tl_ready();
	tl_wait_go();
	check_self();
	bad = tl_verify(heap, HEAP_LEN, SEED);
	TL_CHECK(bad < 0, "memory differs at offset %ld", bad);
	TL_CHECK(read(p[0], buf, sizeof(buf)) == sizeof(buf) && !memcmp(buf, PIPE_MSG,
		 sizeof(buf)), "the pipe lost its bytes");
	check_child();
	tl_pass();
}
