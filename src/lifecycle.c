/* The life of each task cryo holds. At dump: seize it with its threads, park it for
 * the kill, give it back or kill it; at every instant a dead cryo leaves it running
 * as it was. At restore: create the root, take each child at the first stop its
 * parent's fork gives it, run its tables phase by phase, release them all, or kill
 * everything made; until released every task dies with cryo. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lazy.h"
#include "lifecycle.h"
#include "log.h"
#include "mem.h"
#include "process.h"
#include "sys.h"
#include "thread.h"
#include "util.h"

/* ---- dump ---- */

static int hold_thread(struct dump_proc *p, pid_t tid)
{
	struct rthread *t;
	size_t cap = p->nr_threads;

	if (cr_grow(&p->tids, &cap, p->nr_threads + 1, sizeof(pid_t), 16))
		return -1;
	cap = p->nr_threads;
	if (cr_grow(&p->rts, &cap, p->nr_threads + 1, sizeof(*p->rts), 16))
		return -1;
	t = &p->rts[p->nr_threads];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	p->tids[p->nr_threads++] = tid;
	if (ptr_get_regs(tid, &t->home) || ptr_get_sigmask(tid, &t->home_mask))
		return -1;
	return 0;
}

/* Repeat until a listing shows none we do not hold yet (a stopped thread creates no
 * more threads). */
static int seize_threads(struct dump_proc *p)
{
	for (int round = 0; round < 1000; round++) {
		pid_t *listed;
		size_t n, added = 0;

		if (proc_list_tasks(p->pid, &listed, &n))
			return -1;
		for (size_t i = 0; i < n; i++) {
			bool known = false, gone = false;
			int stop_sig;

			for (size_t k = 0; k < p->nr_threads && !known; k++)
				known = p->tids[k] == listed[i];
			if (known)
				continue;
			if (ptr_seize(listed[i], false, &gone, &stop_sig) ||
			    (!gone && hold_thread(p, listed[i]))) {
				free(listed);
				return -1;
			}
			added += !gone;
		}
		free(listed);
		if (!added)
			return 0;
	}
	return cr_err("process %d keeps creating threads faster than cryo can stop them",
		      p->pid);
}

/* A caller who is not root: whose the process is, before cryo touches it and again
 * once every thread is stopped (it cannot change its ids then). */
static int check_owner(struct dump_proc *p)
{
	for (size_t i = 0; i < p->nr_threads; i++)
		if (userns_may_dump(&p->ctx->caller, p->pid, p->tids[i]))
			return -1;
	return 0;
}

int task_seize(struct dump_proc *p)
{
	bool gone;

	pr_info("seizing process %d", p->pid);
	if (userns_may_dump(&p->ctx->caller, p->pid, p->pid) ||
	    ptr_seize(p->pid, true, &gone, &p->group_stop))
		return -1;
	p->seized = true;
	return hold_thread(p, p->pid) || seize_threads(p) || check_owner(p) ? -1 : 0;
}

int task_check_seccomp(struct dump_proc *p)
{
	for (size_t i = 0; i < p->nr_threads; i++) {
		struct proc_status st;
		char path[96];
		size_t len;
		char *txt;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", p->pid, p->tids[i]);
		txt = proc_read_file(path, &len);
		if (!txt || proc_parse_status(txt, len, &st)) {
			free(txt);
			return -1;
		}
		free(txt);
		if (st.seccomp)
			return cr_err("process %d: thread %d uses seccomp (mode %d); seccomp "
				      "filters are not supported yet", p->pid, p->tids[i],
				      st.seccomp);
	}
	return 0;
}

/* The kernel would mark held robust mutexes OWNER_DIED and clear and wake each
 * clear_child_tid word. Where that memory outlives the process, each such thread is
 * parked between unregistering both and registering them again: a dead cryo lets it
 * register again and go home; a living one kills it there. */
