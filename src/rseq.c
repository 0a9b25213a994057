/* rseq: each thread's registration (PTRACE_GET_RSEQ_CONFIGURATION at dump, rseq() in
 * the restored thread), and the fix-up of a thread caught inside a critical section:
 * its IP moves to the abort handler and rseq_cs is cleared, as the kernel does when it
 * preempts a thread there. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#include "log.h"
#include "sys.h"
#include "thread.h"

/* struct rseq_cs, as the kernel reads it. */
struct cr_rseq_cs {
	uint32_t version;
	uint32_t flags;
	uint64_t start_ip;
	uint64_t post_commit_offset;
	uint64_t abort_ip;
};

#define RSEQ_CS_OFFSET 8	/* offsetof(struct rseq, rseq_cs) */

int rseq_ip_in_cs(uint64_t ip, uint64_t start_ip, uint64_t post_commit_offset)
{
	/* Unsigned: ip below start_ip wraps to a huge offset. */
	return ip - start_ip < post_commit_offset;
}

static int mem_rw(pid_t tid, uint64_t addr, void *buf, size_t len, bool write)
{
	struct iovec local = { buf, len }, remote = { (void *)addr, len };

	if (!write)
		return mem_peek_vm(tid, addr, buf, len);
	return process_vm_writev(tid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -1;
}

/* If the thread is inside a critical section, move it to the abort handler: its IP
 * first, then rseq_cs cleared (a death in between leaves it where the kernel would
 * have sent it, with a descriptor the kernel clears itself). */
static int rseq_fixup(struct rthread *t, ThreadState *ts, struct user_regs_struct *regs)
{
	pid_t tid = t->tid;
	uint64_t cs_addr = 0, zero = 0;
	struct cr_rseq_cs cs;

	if (mem_rw(tid, ts->rseq->area + RSEQ_CS_OFFSET, &cs_addr, 8, false))
		return cr_perr("thread %d: cannot read its rseq area at 0x%lx", tid,
			       (unsigned long)ts->rseq->area);
	if (!cs_addr)
		return 0;
	if (mem_rw(tid, cs_addr, &cs, sizeof(cs), false))
		return cr_perr("thread %d: cannot read its rseq critical section descriptor",
			       tid);
	if (!rseq_ip_in_cs(regs->rip, cs.start_ip, cs.post_commit_offset))
		return 0;
	pr_info("thread %d: inside an rseq critical section at 0x%llx, moving to the abort "
		"handler 0x%lx", tid, regs->rip, (unsigned long)cs.abort_ip);
	regs->rip = cs.abort_ip;
	t->home.rip = cs.abort_ip;
	/* A syscall cannot be in progress inside a critical section. */
	if (ptr_set_regs(tid, &t->home) ||
	    mem_rw(tid, ts->rseq->area + RSEQ_CS_OFFSET, &zero, 8, true))
		return cr_perr("thread %d: cannot move it to its rseq abort handler", tid);
	ts->has_rseq_aborted = 1;
	ts->rseq_aborted = 1;
	return 0;
}

int rseq_dump(struct dump_proc *p, struct rthread *t, ThreadState *ts,
	      struct user_regs_struct *regs)
{
	pid_t tid = t->tid;
	struct cr_rseq_configuration conf;
	long n;

	(void)p;
	memset(&conf, 0, sizeof(conf));
	n = ptrace(CR_PTRACE_GET_RSEQ_CONFIGURATION, tid, (void *)sizeof(conf), &conf);
	if (n < 0) {
		if (errno == EIO || errno == EINVAL)
			return 0;	/* kernel without rseq support in ptrace */
		return cr_perr("thread %d: cannot read its rseq configuration", tid);
	}
	if (!conf.rseq_abi_pointer)
		return 0;
	ts->rseq = malloc(sizeof(*ts->rseq));
	if (!ts->rseq)
		return cr_err("out of memory");
	rseq_state__init(ts->rseq);
	ts->rseq->area = conf.rseq_abi_pointer;
	ts->rseq->size = conf.rseq_abi_size;
	ts->rseq->signature = conf.signature;
	ts->rseq->flags = conf.flags;
	if (t->at_syscall)
		return 0;	/* rip is after a syscall: outside any critical section */
	return rseq_fixup(t, ts, regs);
}

void rseq_plan(struct plan *p, const ThreadState *ts)
{
	if (!ts->rseq || !ts->rseq->area)
		return;
	plan_call(p, "registering rseq", 0, __NR_rseq, ts->rseq->area, ts->rseq->size, 0,
		  ts->rseq->signature, 0, 0);
}
