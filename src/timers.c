/* POSIX timers: /proc/PID/timers gives ids, clocks and notification; the process
 * itself tells remaining time and period (timer_gettime). Restore recreates each
 * timer with its id (PR_TIMER_CREATE_RESTORE_IDS) and arms it for what was left. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

#include "log.h"
#include "timers.h"

#define CR_PR_TIMER_CREATE_RESTORE_IDS 77
#define CR_SIGEV_THREAD_ID 4

/* The kernel's struct sigevent on x86_64. */
struct cr_sigevent {
	uint64_t value;
	int32_t signo;
	int32_t notify;
	int32_t tid;
	int32_t pad[11];
};

int timers_dump_queue(struct dump_proc *p, struct rtable *t, struct timers_dump *td)
{
	size_t len;
	char *txt = proc_read_pid_file(p->pid, "timers", &len);
	int rc;

	memset(td, 0, sizeof(*td));
	if (!txt)
		return -1;
	rc = proc_parse_timers(txt, len, &td->list, &td->nr);
	free(txt);
	if (rc)
		return -1;
	if (td->nr > 1024)
		return cr_err("process %d has %zu POSIX timers; cryo handles up to 1024", p->pid,
			      td->nr);
	if (!td->nr)
		return 0;
	td->buf = rtable_buf(t, td->nr * sizeof(struct itimerspec));
	for (size_t i = 0; i < td->nr; i++)
		rtable_add(t, 0, __NR_timer_gettime, td->list[i].id,
			   td->buf + i * sizeof(struct itimerspec), 0, 0, 0, 0);
	return 0;
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ULL + ts->tv_nsec;
}

int timers_dump_collect(struct dump_proc *p, struct rtable *t, struct timers_dump *td)
{
	const struct itimerspec *its;
	PosixTimer *items;

	if (!td->nr)
		return 0;
	its = rtable_local(t, td->buf);
	items = calloc(td->nr, sizeof(*items));
	p->core.posix_timers = calloc(td->nr, sizeof(*p->core.posix_timers));
	if (!items || !p->core.posix_timers) {
		free(items);
		return cr_err("out of memory");
	}
	for (size_t i = 0; i < td->nr; i++) {
		const struct proc_timer *pt = &td->list[i];
		PosixTimer *pb = &items[i];

		posix_timer__init(pb);
		pb->id = pt->id;
		pb->clock_id = pt->clock_id;
		pb->signo = pt->signo;
		pb->notify = pt->notify;
		pb->sigev_value = pt->sigev_value;
		if (pt->notify & CR_SIGEV_THREAD_ID) {
			pb->has_notify_tid = 1;
			pb->notify_tid = pt->notify_pid;
		}
		pb->value_ns = ts_ns(&its[i].it_value);
		pb->interval_ns = ts_ns(&its[i].it_interval);
		p->core.posix_timers[i] = pb;
	}
	p->core.n_posix_timers = td->nr;
	pr_info("process %d: %zu POSIX timers", p->pid, td->nr);
	return 0;
}

void timers_dump_free(struct dump_proc *p, struct timers_dump *td)
{
	if (td) {
		free(td->list);
		td->list = NULL;
	}
	if (p && p->core.n_posix_timers) {
		free(p->core.posix_timers[0]);
		free(p->core.posix_timers);
		p->core.posix_timers = NULL;
		p->core.n_posix_timers = 0;
	}
}

#define CR_SI_TIMER (-2)

/* siginfo of a timer signal: code at 8, timer id at 16. */
static bool timer_signal_of(const PendingSignal *ps, int32_t *id)
{
	int32_t code;

	if (ps->siginfo.len < 24)
		return false;
	memcpy(&code, ps->siginfo.data + 8, 4);
	memcpy(id, ps->siginfo.data + 16, 4);
	return code == CR_SI_TIMER;
}

static const PosixTimer *timer_by_id(const Core *core, int32_t id)
{
	for (size_t i = 0; i < core->n_posix_timers; i++)
		if (core->posix_timers[i]->id == id)
			return core->posix_timers[i];
	return NULL;
}

bool timers_own_pending(const Core *core, const PendingSignal *ps)
{
	int32_t id;

	return timer_signal_of(ps, &id) && timer_by_id(core, id);
}

/* Does a timer's signal wait, queued, in the process? */
static bool timer_has_pending(const Core *core, int32_t id)
{
	int32_t sid;

	for (size_t i = 0; i < core->n_shared_pending; i++)
		if (timer_signal_of(core->shared_pending[i], &sid) && sid == id)
			return true;
	for (size_t t = 0; t < core->n_threads; t++)
		for (size_t i = 0; i < core->threads[t]->n_pending; i++)
			if (timer_signal_of(core->threads[t]->pending[i], &sid) && sid == id)
				return true;
	return false;
}

static struct timespec ns_ts(uint64_t ns)
{
	struct timespec ts = { ns / 1000000000ULL, ns % 1000000000ULL };

	return ts;
}

static bool tid_in_process(const Core *core, uint32_t tid)
{
	for (size_t i = 0; i < core->n_threads; i++)
		if (core->threads[i]->tid == tid)
			return true;
	return false;
}

int timers_plan(struct restore_proc *rp, struct plan *p)
{
	const Core *core = rp->core;

	if (!core->n_posix_timers)
		return 0;
	plan_call(p, "enabling timer id restore", 0, __NR_prctl, CR_PR_TIMER_CREATE_RESTORE_IDS,
		  1, 0, 0, 0, 0);
	for (size_t i = 0; i < core->n_posix_timers; i++) {
		const PosixTimer *pt = core->posix_timers[i];
		struct cr_sigevent ev = { .value = pt->sigev_value, .signo = pt->signo,
					  .notify = pt->notify };
		struct itimerspec its = { ns_ts(pt->interval_ns), ns_ts(pt->value_ns) };
		int32_t id = pt->id;
		uint64_t id_addr;

		if (pt->id < 0 || pt->signo < 0 || pt->signo > 64 || pt->notify & ~7)
			return cr_err("image: invalid POSIX timer %d", pt->id);
		if (pt->notify & CR_SIGEV_THREAD_ID) {
			if (!pt->has_notify_tid || !tid_in_process(core, pt->notify_tid))
				return cr_err("image: timer %d notifies an unknown thread", pt->id);
			ev.tid = pt->notify_tid;
		}
		id_addr = plan_data(p, &id, sizeof(id));
		plan_call(p, "recreating a POSIX timer", 0, __NR_timer_create, pt->clock_id,
			  plan_data(p, &ev, sizeof(ev)), id_addr, 0, 0, 0);
		/* Its signal was pending: the timer fires at once and queues its own
		 * (later expirations then count as overruns, as before the dump). The
		 * next expiry comes one interval later; the overrun count from before
		 * the dump is lost. */
		if (timer_has_pending(core, pt->id))
			its.it_value = ns_ts(1);
		if (pt->value_ns || timer_has_pending(core, pt->id))
			plan_call(p, "arming a POSIX timer", 0, __NR_timer_settime, pt->id, 0,
				  plan_data(p, &its, sizeof(its)), 0, 0, 0);
	}
	plan_call(p, "disabling timer id restore", 0, __NR_prctl, CR_PR_TIMER_CREATE_RESTORE_IDS,
		  0, 0, 0, 0, 0);
	return 0;
}
