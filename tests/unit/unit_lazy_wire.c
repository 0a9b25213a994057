/* lazy_wire.c for real: a victim waits on a page of its own that only a userfaultfd can
 * supply, and two holders (the supplier and its guard, played here) hold that fd, each
 * with a tripwire of its own armed for the victim. Both SIGKILLed in one moment: the
 * victim dies by SIGKILL, never reading the zero page the kernel maps once the fd is
 * gone; one alone kills it too. Disarmed: the holders' end kills no one. Every wait is
 * bounded. */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lazy.h"
#include "proc.h"
#include "unit.h"

#define WAIT_MS 20000
#define VICTIM_READ_ZERO 7	/* the victim's exit status: it ran on a zero page */
#define VICTIM_READ_DATA 8
#define SPREAD_BYTES (64 << 20)

enum { ARMED, DISARMED };

struct scene {
	pid_t victim, holder;
	int holder_pidfd, co_holder_pidfd;	/* the co-holder is not the test's child */
	int victim_sock;	/* the test's end: "go" to the victim */
};

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 'f';
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &mh, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	char byte;
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* Registers a page of its own, hands the fd over, closes its copy, and on "go" reads
 * the page: it can only go on once something fills it (or the fd is gone). */
static void victim_main(int sock)
{
	volatile uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .range = { (uint64_t)page, 4096 },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	char go;

	if (page == MAP_FAILED || uffd < 0 || ioctl(uffd, UFFDIO_API, &api) ||
	    ioctl(uffd, UFFDIO_REGISTER, &reg) || send_fd(sock, uffd))
		_exit(2);
	close(uffd);
	if (read(sock, &go, 1) != 1)
		_exit(3);
	_exit(page[123] ? VICTIM_READ_DATA : VICTIM_READ_ZERO);
}

/* A file slow to release on either side of the userfaultfd in the holder's table: a
 * memfd of SPREAD_BYTES, whose pages take milliseconds to free. A holder's death then
 * leaves that long between the userfaultfd's release and the release of the fds at
 * either end of the table, so a wire that went off only after the userfaultfd would
 * lose the race to the victim's retried fault, whichever order this kernel releases
 * in. The userfaultfd's new fd. */
static int spacer(void)
{
	int fd = memfd_create("spacer", MFD_CLOEXEC);

	if (fd >= 0 && fallocate(fd, 0, 0, SPREAD_BYTES)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int spread_fds(int uffd)
{
	int below = spacer(), mid = dup(uffd), above = spacer();

	close(uffd);
	return below < 0 || mid < 0 || above < 0 || above < mid || below > mid ? -1 : mid;
}

/* The supplier's part, and its guard's (forked with the userfaultfd): each makes its
 * tripwire and arms it for the victim, then both wait to be killed. */
static void holder_main(int uffd, pid_t victim, int report, int how)
{
	struct lazy_wire w;
	int ends[2];
	pid_t me;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	uffd = spread_fds(uffd);	/* held, never answered */
	if (uffd < 0 || fork() < 0)
		_exit(2);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (wire_make(&w) || wire_arm(&w, victim, ends))
		_exit(2);
	if (how == DISARMED)
		wire_disarm(ends);
	/* Each says it is armed. */
	me = getpid();
	if (write(report, &me, sizeof(me)) != sizeof(me))
		_exit(2);
	for (;;)
		pause();
}

/* The victim waiting on its page, the holders holding its only userfaultfd. */
static int scene_start(struct scene *sc, int how)
{
	int vs[2], rep[2], uffd;
	pid_t pids[2];

	memset(sc, 0, sizeof(*sc));
	sc->holder_pidfd = sc->co_holder_pidfd = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, vs) || pipe2(rep, O_CLOEXEC))
		return -1;
	sc->victim = fork();
	if (!sc->victim) {
		close(vs[0]);
		victim_main(vs[1]);
	}
	close(vs[1]);
	sc->victim_sock = vs[0];
	uffd = recv_fd(vs[0]);
	if (sc->victim < 0 || uffd < 0)
		return -1;
	sc->holder = fork();
	if (!sc->holder) {
		close(rep[0]);
		holder_main(uffd, sc->victim, rep[1], how);
	}

	close(rep[1]);
	close(uffd);		/* the holders' copies are the last */
	if (sc->holder < 0 || read(rep[0], &pids[0], sizeof(pid_t)) != sizeof(pid_t) ||
	    read(rep[0], &pids[1], sizeof(pid_t)) != sizeof(pid_t)) {
		close(rep[0]);
		return -1;
	}
	close(rep[0]);
	/* Alive while the holder is: it dies with it (PR_SET_PDEATHSIG). */
	sc->holder_pidfd = syscall(__NR_pidfd_open, sc->holder, 0);
	sc->co_holder_pidfd = syscall(__NR_pidfd_open,
				      pids[0] == sc->holder ? pids[1] : pids[0], 0);
	if (sc->holder_pidfd < 0 || sc->co_holder_pidfd < 0)
		return -1;
	return write(sc->victim_sock, "g", 1) == 1 ? 0 : -1;
}

