/* Processes: spawning targets (own session, "ready" on fd 3) and cryo, waiting with
 * deadlines through pidfds, checking that a restored process lives, reaping. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define READY_TIMEOUT 300.0
#define CRYO_TIMEOUT 600.0

extern char **environ;

/* Wait for our child (or an orphan handed to us as subreaper) to end. Returns 0 with
 * its status, 1 if someone else reaped it (libcryo, as its tracer), -1 on timeout.
 * An interrupted bench still lets a running cryo finish: killing it mid-dump would
 * leave its work half done. */
int wait_child(pid_t pid, double timeout, int *status)
{
	int fd = syscall(SYS_pidfd_open, pid, 0);
	double end = now() + timeout;
	struct pollfd pfd;
	int r;

	if (fd < 0)
		return errno == ESRCH ? 1 : -1;
	pfd.fd = fd;
	pfd.events = POLLIN;
	do {
		double left = end - now();

		r = poll(&pfd, 1, left > 0 ? (int)(left * 1000) + 1 : 0);
	} while (r < 0 && errno == EINTR);
	close(fd);
	if (r <= 0)
		return -1;
	while ((r = waitpid(pid, status, __WALL)) < 0 && errno == EINTR)
		;
	if (r == pid)
		return 0;
	return errno == ECHILD ? 1 : -1;
}

static int spawn(char *const argv[], const char *out, int ready_fd, bool session, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	int rc;

	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGUSR1);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (ready_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, ready_fd, 3);
	/* Nothing else: cryo refuses pipes and sockets a target might inherit. */
	posix_spawn_file_actions_addclosefrom_np(&fa, ready_fd >= 0 ? 4 : 3);
	posix_spawnattr_init(&at);
	if (session)
		flags |= POSIX_SPAWN_SETSID;
	posix_spawnattr_setflags(&at, flags);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	rc = posix_spawn(pid, argv[0], &fa, &at, argv,
			 cfg.criu_env && cfg.criu && !strcmp(argv[0], cfg.criu) ? cfg.criu_env :
									     environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	errno = rc;
	return rc ? -1 : 0;
}

/* cryo with stdin from `in` and stdout to `out` (-1: /dev/null, the log), stderr
 * appended to the bench's cryo.log. */
