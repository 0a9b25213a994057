/* Dump: the order of the steps. Seize the whole tree, collect every kind of state of
 * each process, write the images (inventory last), then kill or resume them all. At
 * every instant, a failure or cryo's own death leaves every process running as it
 * was; a failure removes what was written. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "action.h"
#include "cpu.h"
#include "cryo.h"
#include "file_locks.h"
#include "files.h"
#include "ipc.h"
#include "lifecycle.h"
#include "log.h"
#include "mem.h"
#include "mem_track.h"
#include "net_lock.h"
#include "process.h"
#include "pstree.h"
#include "page_server.h"
#include "signals.h"
#include "stream.h"
#include "sys.h"
#include "stats.h"
#include "tcp_repair.h"
#include "thread.h"
#include "timers.h"
#include "util.h"

static int read_status(struct dump_proc *p)
{
	size_t len;
	char *txt = proc_read_pid_file(p->pid, "status", &len);
	int rc;

	if (!txt)
		return -1;
	rc = proc_parse_status(txt, len, &p->status);
	free(txt);
	return rc;
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

/* Each thread where it stays for the dump: out of a dead cryo's program, out of the vDSO,
 * out of a mask-swapping call, out of an rseq critical section; then its state. */
static int place_threads(struct dump_proc *p)
{
	for (size_t i = 0; i < p->nr_threads; i++)
		if (thread_drain_dead(p, &p->rts[i]))
			return -1;
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

/* Everything of one process, while the whole tree is stopped. */
static int collect(struct dump_proc *p)
{
	p->threads = calloc(p->nr_threads, sizeof(*p->threads));
	p->thread_ptrs = calloc(p->nr_threads, sizeof(*p->thread_ptrs));
	if (!p->threads || !p->thread_ptrs)
		return cr_err("out of memory");
	core__init(&p->core);
	if (task_check_seccomp(p) || read_status(p) || process_dump_static(p) ||
	    mem_read_vmas(p) || track_proc_start(p) || read_vdso_image(p) ||
	    borrow_open(&p->borrow, p->pid, &p->vmas, p->rts, p->nr_threads))
		return -1;
	if (place_threads(p) || query_all(p))
		return -1;
	/* Files first: a refusal there must not wait for the memory work. */
	if (files_dump_fds(p) || mem_dump(p) || track_arm(p))
		return -1;
	return 0;
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
	if (track_dump_inventory(ctx, &inv))
		return -1;
	return img_write_inventory(&ctx->dir, &inv);
}

static void dump_proc_free(struct dump_proc *p)
{
	if (p->zombie) {
		free(p);
		return;
	}
	track_proc_free(p);
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
	vdso_info_free(&p->vdso);
	borrow_close(&p->borrow);
	free(p);
}

static void dump_ctx_free(struct dump_ctx *ctx)
{
	locks_dump_free(ctx);
	file_sockets_outside_free(ctx);
	files_table_free(&ctx->files);
	ipc_dump_free(ctx);
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
	for (size_t i = 0; i < ctx->nr_procs; i++)
		dump_proc_free(ctx->procs[i]);
	free(ctx->procs);
}

static int write_images_all(struct dump_ctx *ctx, const struct cryo_dump_opts *opts)
{
	if (track_dump_arm(ctx))
		return -1;
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (!ctx->procs[i]->zombie && write_process_images(ctx->procs[i]))
			return -1;
	return tree_write(ctx) || files_write_image(ctx) || mem_write_shmem_image(ctx) ||
	       ipc_write_image(ctx) || net_lock_write_image(ctx) ||
	       write_inventory(ctx, opts->pid) ? -1 : 0;
}

static int write_images(struct dump_ctx *ctx, const struct cryo_dump_opts *opts)
{
	int rc;

	pr_info("writing images to %s", ctx->dir.path);
	stats_enter(PH_METADATA);
	rc = write_images_all(ctx, opts);
	stats_leave(PH_METADATA);
	return rc;
}

static int dump_tree(struct dump_ctx *ctx, const struct cryo_dump_opts *opts)
{
	if (action_run(opts->action_script, "pre-dump", opts->dir, opts->pid))
		return -1;
	ptr_set_deadline(opts->timeout);
	stats_enter(PH_SEIZE);
	/* The connections' traffic stops before anything of them is read. */
	if (tree_seize(ctx, opts->pid) || net_lock_dump(ctx) ||
	    (opts->tcp_established &&
	     action_run(opts->action_script, "network-lock", opts->dir, opts->pid)))
		return -1;
	stats_leave(PH_SEIZE);
	stats_enter(PH_FROZEN);
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (ptr_check_deadline() || (!ctx->procs[i]->zombie && collect(ctx->procs[i])))
			return -1;
	if (locks_dump_check(ctx) || ipc_dump(ctx) || tty_dump_tree(ctx) ||
	    ptr_check_deadline())
		return -1;
	if (!ctx->leave_running)
		for (size_t i = 0; i < ctx->nr_procs; i++)
			if (!ctx->procs[i]->zombie && task_park_for_kill(ctx->procs[i]))
				return -1;
	/* A pre-dump's pages are read once the tree runs again (dump_after). */
	if (opts->pre_dump)
		return 0;
	if (write_images(ctx, opts))
		return -1;
	return action_run(opts->action_script, "post-dump", opts->dir, opts->pid);
}

/* A pre-dump, the tree running again: its pages (tracked since the tree was held:
 * what it writes meanwhile is saved by the next round), then the images. */
static int dump_after(struct dump_ctx *ctx, const struct cryo_dump_opts *opts)
{
	stats_enter(PH_PAGE_WRITE);
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (!ctx->procs[i]->zombie && mem_dump_late(ctx->procs[i]))
			return -1;
	stats_leave(PH_PAGE_WRITE);
	if (write_images(ctx, opts))
		return -1;
	return action_run(opts->action_script, "post-dump", opts->dir, opts->pid);
}

/* How long a dump waits for its killed tree to be gone before it says so and ends. */
#define KILLED_WAIT_S 10

/* Killed children first: none sees its parent go while it could still run. (The
 * caller then waits for their ends: what they held, locks, ports, IDs, is free when
 * the dump ends.) */
static int finish_tree(struct dump_ctx *ctx, bool kill_them)
{
	size_t n = 0;
	int rc = 0;

	for (size_t i = ctx->nr_procs; i-- > 0;) {
		if (ctx->procs[i]->zombie || !ctx->procs[i]->seized)
			continue;
		n++;
		if (task_finish(ctx->procs[i], kill_them))
			rc = -1;
	}
	if (n)
		pr_info(kill_them ? "%zu process%s killed" : "%zu process%s resumed", n,
			n > 1 ? "es" : "");
	return rc;
}

/* The image directory; or the stream (--stream); or the directory with the page
 * server (--page-server) for the raw files. */
static int open_image(struct dump_ctx *ctx, const struct cryo_dump_opts *opts,
		      struct stream_out *out)
{
	if (opts->stream)
		return stream_out_start(out, opts->stream_fd, false, "the stream (stdout)") ||
		       img_dir_stream(&ctx->dir, out) ? -1 : 0;
	/* A parent's pages stay in the parent's directory: a chain through a page
	 * server is not built. */
	if (opts->page_server_address && (opts->pre_dump || opts->track_mem ||
					  opts->prev_images_dir))
		return cr_err("--page-server does not go with iterative dumps (pre-dump, "
			      "--track-mem, --prev-images-dir) yet");
	if (img_dir_create(&ctx->dir, opts->dir))
		return -1;
	if (!opts->page_server_address)
		return 0;
	if (page_server_connect(out, opts->page_server_address, opts->page_server_port))
		return -1;
	ctx->dir.out = out;
	ctx->dir.out_raw_only = true;
	return 0;
}

int cryo_dump(const struct cryo_dump_opts *opts)
{
	struct dump_ctx ctx;
	struct stream_out out = { .fd = -1 };
	struct sigaction old_pipe;
	sigset_t block, old;
	uint64_t chld;
	bool kill_them;
	int rc = -1;

	cr_err_reset();
	stats_start(false);
	memset(&ctx, 0, sizeof(ctx));
	ctx.dir.dirfd = -1;
	ctx.leave_running = opts->leave_running || opts->pre_dump;
	ctx.shell_job = opts->shell_job;
	ctx.ext_unix_sk = opts->ext_unix_sk;
	ctx.tcp_skip_in_flight = opts->tcp_skip_in_flight;
	ctx.tcp_established = opts->tcp_established;
	ctx.tcp_close = opts->tcp_close;
	ctx.ghost_limit = opts->ghost_limit ? opts->ghost_limit : CRYO_GHOST_LIMIT;
	if (!opts->dir && !opts->stream)
		return cr_err("no image directory given (-D)");
	if (userns_caller(&ctx.caller) || userns_drop_caps(false) ||
	    (opts->pid > 0 && (!kill(opts->pid, 0) || errno == EPERM) &&
	     userns_may_dump(&ctx.caller, opts->pid, opts->pid)) ||
	    process_dump_check(opts->pid))
		return -1;
	if (opts->timeout > CRYO_TIMEOUT_MAX)
		return cr_err("--timeout %u: at most %u s", opts->timeout, CRYO_TIMEOUT_MAX);
	/* Not interruptible while the processes are ours. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &old);
	/* A reader gone is an error of a write, not the end of cryo. */
	sigaction(SIGPIPE, &(struct sigaction){ .sa_handler = SIG_IGN }, &old_pipe);
	rmt_begin(&chld);
	if (!open_image(&ctx, opts, &out) && !track_dump_start(&ctx, opts))
		rc = dump_tree(&ctx, opts);
	/* Sockets leave repair mode before their process runs again; killed, they stay
	 * in it (closing silently) and the lock outlives the dump. */
	kill_them = rc == 0 && !ctx.leave_running;
	if (!kill_them) {
		tcp_conn_dump_finish(false);
		if (net_lock_dump_finish(&ctx, false))
			rc = -1;
	}
	if (!kill_them && opts->tcp_established &&
	    action_run(opts->action_script, "network-unlock", opts->dir, opts->pid))
		rc = -1;
	ptr_set_deadline(0);
	if (finish_tree(&ctx, kill_them))
		rc = -1;
	/* Killed, the tree is no longer frozen: the wait for its end (a 4 GiB process
	 * took 0.18 s to exit) is not part of that figure. */
	stats_leave(PH_FROZEN);
	if (kill_them)
		task_wait_killed(ctx.procs, ctx.nr_procs, KILLED_WAIT_S);
	if (rc == 0 && opts->pre_dump && dump_after(&ctx, opts))
		rc = -1;
	if (kill_them)
		net_lock_dump_finish(&ctx, true);
	tcp_conn_dump_finish(true);
	track_dump_end(&ctx, rc == 0);
	if (ctx.dir.path)
		img_dir_close(&ctx.dir, rc == 0);
	stream_out_close(&out);
	dump_ctx_free(&ctx);
	rmt_end(chld);
	sigprocmask(SIG_SETMASK, &old, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	stats_finish();
	return rc;
}
