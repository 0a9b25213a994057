/* The test harness: runs the unit tests, then every test program through dump and
 * restore in several modes, the real-program tests and the bad-input cases, and
 * prints "N passed, N failed" last. It is a child subreaper and reaps everything, so
 * PIDs of killed processes are free again before their restore. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/kcmp.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#define READY_TIMEOUT 30.0
#define EXIT_TIMEOUT 120.0

static const char *cryo_bin;
static const char *tests_dir;
static const char *unit_dir;
static const char *real_dir = "tests/real";
static const char *filter;
static char work[256];
static int passed, failed;
static bool verbose;
/* --as-user NAME: victims and cryo run as that user (harness_user.c); 0: as root. */
static uid_t user_uid;
static gid_t user_gid;
static bool as_user;

static const char *const short_modes[] = { "kill", "leave", "twice", "fg", "killcryo",
					   "stream", "pidns", "pageserver", "lazy", "lazykill",
					   "lazytouch" };
enum mode { MODE_KILL, MODE_LEAVE, MODE_TWICE, MODE_FG, MODE_KILL_CRYO, MODE_STREAM,
	    MODE_PIDNS, MODE_PAGE_SERVER, MODE_LAZY, MODE_LAZY_KILL, MODE_LAZY_TOUCH, NR_MODES };
static const char *const mode_names[] = { "dump+kill+restore", "leave-running",
					  "dump-restore-dump-restore", "foreground-restore",
					  "cryo killed during dump", "dump --stream | restore --stream",
					  "restore --pidns", "dump --page-server, restore",
					  "lazy restore", "lazy restore, supplier killed",
					  "lazy restore, pages on touch only" };
static unsigned modes_enabled = (1 << MODE_KILL) | (1 << MODE_LEAVE) | (1 << MODE_TWICE) |
				(1 << MODE_KILL_CRYO) | (1 << MODE_STREAM) | (1 << MODE_PIDNS) |
				(1 << MODE_PAGE_SERVER) | (1 << MODE_LAZY) | (1 << MODE_LAZY_KILL) |
				(1 << MODE_LAZY_TOUCH);

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- results ---- */

static char reason[4096];

static int why(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return -1;
}

/* The whole file, read to its end: the size a /proc file gives (smaps: 0, whatever
 * it holds) is not what it reads. */
static char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0, cap = 0;
	char *buf = NULL;

	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t got;

		if (n + 4096 >= cap) {
			char *b = realloc(buf, cap = cap * 2 + 8192);

			if (!b)
				break;
			buf = b;
		}
		got = read(fd, buf + n, cap - n - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += got;
	}
	close(fd);
	if (buf)
		buf[n] = 0;
	if (len)
		*len = buf ? n : 0;
	return buf;
}

static void print_tail(const char *label, const char *path)
{
	size_t len;
	char *s = read_file(path, &len);
	const char *p;
	int lines = 0;

	if (!s || !len) {
		free(s);
		return;
	}
	for (p = s + len; p > s && lines < 12; p--)
		if (p[-1] == '\n')
			lines++;
	printf("    --- %s (%s):\n", label, path);
	for (const char *q = p; *q; q++) {
		if (q == p || q[-1] == '\n')
			printf("    | ");
		putchar(*q);
	}
	if (s[len - 1] != '\n')
		putchar('\n');
	free(s);
}

static void result(const char *name, const char *mode, int rc, const char *log, const char *cryo_log)
{
	if (rc == 0) {
		passed++;
		printf("PASS %s%s%s%s\n", name, mode ? " [" : "", mode ? mode : "", mode ? "]" : "");
	} else {
		failed++;
		printf("FAIL %s%s%s%s: %s\n", name, mode ? " [" : "", mode ? mode : "",
		       mode ? "]" : "", reason);
		if (log)
			print_tail("program output", log);
		if (cryo_log)
			print_tail("cryo output", cryo_log);
	}
	fflush(stdout);
}

/* ---- processes ---- */


/* The children whose end the harness waits for: what it spawned, and a restored
 * root it adopted. Any other child is a process of a dumped tree it adopted as
 * subreaper when the tree was killed. */
static pid_t wanted[64];
static int nr_wanted;

static bool is_wanted(pid_t pid)
{
	for (int i = 0; i < nr_wanted; i++)
		if (wanted[i] == pid)
			return true;
	return false;
}

static void want(pid_t pid)
{
	if (!is_wanted(pid) && nr_wanted < (int)(sizeof(wanted) / sizeof(wanted[0])))
		wanted[nr_wanted++] = pid;
}

static void unwant(pid_t pid)
{
	for (int i = 0; i < nr_wanted; i++)
		if (wanted[i] == pid)
			wanted[i--] = wanted[--nr_wanted];
}

/* waitpid(WNOHANG) of a wanted child. */
static pid_t reap_now(pid_t pid, int *status)
{
	pid_t r = waitpid(pid, status, WNOHANG | __WALL);

	if (r == pid)
		unwant(pid);
	return r;
}

static bool is_zombie(pid_t pid)
{
	char path[64], buf[256], *rp;
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && rp[2] == 'Z';
}

static void reap_orphans(void)
{
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG | __WALL)) > 0)
		unwant(pid);
}

/* Adopted zombies hold PIDs a restore of their tree needs: reap them at once. */
static void reap_adopted(void)
{
	char path[64], buf[4096], *at, *end;
	int fd, n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", getpid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	for (at = buf;; at = end) {
		long pid = strtol(at, &end, 10);
		int st;

		if (end == at)
			break;
		if (pid > 0 && !is_wanted(pid) && is_zombie(pid))
			waitpid(pid, &st, WNOHANG | __WALL);
	}
}

/* Wait for pid with a deadline; -1 on timeout (the process is then killed). */
static int wait_for(pid_t pid, double timeout, int *status)
{
	double end = now() + timeout;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG | __WALL);

		if (r == pid) {
			unwant(pid);
			return 0;
		}
		reap_adopted();
		if (r < 0 && errno != EINTR)
			return why("waitpid(%d): %s", pid, strerror(errno));
		if (now() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, status, __WALL);
			unwant(pid);
			return why("process %d did not finish within %.0f s", pid, timeout);
		}
		sleep_ms(2);
	}
}

/* The child's stdio: stdin from `in` (or /dev/null), stdout and stderr to log; `give`,
 * if not -1, becomes its fd 3; nothing else stays open. */
static void child_stdio(const char *log, bool new_session, int in, int give)
{
	int fd = in >= 0 ? in : open("/dev/null", O_RDONLY);

	if (give >= 0 && dup2(give, 100) != 100)
		_exit(126);
	if (fd >= 0 && fd != 0) {
		dup2(fd, 0);
		close(fd);
	}
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (give >= 0 && dup2(100, 3) != 3)
		_exit(126);
	syscall(SYS_close_range, give >= 0 ? 4 : 3, ~0U, 0);
	if (new_session)
		setsid();
	signal(SIGPIPE, SIG_DFL);
}

