/* Open files: the shared file table, each process's fds, cwd and root, and the files
 * its memory maps. Dump refuses any fd it cannot reopen faithfully; restore opens
 * every file once in cryo and the task dup3()s them into place. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/kcmp.h>
#include <sys/epoll.h>

#include "buildid.h"
#include "cryo.h"
#include "files.h"
#include "process.h"
#include "log.h"
#include "sys.h"

/* Character devices that are the same everywhere and carry no state. */
static const char *const stateless_devs[] = {
	"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
};

/* Open flags that describe how a file was opened, without one-shot creation flags. */
#define KEEP_FLAGS (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECT | \
		    O_NOATIME | O_DIRECTORY | O_NOFOLLOW | O_LARGEFILE | O_PATH)

static int table_push(struct file_table *ft, FileEntry **out)
{
	FileEntry *e;

	if (ft->nr == ft->cap) {
		size_t cap = ft->cap ? ft->cap * 2 : 32;
		FileEntry **n = realloc(ft->files, cap * sizeof(*n));
		struct file_key *k = realloc(ft->keys, cap * sizeof(*k));

		if (n)
			ft->files = n;
		if (k)
			ft->keys = k;
		if (!n || !k)
			return cr_err("out of memory");
		ft->cap = cap;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return cr_err("out of memory");
	file_entry__init(e);
	e->id = ft->nr + 1;
	memset(&ft->keys[ft->nr], 0, sizeof(ft->keys[0]));
	ft->files[ft->nr++] = e;
	*out = e;
	return 0;
}

static void fill_stat(FileEntry *e, const struct stat *st)
{
	e->mode = st->st_mode;
	e->size = st->st_size;
	e->mtime_sec = st->st_mtim.tv_sec;
	if (S_ISCHR(st->st_mode)) {
		e->has_rdev = 1;
		e->rdev = st->st_rdev;
	}
}

/* A mapped ELF file is recognised at restore by its build-id (and size). */
static int record_build_id(FileEntry *e, const char *path, const struct stat *st)
{
	uint8_t id[BUILDID_MAX];
	size_t len = 0;
	struct stat now;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return 0;	/* not readable by path: size and mtime decide */
	if (!fstat(fd, &now) && now.st_dev == st->st_dev && now.st_ino == st->st_ino &&
	    S_ISREG(now.st_mode) && buildid_of_fd(fd, id, &len)) {
		e->build_id.data = malloc(len);
		if (!e->build_id.data) {
			close(fd);
			return cr_err("out of memory");
		}
		memcpy(e->build_id.data, id, len);
		e->build_id.len = len;
		e->has_build_id = 1;
	}
	close(fd);
	return 0;
}

int files_add_mapped(struct file_table *ft, const char *path, const struct stat *st,
		     uint32_t flags, uint32_t *id)
{
	FileEntry *e;

	for (size_t i = 0; i < ft->nr; i++) {
		struct file_key *k = &ft->keys[i];

		if (ft->files[i]->mapped && k->dev == st->st_dev && k->ino == st->st_ino &&
		    k->flags == flags) {
			*id = ft->files[i]->id;
			return 0;
		}
	}
	if (table_push(ft, &e))
		return -1;
	e->kind = FILE_KIND__FILE_REG;
	e->path = strdup(path);
	if (!e->path)
		return cr_err("out of memory");
	e->flags = flags;
	e->has_mapped = 1;
	e->mapped = 1;
	fill_stat(e, st);
	if (record_build_id(e, path, st))
		return -1;
	ft->keys[ft->nr - 1].dev = st->st_dev;
	ft->keys[ft->nr - 1].ino = st->st_ino;
	ft->keys[ft->nr - 1].flags = flags;
	ft->keys[ft->nr - 1].fd = -1;
	*id = e->id;
	return 0;
}

/* What an fd of an unsupported kind is, for the refusal message. */
static const char *fd_kind_name(const struct stat *st, const char *link)
{
	if (S_ISFIFO(st->st_mode))
		return "a pipe or FIFO";
	if (S_ISSOCK(st->st_mode))
		return "a socket";
	if (!strncmp(link, "anon_inode:", 11))
		return "an anonymous inode (eventfd, epoll, timerfd, signalfd, ...)";
	if (S_ISCHR(st->st_mode))
		return "a character device (terminals and devices are not supported)";
	if (S_ISBLK(st->st_mode))
		return "a block device";
	return "a file of an unsupported kind";
}

static bool stateless_dev(const char *path, const struct stat *st)
{
	if (!S_ISCHR(st->st_mode))
		return false;
	for (size_t i = 0; i < CR_ARRAY_SIZE(stateless_devs); i++)
		if (!strcmp(path, stateless_devs[i]))
			return true;
	return false;
}

static int read_link(pid_t pid, const char *what, char *buf, size_t len)
{
	char path[96];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, what);
	n = readlink(path, buf, len - 1);
	if (n < 0)
		return cr_perr("cannot read %s", path);
	if ((size_t)n == len - 1)
		return cr_err("%s: path too long", path);
	buf[n] = 0;
	return 0;
}

