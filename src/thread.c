/* Per-thread state: registers and xstate, TLS bases (in the registers), blocked
 * signals, sigaltstack, clear_child_tid and the robust futex list. Dump reads them
 * from the stopped thread; restore has the thread set what it can itself and cryo
 * sets the registers last. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "restart.h"
#include "signals.h"
#include "thread.h"

#define CR_ROBUST_HEAD_SIZE 24	/* sizeof(struct robust_list_head) */

#define REG_FIELDS(X) X(r15) X(r14) X(r13) X(r12) X(rbp) X(rbx) X(r11) X(r10) X(r9) X(r8) \
	X(rax) X(rcx) X(rdx) X(rsi) X(rdi) X(orig_rax) X(rip) X(cs) X(eflags) X(rsp) X(ss) \
	X(fs_base) X(gs_base) X(ds) X(es) X(fs) X(gs)

void regs_to_pb(const struct user_regs_struct *r, GpRegs *pb)
{
	gp_regs__init(pb);
#define X(f) pb->f = r->f;
	REG_FIELDS(X)
#undef X
}

void regs_from_pb(const GpRegs *pb, struct user_regs_struct *r)
{
	memset(r, 0, sizeof(*r));
#define X(f) r->f = pb->f;
	REG_FIELDS(X)
#undef X
}

struct robust_head_info {
	uint64_t head;
	size_t len;
};

static int wait_syscall_stop(pid_t tid, int sig, struct user_regs_struct *regs)
{
	int status;

	for (int tries = 0; tries < 64; tries++) {
		if (ptrace(PTRACE_SYSCALL, tid, 0, (void *)(long)sig))
			return cr_perr("cannot resume thread %d", tid);
		if (ptr_wait(tid, &status))
			return -1;
		if (WSTOPSIG(status) == (SIGTRAP | 0x80))
			return ptr_get_regs(tid, regs);
		if (status >> 16)
			return cr_err("thread %d stopped (event %d) while cryo settled its "
				      "interrupted system call", tid, status >> 16);
		/* A signal pending under the real mask: it is delivered now, as it
		 * would have been, and its handler runs to its first system call. */
		sig = WSTOPSIG(status);
		pr_debug("thread %d: delivering signal %d while settling", tid, sig);
	}
	return cr_err("thread %d did not reach a system call while cryo settled it", tid);
}

/* Is a signal the thread handles pending and not blocked? Then an EINTR it shows
 * is the signal's, not the freeze's. */
static bool handled_signal_pending(pid_t pid, pid_t tid)
{
	struct proc_status st;
	char path[64];
	size_t len;
	char *txt;
	bool pending = true;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	txt = proc_read_file(path, &len);
	if (txt && !proc_parse_status(txt, len, &st))
		pending = (st.sig_pnd | st.shd_pnd) & ~st.sig_blk & st.sig_cgt;
	free(txt);
	return pending;
}

/* Let the kernel take the thread through its own exit path (which puts a temporary
 * signal mask back) up to the entry of the repeated call; skip that entry and stop
 * the thread with a single-step trap on its way out, then write the call back in
 * its interrupted form (-ERESTARTNOHAND). The thread now has its real mask, and on
 * resume the kernel's restart logic re-executes the call, which takes its
 * temporary mask again. */
static int settle_at_syscall(pid_t tid, long nr)
{
	struct user_regs_struct regs, entry;
	int status;

	if (wait_syscall_stop(tid, 0, &entry))
		return -1;
	regs = entry;
	regs.orig_rax = -1;
	if (ptr_set_regs(tid, &regs))
		return -1;
	if (ptrace(PTRACE_SINGLESTEP, tid, 0, 0))
		return cr_perr("cannot resume thread %d", tid);
	if (ptr_wait(tid, &status))
		return -1;
	/* A signal delivered on the way may have run a handler, and the entry caught is
	 * then one of its calls (rt_sigreturn, say): that call has not run yet and must
	 * simply run again, whatever arrives (-ERESTARTNOINTR). The call being settled
	 * keeps its own semantics. */
	regs = entry;
	regs.rax = (unsigned long long)((long)entry.orig_rax == nr ? -CR_ERESTARTNOHAND :
					-CR_ERESTARTNOINTR);
	if (ptr_set_regs(tid, &regs))
		return -1;
	if (WSTOPSIG(status) != SIGTRAP) {
		/* A signal got in first: let the kernel deliver it to the interrupted
		 * call as it would have, and let the user retry the dump. */
		ptrace(PTRACE_DETACH, tid, 0, (void *)(long)WSTOPSIG(status));
		return cr_err("thread %d received signal %d while cryo settled its system "
			      "call; try the dump again", tid, WSTOPSIG(status));
	}
	return 0;
}