static void become_user(void);
static void give_to_user(const char *path);
struct run;
static bool user_ns_restored(struct run *r, pid_t pid);
static int check_pidns(pid_t outer, pid_t inner, pid_t *init);
static const char *user_skip(const char *name);

static pid_t spawn_with(char *const argv[], const char *log, bool new_session, int in, int give)
{
	pid_t pid = fork();

	if (pid > 0)
		want(pid);
	if (pid == 0) {
		child_stdio(log, new_session, in, give);
		become_user();
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

static pid_t spawn(char *const argv[], const char *log, bool new_session)
{
	return spawn_with(argv, log, new_session, -1, -1);
}

/* Run cryo with arguments (and `give` as its fd 3, unless -1); its output appends to
 * cryo_log. Returns its exit code. */
static int run_cryo_v(int give, const char *cryo_log, va_list ap)
{
	char *argv[32];
	int argc = 0, status;
	pid_t pid;

	argv[argc++] = (char *)cryo_bin;
	while (argc < 31 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	argv[argc] = NULL;
	if (verbose) {
		printf("    $");
		for (int i = 0; i < argc; i++)
			printf(" %s", argv[i]);
		printf("\n");
	}
	pid = spawn_with(argv, cryo_log, false, -1, give);
	if (pid < 0)
		return why("fork: %s", strerror(errno));
	if (wait_for(pid, EXIT_TIMEOUT, &status))
		return -1;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static int run_cryo(const char *cryo_log, ...)
{
	va_list ap;
	int rc;

	va_start(ap, cryo_log);
	rc = run_cryo_v(-1, cryo_log, ap);
	va_end(ap);
	return rc;
}

static int run_cryo_giving(int give, const char *cryo_log, ...)
{
	va_list ap;
	int rc;

	va_start(ap, cryo_log);
	rc = run_cryo_v(give, cryo_log, ap);
	va_end(ap);
	return rc;
}

static bool file_has(const char *path, const char *needle)
{
	char *s = read_file(path, NULL);
	bool found = s && strstr(s, needle);

	free(s);
	return found;
}

/* How many times a file holds needle. */
static int count_in(const char *path, const char *needle)
{
	char *s = read_file(path, NULL);
	int n = 0;

	for (char *p = s; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	free(s);
	return n;
}

static int wait_ready(pid_t pid, const char *log)
{
	double end = now() + READY_TIMEOUT;
	int status;

	while (!file_has(log, "READY\n")) {
		if (reap_now(pid, &status) == pid)
			return why("the program exited before it was ready (status 0x%x)", status);
		if (now() > end)
			return why("the program was not ready within %.0f s", READY_TIMEOUT);
		sleep_ms(2);
	}
	return 0;
}

/* A /proc file (its size reads as 0). */
static char *read_proc(const char *path)
{
	static char buf[8192];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[n] = 0;
	return strdup(buf);
}

/* ---- dump/restore steps ---- */

struct run {
	char dir[512];
	char log[600];
	char cryo_log[600];
	char img[600];
	pid_t pid;
	pid_t waiter;			/* whose end tells the program's, if not pid's */
	const char *dump_extra;		/* one more option for dump, and for restore */
	const char *restore_extra;
	bool lazy;			/* restores with --lazy-pages */
	bool on_touch;			/* and --lazy-fill=on-touch */
};

/* A program may ask for one extra option, "DUMP-ARG X" (dump) or "RESTORE-ARG X". */
static char *extra_arg(const struct run *r, const char *key)
{
	char *s = read_file(r->log, NULL);
	char *at = s ? strstr(s, key) : NULL;
	char *arg = NULL;

	if (at) {
		at += strlen(key);
		arg = strndup(at, strcspn(at, "\n"));
	}
	free(s);
	return arg;
}

/* The extra option of a run, or the one its program asked for (malloc'd, or NULL). */
static char *dump_extra(const struct run *r)
{
	return r->dump_extra ? strdup(r->dump_extra) : extra_arg(r, "DUMP-ARG ");
}

static char *restore_extra(const struct run *r)
{
	return r->restore_extra ? strdup(r->restore_extra) : extra_arg(r, "RESTORE-ARG ");
}

static int asked(const struct run *r, const char *key, int dflt, int lo, int hi);

/* The line `what` in the program's output, within the ready timeout. */
static int wait_line(struct run *r, const char *what)
{
	double end = now() + READY_TIMEOUT;
	int status;

	while (!file_has(r->log, what)) {
		if (reap_now(r->pid, &status) == r->pid)
			return why("the program exited waiting for '%s' (status 0x%x)", what,
				   status);
		if (now() > end)
			return why("no '%s' from the program within %.0f s", what, READY_TIMEOUT);
		sleep_ms(2);
	}
	return 0;
}

static int count_of(const char *path, const char *needle)
{
	char *s = read_file(path, NULL);
	int n = 0;

	for (char *at = s; at && (at = strstr(at, needle)); at++)
		n++;
	free(s);
	return n;
}

/* A program printing "PRE-DUMPS N" is pre-dumped N times before each dump, in a
 * chain (IMG.pre1, IMG.pre2, ...), told to change its memory (SIGUSR2) after each
 * one; the dump then names the last (--prev-images-dir, --track-mem). prev gets its
 * name relative to the dump's directory, or "" without pre-dumps. */
static int pre_dumps(struct run *r, const char *img, char *prev, size_t len)
{
	int n = asked(r, "PRE-DUMPS ", 0, 0, 8);
	const char *base = strrchr(img, '/') ? strrchr(img, '/') + 1 : img;
	char pid[16], dir[700], line[32];

	prev[0] = 0;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	for (int k = 1; k <= n; k++) {
		int rc;

		snprintf(dir, sizeof(dir), "%s.pre%d", img, k);
		rc = k == 1 ? run_cryo(r->cryo_log, "pre-dump", "-v", "-t", pid, "-D", dir, NULL) :
			      run_cryo(r->cryo_log, "pre-dump", "-v", "-t", pid, "-D", dir,
				       "--prev-images-dir", prev, NULL);
		if (rc)
			return rc < 0 ? -1 : why("cryo pre-dump %d exited with %d", k, rc);
		snprintf(prev, len, "../%s.pre%d", base, k);
		snprintf(line, sizeof(line), "REWRITTEN %d\n", count_of(r->log, "REWRITTEN ") + 1);
		kill(r->pid, SIGUSR2);
		if (wait_line(r, line))
			return -1;
	}
	return 0;
}

static int step_dump(struct run *r, const char *img, bool leave)
{
	char *extra = dump_extra(r);
	char pid[16], prev[700];
	int rc, status;

	if (pre_dumps(r, img, prev, sizeof(prev))) {
		free(extra);
		return -1;
	}
	snprintf(pid, sizeof(pid), "%d", r->pid);
	if (prev[0] && leave)
		rc = run_cryo(r->cryo_log, "dump", "-v", "-t", pid, "-D", img, "--prev-images-dir",
			      prev, "--track-mem", "--leave-running", extra, NULL);
	else if (prev[0])
		rc = run_cryo(r->cryo_log, "dump", "-v", "-t", pid, "-D", img, "--prev-images-dir",
			      prev, "--track-mem", extra, NULL);
	else
		rc = leave ? run_cryo(r->cryo_log, "dump", "-v", "-t", pid, "-D", img,
				      "--leave-running", extra, NULL) :
			     run_cryo(r->cryo_log, "dump", "-v", "-t", pid, "-D", img, extra, NULL);
	free(extra);
	if (rc)
		return rc < 0 ? -1 : why("cryo dump exited with %d", rc);
	if (leave) {
		if (reap_now(r->pid, &status) == r->pid)
			return why("the process died after dump --leave-running");
		return 0;
	}
	/* Killed: reap it now so its PID is free for the restore. */
	if (wait_for(r->pid, 10, &status))
		return -1;
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		return why("after dump the process ended with status 0x%x, not SIGKILL", status);
	return 0;
}

static int step_restore_detached(struct run *r, const char *img)
{
	char pidfile[700], buf[32] = "";
	char *extra = restore_extra(r);
	int rc, fd;

	snprintf(pidfile, sizeof(pidfile), "%s.pid", img);
	rc = run_cryo(r->cryo_log, "restore", "-v", "-D", img, "-d", "--pidfile", pidfile,
		      r->lazy ? "--lazy-pages" : extra,
		      !r->lazy ? NULL : r->on_touch ? "--lazy-fill=on-touch" : extra,
		      r->on_touch ? extra : NULL, NULL);
	free(extra);
	if (rc)
		return rc < 0 ? -1 : why("cryo restore exited with %d", rc);
	fd = open(pidfile, O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0) {
		if (fd >= 0)
			close(fd);
		return why("restore wrote no pidfile");
	}
	close(fd);
	if (atoi(buf) != r->pid && !user_ns_restored(r, atoi(buf)))
		return why("restored PID %d, expected %d", atoi(buf), r->pid);
	want(r->pid);	/* adopted once cryo is gone */
	if (kill(r->pid, 0))
		return why("restored process %d is not running", r->pid);
	return 0;
}

/* A --pidns restore's root, as the harness sees it: PID `outer` here, `inner` (the
 * dumped PID) in a namespace of its own, whose init (PID 1 there) is its parent. */
static int check_pidns(pid_t outer, pid_t inner, pid_t *init)
{
	char path[64], line[64], *st, *at;
	long ppid;

	snprintf(path, sizeof(path), "/proc/%d/status", outer);
	st = read_proc(path);
	at = st ? strstr(st, "\nNSpid:\t") : NULL;
	snprintf(line, sizeof(line), "\nNSpid:\t%d\t%d\n", outer, inner);
	if (!at || strncmp(at, line, strlen(line))) {
		free(st);
		return why("restored process %d is not PID %d of a PID namespace of its own",
			   outer, inner);
	}
	at = strstr(st, "\nPPid:\t");
	ppid = at ? atol(at + 7) : 0;
	free(st);
	snprintf(path, sizeof(path), "/proc/%ld/status", ppid);
	st = read_proc(path);
	at = st ? strstr(st, "\nNSpid:\t") : NULL;
	snprintf(line, sizeof(line), "\nNSpid:\t%ld\t1\n", ppid);
	if (!at || strncmp(at, line, strlen(line))) {
		free(st);
		return why("the parent %ld of restored process %d is not its namespace's init",
			   ppid, outer);
	}
	free(st);
	*init = ppid;
	want(ppid);	/* adopted from cryo: it ends with the root's status */
	return 0;
}

static int read_pid(const char *pidfile, pid_t *pid)
{
	char buf[32] = "";
	int fd = open(pidfile, O_RDONLY);

	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0) {
		if (fd >= 0)
			close(fd);
		return why("restore wrote no pidfile %s", pidfile);
	}
	close(fd);
	*pid = atoi(buf);
	return 0;
}

/* restore --pidns -d: r->pid becomes the root's PID outside its namespace. */
static int step_restore_pidns(struct run *r, const char *img, pid_t *init)
{
	char pidfile[700];
	char *extra = restore_extra(r);
	pid_t outer = 0;
	int rc;

	snprintf(pidfile, sizeof(pidfile), "%s.pid", img);
	rc = run_cryo(r->cryo_log, "restore", "-v", "-D", img, "-d", "--pidns", "--pidfile",
		      pidfile, extra, NULL);
	free(extra);
	if (rc)
		return rc < 0 ? -1 : why("cryo restore --pidns exited with %d", rc);
	if (read_pid(pidfile, &outer) || check_pidns(outer, r->pid, init))
		return -1;
	r->pid = outer;
	return 0;
}

/* ---- outside peers of TCP listeners ---- */

#define MAX_PEERS 8

/* Every "TCP-PEER ADDR PORT" line of the program (a listener of its, on loopback):
 * connected to from here, outside the tree, and sent "ping". */
static int peers_connect(const struct run *r, int *fds)
{
	char *s = read_file(r->log, NULL), *at = s;
	bool bad = false;
	int n = 0;

	while (at && (at = strstr(at, "TCP-PEER ")) && n < MAX_PEERS) {
		struct sockaddr_storage ss = { 0 };
		struct sockaddr_in *a4 = (void *)&ss;
		struct sockaddr_in6 *a6 = (void *)&ss;
		char addr[64];
		unsigned port;
		int fd;

		if (sscanf(at + 9, "%63s %u", addr, &port) != 2)
			break;
		at += 9;
		if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
			a4->sin_family = AF_INET;
			a4->sin_port = htons(port);
		} else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons(port);
		}
		fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sizeof(ss)) ||
		    send(fd, "ping", 4, MSG_NOSIGNAL) != 4) {
			bad = why("cannot reach the program's listener %s port %u from "
				  "outside: %s", addr, port, strerror(errno));
			if (fd >= 0)
				close(fd);
			break;
		}
		fds[n++] = fd;
	}
	if (bad) {
		while (n)
			close(fds[--n]);
		n = -1;
	}
	free(s);
	return n;
}

