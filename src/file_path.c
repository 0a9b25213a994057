/* Files reached by a path: regular files, directories (fds, cwd, root), stateless
 * character devices, and the files memory maps. Dump checks the path still names the
 * same file (and records a mapped ELF file's build-id); restore opens it again as the
 * restored process, checks it is still that file, and puts the offset back. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildid.h"
#include "cryo.h"
#include "fd_kind.h"
#include "files.h"
#include "log.h"
#include "sys.h"

/* Character devices that are the same everywhere and carry no state. */
static const char *const stateless_devs[] = {
	"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
};

static bool stateless_dev(const char *path, const struct stat *st)
{
	if (!S_ISCHR(st->st_mode))
		return false;
	for (size_t i = 0; i < CR_ARRAY_SIZE(stateless_devs); i++)
		if (!strcmp(path, stateless_devs[i]))
			return true;
	return false;
}

PathFile *path_new(FileEntry *e, const char *path, const struct stat *st)
{
	PathFile *pf = calloc(1, sizeof(*pf));

	if (pf)
		path_file__init(pf);
	if (!pf || !(pf->path = strdup(path))) {
		free(pf);
		cr_err("out of memory");
		return NULL;
	}
	pf->mode = st->st_mode;
	pf->size = st->st_size;
	pf->mtime_sec = st->st_mtim.tv_sec;
	if (S_ISCHR(st->st_mode)) {
		pf->has_rdev = 1;
		pf->rdev = st->st_rdev;
	}
	e->kind = S_ISREG(st->st_mode) ? FILE_KIND__FILE_REG :
		  S_ISDIR(st->st_mode) ? FILE_KIND__FILE_DIR : FILE_KIND__FILE_CHR;
	e->path = pf;
	return pf;
}