int thread_settle(pid_t pid, pid_t tid)
{
	struct user_regs_struct regs;
	long nr;

	if (ptr_get_regs(tid, &regs))
		return -1;
	nr = (long)regs.orig_rax;
	if (nr < 0)
		return 0;
	if (restart_eintr_from_freeze(&regs, handled_signal_pending(pid, tid))) {
		/* The freeze made the call fail: it becomes an interrupted call again,
		 * which the kernel restarts (live, too). */
		pr_info("thread %d: syscall %ld returned EINTR only because of the freeze; "
			"it will be re-issued", tid, nr);
		regs.rax = (unsigned long long)-CR_ERESTARTNOHAND;
		if (ptr_set_regs(tid, &regs))
			return -1;
	}
	if (restart_swaps_sigmask(nr) && (long)regs.rax == -CR_ERESTARTNOHAND) {
		/* Its real mask is only in the kernel (saved_sigmask). */
		pr_info("thread %d: settling interrupted syscall %ld", tid, nr);
		return settle_at_syscall(tid, nr);
	}
	return 0;
}

#define VDSO_STEP_MAX 20000
#define STACK_SCAN 2048

static bool executable_outside(const struct proc_vmas *vmas, uint64_t addr, uint64_t vs,
			       uint64_t ve)
{
	if (addr >= vs && addr < ve)
		return false;
	for (size_t i = 0; i < vmas->nr; i++)
		if (addr >= vmas->v[i].start && addr < vmas->v[i].end)
			return vmas->v[i].prot & PROT_EXEC;
	return false;
}

/* Do the bytes before `ret` end with a call instruction? */
static bool after_call(const uint8_t *b)	/* b[0..7] are the 8 bytes before ret */
{
	if (b[3] == 0xe8)				/* call rel32 */
		return true;
	if (b[6] == 0xff && (b[7] & 0xf8) == 0xd0)	/* call *%reg */
		return true;
	if (b[5] == 0xff && ((b[6] & 0x38) == 0x10))	/* call *disp8(...) and friends */
		return true;
	if (b[2] == 0xff && ((b[3] & 0x38) == 0x10))	/* call *disp32(...), *rip-relative */
		return true;
	if (b[4] == 0xff && ((b[5] & 0x38) == 0x10))	/* call *disp8(%reg,%reg,s) */
		return true;
	return false;
}

/* The return address of the vDSO function the thread is in: the first stack word
 * that points just after a call instruction in executable memory outside the vDSO
 * (vDSO functions are leaves; calls inside it return inside it). 0 if none. */
static uint64_t vdso_return_address(pid_t tid, const struct proc_vmas *vmas, uint64_t rsp,
				    uint64_t vs, uint64_t ve)
{
	uint64_t words[STACK_SCAN / 8];
	struct iovec local = { words, sizeof(words) }, remote = { (void *)rsp, sizeof(words) };
	ssize_t n = process_vm_readv(tid, &local, 1, &remote, 1, 0);

	for (ssize_t i = 0; i < n / 8; i++) {
		uint8_t code[8];
		struct iovec l2 = { code, 8 }, r2 = { (void *)(words[i] - 8), 8 };

		if (!executable_outside(vmas, words[i], vs, ve))
			continue;
		if (process_vm_readv(tid, &l2, 1, &r2, 1, 0) == 8 && after_call(code))
			return words[i];
	}
	return 0;
}

static int set_debugreg(pid_t tid, int n, uint64_t v)
{
	if (ptrace(PTRACE_POKEUSER, tid, offsetof(struct user, u_debugreg[n]), (void *)v))
		return cr_perr("thread %d: cannot set debug register %d", tid, n);
	return 0;
}