/* Once the program is gone: each connection got "pong" before it closed. */
static int peers_check(int *fds, int n)
{
	int rc = 0;

	for (int i = 0; i < n; i++) {
		char buf[8] = "";

		if (!rc && (recv(fds[i], buf, sizeof(buf), MSG_WAITALL) != 4 ||
			    memcmp(buf, "pong", 4)))
			rc = why("connection %d to the program's listeners got no pong", i + 1);
		close(fds[i]);
	}
	return rc;
}

/* Tell the program to verify itself and collect its verdict. */
static int finish(struct run *r, pid_t waiter)
{
	int status, peers[MAX_PEERS], nr_peers = peers_connect(r, peers);

	if (nr_peers < 0)
		return -1;
	if (waiter == r->pid && r->waiter)
		waiter = r->waiter;
	kill(r->pid, SIGUSR1);
	if (wait_for(waiter, EXIT_TIMEOUT, &status)) {
		peers_check(peers, nr_peers);
		return -1;
	}
	if (peers_check(peers, nr_peers))
		return -1;
	if (WIFSIGNALED(status))
		return why("the program was killed by signal %d", WTERMSIG(status));
	if (WEXITSTATUS(status))
		return why("the program exited with %d", WEXITSTATUS(status));
	if (!file_has(r->log, "PASS\n"))
		return why("the program exited 0 but printed no PASS");
	return 0;
}

