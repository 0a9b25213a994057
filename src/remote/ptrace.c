/* ptrace basics: bounded waits for tracee stops (sleeping on SIGCHLD), seizing a task
 * into an interrupt stop whatever signals arrive, registers, xstate, signal mask and
 * memory of stopped tasks. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "remote.h"
#include "stats.h"

#define SEIZE_MAX_SIGNALS 100000	/* signals passed on before a stop, at most */

void rmt_begin(uint64_t *old)
{
	struct sigaction sa;
	sigset_t chld, prev;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, &prev);
	*old = sigismember(&prev, SIGCHLD) ? 1 : 0;
}

void rmt_end(uint64_t old)
{
	sigset_t chld;

	if (old)
		return;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_UNBLOCK, &chld, NULL);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *describe_exit(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "changed state (wait status 0x%x)", status);
	return buf;
}

/* Sleep until a SIGCHLD arrives or `ms` pass (at most 50 ms: a wakeup taken by
 * another waiter must not cost more). */
static void sleep_on_child(int64_t ms)
{
	struct timespec ts;
	sigset_t chld;

	if (ms > 50)
		ms = 50;
	ts.tv_sec = 0;
	ts.tv_nsec = ms * 1000000;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigtimedwait(&chld, NULL, &ts);
}

int ptr_wait_ms(pid_t tid, int *status, int ms)
{
	char why[64];

	if (ptr_wait_change_ms(tid, status, ms))
		return -1;
	if (!WIFSTOPPED(*status))
		return cr_err("task %d %s while under control", tid,
			      describe_exit(*status, why, sizeof(why)));
	return 0;
}

/* The progress line is redrawn while cryo waits (a restored task reading its pages). */
#define PROGRESS_TICK_MS 200

int ptr_wait_change_ms(pid_t tid, int *status, int ms)
{
	int64_t deadline = now_ms() + ms;

	for (;;) {
		pid_t r = waitpid(tid, status, __WALL | WNOHANG);
		int64_t left;

		if (r == tid)
			break;
		if (r < 0 && errno != EINTR)
			return cr_perr("waiting for task %d", tid);
		left = deadline - now_ms();
		if (left <= 0)
			return cr_err("task %d did not stop within %d ms", tid, ms);
		stats_tick();
		sleep_on_child(left < PROGRESS_TICK_MS ? left : PROGRESS_TICK_MS);
	}
	return 0;
}

int ptr_wait(pid_t tid, int *status)
{
	return ptr_wait_ms(tid, status, RMT_WAIT_MS);
}

enum stop_kind stop_kind(int status)
{
	int event = stop_event(status);

	if (event == PTRACE_EVENT_STOP)
		return STOP_EVENT;
	if (event)
		return STOP_OTHER;
	if (stop_signal(status) == (SIGTRAP | 0x80))
		return STOP_SYSCALL;
	return STOP_SIGNAL;
}

bool stop_is_group(int status)
{
	int sig = stop_signal(status);

	return stop_kind(status) == STOP_EVENT &&
	       (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU);
}

static int seize_error(pid_t tid)
{
	int err = errno;
	size_t len;
	char *txt;
	struct proc_status st;

	if (err == ESRCH)
		return cr_err("no process with PID %d", tid);
	if (err != EPERM)
		return cr_perr("cannot seize task %d", tid);
	txt = proc_read_pid_file(tid, "status", &len);
	if (txt && !proc_parse_status(txt, len, &st) && st.tracer_pid) {
		free(txt);
		return cr_err("task %d is already traced by PID %d", tid, st.tracer_pid);
	}
	free(txt);
	cr_err_reset();
	errno = err;
	return cr_perr("cannot seize task %d (ptrace)", tid);
}

/* ptrace refuses a thread that has begun to exit: it is as good as gone. */
static bool thread_exiting(pid_t tid)
{
	struct proc_stat st;
	char path[64];
	size_t len;
	char *txt;
	bool exiting = true;
	bool had_error = cr_err_set();

	snprintf(path, sizeof(path), "/proc/%d/stat", tid);
	txt = proc_read_file(path, &len);
	if (txt && !proc_parse_stat(txt, len, &st))
		exiting = st.state == 'Z' || st.state == 'X' || (st.flags & 0x4);	/* PF_EXITING */
	free(txt);
	if (!had_error)
		cr_err_reset();
	return exiting;
}

