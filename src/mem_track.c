/* Iterative dumps: which pages a process wrote since the parent image. Each tracked
 * VMA is registered with a userfaultfd made in the process's mm, in asynchronous
 * write-protect mode; PAGEMAP_SCAN reports the pages written since the last scan and
 * protects them again in the same call. Between rounds a tracker process holds the
 * userfaultfds. Restore reads each page from the newest image of the chain holding it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "fd_kind.h"
#include "log.h"
#include "mem_track.h"
#include "sys.h"
#include "util.h"

/* Linux 6.7 (the headers are 6.1). */
#define CR_UFFD_FEATURE_WP_UNPOPULATED (1ULL << 13)
#define CR_UFFD_FEATURE_WP_ASYNC (1ULL << 15)
#define CR_PM_SCAN_WP_MATCHING (1ULL << 0)
#define CR_PM_SCAN_CHECK_WPASYNC (1ULL << 1)
#define TRACKER_COMM "cryo-track"
#define TRACK_FD_BASE 3			/* the tracker's fds: uffd, pidfd, uffd, ... */
#define MAX_CHAIN 64

struct track_ctx {
	bool pre_dump, arm;		/* arm: leave tracking for the next round */
	struct img_dir parent;		/* the parent image (dirfd -1: none) */
	const char *parent_given;	/* as --prev-images-dir said: relative to -D */
	Inventory *pinv;
	int tracker_pidfd;		/* the parent's tracker, -1 if gone or none */
	pid_t tracker;
	uint64_t root_start;
	char boot_id[40];
	pid_t new_tracker;		/* left for the next round by this dump */
	uint64_t new_tracker_start;
	int commit_fd;			/* a byte here: the image naming it is complete */
};

struct track_proc {
	PageMap *ppm;			/* the parent's page map (NULL: none, all pages) */
	int uffd;			/* cryo's copy of the process's userfaultfd, or -1 */
	bool uffd_ours;			/* made in this round (not the tracker's) */
	bool *registered;		/* per VMA: registered by the tracker's uffd */
	bool *has_pages;		/* per VMA: its pages are saved (it is armed) */
	struct runs covered;		/* the parent's runs, both kinds */
	struct runs ptracked;		/* the ranges the parent armed */
	struct runs tracked;		/* armed by this round */
	struct runs late;		/* a pre-dump's data runs, read after */
	bool keep_late;
};

/* ---- pure helpers ---- */

int track_from_parent(const struct runs *present, const struct runs *written,
		      const struct runs *covered, struct runs *out)
{
	struct runs kept = { 0 }, outside = { 0 };
	int rc = -1;

	/* kept: present and not written; out: kept less what the parent lacks. */
	if (cow_subtract(present, written, &kept) || cow_subtract(&kept, covered, &outside) ||
	    cow_subtract(&kept, &outside, out))
		goto out;
	rc = 0;
out:
	free(kept.r);
	free(outside.r);
	return rc;
}