static int count_maps(pid_t pid)
{
	char path[64], buf[4096];
	int fd, n = 0;
	ssize_t got;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	fd = open(path, O_RDONLY);
	while (fd >= 0 && (got = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < got; i++)
			n += buf[i] == '\n';
	if (fd >= 0)
		close(fd);
	return n;
}

/* The number a program printed after `key` in its output, within [lo, hi]; dflt if
 * it printed none. */
static int asked(const struct run *r, const char *key, int dflt, int lo, int hi)
{
	char *s = read_file(r->log, NULL);
	char *at = s ? strstr(s, key) : NULL;
	int n = at ? atoi(at + strlen(key)) : dflt;

	free(s);
	return n < lo ? lo : n > hi ? hi : n;
}

/* A program may ask for more cycles by printing "REPEAT-DUMPS N" before READY. */
static int user_repeats(int asked_for);

static int repeat_count(const struct run *r)
{
	return user_repeats(asked(r, "REPEAT-DUMPS ", 1, 1, 1000));
}

/* A program may ask for the cryo-killing test by printing "KILL-CRYO N". */
static int kill_cryo_count(const struct run *r)
{
	return asked(r, "KILL-CRYO ", 0, 0, 5000);
}

static pid_t start_dump(struct run *r, bool leave)
{
	char *extra = dump_extra(r);
	char pid[16];
	char *argv[] = { (char *)cryo_bin, "dump", "-t", pid, "-D", r->img, extra,
			 leave ? "--leave-running" : NULL, NULL };
	pid_t p;

	if (!extra)
		argv[6] = argv[7], argv[7] = NULL;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	p = spawn(argv, r->cryo_log, false);
	free(extra);
	return p;
}

static bool image_complete(const struct run *r)
{
	char path[700];

	snprintf(path, sizeof(path), "%s/inventory.img", r->img);
	return access(path, F_OK) == 0;
}


/* Until pid exists and nobody traces it (a restore let it go), reaping what the
 * harness adopts meanwhile (the dumped tree's zombies hold PIDs the restore needs). */
/* Still one of cryo's own tasks: between clone3 and PTRACE_TRACEME a new task is
 * untraced, but it runs cryo's binary until its memory map is set. */
static bool still_cryo(pid_t pid)
{
	char path[64], exe[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n < 0)
		return true;
	exe[n] = 0;
	return !strcmp(exe, cryo_bin);
}

static int wait_released(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	for (int i = 0; i < 5000; i++) {
		char *st = read_proc(path);
		/* cryo's own tasks (a helper of file_unix.c may hold the PID for a moment)
		 * run cryo's binary. */
		bool free_now = st && strstr(st, "TracerPid:\t0\n") && !still_cryo(pid);

		free(st);
		if (free_now)
			return 0;
		reap_adopted();
		sleep_ms(2);
	}
	return why("process %d was not restored within 10 s", pid);
}

/* The signals every thread of the victim keeps blocked: handlers block more for a
 * moment, sigsuspend swaps its mask, so what counts is what stays blocked throughout. */
static uint64_t all_masks(pid_t pid)
{
	char dir[64];
	struct dirent *de;
	uint64_t m = ~0ULL;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/task", pid);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		char path[384], *txt, *at;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/status", dir, de->d_name);
		txt = read_proc(path);
		at = txt ? strstr(txt, "\nSigBlk:\t") : NULL;
		if (at)
			m &= strtoull(at + 9, NULL, 16);
		free(txt);
	}
	if (d)
		closedir(d);
	return m;
}

static uint64_t stable_mask(pid_t pid)
{
	uint64_t m = ~0ULL;

	for (int i = 0; i < 20; i++) {
		m &= all_masks(pid);
		sleep_ms(5);
	}
	return m;
}

static uint64_t victim_blocked;

/* After cryo is gone: the victim runs, untraced and not stopped. */
static int victim_free(struct run *r)
{
	char path[64], *txt;
	int tracer = -1;
	char state = '?';

	snprintf(path, sizeof(path), "/proc/%d/status", r->pid);
	for (int tries = 0; tries < 500; tries++) {
		char *at;

		txt = read_proc(path);
		if (!txt)
			return why("the victim vanished");
		at = strstr(txt, "\nState:\t");
		state = at ? at[8] : '?';
		at = strstr(txt, "\nTracerPid:\t");
		tracer = at ? atoi(at + 12) : -1;
		free(txt);
		if (tracer == 0 && state != 'T' && state != 't') {
			uint64_t m = 0;

			/* A thread let go in the middle of going home by itself gets
			 * there within moments. */
			for (int i = 0; i < 250; i++) {
				m = all_masks(r->pid);
				if ((m & victim_blocked) == victim_blocked)
					return 0;
				sleep_ms(2);
			}
			return why("a thread lost blocked signals: 0x%llx of 0x%llx still blocked",
				   (unsigned long long)(m & victim_blocked),
				   (unsigned long long)victim_blocked);
		}
		sleep_ms(2);
	}
	return why("after cryo died the victim is in state %c, traced by %d", state, tracer);
}

struct kill_stats {
	int unharmed, completed, restored;
};

/* One dump, cryo killed by `sig` after `delay` seconds. */
static int one_kill(struct run *r, bool leave, double delay, int sig, struct kill_stats *ks)
{
	struct timespec ts = { (time_t)delay, (long)((delay - (time_t)delay) * 1e9) };
	char inv[700];
	pid_t cryo;
	int status, vstatus = 0;

	snprintf(inv, sizeof(inv), "%s/inventory.img", r->img);
	unlink(inv);
	cryo = start_dump(r, leave);
	if (cryo < 0)
		return why("fork: %s", strerror(errno));
	nanosleep(&ts, NULL);
	kill(cryo, sig);
	if (wait_for(cryo, 30, &status))
		return why("cryo did not exit within 30 s of signal %d", sig);
	/* A complete kill-mode dump may have sent SIGKILL just before cryo died: give the
	 * victim time to finish dying before calling it unharmed. */
	for (int i = 0; i < 500 && !leave && image_complete(r) &&
			reap_now(r->pid, &vstatus) == 0; i++)
		sleep_ms(2);
	if (!leave && image_complete(r) && kill(r->pid, 0) && errno == ESRCH)
		goto gone;
	if (reap_now(r->pid, &vstatus) != r->pid) {
		ks->unharmed++;
		return victim_free(r);
	}
	/* Gone: only a complete dump may have killed it. */
gone:
	if (!WIFSIGNALED(vstatus) || WTERMSIG(vstatus) != SIGKILL || leave || !image_complete(r))
		return why("the victim ended (status 0x%x) after cryo got signal %d %.1f ms into a "
			   "dump%s", vstatus, sig, delay * 1e3, leave ? " --leave-running" : "");
	ks->completed++;
	if (step_restore_detached(r, r->img))
		return -1;
	ks->restored++;
	return 0;
}

