/* Restore orchestration: read and check the whole image, open what the new process
 * needs, build its plan, create it with its PID, let it run the plan, set its
 * registers and let it go. Before the last step any failure kills what was made. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/wait.h>
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

#define PLAN_LOW_LIMIT (1UL << 20)

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

static int load_images(struct restore_ctx *ctx, struct restore_proc *rp)
{
	char name[64];
	ProcessEntry *pe;

	ctx->inv = img_read_inventory(&ctx->dir);
	if (!ctx->inv)
		return -1;
	if (ctx->inv->page_size != CR_PAGE_SIZE)
		return cr_err("%s: page size %u is not supported", ctx->dir.path,
			      ctx->inv->page_size);
	if (check_cpu(ctx))
		return -1;
	ctx->tree = img_read_msg(&ctx->dir, "pstree.img", IMAGE_KIND__IMG_PSTREE,
				 &ps_tree__descriptor);
	if (!ctx->tree)
		return -1;
	if (ctx->tree->n_procs != 1)
		return cr_err("%s: holds %zu processes; process trees are not supported yet",
			      ctx->dir.path, ctx->tree->n_procs);
	pe = ctx->tree->procs[0];
	if (pe->pid < 2 || pe->pid > 0x3fffffff || !pe->n_tids || pe->tids[0] != pe->pid ||
	    pe->n_tids > 65536)
		return cr_err("%s: invalid process tree entry (PID %u)", ctx->dir.path, pe->pid);
	for (size_t i = 1; i < pe->n_tids; i++)
		for (size_t k = 0; k < i; k++)
			if (pe->tids[i] == pe->tids[k] || pe->tids[i] < 2 || pe->tids[i] > 0x3fffffff)
				return cr_err("%s: invalid thread list of process %u", ctx->dir.path,
					      pe->pid);
	ctx->files = img_read_msg(&ctx->dir, "files.img", IMAGE_KIND__IMG_FILES,
				  &file_table__descriptor);
	if (!ctx->files)
		return -1;
	snprintf(name, sizeof(name), "core-%u.img", pe->pid);
	rp->core = img_read_msg(&ctx->dir, name, IMAGE_KIND__IMG_CORE, &core__descriptor);
	if (!rp->core)
		return -1;
	snprintf(name, sizeof(name), "pagemap-%u.img", pe->pid);
	rp->pm = img_read_msg(&ctx->dir, name, IMAGE_KIND__IMG_PAGEMAP, &page_map__descriptor);
	if (!rp->pm)
		return -1;
	if (rp->core->pid != pe->pid || rp->pm->pid != pe->pid || !rp->core->mm ||
	    rp->core->n_threads != pe->n_tids)
		return cr_err("%s/%s: inconsistent process description", ctx->dir.path, name);
	for (size_t i = 0; i < pe->n_tids; i++) {
		const ThreadState *ts = rp->core->threads[i];

		if (ts->tid != pe->tids[i] || !ts->regs || ts->xstate.len > CR_XSTATE_MAX)
			return cr_err("%s/%s: inconsistent state of thread %u", ctx->dir.path,
				      name, ts->tid);
	}
	rp->pid = pe->pid;
	rp->nr_threads = pe->n_tids;
	for (size_t i = 0; i < ctx->dir.nr_files; i++)
		if (!strcmp(ctx->dir.files[i].name, "shmem.img")) {
			ctx->shmem = img_read_msg(&ctx->dir, "shmem.img", IMAGE_KIND__IMG_SHMEM,
						  &shmem_table__descriptor);
			if (!ctx->shmem)
				return -1;
		}
	return 0;
}

/* ---- choosing where the plan lives ---- */

struct range {
	uint64_t start, end;
};

struct ranges {
	struct range *r;
	size_t nr, cap;
};