uint64_t track_parse_starttime(const char *stat)
{
	const char *p = strrchr(stat, ')');

	/* After the comm: state is field 3, starttime field 22. */
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

static uint64_t starttime_of(pid_t pid)
{
	size_t len;
	char *txt = proc_read_pid_file(pid, "stat", &len);
	uint64_t t = txt ? track_parse_starttime(txt) : 0;

	free(txt);
	return t;
}

static int read_boot_id(char *out, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	if (!f || !fgets(out, len, f)) {
		if (f)
			fclose(f);
		return cr_perr("cannot read the boot id");
	}
	fclose(f);
	out[strcspn(out, "\n")] = 0;
	return 0;
}

/* ---- the parent image ---- */

/* dir relative to base's directory unless absolute; into buf. */
static int join_dir(const char *base, const char *dir, char *buf, size_t len)
{
	int n = dir[0] == '/' ? snprintf(buf, len, "%s", dir) :
				snprintf(buf, len, "%s/%s", base, dir);

	return n < 0 || (size_t)n >= len ? cr_err("parent image path too long: %s", dir) : 0;
}

/* Same owner as the image naming it, same tree, same boot. */
static int check_parent(const struct img_dir *child, const struct img_dir *parent,
			const Inventory *inv, uint32_t root_pid, uint64_t root_start,
			const char *boot_id)
{
	struct stat a, b;

	if (fstat(child->dirfd, &a) || fstat(parent->dirfd, &b))
		return cr_perr("cannot stat %s", parent->path);
	if (a.st_uid != b.st_uid)
		return cr_err("parent image %s belongs to another user than %s", parent->path,
			      child->path);
	if (!inv->predump || inv->root_pid != root_pid ||
	    inv->predump->root_start_time != root_start || strcmp(inv->predump->boot_id, boot_id))
		return cr_err("parent image %s is not of this process tree (root %u)",
			      parent->path, root_pid);
	return 0;
}

static int open_tracker(struct track_ctx *t)
{
	const PreDumpInfo *pd = t->pinv->predump;
	char comm[32] = "";
	size_t len;
	char *txt;

	t->tracker_pidfd = -1;
	if (!pd->tracker_pid)
		return 0;
	t->tracker_pidfd = sys_pidfd_open(pd->tracker_pid, 0);
	if (t->tracker_pidfd < 0) {
		pr_debug("tracker %u: %s", pd->tracker_pid, strerror(errno));
		return 0;
	}
	txt = proc_read_pid_file(pd->tracker_pid, "comm", &len);
	if (txt)
		snprintf(comm, sizeof(comm), "%.*s", (int)strcspn(txt, "\n"), txt);
	free(txt);
	cr_err_reset();
	if (strcmp(comm, TRACKER_COMM) || starttime_of(pd->tracker_pid) != pd->tracker_start_time) {
		pr_debug("process %u is not the tracker (comm '%s')", pd->tracker_pid, comm);
		close(t->tracker_pidfd);
		t->tracker_pidfd = -1;
		return 0;
	}
	t->tracker = pd->tracker_pid;
	return 0;
}

int track_dump_start(struct dump_ctx *ctx, const struct cryo_dump_opts *opts)
{
	struct track_ctx *t;
	char path[4096];

	if (!opts->pre_dump && !opts->track_mem && !opts->prev_images_dir)
		return 0;
	if (opts->stream || !opts->dir)
		return cr_err("%s needs an image directory (-D), not --stream",
			      opts->pre_dump ? "pre-dump" : "memory tracking");
	if (opts->prev_images_dir && !opts->pre_dump && !opts->track_mem)
		return cr_err("--prev-images-dir needs --track-mem (the pages written since the "
			      "parent image are found by tracking)");
	t = calloc(1, sizeof(*t));
	if (!t)
		return cr_err("out of memory");
	ctx->track = t;
	t->parent.dirfd = -1;
	t->tracker_pidfd = -1;
	t->commit_fd = -1;
	t->pre_dump = opts->pre_dump;
	t->arm = opts->pre_dump || (opts->track_mem && opts->leave_running);
	t->root_start = starttime_of(opts->pid);
	if (!t->root_start)
		return cr_err("cannot read the start time of process %d", opts->pid);
	if (read_boot_id(t->boot_id, sizeof(t->boot_id)))
		return -1;
	if (!opts->prev_images_dir)
		return 0;
	t->parent_given = opts->prev_images_dir;
	if (join_dir(opts->dir, opts->prev_images_dir, path, sizeof(path)) ||
	    img_dir_open(&t->parent, path))
		return -1;
	t->pinv = img_read_inventory(&t->parent);
	if (!t->pinv || check_parent(&ctx->dir, &t->parent, t->pinv, opts->pid, t->root_start,
				     t->boot_id) || open_tracker(t))
		return -1;
	if (t->tracker_pidfd < 0)
		pr_warn("the memory tracker of %s is gone: every page is dumped", path);
	return 0;
}

/* ---- per process ---- */

static bool link_is_uffd(const char *path)
{
	char link[64];
	ssize_t n = readlink(path, link, sizeof(link) - 1);

	if (n < 0)
		return false;
	link[n] = 0;
	return !strcmp(link, "anon_inode:[userfaultfd]");
}

static bool fd_is_uffd(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return link_is_uffd(path);
}

/* The tracker's pidfd next to the uffd names this process. */
static bool tracker_fd_names(pid_t tracker, uint32_t fd, pid_t pid)
{
	char what[32], want[32];
	size_t len;
	char *txt, *at;
	bool ok;

	snprintf(what, sizeof(what), "fdinfo/%u", fd + 1);
	txt = proc_read_pid_file(tracker, what, &len);
	if (!txt) {
		cr_err_reset();
		return false;
	}
	snprintf(want, sizeof(want), "\nPid:\t%d\n", pid);
	at = strstr(txt, want);
	ok = at != NULL;
	free(txt);
	return ok;
}

static int take_tracker_uffd(struct dump_proc *p, struct track_ctx *t, struct track_proc *tp)
{
	uint32_t fd = tp->ppm->track_fd;

	if (t->tracker_pidfd < 0 || !tp->ppm->has_track_fd)
		return 0;
	if (!tracker_fd_names(t->tracker, fd, p->pid))
		return 0;
	tp->uffd = sys_pidfd_getfd(t->tracker_pidfd, fd);
	if (tp->uffd < 0)
		return cr_perr("cannot take the userfaultfd of process %d from its tracker %d",
			       p->pid, t->tracker);
	if (!fd_is_uffd(tp->uffd))
		return cr_err("tracker %d: fd %u is not a userfaultfd", t->tracker, fd);
	return 0;
}

/* The process's own userfaultfds are refused: its registrations would be cryo's. */
static int refuse_uffd_user(struct dump_proc *p)
{
	char path[64];
	int *fds = NULL, rc = 0;
	size_t nr = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", p->pid);
	if (proc_list_numbers(path, &fds, &nr))
		return -1;
	for (size_t i = 0; i < nr && !rc; i++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", p->pid, fds[i]);
		if (link_is_uffd(path))
			rc = cr_err("process %d: fd %d is a userfaultfd; the memory of a process "
				    "that uses userfaultfd cannot be tracked", p->pid, fds[i]);
	}
	free(fds);
	return rc;
}

static bool dir_has(const struct img_dir *d, const char *name)
{
	for (size_t i = 0; i < d->nr_files; i++)
		if (!strcmp(d->files[i].name, name))
			return true;
	return false;
}

static int runs_from_pb(struct runs *rs, PageRun **pb, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (runs_add_new(rs, pb[i]->vaddr, pb[i]->nr_pages))
			return -1;
	return 0;
}

static int load_parent_pagemap(struct dump_proc *p, struct track_ctx *t, struct track_proc *tp)
{
	char name[64];

	snprintf(name, sizeof(name), "pagemap-%d.img", p->pid);
	if (!dir_has(&t->parent, name))
		return 0;	/* a process new since: all its pages */
	tp->ppm = img_read_msg(&t->parent, name, IMAGE_KIND__IMG_PAGEMAP, &page_map__descriptor);
	if (!tp->ppm)
		return -1;
	return runs_from_pb(&tp->covered, tp->ppm->runs, tp->ppm->n_runs) ||
	       runs_from_pb(&tp->ptracked, tp->ppm->tracked, tp->ppm->n_tracked) ||
	       take_tracker_uffd(p, t, tp);
}

int track_proc_start(struct dump_proc *p)
{
	struct track_ctx *t = p->ctx->track;
	struct track_proc *tp;

	if (!t)
		return 0;
	tp = calloc(1, sizeof(*tp));
	if (!tp)
		return cr_err("out of memory");
	p->track = tp;
	tp->uffd = -1;
	tp->registered = calloc(p->vmas.nr + 1, sizeof(bool));
	tp->has_pages = calloc(p->vmas.nr + 1, sizeof(bool));
	if (!tp->registered || !tp->has_pages)
		return cr_err("out of memory");
	if (refuse_uffd_user(p) || (t->parent.dirfd >= 0 && load_parent_pagemap(p, t, tp)))
		return -1;
	if (tp->uffd < 0)
		return 0;
	/* With the tracker's uffd, write protection is cryo's: the flag is not the
	 * process's, and goes neither into the image nor to mem_classify. */
	for (size_t i = 0; i < p->vmas.nr; i++) {
		struct proc_vma *v = &p->vmas.v[i];

		if ((v->vm_flags & VMF(UW)) && !(v->vm_flags & (VMF(UM) | VMF(UI)))) {
			v->vm_flags &= ~VMF(UW);
			tp->registered[i] = true;
		}
	}
	return 0;
}

static int uffd_api(int uffd)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = CR_UFFD_FEATURE_WP_ASYNC | CR_UFFD_FEATURE_WP_UNPOPULATED,
	};

	if (ioctl(uffd, UFFDIO_API, &api))
		return cr_perr("userfaultfd: asynchronous write protection is not available "
			       "(Linux 6.7 or later)");
	return 0;
}

