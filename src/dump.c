/* Dump orchestration: check, seize, collect every kind of state, write the images
 * (inventory last), then kill or resume. Any failure leaves the process running as
 * it was and removes what was written. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cpu.h"
#include "cryo.h"
#include "files.h"
#include "log.h"
#include "mem.h"
#include "process.h"
#include "signals.h"
#include "sys.h"
#include "thread.h"
#include "timers.h"

static int read_proc_state(struct dump_proc *p)
{
	size_t len;
	char *txt = proc_read_pid_file(p->pid, "stat", &len);
	int rc;

	if (!txt)
		return -1;
	rc = proc_parse_stat(txt, len, &p->stat);
	free(txt);
	if (rc)
		return -1;
	txt = proc_read_pid_file(p->pid, "status", &len);
	if (!txt)
		return -1;
	rc = proc_parse_status(txt, len, &p->status);
	free(txt);
	return rc;
}

/* Seize every thread; repeat until a listing shows none we do not hold yet (a
 * stopped thread creates no more threads). */
static int seize_threads(struct dump_proc *p)
{
	p->tids = malloc(sizeof(pid_t));
	if (!p->tids)
		return cr_err("out of memory");
	p->tids[0] = p->pid;
	p->nr_threads = 1;
	for (int round = 0; round < 1000; round++) {
		pid_t *listed;
		size_t n, added = 0;

		if (proc_list_tasks(p->pid, &listed, &n))
			return -1;
		for (size_t i = 0; i < n; i++) {
			bool known = false, gone = false;
			pid_t *nt;

			for (size_t k = 0; k < p->nr_threads && !known; k++)
				known = p->tids[k] == listed[i];
			if (known)
				continue;
			if (ptr_seize_thread(listed[i], &gone)) {
				free(listed);
				return -1;
			}
			if (gone)
				continue;
			nt = realloc(p->tids, (p->nr_threads + 1) * sizeof(pid_t));
			if (!nt) {
				free(listed);
				return cr_err("out of memory");
			}
			p->tids = nt;
			p->tids[p->nr_threads++] = listed[i];
			added++;
		}
		free(listed);
		if (!added)
			return 0;
	}
	return cr_err("process %d keeps creating threads faster than cryo can stop them",
		      p->pid);
}

static void detach_threads(struct dump_proc *p)
{
	for (size_t i = 1; i < p->nr_threads; i++)
		ptr_detach(p->tids[i], 0);
}

/* Per-thread queries of a thread other than the leader. */
static int query_thread(struct dump_proc *p, size_t i)
{
	struct rtable *t = malloc(sizeof(*t));
	struct remote r;
	int slots[8], rc = -1;

	if (!t)
		return cr_err("out of memory");
	if (remote_borrow(&r, p->tids[i], &p->rmt))
		goto out;
	rtable_init(t, &r);
	thread_dump_queue(p, t, slots);
	if (!rtable_run(t) && !thread_dump_collect(p, t, slots, &p->threads[i]))
		rc = 0;
	if (remote_give_back(&r))
		rc = -1;
out:
	free(t);
	return rc;
}

/* One round trip for everything the task must tell about itself. */
static int query_task(struct dump_proc *p)
{
	struct rtable *t = malloc(sizeof(*t));
	int pslots[PROCESS_SLOTS], tslots[8];
	struct timers_dump td;
	uint64_t sigbuf;
	int rc = -1;

	memset(&td, 0, sizeof(td));
	if (!t)
		return cr_err("out of memory");
	rtable_init(t, &p->rmt);
	process_dump_queue(p, t, pslots);
	thread_dump_queue(p, t, tslots);
	signals_dump_queue(p, t, &sigbuf);
	if (timers_dump_queue(p, t, &td) || rtable_run(t))
		goto out;
	if (process_dump_collect(p, t, pslots) ||
	    thread_dump_collect(p, t, tslots, p->threads) ||
	    signals_dump_collect(p, t, sigbuf) || timers_dump_collect(p, t, &td))
		goto out;
	rc = 0;
out:
	timers_dump_free(NULL, &td);
	free(t);
	return rc;
}

