/* The fd table: the image's file table shared by every process, each process's fds
 * (kcmp finds fds sharing an open file description), its cwd and root; each kind of
 * file behind fd_kind.h does the rest, file_locks.c the locks held through them.
 * Restore opens every file once in cryo, above the fds the task will use, and the
 * task dup3()s them into place. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "cryo.h"
#include "fd_kind.h"
#include "file_locks.h"
#include "files.h"
#include "log.h"
#include "process.h"
#include "sys.h"
#include "util.h"

/* Every kind there is: a new kind is one more line here. */
static const struct fd_kind *const kinds[] = {
	/* O_PATH first (nothing is open through it); mqueue and memfd before path: they
	 * are regular files to stat. */
	&opath_kind, &mqueue_kind, &memfd_kind, &path_kind, &epoll_kind, &pipe_kind,
	&eventfd_kind, &signalfd_kind, &timerfd_kind, &pidfd_kind, &inotify_kind, &tty_kind,
	&unix_kind, &tcp_kind, &netlink_kind, &packet_kind, &raw_kind, &udp_kind,
};

static const struct fd_kind *kind_of(FileKind k)
{
	for (size_t i = 0; i < CR_ARRAY_SIZE(kinds); i++)
		if (kinds[i]->handles(k))
			return kinds[i];
	return NULL;
}

/* ---- shared by the kinds ---- */

int file_table_push(struct file_table *ft, FileEntry **out)
{
	size_t cap = ft->cap;
	FileEntry *e;

	if (cr_grow(&ft->files, &cap, ft->nr + 1, sizeof(*ft->files), 32) ||
	    cr_grow(&ft->keys, &ft->cap, ft->nr + 1, sizeof(*ft->keys), 32))
		return -1;
	e = calloc(1, sizeof(*e));
	if (!e)
		return cr_err("out of memory");
	file_entry__init(e);
	e->id = ft->nr + 1;
	memset(&ft->keys[ft->nr], 0, sizeof(ft->keys[0]));
	ft->keys[ft->nr].fd = -1;
	ft->files[ft->nr++] = e;
	*out = e;
	return 0;
}

void file_key_set(struct file_table *ft, const struct stat *st, uint32_t flags, pid_t pid, int fd)
{
	ft->keys[ft->nr - 1] = (struct file_key){
		.dev = st->st_dev, .ino = st->st_ino, .flags = flags, .pid = pid, .fd = fd,
	};
}

bool file_link_deleted(const char *link)
{
	size_t n = strlen(link);

	return n >= 10 && !strcmp(link + n - 10, " (deleted)");
}

bool file_in_own_proc(const struct dump_proc *p, const char *path)
{
	for (size_t i = 0; i < p->nr_threads; i++) {
		char own[32];
		size_t n = snprintf(own, sizeof(own), "/proc/%d", p->tids[i]);

		if (!strncmp(path, own, n) && (path[n] == '/' || !path[n]))
			return true;
	}
	return false;
}

uint32_t file_find_shared(struct file_table *ft, pid_t pid, int fd, const struct stat *st)
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

int file_fd_flags(pid_t pid, int fd, uint32_t *flags)
{
	struct proc_fdinfo fi;
	char what[32];
	size_t len;
	char *txt;
	int rc;

	snprintf(what, sizeof(what), "fdinfo/%d", fd);
	txt = proc_read_pid_file(pid, what, &len);
	if (!txt)
		return -1;
	rc = proc_parse_fdinfo(txt, len, &fi);
	free(txt);
	*flags = fi.flags;
	return rc;
}

int file_fd_dup(pid_t pid, int fd)
{
	int pidfd = sys_pidfd_open(pid, 0), copy;

	if (pidfd < 0)
		return cr_perr("cannot open a pidfd of process %d", pid);
	copy = sys_pidfd_getfd(pidfd, fd);
	close(pidfd);
	if (copy < 0)
		return cr_perr("cannot take a copy of fd %d of process %d", fd, pid);
	return copy;
}

bool file_sock_is(const struct fd_probe *pr, int domain, int *type, int *protocol)
{
	socklen_t l = sizeof(int);
	int fd, d = -1, t = -1, p = -1;

	if (!S_ISSOCK(pr->st->st_mode) || strncmp(pr->link, "socket:[", 8))
		return false;
	fd = file_fd_dup(pr->p->pid, pr->fd);
	if (fd < 0) {
		cr_err_reset();		/* the kind's dump says why, if it matters */
		return false;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &d, &l) || d != domain ||
	    (l = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &l)) ||
	    (l = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &p, &l)))
		d = -1;
	close(fd);
	if (d != domain)
		return false;
	if (type)
		*type = t;
	if (protocol)
		*protocol = p;
	return true;
}

