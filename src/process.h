/* Process-wide state: what cryo refuses to dump, umask, personality, prctl settings,
 * rlimits, itimers and credentials (sessions and groups are pstree.c's). */
#ifndef CRYO_PROCESS_H
#define CRYO_PROCESS_H

#include "task.h"

/* Before seizing: is this a process cryo can dump at all? */
int process_dump_check(pid_t pid);
/* After seizing: state read from /proc and prlimit. */
int process_dump_static(struct dump_proc *p);
void process_dump_queue(struct dump_proc *p, struct rtable *t, uint64_t *slots);
int process_dump_collect(struct dump_proc *p, struct rtable *t, const uint64_t *slots);
void process_dump_free(struct dump_proc *p);
#define PROCESS_SLOTS 32

/* Restore: the process-wide settings; rlimits and creds last. */
int process_plan(struct restore_proc *rp, struct plan *p);
int process_plan_final(struct restore_proc *rp, struct plan *p);
/* After the plan: the settings only /proc can change. */
int process_restore_oom_score(const Core *core, pid_t pid);
int process_plan_loginuid(struct restore_proc *rp, struct plan *p);
/* /proc/PID/loginuid. */
int read_loginuid(pid_t pid, uint32_t *out);
/* Credentials are per thread: every thread's table ends with these. */
int process_plan_creds(struct restore_proc *rp, struct plan *p);

#endif