/* Run the thread at full speed to `ret` with a hardware breakpoint there. */
static int run_to(pid_t tid, uint64_t ret)
{
	int status, sig = 0, rc = -1;
	struct timespec pause_ts = { 0, 100000 };

	if (set_debugreg(tid, 0, ret) || set_debugreg(tid, 7, 1))
		return -1;
	for (int waited = 0;; waited++) {
		pid_t r;

		if (!waited || sig) {
			if (ptrace(PTRACE_CONT, tid, 0, (void *)(long)sig)) {
				cr_perr("cannot resume thread %d", tid);
				break;
			}
			sig = 0;
		}
		r = waitpid(tid, &status, __WALL | WNOHANG);
		if (r < 0 && errno != EINTR) {
			cr_perr("waiting for thread %d", tid);
			break;
		}
		if (r == tid) {
			if (!WIFSTOPPED(status)) {
				cr_err("thread %d ended while leaving the vDSO", tid);
				break;
			}
			if (WSTOPSIG(status) == SIGTRAP || (status >> 16)) {
				rc = 0;
				break;
			}
			sig = WSTOPSIG(status);		/* not ours: deliver it */
			continue;
		}
		if (waited > 2000) {	/* ~0.2 s: the guess was wrong; stop it anyway */
			ptrace(PTRACE_INTERRUPT, tid, 0, 0);
			rc = ptr_wait(tid, &status);
			break;
		}
		nanosleep(&pause_ts, NULL);
	}
	set_debugreg(tid, 7, 0);
	set_debugreg(tid, 6, 0);
	return rc;
}

static int step_a_while(pid_t tid, struct user_regs_struct *regs, uint64_t vs, uint64_t ve)
{
	int status;

	for (int steps = 0; steps < VDSO_STEP_MAX && regs->rip >= vs && regs->rip < ve; steps++) {
		if (ptrace(PTRACE_SINGLESTEP, tid, 0, 0))
			return cr_perr("cannot single-step thread %d", tid);
		if (ptr_wait(tid, &status))
			return -1;
		if (WSTOPSIG(status) != SIGTRAP)
			return cr_err("thread %d received signal %d while leaving the vDSO", tid,
				      WSTOPSIG(status));
		if (ptr_get_regs(tid, regs))
			return -1;
	}
	return 0;
}

/* A thread stopped inside vDSO code would, after a restore with a proxy, run old code
 * against new kernel data. Move it out: run it to the function's return address
 * under a hardware breakpoint (single-stepping can livelock in the vDSO's seqcount
 * retry loop, whose data the kernel updates faster than a traced thread steps), and
 * single-step when no return address is found. */
int thread_leave_vdso(pid_t tid, const struct proc_vmas *vmas, uint64_t vs, uint64_t ve)
{
	struct user_regs_struct regs;

	for (int attempt = 0; attempt < 5; attempt++) {
		uint64_t ret;

		if (ptr_get_regs(tid, &regs))
			return -1;
		if (regs.rip < vs || regs.rip >= ve) {
			if (attempt)
				pr_info("thread %d: left the vDSO (attempt %d)", tid, attempt);
			return 0;
		}
		ret = vdso_return_address(tid, vmas, regs.rsp, vs, ve);
		if (ret ? run_to(tid, ret) : step_a_while(tid, &regs, vs, ve))
			return -1;
	}
	return cr_err("thread %d did not leave the vDSO (at 0x%llx)", tid, regs.rip);
}

#define CR_SCHED_ATTR_SIZE 56
#define CR_IOPRIO_WHO_PROCESS 1

/* Scheduling policy and nice value, CPU affinity and I/O priority: per thread, and
 * otherwise inherited from cryo. */
static int dump_sched(pid_t tid, ThreadState *ts)
{
	uint8_t *attr = calloc(1, CR_SCHED_ATTR_SIZE);
	uint8_t *mask = calloc(1, 128);
	long n, prio;

	if (!attr || !mask) {
		free(attr);
		free(mask);
		return cr_err("out of memory");
	}
	ts->sched_attr.data = attr;
	ts->affinity.data = mask;
	if (syscall(__NR_sched_getattr, tid, attr, CR_SCHED_ATTR_SIZE, 0))
		return cr_perr("cannot read the scheduling attributes of thread %d", tid);
	ts->has_sched_attr = 1;
	ts->sched_attr.len = CR_SCHED_ATTR_SIZE;
	n = syscall(__NR_sched_getaffinity, tid, 128, mask);
	if (n < 0)
		return cr_perr("cannot read the CPU affinity of thread %d", tid);
	ts->has_affinity = 1;
	ts->affinity.len = n;
	prio = syscall(__NR_ioprio_get, CR_IOPRIO_WHO_PROCESS, tid);
	if (prio < 0)
		return cr_perr("cannot read the I/O priority of thread %d", tid);
	ts->has_ioprio = 1;
	ts->ioprio = prio;
	return 0;
}