/* How long a whole dump takes here (the longest of three): the kills are spread over
 * it and a little beyond. */
static double dump_time(struct run *r)
{
	double longest = 0;

	for (int i = 0; i < 3; i++) {
		double t0 = now();
		int status;
		pid_t cryo = start_dump(r, true);

		if (cryo < 0 || wait_for(cryo, 30, &status) || status)
			return -1;
		if (now() - t0 > longest)
			longest = now() - t0;
	}
	return longest;
}

/* Who holds a PID: its comm, or "" if nobody. */
static void holder(pid_t pid, char *comm, size_t len, char *state)
{
	char path[64], *txt, *at;

	comm[0] = 0;
	*state = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	txt = read_proc(path);
	if (!txt)
		return;
	at = strchr(txt, '(');
	if (at)
		snprintf(comm, len, "%.*s", (int)strcspn(at + 1, ")"), at + 1);
	at = strrchr(txt, ')');
	*state = at && at[1] ? at[2] : '?';
	free(txt);
}

/* A kill-mode dump, then cryo restore killed after `delay`: the PID is either free
 * again or held by the restored process, running; then it is restored for real. */
static int one_restore_kill(struct run *r, double delay, int *completed)
{
	struct timespec ts = { (time_t)delay, (long)((delay - (time_t)delay) * 1e9) };
	char *extra = restore_extra(r);
	char *argv[] = { (char *)cryo_bin, "restore", "-D", r->img, "-d", extra, NULL };
	char comm[64], state;
	pid_t cryo;
	int status;

	if (step_dump(r, r->img, false)) {
		free(extra);
		return -1;
	}
	cryo = spawn(argv, r->cryo_log, false);
	free(extra);
	nanosleep(&ts, NULL);
	kill(cryo, SIGKILL);
	if (wait_for(cryo, 30, &status))
		return -1;
	/* A task the dead cryo had not finished dies with it (it is killed when its
	 * tracer goes): it vanishes within moments; a finished one stays. */
	for (int i = 0, alive = 0; i < 500 && alive < 50; i++) {
		reap_orphans();
		holder(r->pid, comm, sizeof(comm), &state);
		if (!comm[0])
			break;
		alive = state != 'Z' && state != 'X' && strcmp(comm, "cryo") ? alive + 1 : 0;
		sleep_ms(2);
	}
	if (comm[0] && !strcmp(comm, "cryo"))
		return why("a killed restore left a copy of cryo holding PID %d (state %c)",
			   r->pid, state);
	if (comm[0]) {
		(*completed)++;
		want(r->pid);	/* adopted from the dead cryo: the next dump's kill is ours */
		return victim_free(r);
	}
	return step_restore_detached(r, r->img);
}

static double restore_time(struct run *r)
{
	double longest = 0;

	for (int i = 0; i < 3; i++) {
		double t0;

		if (step_dump(r, r->img, false))
			return -1;
		t0 = now();
		if (step_restore_detached(r, r->img))
			return -1;
		if (now() - t0 > longest)
			longest = now() - t0;
	}
	return longest;
}

static int run_restore_kills(struct run *r, int n, unsigned seed)
{
	double t = restore_time(r);
	int completed = 0;

	if (t < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		double delay = t * 1.3 * rand() / RAND_MAX;

		if (one_restore_kill(r, delay, &completed)) {
			char first[sizeof(reason)];

			snprintf(first, sizeof(first), "%s", reason);
			return why("%s (restore kill %d of %d, seed %u)", first, i + 1, n, seed);
		}
	}
	printf("    cryo restore killed %d times over a %.1f ms restore: %d before it was done "
	       "(nothing left behind), %d after\n", n, t * 1e3, n - completed, completed);
	return 0;
}

static int run_kill_cryo(struct run *r)
{
	int n = kill_cryo_count(r);
	struct kill_stats ks = { 0, 0, 0 };
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	double t = n ? dump_time(r) : 0;

	if (!n)
		return 1;	/* not asked for */
	if (t < 0)
		return why("an undisturbed dump failed");
	victim_blocked = stable_mask(r->pid);
	srand(seed);
	for (int i = 0; i < 2 * n; i++) {
		bool leave = i % 2;
		int sig = i % 10 == 9 ? SIGTERM : SIGKILL;
		double delay = t * 1.3 * rand() / RAND_MAX;

		if (one_kill(r, leave, delay, sig, &ks)) {
			char first[sizeof(reason)];

			snprintf(first, sizeof(first), "%s", reason);
			return why("%s (kill %d of %d, seed %u)", first, i + 1, 2 * n, seed);
		}
	}
	printf("    cryo killed %d times over a %.1f ms dump: %d while dumping (victim "
	       "unharmed), %d after a complete dump (restored %d)\n", 2 * n, t * 1e3,
	       ks.unharmed, ks.completed, ks.restored);
	if (run_restore_kills(r, n, seed))
		return -1;
	return finish(r, r->pid);
}

#include "harness_stream.c"

/* ---- lazy restore ---- */

/* The children of `parent` named `comm` (the lazy pages' supplier is the harness's
 * once a detached restore's cryo exits; its guard is the supplier's child). */
static int children_named(pid_t parent, const char *comm, pid_t *out, int max)
{
	char path[64], name[64], *buf, *at, *end;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", parent, parent);
	buf = read_proc(path);
	for (at = buf; at && found < max; at = end) {
		long pid = strtol(at, &end, 10);
		char *c;

		if (end == at)
			break;
		snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
		c = read_proc(path);
		if (c && sscanf(c, "%63s", name) == 1 && !strcmp(name, comm) && !is_zombie(pid))
			out[found++] = pid;
		free(c);
	}
	free(buf);
	return found;
}

/* Once every page is in, the supplier and its guard exit (within the deadline). */
static int lazy_pair_ended(void)
{
	pid_t p[4];

	for (int i = 0; i < 15000; i++) {
		reap_orphans();
		if (!children_named(getpid(), "cryo-lazy", p, 4) &&
		    !children_named(getpid(), "cryo-lazy-guard", p, 4))
			return 0;
		sleep_ms(2);
	}
	return why("the lazy pages' supplier or guard still runs 30 s after the program ended");
}

/* Is any process in session sid? */
static bool session_lives(pid_t sid)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	bool found = false;

	while (d && !found && (de = readdir(d))) {
		pid_t pid = (pid_t)atoi(de->d_name);

		found = pid > 0 && getsid(pid) == sid && !is_zombie(pid);
	}
	if (d)
		closedir(d);
	return found;
}

/* After the program was killed: every process it forked ends too (one left running on
 * wrong memory would say so in the log), and the supplier and guard. */
