/* Restore: the order of the steps. Read and check the whole image, open what the
 * tree needs, build every process's plan, make the root, let each process run its
 * tables phase by phase across the tree (each parent making its children), check the
 * pages, release them together. Before the release any failure kills what was made. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "action.h"
#include "cpu.h"
#include "cryo.h"
#include "file_locks.h"
#include "files.h"
#include "ipc.h"
#include "lazy.h"
#include "lifecycle.h"
#include "log.h"
#include "mem.h"
#include "net_lock.h"
#include "pidns.h"
#include "process.h"
#include "pstree.h"
#include "userns.h"
#include "signals.h"
#include "stats.h"
#include "sys.h"
#include "tcp_repair.h"
#include "thread.h"
#include "timers.h"
#include "util.h"
#include "verify.h"
#include "mem_track.h"

/* ---- reading and checking the image ---- */

static bool same_xstate_layout(const struct cpu_info *a, const struct cpu_info *b)
{
	if (a->xcr0 != b->xcr0 || a->xsave_size != b->xsave_size)
		return false;
	for (int i = 2; i < CPU_MAX_XCOMP; i++)
		if (a->xcomp[i].size && (a->xcomp[i].size != b->xcomp[i].size ||
					 a->xcomp[i].offset != b->xcomp[i].offset))
			return false;
	return true;
}

static int check_cpu(struct restore_ctx *ctx)
{
	struct cpu_info *need = &ctx->cpu_image, *have = &ctx->cpu_here;
	char missing[1024];

	if (cpu_from_pb(ctx->inv->cpu, need))
		return -1;
	cpu_read(have);
	ctx->xstate_differs = !same_xstate_layout(need, have);
	if (!cpu_missing(need, have, missing, sizeof(missing)))
		return 0;
	if (ctx->ignore_cpu) {
		pr_info("this CPU lacks %s, which the dumping CPU had; continuing as "
			"--cpu-cap=none asks", missing);
		return 0;
	}
	return cr_err("this CPU lacks features the dumping CPU had and the process may use: "
		      "%s (use --cpu-cap=none to restore anyway)", missing);
}

/* One living process's core and page map, consistent with its tree entry. */
static int load_process(struct restore_ctx *ctx, struct restore_proc *rp)
{
	const ProcessEntry *pe = rp->pe;
	char name[64];

	snprintf(name, sizeof(name), "core-%u.img", pe->pid);
	rp->core = img_read_msg(&ctx->dir, name, IMAGE_KIND__IMG_CORE, &core__descriptor);
	if (!rp->core)
		return -1;
	snprintf(name, sizeof(name), "pagemap-%u.img", pe->pid);
	rp->pm = img_read_msg(&ctx->dir, name, IMAGE_KIND__IMG_PAGEMAP, &page_map__descriptor);
	if (!rp->pm)
		return -1;
	if (rp->core->pid != pe->pid || rp->pm->pid != pe->pid || !rp->core->mm ||
	    rp->core->n_threads != pe->n_tids ||
	    (!rp->parent && (rp->core->shares_files || rp->core->shares_fs)))
		return cr_err("%s/%s: inconsistent process description", ctx->dir.path, name);
	for (size_t i = 0; i < pe->n_tids; i++) {
		const ThreadState *ts = rp->core->threads[i];

		if (ts->tid != pe->tids[i] || !ts->regs || ts->xstate.len > CR_XSTATE_MAX)
			return cr_err("%s/%s: inconsistent state of thread %u", ctx->dir.path,
				      name, ts->tid);
	}
	return 0;
}

