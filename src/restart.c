/* Syscall restart decisions: what a restored thread does with a system call that the
 * freeze interrupted. The kernel reports the interruption in rax; cryo, not the
 * kernel, decides how the call continues. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>

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
 *    would after a signal with a handler, unless its own arguments say all the rest
 *    of the call needs (see restart_block_complete). */
static const struct restart_rule rules[] = {
	{ CR_ERESTARTSYS, RESTART_REISSUE },
	{ CR_ERESTARTNOINTR, RESTART_REISSUE },
	{ CR_ERESTARTNOHAND, RESTART_REISSUE },
	{ CR_ERESTART_RESTARTBLOCK, RESTART_EINTR },
};

/* An ERESTART_RESTARTBLOCK call whose restart_block holds nothing its arguments
 * lack: re-issuing it is what the kernel's restart would do. poll() keeps its fds and
 * count there and, only when it has a timeout, the end time. */
static bool restart_block_complete(const struct user_regs_struct *r)
{
	switch (r->orig_rax) {
	case __NR_poll:
		return (int)r->rdx < 0;
	}
	return false;
}

enum restart_action restart_decide(const struct user_regs_struct *in,
				   struct user_regs_struct *out)
{
	long ret = (long)in->rax;

	*out = *in;
	out->orig_rax = (unsigned long long)-1;
	if ((long)in->orig_rax < 0)
		return RESTART_NONE;
	for (unsigned i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		enum restart_action a = rules[i].action;

		if (ret != -rules[i].code)
			continue;
		if (a == RESTART_EINTR && restart_block_complete(in))
			a = RESTART_REISSUE;
		switch (a) {
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
		return a;
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
