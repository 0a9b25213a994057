/* Driving a task cryo created at restore: its plan tables, run by the restore runner
 * to a tgkill stop, and single system calls between syscall stops. No trap is used:
 * a forced SIGTRAP resets the handler of a task that blocks it. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "log.h"
#include "remote.h"
#include "sys.h"

#define EXEC_WAIT_MS (600 * 1000)	/* a plan reads all the memory: allow for it */
#define BIT(sig) (1ULL << ((sig) - 1))

int exec_pick_stop_signal(uint64_t pending)
{
	static const int prefer[] = { SIGTRAP, SIGURG, SIGWINCH, SIGPWR, SIGSYS };

	for (size_t i = 0; i < CR_ARRAY_SIZE(prefer); i++)
		if (!(pending & BIT(prefer[i])))
			return prefer[i];
	for (int sig = 64; sig >= 34; sig--)
		if (!(pending & BIT(sig)))
			return sig;
	return 0;
}

static int table_stopped(pid_t tid, uint64_t runner_stop, uint64_t table, int *failed,
			 int64_t *err)
{
	struct user_regs_struct r;

	if (ptr_get_regs(tid, &r))
		return -1;
	if (r.rip != runner_stop)
		return cr_err("task %d stopped at 0x%llx, not at the end of its table", tid, r.rip);
	if (!r.rbp)
		return 0;
	*failed = (r.r12 - table) / sizeof(struct plan_call);
	*err = (int64_t)r.rbp;
	return -1;
}

int exec_run_table(pid_t tid, const struct user_regs_struct *base, uint64_t runner,
		   uint64_t table, uint64_t stop, int (*on_clone)(pid_t, void *), void *arg,
		   int *failed, int64_t *err)
{
	struct user_regs_struct r = *base;
	uint64_t runner_stop = runner + CR_OFF(cr_run_stop, cr_run_table);
	struct run_stop st;
	int status, pass = 0;

	*failed = -1;
	*err = 0;
	memcpy(&st, (void *)stop, sizeof(st));	/* the plan is mapped in cryo too */
	r.rip = runner;
	r.r12 = table;
	r.rbx = stop;
	r.orig_rax = (unsigned long long)-1;
	r.rax = 0;
	if (ptr_set_regs(tid, &r))
		return -1;
	for (;;) {
		unsigned long msg;

		if (ptrace(PTRACE_CONT, tid, 0, (void *)(long)pass))
			return cr_perr("cannot resume task %d", tid);
		pass = 0;
		if (ptr_wait_ms(tid, &status, EXEC_WAIT_MS))
			return -1;
		if (stop_kind(status) == STOP_OTHER && (stop_event(status) == PTRACE_EVENT_CLONE ||
							stop_event(status) == PTRACE_EVENT_FORK)) {
			if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg))
				return cr_perr("cannot read the clone event of task %d", tid);
			if (on_clone && on_clone((pid_t)msg, arg))
				return -1;
			continue;
		}
		if (stop_kind(status) != STOP_SIGNAL)
			continue;
		if (stop_signal(status) == (int)st.sig)
			return table_stopped(tid, runner_stop, table, failed, err);
		pass = stop_signal(status);
	}
}

int exec_run_to_end(pid_t tid, const struct user_regs_struct *base, uint64_t runner,
		    uint64_t table, int *status)
{
	struct user_regs_struct r = *base;
	int pass = 0;

	r.rip = runner;
	r.r12 = table;
	r.rbx = 0;
	r.orig_rax = (unsigned long long)-1;
	r.rax = 0;
	if (ptr_set_regs(tid, &r))
		return -1;
	for (int n = 0; n < 64; n++) {
		if (ptrace(PTRACE_CONT, tid, 0, (void *)(long)pass))
			return cr_perr("cannot resume task %d", tid);
		if (ptr_wait_change_ms(tid, status, EXEC_WAIT_MS))
			return -1;
		if (!WIFSTOPPED(*status))
			return 0;
		pass = stop_kind(*status) == STOP_SIGNAL ? stop_signal(*status) : 0;
	}
	return cr_err("task %d did not end", tid);
}

/* Resume with syscall stops until the next one; signals on the way are dropped (the
 * task blocks everything while cryo drives it; its own stop signal is consumed). */
static int to_syscall_stop(pid_t tid, struct user_regs_struct *r)
{
	int status;

	for (int n = 0; n < 64; n++) {
		if (ptrace(PTRACE_SYSCALL, tid, 0, 0))
			return cr_perr("cannot resume task %d", tid);
		if (ptr_wait(tid, &status))
			return -1;
		if (stop_kind(status) == STOP_SYSCALL)
			return ptr_get_regs(tid, r);
	}
	return cr_err("task %d did not reach a system call", tid);
}

int exec_signal_stop(pid_t tid, int sig)
{
	int status, pass = sig;

	for (int n = 0; n < 64; n++) {
		if (ptrace(PTRACE_CONT, tid, 0, (void *)(long)pass))
			return cr_perr("cannot resume task %d", tid);
		if (ptr_wait(tid, &status))
			return -1;
		if (stop_kind(status) == STOP_SIGNAL && stop_signal(status) == sig)
			return 0;
		pass = stop_kind(status) == STOP_SIGNAL ? stop_signal(status) : 0;
	}
	return cr_err("task %d did not stop with signal %d", tid, sig);
}

int exec_syscall_stop(pid_t tid, const struct user_regs_struct *base, uint64_t site, long nr,
		      uint64_t a1, uint64_t a2, int sig, int64_t *ret)
{
	struct user_regs_struct r = *base;

	r.rip = site;
	r.rax = nr;
	r.orig_rax = (unsigned long long)-1;
	r.rdi = a1;
	r.rsi = a2;
	if (ptr_set_regs(tid, &r) || to_syscall_stop(tid, &r))
		return -1;
	if ((long)r.orig_rax != nr)
		return cr_err("task %d entered system call %lld instead of %ld", tid, r.orig_rax, nr);
	/* A signal given at the entry stop is sent then and delivered on the way out. */
	if (exec_signal_stop(tid, sig) || ptr_get_regs(tid, &r))
		return -1;
	*ret = (int64_t)r.rax;
	return 0;
}