static int ranges_add(struct ranges *rs, uint64_t start, uint64_t end)
{
	if (cr_grow(&rs->r, &rs->cap, rs->nr + 1, sizeof(*rs->r), 128))
		return -1;
	rs->r[rs->nr].start = start;
	rs->r[rs->nr].end = end;
	rs->nr++;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The lowest gap of `size` bytes (2 MiB aligned) outside every busy range. */
static uint64_t find_gap(struct ranges *busy, uint64_t size)
{
	uint64_t at = PLAN_LOW_LIMIT;

	qsort(busy->r, busy->nr, sizeof(struct range), cmp_range);
	for (size_t i = 0; i < busy->nr; i++) {
		if (busy->r[i].end <= at)
			continue;
		if (busy->r[i].start >= at + size)
			return at;
		at = CR_ALIGN_UP(busy->r[i].end + CR_PAGE_SIZE, 2UL << 20);
	}
	return at + size <= CR_TASK_SIZE ? at : 0;
}

/* A free gap of `size` bytes as close as possible to `hint` (page aligned). */
static uint64_t find_gap_near(struct ranges *busy, uint64_t size, uint64_t hint)
{
	uint64_t best = 0, best_dist = UINT64_MAX, at = PLAN_LOW_LIMIT;

	qsort(busy->r, busy->nr, sizeof(struct range), cmp_range);
	for (size_t i = 0; i <= busy->nr; i++) {
		uint64_t end = i < busy->nr ? busy->r[i].start : CR_TASK_SIZE;

		if (i < busy->nr && busy->r[i].end <= at)
			continue;
		/* Keep a page free on both sides. */
		if (end > at + size + 2 * CR_PAGE_SIZE) {
			uint64_t lo = at + CR_PAGE_SIZE, hi = end - size - CR_PAGE_SIZE;
			uint64_t pick = hint < lo ? lo : hint > hi ? hi : hint & CR_PAGE_MASK;
			uint64_t dist = pick > hint ? pick - hint : hint - pick;

			if (dist < best_dist) {
				best = pick;
				best_dist = dist;
			}
		}
		if (i < busy->nr && busy->r[i].end > at)
			at = busy->r[i].end;
	}
	return best;
}

static int busy_ranges(struct restore_proc *rp, const struct vdso_layout *dst,
		       struct ranges *busy)
{
	struct proc_vmas self;
	size_t len;
	char *txt = proc_read_file("/proc/self/maps", &len);
	uint64_t s, e;

	if (!txt)
		return -1;
	if (proc_parse_smaps(txt, len, &self)) {
		free(txt);
		return -1;
	}
	free(txt);
	for (size_t i = 0; i < self.nr; i++)
		if (ranges_add(busy, self.v[i].start, self.v[i].end))
			goto fail;
	proc_vmas_free(&self);
	for (size_t i = 0; i < rp->core->mm->n_vmas; i++)
		if (ranges_add(busy, rp->core->mm->vmas[i]->start, rp->core->mm->vmas[i]->end))
			return -1;
	if (dst) {
		vdso_block(dst, &s, &e);
		if (ranges_add(busy, s, e))
			return -1;
	}
	return 0;
fail:
	proc_vmas_free(&self);
	return -1;
}

/* ---- the plan ---- */

/* Unmap everything but the plan and (when kept) cryo's vDSO block. */
static void plan_clear_address_space(struct plan *p, uint64_t keep_s, uint64_t keep_e)
{
	struct range keep[2] = { { p->base, p->base + p->size }, { keep_s, keep_e } };
	int nk = keep_e > keep_s ? 2 : 1;
	uint64_t at = 0;

	if (p->counting) {
		/* As many as the real pass can make: a counting plan has no place yet. */
		for (int i = 0; i <= nk; i++)
			plan_call(p, "unmapping cryo's memory", 0, __NR_munmap, 0, 0, 0, 0, 0, 0);
		return;
	}
	if (nk == 2 && keep[1].start < keep[0].start) {
		struct range t = keep[0];

		keep[0] = keep[1];
		keep[1] = t;
	}
	for (int i = 0; i < nk; i++) {
		if (keep[i].start > at)
			plan_call(p, "unmapping cryo's memory", 0, __NR_munmap, at,
				  keep[i].start - at, 0, 0, 0, 0);
		at = keep[i].end;
	}
	plan_call(p, "unmapping cryo's memory", 0, __NR_munmap, at, CR_TASK_SIZE - at, 0, 0, 0, 0);
}

static void plan_move_block(struct plan *p, const struct vdso_layout *from, int64_t delta)
{
	const uint64_t starts[3] = { from->vvar_start, from->vclock_start, from->vdso_start };
	const uint64_t sizes[3] = { from->vvar_size, from->vclock_size, from->vdso_size };

	for (int i = 0; i < 3; i++)
		if (sizes[i])
			plan_call(p, "moving the vDSO", 0, __NR_mremap, starts[i], sizes[i], sizes[i],
				  MREMAP_MAYMOVE | MREMAP_FIXED, starts[i] + delta, 0);
}

static struct vdso_layout shifted(const struct vdso_layout *l, int64_t delta)
{
	struct vdso_layout s = *l;

	s.vdso_start += delta;
	if (s.vvar_size)
		s.vvar_start += delta;
	if (s.vclock_size)
		s.vclock_start += delta;
	return s;
}

/* Same-kernel vDSO: move the running one, with its data pages, to the old place. */
static int plan_vdso(struct restore_ctx *ctx, struct plan *p, const struct vdso_layout *dst,
		     uint64_t temp)
{
	const struct vdso_layout *cur = &ctx->rt_vdso.layout;
	uint64_t cs, ce, ds, de;
	int64_t delta;

	vdso_block(cur, &cs, &ce);
	vdso_block(dst, &ds, &de);
	delta = (int64_t)(dst->vdso_start - cur->vdso_start);
	if (!delta)
		return 0;
	if (cs < de && ds < ce) {
		/* Overlapping moves are not allowed: go through a free place. */
		struct vdso_layout mid;
		int64_t d1 = (int64_t)(temp - cs);

		plan_move_block(p, cur, d1);
		mid = shifted(cur, d1);
		plan_move_block(p, &mid, delta - d1);
		return 0;
	}
	plan_move_block(p, cur, delta);
	return 0;
}

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

struct plan_layout {
	struct vdso_layout dst;		/* the dumped vDSO's place */
	bool has_vdso;
	bool proxy;
	uint64_t temp;			/* remap: a free place to move through */
	uint64_t new_vdso;		/* proxy: where the running vDSO goes */
};

/* A proxy: the running vDSO block moves to a free place; the old range becomes
 * ordinary memory holding the old code with redirected entries (written after the
 * plan), the old data pages PROT_NONE placeholders so stray reads fault. */
static int plan_proxy_maps(struct restore_ctx *ctx, struct restore_proc *rp, struct plan *p,
			   const struct vdso_layout *dst);

static int plan_vdso_proxy(struct restore_ctx *ctx, struct restore_proc *rp, struct plan *p,
			   const struct plan_layout *pl)
{
	const struct vdso_runtime *rt = &ctx->rt_vdso;
	const VdsoInfo *vi = ctx->inv->vdso;
	struct vdso_patch patches[VDSO_MAX_PATCHES];
	uint64_t cur_vdso = 0;
	int n;

	if (rt->present) {
		plan_move_block(p, &rt->layout, (int64_t)(pl->new_vdso - rt->layout.vdso_start));
		cur_vdso = pl->new_vdso;
	}
	free(rp->proxy);
	rp->proxy = malloc(vi->image.len);
	if (!rp->proxy)
		return cr_err("out of memory");
	if (vdso_make_proxy(vi->image.data, vi->image.len, pl->dst.vdso_start, &rt->syms,
			    cur_vdso, rp->proxy, patches, &n))
		return -1;
	if (vi->image.len != pl->dst.vdso_size)
		return cr_err("image: the vDSO's bytes do not fill its mapping");
	for (int i = 0; i < n && !p->counting; i++)
		pr_info("vDSO proxy: %s -> %s", patches[i].name,
			patches[i].kind == PATCH_JUMP ? "the running vDSO" :
			patches[i].kind == PATCH_SYSCALL ? "a system call" : "an error return");
	return plan_proxy_maps(ctx, rp, p, &pl->dst);
}

/* The proxy and the placeholders for the old data pages, from named memory files (a
 * later dump recognises them by name); made once, in the real pass. */
static int plan_proxy_maps(struct restore_ctx *ctx, struct restore_proc *rp, struct plan *p,
			   const struct vdso_layout *dst)
{
	const uint64_t starts[3] = { dst->vdso_start, dst->vvar_start, dst->vclock_start };
	const uint64_t sizes[3] = { dst->vdso_size, dst->vvar_size, dst->vclock_size };
	static const char *const names[3] = { VDSO_PROXY_NAME, VVAR_RESERVE_NAME,
					       VCLOCK_RESERVE_NAME };
	static const char *const labels[3] = { "mapping the vDSO proxy", "reserving the old [vvar]",
					       "reserving the old [vvar_vclock]" };

	for (int i = 0; i < 3; i++) {
		if (!sizes[i])
			continue;
		if (!p->counting && rp->proxy_fds[i] < 0) {
			int fd = vdso_proxy_memfd(names[i], i ? NULL : rp->proxy, sizes[i]);

			if (fd < 0)
				return -1;
			rp->proxy_fds[i] = restore_inherit_fd(ctx, fd, names[i]);
			if (rp->proxy_fds[i] < 0)
				return -1;
		}
		plan_call(p, labels[i], 0, __NR_mmap, starts[i], sizes[i],
			  i ? PROT_NONE : PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED,
			  rp->proxy_fds[i], 0);
	}
	return 0;
}

/* Every table of the plan; run twice, counting then for real, so size and content
 * can never disagree. */
static int build_plan(struct restore_ctx *ctx, struct restore_proc *rp,
		      const struct plan_layout *pl, struct plan *p)
{
	const ThreadState *ts = rp->core->threads[0];
	uint64_t ks = 0, ke = 0;

	rp->nr_reads = 0;
	rp->run_done = 0;
	/* Replaced by the rseq unregistration once the task exists. */
	plan_call(p, "dropping cryo's rseq registration", 0, __NR_getpid, 0, 0, 0, 0, 0, 0);
	if (pl->has_vdso && ctx->rt_vdso.present)
		vdso_block(&ctx->rt_vdso.layout, &ks, &ke);
	plan_clear_address_space(p, ks, ke);
	if (pl->has_vdso && !pl->proxy && plan_vdso(ctx, p, &pl->dst, pl->temp))
		return -1;
	if (pl->proxy && plan_vdso_proxy(ctx, rp, p, pl))
		return -1;
	if (process_plan_identity(rp, p) || mem_plan(rp, p) || mem_plan_mm(rp, p) ||
	    process_plan(rp, p))
		return -1;
	plan_create_threads(rp, p);
	if (signals_plan(rp, p) || timers_plan(rp, p))
		return -1;
	for (size_t i = 0; i < rp->nr_threads; i++)
		if (signals_plan_pending(rp, p, rp->core->threads[i]))
			return -1;
	if (thread_plan(rp, p, ts) || files_plan(rp, p) || process_plan_final(rp, p))
		return -1;
	files_plan_close_inherited(ctx, p);
	rp->thread_tables[0] = plan_table(p);
	rp->thread_stops[0] = plan_stop_block(p, rp->pid, rp->pid, rp->stop_sig);
	for (size_t i = 1; i < rp->nr_threads; i++) {
		pid_t tid = rp->core->threads[i]->tid;

		rp->thread_tables[i] = plan_new_table(p);
		rp->thread_stops[i] = plan_stop_block(p, rp->pid, tid, rp->stop_sig);
		if (thread_plan(rp, p, rp->core->threads[i]) || process_plan_creds(rp, p))
			return -1;
	}
	return plan_seal(p);
}

/* Signals pending anywhere in the image: the stop signal must be none of them. */
static uint64_t image_pending(const Core *c)
{
	uint64_t m = 0;

	for (size_t i = 0; i < c->n_shared_pending; i++)
		if (c->shared_pending[i]->signo >= 1 && c->shared_pending[i]->signo <= 64)
			m |= 1ULL << (c->shared_pending[i]->signo - 1);
	for (size_t t = 0; t < c->n_threads; t++)
		for (size_t i = 0; i < c->threads[t]->n_pending; i++) {
			uint32_t s = c->threads[t]->pending[i]->signo;

			if (s >= 1 && s <= 64)
				m |= 1ULL << (s - 1);
		}
	return m;
}

static int choose_layout(struct restore_ctx *ctx, struct plan_layout *pl)
{
	const char *why;

	memset(pl, 0, sizeof(*pl));
	if (!ctx->inv->vdso)
		return 0;
	if (vdso_layout_from_image(ctx->inv->vdso, &pl->dst))
		return -1;
	why = vdso_differs(ctx->inv->vdso, &ctx->rt_vdso);
	if (why && ctx->vdso_mode == CRYO_VDSO_REMAP)
		return cr_err("--vdso=remap: the vDSO of this kernel cannot stand in for the "
			      "dumped one (kernel %s): %s", ctx->inv->kernel_release, why);
	pl->proxy = why || ctx->vdso_mode == CRYO_VDSO_PROXY;
	pl->has_vdso = true;
	pr_info("vDSO: %s%s%s", pl->proxy ? "proxy" : "remap", why ? ", because " : "",
		why ? why : "");
	return 0;
}

/* Where the running vDSO goes: near the old one for a proxy, anywhere for a move. */
static int place_vdso(struct restore_ctx *ctx, struct plan_layout *pl, struct ranges *busy,
		      uint64_t base, size_t size)
{
	uint64_t bs, be;

	if (!pl->has_vdso || !ctx->rt_vdso.present)
		return 0;
	vdso_block(&ctx->rt_vdso.layout, &bs, &be);
	if (ranges_add(busy, base, base + size))
		return -1;
	if (pl->proxy)
		pl->new_vdso = find_gap_near(busy, be - bs, pl->dst.vdso_start);
	else
		pl->temp = find_gap(busy, be - bs);
	if (pl->proxy && pl->new_vdso)
		pl->new_vdso += ctx->rt_vdso.layout.vdso_start - bs;
	if (!(pl->proxy ? pl->new_vdso : pl->temp))
		return cr_err("no room to move the vDSO");
	return 0;
}

static int prepare_plan(struct restore_ctx *ctx, struct restore_proc *rp)
{
	struct ranges busy = { 0 };
	struct plan_layout pl;
	struct plan count;
	size_t size;
	uint64_t base;
	int rc = -1;

	rp->thread_tables = calloc(rp->nr_threads, sizeof(uint64_t));
	rp->thread_stops = calloc(rp->nr_threads, sizeof(uint64_t));
	rp->thread_created = calloc(rp->nr_threads, sizeof(bool));
	rp->stop_sig = exec_pick_stop_signal(image_pending(rp->core));
	if (!rp->thread_tables || !rp->thread_stops || !rp->thread_created)
		return cr_err("out of memory");
	if (!rp->stop_sig)
		return cr_err("image: every signal is pending; cryo has none left to stop with");
	if (choose_layout(ctx, &pl))
		return -1;
	plan_count(&count);
	rp->max_reads = 0;
	if (build_plan(ctx, rp, &pl, &count))
		goto out;
	size = plan_region_size(&count);
	rp->max_reads = rp->nr_reads;
	rp->reads = calloc(rp->max_reads + 1, sizeof(*rp->reads));
	if (!rp->reads) {
		cr_err("out of memory");
		goto out;
	}
	if (busy_ranges(rp, pl.has_vdso ? &pl.dst : NULL, &busy))
		goto out;
	base = find_gap(&busy, size);
	if (!base) {
		cr_err("no room for the restore plan in the address space");
		goto out;
	}
	if (place_vdso(ctx, &pl, &busy, base, size))
		goto out;
	pr_debug("plan at 0x%lx (%zu bytes, %zu calls)", (unsigned long)base, size,
		 count.nr_calls);
	if (plan_init(&rp->plan, base, &count) || build_plan(ctx, rp, &pl, &rp->plan))
		goto out;
	rc = 0;
out:
	plan_free(&count);
	free(busy.r);
	return rc;
}

/* ---- verifying page data in parallel ---- */

/* The verifier is a thread of cryo, so it holds a TID: one the image needs would make
 * the restore fail. It says its TID first and waits for a go. */
struct verifier {
	struct restore_ctx *ctx;
	struct restore_proc *rp;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pid_t tid;
	int go;				/* 1 verify, -1 quit */
	int rc;
};

static void *verify_main(void *arg)
{
	struct verifier *v = arg;
	const PageMap *pm = v->rp->pm;

	pthread_mutex_lock(&v->lock);
	v->tid = gettid();
	pthread_cond_broadcast(&v->cond);
	while (!v->go)
		pthread_cond_wait(&v->cond, &v->lock);
	pthread_mutex_unlock(&v->lock);
	if (v->go < 0)
		return NULL;
	v->rc = img_verify_raw(&v->ctx->dir, pm->pages_file, v->rp->page_fd, v->rp->page_bytes,
			       pm->chunk_size, pm->chunk_crc32c, pm->n_chunk_crc32c);
	return NULL;
}

static bool tid_needed(const struct restore_proc *rp, pid_t tid)
{
	for (size_t i = 0; i < rp->nr_threads; i++)
		if ((pid_t)rp->core->threads[i]->tid == tid)
			return true;
	return false;
}

static void verifier_tell(struct verifier *v, int go)
{
	pthread_mutex_lock(&v->lock);
	v->go = go;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

static int start_verifier(struct verifier *v)
{
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	for (int tries = 0; tries < 64; tries++) {
		v->tid = 0;
		v->go = 0;
		if (pthread_create(&v->thread, NULL, verify_main, v))
			return cr_err("cannot start the page verifier");
		pthread_mutex_lock(&v->lock);
		while (!v->tid)
			pthread_cond_wait(&v->cond, &v->lock);
		pthread_mutex_unlock(&v->lock);
		if (!tid_needed(v->rp, v->tid)) {
			v->started = true;
			verifier_tell(v, 1);
			return 0;
		}
		/* The kernel hands out the next free number: quit, try again. */
		pr_debug("page verifier got TID %d, which the image needs", v->tid);
		verifier_tell(v, -1);
		pthread_join(v->thread, NULL);
	}
	return cr_err("cannot start the page verifier with a TID the image does not need");
}

/* ---- creating the process ---- */

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

static void holder_of(pid_t tid, char *comm, size_t len, pid_t *tgid, char *state)
{
	struct proc_status st;
	char path[64];
	size_t n;
	char *txt;

	snprintf(comm, len, "?");
	*tgid = 0;
	*state = '?';
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
	}
	free(txt);
	cr_err_reset();
}

static int id_taken_error(struct restore_proc *rp, pid_t id, bool thread)
{
	char comm[64], state;
	pid_t tgid;

	holder_of(id, comm, sizeof(comm), &tgid, &state);
	if (thread)
		return cr_err("cannot restore thread %d of process %d: TID %d is in use by '%s' "
			      "(PID %d)", id, rp->pid, id, comm, tgid);
	return cr_err("cannot restore process %d: PID %d is in use by '%s'", rp->pid, id, comm);
}

#define OLD_ZOMBIE_WAIT_MS 5000

/* A PID or TID the image needs may still be held by the dumped process itself, dying
 * or not yet reaped: wait for it, a few seconds at most. */
static int wait_for_ids(struct restore_proc *rp)
{
	for (size_t i = 0; i < rp->nr_threads; i++) {
		pid_t id = rp->core->threads[i]->tid;
		struct timespec pause_ts = { 0, 2000000 };
		bool said = false;

		for (int waited = 0; waited < OLD_ZOMBIE_WAIT_MS / 2; waited++) {
			char comm[64], state;
			pid_t tgid;

			if (kill(id, 0) && errno == ESRCH)
				break;
			holder_of(id, comm, sizeof(comm), &tgid, &state);
			if (tgid != rp->pid || (state != 'Z' && state != 'X'))
				return id_taken_error(rp, id, i > 0);
			if (!said)
				pr_info("waiting for the dumped process's %s %d to be reaped",
					i ? "thread" : "zombie", id);
			said = true;
			nanosleep(&pause_ts, NULL);
		}
		if (!kill(id, 0))
			return cr_err("cannot restore process %d: %s %d of the dumped process "
				      "was not reaped within %d s", rp->pid, i ? "thread" : "PID",
				      id, OLD_ZOMBIE_WAIT_MS / 1000);
	}
	return 0;
}

static int create_task(struct restore_proc *rp)
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

	pid = sys_clone3(&args);
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
	if (ptrace(PTRACE_SETOPTIONS, rp->pid, 0,
		   (void *)(PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE | PTRACE_O_TRACESYSGOOD)))
		return cr_perr("cannot set ptrace options on %d", rp->pid);
	return 0;
}