static int write_process_images(struct dump_proc *p)
{
	char name[64];

	p->core.mm = &p->mm;
	p->core.n_threads = p->nr_threads;
	p->core.threads = p->thread_ptrs;
	snprintf(name, sizeof(name), "core-%d.img", p->pid);
	if (img_write_msg(&p->ctx->dir, name, IMAGE_KIND__IMG_CORE, &p->core.base))
		return -1;
	snprintf(name, sizeof(name), "pagemap-%d.img", p->pid);
	return img_write_msg(&p->ctx->dir, name, IMAGE_KIND__IMG_PAGEMAP, &p->pagemap.base);
}

static int write_pstree(struct dump_proc *p)
{
	ProcessEntry pe = PROCESS_ENTRY__INIT, *pes[1] = { &pe };
	PsTree tree = PS_TREE__INIT;

	pe.pid = p->pid;
	pe.ppid = p->stat.ppid;
	pe.pgid = p->stat.pgid;
	pe.sid = p->stat.sid;
	pe.n_tids = p->nr_threads;
	pe.tids = (uint32_t *)p->tids;
	tree.n_procs = 1;
	tree.procs = pes;
	return img_write_msg(&p->ctx->dir, "pstree.img", IMAGE_KIND__IMG_PSTREE, &tree.base);
}

static int write_inventory(struct dump_ctx *ctx, pid_t root)
{
	Inventory inv = INVENTORY__INIT;
	CpuInfo cpu_pb;
	uint32_t words[CPU_NR_WORDS];
	XstateComponent comps[CPU_MAX_XCOMP], *cptrs[CPU_MAX_XCOMP];
	struct cpu_info ci;
	struct utsname un;
	struct timespec ts;

	cpu_read(&ci);
	cpu_to_pb(&ci, &cpu_pb, words, comps, cptrs);
	uname(&un);
	clock_gettime(CLOCK_REALTIME, &ts);
	inv.format_major = FORMAT_MAJOR;
	inv.format_minor = FORMAT_MINOR;
	inv.cryo_version = (char *)cryo_version();
	inv.kernel_release = un.release;
	inv.cpu = &cpu_pb;
	inv.root_pid = root;
	inv.page_size = CR_PAGE_SIZE;
	inv.dump_time_ns = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	inv.vdso = ctx->vdso;
	return img_write_inventory(&ctx->dir, &inv);
}

static void dump_proc_free(struct dump_proc *p)
{
	mem_dump_free(p);
	signals_dump_free(p);
	timers_dump_free(p, NULL);
	process_dump_free(p);
	free(p->core.fds ? p->core.fds[0] : NULL);
	free(p->core.fds);
	if (p->threads) {
		for (size_t i = 0; i < p->nr_threads; i++)
			thread_dump_free(&p->threads[i]);
		free(p->threads);
	}
	free(p->thread_ptrs);
	free(p->tids);
}

static void dump_ctx_free(struct dump_ctx *ctx)
{
	files_table_free(&ctx->files);
	for (size_t i = 0; i < ctx->shmem.nr; i++) {
		ShmemObject *o = ctx->shmem.objs[i];

		if (o->runs)
			free(o->runs[0]);
		free(o->runs);
		free(o->data_file);
		free(o->chunk_crc32c);
		free(o);
	}
	free(ctx->shmem.objs);
	if (ctx->vdso)
		vdso_info_free(ctx->vdso);
}

/* Collect everything while the process is stopped. */
static int collect(struct dump_proc *p)
{
	struct vdso_layout vdso;

	p->threads = calloc(p->nr_threads, sizeof(*p->threads));
	p->thread_ptrs = calloc(p->nr_threads, sizeof(*p->thread_ptrs));
	if (!p->threads || !p->thread_ptrs)
		return cr_err("out of memory");
	core__init(&p->core);
	if (read_proc_state(p) || process_dump_static(p) || mem_read_vmas(p))
		return -1;
	if (!vdso_find_layout(&p->vmas, &vdso))
		memset(&vdso, 0, sizeof(vdso));
	/* Registers first, before the remote control borrows any thread. */
	for (size_t i = 0; i < p->nr_threads; i++) {
		p->thread_ptrs[i] = &p->threads[i];
		if ((vdso.vdso_size && thread_leave_vdso(p->tids[i], &p->vmas, vdso.vdso_start,
							  vdso.vdso_start + vdso.vdso_size)) ||
		    thread_settle(p->pid, p->tids[i]) ||
		    thread_dump(p, p->tids[i], &p->threads[i]))
			return -1;
	}
	if (remote_attach_scratch(&p->rmt, p->pid, RT_SCRATCH_SIZE) || query_task(p))
		return -1;
	for (size_t i = 1; i < p->nr_threads; i++)
		if (query_thread(p, i))
			return -1;
	/* Files first: a refusal there must not wait for the memory work. */
	if (files_dump_fds(p) || mem_dump(p))
		return -1;
	return 0;
}