static void plan_sched(struct plan *p, const ThreadState *ts)
{
	if (ts->has_sched_attr && ts->sched_attr.len == CR_SCHED_ATTR_SIZE) {
		uint32_t size = CR_SCHED_ATTR_SIZE;
		uint64_t attr = plan_data(p, ts->sched_attr.data, CR_SCHED_ATTR_SIZE);

		if (attr)
			memcpy((void *)attr, &size, 4);	/* sched_attr.size */
		plan_call(p, "setting the scheduling policy", 0, __NR_sched_setattr, 0, attr,
			  0, 0, 0, 0);
	}
	/* Another machine may have other CPUs: a mask it cannot honour is left out. */
	if (ts->has_affinity && ts->affinity.len && ts->affinity.len <= 128)
		plan_call(p, "setting the CPU affinity", PLAN_MAY_FAIL, __NR_sched_setaffinity, 0,
			  ts->affinity.len, plan_data(p, ts->affinity.data, ts->affinity.len),
			  0, 0, 0);
	if (ts->has_ioprio)
		plan_call(p, "setting the I/O priority", 0, __NR_ioprio_set, CR_IOPRIO_WHO_PROCESS,
			  0, ts->ioprio, 0, 0, 0);
}

static int read_comm(pid_t pid, pid_t tid, ThreadState *ts)
{
	char path[64];
	size_t len;
	char *txt;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
	txt = proc_read_file(path, &len);
	if (!txt)
		return -1;
	if (len && txt[len - 1] == '\n')
		txt[len - 1] = 0;
	ts->comm = txt;
	return 0;
}

int thread_dump(struct dump_proc *p, pid_t tid, ThreadState *ts)
{
	struct user_regs_struct regs;
	uint8_t *xs = malloc(CR_XSTATE_MAX);
	struct robust_head_info rh = { 0, 0 };
	size_t xlen;
	GpRegs *pb = malloc(sizeof(*pb));

	thread_state__init(ts);
	ts->tid = tid;
	if (!xs || !pb) {
		free(xs);
		free(pb);
		return cr_err("out of memory");
	}
	ts->regs = pb;
	gp_regs__init(pb);
	ts->xstate.data = xs;
	if (ptr_get_regs(tid, &regs) || ptr_get_xstate(tid, xs, &xlen) ||
	    ptr_get_sigmask(tid, &ts->sigmask))
		return -1;
	ts->xstate.len = xlen;
	if (syscall(SYS_get_robust_list, tid, &rh.head, &rh.len))
		return cr_perr("cannot read the robust futex list of thread %d", tid);
	if (rh.head) {
		ts->has_robust_list = ts->has_robust_list_len = 1;
		ts->robust_list = rh.head;
		ts->robust_list_len = rh.len;
	}
	if (read_comm(p->pid, tid, ts) || dump_sched(tid, ts))
		return -1;
	if (rseq_dump(p, tid, ts, &regs))
		return -1;
	regs_to_pb(&regs, pb);
	if ((long)regs.orig_rax >= 0)
		pr_info("thread %d: in syscall %lld (rax %lld)", tid, (long long)regs.orig_rax,
			(long long)regs.rax);
	return signals_dump_pending(p, tid, ts);
}

enum { SLOT_TIDADDR, SLOT_TIDADDR_BUF, SLOT_ALTSTACK, SLOT_ALTSTACK_BUF, THREAD_SLOTS };

void thread_dump_queue(struct dump_proc *p, struct rtable *t, int *slots)
{
	uint64_t tidbuf = rtable_buf(t, 8), ssbuf = rtable_buf(t, sizeof(stack_t));

	(void)p;
	slots[SLOT_TIDADDR_BUF] = tidbuf - t->r->scratch;
	slots[SLOT_ALTSTACK_BUF] = ssbuf - t->r->scratch;
	slots[SLOT_TIDADDR] = rtable_add(t, 0, __NR_prctl, PR_GET_TID_ADDRESS, tidbuf, 0, 0, 0, 0);
	slots[SLOT_ALTSTACK] = rtable_add(t, 0, __NR_sigaltstack, 0, ssbuf, 0, 0, 0, 0);
}