/* The same open file description as an fd already in the table? */
static int find_shared(struct file_table *ft, pid_t pid, int fd, const struct stat *st)
{
	for (size_t i = 0; i < ft->nr; i++) {
		struct file_key *k = &ft->keys[i];

		if (k->fd < 0 || k->dev != st->st_dev || k->ino != st->st_ino)
			continue;
		if (sys_kcmp(k->pid, pid, KCMP_FILE, k->fd, fd) == 0)
			return ft->files[i]->id;
	}
	return 0;
}

static bool ends_deleted(const char *link)
{
	size_t n = strlen(link);

	return n >= 10 && !strcmp(link + n - 10, " (deleted)");
}

/* Is the path inside the dumped process's own /proc entry (or a thread's)? */
static bool in_own_proc(const struct dump_proc *p, const char *path)
{
	for (size_t i = 0; i < p->nr_threads; i++) {
		char own[32];
		size_t n = snprintf(own, sizeof(own), "/proc/%d", p->tids[i]);

		if (!strncmp(path, own, n) && (path[n] == '/' || !path[n]))
			return true;
	}
	return false;
}

/* Check that the path still names the file the fd holds. */
static int check_path(pid_t pid, int fd, const char *link, const struct stat *st)
{
	struct stat by_path;

	if (link[0] != '/')
		return cr_err("process %d: fd %d (%s) has no path", pid, fd, link);
	if (st->st_nlink == 0 && !S_ISDIR(st->st_mode))
		return cr_err("process %d: fd %d: %.*s was deleted; deleted files are not "
			      "supported yet", pid, fd, (int)(strlen(link) - (ends_deleted(link) ?
								    10 : 0)), link);
	if (stat(link, &by_path) || by_path.st_dev != st->st_dev || by_path.st_ino != st->st_ino)
		return cr_err("process %d: fd %d: %s was deleted or replaced", pid, fd, link);
	return 0;
}

/* fdinfo lists the locks held through the fd ("lock:\t1: FLOCK  ADVISORY  WRITE ...");
 * restore would silently drop them. */
static int check_locks(pid_t pid, int fd, const char *link, const char *fdinfo)
{
	const char *l = strstr(fdinfo, "\nlock:");
	char kind[16] = "";

	if (!l)
		return 0;
	if (sscanf(l, "\nlock: %*d: %15s", kind) != 1)
		strcpy(kind, "unknown kind");
	return cr_err("process %d: fd %d (%s) holds a file lock (%s); file locks are not "
		      "supported yet", pid, fd, link, kind);
}

#define EPOLL_LINK "anon_inode:[eventpoll]"

