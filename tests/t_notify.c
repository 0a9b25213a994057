/* pidfds, inotify and O_PATH fds. The root holds a non-blocking pidfd of its child C
 * (and a dup of it) watched by epoll, a pidfd of a process it reaped, a thread pidfd
 * of itself; an inotify instance with watches 1, 3 and 4 (2 was removed) on a
 * directory, a file (IN_ONESHOT) and a symlink (IN_DONT_FOLLOW); O_PATH fds on a
 * symlink, a FIFO and /dev/null. After restore it checks the fdinfo of each, that
 * C's exit reaches it through epoll and the pidfd, and that the watches see events
 * under their own numbers. C is told to go through its pidfd. With "outside-pidfd",
 * "queued-inotify", "fanotify" or "aio" it holds what dump refuses. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <linux/aio_abi.h>
#include <sys/epoll.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tlib.h"

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#define KCMP_FILE 0
#define C_EXIT 5

static pid_t child;
static int pfd, pfd_dup, pfd_dead, pfd_thread, ep, in, link_fd, fifo_fd, null_fd;
static int wd_dir, wd_file, wd_link;
static char dir[512], file[600], lnk[600], fifo[600];

static int pidfd_open(pid_t pid, unsigned int flags)
{
	return syscall(SYS_pidfd_open, pid, flags);
}

/* A number from the fd's fdinfo line "key:", or -2. */
static long fdinfo_num(int fd, const char *key, int base)
{
	char path[64], buf[4096], *l;
	FILE *f;
	long v = -2;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	TL_CHECK(f, "fopen %s", path);
	while (fgets(buf, sizeof(buf), f))
		if (!strncmp(buf, key, strlen(key)) && (l = buf + strlen(key)) && *l == ':') {
			v = strtol(l + 1, NULL, base);
			break;
		}
	fclose(f);
	return v;
}

/* The inotify fdinfo's watches as "wd=mask;" in rising wd order. */
static void inotify_list(char *out, size_t len)
{
	char path[64], buf[4096];
	unsigned masks[16] = { 0 };
	FILE *f;
	size_t o = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", in);
	f = fopen(path, "r");
	TL_CHECK(f, "fopen %s", path);
	while (fgets(buf, sizeof(buf), f)) {
		unsigned wd, mask;

		if (sscanf(buf, "inotify wd:%x ino:%*x sdev:%*x mask:%x", &wd, &mask) != 2)
			continue;
		TL_CHECK(wd < 16 && !masks[wd], "unexpected watch %u", wd);
		masks[wd] = mask;
	}
	fclose(f);
	out[0] = 0;
	for (unsigned wd = 0; wd < 16; wd++)
		if (masks[wd])
			o += snprintf(out + o, len - o, "%u=%x;", wd, masks[wd]);
}

static void setup_pidfds(void)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 77 };
	pid_t dead;

	child = fork();
	TL_CHECK(child >= 0, "fork");
	if (!child) {
		tl_wait_go();
		_exit(C_EXIT);
	}
	pfd = pidfd_open(child, PIDFD_NONBLOCK);
	pfd_dup = dup(pfd);
	dead = fork();
	if (!dead)
		_exit(0);
	pfd_dead = pidfd_open(dead, 0);
	TL_CHECK(waitpid(dead, NULL, 0) == dead, "reaping");
	pfd_thread = pidfd_open(getpid(), PIDFD_THREAD);
	ep = epoll_create1(0);
	TL_CHECK(pfd >= 0 && pfd_dup >= 0 && pfd_dead >= 0 && pfd_thread >= 0 && ep >= 0,
		 "pidfds: %s", strerror(errno));
	TL_CHECK(!epoll_ctl(ep, EPOLL_CTL_ADD, pfd, &ev), "epoll_ctl");
}