static int load_images(struct restore_ctx *ctx)
{
	ctx->inv = img_read_inventory(&ctx->dir);
	if (!ctx->inv || track_check_inventory(ctx))
		return -1;
	if (ctx->inv->page_size != CR_PAGE_SIZE)
		return cr_err("%s: page size %u is not supported", ctx->dir.path,
			      ctx->inv->page_size);
	if (check_cpu(ctx) || tree_load(ctx))
		return -1;
	if (ctx->procs[0]->pid != (pid_t)ctx->inv->root_pid)
		return cr_err("%s: the inventory's root %u is not the tree's", ctx->dir.path,
			      ctx->inv->root_pid);
	if (ctx->pidns && ctx->procs[0]->pid == 1)
		return cr_err("%s: the root is PID 1 of its namespace; --pidns restores a tree "
			      "under an init of cryo's, which is PID 1", ctx->dir.path);
	ctx->files = img_read_msg(&ctx->dir, "files.img", IMAGE_KIND__IMG_FILES,
				  &file_table__descriptor);
	if (!ctx->files)
		return -1;
	for (size_t i = 0; i < ctx->dir.nr_files; i++)
		if (!strcmp(ctx->dir.files[i].name, "shmem.img")) {
			ctx->shmem = img_read_msg(&ctx->dir, "shmem.img", IMAGE_KIND__IMG_SHMEM,
						  &shmem_table__descriptor);
			if (!ctx->shmem)
				return -1;
		}
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (!ctx->procs[i]->zombie && load_process(ctx, ctx->procs[i]))
			return -1;
	return ipc_load(ctx) || net_lock_load(ctx) ? -1 : 0;
}

/* ---- what the plans need, opened in cryo ---- */

static int setup_fd_base(struct restore_ctx *ctx)
{
	struct rlimit rl;
	uint32_t max = 2;

	for (size_t p = 0; p < ctx->nr_procs; p++) {
		const Core *core = ctx->procs[p]->core;

		for (size_t i = 0; core && i < core->n_fds; i++) {
			if (core->fds[i]->fd >= CR_MAX_FDS)
				return cr_err("image: fd %u is out of range", core->fds[i]->fd);
			if (core->fds[i]->fd > max)
				max = core->fds[i]->fd;
		}
	}
	ctx->fd_base = max + 1;
	ctx->next_fd = ctx->fd_base;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	return 0;
}

static int prepare(struct restore_ctx *ctx, bool trusted)
{
	if (trust_image(&ctx->trust, &ctx->dir, trusted))
		return -1;
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		const struct restore_proc *rp = ctx->procs[i];

		if (!rp->zombie && (trust_check_creds(&ctx->trust, rp->pid, rp->core->creds) ||
				    userns_check_creds(rp->pid, rp->core->creds)))
			return -1;
	}
	if (setup_fd_base(ctx) || vdso_runtime(&ctx->rt_vdso) ||
	    tree_all_ids(ctx, &ctx->tree_pids, &ctx->nr_tree_pids))
		return -1;
	ctx->creds = ctx->procs[0]->core->creds;
	if (files_open_all(ctx) || mem_prepare_shmem(ctx))
		return -1;
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		struct restore_proc *rp = ctx->procs[i];

		if (rp->zombie)
			continue;
		if (mem_restore_prepare(rp))
			return -1;
		rp->page_fd = restore_inherit_fd(ctx, rp->page_fd, rp->pm->pages_file);
		if (rp->page_fd < 0 || track_restore_sources(rp))
			return -1;
	}
	return 0;
}

/* ---- the plans ---- */

/* The leader makes each other thread with its TID; cryo's tracing of the leader
 * attaches each new thread before it runs a single instruction. */
static void plan_create_threads(struct restore_proc *rp, struct plan *p)
{
	for (size_t i = 1; i < rp->nr_threads; i++) {
		uint64_t tid = rp->core->threads[i]->tid;
		struct cr_clone_args args = {
			.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
				 CLONE_SYSVSEM,
			.set_tid = plan_data(p, &tid, sizeof(tid)),
			.set_tid_size = 1,
		};

		plan_call(p, "creating a thread", 0, __NR_clone3, plan_data(p, &args, sizeof(args)),
			  sizeof(args), 0, 0, 0, 0);
	}
}

