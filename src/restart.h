/* Syscall restart: how a thread that was inside a system call when it was frozen
 * resumes after restore. One table-driven, pure decision (unit-tested). */
#ifndef CRYO_RESTART_H
#define CRYO_RESTART_H

#include <sys/user.h>

/* Kernel-internal return values seen in rax while a syscall is interrupted. */
#define CR_ERESTARTSYS 512
#define CR_ERESTARTNOINTR 513
#define CR_ERESTARTNOHAND 514
#define CR_ERESTART_RESTARTBLOCK 516

enum restart_action {
	RESTART_NONE,		/* not in a syscall, or it completed: resume as is */
	RESTART_REISSUE,	/* execute the same syscall again with its arguments */
	RESTART_EINTR,		/* return -EINTR from it, as after a signal */
};

/* Registers to hand back for a thread stopped with registers `in`; orig_rax is
 * always -1 so the kernel applies no restart logic of its own. Pure. */
enum restart_action restart_decide(const struct user_regs_struct *in,
				   struct user_regs_struct *out);
const char *restart_action_name(enum restart_action a);

#endif