static int add_epoll_targets(struct dump_proc *p, int fd, const char *fdinfo, size_t len,
			     FileEntry *e)
{
	struct proc_epoll_target *t;
	EpollTarget *items;
	size_t n;

	if (proc_parse_epoll(fdinfo, len, &t, &n))
		return -1;
	items = calloc(n + 1, sizeof(*items));
	e->epoll_targets = calloc(n + 1, sizeof(*e->epoll_targets));
	if (!items || !e->epoll_targets) {
		free(t);
		free(items);
		return cr_err("out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		epoll_target__init(&items[i]);
		items[i].tfd = t[i].tfd;
		items[i].events = t[i].events;
		items[i].data = t[i].data;
		e->epoll_targets[i] = &items[i];
	}
	e->n_epoll_targets = n;
	if (!n)
		free(items);	/* freed through epoll_targets[0] otherwise */
	free(t);
	pr_debug("process %d: fd %d is an epoll instance watching %zu fds", p->pid, fd, n);
	return 0;
}

static int dump_one_fd(struct dump_proc *p, int fd, Fd *out)
{
	char what[64], link[4096];
	struct proc_fdinfo fi;
	struct stat st;
	FileEntry *e;
	size_t len;
	char *txt;
	bool epoll, own;
	int id;

	snprintf(what, sizeof(what), "fd/%d", fd);
	if (read_link(p->pid, what, link, sizeof(link)))
		return -1;
	snprintf(what, sizeof(what), "/proc/%d/fd/%d", p->pid, fd);
	if (stat(what, &st))
		return cr_perr("cannot stat %s", what);
	epoll = !strcmp(link, EPOLL_LINK);
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !stateless_dev(link, &st) && !epoll)
		return cr_err("process %d: fd %d is %s (%s); cryo cannot restore it", p->pid, fd,
			      fd_kind_name(&st, link), link);
	if (!epoll && check_path(p->pid, fd, link, &st))
		return -1;
	own = !epoll && in_own_proc(p, link);
	snprintf(what, sizeof(what), "fdinfo/%d", fd);
	txt = proc_read_pid_file(p->pid, what, &len);
	if (!txt)
		return -1;
	if (check_locks(p->pid, fd, link, txt) || proc_parse_fdinfo(txt, len, &fi)) {
		free(txt);
		return -1;
	}
	fd__init(out);
	out->fd = fd;
	out->cloexec = !!(fi.flags & O_CLOEXEC);
	id = find_shared(&p->ctx->files, p->pid, fd, &st);
	if (id) {
		free(txt);
		out->file_id = id;
		return 0;
	}
	if (table_push(&p->ctx->files, &e)) {
		free(txt);
		return -1;
	}
	e->kind = epoll ? FILE_KIND__FILE_EPOLL :
		  S_ISREG(st.st_mode) ? FILE_KIND__FILE_REG :
		  S_ISDIR(st.st_mode) ? FILE_KIND__FILE_DIR : FILE_KIND__FILE_CHR;
	if (epoll && add_epoll_targets(p, fd, txt, len, e)) {
		free(txt);
		return -1;
	}
	free(txt);
	e->path = strdup(link);
	if (!e->path)
		return cr_err("out of memory");
	e->flags = fi.flags & KEEP_FLAGS;
	e->pos = fi.pos;
	e->has_in_own_proc = e->in_own_proc = own;
	fill_stat(e, &st);
	p->ctx->files.keys[p->ctx->files.nr - 1] = (struct file_key){
		.dev = st.st_dev, .ino = st.st_ino, .flags = e->flags, .pid = p->pid, .fd = fd,
	};
	out->file_id = e->id;
	return 0;
}

/* cwd and root, checked like an fd: the path must still name the same directory. */
static int add_dir(struct dump_proc *p, const char *what, uint32_t *id)
{
	char link[4096], path[64];
	struct stat st, by_path;
	FileEntry *e;

	if (read_link(p->pid, what, link, sizeof(link)))
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/%s", p->pid, what);
	if (stat(path, &st))
		return cr_perr("cannot stat %s", path);
	if (link[0] != '/' || ends_deleted(link) || stat(link, &by_path) ||
	    by_path.st_dev != st.st_dev || by_path.st_ino != st.st_ino)
		return cr_err("process %d: its %s (%s) was deleted or replaced; deleted "
			      "directories are not supported yet", p->pid, what, link);
	if (table_push(&p->ctx->files, &e))
		return -1;
	e->kind = FILE_KIND__FILE_DIR;
	e->path = strdup(link);
	if (!e->path)
		return cr_err("out of memory");
	e->flags = O_PATH | O_DIRECTORY;
	e->has_in_own_proc = e->in_own_proc = in_own_proc(p, link);
	fill_stat(e, &st);
	p->ctx->files.keys[p->ctx->files.nr - 1].fd = -1;
	*id = e->id;
	return 0;
}

