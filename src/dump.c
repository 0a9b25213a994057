/* Dump orchestration: check, seize, collect every kind of state, write the images
 * (inventory last), then kill or resume. At every instant, a failure or cryo's own
 * death leaves the process running as it was; a failure removes what was written. */
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
#include "util.h"

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

/* Seize every thread; repeat until a listing shows none we do not hold yet (a
 * stopped thread creates no more threads). */
static int seize_threads(struct dump_proc *p)
{
	if (hold_thread(p, p->pid))
		return -1;
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

/* Every thread, not only the leader: a filter cryo cannot restore must not vanish. */
static int check_seccomp(struct dump_proc *p)
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

static void release_threads(struct dump_proc *p)
{
	for (size_t i = p->nr_threads; i-- > 0;)
		if (!p->rts[i].parked)
			ptr_detach(p->tids[i], 0);
}

/* Per-thread queries of a thread other than the leader. */
static int query_thread(struct dump_proc *p, size_t i)
{
	uint64_t slots[THREAD_SLOTS_MAX];
	struct rtable t;
	int rc = -1;

	rtable_init(&t, &p->borrow);
	thread_dump_queue(p, &t, slots);
	if (!rtable_run(&t, &p->rts[i]) && !thread_dump_collect(p, &t, slots, &p->threads[i]))
		rc = 0;
	rtable_free(&t);
	return rc;
}

/* One round trip for everything the process must tell about itself. The sigactions
 * come first: a thread going home by itself reads them (docs/ARCHITECTURE.md). */
static int query_task(struct dump_proc *p)
{
	uint64_t pslots[PROCESS_SLOTS], tslots[THREAD_SLOTS_MAX], sigbuf;
	struct timers_dump td;
	struct rtable t;
	int rc = -1;

	memset(&td, 0, sizeof(td));
	rtable_init(&t, &p->borrow);
	signals_dump_queue(p, &t, &sigbuf);
	rtable_sigactions(&t, sigbuf);
	process_dump_queue(p, &t, pslots);
	thread_dump_queue(p, &t, tslots);
	if (timers_dump_queue(p, &t, &td) || rtable_run(&t, &p->rts[0]))
		goto out;
	if (process_dump_collect(p, &t, pslots) ||
	    thread_dump_collect(p, &t, tslots, p->threads) ||
	    signals_dump_collect(p, &t, sigbuf) || timers_dump_collect(p, &t, &td) ||
	    borrow_keep_sigactions(&p->borrow, rtable_local(&t, sigbuf)))
		goto out;
	rc = 0;
out:
	timers_dump_free(NULL, &td);
	rtable_free(&t);
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
	if (p->group_stop) {
		pe.has_stop_signal = 1;
		pe.stop_signal = p->group_stop;
	}
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
	free(p->rts);
	free(p->vdso_img);
	free(p->vdso_clean);
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

/* The vDSO's bytes as the process has them, before cryo writes its program there. */
static int read_vdso_image(struct dump_proc *p)
{
	if (!vdso_find_layout(&p->vmas, &p->vdso_layout))
		return 0;
	if (p->vdso_layout.vdso_size > VDSO_MAX_SIZE)
		return cr_err("process %d: vDSO too large", p->pid);
	p->vdso_img = malloc(p->vdso_layout.vdso_size);
	if (!p->vdso_img)
		return cr_err("out of memory");
	if (mem_read_vm(p->pid, p->vdso_layout.vdso_start, p->vdso_img,
			p->vdso_layout.vdso_size))
		return -1;
	p->vdso_clean = malloc(p->vdso_layout.vdso_size);
	if (!p->vdso_clean)
		return cr_err("out of memory");
	memcpy(p->vdso_clean, p->vdso_img, p->vdso_layout.vdso_size);
	borrow_clean_vdso(p->vdso_clean, p->vdso_layout.vdso_size);
	return 0;
}

/* Each thread where it stays for the dump: out of the vDSO, out of a mask-swapping
 * call, out of an rseq critical section; then its state. */
static int place_threads(struct dump_proc *p)
{
	for (size_t i = 0; i < p->nr_threads; i++) {
		struct rthread *t = &p->rts[i];

		p->thread_ptrs[i] = &p->threads[i];
		if ((p->vdso_img && thread_leave_vdso(p, t, p->vdso_img,
						     p->vdso_layout.vdso_size,
						     p->vdso_layout.vdso_start)) ||
		    thread_settle(p, t) || thread_dump(p, t, &p->threads[i]))
			return -1;
	}
	return 0;
}

/* The queries that need the process's own hands, then every byte cryo wrote put back
 * before its memory is read. */
static int query_all(struct dump_proc *p)
{
	int rc = -1;

	if (borrow_find_data(&p->borrow, &p->vmas, p->rts, p->nr_threads, 0) || query_task(p))
		goto out;
	for (size_t i = 1; i < p->nr_threads; i++)
		if (query_thread(p, i))
			goto out;
	rc = 0;
out:
	borrow_close(&p->borrow);
	return rc;
}

/* Collect everything while the process is stopped. */
static int collect(struct dump_proc *p)
{
	p->threads = calloc(p->nr_threads, sizeof(*p->threads));
	p->thread_ptrs = calloc(p->nr_threads, sizeof(*p->thread_ptrs));
	if (!p->threads || !p->thread_ptrs)
		return cr_err("out of memory");
	core__init(&p->core);
	if (read_proc_state(p) || process_dump_static(p) || mem_read_vmas(p) ||
	    read_vdso_image(p) || borrow_open(&p->borrow, p->pid, &p->vmas, p->rts, p->nr_threads))
		return -1;
	if (place_threads(p) || query_all(p))
		return -1;
	/* Files first: a refusal there must not wait for the memory work. */
	if (files_dump_fds(p) || mem_dump(p))
		return -1;
	return 0;
}

/* Before the kill: the kernel would mark held robust mutexes OWNER_DIED and clear and
 * wake each clear_child_tid word. Where that memory outlives the process, each such
 * thread is parked between unregistering both and registering them again: a dead
 * cryo lets it register again and go home; a living one kills it there. */
static int park_for_kill(struct dump_proc *p)
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

/* Let parked threads go home by themselves. */
static void unpark(struct dump_proc *p)
{
	for (size_t i = 0; i < p->nr_threads; i++)
		if (p->rts[i].parked)
			borrow_rescue(&p->borrow, &p->rts[i]);
}

static int finish(struct dump_proc *p, bool kill_it)
{
	if (!kill_it) {
		unpark(p);
		release_threads(p);
		return 0;
	}
	/* Killed while held: no instant exists where a dead cryo would leave it stopped
	 * or without its futex lists. */
	if (kill(p->pid, SIGKILL))
		return cr_perr("cannot kill process %d after the dump", p->pid);
	return 0;
}

static int dump(struct dump_proc *p, const struct cryo_dump_opts *opts)
{
	struct dump_ctx *ctx = p->ctx;
	bool gone;

	pr_info("seizing process %d", p->pid);
	if (ptr_seize(p->pid, true, &gone, &p->group_stop))
		return -1;
	p->seized = true;
	if (seize_threads(p) || check_seccomp(p) || collect(p))
		return -1;
	if (!opts->leave_running && park_for_kill(p))
		return -1;
	pr_info("writing images to %s", opts->dir);
	return write_process_images(p) || write_pstree(p) || files_write_image(ctx) ||
	       mem_write_shmem_image(ctx) || write_inventory(ctx, p->pid) ? -1 : 0;
}

int cryo_dump(const struct cryo_dump_opts *opts)
{
	struct dump_ctx ctx;
	struct dump_proc p;
	sigset_t block, old;
	uint64_t chld;
	int rc = -1;

	cr_err_reset();
	memset(&ctx, 0, sizeof(ctx));
	memset(&p, 0, sizeof(p));
	ctx.dir.dirfd = -1;
	ctx.leave_running = opts->leave_running;
	ctx.shell_job = opts->shell_job;
	p.ctx = &ctx;
	p.pid = opts->pid;
	p.borrow.mem_fd = -1;
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
	rmt_begin(&chld);
	if (!img_dir_create(&ctx.dir, opts->dir))
		rc = dump(&p, opts);
	if (p.seized) {
		if (finish(&p, rc == 0 && !opts->leave_running))
			rc = -1;
		pr_info(rc == 0 && !opts->leave_running ? "process %d killed" :
			"process %d resumed", p.pid);
	}
	borrow_close(&p.borrow);
	if (ctx.dir.dirfd >= 0)
		img_dir_close(&ctx.dir, rc == 0);
	dump_proc_free(&p);
	dump_ctx_free(&ctx);
	rmt_end(chld);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}