/* All memory but the plans, the running vDSO block and the mappings inherited from
 * the parent goes first. */
static int plan_clear(struct restore_proc *rp, struct plan *p)
{
	struct ranges keep = { 0 };
	uint64_t s, e;
	int rc;

	vdso_kept_block(rp, &s, &e);
	rc = ranges_add(&keep, rp->ctx->area_base, rp->ctx->area_base + rp->ctx->area_size) ||
	     ranges_add(&keep, s, e) || cow_add_kept(rp, &keep);
	if (!rc)
		plan_unmap_except(p, &keep);
	free(keep.r);
	return rc;
}

/* The first table: memory, children (made once the memory they share is in place),
 * the session, threads, timers, files. */
static int plan_main(struct restore_proc *rp, struct plan *p)
{
	/* Replaced by the rseq unregistration once the task exists. */
	plan_call(p, "dropping the inherited rseq registration", 0, __NR_getpid, 0, 0, 0, 0, 0, 0);
	if (rp->zombie) {
		tree_plan_setsid(rp, p);
		return 0;
	}
	if (plan_clear(rp, p) || vdso_plan(rp, p) || mem_plan(rp, p))
		return -1;
	ipc_plan_attach(rp, p);
	tree_plan_children(rp, p, true);
	tree_plan_setsid(rp, p);
	if (tty_plan_ctty(rp, p))
		return -1;
	tree_plan_children(rp, p, false);
	if (mem_plan_mm(rp, p) || process_plan(rp, p))
		return -1;
	plan_create_threads(rp, p);
	if (timers_plan(rp, p) || thread_plan(rp, p, rp->core->threads[0]) || files_plan(rp, p))
		return -1;
	return 0;
}

/* The last table: what would be disturbed by anything before it (signals, the
 * credentials that take cryo's rights away). */
static int plan_final(struct restore_proc *rp, struct plan *p)
{
	tree_plan_reaped(rp, p);
	if (tty_plan_foreground(rp, p) || signals_plan(rp, p))
		return -1;
	for (size_t i = 0; i < rp->nr_threads; i++)
		if (signals_plan_pending(rp, p, rp->core->threads[i]))
			return -1;
	if (files_plan_final(rp, p) || process_plan_final(rp, p))
		return -1;
	files_plan_close_inherited(rp->ctx, p);
	/* Only now: closing any fd of a file drops the process's POSIX locks on it. */
	return locks_plan_posix(rp, p);
}

/* Every table of the plan; run twice, counting then for real, so size and content
 * can never disagree. */
static int build_plan(struct restore_proc *rp, struct plan *p)
{
	rp->nr_reads = 0;
	rp->thread_tables[0] = plan_table(p);
	rp->thread_stops[0] = plan_stop_block(p, rp->pid, rp->pid, rp->stop_sig);
	if (plan_main(rp, p))
		return -1;
	rp->table_group = plan_new_table(p);
	rp->stop_group = plan_stop_block(p, rp->pid, rp->pid, rp->stop_sig);
	tree_plan_group(rp, p);
	if (rp->zombie) {
		rp->table_exit = plan_new_table(p);
		return tree_plan_exit(rp, p) || plan_seal(p);
	}
	rp->table_final = plan_new_table(p);
	rp->stop_final = plan_stop_block(p, rp->pid, rp->pid, rp->stop_sig);
	if (plan_final(rp, p))
		return -1;
	for (size_t i = 1; i < rp->nr_threads; i++) {
		pid_t tid = rp->core->threads[i]->tid;

		rp->thread_tables[i] = plan_new_table(p);
		rp->thread_stops[i] = plan_stop_block(p, rp->pid, tid, rp->stop_sig);
		if (thread_plan(rp, p, rp->core->threads[i]) || process_plan_creds(rp, p))
			return -1;
	}
	return plan_seal(p);
}

