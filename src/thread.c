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

/* Let the kernel take the thread through its own exit path (which puts the call's
 * temporary signal mask back and restarts the call) up to the entry of the repeated
 * call, and hold it there: a dead cryo simply lets the call run. The image shows the
 * call interrupted, with the real mask. A handler that runs on the way has its own
 * first call caught instead, which must simply run again (-ERESTARTNOINTR). */
static int settle_at_syscall(struct rthread *t, long nr)
{
	struct user_regs_struct entry;
	int status, pass = 0;

	for (int n = 0; n < 64; n++) {
		if (ptrace(PTRACE_SYSCALL, t->tid, 0, (void *)(long)pass))
			return cr_perr("cannot resume thread %d", t->tid);
		pass = 0;
		if (ptr_wait(t->tid, &status))
			return -1;
		if (stop_kind(status) == STOP_SYSCALL)
			break;
		if (stop_kind(status) == STOP_SIGNAL)
			pass = stop_signal(status);
		if (n == 63)
			return cr_err("thread %d did not reach a system call while cryo settled it",
				      t->tid);
	}
	if (ptr_get_regs(t->tid, &entry) || ptr_get_sigmask(t->tid, &t->home_mask))
		return -1;
	t->home = entry;
	t->home.rax = (unsigned long long)((long)entry.orig_rax == nr ? -CR_ERESTARTNOHAND :
					   -CR_ERESTARTNOINTR);
	t->at_syscall = true;
	return 0;
}

int thread_settle(struct dump_proc *p, struct rthread *t)
{
	long nr = (long)t->home.orig_rax;

	if (nr < 0)
		return 0;
	if (restart_eintr_from_freeze(&t->home, handled_signal_pending(p->pid, t->tid))) {
		/* The freeze made the call fail: it becomes an interrupted call again,
		 * which the kernel restarts (live, too). */
		pr_info("thread %d: syscall %ld returned EINTR only because of the freeze; "
			"it will be re-issued", t->tid, nr);
		t->home.rax = (unsigned long long)-CR_ERESTARTNOHAND;
		if (ptr_set_regs(t->tid, &t->home))
			return -1;
	}
	if (restart_swaps_sigmask(nr) && (long)t->home.rax == -CR_ERESTARTNOHAND) {
		/* Its real mask is only in the kernel (saved_sigmask). */
		pr_info("thread %d: settling interrupted syscall %ld", t->tid, nr);
		return settle_at_syscall(t, nr);
	}
	return 0;
}

/* Does the code before `ret` end with a call instruction? */
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

static int read_word(void *arg, uint64_t addr, uint64_t *val)
{
	return mem_peek_vm(*(pid_t *)arg, addr, val, 8);
}

/* A return address must lead into executable code outside the vDSO, just after a
 * call: a last check before cryo writes over the stack slot holding it. */
static bool plausible_return(pid_t tid, const struct proc_vmas *vmas, uint64_t ra)
{
	uint8_t code[8];

	for (size_t i = 0; i < vmas->nr; i++)
		if (ra >= vmas->v[i].start && ra < vmas->v[i].end) {
			if (!(vmas->v[i].prot & PROT_EXEC) ||
			    (vmas->v[i].path && !strcmp(vmas->v[i].path, "[vdso]")))
				return false;
			return !mem_peek_vm(tid, ra - 8, code, 8) && after_call(code);
		}
	return false;
}

#define SAMPLE_TRIES 400

/* Let the thread run for a moment (signals on the way passed on), then hold it again
 * and read where it is. Nothing of it is changed. */
static int sample_once(struct rthread *t, long ns)
{
	struct timespec ts = { 0, ns };
	int status, pass = 0;

	if (ptrace(PTRACE_CONT, t->tid, 0, 0))
		return cr_perr("cannot resume thread %d", t->tid);
	nanosleep(&ts, NULL);
	if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0))
		return cr_perr("cannot interrupt thread %d", t->tid);
	for (;;) {
		if (ptr_wait(t->tid, &status))
			return -1;
		if (stop_kind(status) == STOP_EVENT)
			break;
		pass = stop_kind(status) == STOP_SIGNAL ? stop_signal(status) : 0;
		if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) ||
		    ptrace(PTRACE_CONT, t->tid, 0, (void *)(long)pass))
			return cr_perr("cannot resume thread %d", t->tid);
	}
	return ptr_get_regs(t->tid, &t->home) || ptr_get_sigmask(t->tid, &t->home_mask) ? -1 : 0;
}

/* Without unwind information: let the thread run in short bursts until a stop finds
 * it outside the vDSO. */
static int sample_out(struct rthread *t, uint64_t vs, uint64_t ve)
{
	for (int i = 0; i < SAMPLE_TRIES; i++) {
		if (sample_once(t, 20000 + i * 1000))
			return -1;
		if (t->home.rip < vs || t->home.rip >= ve)
			return 0;
	}
	return cr_err("thread %d did not leave the vDSO (at 0x%llx)", t->tid, t->home.rip);
}

int thread_drain_dead(struct dump_proc *p, struct rthread *t)
{
	struct borrow_area *a = &p->borrow;

	for (int i = 0; i < SAMPLE_TRIES; i++) {
		if (!borrow_dead_holds(a, &p->vmas, t))
			return 0;
		if (sample_once(t, 20000 + i * 1000)) {
			a->abandoned = true;
			return -1;
		}
	}
	a->abandoned = true;
	return cr_err("thread %d is still on its way home from the program of a cryo that "
		      "died (a signal handler that interrupted it has not returned); dump it "
		      "again later", t->tid);
}

