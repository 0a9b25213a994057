/* The life of each task cryo holds. At dump: seize it with its threads, check what
 * needs every thread, park it for the kill, then give it back or kill it. At restore:
 * create the root, take each child its parent makes, run each of its tables, release
 * them all together, or kill everything made. */
#ifndef CRYO_LIFECYCLE_H
#define CRYO_LIFECYCLE_H

#include <stdbool.h>

#include "sys.h"
#include "task.h"

/* ---- dump ---- */

/* The leader, then every thread until a listing shows no new one. */
int task_seize(struct dump_proc *p);
/* Every thread, not only the leader: a filter cryo cannot restore must not vanish. */
int task_check_seccomp(struct dump_proc *p);
/* Before the kill: threads whose robust futexes or clear_child_tid outlive the
 * process are parked with them unregistered. */
int task_park_for_kill(struct dump_proc *p);
/* Give the process back as it was, or kill it. */
int task_finish(struct dump_proc *p, bool kill_it);
/* After their kill: every thread's end collected (children first), or `secs` gone
 * by in all, said as a warning. */
void task_wait_killed(struct dump_proc *const *procs, size_t nr, unsigned secs);

/* ---- restore ---- */

/* Every PID and TID of the image is free (waiting a little for the dumped tree's own
 * zombies to be reaped). */
int task_wait_ids(struct restore_ctx *ctx);
/* The root, made by cryo with its PID; it dies with cryo until released. */
/* clone3 with set_tid `id`. An ID no visible task holds any more can stay taken
 * for a moment while a dead process is released (its group or session ID until its
 * last zombie member goes): it is tried again for up to a second then. */
long task_clone_with_id(struct cr_clone_args *args, pid_t id);
int task_create_root(struct restore_proc *rp);
/* Its first table: memory, children, threads, files. A child is taken at its first
 * stop (its parent made it, traced from birth). */
int task_run_main(struct restore_proc *rp);
/* Its process group. */
int task_run_group(struct restore_proc *rp);
/* A zombie's end: cryo takes the exit notice, its parent then sees a zombie. */
int task_run_exit(struct restore_proc *rp);
/* Its last table (signals, credentials), its threads' tables; then the plan goes. */
int task_run_final(struct restore_proc *rp);
/* Registers, masks and group stop in place: let it go. */
int task_release(struct restore_proc *rp);
/* After a failure: everything made dies, and cryo collects what it traced. */
void task_kill_all(struct restore_ctx *ctx);

#endif