/* The lowest fd number the process does not use: the one its userfaultfd gets. */
static int lowest_free_fd(pid_t pid, int *out)
{
	char path[64];
	int *fds = NULL;
	size_t nr = 0, i;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (proc_list_numbers(path, &fds, &nr))
		return -1;
	for (i = 0; i < nr && fds[i] == (int)i; i++)
		;
	*out = (int)i;
	free(fds);
	return 0;
}

/* Made by the process in its own mm: its leader runs userfaultfd and stays parked in
 * cryo's program while cryo takes a copy; what follows the stop, closing the
 * process's fd, runs whatever becomes of cryo: a living one lets the thread go there
 * when it gives the tree back (borrow_rescue), a dead one by dying. Last of the
 * process's collection: nothing borrows the leader after it. */
static int make_uffd(struct dump_proc *p, struct track_proc *tp)
{
	struct rtable tab;
	int64_t got;
	int fd, rc;

	if (lowest_free_fd(p->pid, &fd) ||
	    borrow_open(&p->borrow, p->pid, &p->vmas, p->rts, p->nr_threads) ||
	    borrow_find_data(&p->borrow, &p->vmas, p->rts, p->nr_threads, 0))
		return -1;
	rtable_init(&tab, &p->borrow);
	rtable_add(&tab, PLAN_MAY_FAIL, __NR_userfaultfd,
		   O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY, 0, 0, 0, 0, 0);
	rtable_add_after(&tab, __NR_close, fd, 0, 0);
	rc = rtable_run_parked(&tab, &p->rts[0]);
	got = rc ? -1 : rtable_result(&tab, 0);
	rtable_free(&tab);
	if (rc)
		return -1;
	if (got < 0)
		return cr_err("process %d: userfaultfd failed: %s", p->pid, strerror((int)-got));
	if (got != fd)
		return cr_err("process %d: its userfaultfd is fd %lld, not %d", p->pid,
			      (long long)got, fd);
	tp->uffd = file_fd_dup(p->pid, fd);
	return tp->uffd < 0 ? -1 : uffd_api(tp->uffd);
}

/* ---- pages ---- */