static int lazy_all_ended(pid_t sid)
{
	for (int i = 0; sid > 0 && i < 15000; i++) {
		reap_orphans();
		if (!session_lives(sid))
			return lazy_pair_ended();
		sleep_ms(2);
	}
	if (sid > 0)
		return why("a process of the lazily restored tree still runs 30 s after it "
			   "was killed");
	return lazy_pair_ended();
}

/* A program may ask, by printing "LAZY-KILL", for a lazy restore whose supplier, guard
 * or both (one right after the other, as `pkill -9 cryo` would) are killed at a random
 * moment while the program checks its memory: then either the program dies by SIGKILL,
 * or every check passes. */
static int run_lazy_kill(struct run *r)
{
	unsigned seed = (unsigned)(now() * 1e6) ^ (unsigned)getpid();
	/* The supplier's group: one signal must not take both holders of the fds. */
	enum { KILL_GUARD, KILL_GROUP, KILL_SUPPLIER, KILL_BOTH };
	static const char *const victims[] = { [KILL_GUARD] = "cryo-lazy-guard",
					       [KILL_GROUP] = "the supplier's group",
					       [KILL_SUPPLIER] = "cryo-lazy",
					       [KILL_BOTH] = "cryo-lazy and its guard" };
	/* The supplier alone one run in three, both one in three. */
	static const int draw[] = { KILL_GUARD, KILL_GROUP, KILL_SUPPLIER, KILL_SUPPLIER,
				    KILL_BOTH, KILL_BOTH };
	int pick = draw[rand_r(&seed) % 6], delay = rand_r(&seed) % 300, status;
	const char *victim = victims[pick];
	pid_t p[4], sid;
	int n;

	if (!file_has(r->log, "LAZY-KILL\n"))
		return 1;
	r->lazy = true;
	if (step_dump(r, r->img, false) || step_restore_detached(r, r->img))
		return -1;
	/* None left: every page was in already; the program must pass. */
	n = children_named(getpid(), "cryo-lazy", p, 4);
	if (n && pick == KILL_GUARD)
		n = children_named(p[0], victim, p, 4);
	else if (n && pick == KILL_BOTH)
		n += children_named(p[0], "cryo-lazy-guard", p + n, 4 - n);
	if (!n)
		victim = "nothing (the fill was over)";
	/* Its forks stay in its session (not the harness's: else none is waited for). */
	sid = getsid(r->pid);
	if (sid == getsid(0))
		sid = 0;
	kill(r->pid, SIGUSR1);
	sleep_ms(delay);
	for (int i = 0; i < n; i++) {
		pid_t g = pick == KILL_GROUP ? getpgid(p[i]) : 0;

		kill(g > 1 && g != getpgrp() ? -g : p[i], SIGKILL);
	}
	if (wait_for(r->pid, EXIT_TIMEOUT, &status))
		return -1;
	printf("     lazy: %s killed after %d ms: the program %s\n", victim, delay,
	       WIFSIGNALED(status) ? "was killed" : "passed");
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
		if (lazy_all_ended(sid))
			return -1;
		if (file_has(r->log, "FAIL"))
			return why("the program was killed, but one of its processes ran on "
				   "wrong memory first (see its log)");
		return 0;
	}
	if (WIFSIGNALED(status))
		return why("the program was killed by signal %d", WTERMSIG(status));
	if (WEXITSTATUS(status) || !file_has(r->log, "PASS\n"))
		return why("the program exited with %d (its memory was wrong?)",
			   WEXITSTATUS(status));
	return lazy_pair_ended();
}

static int run_mode(struct run *r, enum mode m)
{
	int repeat = repeat_count(r);
	char img2[700];
	pid_t fg;

	switch (m) {
	case MODE_KILL:
		for (int i = 0, first = 0; i < repeat; i++) {
			int maps;

			if (step_dump(r, r->img, false) || step_restore_detached(r, r->img))
				return -1;
			/* Cycles must not pile anything up (an old vDSO proxy, say). */
			maps = count_maps(r->pid);
			if (!i)
				first = maps;
			else if (maps != first)
				return why("%d mappings after restore %d, %d after the first", maps,
					   i + 1, first);
		}
		return finish(r, r->pid);
	case MODE_LEAVE:
		for (int i = 0; i < repeat; i++)
			if (step_dump(r, r->img, true))
				return -1;
		return finish(r, r->pid);
	case MODE_TWICE:
		snprintf(img2, sizeof(img2), "%s-2", r->img);
		if (step_dump(r, r->img, false) || step_restore_detached(r, r->img) ||
		    step_dump(r, img2, false) || step_restore_detached(r, img2))
			return -1;
		return finish(r, r->pid);
	case MODE_FG: {
		char *extra = restore_extra(r);
		char *argv[] = { (char *)cryo_bin, "restore", "-D", r->img, extra, NULL };

		if (step_dump(r, r->img, false)) {
			free(extra);
			return -1;
		}
		fg = spawn(argv, r->cryo_log, false);
		free(extra);
		/* cryo stays the parent and exits with the program's status; the program
		 * is restored once cryo no longer traces it. */
		if (wait_released(r->pid))
			return -1;
		return finish(r, fg);
	}
	case MODE_KILL_CRYO:
		return run_kill_cryo(r);
	case MODE_STREAM:
		if (step_stream(r))
			return -1;
		return finish(r, r->pid);
	case MODE_PIDNS: {
		pid_t init = 0;

		if (step_dump(r, r->img, false) || step_restore_pidns(r, r->img, &init))
			return -1;
		return finish(r, init);
	}
	case MODE_PAGE_SERVER:
		if (step_page_server(r))
			return -1;
		return finish(r, r->pid);
	case MODE_LAZY:
		r->lazy = true;
		if (step_dump(r, r->img, false) || step_restore_detached(r, r->img) ||
		    finish(r, r->pid))
			return -1;
		return lazy_pair_ended();
	case MODE_LAZY_KILL:
		return run_lazy_kill(r);
	case MODE_LAZY_TOUCH:
		/* The supplier must see the tree's end by itself: nothing fills, so no
		 * copy fails to tell it. */
		r->lazy = r->on_touch = true;
		if (step_dump(r, r->img, false) || step_restore_detached(r, r->img) ||
		    finish(r, r->pid))
			return -1;
		return lazy_pair_ended();
	default:
		return why("bad mode");
	}
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* A run that passed leaves nothing behind: images of every run of every suite would
 * fill the disk. What failed stays for reading. */
static void remove_tree(const char *path)
{
	nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* System V objects of the test programs (keys 0x5c000000-0x5fffffff: t_sysv,
 * t_ipc_harmless) that a failed or killed run left: tests run one at a time, so after
 * a run none is in use, and a stale one would later seem to be used by whichever
 * process got its last user's PID. */
/* Did the object of this /proc/sysvipc line change in the last minute (its ctime:
 * column 14 of shm's 16, the last of sem's and msg's)? */
static bool ipc_recent(const char *line, int table)
{
	long long v[16];
	int n = sscanf(line, "%lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld "
			     "%lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
		       &v[7], &v[8], &v[9], &v[10], &v[11], &v[12], &v[13], &v[14], &v[15]);
	long long ctime = table == 0 ? (n >= 14 ? v[13] : 0) : (n >= 1 ? v[n - 1] : 0);

	return ctime > (long long)time(NULL) - 60;
}

static void remove_test_ipc(void)
{
	static const char *const tables[] = { "/proc/sysvipc/shm", "/proc/sysvipc/sem",
					      "/proc/sysvipc/msg" };

	for (int t = 0; t < 3; t++) {
		FILE *f = fopen(tables[t], "r");
		char line[512];
		long long key;
		int id;

		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%lld %d", &key, &id) != 2 ||
			    (key & 0xfc000000LL) != 0x5c000000LL)
				continue;
			/* Its test's process still lives, or it changed a moment ago (a
			 * restore makes it before the process): another harness's run. */
			if (!kill((pid_t)(key & 0xffffff), 0) || errno != ESRCH ||
			    ipc_recent(line, t))
				continue;
			if (t == 0)
				shmctl(id, IPC_RMID, NULL);
			else if (t == 1)
				semctl(id, 0, IPC_RMID);
			else
				msgctl(id, IPC_RMID, NULL);
		}
		fclose(f);
	}
}

