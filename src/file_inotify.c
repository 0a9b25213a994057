/* inotify: each watch by its wd, the path of what it watches (found from fdinfo's file
 * handle) and its mask. Events queued at dump cannot be read without taking them from
 * the process, so an instance with events queued is refused. Restore makes the
 * instance in cryo and gives each watch its wd again by stepping the wd counter. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fd_kind.h"
#include "files.h"
#include "log.h"

/* Past this, stepping the wd counter at restore costs too much. */
#define INOTIFY_MAX_WD (1 << 20)

static bool inotify_match(const struct fd_probe *pr)
{
	return !strcmp(pr->link, "anon_inode:inotify");
}

static int mount_point_of(dev_t dev, char *out, size_t len)
{
	size_t n;
	char *txt = proc_read_file("/proc/self/mountinfo", &n);
	int rc;

	if (!txt)
		return -1;
	rc = proc_mount_of_dev(txt, n, major(dev), minor(dev), out, len);
	free(txt);
	return rc;
}

/* The path of a watched inode, through its file handle; it must name that inode. */
static int watch_path(const struct proc_inotify_watch *w, dev_t dev, char *path, size_t len)
{
	struct {
		struct file_handle fh;
		unsigned char bytes[128];
	} h;
	char mnt[4096], self[64];
	struct stat st;
	int mfd, fd;
	ssize_t n;

	if (mount_point_of(dev, mnt, sizeof(mnt)) != 1)
		return -1;
	mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return -1;
	h.fh.handle_bytes = w->handle_bytes;
	h.fh.handle_type = w->handle_type;
	memcpy(h.fh.f_handle, w->handle, w->handle_bytes);
	fd = open_by_handle_at(mfd, &h.fh, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	close(mfd);
	if (fd < 0)
		return -1;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	n = readlink(self, path, len - 1);
	close(fd);
	if (n <= 0 || (size_t)n == len - 1)
		return -1;
	path[n] = 0;
	if (path[0] != '/' || lstat(path, &st) || st.st_dev != dev || st.st_ino != w->ino)
		return -1;
	return 0;
}

static int add_watch(InotifyFile *in, const struct proc_inotify_watch *w, const char *path,
		     dev_t dev)
{
	InotifyWatch *iw = calloc(1, sizeof(*iw));

	if (iw)
		inotify_watch__init(iw);
	if (!iw || !(iw->path = strdup(path))) {
		free(iw);
		return cr_err("out of memory");
	}
	iw->wd = w->wd;
	iw->mask = w->mask;
	iw->dev = dev;
	iw->ino = w->ino;
	in->watches[in->n_watches++] = iw;
	return 0;
}

static int queued_events(const struct fd_probe *pr)
{
	int copy = file_fd_dup(pr->p->pid, pr->fd), queued = 0;

	if (copy < 0)
		return -1;
	if (ioctl(copy, FIONREAD, &queued))
		queued = -1;
	close(copy);
	if (queued < 0)
		return cr_perr("process %d: fd %d (inotify): cannot tell what it has queued",
			       pr->p->pid, pr->fd);
	if (queued)
		return cr_err("process %d: fd %d (inotify) has %d bytes of events queued, not "
			      "read yet; queued inotify events cannot be saved", pr->p->pid,
			      pr->fd, queued);
	return 0;
}

static int watch_cmp(const void *a, const void *b)
{
	const InotifyWatch *x = *(InotifyWatch *const *)a, *y = *(InotifyWatch *const *)b;

	return (x->wd > y->wd) - (x->wd < y->wd);
}

static int dump_watches(const struct fd_probe *pr, InotifyFile *in,
			const struct proc_inotify_watch *w, size_t nr)
{
	char path[4096];

	in->watches = calloc(nr ? nr : 1, sizeof(*in->watches));
	if (!in->watches)
		return cr_err("out of memory");
	for (size_t i = 0; i < nr; i++) {
		dev_t dev = makedev(w[i].sdev >> 20, w[i].sdev & 0xfffff);

		if (w[i].wd > INOTIFY_MAX_WD)
			return cr_err("process %d: fd %d (inotify): watch %d is beyond the %d "
				      "watch numbers cryo restores", pr->p->pid, pr->fd, w[i].wd,
				      INOTIFY_MAX_WD);
		if (watch_path(&w[i], dev, path, sizeof(path)))
			return cr_err("process %d: fd %d (inotify): watch %d is on inode %llu of "
				      "device %u:%u, which has no path any more (or is not "
				      "reachable here)", pr->p->pid, pr->fd, w[i].wd,
				      (unsigned long long)w[i].ino, major(dev), minor(dev));
		if (add_watch(in, &w[i], path, dev))
			return -1;
	}
	qsort(in->watches, in->n_watches, sizeof(*in->watches), watch_cmp);
	return 0;
}

static int inotify_dump(const struct fd_probe *pr, FileEntry *e)
{
	InotifyFile *in = calloc(1, sizeof(*in));
	struct proc_inotify_watch *w;
	size_t nr;
	int rc;

	if (!in)
		return cr_err("out of memory");
	inotify_file__init(in);
	e->inotify = in;
	e->kind = FILE_KIND__FILE_INOTIFY;
	e->flags = pr->fi->flags & (O_ACCMODE | O_NONBLOCK);
	if (queued_events(pr))
		return -1;
	if (proc_parse_inotify(pr->fdinfo, pr->fdinfo_len, &w, &nr))
		return cr_err("process %d: fd %d (inotify): cannot read its watches", pr->p->pid,
			      pr->fd);
	rc = dump_watches(pr, in, w, nr);
	free(w);
	return rc;
}

static void inotify_free(FileEntry *e)
{
	if (!e->inotify)
		return;
	for (size_t i = 0; i < e->inotify->n_watches; i++) {
		free(e->inotify->watches[i]->path);
		free(e->inotify->watches[i]);
	}
	free(e->inotify->watches);
	free(e->inotify);
}

/* Watches in rising wd order, each wd in range, each path absolute. */
static int inotify_check(const FileEntry *e)
{
	const InotifyFile *in = e->inotify;
	int last = 0;

	if (!in || (e->flags & ~(uint32_t)(O_ACCMODE | O_NONBLOCK)))
		return cr_err("image: inotify file %u is invalid", e->id);
	for (size_t i = 0; i < in->n_watches; i++) {
		const InotifyWatch *w = in->watches[i];

		if (w->wd <= last || w->wd > INOTIFY_MAX_WD || w->path[0] != '/' ||
		    !(w->mask & IN_ALL_EVENTS))
			return cr_err("image: inotify file %u: watch %u is invalid", e->id, (unsigned)i);
		last = w->wd;
	}
	return 0;
}

/* An inode none of the watches is on, to step the wd counter with. */
static const char *spare_inode(const InotifyFile *in)
{
	static const char *const spares[] = { "/", "/dev/null", "/proc" };
	struct stat st;

	for (size_t s = 0; s < sizeof(spares) / sizeof(spares[0]); s++) {
		bool used = stat(spares[s], &st) != 0;

		for (size_t i = 0; i < in->n_watches && !used; i++)
			used = in->watches[i]->dev == st.st_dev && in->watches[i]->ino == st.st_ino;
		if (!used)
			return spares[s];
	}
	return NULL;
}

/* The instance hands out wds one after the other: burn those below `wd`. */
static int step_to(int fd, int wd, const char *spare, const FileEntry *e)
{
	for (;;) {
		int got = inotify_add_watch(fd, spare, IN_DELETE_SELF);

		if (got < 0)
			return cr_perr("inotify file %u: cannot step to watch %d", e->id, wd);
		if (got == wd - 1 || got >= wd) {
			inotify_rm_watch(fd, got);
			return got == wd - 1 ? 0 : cr_err("inotify file %u: watch %d was passed",
							  e->id, wd);
		}
		inotify_rm_watch(fd, got);
	}
}

static int add_one(int fd, const InotifyWatch *w, const char *spare, int last,
		   const FileEntry *e)
{
	struct stat st;
	int got;

	if (w->wd > last + 1 && step_to(fd, w->wd, spare, e))
		return -1;
	if (lstat(w->path, &st) || st.st_dev != w->dev || st.st_ino != w->ino)
		return cr_err("inotify file %u watches %s, which is not the file it was at the "
			      "dump", e->id, w->path);
	got = inotify_add_watch(fd, w->path, w->mask | (S_ISLNK(st.st_mode) ? IN_DONT_FOLLOW : 0));
	if (got < 0)
		return cr_perr("cannot watch %s again", w->path);
	if (got != w->wd)
		return cr_err("watching %s again gave watch %d, not %d", w->path, got, w->wd);
	return 0;
}

/* What stepping queued (IN_IGNORED) goes; so do events of the instant the watches
 * were being made, which are as if they came before it existed. */
static void drain(int fd)
{
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static int inotify_open(struct restore_ctx *ctx, const FileEntry *e)
{
	const InotifyFile *in = e->inotify;
	const char *spare = spare_inode(in);
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK), last = 0;

	(void)ctx;
	if (fd < 0)
		return cr_perr("cannot create an inotify instance");
	if (!spare) {
		cr_err("inotify file %u: no inode to step watch numbers with", e->id);
		goto fail;
	}
	for (size_t i = 0; i < in->n_watches; i++) {
		if (add_one(fd, in->watches[i], spare, last, e))
			goto fail;
		last = in->watches[i]->wd;
	}
	drain(fd);
	if (!(e->flags & O_NONBLOCK) && fcntl(fd, F_SETFL, 0)) {
		cr_perr("cannot make an inotify instance blocking");
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static bool inotify_handles(FileKind k)
{
	return k == FILE_KIND__FILE_INOTIFY;
}

const struct fd_kind inotify_kind = {
	.name = "an inotify instance",
	.handles = inotify_handles,
	.match = inotify_match,
	.dump = inotify_dump,
	.check = inotify_check,
	.open = inotify_open,
	.free = inotify_free,
};