/* The written pages of [start, end), write-protected again by the same scan. */
static int scan_written(int pm_fd, uint64_t start, uint64_t end, struct runs *out)
{
	struct cr_page_region regions[512];
	struct cr_pm_scan_arg arg;

	while (start < end) {
		long n;

		memset(&arg, 0, sizeof(arg));
		arg.size = sizeof(arg);
		arg.flags = CR_PM_SCAN_WP_MATCHING | CR_PM_SCAN_CHECK_WPASYNC;
		arg.start = start;
		arg.end = end;
		arg.vec = (uint64_t)regions;
		arg.vec_len = CR_ARRAY_SIZE(regions);
		arg.category_mask = CR_PAGE_IS_WRITTEN;
		arg.return_mask = CR_PAGE_IS_WRITTEN;
		n = ioctl(pm_fd, CR_PAGEMAP_SCAN, &arg);
		if (n < 0)
			return cr_perr("cannot scan the written pages of 0x%lx-0x%lx",
				       (unsigned long)start, (unsigned long)end);
		for (long i = 0; i < n; i++)
			if (runs_add(out, regions[i].start,
				     (regions[i].end - regions[i].start) / CR_PAGE_SIZE))
				return -1;
		if (arg.walk_end <= start)
			break;
		start = arg.walk_end;
	}
	return 0;
}

static bool inside(const struct runs *rs, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < rs->nr; i++)
		if (rs->r[i].start <= start && rs->r[i].start + rs->r[i].nr_pages * CR_PAGE_SIZE >= end)
			return true;
	return false;
}

