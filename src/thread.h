/* Per-thread state: general registers, xstate (x87/SSE/AVX/AVX-512), TLS bases,
 * blocked signals, sigaltstack, clear_child_tid, robust futex list, rseq. */
#ifndef CRYO_THREAD_H
#define CRYO_THREAD_H

#include "task.h"

/* Right after the stop: bring a thread out of a mask-swapping syscall (sigsuspend,
 * ppoll, ...) so its real signal mask is visible; turn an EINTR only the freeze
 * caused back into the call. Updates t->home. */
int thread_settle(struct dump_proc *p, struct rthread *t);
/* After a dead cryo: let the thread run until nothing of it (its rip, a signal frame
 * of a handler that interrupted it on its way home) leads back into that cryo's
 * program, which may then be reused and cleared. */
int thread_drain_dead(struct dump_proc *p, struct rthread *t);
/* Move a thread out of the vDSO (img, len bytes at vs) if it is inside. */
int thread_leave_vdso(struct dump_proc *p, struct rthread *t, const uint8_t *img, size_t len,
		      uint64_t vs);
/* Dump the held thread t (its home state) into ts. */
int thread_dump(struct dump_proc *p, struct rthread *t, ThreadState *ts);
#define THREAD_SLOTS_MAX 8
void thread_dump_queue(struct dump_proc *p, struct rtable *t, uint64_t *slots);
int thread_dump_collect(struct dump_proc *p, struct rtable *t, const uint64_t *slots,
			ThreadState *ts);
void thread_dump_free(ThreadState *ts);
/* Does its robust futex list or clear_child_tid reach memory that outlives the
 * process (MAP_SHARED)? Then the kill must not let the kernel touch them. */
bool thread_futexes_outlive(struct dump_proc *p, const ThreadState *ts);

/* Restore: plan calls (altstack, robust list, tid address, rseq) run by the thread. */
int thread_plan(struct restore_proc *rp, struct plan *p, const ThreadState *ts);
/* Restore: final registers, xstate and signal mask of a stopped thread. */
int thread_finish(struct restore_proc *rp, pid_t tid, const ThreadState *ts);

void regs_to_pb(const struct user_regs_struct *r, GpRegs *pb);
void regs_from_pb(const GpRegs *pb, struct user_regs_struct *r);

/* rseq (rseq.c) */
int rseq_dump(struct dump_proc *p, struct rthread *t, ThreadState *ts,
	      struct user_regs_struct *regs);
void rseq_plan(struct plan *p, const ThreadState *ts);
/* Pure: is ip inside the critical section [start, start+len)? */
int rseq_ip_in_cs(uint64_t ip, uint64_t start_ip, uint64_t post_commit_offset);

#endif