static void setup_inotify(const char *work)
{
	int gap, fd;

	snprintf(dir, sizeof(dir), "%s/t_notify.%d", work, getpid());
	snprintf(file, sizeof(file), "%s/f", dir);
	snprintf(lnk, sizeof(lnk), "%s/l", dir);
	snprintf(fifo, sizeof(fifo), "%s/p", dir);
	TL_CHECK(!mkdir(dir, 0755), "mkdir %s: %s", dir, strerror(errno));
	fd = open(file, O_CREAT | O_WRONLY, 0644);
	TL_CHECK(fd >= 0 && !symlink("f", lnk) && !mkfifo(fifo, 0600), "files: %s",
		 strerror(errno));
	close(fd);
	in = inotify_init1(IN_NONBLOCK);
	wd_dir = inotify_add_watch(in, dir, IN_CREATE | IN_DELETE);
	gap = inotify_add_watch(in, "/", IN_ATTRIB);
	wd_file = inotify_add_watch(in, file, IN_MODIFY | IN_ONESHOT);
	wd_link = inotify_add_watch(in, lnk, IN_ATTRIB | IN_DONT_FOLLOW);
	TL_CHECK(wd_dir == 1 && gap == 2 && wd_file == 3 && wd_link == 4, "watch numbers %d %d %d %d",
		 wd_dir, gap, wd_file, wd_link);
	TL_CHECK(!inotify_rm_watch(in, gap), "rm_watch");
	{
		char buf[512];

		TL_CHECK(read(in, buf, sizeof(buf)) > 0, "IN_IGNORED of the removed watch");
	}
	link_fd = open(lnk, O_PATH | O_NOFOLLOW);
	fifo_fd = open(fifo, O_PATH);
	null_fd = open("/dev/null", O_PATH);
	TL_CHECK(link_fd >= 0 && fifo_fd >= 0 && null_fd >= 0, "O_PATH: %s", strerror(errno));
}

static void check_pidfds(void)
{
	struct epoll_event ev;
	siginfo_t si;

	TL_CHECK(fdinfo_num(pfd, "Pid", 10) == child, "the pidfd names %ld, not %d",
		 fdinfo_num(pfd, "Pid", 10), child);
	TL_CHECK(fcntl(pfd, F_GETFL) & O_NONBLOCK, "the pidfd lost PIDFD_NONBLOCK");
	TL_CHECK(!syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, pfd, pfd_dup),
		 "the pidfd and its dup are different files");
	TL_CHECK(fdinfo_num(pfd_dead, "Pid", 10) == -1, "the reaped process's pidfd names %ld",
		 fdinfo_num(pfd_dead, "Pid", 10));
	TL_CHECK(fdinfo_num(pfd_thread, "Pid", 10) == getpid() &&
		 (fdinfo_num(pfd_thread, "flags", 8) & PIDFD_THREAD), "the thread pidfd changed");
	memset(&si, 0, sizeof(si));
	TL_CHECK(!waitid(P_PIDFD, pfd, &si, WEXITED | WNOHANG) && si.si_pid == 0,
		 "C ended too early");
	TL_CHECK(!syscall(SYS_pidfd_send_signal, pfd, SIGUSR1, NULL, 0),
		 "pidfd_send_signal: %s", strerror(errno));
	TL_CHECK(epoll_wait(ep, &ev, 1, 20000) == 1 && ev.data.u64 == 77,
		 "epoll did not see C end through its pidfd");
	TL_CHECK(!waitid(P_PIDFD, pfd_dup, &si, WEXITED) && si.si_pid == child &&
		 si.si_status == C_EXIT, "waitid on the pidfd: %s", strerror(errno));
	TL_CHECK(waitid(P_PIDFD, pfd_dead, &si, WEXITED | WNOHANG) < 0 && errno == ECHILD,
		 "the reaped process can be waited for");
}

/* The next event: its wd and mask. */
static void next_event(int wd, uint32_t mask, const char *what)
{
	union {
		struct inotify_event ev;
		char buf[512];
	} u;
	struct pollfd p = { in, POLLIN, 0 };

	TL_CHECK(poll(&p, 1, 20000) == 1, "no inotify event for %s", what);
	TL_CHECK(read(in, u.buf, sizeof(u.buf)) >= (ssize_t)sizeof(u.ev), "reading inotify");
	TL_CHECK(u.ev.wd == wd && (u.ev.mask & mask), "%s: event wd %d mask %x, not wd %d mask %x",
		 what, u.ev.wd, u.ev.mask, wd, mask);
}

