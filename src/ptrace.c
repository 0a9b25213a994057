/* Remote control of stopped tasks over ptrace: seize and stop, registers, xstate and
 * signal mask, memory access, and remote system calls (single or table-driven). */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "ptrace.h"
#include "sys.h"

static const char *describe_exit(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "changed state (wait status 0x%x)", status);
	return buf;
}

int ptr_wait(pid_t tid, int *status)
{
	char why[64];
	pid_t r;

	do
		r = waitpid(tid, status, __WALL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return cr_perr("waiting for task %d", tid);
	if (!WIFSTOPPED(*status))
		return cr_err("task %d %s while under control", tid,
			      describe_exit(*status, why, sizeof(why)));
	return 0;
}

static int seize_error(pid_t tid)
{
	int err = errno;
	size_t len;
	char *txt;
	struct proc_status st;

	if (err == ESRCH)
		return cr_err("no process with PID %d", tid);
	if (err != EPERM)
		return cr_perr("cannot seize task %d", tid);
	txt = proc_read_pid_file(tid, "status", &len);
	if (txt && !proc_parse_status(txt, len, &st) && st.tracer_pid) {
		free(txt);
		return cr_err("task %d is already traced by PID %d", tid, st.tracer_pid);
	}
	free(txt);
	cr_err_reset();
	errno = err;
	return cr_perr("cannot seize task %d (ptrace)", tid);
}

int ptr_seize_stop(pid_t tid)
{
	int status;

	if (ptrace(PTRACE_SEIZE, tid, 0, (void *)PTRACE_O_TRACESYSGOOD))
		return seize_error(tid);
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0))
		return cr_perr("cannot interrupt task %d", tid);
	for (;;) {
		int sig;

		if (ptr_wait(tid, &status))
			return -1;
		sig = WSTOPSIG(status);
		if ((status >> 16) == PTRACE_EVENT_STOP)
			return 0;
		/* A signal arrived before our interrupt: let the task take it as it
		 * would have, then it stops for the pending interrupt. */
		pr_debug("task %d: passing signal %d through before the stop", tid, sig);
		if (ptrace(PTRACE_CONT, tid, 0, (void *)(long)sig))
			return cr_perr("cannot resume task %d", tid);
	}
}

/* ptrace refuses a thread that has begun to exit: it is as good as gone. */
static bool thread_exiting(pid_t tid)
{
	struct proc_stat st;
	char path[64];
	size_t len;
	char *txt;
	bool exiting = true;
	bool had_error = cr_err_set();

	snprintf(path, sizeof(path), "/proc/%d/stat", tid);
	txt = proc_read_file(path, &len);
	if (txt && !proc_parse_stat(txt, len, &st))
		exiting = st.state == 'Z' || st.state == 'X' || (st.flags & 0x4);	/* PF_EXITING */
	free(txt);
	if (!had_error)
		cr_err_reset();
	return exiting;
}

int ptr_seize_thread(pid_t tid, bool *gone)
{
	int status;

	*gone = false;
	if (ptrace(PTRACE_SEIZE, tid, 0, (void *)PTRACE_O_TRACESYSGOOD)) {
		if (errno == ESRCH || (errno == EPERM && thread_exiting(tid))) {
			*gone = true;
			return 0;
		}
		return seize_error(tid);
	}
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0))
		return cr_perr("cannot interrupt thread %d", tid);
	for (;;) {
		pid_t r = waitpid(tid, &status, __WALL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return cr_perr("waiting for thread %d", tid);
		if (!WIFSTOPPED(status)) {
			*gone = true;	/* it was already exiting */
			return 0;
		}
		if ((status >> 16) == PTRACE_EVENT_STOP)
			return 0;
		if (ptrace(PTRACE_CONT, tid, 0, (void *)(long)WSTOPSIG(status)))
			return cr_perr("cannot resume thread %d", tid);
	}
}

int ptr_get_regs(pid_t tid, struct user_regs_struct *r)
{
	if (ptrace(PTRACE_GETREGS, tid, 0, r))
		return cr_perr("cannot read registers of task %d", tid);
	return 0;
}

int ptr_set_regs(pid_t tid, const struct user_regs_struct *r)
{
	if (ptrace(PTRACE_SETREGS, tid, 0, r))
		return cr_perr("cannot set registers of task %d", tid);
	return 0;
}