/* Before the kill: the kernel would walk each thread's robust list and mark held
 * robust mutexes OWNER_DIED, and clear and wake each clear_child_tid word. In memory
 * that outlives the process (a shared file, /dev/shm) that would reach the restored
 * program; so each thread first unregisters both. */
static int detach_futex_lists(struct dump_proc *p)
{
	for (size_t i = 0; i < p->nr_threads; i++) {
		struct remote r, *use = &p->rmt;
		int64_t ret;

		if (i) {
			if (remote_borrow(&r, p->tids[i], &p->rmt))
				return -1;
			use = &r;
		}
		if (remote_syscall(use, __NR_set_robust_list, 0, 24, 0, 0, 0, 0, &ret) || ret ||
		    remote_syscall(use, __NR_set_tid_address, 0, 0, 0, 0, 0, 0, &ret))
			return cr_err("thread %d: cannot detach its robust futex list before the "
				      "kill", p->tids[i]);
	}
	return 0;
}

/* Killing: each thread is detached into a job-control stop (PTRACE_DETACH with
 * SIGSTOP stops it before it runs a single instruction), then the process is
 * killed. Detached first, cryo need not wait while the kernel frees the process's
 * memory; the real parent reaps it as before. */
static int finish_task(struct dump_proc *p, bool kill_it)
{
	int rc = 0;

	if (kill_it && p->rmt.map_start && detach_futex_lists(p))
		pr_warn("%s", cr_last_error());
	if (p->rmt.tid && remote_release_scratch(&p->rmt))
		rc = -1;
	if (!kill_it) {
		detach_threads(p);
		return ptr_detach(p->pid, 0) ? -1 : rc;
	}
	for (size_t i = p->nr_threads; i-- > 0;)
		if (ptrace(PTRACE_DETACH, p->tids[i], 0, (void *)SIGSTOP))
			pr_debug("thread %d: detach: %s", p->tids[i], strerror(errno));
	if (kill(p->pid, SIGKILL))
		return cr_perr("cannot kill process %d after the dump", p->pid);
	return rc;
}

int cryo_dump(const struct cryo_dump_opts *opts)
{
	struct dump_ctx ctx;
	struct dump_proc p;
	sigset_t block, old;
	bool seized = false;
	int rc = -1;

	cr_err_reset();
	memset(&ctx, 0, sizeof(ctx));
	memset(&p, 0, sizeof(p));
	ctx.dir.dirfd = -1;
	ctx.leave_running = opts->leave_running;
	ctx.shell_job = opts->shell_job;
	p.ctx = &ctx;
	p.pid = opts->pid;
	if (!opts->dir)
		return cr_err("no image directory given (-D)");
	if (process_dump_check(p.pid))
		return -1;
	/* Not interruptible while the process is ours. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &old);
	if (img_dir_create(&ctx.dir, opts->dir))
		goto out;
	pr_info("seizing process %d", p.pid);
	if (ptr_seize_stop(p.pid))
		goto out;
	seized = true;
	if (seize_threads(&p))
		goto out;
	if (collect(&p))
		goto out;
	pr_info("writing images to %s", opts->dir);
	if (write_process_images(&p) || write_pstree(&p) || files_write_image(&ctx) ||
	    mem_write_shmem_image(&ctx) || write_inventory(&ctx, p.pid))
		goto out;
	rc = 0;
out:
	if (seized) {
		if (finish_task(&p, rc == 0 && !opts->leave_running))
			rc = -1;
		pr_info(rc == 0 && !opts->leave_running ? "process %d killed" :
			"process %d resumed", p.pid);
	}
	if (ctx.dir.dirfd >= 0)
		img_dir_close(&ctx.dir, rc == 0);
	dump_proc_free(&p);
	dump_ctx_free(&ctx);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}
