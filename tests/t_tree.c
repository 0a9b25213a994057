/* A tree of three levels in one session: the root R (session and group leader, child
 * subreaper) makes A, which leads a second process group and makes A1; and B, which
 * joins A's group; B's child B1 ended with status 7 and R's child Z was killed by
 * SIGTERM, neither reaped (zombies). R and A hold two pipes full to capacity, one
 * each way; A1 writes into a FIFO that B reads. After restore each process checks
 * its IDs, parent, group, session and what it holds; the zombies are reaped with
 * their statuses. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tlib.h"

#define PIPE_CAP 65536
#define FIFO_LEN 5000

enum { R, A, A1, B, B1, Z, NR };

struct ids {
	pid_t pid, ppid, pgid, sid;
};

static struct ids want[NR];
static int to_a[2], to_r[2];	/* R -> A and A -> R, both full */
static int ready[2];		/* children say "set up" (their index) to R */
static char fifo_path[4096];
static uint8_t buf[PIPE_CAP];

static void record(int who)
{
	want[who] = (struct ids){ getpid(), getppid(), getpgid(0), getsid(0) };
}

static void check_ids(int who, const char *name)
{
	struct ids now = { getpid(), getppid(), getpgid(0), getsid(0) };

	TL_CHECK(now.pid == want[who].pid, "%s: PID %d, not %d", name, now.pid, want[who].pid);
	/* R's parent is outside the tree: the restorer, or who adopts it. */
	TL_CHECK(who == R || now.ppid == want[who].ppid, "%s: parent %d, not %d", name, now.ppid,
		 want[who].ppid);
	TL_CHECK(now.pgid == want[who].pgid, "%s: process group %d, not %d", name, now.pgid,
		 want[who].pgid);
	TL_CHECK(now.sid == want[who].sid, "%s: session %d, not %d", name, now.sid,
		 want[who].sid);
}

/* One write, so that two children saying it at once (B and A1) never interleave. */
struct ready_msg {
	int who;
	struct ids id;
};

static void say_ready(int who)
{
	struct ready_msg m;

	record(who);
	m = (struct ready_msg){ who, want[who] };
	TL_CHECK(write(ready[1], &m, sizeof(m)) == sizeof(m), "ready pipe: write");
}

static void fill_full(int fd, uint64_t seed)
{
	int fl = fcntl(fd, F_GETFL);

	TL_CHECK(fcntl(fd, F_GETPIPE_SZ) == PIPE_CAP, "pipe capacity");
	tl_fill(buf, PIPE_CAP, seed);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	TL_CHECK(write(fd, buf, PIPE_CAP) == PIPE_CAP, "filling a pipe: %s", strerror(errno));
	TL_CHECK(write(fd, buf, 1) < 0 && errno == EAGAIN, "the pipe is not full");
	fcntl(fd, F_SETFL, fl);
}

static void read_full(int fd, uint64_t seed, const char *what)
{
	size_t got = 0;
	int n = -1;

	TL_CHECK(!ioctl(fd, FIONREAD, &n) && n == PIPE_CAP, "%s holds %d bytes, not %d", what,
		 n, PIPE_CAP);
	while (got < PIPE_CAP) {
		ssize_t r = read(fd, buf + got, PIPE_CAP - got);

		TL_CHECK(r > 0, "%s: read %zu bytes, then %zd", what, got, r);
		got += r;
	}
	TL_CHECK(tl_verify(buf, PIPE_CAP, seed) < 0, "%s: its bytes differ", what);
}

static void expect_exit(pid_t pid, int code, const char *name)
{
	int st;

	TL_CHECK(waitpid(pid, &st, 0) == pid, "waiting for %s: %s", name, strerror(errno));
	TL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == code, "%s ended with status 0x%x", name,
		 st);
}

static void wait_zombie(pid_t pid)
{
	char path[64], s[256];

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	for (int i = 0; i < 5000; i++) {
		int fd = open(path, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, s, sizeof(s) - 1) : -1;
		char *rp;

		if (fd >= 0)
			close(fd);
		s[n > 0 ? n : 0] = 0;
		rp = strrchr(s, ')');
		if (rp && rp[2] == 'Z')
			return;
		usleep(1000);
	}
	tl_fail("process %d did not become a zombie", pid);
}

/* ---- the processes ---- */

