/* POSIX timers (timer_create): ids, clocks, notification, remaining time and period,
 * restored with their ids through PR_TIMER_CREATE_RESTORE_IDS. */
#ifndef CRYO_TIMERS_H
#define CRYO_TIMERS_H

#include "task.h"

struct timers_dump {
	struct proc_timer *list;
	size_t nr;
	uint64_t buf;			/* itimerspec per timer in the scratch area */
};

int timers_dump_queue(struct dump_proc *p, struct rtable *t, struct timers_dump *td);
int timers_dump_collect(struct dump_proc *p, struct rtable *t, struct timers_dump *td);
void timers_dump_free(struct dump_proc *p, struct timers_dump *td);
/* Is this pending signal the queued notification of one of the process's POSIX
 * timers? Then the timer itself re-queues it at restore (see timers_plan). */
bool timers_own_pending(const Core *core, const PendingSignal *ps);
/* Restore, after every thread exists (SIGEV_THREAD_ID names one). */
int timers_plan(struct restore_proc *rp, struct plan *p);

#endif