/* A thread stopped inside vDSO code would, after a restore with a proxy, run old code
 * against new kernel data. Move it out: find the slot of its return address with the
 * vDSO's own unwind information and let it return there through cryo's trampoline
 * (docs/VDSO.md); without unwind information, sample it out. */
int thread_leave_vdso(struct dump_proc *p, struct rthread *t, const uint8_t *img, size_t len,
		      uint64_t vs)
{
	uint64_t slot, ra;
	pid_t tid = t->tid;

	if (t->home.rip < vs || t->home.rip >= vs + len)
		return 0;
	if (cfi_return_slot(img, len, vs, t->home.rip, t->home.rsp, t->home.rbp, read_word, &tid,
			    &slot) || read_word(&tid, slot, &ra) ||
	    !plausible_return(tid, &p->vmas, ra)) {
		pr_info("thread %d: no usable unwind information at vDSO offset 0x%llx (%s); "
			"sampling it out", tid, t->home.rip - vs,
			cr_last_error() ? cr_last_error() : "implausible return address");
		cr_err_reset();
		return sample_out(t, vs, vs + len);
	}
	pr_info("thread %d: returning from the vDSO to 0x%lx", tid, (unsigned long)ra);
	return borrow_return_from(&p->borrow, t, slot, ra);
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

int thread_dump(struct dump_proc *p, struct rthread *t, ThreadState *ts)
{
	struct user_regs_struct regs = t->home;
	uint8_t *xs = malloc(CR_XSTATE_MAX);
	struct robust_head_info rh = { 0, 0 };
	size_t xlen;
	GpRegs *pb = malloc(sizeof(*pb));
	pid_t tid = t->tid;

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
	if (ptr_get_xstate(tid, xs, &xlen))
		return -1;
	ts->xstate.len = xlen;
	ts->sigmask = t->home_mask;
	if (syscall(SYS_get_robust_list, tid, &rh.head, &rh.len))
		return cr_perr("cannot read the robust futex list of thread %d", tid);
	if (rh.head) {
		ts->has_robust_list = ts->has_robust_list_len = 1;
		ts->robust_list = rh.head;
		ts->robust_list_len = rh.len;
	}
	if (read_comm(p->pid, tid, ts) || dump_sched(tid, ts))
		return -1;
	if (rseq_dump(p, t, ts, &regs))
		return -1;
	regs_to_pb(&regs, pb);
	if ((long)regs.orig_rax >= 0)
		pr_info("thread %d: in syscall %lld (rax %lld)", tid, (long long)regs.orig_rax,
			(long long)regs.rax);
	return signals_dump_pending(p, tid, ts);
}

static bool in_shared(const struct proc_vmas *vmas, uint64_t addr)
{
	for (size_t i = 0; i < vmas->nr; i++)
		if (addr >= vmas->v[i].start && addr < vmas->v[i].end)
			return vmas->v[i].shared;
	return false;
}

#define ROBUST_LIST_LIMIT 2048	/* as many entries as the kernel walks */

bool thread_futexes_outlive(struct dump_proc *p, const ThreadState *ts)
{
	struct { uint64_t next; int64_t offset; uint64_t pending; } head;
	uint64_t entry;

	if (ts->has_clear_child_tid && ts->clear_child_tid &&
	    in_shared(&p->vmas, ts->clear_child_tid))
		return true;
	if (!ts->has_robust_list || !ts->robust_list)
		return false;
	if (mem_read_vm(ts->tid, ts->robust_list, &head, sizeof(head))) {
		cr_err_reset();
		return true;	/* cannot tell: detach it */
	}
	if (head.pending && in_shared(&p->vmas, head.pending + head.offset))
		return true;
	entry = head.next & ~1ULL;
	for (int n = 0; n < ROBUST_LIST_LIMIT && entry != ts->robust_list; n++) {
		if (in_shared(&p->vmas, entry + head.offset))
			return true;
		if (mem_read_vm(ts->tid, entry, &entry, 8)) {
			cr_err_reset();
			return true;
		}
		entry &= ~1ULL;
	}
	return false;
}

enum { SLOT_TIDADDR, SLOT_TIDADDR_BUF, SLOT_ALTSTACK, SLOT_ALTSTACK_BUF, THREAD_SLOTS };

_Static_assert(THREAD_SLOTS <= THREAD_SLOTS_MAX, "THREAD_SLOTS_MAX is too small");

void thread_dump_queue(struct dump_proc *p, struct rtable *t, uint64_t *slots)
{
	uint64_t tidbuf = rtable_buf(t, 8), ssbuf = rtable_buf(t, sizeof(stack_t));

	(void)p;
	slots[SLOT_TIDADDR_BUF] = tidbuf;
	slots[SLOT_ALTSTACK_BUF] = ssbuf;
	slots[SLOT_TIDADDR] = rtable_add(t, 0, __NR_prctl, PR_GET_TID_ADDRESS, tidbuf, 0, 0, 0, 0);
	slots[SLOT_ALTSTACK] = rtable_add(t, 0, __NR_sigaltstack, 0, ssbuf, 0, 0, 0, 0);
}

int thread_dump_collect(struct dump_proc *p, struct rtable *t, const uint64_t *slots,
			ThreadState *ts)
{
	const uint64_t *tid_addr = rtable_local(t, slots[SLOT_TIDADDR_BUF]);
	const stack_t *ss = rtable_local(t, slots[SLOT_ALTSTACK_BUF]);
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