/* Signals pending anywhere in the process: the stop signal must be none of them. */
static uint64_t image_pending(const Core *c)
{
	uint64_t m = 0;

	for (size_t i = 0; c && i < c->n_shared_pending; i++)
		if (c->shared_pending[i]->signo >= 1 && c->shared_pending[i]->signo <= 64)
			m |= 1ULL << (c->shared_pending[i]->signo - 1);
	for (size_t t = 0; c && t < c->n_threads; t++)
		for (size_t i = 0; i < c->threads[t]->n_pending; i++) {
			uint32_t s = c->threads[t]->pending[i]->signo;

			if (s >= 1 && s <= 64)
				m |= 1ULL << (s - 1);
		}
	return m;
}

/* The counting pass: what each plan needs, before anything has a place. */
static int count_plan(struct restore_proc *rp, struct plan *count)
{
	rp->thread_tables = calloc(rp->nr_threads, sizeof(uint64_t));
	rp->thread_stops = calloc(rp->nr_threads, sizeof(uint64_t));
	rp->thread_created = calloc(rp->nr_threads, sizeof(bool));
	rp->stop_sig = exec_pick_stop_signal(image_pending(rp->core));
	if (!rp->thread_tables || !rp->thread_stops || !rp->thread_created)
		return cr_err("out of memory");
	if (!rp->stop_sig)
		return cr_err("image: every signal is pending in process %d; cryo has none left "
			      "to stop it with", rp->pid);
	if (!rp->zombie && vdso_choose(rp))
		return -1;
	plan_count(count);
	rp->max_reads = 0;
	if (build_plan(rp, count))
		return -1;
	rp->max_reads = rp->nr_reads;
	rp->reads = calloc(rp->max_reads + 1, sizeof(*rp->reads));
	return rp->reads ? 0 : cr_err("out of memory");
}

static int add_vmas(const struct restore_proc *rp, struct ranges *busy)
{
	const MmState *mm = rp->core->mm;

	for (size_t i = 0; i < mm->n_vmas; i++)
		if (ranges_add(busy, mm->vmas[i]->start, mm->vmas[i]->end))
			return -1;
	return ipc_add_busy(rp, busy) || vdso_add_busy(rp, busy);
}

/* One range for every plan, free in cryo and in every process of the image. */
static int place_area(struct restore_ctx *ctx, const struct plan *counts)
{
	struct ranges busy = { 0 };
	int rc = ranges_add_self(&busy);

	ctx->area_size = 0;
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		ctx->area_size += plan_region_size(&counts[i]);
		if (!rc && !ctx->procs[i]->zombie)
			rc = add_vmas(ctx->procs[i], &busy);
	}
	if (!rc) {
		ctx->area_base = ranges_find_gap(&busy, ctx->area_size);
		if (!ctx->area_base)
			rc = cr_err("no room for the restore plans in the address space");
	}
	free(busy.r);
	return rc;
}

/* Where the running vDSO goes in this process: clear of cryo, its memory and the plans. */
static int place_vdso(struct restore_proc *rp)
{
	struct restore_ctx *ctx = rp->ctx;
	struct ranges busy = { 0 };
	int rc;

	vdso_set_current(rp);
	rc = ranges_add_self(&busy) || add_vmas(rp, &busy) ||
	     ranges_add(&busy, ctx->area_base, ctx->area_base + ctx->area_size) ||
	     vdso_place(rp, &busy);
	free(busy.r);
	return rc;
}