static void check_inotify(void)
{
	char list[256], want[700];
	struct stat st;
	int fd;

	inotify_list(list, sizeof(list));
	snprintf(want, sizeof(want), "%d=%x;%d=%x;%d=%x;", wd_dir, IN_CREATE | IN_DELETE,
		 wd_file, IN_MODIFY | IN_ONESHOT, wd_link, IN_ATTRIB);
	TL_CHECK(!strcmp(list, want), "inotify watches are %s, not %s", list, want);
	TL_CHECK(read(in, list, sizeof(list)) < 0 && errno == EAGAIN,
		 "inotify has events queued, or lost IN_NONBLOCK");
	snprintf(want, sizeof(want), "%s/new", dir);
	fd = open(want, O_CREAT | O_WRONLY, 0644);
	TL_CHECK(fd >= 0, "create");
	close(fd);
	next_event(wd_dir, IN_CREATE, "a new file in the directory");
	fd = open(file, O_WRONLY);
	TL_CHECK(fd >= 0 && write(fd, "x", 1) == 1, "write");
	close(fd);
	next_event(wd_file, IN_MODIFY, "writing the watched file");
	TL_CHECK(!fchmodat(AT_FDCWD, lnk, 0644, AT_SYMLINK_NOFOLLOW) || errno == EOPNOTSUPP,
		 "chmod link");
	TL_CHECK(!lchown(lnk, getuid(), getgid()), "lchown");
	next_event(wd_link, IN_ATTRIB, "the symlink's attributes");
	unlink(want);

	TL_CHECK(!fstatat(link_fd, "", &st, AT_EMPTY_PATH) && S_ISLNK(st.st_mode),
		 "the O_PATH fd is not on the symlink");
	TL_CHECK(readlinkat(link_fd, "", list, sizeof(list)) == 1 && list[0] == 'f',
		 "the symlink reads differently");
	TL_CHECK(!fstat(fifo_fd, &st) && S_ISFIFO(st.st_mode) && (fcntl(fifo_fd, F_GETFL) & O_PATH),
		 "the O_PATH fd on the FIFO changed");
	TL_CHECK(!fstat(null_fd, &st) && S_ISCHR(st.st_mode) && (fcntl(null_fd, F_GETFL) & O_PATH),
		 "the O_PATH fd on /dev/null changed");
}

static void cleanup(void)
{
	char p[700];

	unlink(file);
	unlink(lnk);
	unlink(fifo);
	snprintf(p, sizeof(p), "%s/new", dir);
	unlink(p);
	rmdir(dir);
}

/* For the bad-input cases: what dump must refuse. */
static void setup_refused(const char *what)
{
	char p[700];
	int fd;

	if (!strcmp(what, "outside-pidfd")) {
		TL_CHECK(pidfd_open(getppid(), 0) >= 0, "pidfd of the parent: %s", strerror(errno));
		return;
	}
	if (!strcmp(what, "fanotify")) {
		TL_CHECK(syscall(SYS_fanotify_init, FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY) >= 0,
			 "fanotify_init: %s", strerror(errno));
		return;
	}
	if (!strcmp(what, "aio")) {
		aio_context_t ctx = 0;

		TL_CHECK(!syscall(SYS_io_setup, 4, &ctx), "io_setup: %s", strerror(errno));
		return;
	}
	snprintf(p, sizeof(p), "%s/queued", dir);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	TL_CHECK(fd >= 0, "create %s", p);
	close(fd);
	unlink(p);
}

int main(int argc, char **argv)
{
	tl_init();
	setup_pidfds();
	setup_inotify(argc > 1 ? argv[1] : ".");
	if (argc > 2)
		setup_refused(argv[2]);
	tl_ready();
	tl_wait_go();
	if (argc > 2 && !strcmp(argv[2], "queued-inotify")) {
		/* The refused dump left them where they were. */
		char buf[1024];
		ssize_t n = read(in, buf, sizeof(buf));
		struct inotify_event *a = (void *)buf, *b;

		TL_CHECK(n > (ssize_t)sizeof(*a), "the queued events are gone");
		b = (void *)(buf + sizeof(*a) + a->len);
		TL_CHECK(n == (ssize_t)(2 * sizeof(*a) + a->len + b->len) && a->wd == wd_dir &&
			 (a->mask & IN_CREATE) && b->wd == wd_dir && (b->mask & IN_DELETE),
			 "the queued events changed");
	}
	check_pidfds();
	check_inotify();
	cleanup();
	tl_pass();
}