int task_park_for_kill(struct dump_proc *p)
{
	bool open = false;
	int rc = 0;

	for (size_t i = 0; i < p->nr_threads && !rc; i++) {
		const ThreadState *ts = &p->threads[i];
		struct rtable t;

		if (!thread_futexes_outlive(p, ts))
			continue;
		if (!open && (borrow_open(&p->borrow, p->pid, &p->vmas, p->rts, p->nr_threads) ||
			      borrow_find_data(&p->borrow, &p->vmas, p->rts, p->nr_threads, 0)))
			return cr_err("thread %d: cannot detach its robust futex list before the "
				      "kill: %s", p->tids[i], cr_last_error());
		open = true;
		rtable_init(&t, &p->borrow);
		rtable_add(&t, 0, __NR_set_robust_list, 0, 24, 0, 0, 0, 0);
		rtable_add(&t, 0, __NR_set_tid_address, 0, 0, 0, 0, 0, 0);
		rtable_add_after(&t, __NR_set_robust_list, ts->robust_list,
				 ts->has_robust_list_len ? ts->robust_list_len : 24, 0);
		rtable_add_after(&t, __NR_set_tid_address, ts->clear_child_tid, 0, 0);
		rc = rtable_run_parked(&t, &p->rts[i]);
		rtable_free(&t);
	}
	return rc;
}

int task_finish(struct dump_proc *p, bool kill_it)
{
	if (!p->seized)
		return 0;
	p->seized = false;
	if (kill_it) {
		/* Killed while held: no instant exists where a dead cryo would leave it
		 * stopped or without its futex lists. */
		if (kill(p->pid, SIGKILL))
			return cr_perr("cannot kill process %d after the dump", p->pid);
		return 0;
	}
	/* Parked threads go home by themselves. */
	for (size_t i = 0; i < p->nr_threads; i++)
		if (p->rts[i].parked)
			borrow_rescue(&p->borrow, &p->rts[i]);
	for (size_t i = p->nr_threads; i-- > 0;)
		if (!p->rts[i].parked)
			ptr_detach(p->tids[i], 0);
	return 0;
}

static uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* One killed thread cryo traces: its end reaches its tracer first, then its parent.
 * 0 once collected, 1 while it is not over, -1 when it is not cryo's to collect. */
static int collect_killed(pid_t tid)
{
	int status;
	pid_t got;

	for (;;) {
		got = waitpid(tid, &status, __WALL | WNOHANG);
		if (got == 0)
			return 1;
		if (got < 0)
			return errno == EINTR ? 1 : -1;
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return 0;
	}
}

/* The threads first: the kernel hands a leader's end over only once its group is
 * gone. Exited, each has dropped its files, locks and sockets: a restore started now
 * (or fed by the stream as it ends) finds them free. */
static bool wait_killed(const struct dump_proc *p, uint64_t until_ns)
{
	struct timespec pause_ts = { 0, 200000 };

	for (size_t i = p->nr_threads; i-- > 0;) {
		while (collect_killed(p->tids[i]) == 1) {
			if (clock_ns() >= until_ns) {
				pr_warn("process %d: thread %d has not ended since its kill "
					"(blocked in the kernel?)", p->pid, p->tids[i]);
				return false;
			}
			nanosleep(&pause_ts, NULL);
		}
	}
	return true;
}

void task_wait_killed(struct dump_proc *const *procs, size_t nr, unsigned secs)
{
	uint64_t until = clock_ns() + secs * 1000000000ULL;

	for (size_t i = nr; i-- > 0;)
		if (!procs[i]->zombie && !wait_killed(procs[i], until))
			return;
}

/* ---- restore: PIDs ---- */

/* Who holds an ID: its name, process, state, and whether it is on its way out
 * (exiting, or SIGKILL pending: the dump's kill). */