static int prepare_plans(struct restore_ctx *ctx)
{
	struct plan *counts = calloc(ctx->nr_procs, sizeof(*counts));
	uint64_t at;
	int rc = -1;

	if (!counts)
		return cr_err("out of memory");
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (count_plan(ctx->procs[i], &counts[i]))
			goto out;
	if (place_area(ctx, counts))
		goto out;
	at = ctx->area_base;
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		struct restore_proc *rp = ctx->procs[i];

		if ((!rp->zombie && place_vdso(rp)) || plan_init(&rp->plan, at, &counts[i]) ||
		    build_plan(rp, &rp->plan))
			goto out;
		at += plan_region_size(&counts[i]);
	}
	pr_debug("plans at 0x%lx (%lu bytes for %zu processes)", (unsigned long)ctx->area_base,
		 (unsigned long)ctx->area_size, ctx->nr_procs);
	rc = 0;
out:
	for (size_t i = 0; i < ctx->nr_procs; i++)
		plan_free(&counts[i]);
	free(counts);
	return rc;
}

/* ---- making the tree ---- */

/* Each phase across the whole tree before the next: every parent has made its
 * children before they run, every group leader has its group before members join,
 * every zombie's end is seen before its parent's signals are put back. */
static int make_tree(struct restore_ctx *ctx)
{
	struct restore_proc **order;
	int rc = -1;

	if (task_create_root(ctx->procs[0]))
		return -1;
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		const PageMap *pm = ctx->procs[i]->pm;

		stats_progress_watch(ctx->procs[i]->pid, pm ? pm->total_pages * CR_PAGE_SIZE : 0);
		if (task_run_main(ctx->procs[i]))
			return -1;
	}
	if (tree_group_order(ctx, &order))
		return -1;
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (task_run_group(order[i]))
			goto out;
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (ctx->procs[i]->zombie && task_run_exit(ctx->procs[i]))
			goto out;
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (!ctx->procs[i]->zombie && task_run_final(ctx->procs[i]))
			goto out;
	rc = 0;
out:
	free(order);
	return rc;
}

static int write_pidfile(const char *path, pid_t pid)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", pid);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return cr_perr("cannot create pidfile %s", path);
	if (write(fd, buf, n) != n) {
		close(fd);
		return cr_perr("cannot write pidfile %s", path);
	}
	return close(fd) ? cr_perr("cannot write pidfile %s", path) : 0;
}

/* Children first: by the time a parent runs, what it waits for runs too. */
static int release_tree(struct restore_ctx *ctx, const struct cryo_restore_opts *opts)
{
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		const struct restore_proc *rp = ctx->procs[i];

		if (!rp->zombie && process_restore_oom_score(rp->core, rp->pid))
			return -1;
	}
	/* Under --pidns cryo writes it outside, with the PID it sees. */
	if (opts->pidfile && !ctx->pidns && write_pidfile(opts->pidfile, ctx->procs[0]->pid))
		return -1;
	tty_shell_foreground(ctx);
	/* TCP connections out of repair mode as their processes are about to run (their
	 * traffic stays locked until the network lock lets it go). */
	if (tcp_conn_restore_finish(true))
		return -1;
	for (size_t i = ctx->nr_procs; i-- > 0;)
		if (!ctx->procs[i]->zombie && task_release(ctx->procs[i]))
			return -1;
	return 0;
}

static void proc_free(struct restore_proc *rp)
{
	plan_free(&rp->plan);
	free(rp->reads);
	free(rp->proxy);
	for (int i = 0; i < 3; i++)
		if (rp->proxy_fds[i] >= 0)
			close(rp->proxy_fds[i]);
	free(rp->thread_tables);
	free(rp->thread_stops);
	free(rp->thread_created);
	free(rp->children);
	track_restore_free(rp);
	if (rp->page_fd >= 0)
		close(rp->page_fd);
	if (rp->core)
		core__free_unpacked(rp->core, NULL);
	if (rp->pm)
		page_map__free_unpacked(rp->pm, NULL);
	free(rp);
}