int thread_dump_collect(struct dump_proc *p, struct rtable *t, const int *slots,
			ThreadState *ts)
{
	const uint64_t *tid_addr = rtable_local(t, t->r->scratch + slots[SLOT_TIDADDR_BUF]);
	const stack_t *ss = rtable_local(t, t->r->scratch + slots[SLOT_ALTSTACK_BUF]);
	SigAltStack *as;

	(void)p;
	ts->has_clear_child_tid = 1;
	ts->clear_child_tid = *tid_addr;
	if (ss->ss_flags & SS_DISABLE)
		return 0;
	as = malloc(sizeof(*as));
	if (!as)
		return cr_err("out of memory");
	sig_alt_stack__init(as);
	as->sp = (uint64_t)ss->ss_sp;
	as->size = ss->ss_size;
	/* SS_ONSTACK is a state, not a setting; keep SS_AUTODISARM. */
	as->flags = ss->ss_flags & ~SS_ONSTACK;
	ts->altstack = as;
	return 0;
}

void thread_dump_free(ThreadState *ts)
{
	free(ts->regs);
	free(ts->xstate.data);
	free(ts->rseq);
	free(ts->altstack);
	free(ts->comm);
	free(ts->sched_attr.data);
	free(ts->affinity.data);
	signals_pending_free(ts->pending, ts->n_pending);
}

/* Everything here is set even when the image has nothing: the new task inherited
 * cryo's values (a sigaltstack, glibc's robust list) which must not survive. */
int thread_plan(struct restore_proc *rp, struct plan *p, const ThreadState *ts)
{
	stack_t ss = { .ss_flags = SS_DISABLE };

	(void)rp;
	if (ts->altstack) {
		ss.ss_sp = (void *)ts->altstack->sp;
		ss.ss_size = ts->altstack->size;
		ss.ss_flags = ts->altstack->flags;
	}
	plan_call(p, "sigaltstack", 0, __NR_sigaltstack, plan_data(p, &ss, sizeof(ss)), 0, 0, 0,
		  0, 0);
	plan_call(p, "set_robust_list", 0, __NR_set_robust_list,
		  ts->has_robust_list ? ts->robust_list : 0,
		  ts->has_robust_list_len ? ts->robust_list_len : CR_ROBUST_HEAD_SIZE, 0, 0, 0, 0);
	plan_call(p, "set_tid_address", 0, __NR_set_tid_address,
		  ts->has_clear_child_tid ? ts->clear_child_tid : 0, 0, 0, 0, 0, 0);
	if (ts->comm) {
		char name[16] = { 0 };

		strncpy(name, ts->comm, sizeof(name) - 1);
		plan_call(p, "setting the thread name", 0, __NR_prctl, PR_SET_NAME,
			  plan_data(p, name, sizeof(name)), 0, 0, 0, 0);
	}
	plan_sched(p, ts);
	rseq_plan(p, ts);
	return 0;
}

/* On another CPU the XSAVE layout may differ: start from the new thread's own
 * buffer (this CPU's size and software bytes) and move every component over. */
static int set_xstate(struct restore_proc *rp, pid_t tid, const ThreadState *ts)
{
	const struct restore_ctx *ctx = rp->ctx;
	uint8_t *buf;
	size_t len;
	int rc = -1;

	if (!ctx->xstate_differs)
		return ptr_set_xstate(tid, ts->xstate.data, ts->xstate.len);
	buf = malloc(CR_XSTATE_MAX);
	if (!buf)
		return cr_err("out of memory");
	if (!ptr_get_xstate(tid, buf, &len) &&
	    !cpu_xstate_convert(ts->xstate.data, ts->xstate.len, &ctx->cpu_image, buf, len,
				&ctx->cpu_here))
		rc = ptr_set_xstate(tid, buf, len);
	free(buf);
	return rc;
}

int thread_finish(struct restore_proc *rp, pid_t tid, const ThreadState *ts)
{
	struct user_regs_struct in, out;
	enum restart_action a;

	regs_from_pb(ts->regs, &in);
	a = restart_decide(&in, &out);
	if (a != RESTART_NONE)
		pr_info("thread %d: syscall %lld interrupted at dump (rax %lld): %s", tid,
			(long long)in.orig_rax, (long long)in.rax, restart_action_name(a));
	if (ptr_set_regs(tid, &out))
		return -1;
	if (ts->xstate.len && set_xstate(rp, tid, ts))
		return -1;
	return ptr_set_sigmask(tid, ts->sigmask);
}