static int list_fds(pid_t pid, int **out, size_t *nr)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (proc_list_numbers(path, out, nr))
		return -1;
	if (*nr && (*out)[*nr - 1] >= CR_MAX_FDS) {
		int fd = (*out)[*nr - 1];

		free(*out);
		return cr_err("process %d: fd %d is beyond the %d fds cryo handles", pid, fd,
			      CR_MAX_FDS);
	}
	return 0;
}

/* A watch whose fd number was closed (or reused for another file) cannot be
 * registered again. */
static int check_epoll_targets(struct dump_proc *p)
{
	for (size_t i = 0; i < p->core.n_fds; i++) {
		const FileEntry *e = p->ctx->files.files[p->core.fds[i]->file_id - 1];

		if (e->kind != FILE_KIND__FILE_EPOLL)
			continue;
		for (size_t t = 0; t < e->n_epoll_targets; t++) {
			uint32_t tfd = e->epoll_targets[t]->tfd;
			bool found = false;

			for (size_t k = 0; k < p->core.n_fds && !found; k++)
				found = p->core.fds[k]->fd == tfd;
			if (!found)
				return cr_err("process %d: epoll fd %u watches fd %u, which is closed; "
					      "cryo cannot restore such a watch", p->pid,
					      p->core.fds[i]->fd, tfd);
		}
	}
	return 0;
}

int files_dump_fds(struct dump_proc *p)
{
	int *fds = NULL;
	size_t nr = 0;
	Fd *items;

	if (add_dir(p, "cwd", &p->core.cwd_file_id) || add_dir(p, "root", &p->core.root_file_id) ||
	    list_fds(p->pid, &fds, &nr))
		return -1;
	items = calloc(nr + 1, sizeof(*items));
	p->core.fds = calloc(nr + 1, sizeof(*p->core.fds));
	if (!items || !p->core.fds) {
		free(items);
		free(fds);
		return cr_err("out of memory");
	}
	for (size_t i = 0; i < nr; i++) {
		if (dump_one_fd(p, fds[i], &items[i])) {
			free(fds);
			free(items);
			free(p->core.fds);
			p->core.fds = NULL;
			return -1;
		}
		p->core.fds[i] = &items[i];
	}
	p->core.n_fds = nr;
	free(fds);
	if (!nr)
		free(items);
	return check_epoll_targets(p);
}

int files_write_image(struct dump_ctx *ctx)
{
	FileTable t = FILE_TABLE__INIT;

	t.files = ctx->files.files;
	t.n_files = ctx->files.nr;
	return img_write_msg(&ctx->dir, "files.img", IMAGE_KIND__IMG_FILES, &t.base);
}

void files_table_free(struct file_table *ft)
{
	for (size_t i = 0; i < ft->nr; i++) {
		if (ft->files[i]->n_epoll_targets)
			free(ft->files[i]->epoll_targets[0]);
		free(ft->files[i]->epoll_targets);
		free(ft->files[i]->build_id.data);
		free(ft->files[i]->path);
		free(ft->files[i]);
	}
	free(ft->files);
	free(ft->keys);
	memset(ft, 0, sizeof(*ft));
}

/* ---- restore ---- */

const FileEntry *file_by_id(const FileTable *ft, uint32_t id)
{
	if (!ft || id == 0 || id > ft->n_files || ft->files[id - 1]->id != id)
		return NULL;
	return ft->files[id - 1];
}

int restore_inherit_fd(struct restore_ctx *ctx, int fd, const char *what)
{
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, ctx->next_fd);

	close(fd);
	if (nfd < 0)
		return cr_perr("cannot keep %s open for the restored process (fd %d)", what,
			       ctx->next_fd);
	ctx->next_fd = nfd + 1;
	return nfd;
}

