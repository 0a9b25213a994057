/* Syscall restart decisions: what a restored thread does with a system call that the
 * freeze interrupted. The kernel reports the interruption in rax; cryo, not the
 * kernel, decides how the call continues. */
#include <errno.h>
#include <stdint.h>

#include "restart.h"

struct restart_rule {
	long code;			/* -rax */
	enum restart_action action;
};

/* x86_64: every ERESTART* code a stopped task can show.
 *  ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND: the kernel would re-execute the call
 *    after a stop that delivered no signal; so do we. Calls that keep their
 *    remaining time in user memory (select's timeval) continue with it.
 *  ERESTART_RESTARTBLOCK: the kernel kept the rest of the call in
 *    task->restart_block, which a new process lacks; the call returns -EINTR, as it
 *    would after a signal with a handler. */
static const struct restart_rule rules[] = {
	{ CR_ERESTARTSYS, RESTART_REISSUE },
	{ CR_ERESTARTNOINTR, RESTART_REISSUE },
	{ CR_ERESTARTNOHAND, RESTART_REISSUE },
	{ CR_ERESTART_RESTARTBLOCK, RESTART_EINTR },
};

enum restart_action restart_decide(const struct user_regs_struct *in,
				   struct user_regs_struct *out)
{
	long ret = (long)in->rax;

	*out = *in;
	out->orig_rax = (unsigned long long)-1;
	if ((long)in->orig_rax < 0)
		return RESTART_NONE;
	for (unsigned i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		if (ret != -rules[i].code)
			continue;
		switch (rules[i].action) {
		case RESTART_REISSUE:
			out->rax = in->orig_rax;
			out->rip = in->rip - 2;
			break;
		case RESTART_EINTR:
			out->rax = (unsigned long long)-EINTR;
			break;
		case RESTART_NONE:
			break;
		}
		return rules[i].action;
	}
	return RESTART_NONE;
}

const char *restart_action_name(enum restart_action a)
{
	switch (a) {
	case RESTART_NONE: return "none";
	case RESTART_REISSUE: return "re-issue";
	case RESTART_EINTR: return "-EINTR";
	}
	return "?";
}