static void holder_of(pid_t tid, char *comm, size_t len, pid_t *tgid, char *state, bool *dying)
{
	struct proc_status st;
	struct proc_stat ps;
	char path[64];
	size_t n;
	char *txt;

	snprintf(comm, len, "?");
	*tgid = 0;
	*state = '?';
	*dying = false;
	snprintf(path, sizeof(path), "/proc/%d/comm", tid);
	txt = proc_read_file(path, &n);
	if (txt) {
		snprintf(comm, len, "%.*s", (int)strcspn(txt, "\n"), txt);
		free(txt);
	}
	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	txt = proc_read_file(path, &n);
	if (txt && !proc_parse_status(txt, n, &st)) {
		*tgid = st.tgid;
		*state = st.state;
		*dying = ((st.sig_pnd | st.shd_pnd) & (1ULL << (SIGKILL - 1))) ||
			 st.state == 'Z' || st.state == 'X';
	}
	free(txt);
	snprintf(path, sizeof(path), "/proc/%d/stat", tid);
	txt = proc_read_file(path, &n);
	if (txt && !proc_parse_stat(txt, n, &ps) && (ps.flags & CR_PF_EXITING))
		*dying = true;
	free(txt);
	cr_err_reset();
}

static int id_taken_error(const struct restore_proc *rp, pid_t id, bool thread)
{
	char comm[64], state;
	bool dying;
	pid_t tgid;

	holder_of(id, comm, sizeof(comm), &tgid, &state, &dying);
	if (thread)
		return cr_err("cannot restore thread %d of process %d: TID %d is in use by '%s' "
			      "(PID %d)", id, rp->pid, id, comm, tgid);
	return cr_err("cannot restore process %d: PID %d is in use by '%s'", rp->pid, id, comm);
}

#define OLD_ZOMBIE_WAIT_MS 5000

/* Does a task have this PID or TID? kill() only finds processes (a thread's TID
 * gives ESRCH), /proc finds threads too. */
static bool id_in_use(pid_t id)
{
	char path[32];

	if (!kill(id, 0) || errno != ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d", id);
	return !access(path, F_OK);
}

/* Can a task be made with this ID now? A short-lived child of cryo's takes it and
 * ends at once: an ID nothing visible holds can still be on its way out (the kernel
 * frees it a moment after the task that had it is gone from /proc). */
static bool id_free_now(pid_t id)
{
	uint64_t tid = id;
	struct cr_clone_args args = {
		.exit_signal = SIGCHLD,
		.set_tid = (uint64_t)&tid,
		.set_tid_size = 1,
	};
	long pid = sys_clone3(&args);

	if (pid == 0)
		syscall(__NR_exit_group, 0);
	if (pid < 0)
		return errno != EEXIST;	/* any other failure: the real creation says it */
	while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
		;
	return true;
}

static bool image_pid(const struct restore_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (ctx->procs[i]->pid == pid)
			return true;
	return false;
}

/* One ID: free, or held by the dumped tree's own process, still dying from the
 * dump's kill or not yet reaped: wait for it, a few seconds at most. */
static int wait_for_id(const struct restore_proc *rp, pid_t id, bool thread)
{
	struct timespec pause_ts = { 0, 2000000 };
	char comm[64], state;
	bool said = false, dying;
	pid_t tgid;

	for (int waited = 0; waited < OLD_ZOMBIE_WAIT_MS / 2; waited++) {
		if (!id_in_use(id)) {
			if (id_free_now(id))
				return 0;
			nanosleep(&pause_ts, NULL);
			continue;
		}
		holder_of(id, comm, sizeof(comm), &tgid, &state, &dying);
		/* Worth waiting for: a holder on its way out (the dumped tree's own, dying
		 * from the dump's kill; or any other), one whose /proc status is already
		 * gone (being released), and a task a killed cryo left (still named cryo:
		 * it dies with it, or is a probe of id_free_now about to end). */
		if (tgid && !dying && strcmp(comm, "cryo"))
			return id_taken_error(rp, id, thread);
		if (!said)
			pr_info("waiting for %s %d, held by '%s' (%s), to end and be reaped",
				thread ? "TID" : "PID", id, comm,
				image_pid(rp->ctx, tgid) ? "the dumped process" : "on its way out");
		said = true;
		nanosleep(&pause_ts, NULL);
	}
	return cr_err("cannot restore process %d: %s %d of the dumped process was not reaped "
		      "within %d s", rp->pid, thread ? "thread" : "PID", id,
		      OLD_ZOMBIE_WAIT_MS / 1000);
}

int task_wait_ids(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		const struct restore_proc *rp = ctx->procs[i];

		for (size_t t = 0; t < rp->pe->n_tids; t++)
			if (wait_for_id(rp, rp->pe->tids[t], t > 0))
				return -1;
	}
	return 0;
}