static int open_epoll(const FileEntry *e)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	if (fd < 0)
		return cr_perr("cannot create an epoll instance");
	if ((e->flags & O_NONBLOCK) && fcntl(fd, F_SETFL, O_NONBLOCK)) {
		close(fd);
		return cr_perr("cannot make an epoll instance non-blocking");
	}
	return fd;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n && i < 20; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* A file the process maps must be the one it had: same build (build-id) and size,
 * or, without a build-id, same size and mtime. */
static int validate_mapped(const FileEntry *e, int fd, const struct stat *st, int mode)
{
	uint8_t id[BUILDID_MAX];
	char was[48] = "", now[48] = "none";
	size_t len = 0;

	if ((uint64_t)st->st_size != e->size)
		return cr_err("%s, which the process maps, changed since the dump: %llu bytes, "
			      "%llu at the dump", e->path, (unsigned long long)st->st_size,
			      (unsigned long long)e->size);
	if (mode == CRYO_VALIDATE_FILESIZE)
		return 0;
	if (e->has_build_id) {
		if (buildid_of_fd(fd, id, &len) && len == e->build_id.len &&
		    !memcmp(id, e->build_id.data, len))
			return 0;
		hex(e->build_id.data, e->build_id.len, was);
		if (len)
			hex(id, len, now);
		return cr_err("%s, which the process maps, is another build: build-id %s, %s "
			      "at the dump", e->path, now, was);
	}
	if (st->st_mtim.tv_sec != e->mtime_sec)
		return cr_err("%s, which the process maps and which has no build-id, changed "
			      "since the dump: modified at %lld, %lld at the dump "
			      "(--file-validation=filesize checks the size only)", e->path,
			      (long long)st->st_mtim.tv_sec, (long long)e->mtime_sec);
	return 0;
}

static int open_entry(const FileEntry *e, int mode)
{
	int flags = (e->flags & KEEP_FLAGS) | O_CLOEXEC | O_NOCTTY;
	struct stat st;
	int fd;

	if (e->kind == FILE_KIND__FILE_EPOLL)
		return open_epoll(e);
	if (e->kind == FILE_KIND__FILE_DIR && (e->flags & O_PATH))
		flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
	fd = open(e->path, flags);
	if (fd < 0)
		return cr_perr("cannot open %s", e->path);
	if (fstat(fd, &st)) {
		close(fd);
		return cr_perr("cannot stat %s", e->path);
	}
	if ((st.st_mode & S_IFMT) != (e->mode & S_IFMT)) {
		close(fd);
		return cr_err("%s is no longer the kind of file it was at dump", e->path);
	}
	if (e->kind == FILE_KIND__FILE_CHR && (!e->has_rdev || st.st_rdev != e->rdev)) {
		close(fd);
		return cr_err("%s is a different device than at dump", e->path);
	}
	if (e->mapped && validate_mapped(e, fd, &st, mode)) {
		close(fd);
		return -1;
	}
	if (e->pos && e->kind != FILE_KIND__FILE_CHR &&
	    lseek(fd, e->pos, SEEK_SET) != (off_t)e->pos) {
		close(fd);
		return cr_perr("cannot seek %s to %llu", e->path, (unsigned long long)e->pos);
	}
	return fd;
}

static int open_files(struct restore_ctx *ctx);
static bool own_proc_path_ok(const char *path, const uint32_t *pids, size_t n);

/* As the restored process: it gets no file it could not open itself. One it held but
 * cannot open (opened before it gave up privileges) is opened with cryo's rights when
 * the image is cryo's own, never when it belongs to another user. */
static int open_as_process(struct restore_ctx *ctx, const FileEntry *e)
{
	int fd = open_entry(e, ctx->file_validation);

	if (fd >= 0 || (errno != EACCES && errno != EPERM) || ctx->trust.limited)
		return fd;
	cr_err_reset();
	trust_unbecome(&ctx->trust);
	fd = open_entry(e, ctx->file_validation);
	if (trust_become(&ctx->trust, ctx->creds)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fd >= 0)
		pr_info("%s: opened with cryo's rights; the process held it but cannot open it "
			"itself", e->path);
	return fd;
}