/* --timeout: when the dump must be done (now_ms() time), 0 for no limit. Only the
 * seize and the dump's own checks between steps obey it: giving the tree back never
 * does. */
static int64_t dump_deadline;
static unsigned dump_timeout_s;

void ptr_set_deadline(unsigned secs)
{
	dump_timeout_s = secs;
	dump_deadline = secs ? now_ms() + secs * 1000LL : 0;
}

int ptr_check_deadline(void)
{
	if (dump_deadline && now_ms() >= dump_deadline)
		return cr_err("the dump did not finish within --timeout %u s; its processes go "
			      "on untouched", dump_timeout_s);
	return 0;
}

/* How long a task may take to stop: RMT_WAIT_MS, or what is left of --timeout. */
static int seize_wait_ms(void)
{
	int64_t left = dump_deadline ? dump_deadline - now_ms() : RMT_WAIT_MS;

	return left < 1 ? 1 : left > RMT_WAIT_MS ? RMT_WAIT_MS : (int)left;
}

/* A task that did not stop in time (or a wait that failed otherwise, already said):
 * say it is --timeout's doing when it is. */
static int seize_too_slow(pid_t tid, int ms)
{
	if (dump_deadline && now_ms() >= dump_deadline) {
		cr_err_reset();
		return cr_err("task %d did not stop within --timeout %u s; its processes go on "
			      "untouched", tid, dump_timeout_s);
	}
	return cr_err("task %d did not stop within %d ms", tid, ms);
}

/* Wait for the interrupt stop asked for, passing on signals that come first. */
static int seize_converge(pid_t tid, bool leader, bool *gone, int *group_stop)
{
	for (long n = 0; n < SEIZE_MAX_SIGNALS; n++) {
		int status, ms = seize_wait_ms();
		pid_t r;

		if (!leader) {
			/* A thread may exit meanwhile; that is not an error. */
			int64_t deadline = now_ms() + ms;

			while ((r = waitpid(tid, &status, __WALL | WNOHANG)) == 0) {
				if (now_ms() > deadline)
					return seize_too_slow(tid, ms);
				sleep_on_child(deadline - now_ms());
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return cr_perr("waiting for thread %d", tid);
			if (!WIFSTOPPED(status)) {
				*gone = true;
				return 0;
			}
		} else if (ptr_wait_ms(tid, &status, ms)) {
			return seize_too_slow(tid, ms);
		}
		if (stop_kind(status) == STOP_EVENT) {
			*group_stop = stop_is_group(status) ? stop_signal(status) : 0;
			return 0;
		}
		/* Any trap consumes a pending interrupt: ask again, then let the signal
		 * go where it would have gone. */
		pr_debug("task %d: passing signal %d through before the stop", tid,
			 stop_signal(status));
		if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) ||
		    ptrace(PTRACE_CONT, tid, 0, (void *)(long)stop_signal(status)))
			return cr_perr("cannot resume task %d", tid);
	}
	return cr_err("task %d keeps receiving signals; it could not be stopped", tid);
}

int ptr_seize(pid_t tid, bool leader, bool *gone, int *group_stop)
{
	*gone = false;
	*group_stop = 0;
	if (ptrace(PTRACE_SEIZE, tid, 0, (void *)PTRACE_O_TRACESYSGOOD)) {
		if (!leader && (errno == ESRCH || (errno == EPERM && thread_exiting(tid)))) {
			*gone = true;
			return 0;
		}
		return seize_error(tid);
	}
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0))
		return cr_perr("cannot interrupt task %d", tid);
	return seize_converge(tid, leader, gone, group_stop);
}

int ptr_reinterrupt(pid_t tid)
{
	int status;

	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) || ptrace(PTRACE_CONT, tid, 0, 0))
		return cr_perr("cannot stop task %d again", tid);
	for (int n = 0; n < 64; n++) {
		if (ptr_wait(tid, &status))
			return -1;
		if (stop_kind(status) == STOP_EVENT)
			return 0;
		/* Only an unblockable signal can come first: pass it on, ask again. */
		if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) ||
		    ptrace(PTRACE_CONT, tid, 0, (void *)(long)(stop_kind(status) == STOP_SIGNAL ?
							       stop_signal(status) : 0)))
			return cr_perr("cannot stop task %d again", tid);
	}
	return cr_err("task %d did not come to an interrupt stop", tid);
}

