/* Syscall restart: how a thread that was inside a system call when it was frozen
 * resumes after restore. Table-driven, pure decisions (unit-tested); docs/RESTART.md
 * says call by call what a restored program observes. */
#ifndef CRYO_RESTART_H
#define CRYO_RESTART_H

#include <stdbool.h>
#include <sys/user.h>

/* Kernel-internal return values seen in rax while a syscall is interrupted. */
#define CR_ERESTARTSYS 512
#define CR_ERESTARTNOINTR 513
#define CR_ERESTARTNOHAND 514
#define CR_ERESTART_RESTARTBLOCK 516

enum restart_action {
	RESTART_NONE,		/* not in a syscall, or it completed: resume as is */
	RESTART_REISSUE,	/* execute the same syscall again with its arguments */
	RESTART_REISSUE_REM,	/* again, with the remaining time the kernel wrote to rem */
	RESTART_EINTR,		/* return -EINTR from it, as after a signal */
};

/* Registers to hand back at restore for a thread dumped with registers `in`. A call
 * to re-issue is handed back *interrupted* (orig_rax = the call, rax = -ERESTARTSYS,
 * -ERESTARTNOINTR or -ERESTARTNOHAND, rip after the syscall instruction): released
 * from a signal-delivery stop, the kernel's own restart logic then re-executes it,
 * or, if a signal with a handler arrives at that moment, gives it the EINTR or
 * SA_RESTART treatment it would have had. Anything else is handed back completed
 * (orig_rax = -1). Pure. */
enum restart_action restart_decide(const struct user_regs_struct *in,
				   struct user_regs_struct *out);
const char *restart_action_name(enum restart_action a);

/* At dump: does this stopped thread show an -EINTR that only the freeze caused (a
 * call the kernel never restarts, such as epoll_wait)? Then it is turned back into
 * the call, in the image and in the live thread. `signal_pending` says whether a
 * signal the thread handles is pending: then the EINTR is real. Pure. */
bool restart_eintr_from_freeze(const struct user_regs_struct *in, bool signal_pending);
/* How a live thread stopped with registers `h` goes on once released, written as two
 * plain register sets for code that cannot use the kernel's restart logic: `restart`
 * re-executes an interrupted call (rip back on the syscall instruction), `eintr`
 * returns -EINTR from it. Returns 0 if only `restart` applies (no call interrupted,
 * or one that always restarts), 1 for -ERESTARTSYS (EINTR when a handler without
 * SA_RESTART runs), 2 when any handler makes it EINTR. Pure. */
int restart_live_variants(const struct user_regs_struct *h, struct user_regs_struct *restart,
			  struct user_regs_struct *eintr);
/* System calls that run with a temporary signal mask. */
bool restart_swaps_sigmask(long nr);

#endif