int files_open_all(struct restore_ctx *ctx)
{
	FileTable *ft = ctx->files;
	int rc = -1;

	ctx->file_fds = malloc((ft->n_files + 1) * sizeof(int));
	if (!ctx->file_fds)
		return cr_err("out of memory");
	for (size_t i = 0; i < ft->n_files; i++)
		ctx->file_fds[i] = -1;
	if (trust_become(&ctx->trust, ctx->creds))
		goto out;
	rc = open_files(ctx);
out:
	trust_unbecome(&ctx->trust);
	return rc;
}

static int open_files(struct restore_ctx *ctx)
{
	FileTable *ft = ctx->files;

	for (size_t i = 0; i < ft->n_files; i++) {
		FileEntry *e = ft->files[i];
		int fd;

		if (e->id != i + 1)
			return cr_err("image: file table entry %zu has id %u", i, e->id);
		if (e->kind < FILE_KIND__FILE_REG || e->kind > FILE_KIND__FILE_EPOLL || !e->path[0])
			return cr_err("image: file table entry %u is invalid", e->id);
		if (e->in_own_proc) {
			if (!own_proc_path_ok(e->path, ctx->tree_pids, ctx->nr_tree_pids))
				return cr_err("image: file %u (%s) is not under the process's own "
					      "/proc", e->id, e->path);
			continue;	/* the task opens it (files_plan) */
		}
		fd = open_as_process(ctx, e);
		if (fd < 0)
			return -1;
		fd = restore_inherit_fd(ctx, fd, e->path);
		if (fd < 0)
			return -1;
		ctx->file_fds[i] = fd;
	}
	return 0;
}

/* An in_own_proc path from the image must really be under one of its PIDs. */
static bool own_proc_path_ok(const char *path, const uint32_t *pids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char own[32];
		size_t len = snprintf(own, sizeof(own), "/proc/%u", pids[i]);

		if (!strncmp(path, own, len) && (path[len] == '/' || !path[len]) &&
		    !strstr(path, "/.."))
			return true;
	}
	return false;
}

int files_fd(struct restore_ctx *ctx, uint32_t id)
{
	if (!file_by_id(ctx->files, id) || ctx->file_fds[id - 1] < 0)
		return cr_err("image: reference to unknown file %u", id);
	return ctx->file_fds[id - 1];
}

static bool has_fd(const Core *core, uint32_t fd)
{
	for (size_t i = 0; i < core->n_fds; i++)
		if (core->fds[i]->fd == fd)
			return true;
	return false;
}

/* Watches are keyed by fd number, so they are registered in the task, once its fd
 * table is in place, through the first fd holding each epoll instance. */
static int plan_epoll_targets(struct restore_proc *rp, struct plan *p)
{
	const Core *core = rp->core;

	for (size_t i = 0; i < core->n_fds; i++) {
		const FileEntry *e = file_by_id(rp->ctx->files, core->fds[i]->file_id);
		bool first = true;

		if (!e || e->kind != FILE_KIND__FILE_EPOLL)
			continue;
		for (size_t k = 0; k < i; k++)
			if (core->fds[k]->file_id == core->fds[i]->file_id)
				first = false;
		if (!first)
			continue;
		for (size_t t = 0; t < e->n_epoll_targets; t++) {
			const EpollTarget *et = e->epoll_targets[t];
			struct epoll_event ev = { .events = et->events, .data.u64 = et->data };

			if (!has_fd(core, et->tfd))
				return cr_err("image: epoll fd %u watches fd %u, which the process "
					      "does not have", core->fds[i]->fd, et->tfd);
			plan_call(p, "registering an epoll watch", 0, __NR_epoll_ctl,
				  core->fds[i]->fd, EPOLL_CTL_ADD, et->tfd,
				  plan_data(p, &ev, sizeof(ev)), 0, 0);
		}
	}
	return 0;
}