static int uffd_register(int uffd, uint64_t start, uint64_t end)
{
	struct uffdio_register reg = {
		.range = { .start = start, .len = end - start },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	return ioctl(uffd, UFFDIO_REGISTER, &reg);
}

/* cryo check: a userfaultfd of cryo's own, a page written after arming seen by a
 * PAGEMAP_SCAN of its own pagemap, then protected again. */
int track_probe(void)
{
	struct runs w1 = { 0 }, w2 = { 0 };
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	volatile uint8_t *m = mmap(NULL, 4 * CR_PAGE_SIZE, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t a = (uint64_t)m;
	int ok = 0;

	if (uffd < 0 || pm < 0 || m == MAP_FAILED)
		goto out;
	m[0] = 1;
	if (uffd_api(uffd) || uffd_register(uffd, a, a + 4 * CR_PAGE_SIZE) ||
	    scan_written(pm, a, a + 4 * CR_PAGE_SIZE, &w1))
		goto out;
	m[2 * CR_PAGE_SIZE] = 1;
	if (scan_written(pm, a, a + 4 * CR_PAGE_SIZE, &w2))
		goto out;
	ok = w2.nr == 1 && w2.r[0].start == a + 2 * CR_PAGE_SIZE && w2.r[0].nr_pages == 1;
out:
	cr_err_reset();
	free(w1.r);
	free(w2.r);
	if (m != MAP_FAILED)
		munmap((void *)m, 4 * CR_PAGE_SIZE);
	if (pm >= 0)
		close(pm);
	if (uffd >= 0)
		close(uffd);
	return ok;
}

int track_vma_pages(struct dump_proc *p, int pm_fd, size_t i, struct runs *data,
		    struct runs *in_parent)
{
	struct track_ctx *t = p->ctx->track;
	struct track_proc *tp = p->track;
	const struct proc_vma *v = &p->vmas.v[i];
	struct runs written = { 0 }, rest = { 0 };
	bool tracked;
	int rc = -1;

	if (!t || !tp)
		return 0;
	/* Writes were tracked all along: registered since the parent armed it. Its
	 * scan protects them again for the next round; the others are armed once the
	 * pages are known (track_arm). */
	tp->has_pages[i] = true;
	tracked = tp->ppm && tp->registered[i] && inside(&tp->ptracked, v->start, v->end);
	if (tp->registered[i] && scan_written(pm_fd, v->start, v->end, &written))
		goto out;
	if (!tracked) {
		rc = 0;
		goto out;
	}
	if (track_from_parent(data, &written, &tp->covered, in_parent) ||
	    cow_subtract(data, in_parent, &rest))
		goto out;
	free(data->r);
	*data = rest;
	rest.r = NULL;
	rc = 0;
out:
	free(written.r);
	free(rest.r);
	return rc;
}

const struct runs *track_late(const struct dump_proc *p)
{
	const struct track_ctx *t = p->ctx->track;
	const struct track_proc *tp = p->track;

	if (!t || !tp || !t->pre_dump)
		return NULL;
	return &tp->late;
}

int track_keep_late(struct dump_proc *p, struct runs *all)
{
	struct track_proc *tp = p->track;
	struct runs copy = { 0 };

	/* The page map keeps `all` too: a copy for the late read. */
	for (size_t i = 0; i < all->nr; i++)
		if (runs_add_new(&copy, all->r[i].start, all->r[i].nr_pages)) {
			free(copy.r);
			return -1;
		}
	tp->late = copy;
	return 0;
}

PageRun **track_runs_to_pb(const struct runs *data, const struct runs *parent, size_t *n)
{
	size_t total = data->nr + parent->nr, i = 0, k = 0;
	PageRun **out = calloc(total ? total : 1, sizeof(*out));
	PageRun *items = calloc(total ? total : 1, sizeof(*items));

	if (!out || !items) {
		free(out);
		free(items);
		cr_err("out of memory");
		return NULL;
	}
	out[0] = items;		/* runs_pb_free frees it */
	for (size_t j = 0; j < total; j++) {
		bool from_parent = k < parent->nr &&
				   (i == data->nr || parent->r[k].start < data->r[i].start);
		const struct run *r = from_parent ? &parent->r[k++] : &data->r[i++];

		page_run__init(&items[j]);
		items[j].vaddr = r->start;
		items[j].nr_pages = r->nr_pages;
		items[j].has_in_parent = items[j].in_parent = from_parent;
		out[j] = &items[j];
	}
	*n = total;
	return out;
}

/* Register and protect what the tracker's fd does not cover yet. */
static int arm_vmas(struct dump_proc *p, struct track_proc *tp)
{
	struct runs junk = { 0 };
	char path[64];
	int pm_fd, rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", p->pid);
	pm_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pm_fd < 0)
		return cr_perr("cannot open %s", path);
	for (size_t i = 0; i < p->vmas.nr && !rc; i++) {
		const struct proc_vma *v = &p->vmas.v[i];

		if (!tp->has_pages[i])
			continue;
		if (!tp->registered[i] && uffd_register(tp->uffd, v->start, v->end)) {
			pr_debug("process %d: 0x%lx-0x%lx not tracked: %s", p->pid,
				 (unsigned long)v->start, (unsigned long)v->end, strerror(errno));
			continue;
		}
		junk.nr = 0;
		rc = (!tp->registered[i] && scan_written(pm_fd, v->start, v->end, &junk)) ||
		     runs_add(&tp->tracked, v->start, (v->end - v->start) / CR_PAGE_SIZE);
	}
	close(pm_fd);
	free(junk.r);
	return rc ? -1 : 0;
}

int track_arm(struct dump_proc *p)
{
	struct track_ctx *t = p->ctx->track;
	struct track_proc *tp = p->track;

	if (!t || !tp || !t->arm)
		return 0;
	if ((tp->uffd < 0 && make_uffd(p, tp)) || arm_vmas(p, tp))
		return -1;
	if (!tp->tracked.nr)
		return 0;
	p->pagemap.tracked = runs_to_pb(&tp->tracked);
	if (!p->pagemap.tracked)
		return -1;
	p->pagemap.n_tracked = tp->tracked.nr;
	return 0;
}

/* ---- the tracker ---- */

/* The tracker's life: hold fds TRACK_FD_BASE.. (uffd, pidfd of its process, ...)
 * until each process ends, or a later round ends it. It never touches them. The fd
 * after them is a socket: a byte from it says the image naming the tracker is complete,
 * its end without one that cryo failed or died (the tracking is dropped). */
static void tracker_main(size_t n)
{
	struct pollfd pfd[n ? n : 1];
	size_t left = n;
	sigset_t none;
	char ok;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (read(TRACK_FD_BASE + 2 * n, &ok, 1) != 1)
		_exit(0);
	close(TRACK_FD_BASE + 2 * n);
	for (size_t i = 0; i < n; i++) {
		pfd[i].fd = TRACK_FD_BASE + 2 * i + 1;
		pfd[i].events = POLLIN;
	}
	while (left) {
		if (poll(pfd, n, -1) < 0)
			continue;
		for (size_t i = 0; i < n; i++)
			if (pfd[i].fd >= 0 && pfd[i].revents) {
				close(pfd[i].fd - 1);
				close(pfd[i].fd);
				pfd[i].fd = -1;
				left--;
			}
	}
	_exit(0);
}

/* In the child: fds[] moved to TRACK_FD_BASE.., everything else closed. Through
 * numbers above all of them first, so that no move overwrites one still to move. */
static void tracker_setup_fds(const int *fds, size_t n)
{
	int high = TRACK_FD_BASE + (int)n, nul = open("/dev/null", O_RDWR);

	for (size_t i = 0; i < n; i++)
		if (fds[i] >= high)
			high = fds[i] + 1;
	if (nul >= high)
		high = nul + 1;
	for (size_t i = 0; i < n; i++)
		if (dup3(fds[i], high + (int)i, 0) < 0)
			_exit(1);
	for (int fd = 0; fd < 3; fd++)
		dup2(nul, fd);
	close_range(3, high - 1, 0);
	for (size_t i = 0; i < n; i++)
		if (dup3(high + (int)i, TRACK_FD_BASE + (int)i, 0) < 0)
			_exit(1);
	close_range(TRACK_FD_BASE + n, ~0U, 0);
}

/* Fork the tracker (through a child that exits: no one's child but init's). It
 * reports its PID once its fds are in place: the image names it only then, and the
 * next round (or anyone) finding it by that PID finds its uffds where the page maps
 * say. Reported before, a tracker still moving its fds when cryo ended looked like
 * none to the next round, which then refused the still registered VMAs. fds[] has
 * room for two more (the commit socket, the pipe). */
static pid_t tracker_spawn(int *fds, size_t n, int *commit_fd)
{
	int pipefd[2], commit[2], st;
	pid_t mid, pid = 0;

	/* A socket: sending to a tracker gone fails rather than raising SIGPIPE. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, commit))
		return cr_perr("socketpair");
	if (pipe2(pipefd, O_CLOEXEC)) {
		close(commit[0]);
		close(commit[1]);
		return cr_perr("pipe");
	}
	fds[n] = commit[0];
	fds[n + 1] = pipefd[1];
	mid = fork();
	if (mid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		close(commit[0]);
		close(commit[1]);
		return cr_perr("cannot start the memory tracker");
	}
	if (!mid) {
		setsid();
		pid = fork();
		if (pid)
			_exit(pid < 0);	/* failed: cryo reads no PID */
		/* Named and its fds in place before cryo learns its PID: the next
		 * round checks the name and reads the fds. */
		prctl(PR_SET_NAME, TRACKER_COMM, 0, 0, 0);
		tracker_setup_fds(fds, n + 2);
		pid = getpid();
		if (write(TRACK_FD_BASE + n + 1, &pid, sizeof(pid)) != sizeof(pid))
			_exit(1);
		close(TRACK_FD_BASE + n + 1);
		tracker_main(n / 2);
	}
	close(commit[0]);
	*commit_fd = commit[1];
	close(pipefd[1]);
	if (read(pipefd[0], &pid, sizeof(pid)) != sizeof(pid) || pid <= 0)
		pid = 0;
	close(pipefd[0]);
	while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
		;
	return pid > 0 ? pid : cr_err("cannot start the memory tracker");
}

