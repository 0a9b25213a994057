/* Dump orchestration: check, seize, collect every kind of state, write the images
 * (inventory last), then kill or resume. Any failure leaves the process running as
 * it was and removes what was written. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* One round trip for everything the task must tell about itself. */
static int query_task(struct dump_proc *p)
{
	struct rtable *t = malloc(sizeof(*t));
	int pslots[PROCESS_SLOTS], tslots[8];
	uint64_t sigbuf;
	int rc = -1;

	if (!t)
		return cr_err("out of memory");
	rtable_init(t, &p->rmt);
	process_dump_queue(p, t, pslots);
	thread_dump_queue(p, t, tslots);
	signals_dump_queue(p, t, &sigbuf);
	if (rtable_run(t))
		goto out;
	if (process_dump_collect(p, t, pslots) ||
	    thread_dump_collect(p, t, tslots, p->threads) ||
	    signals_dump_collect(p, t, sigbuf))
		goto out;
	rc = 0;
out:
	free(t);
	return rc;
}

static int write_process_images(struct dump_proc *p)
{
	char name[64];

	p->core.mm = &p->mm;
	p->core.n_threads = 1;
	p->core.threads = &p->threads;
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
	uint32_t tid = p->pid;

	pe.pid = p->pid;
	pe.ppid = p->stat.ppid;
	pe.pgid = p->stat.pgid;
	pe.sid = p->stat.sid;
	pe.n_tids = 1;
	pe.tids = &tid;
	tree.n_procs = 1;
	tree.procs = pes;
	return img_write_msg(&p->ctx->dir, "pstree.img", IMAGE_KIND__IMG_PSTREE, &tree.base);
}

static int write_inventory(struct dump_ctx *ctx, pid_t root)
{
	Inventory inv = INVENTORY__INIT;
	CpuInfo cpu_pb;
	uint32_t words[CPU_NR_WORDS];
	struct cpu_info ci;
	struct utsname un;
	struct timespec ts;

	cpu_read(&ci);
	cpu_to_pb(&ci, &cpu_pb, words);
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
	process_dump_free(p);
	free(p->core.fds ? p->core.fds[0] : NULL);
	free(p->core.fds);
	if (p->threads) {
		thread_dump_free(p->threads);
		free(p->threads);
	}
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
	p->threads = calloc(1, sizeof(*p->threads));
	if (!p->threads)
		return cr_err("out of memory");
	core__init(&p->core);
	if (read_proc_state(p) || process_dump_static(p) || mem_read_vmas(p))
		return -1;
	/* Registers first, before the remote control borrows the task. */
	if (thread_settle(p->pid) || thread_dump(p, p->pid, p->threads))
		return -1;
	if (remote_attach_scratch(&p->rmt, p->pid, RT_SCRATCH_SIZE))
		return -1;
	if (query_task(p) || mem_dump(p) || files_dump_fds(p))
		return -1;
	return 0;
}

static int finish_task(struct dump_proc *p, bool kill_it)
{
	int status, rc = 0;

	if (p->rmt.tid && remote_release_scratch(&p->rmt))
		rc = -1;
	if (!kill_it)
		return ptr_detach(p->pid, 0) ? -1 : rc;
	if (kill(p->pid, SIGKILL))
		return cr_perr("cannot kill process %d after the dump", p->pid);
	/* As its tracer we see the death first; the real parent reaps it. */
	while (waitpid(p->pid, &status, __WALL) < 0 && errno == EINTR)
		;
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