/* The network lock's tables of a run (named with its root PID: another session's
 * are never looked at): none may outlive the run, whatever happened to cryo. Any
 * left is named, then removed. */
static int netlock_left(pid_t pid)
{
	char cmd[128], line[512], names[1024] = "";
	FILE *f = popen("nft list tables 2>/dev/null", "r");
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char lock[64], keep[64], name[256];

		snprintf(lock, sizeof(lock), "cryo_lock_%d", pid);
		snprintf(keep, sizeof(keep), "cryo_keep_%d_", pid);
		if (sscanf(line, "table inet %255s", name) != 1 ||
		    (strcmp(name, lock) && strncmp(name, keep, strlen(keep))))
			continue;
		snprintf(names + strlen(names), sizeof(names) - strlen(names), " %s", name);
		n++;
	}
	pclose(f);
	for (char *at = strtok(names, " "); at; at = strtok(NULL, " ")) {
		if (!reason[0])
			why("the network lock of process %d was left behind: table inet %s", pid,
			    at);
		snprintf(cmd, sizeof(cmd), "nft delete table inet %s 2>/dev/null", at);
		if (system(cmd))
			printf("    cannot remove table inet %s\n", at);
	}
	return n ? -1 : 0;
}

static void run_dir(struct run *r, const char *name, const char *mode)
{
	snprintf(r->dir, sizeof(r->dir), "%s/%s-%s", work, name, mode);
	mkdir(r->dir, 0755);
	give_to_user(r->dir);
	snprintf(r->log, sizeof(r->log), "%s/output.txt", r->dir);
	snprintf(r->cryo_log, sizeof(r->cryo_log), "%s/cryo.txt", r->dir);
	snprintf(r->img, sizeof(r->img), "%s/img", r->dir);
}

static void run_program(const char *name, char *const argv[], enum mode m)
{
	struct run r;
	int rc;

	memset(&r, 0, sizeof(r));
	run_dir(&r, name, short_modes[m]);
	reason[0] = 0;
	/* The program may check what only this mode promises (t_lazy_touch). */
	setenv("CRYO_TEST_MODE", short_modes[m], 1);
	r.pid = spawn(argv, r.log, true);
	unsetenv("CRYO_TEST_MODE");
	rc = r.pid < 0 ? why("fork failed") : wait_ready(r.pid, r.log);
	if (!rc)
		rc = run_mode(&r, m);
	/* Its children too (t_cow's hold 512 MiB each): the program leads its own
	 * group. */
	if (rc && r.pid > 0) {
		kill(r.pid, SIGKILL);
		kill(-r.pid, SIGKILL);
	}
	reap_orphans();
	remove_test_ipc();
	if (r.pid > 0 && netlock_left(r.pid) && rc != 1)
		rc = -1;
	if (rc == 1 && (m == MODE_KILL_CRYO || m == MODE_LAZY_KILL))
		return;		/* the program did not ask for it */
	result(name, mode_names[m], rc, rc ? r.log : NULL, rc ? r.cryo_log : NULL);
	if (!rc)
		remove_tree(r.dir);
}

static bool selected(const char *name)
{
	return !filter || strstr(name, filter);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of executables in dir starting with prefix. */
static int list_dir(const char *dir, const char *prefix, char ***out)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) || strchr(de->d_name, '.'))
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	*out = names;
	return n;
}