/* The victim's end within the bound: its wait status, or -1 if it still runs. */
static int victim_end(struct scene *sc, int ms)
{
	int status;

	for (int t = 0; t < ms; t++) {
		pid_t r = waitpid(sc->victim, &status, WNOHANG);

		if (r == sc->victim) {
			sc->victim = 0;		/* reaped: its PID may be another's now */
			return status;
		}
		sleep_ms(1);
	}
	return -1;
}

static void kill_by(int pidfd)
{
	if (pidfd >= 0)
		syscall(__NR_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
}

static void scene_end(struct scene *sc)
{
	int status;

	if (sc->victim > 0) {
		kill(sc->victim, SIGKILL);
		waitpid(sc->victim, &status, 0);
	}
	kill_by(sc->co_holder_pidfd);
	if (sc->holder > 0) {
		kill(sc->holder, SIGKILL);
		waitpid(sc->holder, &status, 0);
	}
	if (sc->holder_pidfd >= 0)
		close(sc->holder_pidfd);
	if (sc->co_holder_pidfd >= 0)
		close(sc->co_holder_pidfd);
	close(sc->victim_sock);
}

/* Is the victim blocked in its page fault (blocked outside any system call, which
 * /proc/PID/syscall shows as -1), not still in its read of "go"? */
static int victim_waits(pid_t pid)
{
	char buf[256];

	return proc_peek_pid_file(pid, "syscall", buf, sizeof(buf)) > 0 &&
	       !strncmp(buf, "-1 ", 3);
}

static void both_killed(int how, const char *name)
{
	struct scene sc;
	int status, t;

	unit_case();
	if (scene_start(&sc, how)) {
		CHECK(0, "%s: cannot set the scene: %s", name, strerror(errno));
		return;
	}
	for (t = 0; t < WAIT_MS && !victim_waits(sc.victim); t++)
		sleep_ms(1);
	CHECK(t < WAIT_MS, "%s: the victim never waited on its page", name);
	/* As `pkill -9` would: one right after the other. */
	kill_by(sc.holder_pidfd);
	kill_by(sc.co_holder_pidfd);
	status = victim_end(&sc, WAIT_MS);
	if (how == ARMED)
		CHECK(status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		      "%s: the victim was not killed (status 0x%x%s)", name, status,
		      status >= 0 && WIFEXITED(status) &&
		      WEXITSTATUS(status) == VICTIM_READ_ZERO ? ": it read a zero page" : "");
	else
		CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == VICTIM_READ_ZERO,
		      "%s: a disarmed wire still acted (status 0x%x)", name, status);
	scene_end(&sc);
}

/* One holder dead, the guard: its own tripwire kills the victim (the supplier would
 * kill the tree too, a moment later). */
static void one_killed(void)
{
	struct scene sc;
	int status;

	unit_case();
	if (scene_start(&sc, ARMED)) {
		CHECK(0, "one killed: cannot set the scene: %s", strerror(errno));
		return;
	}
	kill_by(sc.co_holder_pidfd);
	status = victim_end(&sc, WAIT_MS);
	CHECK(status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "one holder killed: the victim was not killed (status 0x%x)", status);
	scene_end(&sc);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < 5; i++)
		both_killed(ARMED, "both holders killed");
	both_killed(DISARMED, "disarmed, both killed");
	one_killed();
	return unit_done("unit_lazy_wire");
}
