/* Signals: every signal's action (handler, flags, mask, restorer) and the pending
 * queues, per thread and process-wide, with their full siginfo. */
#ifndef CRYO_SIGNALS_H
#define CRYO_SIGNALS_H

#include "task.h"

void signals_dump_queue(struct dump_proc *p, struct rtable *t, uint64_t *buf);
int signals_dump_collect(struct dump_proc *p, struct rtable *t, uint64_t buf);
/* Pending signals of one thread (and the shared queue when tid is the leader). */
int signals_dump_pending(struct dump_proc *p, pid_t tid, ThreadState *ts);
void signals_pending_free(PendingSignal **ps, size_t n);
void signals_dump_free(struct dump_proc *p);

int signals_plan(struct restore_proc *rp, struct plan *p);
/* Queue the pending signals of one thread (all signals are blocked meanwhile). */
int signals_plan_pending(struct restore_proc *rp, struct plan *p, const ThreadState *ts);

#endif