static void run_unit_tests(void)
{
	char **names = NULL;
	int n = list_dir(unit_dir, "", &names);

	for (int i = 0; i < n; i++) {
		char path[600], log[700], *argv[] = { path, NULL };
		int status;
		pid_t pid;

		if (!selected(names[i])) {
			free(names[i]);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", unit_dir, names[i]);
		snprintf(log, sizeof(log), "%s/unit-%s.txt", work, names[i]);
		reason[0] = 0;
		pid = spawn(argv, log, false);
		if (wait_for(pid, EXIT_TIMEOUT, &status) == 0 &&
		    !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			why("unit test failed (status 0x%x)", status);
		result(names[i], "unit", reason[0] ? -1 : 0, reason[0] ? log : NULL, NULL);
		free(names[i]);
	}
	free(names);
}

static void run_test_programs(void)
{
	char **names = NULL;
	int n = list_dir(tests_dir, "t_", &names);

	for (int i = 0; i < n; i++) {
		char path[600], *argv[] = { path, work, NULL };

		snprintf(path, sizeof(path), "%s/%s", tests_dir, names[i]);
		if (as_user && selected(names[i]) && user_skip(names[i]))
			printf("SKIP %s: as uid %u: %s\n", names[i], user_uid, user_skip(names[i]));
		else if (selected(names[i]))
			for (int m = 0; m < NR_MODES; m++)
				if (modes_enabled & (1u << m))
					run_program(names[i], argv, m);
		free(names[i]);
	}
	free(names);
}

/* Several --pidns restores of one image at once, each started before any ends: every
 * copy is the dumped PID in its own namespace, all run together, each checks itself
 * (t_pidns: PIDs, /proc/self, its child, memory, a pipe) and passes. */
#define PIDNS_COPIES 5

static int restore_copies(struct run *r, pid_t *outer, pid_t *init)
{
	char pidfile[PIDNS_COPIES][700];
	pid_t cryo[PIDNS_COPIES];
	int rc = 0, status;

	for (int i = 0; i < PIDNS_COPIES; i++) {
		char *argv[] = { (char *)cryo_bin, "restore", "-D", r->img, "-d", "--pidns",
				 "--pidfile", pidfile[i], NULL };

		snprintf(pidfile[i], sizeof(pidfile[i]), "%s.pid%d", r->img, i);
		cryo[i] = spawn(argv, r->cryo_log, false);
	}
	for (int i = 0; i < PIDNS_COPIES; i++) {
		if (cryo[i] < 0) {
			rc = rc ? rc : why("fork: %s", strerror(errno));
			continue;
		}
		if (wait_for(cryo[i], EXIT_TIMEOUT, &status))
			rc = -1;
		else if (!rc && status)
			rc = why("cryo restore --pidns (copy %d) exited with status 0x%x", i + 1,
				 status);
	}
	for (int i = 0; !rc && i < PIDNS_COPIES; i++)
		rc = read_pid(pidfile[i], &outer[i]) || check_pidns(outer[i], r->pid, &init[i]);
	for (int i = 0; !rc && i < PIDNS_COPIES; i++)
		for (int k = 0; k < i; k++)
			if (outer[k] == outer[i])
				rc = why("copies %d and %d are the same process %d", k + 1, i + 1,
					 outer[i]);
	return rc;
}

static int run_copies(struct run *r)
{
	pid_t outer[PIDNS_COPIES] = { 0 }, init[PIDNS_COPIES] = { 0 };
	int rc, status;

	if (step_dump(r, r->img, false))
		return -1;
	rc = restore_copies(r, outer, init);
	/* All at once: each is running before any is told to check itself. */
	for (int i = 0; !rc && i < PIDNS_COPIES; i++)
		if (kill(outer[i], 0))
			rc = why("copy %d (%d) is not running", i + 1, outer[i]);
	for (int i = 0; i < PIDNS_COPIES; i++)
		if (outer[i] > 0)
			kill(outer[i], rc ? SIGKILL : SIGUSR1);
	for (int i = 0; i < PIDNS_COPIES; i++) {
		if (init[i] <= 0)
			continue;
		if (wait_for(init[i], EXIT_TIMEOUT, &status))
			rc = rc ? rc : -1;
		else if (!rc && status)
			rc = why("copy %d ended with status 0x%x", i + 1, status);
	}
	if (!rc && count_in(r->log, "PASS\n") != PIDNS_COPIES)
		rc = why("%d of %d copies printed PASS", count_in(r->log, "PASS\n"),
			 PIDNS_COPIES);
	return rc;
}

static void run_pidns_copies(void)
{
	char path[600], *argv[] = { path, work, NULL };
	struct run r;
	int rc;

	if (!selected("t_pidns"))
		return;
	memset(&r, 0, sizeof(r));
	snprintf(path, sizeof(path), "%s/t_pidns", tests_dir);
	run_dir(&r, "t_pidns", "copies");
	reason[0] = 0;
	r.pid = spawn(argv, r.log, true);
	rc = r.pid < 0 ? why("fork failed") : wait_ready(r.pid, r.log);
	if (!rc)
		rc = run_copies(&r);
	if (rc && r.pid > 0)
		kill(r.pid, SIGKILL);
	reap_orphans();
	result("t_pidns", "5 --pidns copies at once", rc, rc ? r.log : NULL,
	       rc ? r.cryo_log : NULL);
	if (!rc)
		remove_tree(r.dir);
}

/* Real interpreters running scripts from tests/real. */
static void run_real_programs(void)
{
	static const struct { const char *name, *interp, *script; } progs[] = {
		{ "python3-compute", "/usr/bin/python3", "compute.py" },
		{ "perl-compute", "/usr/bin/perl", "compute.pl" },
		{ "python3-threads", "/usr/bin/python3", "pool.py" },
		{ "python3-sqlite-transaction", "/usr/bin/python3", "sqlite_txn.py" },
	};

	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		char script[600], *argv[] = { (char *)progs[i].interp, script, work, NULL };

		if (!selected(progs[i].name))
			continue;
		snprintf(script, sizeof(script), "%s/%s", real_dir, progs[i].script);
		if (access(progs[i].interp, X_OK)) {
			printf("SKIP %s: %s is not installed\n", progs[i].name, progs[i].interp);
			continue;
		}
		for (int m = 0; m < NR_MODES; m++)
			if (modes_enabled & (1u << m))
				run_program(progs[i].name, argv, m);
	}
}

#include "harness_bad.c"
#include "harness_stream_bad.c"
#include "harness_real.c"
#include "harness_servers.c"
#include "harness_pkg.c"
#include "harness_user.c"

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cryo", required_argument, 0, 'c' },
		{ "tests", required_argument, 0, 't' },
		{ "unit", required_argument, 0, 'u' },
		{ "real", required_argument, 0, 'r' },
		{ "src", required_argument, 0, 's' },
		{ "filter", required_argument, 0, 'f' },
		{ "fg", no_argument, 0, 'g' },
		{ "verbose", no_argument, 0, 'v' },
		{ "mode", required_argument, 0, 'm' },
		{ "as-user", required_argument, 0, 'U' },
		{ "caps", no_argument, 0, 'C' },
		{ 0, 0, 0, 0 },
	};
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char cryo_abs[4096];
	int c;

	const char *user = NULL;
	bool caps = false;

	while ((c = getopt_long(argc, argv, "c:t:u:r:s:f:gv", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cryo_bin = optarg; break;
		case 't': tests_dir = optarg; break;
		case 'u': unit_dir = optarg; break;
		case 'r': real_dir = optarg; break;
		case 's': src_dir = optarg; break;
		case 'f': filter = optarg; break;
		case 'g': modes_enabled |= 1 << MODE_FG; break;
		case 'v': verbose = true; break;
		case 'm':	/* only this mode (its short name) */
			modes_enabled = 0;
			for (int m = 0; m < NR_MODES; m++)
				if (!strcmp(optarg, short_modes[m]))
					modes_enabled = 1u << m;
			break;
		case 'U': user = optarg; break;
		case 'C': caps = true; break;
		default:
			fprintf(stderr, "usage: harness --cryo BIN --tests DIR [--unit DIR] "
				"[--real DIR] [--src DIR] [--filter S] [--fg] [--mode M] [-v] "
				"[--as-user NAME [--caps]]\n");
			return 2;
		}
	}
	if (!cryo_bin || !tests_dir) {
		fprintf(stderr, "harness: --cryo and --tests are required\n");
		return 2;
	}
	if (!realpath(cryo_bin, cryo_abs)) {
		fprintf(stderr, "harness: %s: %s\n", cryo_bin, strerror(errno));
		return 2;
	}
	cryo_bin = cryo_abs;
	if (geteuid() != 0) {
		fprintf(stderr, "harness: the tests must run as root\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1)) {
		perror("PR_SET_CHILD_SUBREAPER");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(work, sizeof(work), "%s/cryo-tests.XXXXXX", base);
	if (!mkdtemp(work)) {
		perror("mkdtemp");
		return 2;
	}
	printf("work directory: %s\n", work);
	if (user)
		return run_as_user(user, caps);
	remove_test_ipc();
	if (unit_dir)
		run_unit_tests();
	run_test_programs();
	run_pidns_copies();
	run_real_programs();
	if (real_dir)
		run_real_trees();
	if (real_dir)
		run_servers();
	run_bad_inputs();
	run_stream_cases();
	run_pkg();
	reap_orphans();
	if (!failed)
		remove_tree(work);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