static void restore_free(struct restore_ctx *ctx)
{
	lazy_free(ctx);
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (ctx->procs[i])
			proc_free(ctx->procs[i]);
	free(ctx->procs);
	free(ctx->tree_pids);
	net_lock_free(ctx);
	if (ctx->file_fds)
		for (size_t i = 0; ctx->files && i < ctx->files->n_files; i++)
			if (ctx->file_fds[i] >= 0)
				close(ctx->file_fds[i]);
	free(ctx->file_fds);
	if (ctx->shmem_fds)
		for (size_t i = 0; ctx->shmem && i < ctx->shmem->n_objects; i++)
			if (ctx->shmem_fds[i] >= 0)
				close(ctx->shmem_fds[i]);
	free(ctx->shmem_fds);
	if (ctx->files)
		file_table__free_unpacked(ctx->files, NULL);
	if (ctx->shmem)
		shmem_table__free_unpacked(ctx->shmem, NULL);
	if (ctx->tree)
		ps_tree__free_unpacked(ctx->tree, NULL);
	if (ctx->inv)
		inventory__free_unpacked(ctx->inv, NULL);
	track_restore_ctx_free(ctx);
	img_dir_close(&ctx->dir, true);
}

/* Everything before a task is made. The plans are placed from cryo's own maps: they
 * are mapped before the verifier thread starts mapping anything. */
static int restore_prepare(struct restore_ctx *ctx, const struct cryo_restore_opts *opts,
			   struct verifier *v)
{
	int rc;

	stats_enter(PH_READ_IMAGES);
	rc = load_images(ctx) || prepare(ctx, opts->trust_image) || prepare_plans(ctx);
	stats_leave(PH_READ_IMAGES);
	if (rc)
		return -1;
	stats_enter(PH_WAIT_IDS);
	rc = task_wait_ids(ctx) || ipc_restore_objects(ctx) || lazy_start(ctx) ||
	     verify_start(v, ctx);
	stats_leave(PH_WAIT_IDS);
	for (size_t i = 0; !rc && i < ctx->nr_procs; i++) {
		const struct restore_proc *rp = ctx->procs[i];
		uint64_t pages = rp->pm ? rp->pm->total_pages : 0;

		stats_add_proc(rp->pid, pages, pages * CR_PAGE_SIZE);
	}
	return rc ? -1 : 0;
}

static int restore_run(struct restore_ctx *ctx, const struct cryo_restore_opts *opts,
		       struct verifier *v)
{
	int rc;

	stats_enter(PH_CREATE);
	rc = make_tree(ctx);
	stats_leave(PH_CREATE);
	if (rc)
		return -1;
	stats_enter(PH_VERIFY);
	rc = verify_finish(v);
	stats_leave(PH_VERIFY);
	if (rc)
		return -1;
	if (action_run(opts->action_script, "post-restore", opts->dir, ctx->procs[0]->pid) ||
	    action_run(opts->action_script, "pre-resume", opts->dir, ctx->procs[0]->pid))
		return -1;
	stats_enter(PH_RELEASE);
	rc = lazy_armed(ctx) || release_tree(ctx, opts);
	stats_leave(PH_RELEASE);
	return rc;
}