bool file_tree_has(const struct dump_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (ctx->procs[i]->pid == pid)
			return true;
	return false;
}

static int scan_fds_of(pid_t pid, int (*visit)(pid_t, int, const char *, void *), void *arg)
{
	char dir[64];
	struct dirent *de;
	int rc = 0;
	DIR *fds;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	fds = opendir(dir);
	while (fds && !rc && (de = readdir(fds)))
		if (de->d_name[0] != '.')
			rc = visit(pid, dirfd(fds), de->d_name, arg);
	if (fds)
		closedir(fds);
	return rc;
}

int file_scan_outside(const struct dump_ctx *ctx,
		      int (*visit)(pid_t pid, int fds, const char *name, void *arg), void *arg)
{
	DIR *procs = opendir("/proc");
	struct dirent *de;
	int rc = 0;

	if (!procs)
		return cr_perr("cannot list /proc");
	while (!rc && (de = readdir(procs))) {
		pid_t pid = atoi(de->d_name);

		if (pid > 0 && pid != getpid() && !file_tree_has(ctx, pid))
			rc = scan_fds_of(pid, visit, arg);
	}
	closedir(procs);
	return rc;
}

/* Every socket an fd of a process outside the tree holds, by inode: one scan of
 * /proc for the whole dump (the tree is frozen: none of its sockets goes out now). */
struct socks_outside {
	struct held {
		uint64_t ino;
		pid_t pid;
	} *v;
	size_t nr, cap;
};

static int collect_socket(pid_t pid, int fds, const char *name, void *arg)
{
	struct socks_outside *o = arg;
	unsigned long long ino;
	char l[64];
	ssize_t n = readlinkat(fds, name, l, sizeof(l) - 1);

	if (n <= 0 || (l[n] = 0, sscanf(l, "socket:[%llu]", &ino) != 1))
		return 0;
	if (cr_grow(&o->v, &o->cap, o->nr + 1, sizeof(*o->v), 64))
		return -1;
	o->v[o->nr++] = (struct held){ ino, pid };
	return 0;
}