static int start_tracker(struct dump_ctx *ctx, struct track_ctx *t)
{
	int *fds = calloc(2 * ctx->nr_procs + 2, sizeof(int));
	size_t n = 0;
	int rc = -1;

	if (!fds)
		return cr_err("out of memory");
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		struct dump_proc *p = ctx->procs[i];
		struct track_proc *tp = p->track;
		int pidfd;

		if (p->zombie || !tp || tp->uffd < 0 || !p->pagemap.n_tracked)
			continue;
		pidfd = sys_pidfd_open(p->pid, 0);
		if (pidfd < 0) {
			cr_perr("cannot open a pidfd of process %d", p->pid);
			goto out;
		}
		p->pagemap.has_track_fd = 1;
		p->pagemap.track_fd = TRACK_FD_BASE + n;
		fds[n++] = tp->uffd;
		fds[n++] = pidfd;
	}
	if (!n) {
		rc = 0;
		goto out;
	}
	t->new_tracker = tracker_spawn(fds, n, &t->commit_fd);
	if (t->new_tracker > 0)
		t->new_tracker_start = starttime_of(t->new_tracker);
	rc = t->new_tracker > 0 && t->new_tracker_start ? 0 : -1;
out:
	for (size_t i = 1; i < n; i += 2)
		close(fds[i]);
	free(fds);
	return rc;
}

int track_dump_arm(struct dump_ctx *ctx)
{
	struct track_ctx *t = ctx->track;

	return t && t->arm ? start_tracker(ctx, t) : 0;
}

int track_dump_inventory(struct dump_ctx *ctx, Inventory *inv)
{
	static PreDumpInfo pd;
	struct track_ctx *t = ctx->track;

	if (!t)
		return 0;
	pre_dump_info__init(&pd);
	pd.has_pre_dump = t->pre_dump;
	pd.pre_dump = t->pre_dump;
	pd.root_start_time = t->root_start;
	pd.boot_id = t->boot_id;
	pd.has_tracker_pid = pd.has_tracker_start_time = t->new_tracker > 0;
	pd.tracker_pid = t->new_tracker;
	pd.tracker_start_time = t->new_tracker_start;
	inv->predump = &pd;
	/* As given, so that the chain can move as a whole. */
	if (t->parent.dirfd >= 0 && t->tracker_pidfd >= 0)
		inv->parent_dir = (char *)t->parent_given;
	return 0;
}

void track_dump_end(struct dump_ctx *ctx, bool ok)
{
	struct track_ctx *t = ctx->track;

	if (!t)
		return;
	/* The new tracker goes on; the old one's part is over (its fds live on in the
	 * new one). A failed round ends the new one instead, and the parent stays valid. */
	if (t->commit_fd >= 0 && ok && send(t->commit_fd, "", 1, MSG_NOSIGNAL) != 1)
		pr_warn("the memory tracker %d did not start: the next round dumps every page",
			t->new_tracker);
	if (t->commit_fd >= 0)
		close(t->commit_fd);
	if (ok && t->tracker_pidfd >= 0)
		syscall(__NR_pidfd_send_signal, t->tracker_pidfd, SIGKILL, NULL, 0);
	if (!ok && t->new_tracker > 0)
		kill(t->new_tracker, SIGKILL);
	if (t->tracker_pidfd >= 0)
		close(t->tracker_pidfd);
	if (t->pinv)
		inventory__free_unpacked(t->pinv, NULL);
	if (t->parent.dirfd >= 0)
		img_dir_close(&t->parent, true);
	free(t);
	ctx->track = NULL;
}

