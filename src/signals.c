/* Signals: the actions of all 64 signals (read by the task itself at dump, set by it
 * at restore) and pending signals with their siginfo (PTRACE_PEEKSIGINFO at dump,
 * re-queued at restore while everything is blocked, so each is delivered once). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "signals.h"
#include "sys.h"
#include "timers.h"

#define NSIG_KERNEL 64
#define SIGINFO_SIZE 128

static bool settable(int sig)
{
	return sig != SIGKILL && sig != SIGSTOP;
}

void signals_dump_queue(struct dump_proc *p, struct rtable *t, uint64_t *buf)
{
	(void)p;
	*buf = rtable_buf(t, (NSIG_KERNEL + 1) * sizeof(struct cr_ksigaction));
	for (int sig = 1; sig <= NSIG_KERNEL; sig++)
		if (settable(sig))
			rtable_add(t, 0, __NR_rt_sigaction, sig, 0,
				   *buf + sig * sizeof(struct cr_ksigaction), 8, 0, 0);
}

int signals_dump_collect(struct dump_proc *p, struct rtable *t, uint64_t buf)
{
	const struct cr_ksigaction *ka = rtable_local(t, buf);
	SigAction *items = calloc(NSIG_KERNEL, sizeof(*items));
	size_t n = 0;

	p->core.sigactions = calloc(NSIG_KERNEL, sizeof(*p->core.sigactions));
	if (!items || !p->core.sigactions) {
		free(items);
		return cr_err("out of memory");
	}
	for (int sig = 1; sig <= NSIG_KERNEL; sig++) {
		SigAction *a = &items[n];

		if (!settable(sig))
			continue;
		sig_action__init(a);
		a->signo = sig;
		a->handler = ka[sig].handler;
		a->flags = ka[sig].flags;
		a->restorer = ka[sig].restorer;
		a->mask = ka[sig].mask;
		p->core.sigactions[n++] = a;
	}
	p->core.n_sigactions = n;
	return 0;
}

void signals_dump_free(struct dump_proc *p)
{
	if (p->core.sigactions)
		free(p->core.sigactions[0]);
	free(p->core.sigactions);
	signals_pending_free(p->core.shared_pending, p->core.n_shared_pending);
}

void signals_pending_free(PendingSignal **ps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ps[i]->siginfo.data);
		free(ps[i]);
	}
	free(ps);
}

/* Read a queue without dequeuing anything. */
static int peek_queue(pid_t tid, bool shared, PendingSignal ***out, size_t *nr)
{
	uint8_t si[32][SIGINFO_SIZE];
	struct __ptrace_peeksiginfo_args args = {
		.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0,
		.nr = 32,
	};
	size_t cap = 0;

	*out = NULL;
	*nr = 0;
	for (;;) {
		long n = ptrace(PTRACE_PEEKSIGINFO, tid, &args, si);

		if (n < 0)
			return cr_perr("cannot read the pending signals of task %d", tid);
		if (n == 0)
			return 0;
		for (long i = 0; i < n; i++) {
			PendingSignal *ps;
			int signo;

			if (*nr == cap) {
				PendingSignal **nv = realloc(*out, (cap + 64) * sizeof(*nv));

				if (!nv)
					return cr_err("out of memory");
				*out = nv;
				cap += 64;
			}
			ps = malloc(sizeof(*ps));
			if (!ps)
				return cr_err("out of memory");
			pending_signal__init(ps);
			memcpy(&signo, si[i], sizeof(int));
			ps->signo = signo;
			ps->siginfo.data = malloc(SIGINFO_SIZE);
			if (!ps->siginfo.data) {
				free(ps);
				return cr_err("out of memory");
			}
			memcpy(ps->siginfo.data, si[i], SIGINFO_SIZE);
			ps->siginfo.len = SIGINFO_SIZE;
			(*out)[(*nr)++] = ps;
		}
		args.off += n;
	}
}

int signals_dump_pending(struct dump_proc *p, pid_t tid, ThreadState *ts)
{
	if (peek_queue(tid, false, &ts->pending, &ts->n_pending))
		return -1;
	if (tid == p->pid &&
	    peek_queue(tid, true, &p->core.shared_pending, &p->core.n_shared_pending))
		return -1;
	if (ts->n_pending || (tid == p->pid && p->core.n_shared_pending))
		pr_info("task %d: %zu pending signals (+%zu process-wide)", tid, ts->n_pending,
			tid == p->pid ? p->core.n_shared_pending : 0);
	return 0;
}

int signals_plan(struct restore_proc *rp, struct plan *p)
{
	const Core *core = rp->core;

	for (size_t i = 0; i < core->n_sigactions; i++) {
		const SigAction *a = core->sigactions[i];
		struct cr_ksigaction ka = {
			.handler = a->handler, .flags = a->flags,
			.restorer = a->restorer, .mask = a->mask,
		};

		if (a->signo < 1 || a->signo > NSIG_KERNEL || !settable(a->signo))
			return cr_err("image: action for invalid signal %u", a->signo);
		plan_call(p, "rt_sigaction", 0, __NR_rt_sigaction, a->signo,
			  plan_data(p, &ka, sizeof(ka)), 0, 8, 0, 0);
	}
	for (size_t i = 0; i < core->n_shared_pending; i++) {
		const PendingSignal *ps = core->shared_pending[i];

		if (ps->siginfo.len != SIGINFO_SIZE || ps->signo < 1 || ps->signo > NSIG_KERNEL)
			return cr_err("image: invalid pending signal");
		if (timers_own_pending(core, ps))
			continue;	/* its timer queues it again */
		plan_call(p, "queueing a pending signal", 0, __NR_rt_sigqueueinfo, core->pid,
			  ps->signo, plan_data(p, ps->siginfo.data, SIGINFO_SIZE), 0, 0, 0);
	}
	return 0;
}

int signals_plan_pending(struct restore_proc *rp, struct plan *p, const ThreadState *ts)
{
	for (size_t i = 0; i < ts->n_pending; i++) {
		const PendingSignal *ps = ts->pending[i];

		if (ps->siginfo.len != SIGINFO_SIZE || ps->signo < 1 || ps->signo > NSIG_KERNEL)
			return cr_err("image: invalid pending signal");
		if (timers_own_pending(rp->core, ps))
			continue;	/* its timer queues it again */
		plan_call(p, "queueing a pending thread signal", 0, __NR_rt_tgsigqueueinfo,
			  rp->core->pid, ts->tid, ps->signo,
			  plan_data(p, ps->siginfo.data, SIGINFO_SIZE), 0, 0);
	}
	return 0;
}