static int by_ino(const void *a, const void *b)
{
	const struct held *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

pid_t file_socket_outside(struct dump_ctx *ctx, uint64_t ino)
{
	struct socks_outside *o = ctx->socks_outside;
	struct held key = { ino, 0 }, *h;

	if (!o) {
		o = ctx->socks_outside = calloc(1, sizeof(*o));
		if (!o)
			return cr_err("out of memory");
		if (file_scan_outside(ctx, collect_socket, o) < 0)
			return -1;
		qsort(o->v, o->nr, sizeof(*o->v), by_ino);
	}
	h = o->nr ? bsearch(&key, o->v, o->nr, sizeof(*o->v), by_ino) : NULL;
	return h ? h->pid : 0;
}

void file_sockets_outside_free(struct dump_ctx *ctx)
{
	struct socks_outside *o = ctx->socks_outside;

	if (o)
		free(o->v);
	free(o);
	ctx->socks_outside = NULL;
}

/* ---- dump ---- */

/* What an fd of an unsupported kind is, for the refusal message. */
static const char *fd_kind_name(const struct stat *st, const char *link)
{
	if (S_ISSOCK(st->st_mode))
		return "a socket";
	if (!strncmp(link, "anon_inode:", 11))
		return "an anonymous inode of a kind cryo does not know";
	if (S_ISCHR(st->st_mode))
		return "a character device cryo does not know (devices with state are not supported)";
	if (S_ISBLK(st->st_mode))
		return "a block device";
	return "a file of an unsupported kind";
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

static const struct fd_kind *match_kind(const struct fd_probe *pr)
{
	for (size_t i = 0; i < CR_ARRAY_SIZE(kinds); i++)
		if (kinds[i]->match(pr))
			return kinds[i];
	return NULL;
}

static int new_entry(struct fd_probe *pr, const struct fd_kind *k, Fd *out)
{
	struct file_table *ft = &pr->p->ctx->files;
	FileEntry *e;

	if (file_table_push(ft, &e))
		return -1;
	file_key_set(ft, pr->st, 0, pr->p->pid, pr->fd);
	if (k->dump(pr, e))
		return -1;
	ft->keys[ft->nr - 1].flags = e->flags;
	out->file_id = e->id;
	return 0;
}

static int dump_one_fd(struct dump_proc *p, int fd, Fd *out)
{
	char what[64], link[4096];
	struct proc_fdinfo fi;
	struct stat st;
	struct fd_probe pr = { p, fd, link, &st, NULL, 0, &fi };
	const struct fd_kind *k;
	size_t len;
	char *txt;
	bool new;
	int rc = -1;

	snprintf(what, sizeof(what), "fd/%d", fd);
	if (read_link(p->pid, what, link, sizeof(link)))
		return -1;
	snprintf(what, sizeof(what), "/proc/%d/fd/%d", p->pid, fd);
	if (stat(what, &st))
		return cr_perr("cannot stat %s", what);
	snprintf(what, sizeof(what), "fdinfo/%d", fd);
	txt = proc_read_pid_file(p->pid, what, &len);
	if (!txt)
		return -1;
	pr.fdinfo = txt;
	pr.fdinfo_len = len;
	if (proc_parse_fdinfo(txt, len, &fi))
		goto out;
	k = match_kind(&pr);
	if (!k) {
		cr_err("process %d: fd %d is %s (%s); cryo cannot restore it", p->pid, fd,
		       fd_kind_name(&st, link), link);
		goto out;
	}
	fd__init(out);
	out->fd = fd;
	out->cloexec = !!(fi.flags & O_CLOEXEC);
	out->file_id = file_find_shared(&p->ctx->files, p->pid, fd, &st);
	new = !out->file_id;
	rc = new ? new_entry(&pr, k, out) : 0;
	/* The locks held through it (fdinfo's "lock:" lines). */
	if (!rc)
		rc = locks_dump_fd(&pr, p->ctx->files.files[out->file_id - 1], new);
out:
	free(txt);
	return rc;
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

static int check_all(struct dump_proc *p)
{
	for (size_t i = 0; i < CR_ARRAY_SIZE(kinds); i++)
		if (kinds[i]->check_all && kinds[i]->check_all(p))
			return -1;
	return 0;
}

/* Does p share this (KCMP_FILES, KCMP_FS) with its parent? Only a parent in the
 * image can give it back. */
static int shared_with_parent(const struct dump_proc *p, int type, const char *what,
			      protobuf_c_boolean *has, protobuf_c_boolean *shared)
{
	const struct dump_ctx *ctx = p->ctx;
	pid_t ppid = p->stat.ppid;

	if (ppid <= 1 || syscall(__NR_kcmp, p->pid, ppid, type, 0, 0) != 0)
		return 0;
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (ctx->procs[i]->pid == ppid && ctx->procs[i] != p && !ctx->procs[i]->zombie) {
			*has = *shared = 1;
			return 0;
		}
	return cr_err("process %d shares its %s with its parent %d, outside what is dumped",
		      p->pid, what, ppid);
}

int files_dump_fds(struct dump_proc *p)
{
	int *fds = NULL;
	size_t nr = 0;
	Fd *items;

	if (path_add_dir(p, "cwd", &p->core.cwd_file_id) ||
	    path_add_dir(p, "root", &p->core.root_file_id) ||
	    shared_with_parent(p, KCMP_FS, "cwd, root and umask (CLONE_FS)", &p->core.has_shares_fs,
			       &p->core.shares_fs) ||
	    shared_with_parent(p, KCMP_FILES, "fd table (CLONE_FILES)", &p->core.has_shares_files,
			       &p->core.shares_files))
		return -1;
	/* Its fds are its parent's, dumped there. */
	if (p->core.shares_files)
		return 0;
	if (list_fds(p->pid, &fds, &nr))
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
	return check_all(p);
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
		const struct fd_kind *k = kind_of(ft->files[i]->kind);

		if (k)
			k->free(ft->files[i]);
		locks_free_entry(ft->files[i]);
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

int cryo_parse_inherit_fd(const char *arg, struct cryo_inherit_fd *out)
{
	const char *what;
	char *end;
	long fd;

	cr_err_reset();
	if (strncmp(arg, "fd[", 3))
		return cr_err("--inherit-fd '%.64s': expected fd[N]:RESOURCE", arg);
	errno = 0;
	fd = strtol(arg + 3, &end, 10);
	if (errno || end == arg + 3 || fd < 0 || fd > INT32_MAX || strncmp(end, "]:", 2))
		return cr_err("--inherit-fd '%.64s': expected fd[N]:RESOURCE", arg);
	what = end + 2;
	if (!*what || strlen(what) >= sizeof(out->what))
		return cr_err("--inherit-fd '%.64s': the resource name is empty or too long",
			      arg);
	out->fd = fd;
	strcpy(out->what, what);
	return 0;
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

int files_check_table(const FileTable *ft)
{
	for (size_t i = 0; i < ft->n_files; i++) {
		const FileEntry *e = ft->files[i];
		const struct fd_kind *k = kind_of(e->kind);

		if (e->id != i + 1)
			return cr_err("image: file table entry %zu has id %u", i, e->id);
		if (!k)
			return cr_err("image: file %u is of a kind this cryo does not know (%d)",
				      e->id, e->kind);
		if (k->check(e) || locks_check_entry(e))
			return -1;
	}
	return 0;
}

static int open_entry(struct restore_ctx *ctx, size_t i)
{
	const FileEntry *e = ctx->files->files[i];
	const struct fd_kind *k = kind_of(e->kind);
	int fd = k->open(ctx, e);

	if (fd == FD_BY_TASK || fd < 0)
		return fd == FD_BY_TASK ? 0 : -1;
	fd = restore_inherit_fd(ctx, fd, k->name);
	if (fd < 0)
		return -1;
	ctx->file_fds[i] = fd;
	/* Before any process exists: a lock taken since the dump is found here. */
	return locks_take(e, fd);
}

/* As the restored process would (fsuid, fsgid, groups): see docs/SECURITY.md. */
int files_open_all(struct restore_ctx *ctx)
{
	FileTable *ft = ctx->files;
	int rc = -1;

	if (files_check_table(ft))
		return -1;
	for (size_t i = 0; i < CR_ARRAY_SIZE(kinds); i++)
		if (kinds[i]->preflight && kinds[i]->preflight(ctx))
			return -1;
	ctx->file_fds = malloc((ft->n_files + 1) * sizeof(int));
	if (!ctx->file_fds)
		return cr_err("out of memory");
	for (size_t i = 0; i < ft->n_files; i++)
		ctx->file_fds[i] = -1;
	if (trust_become(&ctx->trust, ctx->creds))
		goto out;
	rc = 0;
	for (size_t i = 0; i < ft->n_files && !rc; i++)
		rc = open_entry(ctx, i);
out:
	for (size_t i = 0; i < CR_ARRAY_SIZE(kinds); i++)
		if (kinds[i]->open_done)
			kinds[i]->open_done(ctx);
	trust_unbecome(&ctx->trust);
	return rc;
}

int files_fd(struct restore_ctx *ctx, uint32_t id)
{
	if (!file_by_id(ctx->files, id) || ctx->file_fds[id - 1] < 0)
		return cr_err("image: reference to unknown file %u", id);
	return ctx->file_fds[id - 1];
}

static bool by_task(const struct restore_ctx *ctx, const FileEntry *e)
{
	return ctx->file_fds[e->id - 1] < 0;
}

/* Files the task opens itself land on fd 0 (every fd below the inherited ones is
 * closed by then) and are moved to their number. */
static int plan_task_opened(struct restore_proc *rp, struct plan *p)
{
	const Core *core = rp->core;

	for (size_t i = 0; i < core->n_fds; i++) {
		const Fd *f = core->fds[i];
		const FileEntry *e = file_by_id(rp->ctx->files, f->file_id);

		if (!e)
			return cr_err("image: fd %u names unknown file %u", f->fd, f->file_id);
		if (!by_task(rp->ctx, e) || kind_of(e->kind)->plan_final)
			continue;
		if (kind_of(e->kind)->plan_open(rp, p, e))
			return -1;
		if (f->fd == 0)
			continue;
		plan_call(p, "installing an fd", 0, __NR_dup3, 0, f->fd, f->cloexec ? O_CLOEXEC : 0,
			  0, 0, 0);
		plan_call(p, "installing an fd", 0, __NR_close, 0, 0, 0, 0, 0, 0);
	}
	return 0;
}

/* What a kind does once the table is in place, through the first fd of each file. */
static int plan_after(struct restore_proc *rp, struct plan *p)
{
	const Core *core = rp->core;

	for (size_t i = 0; i < core->n_fds; i++) {
		const FileEntry *e = file_by_id(rp->ctx->files, core->fds[i]->file_id);
		const struct fd_kind *k = kind_of(e->kind);
		bool first = true;

		for (size_t j = 0; j < i && first; j++)
			first = core->fds[j]->file_id != core->fds[i]->file_id;
		if (first && k->plan_after && k->plan_after(rp, p, core->fds[i], e))
			return -1;
	}
	return 0;
}

static int plan_dirs(struct restore_proc *rp, struct plan *p)
{
	struct restore_ctx *ctx = rp->ctx;
	const Core *core = rp->core;
	const FileEntry *root = file_by_id(ctx->files, core->root_file_id);
	const FileEntry *cwd = file_by_id(ctx->files, core->cwd_file_id);

	if (!root || !cwd || !root->path || !cwd->path)
		return cr_err("image: process %u has no valid cwd or root", core->pid);
	if (strcmp(root->path->path, "/")) {
		path_plan_chdir(p, root, ctx->file_fds[root->id - 1], "changing to the root");
		plan_call(p, "chroot", 0, __NR_chroot, plan_data(p, ".", 2), 0, 0, 0, 0, 0);
	}
	path_plan_chdir(p, cwd, ctx->file_fds[cwd->id - 1], "changing to the cwd");
	return 0;
}

int files_plan(struct restore_proc *rp, struct plan *p)
{
	struct restore_ctx *ctx = rp->ctx;
	const Core *core = rp->core;

	/* Shared with the parent, which made them (the child was made first). */
	if (!core->shares_fs && plan_dirs(rp, p))
		return -1;
	if (core->shares_files)
		return 0;
	plan_call(p, "closing inherited fds", 0, __NR_close_range, 0, ctx->fd_base - 1, 0, 0, 0, 0);
	if (process_plan_loginuid(rp, p) || plan_task_opened(rp, p))
		return -1;
	for (size_t i = 0; i < core->n_fds; i++) {
		const Fd *f = core->fds[i];
		const FileEntry *e = file_by_id(ctx->files, f->file_id);

		if (f->fd >= (uint32_t)ctx->fd_base)
			return cr_err("image: fd %u out of range", f->fd);
		if (by_task(ctx, e))
			continue;
		plan_call(p, "installing an fd", 0, __NR_dup3, ctx->file_fds[e->id - 1], f->fd,
			  f->cloexec ? O_CLOEXEC : 0, 0, 0, 0);
	}
	return 0;
}

static bool opened_late(const struct restore_ctx *ctx, const Fd *f)
{
	const FileEntry *e = file_by_id(ctx->files, f->file_id);

	return by_task(ctx, e) && kind_of(e->kind)->plan_final;
}

/* The lowest fd not taken once the table is in place and the late fds before
 * `upto` are open (fds from fd_base on are cryo's). */
static int lowest_free_fd(const struct restore_ctx *ctx, const Core *core, size_t upto)
{
	for (uint32_t fd = 0;; fd++) {
		bool taken = fd >= (uint32_t)ctx->fd_base;

		for (size_t i = 0; i < core->n_fds && !taken; i++)
			taken = core->fds[i]->fd == fd &&
				(i < upto || !opened_late(ctx, core->fds[i]));
		if (!taken)
			return fd;
	}
}

/* The fds that need the whole tree, then what the kinds do once the table is
 * complete; the last table, before the credentials drop. */
static int plan_late(struct restore_proc *rp, struct plan *p)
{
	struct restore_ctx *ctx = rp->ctx;
	const Core *core = rp->core;

	for (size_t i = 0; i < core->n_fds; i++) {
		const Fd *f = core->fds[i];
		const FileEntry *e = file_by_id(ctx->files, f->file_id);
		size_t j;

		if (!opened_late(ctx, f))
			continue;
		for (j = 0; j < i && core->fds[j]->file_id != f->file_id; j++)
			;
		if (j < i)
			plan_call(p, "installing an fd", 0, __NR_dup3, core->fds[j]->fd, f->fd,
				  f->cloexec ? O_CLOEXEC : 0, 0, 0, 0);
		else if (kind_of(e->kind)->plan_final(rp, p, f, e, lowest_free_fd(ctx, core, i)))
			return -1;
	}
	return plan_after(rp, p);
}

int files_plan_final(struct restore_proc *rp, struct plan *p)
{
	if (rp->core->shares_files)
		return 0;
	return plan_late(rp, p);
}

/* Near the end of a plan (only POSIX locks come after): drop every fd cryo handed
 * down. */
void files_plan_close_inherited(struct restore_ctx *ctx, struct plan *p)
{
	plan_call(p, "closing cryo's fds", 0, __NR_close_range, ctx->fd_base, ~0U, 0, 0, 0, 0);
}