void track_proc_free(struct dump_proc *p)
{
	struct track_proc *tp = p->track;

	if (!tp)
		return;
	if (tp->uffd >= 0)
		close(tp->uffd);
	if (tp->ppm)
		page_map__free_unpacked(tp->ppm, NULL);
	runs_pb_free(p->pagemap.tracked);
	free(tp->registered);
	free(tp->has_pages);
	free(tp->covered.r);
	free(tp->ptracked.r);
	free(tp->tracked.r);
	free(tp->late.r);
	free(tp);
	p->track = NULL;
}

/* ---- restore ---- */

/* The parent images of a restore, opened as deep as some process needs. */
struct chain {
	struct img_dir dirs[MAX_CHAIN];
	Inventory *invs[MAX_CHAIN];
	size_t depth;
};

int track_check_inventory(struct restore_ctx *ctx)
{
	const Inventory *inv = ctx->inv;

	if (inv->predump && inv->predump->pre_dump)
		return cr_err("%s is a pre-dump (memory only): restore the dump made with "
			      "--prev-images-dir naming it", ctx->dir.path);
	if (inv->parent_dir && !inv->predump)
		return cr_err("%s: the inventory names a parent image but no tree identity",
			      ctx->dir.path);
	return 0;
}

/* Level k of the chain (1: the image's parent), opened and checked. */
static int chain_open(struct restore_ctx *ctx, size_t k)
{
	struct chain *c = ctx->chain;
	const struct img_dir *child;
	const Inventory *cinv;
	char path[4096];

	if (!c) {
		c = ctx->chain = calloc(1, sizeof(*c));
		if (!c)
			return cr_err("out of memory");
	}
	while (c->depth < k) {
		struct img_dir *d = &c->dirs[c->depth];

		if (c->depth + 1 >= MAX_CHAIN)
			return cr_err("%s: a chain of more than %d images", ctx->dir.path, MAX_CHAIN);
		child = c->depth ? &c->dirs[c->depth - 1] : &ctx->dir;
		cinv = c->depth ? c->invs[c->depth - 1] : ctx->inv;
		if (!cinv->parent_dir)
			return cr_err("%s: pages are in a parent image, but it names none",
				      child->path);
		if (join_dir(child->path, cinv->parent_dir, path, sizeof(path)) ||
		    img_dir_open(d, path))
			return -1;
		c->invs[c->depth] = img_read_inventory(d);
		c->depth++;
		if (!c->invs[c->depth - 1] ||
		    check_parent(child, d, c->invs[c->depth - 1], ctx->inv->root_pid,
				 ctx->inv->predump->root_start_time, ctx->inv->predump->boot_id))
			return -1;
	}
	return 0;
}

static int add_seg(struct restore_proc *rp, size_t *cap, uint64_t vaddr, uint64_t len,
		   uint32_t src, uint64_t off)
{
	struct page_seg *last = rp->nr_segs ? &rp->segs[rp->nr_segs - 1] : NULL;

	if (last && last->src == src && last->vaddr + last->len == vaddr &&
	    last->off + last->len == off) {
		last->len += len;
		return 0;
	}
	if (cr_grow(&rp->segs, cap, rp->nr_segs + 1, sizeof(*rp->segs), 256))
		return -1;
	rp->segs[rp->nr_segs++] = (struct page_seg){ vaddr, len, off, src };
	return 0;
}

/* Runs of a parent's page map: sorted, aligned, apart; its file's size. */
static int check_parent_runs(const struct img_dir *d, const PageMap *pm, uint64_t *bytes)
{
	uint64_t end = 0, total = 0;

	for (size_t i = 0; i < pm->n_runs; i++) {
		const PageRun *r = pm->runs[i];

		if (r->vaddr % CR_PAGE_SIZE || !r->nr_pages || r->vaddr < end ||
		    r->nr_pages > (CR_TASK_SIZE - r->vaddr) / CR_PAGE_SIZE)
			return cr_err("%s: page run %zu is invalid", d->path, i);
		end = r->vaddr + r->nr_pages * CR_PAGE_SIZE;
		if (!r->in_parent)
			total += r->nr_pages;
	}
	if (total != pm->total_pages)
		return cr_err("%s: page map counts %llu pages, its runs %llu", d->path,
			      (unsigned long long)pm->total_pages, (unsigned long long)total);
	*bytes = total * CR_PAGE_SIZE;
	return 0;
}

static int run_offsets(struct page_src *s)
{
	uint64_t off = 0;

	s->offs = malloc((s->pm->n_runs + 1) * sizeof(*s->offs));
	if (!s->offs)
		return cr_err("out of memory");
	for (size_t i = 0; i < s->pm->n_runs; i++) {
		s->offs[i] = off;
		if (!s->pm->runs[i]->in_parent)
			off += s->pm->runs[i]->nr_pages * CR_PAGE_SIZE;
	}
	return 0;
}

