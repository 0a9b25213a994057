/* --pidns: a restore into a fresh PID namespace. cryo's child is the namespace's PID 1;
 * it restores the tree inside (every PID, /proc and ptrace in the namespace's terms),
 * tells cryo how it went, then stays as the minimal init: it reaps, forwards nothing,
 * and exits with the root's status when the root exits. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "pidns.h"
#include "proc.h"
#include "stats.h"
#include "sys.h"

/* What the init tells cryo, with the restore's figures after it (stats.c) and the
 * root's pidfd on success. */
struct pidns_report {
	int32_t rc;
	char err[1024];
};

#define REPORT_MAX (sizeof(struct pidns_report) + (256u << 10))

static pid_t last_root, last_init;

int pidns_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

pid_t pidns_waitee(pid_t root)
{
	return root > 0 && root == last_root ? last_init : root;
}

/* ---- inside: the init ---- */

/* A /proc of the namespace: /proc/self and /proc/PID of a restored program then name
 * what it expects. Slave propagation: the host's later mounts still show inside,
 * nothing made inside shows outside. */
static int own_proc(void)
{
	if (unshare(CLONE_NEWNS))
		return cr_perr("cannot make a mount namespace for the new PID namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL))
		return cr_perr("cannot make the new mount namespace a slave of cryo's");
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		return cr_perr("cannot mount a /proc of the new PID namespace");
	return 0;
}

static void send_report(int sk, int rc, int pidfd)
{
	struct pidns_report r = { .rc = rc };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov[2] = { { &r, sizeof(r) } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	struct cmsghdr *cm;

	iov[1].iov_base = stats_pack(&iov[1].iov_len);
	if (!iov[1].iov_base || iov[1].iov_len > REPORT_MAX - sizeof(r))
		iov[1].iov_len = 0;

	if (rc)
		snprintf(r.err, sizeof(r.err), "%s", cr_last_error() ? cr_last_error() :
			 "the restore in the new PID namespace failed");
	if (pidfd >= 0) {
		memset(cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pidfd, sizeof(int));
	}
	while (sendmsg(sk, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
	free(iov[1].iov_base);
}

/* PID 1 from here on: nothing of cryo's is needed any more. */
static __attribute__((noreturn)) void be_init(pid_t root)
{
	sigset_t all;
	int status;
	pid_t pid;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	fflush(NULL);
	syscall(__NR_close_range, 0, ~0U, 0);
	malloc_trim(0);
	for (;;) {
		pid = waitpid(-1, &status, __WALL);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			_exit(1);	/* cannot happen: the root is a child until it is reaped */
		if (pid == root)
			_exit(pidns_exit_code(status));
	}
}

static __attribute__((noreturn)) void init_main(int sk, int (*restore)(void *, pid_t *),
					       void *arg)
{
	pid_t root = 0;
	char go = 0;
	int pidfd;

	/* Dies with cryo until the tree runs; and if cryo died before this, the read
	 * finds the socket closed. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (read(sk, &go, 1) != 1 || go != 1)
		_exit(1);
	if (own_proc() || restore(arg, &root)) {
		send_report(sk, -1, -1);
		_exit(1);
	}
	pidfd = syscall(__NR_pidfd_open, root, 0);
	if (pidfd < 0) {
		cr_perr("cannot open a pidfd of the restored root %d", root);
		send_report(sk, -1, -1);
		_exit(1);
	}
	/* The tree runs: it outlives cryo from now on. */
	prctl(PR_SET_PDEATHSIG, 0);
	send_report(sk, 0, pidfd);
	be_init(root);
}

/* ---- outside: cryo ---- */

/* The PID a pidfd stands for, as this process's /proc shows it (its fdinfo). */
static pid_t pidfd_pid(int pidfd)
{
	char path[64], *txt, *at;
	size_t n;
	pid_t pid = -1;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	txt = proc_read_file(path, &n);
	at = txt ? strstr(txt, "\nPid:\t") : NULL;
	if (at)
		pid = atoi(at + 6);
	free(txt);
	return pid;
}

/* The figures, then the verdict, of the restore made in the namespace. */
static int take_report(struct msghdr *msg, ssize_t got, struct pidns *ns)
{
	struct pidns_report r;
	struct cmsghdr *cm;
	int pidfd = -1;

	if (got < (ssize_t)sizeof(r))
		return cr_err("the new PID namespace's init ended before the restore finished");
	memcpy(&r, msg->msg_iov[0].iov_base, sizeof(r));
	if (got > (ssize_t)sizeof(r) &&
	    stats_unpack((char *)msg->msg_iov[0].iov_base + sizeof(r), got - sizeof(r)))
		pr_warn("the restore's statistics were malformed");
	cm = CMSG_FIRSTHDR(msg);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&pidfd, CMSG_DATA(cm), sizeof(int));
	r.err[sizeof(r.err) - 1] = 0;
	if (r.rc) {
		if (pidfd >= 0)
			close(pidfd);
		return cr_err("%s", r.err);
	}
	if (pidfd < 0)
		return cr_err("the new PID namespace's init gave no restored root");
	ns->root = pidfd_pid(pidfd);
	close(pidfd);
	return ns->root > 0 ? 0 : cr_err("cannot tell the restored root's PID outside its "
					 "namespace");
}

static int read_report(int sk, struct pidns *ns)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { malloc(REPORT_MAX), REPORT_MAX };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	ssize_t got;
	int rc;

	if (!iov.iov_base)
		return cr_err("out of memory");
	do
		got = recvmsg(sk, &msg, MSG_CMSG_CLOEXEC);
	while (got < 0 && errno == EINTR);
	rc = take_report(&msg, got, ns);
	free(iov.iov_base);
	return rc;
}

/* unshare(CLONE_NEWPID) only changes where cryo's children go: after the fork cryo's
 * next children go to its own namespace again. */
static pid_t fork_into(const struct pidns *ns, int self_ns)
{
	pid_t pid;

	if (unshare(CLONE_NEWPID | ns->unshare_flags))
		return cr_perr("cannot make a PID namespace");
	fflush(NULL);	/* what is buffered is written once, not by both */
	pid = fork();
	/* In a user namespace of its own (userns.c) cryo cannot go back: its first PID
	 * namespace belongs to the first user namespace. It needs not: it makes no more
	 * children, the restore runs in the init. */
	if (pid && !(ns->unshare_flags & CLONE_NEWUSER) && setns(self_ns, CLONE_NEWPID) &&
	    pid > 0) {
		cr_perr("cannot go back to cryo's PID namespace");
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	if (pid < 0)
		return cr_perr("cannot fork into the new PID namespace");
	return pid;
}

static void reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int pidns_enter(struct pidns *ns, int (*restore)(void *arg, pid_t *root), void *arg)
{
	int sk[2], self_ns;
	char go = 1;
	pid_t pid;

	self_ns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (self_ns < 0)
		return cr_perr("cannot open cryo's PID namespace");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk)) {
		close(self_ns);
		return cr_perr("socketpair");
	}
	pid = fork_into(ns, self_ns);
	close(self_ns);
	if (pid == 0) {
		close(sk[0]);
		init_main(sk[1], restore, arg);
	}
	close(sk[1]);
	if (pid < 0) {
		close(sk[0]);
		return -1;
	}
	ns->init = pid;
	if ((ns->outer_setup && ns->outer_setup(pid, ns->arg)) || write(sk[0], &go, 1) != 1 ||
	    read_report(sk[0], ns)) {
		close(sk[0]);
		kill(pid, SIGKILL);
		reap(pid);
		return -1;
	}
	close(sk[0]);
	last_root = ns->root;
	last_init = ns->init;
	pr_info("restored into a new PID namespace: init %d, root %d (outside)", ns->init,
		ns->root);
	return 0;
}
