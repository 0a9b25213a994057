/* Syscall restart decisions: what a restored thread does with a system call that the
 * freeze interrupted. The kernel reports the interruption in rax; cryo, not the
 * kernel, decides how the call continues, from one table per return code. */
#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>

#include "restart.h"

#define ANY_SYSCALL (-1L)

struct restart_rule {
	long nr;			/* the interrupted call, or ANY_SYSCALL */
	long code;			/* what rax holds: -code */
	enum restart_action action;
};

/* x86_64, every case a stopped task can show; the first matching row wins.
 *  ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND: handed back as they are, so the
 *    kernel restarts the call exactly as it would have (and a signal arriving at
 *    the resume gets the same EINTR/SA_RESTART treatment). Calls that keep their
 *    remaining time in user memory (select, ppoll) continue with it; absolute
 *    deadlines (clock_nanosleep TIMER_ABSTIME) are exact.
 *  ERESTART_RESTARTBLOCK: the kernel kept the rest of the call in
 *    task->restart_block, which a new process lacks. What user space can recover is
 *    recovered: a relative sleep with a rem pointer continues with the remaining time
 *    the kernel wrote there; a timed futex wait re-issues the same call (exact for
 *    FUTEX_WAIT_BITSET's absolute deadline; a relative FUTEX_WAIT waits its full time
 *    again); poll and a sleep without rem re-issue the original request (they wait at
 *    most the part already slept too long). Only restart_syscall itself, whose
 *    original call is gone, and calls cryo does not know, return -EINTR. */
static const struct restart_rule rules[] = {
	{ ANY_SYSCALL, CR_ERESTARTSYS, RESTART_REISSUE },
	{ ANY_SYSCALL, CR_ERESTARTNOINTR, RESTART_REISSUE },
	{ ANY_SYSCALL, CR_ERESTARTNOHAND, RESTART_REISSUE },
	{ __NR_nanosleep, CR_ERESTART_RESTARTBLOCK, RESTART_REISSUE_REM },
	{ __NR_clock_nanosleep, CR_ERESTART_RESTARTBLOCK, RESTART_REISSUE_REM },
	{ __NR_futex, CR_ERESTART_RESTARTBLOCK, RESTART_REISSUE },
	{ __NR_poll, CR_ERESTART_RESTARTBLOCK, RESTART_REISSUE },
	{ __NR_restart_syscall, CR_ERESTART_RESTARTBLOCK, RESTART_EINTR },
	{ ANY_SYSCALL, CR_ERESTART_RESTARTBLOCK, RESTART_EINTR },
};

/* Calls that return -EINTR on any stop, even one that delivers no signal, and that
 * the kernel never restarts. */
static const long eintr_on_stop[] = {
	__NR_epoll_wait, __NR_epoll_pwait, __NR_epoll_pwait2, __NR_rt_sigtimedwait,
	__NR_io_getevents, __NR_io_pgetevents,
};

bool restart_swaps_sigmask(long nr)
{
	switch (nr) {
	case __NR_rt_sigsuspend:
	case __NR_pselect6:
	case __NR_ppoll:
	case __NR_epoll_pwait:
	case __NR_epoll_pwait2:
	case __NR_io_pgetevents:
		return true;
	}
	return false;
}

bool restart_eintr_from_freeze(const struct user_regs_struct *in, bool signal_pending)
{
	if ((long)in->orig_rax < 0 || (long)in->rax != -EINTR || signal_pending)
		return false;
	for (unsigned i = 0; i < sizeof(eintr_on_stop) / sizeof(eintr_on_stop[0]); i++)
		if ((long)in->orig_rax == eintr_on_stop[i])
			return true;
	return false;
}

static enum restart_action reissue_with_rem(const struct user_regs_struct *in,
					    struct user_regs_struct *out)
{
	unsigned long long rem;

	switch (in->orig_rax) {
	case __NR_nanosleep:		/* nanosleep(req, rem) */
		rem = in->rsi;
		if (!rem)
			return RESTART_REISSUE;
		out->rdi = rem;
		return RESTART_REISSUE_REM;
	case __NR_clock_nanosleep:	/* clock_nanosleep(clock, flags, req, rem) */
		rem = in->r10;
		if (!rem || (in->rsi & TIMER_ABSTIME))
			return RESTART_REISSUE;
		out->rdx = rem;
		return RESTART_REISSUE_REM;
	}
	return RESTART_REISSUE;
}

enum restart_action restart_decide(const struct user_regs_struct *regs,
				   struct user_regs_struct *out)
{
	const struct user_regs_struct copy = *regs, *in = &copy;	/* out may be regs */
	long ret = (long)in->rax, nr = (long)in->orig_rax;

	*out = *in;
	out->orig_rax = (unsigned long long)-1;
	if (nr < 0)
		return RESTART_NONE;
	for (unsigned i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		enum restart_action a = rules[i].action;

		if (ret != -rules[i].code || (rules[i].nr != ANY_SYSCALL && rules[i].nr != nr))
			continue;
		if (a == RESTART_REISSUE_REM)
			a = reissue_with_rem(in, out);
		switch (a) {
		case RESTART_REISSUE:
		case RESTART_REISSUE_REM:
			/* The restart block is gone: restart as the kernel restarts
			 * ERESTARTNOHAND (again, unless a handler runs: then EINTR, which
			 * is what these calls return after a handler). */
			out->orig_rax = in->orig_rax;
			if (ret == -CR_ERESTART_RESTARTBLOCK)
				out->rax = (unsigned long long)-CR_ERESTARTNOHAND;
			break;
		case RESTART_EINTR:
			out->rax = (unsigned long long)-EINTR;
			break;
		case RESTART_NONE:
			break;
		}
		return a;
	}
	return RESTART_NONE;
}

int restart_live_variants(const struct user_regs_struct *h, struct user_regs_struct *restart,
			  struct user_regs_struct *eintr)
{
	long ret = (long)h->rax;
	int kind = 0;

	*restart = *h;
	*eintr = *h;
	restart->orig_rax = eintr->orig_rax = (unsigned long long)-1;
	eintr->rax = (unsigned long long)-EINTR;
	if ((long)h->orig_rax < 0)
		return 0;
	switch (ret) {
	case -CR_ERESTARTSYS:
		kind = 1;
		break;
	case -CR_ERESTARTNOHAND:
	case -CR_ERESTART_RESTARTBLOCK:
		kind = 2;
		break;
	case -CR_ERESTARTNOINTR:
		break;
	default:
		return 0;
	}
	restart->rax = ret == -CR_ERESTART_RESTARTBLOCK ? __NR_restart_syscall : h->orig_rax;
	restart->rip -= 2;
	return kind;
}

const char *restart_action_name(enum restart_action a)
{
	switch (a) {
	case RESTART_NONE: return "none";
	case RESTART_REISSUE: return "re-issue";
	case RESTART_REISSUE_REM: return "re-issue with the remaining time";
	case RESTART_EINTR: return "-EINTR";
	}
	return "?";
}