int ptr_get_xstate(pid_t tid, void *buf, size_t *len)
{
	struct iovec iov = { buf, CR_XSTATE_MAX };

	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov))
		return cr_perr("cannot read the xstate of task %d", tid);
	*len = iov.iov_len;
	return 0;
}

int ptr_set_xstate(pid_t tid, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };

	if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov))
		return cr_perr("cannot set the xstate of task %d", tid);
	return 0;
}

int ptr_get_sigmask(pid_t tid, uint64_t *mask)
{
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(*mask), mask))
		return cr_perr("cannot read the signal mask of task %d", tid);
	return 0;
}

int ptr_set_sigmask(pid_t tid, uint64_t mask)
{
	if (ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(mask), &mask))
		return cr_perr("cannot set the signal mask of task %d", tid);
	return 0;
}

int ptr_detach(pid_t tid, int sig)
{
	if (ptrace(PTRACE_DETACH, tid, 0, (void *)(long)sig))
		return cr_perr("cannot detach from task %d", tid);
	return 0;
}

static int open_mem(struct remote *r)
{
	char path[64];

	if (r->mem_fd >= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/mem", r->tid);
	r->mem_fd = open(path, O_RDWR | O_CLOEXEC);
	if (r->mem_fd < 0)
		return cr_perr("cannot open %s", path);
	return 0;
}

int remote_write(struct remote *r, uint64_t addr, const void *buf, size_t len)
{
	ssize_t n;

	if (open_mem(r))
		return -1;
	n = pwrite(r->mem_fd, buf, len, (off_t)addr);
	if (n != (ssize_t)len)
		return cr_perr("cannot write %zu bytes at 0x%lx in task %d", len,
			       (unsigned long)addr, r->tid);
	return 0;
}

int remote_read(struct remote *r, uint64_t addr, void *buf, size_t len)
{
	ssize_t n;

	if (open_mem(r))
		return -1;
	n = pread(r->mem_fd, buf, len, (off_t)addr);
	if (n != (ssize_t)len)
		return cr_perr("cannot read %zu bytes at 0x%lx in task %d", len,
			       (unsigned long)addr, r->tid);
	return 0;
}

/* Resume the task with `req` and wait for the SIGTRAP that ends a remote step. */
static int run_until_trap(struct remote *r, int req, struct user_regs_struct *out)
{
	int status;

	if (ptrace(req, r->tid, 0, 0))
		return cr_perr("cannot resume task %d", r->tid);
	for (;;) {
		unsigned long msg;

		if (ptr_wait(r->tid, &status))
			return -1;
		if ((status >> 16) != PTRACE_EVENT_CLONE || !r->on_clone)
			break;
		if (ptrace(PTRACE_GETEVENTMSG, r->tid, 0, &msg))
			return cr_perr("cannot read the clone event of task %d", r->tid);
		if (r->on_clone(r, (pid_t)msg, r->clone_arg))
			return -1;
		if (ptrace(PTRACE_CONT, r->tid, 0, 0))
			return cr_perr("cannot resume task %d", r->tid);
	}
	if (WSTOPSIG(status) != SIGTRAP || (status >> 16)) {
		siginfo_t si;

		memset(&si, 0, sizeof(si));
		ptrace(PTRACE_GETSIGINFO, r->tid, 0, &si);
		return cr_err("task %d stopped with signal %d (code %d, addr %p) during a "
			      "remote call", r->tid, WSTOPSIG(status), si.si_code, si.si_addr);
	}
	return ptr_get_regs(r->tid, out);
}

int remote_syscall(struct remote *r, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		   uint64_t a4, uint64_t a5, uint64_t a6, int64_t *ret)
{
	struct user_regs_struct regs = r->saved;

	regs.rip = r->syscall_ip;
	regs.rax = nr;
	regs.orig_rax = -1;
	regs.rdi = a1;
	regs.rsi = a2;
	regs.rdx = a3;
	regs.r10 = a4;
	regs.r8 = a5;
	regs.r9 = a6;
	if (ptr_set_regs(r->tid, &regs) || run_until_trap(r, PTRACE_SINGLESTEP, &regs))
		return -1;
	*ret = (int64_t)regs.rax;
	return 0;
}

int remote_run_table(struct remote *r, uint64_t table, int *failed, int64_t *err)
{
	struct user_regs_struct regs = r->saved;

	*failed = -1;
	*err = 0;
	regs.rip = r->blob + CR_BLOB_RUNNER_OFF;
	regs.r12 = table;
	regs.orig_rax = -1;
	regs.rax = 0;
	if (ptr_set_regs(r->tid, &regs) || run_until_trap(r, PTRACE_CONT, &regs))
		return -1;
	if (regs.rax == 0)
		return 0;
	*failed = (regs.r12 - table) / sizeof(struct plan_call);
	*err = (int64_t)regs.rax;
	return -1;
}

/* A "syscall" instruction in the task's vDSO text, or 0. */
static uint64_t find_vdso_syscall(struct remote *r)
{
	struct proc_vmas vmas;
	uint64_t found = 0;
	bool had_error = cr_err_set();
	size_t len;
	char *txt = proc_read_pid_file(r->tid, "maps", &len);

	if (!txt || proc_parse_smaps(txt, len, &vmas)) {
		free(txt);
		if (!had_error)
			cr_err_reset();
		return 0;
	}
	free(txt);
	for (size_t i = 0; i < vmas.nr && !found; i++) {
		struct proc_vma *v = &vmas.v[i];
		unsigned char buf[65536];
		size_t n = v->end - v->start;

		if (!v->path || strcmp(v->path, "[vdso]") || !(v->prot & PROT_EXEC))
			continue;
		if (n > sizeof(buf))
			n = sizeof(buf);
		if (remote_read(r, v->start, buf, n))
			break;
		for (size_t k = 0; k + 1 < n; k++)
			if (buf[k] == 0x0f && buf[k + 1] == 0x05) {
				found = v->start + k;
				break;
			}
	}
	proc_vmas_free(&vmas);
	if (!had_error)
		cr_err_reset();
	return found;
}

/* Without a vDSO, borrow the bytes at the current IP for "syscall" (put back later). */
static int poke_syscall(struct remote *r)
{
	long word;

	errno = 0;
	word = ptrace(PTRACE_PEEKTEXT, r->tid, (void *)r->saved.rip, 0);
	if (errno)
		return cr_perr("cannot read code at 0x%llx in task %d", r->saved.rip, r->tid);
	r->poke_saved = word;
	word = (word & ~0xffffL) | 0x050f;
	if (ptrace(PTRACE_POKETEXT, r->tid, (void *)r->saved.rip, (void *)word))
		return cr_perr("cannot place a syscall instruction in task %d", r->tid);
	r->poke_addr = r->saved.rip;
	r->syscall_ip = r->saved.rip;
	return 0;
}

static int unpoke(struct remote *r)
{
	if (!r->poke_addr)
		return 0;
	if (ptrace(PTRACE_POKETEXT, r->tid, (void *)r->poke_addr, (void *)r->poke_saved))
		return cr_perr("cannot restore code at 0x%lx in task %d",
			       (unsigned long)r->poke_addr, r->tid);
	r->poke_addr = 0;
	return 0;
}

int remote_attach_scratch(struct remote *r, pid_t tid, size_t scratch_len)
{
	size_t blob_len = CR_ALIGN_UP(CR_BLOB_SIZE, CR_PAGE_SIZE);
	int64_t ret;

	memset(r, 0, sizeof(*r));
	r->tid = tid;
	r->mem_fd = -1;
	scratch_len = CR_ALIGN_UP(scratch_len, CR_PAGE_SIZE);
	if (ptr_get_regs(tid, &r->saved) || ptr_get_sigmask(tid, &r->saved_sigmask))
		return -1;
	/* Nothing may be delivered while we borrow the task. */
	if (ptr_set_sigmask(tid, ~0ULL))
		return -1;
	r->syscall_ip = find_vdso_syscall(r);
	if (!r->syscall_ip && poke_syscall(r))
		goto fail;
	if (remote_syscall(r, __NR_mmap, 0, blob_len + scratch_len, PROT_READ | PROT_EXEC,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &ret))
		goto fail;
	if (ret < 0 && ret > -4096) {
		errno = -ret;
		cr_perr("cannot map a scratch area in task %d", tid);
		goto fail;
	}
	r->map_start = ret;
	r->map_len = blob_len + scratch_len;
	if (unpoke(r) || remote_write(r, r->map_start, cr_blob_start, CR_BLOB_SIZE))
		goto fail;
	r->blob = r->map_start;
	r->syscall_ip = r->blob + CR_BLOB_STUB_OFF;
	r->scratch = r->map_start + blob_len;
	r->scratch_len = scratch_len;
	if (remote_syscall(r, __NR_mprotect, r->scratch, scratch_len, PROT_READ | PROT_WRITE,
			   0, 0, 0, &ret))
		goto fail;
	if (ret) {
		errno = -ret;
		cr_perr("cannot make the scratch area of task %d writable", tid);
		goto fail;
	}
	return 0;
fail:
	remote_release_scratch(r);
	return -1;
}

int remote_borrow(struct remote *r, pid_t tid, const struct remote *owner)
{
	memset(r, 0, sizeof(*r));
	r->tid = tid;
	r->mem_fd = -1;
	r->blob = owner->blob;
	r->syscall_ip = owner->syscall_ip;
	r->scratch = owner->scratch;
	r->scratch_len = owner->scratch_len;
	if (ptr_get_regs(tid, &r->saved) || ptr_get_sigmask(tid, &r->saved_sigmask))
		return -1;
	return ptr_set_sigmask(tid, ~0ULL);
}

int remote_give_back(struct remote *r)
{
	int rc = 0;

	if (ptr_set_regs(r->tid, &r->saved) || ptr_set_sigmask(r->tid, r->saved_sigmask))
		rc = -1;
	if (r->mem_fd >= 0)
		close(r->mem_fd);
	r->mem_fd = -1;
	return rc;
}

int remote_release_scratch(struct remote *r)
{
	int rc = 0;
	int64_t ret;

	if (r->map_start) {
		/* The stub lives in the area being unmapped: the single-step trap is
		 * reported on the way out of the kernel, before the next fetch. */
		if (remote_syscall(r, __NR_munmap, r->map_start, r->map_len, 0, 0, 0, 0, &ret) ||
		    ret)
			rc = cr_err("cannot unmap the scratch area of task %d", r->tid);
		r->map_start = 0;
	}
	if (unpoke(r))
		rc = -1;
	return remote_give_back(r) ? -1 : rc;
}

void rtable_init(struct rtable *t, struct remote *r)
{
	t->r = r;
	t->n = 0;
	t->used = 0;
	t->overflow = 0;
	memset(t->data, 0, sizeof(t->data));
}

static uint64_t rtable_data_base(const struct rtable *t)
{
	return t->r->scratch + RT_MAX_CALLS * sizeof(struct plan_call);
}

int rtable_add(struct rtable *t, uint32_t flags, long nr, uint64_t a1, uint64_t a2,
	       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6)
{
	struct plan_call *c;

	if (t->n >= RT_MAX_CALLS) {
		t->overflow = 1;
		return 0;
	}
	c = &t->calls[t->n];
	plan_call_set(c, flags, nr, a1, a2, a3, a4, a5, a6);
	return t->n++;
}

uint64_t rtable_buf(struct rtable *t, size_t len)
{
	size_t at = CR_ALIGN_UP(t->used, 16);

	if (len > RT_DATA_SIZE - at) {
		t->overflow = 1;
		return rtable_data_base(t);
	}
	t->used = at + len;
	return rtable_data_base(t) + at;
}

int rtable_run(struct rtable *t)
{
	size_t calls_len = (t->n + 1) * sizeof(struct plan_call);
	int failed;
	int64_t err;

	if (t->overflow)
		return cr_err("internal error: remote query table overflow");
	if (t->r->scratch_len < RT_SCRATCH_SIZE)
		return cr_err("internal error: scratch area too small");
	memset(&t->calls[t->n], 0, sizeof(struct plan_call));
	t->calls[t->n].nr = PLAN_END;
	if (remote_write(t->r, t->r->scratch, t->calls, calls_len) ||
	    (t->used && remote_write(t->r, rtable_data_base(t), t->data, t->used)))
		return -1;
	if (remote_run_table(t->r, t->r->scratch, &failed, &err)) {
		if (failed >= 0)
			return cr_err("task %d: remote call %d (syscall %u) failed: %s", t->r->tid,
				      failed, t->calls[failed].nr, strerror((int)-err));
		return -1;
	}
	if (remote_read(t->r, t->r->scratch, t->calls, calls_len) ||
	    (t->used && remote_read(t->r, rtable_data_base(t), t->data, t->used)))
		return -1;
	return 0;
}

int64_t rtable_result(const struct rtable *t, int idx)
{
	return t->calls[idx].result;
}

const void *rtable_local(const struct rtable *t, uint64_t addr)
{
	return t->data + (addr - rtable_data_base(t));
}