/* The new process inherited cryo's rseq registration, which must go before its memory
 * does: the plan's first call is made that, in the task's copy of the plan, once the
 * registration is known (no round trip of its own). */
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

static int thread_index(struct restore_proc *rp, pid_t tid)
{
	for (size_t i = 1; i < rp->nr_threads; i++)
		if ((pid_t)rp->core->threads[i]->tid == tid)
			return i;
	return -1;
}

static int on_thread_created(pid_t tid, void *arg)
{
	struct restore_proc *rp = arg;
	int i = thread_index(rp, tid);

	if (i < 0)
		return cr_err("process %d created an unexpected thread %d", rp->pid, tid);
	rp->thread_created[i] = true;
	pr_debug("thread %d created", tid);
	return 0;
}

/* A table failed: say which step, and for a thread that could not be made, who holds
 * its TID. */
static int table_failed(struct restore_proc *rp, size_t first, int failed, int64_t err,
			pid_t who)
{
	const struct plan *p = &rp->plan;
	const struct plan_call *c = &p->calls[first + failed];

	if (c->nr == __NR_clone3 && err == -EEXIST) {
		const struct cr_clone_args *a = (const void *)c->args[0];

		return id_taken_error(rp, (pid_t)*(const uint64_t *)a->set_tid, true);
	}
	if (who == rp->pid)
		return cr_err("restoring process %d failed at step %d of %zu (%s): %s", rp->pid,
			      failed + 1, p->nr_calls, p->labels[first + failed],
			      strerror((int)-err));
	return cr_err("restoring thread %d failed at %s: %s", who,
		      p->labels[first + failed] ? p->labels[first + failed] : "?",
		      strerror((int)-err));
}