static void run_a1(void)
{
	int w;

	prctl(PR_SET_PDEATHSIG, SIGUSR2);
	w = open(fifo_path, O_WRONLY);	/* B holds the read end open already */
	TL_CHECK(w >= 0, "A1: opening the FIFO: %s", strerror(errno));
	tl_fill(buf, FIFO_LEN, 30);
	TL_CHECK(write(w, buf, FIFO_LEN) == FIFO_LEN, "A1: writing the FIFO");
	say_ready(A1);
	tl_wait_go();
	check_ids(A1, "A1");
	TL_CHECK(prctl(PR_GET_PDEATHSIG, &w) == 0 && w == SIGUSR2, "A1: pdeath signal %d", w);
	_exit(0);
}

static void run_a(void)
{
	pid_t a1;

	TL_CHECK(!setpgid(0, 0), "A: setpgid");
	close(to_a[1]);
	close(to_r[0]);
	fill_full(to_r[1], 20);
	a1 = fork();
	if (a1 == 0)
		run_a1();
	say_ready(A);
	tl_wait_go();
	check_ids(A, "A");
	read_full(to_a[0], 10, "A: the pipe from R");
	expect_exit(a1, 0, "A1");
	_exit(0);
}

static void run_b(void)
{
	pid_t b1;
	int r;

	TL_CHECK(!setpgid(0, want[A].pid), "B: joining A's group: %s", strerror(errno));
	r = open(fifo_path, O_RDONLY | O_NONBLOCK);
	TL_CHECK(r >= 0, "B: opening the FIFO: %s", strerror(errno));
	b1 = fork();
	if (b1 == 0)
		_exit(7);
	wait_zombie(b1);
	say_ready(B);
	tl_wait_go();
	check_ids(B, "B");
	for (size_t got = 0; got < FIFO_LEN;) {
		ssize_t n = read(r, buf + got, FIFO_LEN - got);

		TL_CHECK(n > 0, "B: the FIFO gave %zu bytes, then %zd", got, n);
		got += n;
	}
	TL_CHECK(tl_verify(buf, FIFO_LEN, 30) < 0, "B: the FIFO's bytes differ");
	expect_exit(b1, 7, "the zombie B1");
	_exit(0);
}

/* R learns each child's IDs as it is set up. */
static void collect_ready(int n)
{
	for (int i = 0; i < n; i++) {
		struct ready_msg m = { -1, { 0 } };
		ssize_t n = read(ready[0], &m, sizeof(m));

		TL_CHECK(n == sizeof(m) && m.who > R && m.who < NR, "ready pipe: read %zd of %zu "
			 "bytes (%s), child %d", n, sizeof(m), n < 0 ? strerror(errno) : "", m.who);
		want[m.who] = m.id;
	}
}

int main(int argc, char **argv)
{
	pid_t a, b, z;
	int st, sub = 0;

	tl_init();
	snprintf(fifo_path, sizeof(fifo_path), "%s/t_tree.fifo.%d", argc > 1 ? argv[1] : ".",
		 getpid());
	unlink(fifo_path);
	TL_CHECK(!mkfifo(fifo_path, 0600), "mkfifo");
	TL_CHECK(getsid(0) == getpid(), "R must lead its session");
	record(R);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	TL_CHECK(!pipe(to_a) && !pipe(to_r) && !pipe(ready), "pipe");
	a = fork();
	if (a == 0)
		run_a();
	collect_ready(1);	/* A leads its group before B joins it */
	b = fork();
	if (b == 0)
		run_b();
	collect_ready(2);	/* B (its FIFO reader first), then A1 */
	z = fork();
	if (z == 0) {
		signal(SIGTERM, SIG_DFL);
		raise(SIGTERM);
		_exit(99);
	}
	wait_zombie(z);
	close(to_a[0]);
	close(to_r[1]);
	fill_full(to_a[1], 10);
	tl_ready();
	tl_wait_go();
	check_ids(R, "R");
	TL_CHECK(prctl(PR_GET_CHILD_SUBREAPER, &sub) == 0 && sub == 1, "R: no longer a subreaper");
	kill(want[A].pid, SIGUSR1);
	kill(want[A1].pid, SIGUSR1);
	kill(want[B].pid, SIGUSR1);
	read_full(to_r[0], 20, "R: the pipe from A");
	TL_CHECK(waitpid(z, &st, 0) == z && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM,
		 "the zombie Z ended with status 0x%x", st);
	expect_exit(b, 0, "B");
	expect_exit(a, 0, "A");
	unlink(fifo_path);
	tl_pass();
}