/* The first run ending after vaddr (runs sorted and apart). */
static size_t first_run_after(const PageMap *pm, uint64_t vaddr)
{
	size_t lo = 0, hi = pm->n_runs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const PageRun *r = pm->runs[mid];

		if (r->vaddr + r->nr_pages * CR_PAGE_SIZE <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The process's page source at chain level k (0: its own image). */
static int source_at(struct restore_proc *rp, size_t k)
{
	struct chain *c;
	struct page_src *s;
	PageMap *pm;
	char name[64];

	if (k < rp->nr_srcs)
		return 0;
	if (chain_open(rp->ctx, k))
		return -1;
	c = rp->ctx->chain;
	snprintf(name, sizeof(name), "pagemap-%d.img", rp->pid);
	pm = img_read_msg(&c->dirs[k - 1], name, IMAGE_KIND__IMG_PAGEMAP, &page_map__descriptor);
	if (!pm)
		return -1;
	s = realloc(rp->srcs, (k + 1) * sizeof(*rp->srcs));
	if (!s) {
		page_map__free_unpacked(pm, NULL);
		return cr_err("out of memory");
	}
	rp->srcs = s;
	rp->nr_srcs = k + 1;
	s = &rp->srcs[k];
	*s = (struct page_src){ &c->dirs[k - 1], pm, -1, 0, NULL };
	if (check_parent_runs(s->dir, pm, &s->bytes) || run_offsets(s))
		return -1;
	s->fd = img_open_raw(s->dir, pm->pages_file, s->bytes);
	if (s->fd < 0)
		return -1;
	s->fd = restore_inherit_fd(rp->ctx, s->fd, pm->pages_file);
	return s->fd < 0 ? -1 : 0;
}

/* [vaddr, vaddr + len) from level k of the chain, each part from the newest image
 * that has its data. */
static int resolve(struct restore_proc *rp, size_t *cap, size_t k, uint64_t vaddr,
		   uint64_t len)
{
	const struct page_src *s;
	uint64_t end = vaddr + len;

	if (k >= MAX_CHAIN)
		return cr_err("image: a chain of more than %d images", MAX_CHAIN);
	if (source_at(rp, k))
		return -1;
	s = &rp->srcs[k];
	for (size_t i = first_run_after(s->pm, vaddr); i < s->pm->n_runs && vaddr < end; i++) {
		const PageRun *r = s->pm->runs[i];
		uint64_t rend = r->vaddr + r->nr_pages * CR_PAGE_SIZE;
		uint64_t to = rend < end ? rend : end;

		if (r->vaddr > vaddr)
			break;
		if (r->in_parent ? resolve(rp, cap, k + 1, vaddr, to - vaddr) :
				   add_seg(rp, cap, vaddr, to - vaddr, k,
					   s->offs[i] + (vaddr - r->vaddr)))
			return -1;
		s = &rp->srcs[k];	/* resolve may move the array */
		vaddr = to;
	}
	if (vaddr < end)
		return cr_err("%s: page 0x%llx of process %d is in no image of the chain",
			      rp->srcs[k].dir->path, (unsigned long long)vaddr, rp->pid);
	return 0;
}

int track_restore_sources(struct restore_proc *rp)
{
	const PageMap *pm = rp->pm;
	size_t cap = 0;
	uint64_t off = 0;

	rp->srcs = calloc(1, sizeof(*rp->srcs));
	if (!rp->srcs)
		return cr_err("out of memory");
	rp->srcs[0] = (struct page_src){ &rp->ctx->dir, pm, rp->page_fd, rp->page_bytes, NULL };
	rp->nr_srcs = 1;
	for (size_t i = 0; i < pm->n_runs; i++) {
		const PageRun *r = pm->runs[i];
		uint64_t len = r->nr_pages * CR_PAGE_SIZE;

		if (r->in_parent ? resolve(rp, &cap, 1, r->vaddr, len) :
				   add_seg(rp, &cap, r->vaddr, len, 0, off))
			return -1;
		off += r->in_parent ? 0 : len;
	}
	return 0;
}

void track_restore_free(struct restore_proc *rp)
{
	for (size_t i = 0; i < rp->nr_srcs; i++)
		free(rp->srcs[i].offs);
	for (size_t i = 1; i < rp->nr_srcs; i++) {
		if (rp->srcs[i].fd >= 0)
			close(rp->srcs[i].fd);
		if (rp->srcs[i].pm)
			page_map__free_unpacked((PageMap *)rp->srcs[i].pm, NULL);
	}
	free(rp->srcs);
	free(rp->segs);
	rp->srcs = NULL;
	rp->segs = NULL;
}

void track_restore_ctx_free(struct restore_ctx *ctx)
{
	struct chain *c = ctx->chain;

	if (!c)
		return;
	for (size_t i = 0; i < c->depth; i++) {
		if (c->invs[i])
			inventory__free_unpacked(c->invs[i], NULL);
		img_dir_close(&c->dirs[i], true);
	}
	free(c);
	ctx->chain = NULL;
}