static void plan_dir(struct restore_proc *rp, struct plan *p, const FileEntry *e, int fd,
		     const char *label)
{
	if (e->in_own_proc)
		plan_call(p, label, 0, __NR_chdir, plan_data(p, e->path, strlen(e->path) + 1), 0,
			  0, 0, 0, 0);
	else
		plan_call(p, label, 0, __NR_fchdir, fd, 0, 0, 0, 0, 0);
	(void)rp;
}

/* Files under the process's own /proc: opened by the task, landing on fd 0 (every
 * fd below the inherited ones is closed by then), moved to their number. */
static void plan_own_proc(struct restore_proc *rp, struct plan *p)
{
	const Core *core = rp->core;

	for (size_t i = 0; i < core->n_fds; i++) {
		const Fd *f = core->fds[i];
		const FileEntry *e = file_by_id(rp->ctx->files, f->file_id);

		if (!e || !e->in_own_proc)
			continue;
		plan_call(p, "opening a file of the process's own /proc", 0, __NR_openat, AT_FDCWD,
			  plan_data(p, e->path, strlen(e->path) + 1),
			  (e->flags & KEEP_FLAGS) | O_NOCTTY, 0, 0, 0);
		if (e->pos)
			plan_call(p, "seeking a file of the process's own /proc", PLAN_MAY_FAIL,
				  __NR_lseek, 0, e->pos, SEEK_SET, 0, 0, 0);
		if (f->fd == 0)
			continue;
		plan_call(p, "installing an fd", 0, __NR_dup3, 0, f->fd,
			  f->cloexec ? O_CLOEXEC : 0, 0, 0, 0);
		plan_call(p, "installing an fd", 0, __NR_close, 0, 0, 0, 0, 0, 0);
	}
}

int files_plan(struct restore_proc *rp, struct plan *p)
{
	struct restore_ctx *ctx = rp->ctx;
	const Core *core = rp->core;
	const FileEntry *root = file_by_id(ctx->files, core->root_file_id);
	const FileEntry *cwd = file_by_id(ctx->files, core->cwd_file_id);
	int cwd_fd = cwd && cwd->in_own_proc ? 0 : files_fd(ctx, core->cwd_file_id), root_fd;

	if (cwd_fd < 0 || !root || !cwd)
		return cr_err("image: process %u has no valid cwd or root", core->pid);
	root_fd = root->in_own_proc ? 0 : files_fd(ctx, core->root_file_id);
	if (root_fd < 0)
		return -1;
	if (strcmp(root->path, "/")) {
		plan_dir(rp, p, root, root_fd, "changing to the root");
		plan_call(p, "chroot", 0, __NR_chroot, plan_data(p, ".", 2), 0, 0, 0, 0, 0);
	}
	plan_dir(rp, p, cwd, cwd_fd, "changing to the cwd");
	plan_call(p, "closing inherited fds", 0, __NR_close_range, 0, ctx->fd_base - 1, 0, 0, 0, 0);
	if (process_plan_loginuid(rp, p))
		return -1;
	plan_own_proc(rp, p);
	for (size_t i = 0; i < core->n_fds; i++) {
		const Fd *f = core->fds[i];
		const FileEntry *e = file_by_id(ctx->files, f->file_id);
		int src;

		if (f->fd >= (uint32_t)ctx->fd_base)
			return cr_err("image: fd %u out of range", f->fd);
		if (e && e->in_own_proc)
			continue;
		src = files_fd(ctx, f->file_id);
		if (src < 0)
			return -1;
		plan_call(p, "installing an fd", 0, __NR_dup3, src, f->fd,
			  f->cloexec ? O_CLOEXEC : 0, 0, 0, 0);
	}
	return plan_epoll_targets(rp, p);
}

/* The last call of a plan: drop every fd cryo handed down. */
void files_plan_close_inherited(struct restore_ctx *ctx, struct plan *p)
{
	plan_call(p, "closing cryo's fds", 0, __NR_close_range, ctx->fd_base, ~0U, 0, 0, 0, 0);
}