int ptr_get_regs(pid_t tid, struct user_regs_struct *r)
{
	if (ptrace(PTRACE_GETREGS, tid, 0, r))
		return cr_perr("cannot read registers of task %d", tid);
	return 0;
}

int ptr_set_regs(pid_t tid, const struct user_regs_struct *r)
{
	if (ptrace(PTRACE_SETREGS, tid, 0, r))
		return cr_perr("cannot set registers of task %d", tid);
	return 0;
}

int ptr_get_xstate(pid_t tid, void *buf, size_t *len)
{
	struct iovec iov = { buf, CR_XSTATE_MAX };

	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov))
		return cr_perr("cannot read the xstate of task %d", tid);
	*len = iov.iov_len;
	return 0;
}

int ptr_set_xstate(pid_t tid, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };

	if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov))
		return cr_perr("cannot set the xstate of task %d", tid);
	return 0;
}

int ptr_get_sigmask(pid_t tid, uint64_t *mask)
{
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(*mask), mask))
		return cr_perr("cannot read the signal mask of task %d", tid);
	return 0;
}

int ptr_set_sigmask(pid_t tid, uint64_t mask)
{
	if (ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(mask), &mask))
		return cr_perr("cannot set the signal mask of task %d", tid);
	return 0;
}

int ptr_detach(pid_t tid, int sig)
{
	if (ptrace(PTRACE_DETACH, tid, 0, (void *)(long)sig))
		return cr_perr("cannot detach from task %d", tid);
	return 0;
}

bool ptr_stop_is_own_tgkill(pid_t tid, pid_t tgid, int sig)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (ptrace(PTRACE_GETSIGINFO, tid, 0, &si))
		return false;
	return si.si_signo == sig && si.si_code == SI_TKILL && si.si_pid == tgid;
}

int mem_open(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return cr_perr("cannot open %s", path);
	return fd;
}

int mem_write(int fd, pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	ssize_t n = pwrite(fd, buf, len, (off_t)addr);

	if (n != (ssize_t)len)
		return cr_perr("cannot write %zu bytes at 0x%lx in process %d", len,
			       (unsigned long)addr, pid);
	return 0;
}

int mem_read(int fd, pid_t pid, uint64_t addr, void *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len, (off_t)addr);

	if (n != (ssize_t)len)
		return cr_perr("cannot read %zu bytes at 0x%lx in process %d", len,
			       (unsigned long)addr, pid);
	return 0;
}

/* Through /proc/PID/mem, not process_vm_readv: that pins the pages, and pinning a
 * page shared copy-on-write with another process copies it (the kernel unshares
 * it), which would cost the process memory for every byte cryo reads. */
static ssize_t read_mem_file(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = pread(fd, buf, len, (off_t)addr);
	close(fd);
	return n;
}

int mem_peek_vm(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	return read_mem_file(pid, addr, buf, len) == (ssize_t)len ? 0 : -1;
}

/* Not dumpable yet, a task made by a cryo with file capabilities has /proc files of
 * root's, /proc/PID/mem too: ptrace access alone still reads it this way. */
static ssize_t read_mem_pinned(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)addr, len };

	return process_vm_readv(pid, &l, 1, &r, 1, 0);
}

int mem_read_vm(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	ssize_t n = read_mem_file(pid, addr, buf, len);

	if (n < 0 && errno == EACCES)
		n = read_mem_pinned(pid, addr, buf, len);

	if (n != (ssize_t)len)
		return n < 0 ? cr_perr("cannot read %zu bytes at 0x%lx in process %d", len,
				       (unsigned long)addr, pid) :
			       cr_err("cannot read %zu bytes at 0x%lx in process %d (%zd read)",
				      len, (unsigned long)addr, pid, n);
	return 0;
}

int mem_write_vm(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec l = { (void *)buf, len }, r = { (void *)addr, len };

	if (process_vm_writev(pid, &l, 1, &r, 1, 0) != (ssize_t)len)
		return cr_perr("cannot write %zu bytes at 0x%lx in process %d", len,
			       (unsigned long)addr, pid);
	return 0;
}