static int restore_here(const struct cryo_restore_opts *opts, pid_t *root, bool in_pidns)
{
	struct restore_ctx ctx;
	struct verifier v = { 0 };
	uint64_t chld;
	int rc = -1;

	cr_err_reset();
	if (userns_drop_caps(true))
		return -1;
	stats_start(true);
	memset(&ctx, 0, sizeof(ctx));
	ctx.pidns = in_pidns;
	ctx.detach = opts->detach;
	ctx.shell_job = opts->shell_job;
	ctx.ignore_cpu = opts->ignore_cpu;
	ctx.vdso_mode = opts->vdso;
	ctx.file_validation = opts->file_validation;
	ctx.inherit = opts->inherit;
	ctx.nr_inherit = opts->nr_inherit;
	ctx.ext_unix_sk = opts->ext_unix_sk;
	ctx.tcp_established = opts->tcp_established;
	ctx.tcp_close = opts->tcp_close;
	ctx.lazy_pages = opts->lazy_pages;
	ctx.lazy_on_touch = opts->lazy_fill == CRYO_LAZY_ON_TOUCH;
	if (opts->lazy_fill != CRYO_LAZY_BACKGROUND && !opts->lazy_pages)
		return cr_err("--lazy-fill needs --lazy-pages");
	if ((unsigned)opts->lazy_fill > CRYO_LAZY_ON_TOUCH)
		return cr_err("bad lazy fill mode %d", (int)opts->lazy_fill);
	if (!opts->dir && !opts->stream)
		return cr_err("no image directory given (-D)");
	if (opts->stream ? img_dir_open_stream(&ctx.dir, opts->stream_fd, "the stream (stdin)") :
			   img_dir_open(&ctx.dir, opts->dir))
		return -1;
	rmt_begin(&chld);
	if (action_run(opts->action_script, "pre-restore", opts->dir, 0) ||
	    restore_prepare(&ctx, opts, &v) || restore_run(&ctx, opts, &v))
		goto out;
	/* The tree runs, its connections out of repair: their traffic may flow. The
	 * supplier fills in the background from now on (first touches meanwhile). */
	net_unlock_restore(&ctx);
	lazy_tree_made(&ctx);
	*root = ctx.procs[0]->pid;
	/* It runs: a script failing now is said, and the tree is left running. */
	if ((ctx.netlock &&
	     action_run(opts->action_script, "network-unlock", opts->dir, *root)) ||
	    action_run(opts->action_script, "post-resume", opts->dir, *root)) {
		pr_warn("%s", cr_last_error());
		cr_err_reset();
	}
	pr_info("%zu process%s restored, root %d", ctx.nr_procs, ctx.nr_procs > 1 ? "es" : "",
		*root);
	rc = 0;
out:
	verify_finish(&v);
	if (rc) {
		tcp_conn_restore_finish(false);
		task_kill_all(&ctx);
		net_lock_restore_failed(&ctx);
	}
	ipc_restore_finish(&ctx, rc == 0);
	restore_free(&ctx);
	rmt_end(chld);
	stats_finish();
	return rc;
}

static int restore_in_pidns(void *opts, pid_t *root)
{
	return restore_here(opts, root, true);
}

int cryo_restore(const struct cryo_restore_opts *opts, pid_t *root)
{
	struct pidns ns = { 0 };
	bool own_userns = userns_restore_needs_ns(opts->pidns);

	if (!opts->pidns && !own_userns)
		return restore_here(opts, root, false);
	cr_err_reset();
	/* A directory that cannot be read is said here, before any namespace is made. */
	if (!opts->stream) {
		struct img_dir d;

		if (img_dir_open(&d, opts->dir))
			return -1;
		img_dir_close(&d, true);
	}
	if (own_userns && userns_prepare(&ns.unshare_flags, &ns.outer_setup, &ns.arg))
		return -1;
	if (pidns_enter(&ns, restore_in_pidns, (void *)opts))
		return -1;
	if (opts->pidfile && write_pidfile(opts->pidfile, ns.root)) {
		kill(ns.init, SIGKILL);	/* the whole namespace goes with it */
		waitpid(ns.init, NULL, 0);
		return -1;
	}
	*root = ns.root;
	return 0;
}

static volatile pid_t forward_to;

static void forward_signal(int sig)
{
	if (forward_to > 0)
		kill(forward_to, sig);
}

int cryo_wait_restored(pid_t root)
{
	struct sigaction sa;
	int status;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward_signal;
	forward_to = root;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Under --pidns cryo's child is the namespace's init, which ends as the root. */
	while (waitpid(pidns_waitee(root), &status, 0) < 0) {
		if (errno != EINTR)
			return cr_perr("waiting for process %d", root);
	}
	tty_shell_take_back();
	return pidns_exit_code(status);
}