/* ---- restore: creating ---- */

/* From the first instruction the new task dies with cryo: a dead cryo must not leave
 * a stopped copy of itself holding the PID. */
static void child_main(pid_t parent)
{
	uint64_t all = ~0ULL;

	syscall(__NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (syscall(__NR_getppid) != parent)
		syscall(__NR_exit_group, 127);
	syscall(__NR_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
	syscall(__NR_ptrace, PTRACE_TRACEME, 0, 0, 0);
	syscall(__NR_kill, syscall(__NR_getpid), SIGSTOP);
	syscall(__NR_exit_group, 127);
}

long task_clone_with_id(struct cr_clone_args *args, pid_t id)
{
	struct timespec pause_ts = { 0, 2000000 };
	long pid;
	bool gone;

	for (int i = 0;; i++) {
		pid = sys_clone3(args);
		if (pid >= 0 || errno != EEXIST || i == 500)
			return pid;
		gone = !id_in_use(id);
		errno = EEXIST;
		if (!gone)
			return pid;
		nanosleep(&pause_ts, NULL);
	}
}

int task_create_root(struct restore_proc *rp)
{
	uint64_t tid = rp->pid;
	struct cr_clone_args args = {
		.exit_signal = SIGCHLD,
		.set_tid = (uint64_t)&tid,
		.set_tid_size = 1,
	};
	pid_t parent = getpid();
	long pid;
	int status;

	pr_info("creating process %d", rp->pid);
	pid = task_clone_with_id(&args, rp->pid);
	if (pid == 0) {
		child_main(parent);
		_exit(127);
	}
	if (pid < 0) {
		if (errno == EEXIST)
			return id_taken_error(rp, rp->pid, false);
		return cr_perr("cannot create process %d (clone3 with set_tid)", rp->pid);
	}
	rp->created = true;
	if (ptr_wait(rp->pid, &status))
		return -1;
	if (stop_kind(status) != STOP_SIGNAL || stop_signal(status) != SIGSTOP)
		return cr_err("new process %d stopped with signal %d", rp->pid, stop_signal(status));
	/* Options pass to every task it makes: each is traced from birth. */
	if (ptrace(PTRACE_SETOPTIONS, rp->pid, 0,
		   (void *)(PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK |
			    PTRACE_O_TRACESYSGOOD)))
		return cr_perr("cannot set ptrace options on %d", rp->pid);
	return 0;
}

/* A thread or a child process the task just made. */
static int on_created(pid_t tid, void *arg)
{
	struct restore_proc *rp = arg;

	for (size_t i = 1; i < rp->nr_threads; i++)
		if ((pid_t)rp->pe->tids[i] == tid) {
			rp->thread_created[i] = true;
			pr_debug("thread %d created", tid);
			return 0;
		}
	for (size_t i = 0; i < rp->nr_children; i++)
		if (rp->children[i]->pid == tid) {
			rp->children[i]->created = true;
			pr_debug("process %d created by %d", tid, rp->pid);
			return 0;
		}
	return cr_err("process %d created an unexpected task %d", rp->pid, tid);
}

/* The new process inherited its maker's rseq registration, which must go before its
 * memory does: the plan's first call is made that, in the task's copy of the plan,
 * once the registration is known (no round trip of its own). */
static int drop_inherited_rseq(struct restore_proc *rp)
{
	struct cr_rseq_configuration conf;
	struct plan_call c;

	memset(&conf, 0, sizeof(conf));
	if (ptrace(CR_PTRACE_GET_RSEQ_CONFIGURATION, rp->pid, (void *)sizeof(conf), &conf) < 0 ||
	    !conf.rseq_abi_pointer)
		return 0;	/* the first call stays a harmless getpid */
	plan_call_set(&c, 0, __NR_rseq, conf.rseq_abi_pointer, conf.rseq_abi_size,
		      RSEQ_FLAG_UNREGISTER, conf.signature, 0, 0);
	return mem_write_vm(rp->pid, plan_table(&rp->plan), &c, sizeof(c));
}

/* ---- restore: running tables ---- */

/* A table failed: say which step, and for a task that could not be made, who holds
 * its ID. */
static int table_failed(const struct restore_proc *rp, uint64_t table, int failed, int64_t err,
			pid_t who)
{
	const struct plan *p = &rp->plan;
	size_t at = (table - plan_table(p)) / sizeof(struct plan_call) + failed;
	const struct plan_call *c = &p->calls[at];

	if (at >= p->nr_calls)
		return cr_err("restoring process %d failed: %s", rp->pid, strerror((int)-err));
	if (c->nr == __NR_clone3 && err == -EEXIST) {
		const struct cr_clone_args *a = (const void *)c->args[0];
		pid_t id = (pid_t)*(const uint64_t *)a->set_tid;
		bool thread = a->flags & CLONE_THREAD;

		return id_taken_error(rp, id, thread);
	}
	if (who == rp->pid)
		return cr_err("restoring process %d failed at step %zu of %zu (%s): %s", rp->pid,
			      at + 1, p->nr_calls, p->labels[at] ? p->labels[at] : "?",
			      strerror((int)-err));
	return cr_err("restoring thread %d of process %d failed at %s: %s", who, rp->pid,
		      p->labels[at] ? p->labels[at] : "?", strerror((int)-err));
}

static int run_table(struct restore_proc *rp, pid_t tid, const struct user_regs_struct *base,
		     uint64_t table, uint64_t stop)
{
	int failed;
	int64_t err;

	if (!exec_run_table(tid, base, plan_runner(&rp->plan), table, stop, on_created, rp,
			    &failed, &err))
		return 0;
	if (failed >= 0)
		table_failed(rp, table, failed, err, tid);
	return -1;
}

int task_run_main(struct restore_proc *rp)
{
	int status;

	if (rp->parent) {
		if (!rp->created)
			return cr_err("process %d was not made by its parent %d", rp->pid,
				      rp->parent->pid);
		if (ptr_wait(rp->pid, &status))
			return -1;
	}
	if (ptr_get_regs(rp->pid, &rp->regs_base) || drop_inherited_rseq(rp) ||
	    run_table(rp, rp->pid, &rp->regs_base, plan_table(&rp->plan), rp->thread_stops[0]))
		return -1;
	/* --lazy-pages: the table stopped once its memory was mapped and its userfaultfd
	 * made; the rest runs once the supplier serves that memory. */
	if (!rp->lazy)
		return 0;
	return lazy_take(rp) ||
	       run_table(rp, rp->pid, &rp->regs_base, rp->table_main2, rp->stop_main2);
}

int task_run_group(struct restore_proc *rp)
{
	return run_table(rp, rp->pid, &rp->regs_base, rp->table_group, rp->stop_group);
}

int task_run_exit(struct restore_proc *rp)
{
	int status, want = rp->pe->exit_status & ~0x80;

	if (exec_run_to_end(rp->pid, &rp->regs_base, plan_runner(&rp->plan), rp->table_exit,
			    &status))
		return -1;
	rp->created = false;	/* its parent holds the zombie now */
	if (status != want)
		return cr_err("zombie %d ended with status 0x%x instead of 0x%x", rp->pid, status,
			      want);
	return 0;
}

/* The task's copy of the plan holds the results. */
static int check_results(struct restore_proc *rp)
{
	size_t len = (rp->plan.nr_calls + 1) * sizeof(struct plan_call);
	struct plan_call *done = malloc(len);
	int rc;

	if (!done)
		return cr_err("out of memory");
	rc = mem_read_vm(rp->pid, plan_table(&rp->plan), done, len) ||
	     mem_check_reads(rp, done) ? -1 : 0;
	free(done);
	return rc;
}

/* A new thread's first stop (it is traced from birth), then its own table. */
static int run_thread_table(struct restore_proc *rp, size_t i)
{
	pid_t tid = rp->pe->tids[i];
	struct user_regs_struct base;
	int status;

	if (!rp->thread_created[i])
		return cr_err("thread %d of process %d was not created", tid, rp->pid);
	if (ptr_wait(tid, &status) || ptr_get_regs(tid, &base))
		return -1;
	return run_table(rp, tid, &base, rp->thread_tables[i], rp->thread_stops[i]);
}

int task_run_final(struct restore_proc *rp)
{
	struct restore_ctx *ctx = rp->ctx;
	int64_t ret;

	if (run_table(rp, rp->pid, &rp->regs_base, rp->table_final, rp->stop_final) ||
	    check_results(rp))
		return -1;
	for (size_t i = 1; i < rp->nr_threads; i++)
		if (run_thread_table(rp, i))
			return -1;
	/* It ends at a signal stop, the only place restart codes are honoured from. */
	if (exec_syscall_stop(rp->pid, &rp->regs_base, plan_stub(&rp->plan), __NR_munmap,
			      ctx->area_base, ctx->area_size, rp->stop_sig, &ret) || ret)
		return cr_err("cannot unmap the restore plan in process %d", rp->pid);
	return 0;
}

/* ---- restore: release or kill ---- */

/* A process dumped in a group stop goes back into it: the stop signal is queued while
 * every thread is held, so each enters the stop as it is let go, before running. */
static int requeue_group_stop(struct restore_proc *rp)
{
	uint32_t sig = rp->pe->stop_signal;

	if (!rp->pe->has_stop_signal || !sig)
		return 0;
	if (sig != SIGSTOP && sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU)
		return cr_err("image: invalid stop signal %u", sig);
	for (size_t i = 0; i < rp->core->n_sigactions; i++)
		if (rp->core->sigactions[i]->signo == sig && rp->core->sigactions[i]->handler)
			sig = SIGSTOP;	/* it would run the handler: stop for sure */
	if (kill(rp->pid, sig))
		return cr_perr("cannot stop process %d again", rp->pid);
	return 0;
}

int task_release(struct restore_proc *rp)
{
	for (size_t i = 0; i < rp->nr_threads; i++)
		if (thread_finish(rp, rp->pe->tids[i], rp->core->threads[i]))
			return -1;
	if (requeue_group_stop(rp))
		return -1;
	for (size_t i = 1; i < rp->nr_threads; i++)
		if (ptr_detach(rp->pe->tids[i], 0))
			return -1;
	if (ptr_detach(rp->pid, 0))
		return -1;
	rp->created = false;
	return 0;
}

static void collect(pid_t tid)
{
	int status;

	while (waitpid(tid, &status, __WALL) < 0 && errno == EINTR)
		;
}

void task_kill_all(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (ctx->procs[i]->created)
			kill(ctx->procs[i]->pid, SIGKILL);
	/* Every task we traced owes us its exit notification. */
	for (size_t i = ctx->nr_procs; i-- > 0;) {
		struct restore_proc *rp = ctx->procs[i];

		if (!rp->created)
			continue;
		for (size_t t = rp->nr_threads; t-- > 1;)
			if (rp->thread_created && rp->thread_created[t])
				collect(rp->pe->tids[t]);
		collect(rp->pid);
		rp->created = false;
	}
}