int spawn_piped(char *const argv[], int in, int out, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	char log[512];
	int rc;

	snprintf(log, sizeof(log), "%s/cryo.log", cfg.dir);
	posix_spawn_file_actions_init(&fa);
	if (in >= 0)
		posix_spawn_file_actions_adddup2(&fa, in, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (out >= 0)
		posix_spawn_file_actions_adddup2(&fa, out, 1);
	else
		posix_spawn_file_actions_adddup2(&fa, 2, 1);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	rc = posix_spawn(pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	errno = rc;
	return rc ? -1 : 0;
}

/* "R" then end of file: the target is set up and has closed the pipe (cryo refuses
 * pipes), so it may be dumped. */
/* "R", then the end of the pipe (or only "R" when the target keeps it: keep). */
static int wait_ready(int fd, bool keep, char *err, size_t errlen)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	double end = now() + READY_TIMEOUT;
	bool said = false;
	char c;

	for (;;) {
		int r = poll(&pfd, 1, 1000);
		ssize_t n;

		if (interrupted)
			return snprintf(err, errlen, "interrupted"), -1;
		if (r == 0 && now() > end)
			return snprintf(err, errlen, "the target was not ready in time"), -1;
		if (r <= 0)
			continue;
		n = read(fd, &c, 1);
		if (n == 1 && c == 'R')
			said = true;
		if ((n == 1 && c == 'R' && keep) || n == 0)
			break;
		if (n < 0 && errno != EINTR)
			return snprintf(err, errlen, "ready pipe: %s", strerror(errno)), -1;
	}
	if (!said)
		return snprintf(err, errlen, "the target exited before it was ready"), -1;
	return 0;
}

pid_t spawn_target(const char *bin, char *const argv[], char *err, size_t errlen)
{
	return spawn_target_keep(bin, argv, NULL, err, errlen);
}

pid_t spawn_target_keep(const char *bin, char *const argv[], int *ready, char *err,
			size_t errlen)
{
	int p[2], w;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return snprintf(err, errlen, "pipe: %s", strerror(errno)), -1;
	/* Above 3, so the dup2 onto 3 clears close-on-exec. */
	w = fcntl(p[1], F_DUPFD_CLOEXEC, 10);
	close(p[1]);
	if (w < 0 || spawn(argv, "/dev/null", w, true, &pid)) {
		snprintf(err, errlen, "cannot start %s: %s", bin, strerror(errno));
		if (w >= 0)
			close(w);
		close(p[0]);
		return -1;
	}
	close(w);
	if (wait_ready(p[0], ready != NULL, err, errlen)) {
		close(p[0]);
		kill_and_reap(pid);
		return -1;
	}
	if (ready)
		*ready = p[0];
	else
		close(p[0]);
	return pid;
}

/* Start, exec and reap a static program that exits at once: the floor under any
 * command a user runs, measured the way run_cryo measures cryo. */
double spawn_exit_time(const char *bin)
{
	char *argv[] = { (char *)bin, "exit", NULL };
	double t = now();
	pid_t pid;
	int st;

	if (spawn(argv, "/dev/null", -1, false, &pid))
		return -1;
	if (wait_child(pid, 60, &st) || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	return now() - t;
}

static void last_line(const char *path, char *out, size_t len)
{
	char line[512];
	FILE *f = fopen(path, "re");

	snprintf(out, len, "no output");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (line[0])
			str_copy(out, len, line);
	}
	fclose(f);
}

/* Run cryo (args[0] is the binary; criu too) and time it from spawn to reaped exit. */
int run_cryo(const char *const args[], double *secs, char *err, size_t errlen)
{
	const char *base = strrchr(args[0], '/') ? strrchr(args[0], '/') + 1 : args[0];
	char log[512], msg[200];
	double t;
	pid_t pid;
	int st, r;

	snprintf(log, sizeof(log), "%s/cryo.log", cfg.dir);
	t = now();
	if (spawn((char *const *)args, log, -1, false, &pid))
		return snprintf(err, errlen, "cannot run %s: %s", args[0], strerror(errno)), -1;
	r = wait_child(pid, CRYO_TIMEOUT, &st);
	*secs = now() - t;
	if (r) {
		kill_and_reap(pid);
		return snprintf(err, errlen, "%s %s did not finish", base, args[1]), -1;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	last_line(log, msg, sizeof(msg));
	snprintf(err, errlen, "%s %s failed (status 0x%x): %s", base, args[1], st, msg);
	return -1;
}

/* Start cryo without waiting (its output in the bench's cryo.log). */
pid_t spawn_cryo(const char *const args[])
{
	char log[512];
	pid_t pid;

	snprintf(log, sizeof(log), "%s/cryo.log", cfg.dir);
	return spawn((char *const *)args, log, -1, false, &pid) ? -1 : pid;
}

/* Our child (or orphan) named comm, alive, or 0. */
pid_t child_named(const char *comm)
{
	char path[64], buf[4096], name[32], *at, *end;
	int fd = -1;
	ssize_t n;
	pid_t found = 0;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", getpid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	for (at = buf; !found; at = end) {
		long pid = strtol(at, &end, 10);
		FILE *f;

		if (end == at)
			break;
		snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
		f = fopen(path, "re");
		if (f && fscanf(f, "%31s", name) == 1 && !strcmp(name, comm))
			found = pid;
		if (f)
			fclose(f);
	}
	return found;
}

/* Wait until pid is reaped (by us or its tracer), so its PID is free again. */
int wait_gone(pid_t pid, double timeout)
{
	int st;

	if (wait_child(pid, timeout, &st) < 0)
		return -1;
	return kill(pid, 0) == 0 || errno != ESRCH ? -1 : 0;
}

/* The restored process exists, is ours, runs the target and is not stopped or dead. */
int check_alive(pid_t pid, const char *comm, char *err, size_t errlen)
{
	char path[64], buf[512], *open_p, *close_p, state;
	int ppid = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return snprintf(err, errlen, "restored PID %d does not exist", pid), -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return snprintf(err, errlen, "cannot read %s", path), -1;
	buf[n] = 0;
	open_p = strchr(buf, '(');
	close_p = strrchr(buf, ')');
	if (!open_p || !close_p || sscanf(close_p + 1, " %c %d", &state, &ppid) != 2)
		return snprintf(err, errlen, "cannot parse %s", path), -1;
	*close_p = 0;
	if (strcmp(open_p + 1, comm))
		return snprintf(err, errlen, "PID %d runs '%s', not '%s'", pid, open_p + 1, comm), -1;
	if (state != 'S' && state != 'R')
		return snprintf(err, errlen, "restored PID %d is in state %c", pid, state), -1;
	if (ppid != getpid())
		return snprintf(err, errlen, "restored PID %d has parent %d, not the bench", pid,
				ppid), -1;
	return 0;
}

/* Ask the restored target to check its memory; it exits 0 when intact. */
int verify_and_reap(pid_t pid, double timeout, char *err, size_t errlen)
{
	int st, r;

	if (kill(pid, SIGUSR1))
		return snprintf(err, errlen, "cannot signal PID %d: %s", pid, strerror(errno)), -1;
	r = wait_child(pid, timeout, &st);
	if (r < 0) {
		kill_and_reap(pid);
		return snprintf(err, errlen, "restored PID %d did not finish its check", pid), -1;
	}
	if (r > 0)
		return snprintf(err, errlen, "restored PID %d was reaped elsewhere", pid), -1;
	if (WIFSIGNALED(st))
		return snprintf(err, errlen, "restored PID %d died of signal %d", pid,
				WTERMSIG(st)), -1;
	if (WEXITSTATUS(st))
		return snprintf(err, errlen, "restored PID %d: memory check failed (exit %d)",
				pid, WEXITSTATUS(st)), -1;
	return 0;
}

/* SIGKILL always ends it, so wait without a deadline (and through interruptions). */
void kill_and_reap(pid_t pid)
{
	int st;

	if (pid <= 0 || kill(pid, SIGKILL))
		return;
	while (waitpid(pid, &st, __WALL) < 0 && errno == EINTR)
		;
}

void reap_strays(void)
{
	int st;

	while (waitpid(-1, &st, WNOHANG | __WALL) > 0)
		;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int rm_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -1;
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The path of the largest regular file in dir (an image's page data). */
int largest_file(const char *dir, char *out, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	off_t best = -1;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		struct stat st;

		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode) || st.st_size <= best)
			continue;
		best = st.st_size;
		snprintf(out, len, "%s/%s", dir, e->d_name);
	}
	closedir(d);
	return best < 0 ? -1 : 0;
}

uint64_t dir_bytes(const char *path, int *nr_files)
{
	DIR *d = opendir(path);
	struct dirent *e;
	uint64_t sum = 0;

	*nr_files = 0;
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		struct stat st;

		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		sum += st.st_size;
		(*nr_files)++;
	}
	closedir(d);
	return sum;
}