/* A new thread's first stop (it is traced from birth), then its own table. */
static int run_thread_table(struct restore_proc *rp, size_t i)
{
	const struct plan *p = &rp->plan;
	pid_t tid = rp->core->threads[i]->tid;
	struct user_regs_struct base;
	int status, failed;
	int64_t err;

	if (ptr_wait(tid, &status) || ptr_get_regs(tid, &base))
		return -1;
	if (exec_run_table(tid, &base, plan_runner(p), rp->thread_tables[i], rp->thread_stops[i],
			   NULL, NULL, &failed, &err)) {
		if (failed >= 0)
			table_failed(rp, (rp->thread_tables[i] - plan_table(p)) /
				     sizeof(struct plan_call), failed, err, tid);
		return -1;
	}
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

static int run_plan(struct restore_proc *rp)
{
	struct plan *p = &rp->plan;
	struct user_regs_struct base;
	int failed;
	int64_t err, ret;

	if (ptr_get_regs(rp->pid, &base) || drop_inherited_rseq(rp))
		return -1;
	if (exec_run_table(rp->pid, &base, plan_runner(p), plan_table(p), rp->thread_stops[0],
			   on_thread_created, rp, &failed, &err)) {
		if (failed >= 0 && (size_t)failed < p->nr_calls)
			table_failed(rp, 0, failed, err, rp->pid);
		return -1;
	}
	if (check_results(rp))
		return -1;
	for (size_t i = 1; i < rp->nr_threads; i++)
		if (run_thread_table(rp, i))
			return -1;
	/* It ends at a signal stop, the only place restart codes are honoured from. */
	if (exec_syscall_stop(rp->pid, &base, plan_stub(p), __NR_munmap, p->base, p->size,
			      rp->stop_sig, &ret) || ret)
		return cr_err("cannot unmap the restore plan in process %d", rp->pid);
	return 0;
}

static void kill_created(struct restore_proc *rp)
{
	int status;

	if (!rp->created)
		return;
	kill(rp->pid, SIGKILL);
	/* Every thread we traced owes us its exit notification. */
	for (size_t i = rp->nr_threads; i-- > 1;)
		if (rp->thread_created && rp->thread_created[i])
			while (waitpid(rp->core->threads[i]->tid, &status, __WALL) < 0 &&
			       errno == EINTR)
				;
	while (waitpid(rp->pid, &status, __WALL) < 0 && errno == EINTR)
		;
	rp->created = false;
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

static int setup_fd_base(struct restore_ctx *ctx, const Core *core)
{
	struct rlimit rl;
	uint32_t max = 2;

	for (size_t i = 0; i < core->n_fds; i++) {
		if (core->fds[i]->fd >= CR_MAX_FDS)
			return cr_err("image: fd %u is out of range", core->fds[i]->fd);
		if (core->fds[i]->fd > max)
			max = core->fds[i]->fd;
	}
	ctx->fd_base = max + 1;
	ctx->next_fd = ctx->fd_base;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	return 0;
}

static void restore_free(struct restore_ctx *ctx, struct restore_proc *rp)
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
	if (rp->page_fd > 0)
		close(rp->page_fd);
	if (rp->core)
		core__free_unpacked(rp->core, NULL);
	if (rp->pm)
		page_map__free_unpacked(rp->pm, NULL);
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
	img_dir_close(&ctx->dir, true);
}

static int prepare(struct restore_ctx *ctx, struct restore_proc *rp, bool trusted)
{
	if (load_images(ctx, rp) || trust_image(&ctx->trust, &ctx->dir, trusted) ||
	    trust_check_creds(&ctx->trust, rp->pid, rp->core->creds) ||
	    setup_fd_base(ctx, rp->core) || vdso_runtime(&ctx->rt_vdso))
		return -1;
	ctx->creds = rp->core->creds;
	ctx->tree_pids = ctx->tree->procs[0]->tids;
	ctx->nr_tree_pids = ctx->tree->procs[0]->n_tids;
	if (files_open_all(ctx) || mem_prepare_shmem(ctx) || mem_restore_prepare(rp))
		return -1;
	rp->page_fd = restore_inherit_fd(ctx, rp->page_fd, rp->pm->pages_file);
	return rp->page_fd < 0 ? -1 : 0;
}

/* A process dumped in a group stop goes back into it: the stop signal is queued while
 * every thread is held, so each enters the stop as it is let go, before running. */
static int requeue_group_stop(struct restore_proc *rp)
{
	uint32_t sig = rp->ctx->tree->procs[0]->stop_signal;

	if (!rp->ctx->tree->procs[0]->has_stop_signal || !sig)
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

static int release(struct restore_proc *rp, const struct cryo_restore_opts *opts)
{
	for (size_t i = 0; i < rp->nr_threads; i++)
		if (thread_finish(rp, rp->core->threads[i]->tid, rp->core->threads[i]))
			return -1;
	if (requeue_group_stop(rp))
		return -1;
	if (opts->pidfile && write_pidfile(opts->pidfile, rp->pid))
		return -1;
	for (size_t i = 1; i < rp->nr_threads; i++)
		if (ptr_detach(rp->core->threads[i]->tid, 0))
			return -1;
	return ptr_detach(rp->pid, 0);
}

int cryo_restore(const struct cryo_restore_opts *opts, pid_t *root)
{
	struct restore_ctx ctx;
	struct restore_proc rp;
	struct verifier v;
	uint64_t chld;
	int rc = -1;

	cr_err_reset();
	memset(&ctx, 0, sizeof(ctx));
	memset(&rp, 0, sizeof(rp));
	memset(&v, 0, sizeof(v));
	rp.ctx = &ctx;
	rp.page_fd = -1;
	rp.proxy_fds[0] = rp.proxy_fds[1] = rp.proxy_fds[2] = -1;
	ctx.detach = opts->detach;
	ctx.shell_job = opts->shell_job;
	ctx.ignore_cpu = opts->ignore_cpu;
	ctx.vdso_mode = opts->vdso;
	ctx.file_validation = opts->file_validation;
	ctx.inherit = opts->inherit;
	ctx.nr_inherit = opts->nr_inherit;
	if (!opts->dir)
		return cr_err("no image directory given (-D)");
	if (img_dir_open(&ctx.dir, opts->dir))
		return -1;
	rmt_begin(&chld);
	if (prepare(&ctx, &rp, opts->trust_image))
		goto out;
	/* The plan is placed from cryo's own maps: map it before the verifier thread
	 * starts mapping anything. */
	if (prepare_plan(&ctx, &rp) || wait_for_ids(&rp))
		goto out;
	v.ctx = &ctx;
	v.rp = &rp;
	if (start_verifier(&v))
		goto out;
	pr_info("creating process %d", rp.pid);
	if (create_task(&rp) || run_plan(&rp))
		goto out;
	pthread_join(v.thread, NULL);
	v.started = false;
	if (v.rc || process_restore_oom_score(rp.core, rp.pid) || release(&rp, opts))
		goto out;
	rp.created = false;
	*root = rp.pid;
	pr_info("process %d restored", rp.pid);
	rc = 0;
out:
	if (v.started)
		pthread_join(v.thread, NULL);
	if (rc)
		kill_created(&rp);
	restore_free(&ctx, &rp);
	rmt_end(chld);
	return rc;
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
	while (waitpid(root, &status, 0) < 0) {
		if (errno != EINTR)
			return cr_perr("waiting for process %d", root);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}