/* A mapped ELF file is recognised at restore by its build-id (and size). */
static int record_build_id(PathFile *pf, const struct stat *st)
{
	uint8_t id[BUILDID_MAX];
	size_t len = 0;
	struct stat now;
	int fd = open(pf->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return 0;	/* not readable by path: size and mtime decide */
	if (!fstat(fd, &now) && now.st_dev == st->st_dev && now.st_ino == st->st_ino &&
	    S_ISREG(now.st_mode) && buildid_of_fd(fd, id, &len)) {
		pf->build_id.data = malloc(len);
		if (!pf->build_id.data) {
			close(fd);
			return cr_err("out of memory");
		}
		memcpy(pf->build_id.data, id, len);
		pf->build_id.len = len;
		pf->has_build_id = 1;
	}
	close(fd);
	return 0;
}

int files_add_mapped(struct file_table *ft, const char *path, const struct stat *st,
		     uint32_t flags, uint32_t *id)
{
	FileEntry *e;
	PathFile *pf;

	for (size_t i = 0; i < ft->nr; i++) {
		struct file_key *k = &ft->keys[i];

		if (ft->files[i]->path && ft->files[i]->path->mapped && k->dev == st->st_dev &&
		    k->ino == st->st_ino && k->flags == flags) {
			*id = ft->files[i]->id;
			return 0;
		}
	}
	if (file_table_push(ft, &e) || !(pf = path_new(e, path, st)))
		return -1;
	e->flags = flags;
	pf->has_mapped = pf->mapped = 1;
	if (record_build_id(pf, st))
		return -1;
	file_key_set(ft, st, flags, 0, -1);
	*id = e->id;
	return 0;
}

/* ---- fds ---- */

static bool path_match(const struct fd_probe *pr)
{
	return S_ISREG(pr->st->st_mode) || S_ISDIR(pr->st->st_mode) ||
	       stateless_dev(pr->link, pr->st);
}

/* A deleted regular file: its contents go into the image (file_ghost.c). */
static bool is_ghost(const char *link, const struct stat *st)
{
	return link[0] == '/' && S_ISREG(st->st_mode) && st->st_nlink == 0 &&
	       file_link_deleted(link);
}

/* The path must still name the file the fd holds. */
static int check_path(pid_t pid, int fd, const char *link, const struct stat *st)
{
	struct stat by_path;

	if (link[0] != '/')
		return cr_err("process %d: fd %d (%s) has no path", pid, fd, link);
	if (S_ISDIR(st->st_mode) && file_link_deleted(link))
		return cr_err("process %d: fd %d: directory %.*s was removed; removed "
			      "directories are not supported", pid, fd, (int)(strlen(link) - 10),
			      link);
	if (st->st_nlink == 0 && !S_ISDIR(st->st_mode))
		return cr_err("process %d: fd %d: %s was deleted and cannot be saved", pid, fd,
			      link);
	if (stat(link, &by_path) || by_path.st_dev != st->st_dev || by_path.st_ino != st->st_ino)
		return cr_err("process %d: fd %d: %s was deleted or replaced", pid, fd, link);
	return 0;
}

static int path_dump(const struct fd_probe *pr, FileEntry *e)
{
	bool ghost = is_ghost(pr->link, pr->st);
	PathFile *pf;

	if ((!ghost && check_path(pr->p->pid, pr->fd, pr->link, pr->st)) ||
	    !(pf = path_new(e, pr->link, pr->st)))
		return -1;
	e->flags = pr->fi->flags & KEEP_FLAGS;
	pf->pos = pr->fi->pos;
	if (ghost)
		return ghost_dump_fd(pr, e);
	pf->has_in_own_proc = pf->in_own_proc = file_in_own_proc(pr->p, pr->link);
	return 0;
}

/* cwd and root, checked like an fd: the path must still name the same directory. */
int path_add_dir(struct dump_proc *p, const char *what, uint32_t *id)
{
	char link[4096], path[64];
	struct stat st, by_path;
	FileEntry *e;
	PathFile *pf;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", p->pid, what);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return cr_perr("cannot read %s", path);
	link[n] = 0;
	if (stat(path, &st))
		return cr_perr("cannot stat %s", path);
	if (link[0] != '/' || file_link_deleted(link) || stat(link, &by_path) ||
	    by_path.st_dev != st.st_dev || by_path.st_ino != st.st_ino)
		return cr_err("process %d: its %s (%s) was removed or replaced; removed "
			      "directories are not supported", p->pid, what, link);
	if (file_table_push(&p->ctx->files, &e) || !(pf = path_new(e, link, &st)))
		return -1;
	e->flags = O_PATH | O_DIRECTORY;
	pf->has_in_own_proc = pf->in_own_proc = file_in_own_proc(p, link);
	file_key_set(&p->ctx->files, &st, e->flags, 0, -1);
	*id = e->id;
	return 0;
}

static void path_free(FileEntry *e)
{
	if (!e->path)
		return;
	ghost_free(e->path->ghost);
	free(e->path->build_id.data);
	free(e->path->path);
	free(e->path);
}

/* ---- restore ---- */

static int path_check(const FileEntry *e)
{
	if (!e->path || e->path->path[0] != '/')
		return cr_err("image: file %u has no absolute path", e->id);
	if (e->path->ghost)
		return ghost_check(e);
	return 0;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n && i < 20; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* A file the process maps must be the one it had: same build (build-id) and size,
 * or, without a build-id, same size and mtime. */
static int validate_mapped(const PathFile *pf, int fd, const struct stat *st, int mode)
{
	uint8_t id[BUILDID_MAX];
	char was[48] = "", now[48] = "none";
	size_t len = 0;

	if ((uint64_t)st->st_size != pf->size)
		return cr_err("%s, which the process maps, changed since the dump: %llu bytes, "
			      "%llu at the dump", pf->path, (unsigned long long)st->st_size,
			      (unsigned long long)pf->size);
	if (mode == CRYO_VALIDATE_FILESIZE)
		return 0;
	if (pf->has_build_id) {
		if (buildid_of_fd(fd, id, &len) && len == pf->build_id.len &&
		    !memcmp(id, pf->build_id.data, len))
			return 0;
		hex(pf->build_id.data, pf->build_id.len, was);
		if (len)
			hex(id, len, now);
		return cr_err("%s, which the process maps, is another build: build-id %s, %s "
			      "at the dump", pf->path, now, was);
	}
	if (st->st_mtim.tv_sec != pf->mtime_sec)
		return cr_err("%s, which the process maps and which has no build-id, changed "
			      "since the dump: modified at %lld, %lld at the dump "
			      "(--file-validation=filesize checks the size only)", pf->path,
			      (long long)st->st_mtim.tv_sec, (long long)pf->mtime_sec);
	return 0;
}

/* The same file as at dump, at its offset. */
static int check_opened(const FileEntry *e, int fd, int mode)
{
	const PathFile *pf = e->path;
	struct stat st;

	if (fstat(fd, &st))
		return cr_perr("cannot stat %s", pf->path);
	if ((st.st_mode & S_IFMT) != (pf->mode & S_IFMT))
		return cr_err("%s is no longer the kind of file it was at dump", pf->path);
	if (e->kind == FILE_KIND__FILE_CHR && (!pf->has_rdev || st.st_rdev != pf->rdev))
		return cr_err("%s is a different device than at dump", pf->path);
	if (pf->mapped && validate_mapped(pf, fd, &st, mode))
		return -1;
	if (pf->pos && e->kind != FILE_KIND__FILE_CHR &&
	    lseek(fd, pf->pos, SEEK_SET) != (off_t)pf->pos)
		return cr_perr("cannot seek %s to %llu", pf->path, (unsigned long long)pf->pos);
	return 0;
}

static int open_path(const FileEntry *e, int mode)
{
	int flags = (e->flags & KEEP_FLAGS) | O_CLOEXEC | O_NOCTTY;
	int fd;

	if (e->kind == FILE_KIND__FILE_DIR && (e->flags & O_PATH))
		flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
	fd = open(e->path->path, flags);
	if (fd < 0)
		return cr_perr("cannot open %s", e->path->path);
	if (check_opened(e, fd, mode)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* As the restored process: it gets no file it could not open itself. One it held but
 * cannot open (opened before it gave up privileges) is opened with cryo's rights when
 * the image is cryo's own, never when it belongs to another user. */
static int path_open(struct restore_ctx *ctx, const FileEntry *e)
{
	int fd;

	if (e->path->ghost)
		return ghost_open(ctx, e);
	if (e->path->in_own_proc)
		return FD_BY_TASK;
	fd = open_path(e, ctx->file_validation);
	if (fd >= 0 || (errno != EACCES && errno != EPERM) || ctx->trust.limited)
		return fd;
	cr_err_reset();
	trust_unbecome(&ctx->trust);
	fd = open_path(e, ctx->file_validation);
	if (trust_become(&ctx->trust, ctx->creds)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fd >= 0)
		pr_info("%s: opened with cryo's rights; the process held it but cannot open it "
			"itself", e->path->path);
	return fd;
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

/* Under the process's own /proc: the task opens it onto fd 0. */
static int path_plan_open(struct restore_proc *rp, struct plan *p, const FileEntry *e)
{
	const PathFile *pf = e->path;

	if (!own_proc_path_ok(pf->path, rp->ctx->tree_pids, rp->ctx->nr_tree_pids))
		return cr_err("image: file %u (%s) is not under the process's own /proc", e->id,
			      pf->path);
	plan_call(p, "opening a file of the process's own /proc", 0, __NR_openat, AT_FDCWD,
		  plan_data(p, pf->path, strlen(pf->path) + 1), (e->flags & KEEP_FLAGS) | O_NOCTTY,
		  0, 0, 0);
	if (pf->pos)
		plan_call(p, "seeking a file of the process's own /proc", PLAN_MAY_FAIL, __NR_lseek,
			  0, pf->pos, SEEK_SET, 0, 0, 0);
	return 0;
}

void path_plan_chdir(struct plan *p, const FileEntry *e, int fd, const char *label)
{
	if (e->path->in_own_proc)
		plan_call(p, label, 0, __NR_chdir,
			  plan_data(p, e->path->path, strlen(e->path->path) + 1), 0, 0, 0, 0, 0);
	else
		plan_call(p, label, 0, __NR_fchdir, fd, 0, 0, 0, 0, 0);
}

static bool path_handles(FileKind k)
{
	return k == FILE_KIND__FILE_REG || k == FILE_KIND__FILE_DIR || k == FILE_KIND__FILE_CHR;
}

const struct fd_kind path_kind = {
	.name = "a file",
	.handles = path_handles,
	.match = path_match,
	.dump = path_dump,
	.check = path_check,
	.open = path_open,
	.open_done = ghost_ahead_done,
	.plan_open = path_plan_open,
	.free = path_free,
};
