/* Ghost files: deleted regular files a process still holds open or maps. Dump saves
 * their data runs (holes cost nothing) up to --ghost-limit; restore makes the file
 * again in its directory, as the restored process, with its data, size, holes, mode,
 * owner and mtime, opens every open file description of it, and removes it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cryo.h"
#include "fd_kind.h"
#include "files.h"
#include "log.h"
#include "mem.h"
#include "sys.h"
#include "util.h"

#define GHOST_BUF (1u << 20)
#define DELETED_SUFFIX " (deleted)"

int cryo_parse_size(const char *arg, unsigned long long *out)
{
	unsigned long long v, mult = 1;
	char *end;

	cr_err_reset();
	errno = 0;
	if (!arg || *arg < '0' || *arg > '9')
		return cr_err("'%.32s' is not a size", arg ? arg : "");
	v = strtoull(arg, &end, 10);
	if (errno)
		return cr_err("'%.32s' is not a size", arg);
	switch (*end) {
	case 'K': case 'k': mult = 1ULL << 10; end++; break;
	case 'M': case 'm': mult = 1ULL << 20; end++; break;
	case 'G': case 'g': mult = 1ULL << 30; end++; break;
	}
	if (*end || v > ~0ULL / mult)
		return cr_err("'%.32s' is not a size", arg);
	*out = v * mult;
	return 0;
}

/* "1.5 MiB" and the like, for messages. */
static const char *human(uint64_t n, char *buf, size_t len)
{
	if (n >= (1ULL << 20))
		snprintf(buf, len, "%.1f MiB", n / 1048576.0);
	else if (n >= 1024)
		snprintf(buf, len, "%.1f KiB", n / 1024.0);
	else
		snprintf(buf, len, "%llu bytes", (unsigned long long)n);
	return buf;
}

/* The path a deleted file had: its /proc link without " (deleted)". */
static char *ghost_path(const char *link)
{
	size_t n = strlen(link);

	if (file_link_deleted(link))
		n -= strlen(DELETED_SUFFIX);
	return strndup(link, n);
}

/* ---- dump ---- */

/* The runs' bytes into ghost-ID.img; what lies past the end of the file reads as
 * zeroes. */
static int write_data(struct dump_ctx *ctx, int fd, uint64_t size, const struct runs *rs,
		      GhostFile *g, uint32_t id)
{
	struct raw_writer w;
	char name[64];
	uint8_t *buf = malloc(GHOST_BUF);
	int rc = -1;

	snprintf(name, sizeof(name), "ghost-%u.img", id);
	if (!buf)
		return cr_err("out of memory");
	if (raw_open(&w, &ctx->dir, name)) {
		free(buf);
		return -1;
	}
	for (size_t i = 0; i < rs->nr; i++) {
		uint64_t off = rs->r[i].start, left = rs->r[i].nr_pages * CR_PAGE_SIZE;

		while (left) {
			size_t n = left < GHOST_BUF ? left : GHOST_BUF;
			ssize_t got = pread(fd, buf, n, off);

			if (got >= 0 && off + got >= size && got < (ssize_t)n)
				memset(buf + got, 0, n - got), got = n;
			if (got != (ssize_t)n) {
				cr_perr("cannot read deleted file %u", id);
				goto out;
			}
			if (raw_write(&w, buf, n))
				goto out;
			off += n;
			left -= n;
		}
	}
	if (raw_close(&w) || !(g->data_file = strdup(name)) || !(g->runs = runs_to_pb(rs)))
		goto out;
	g->n_runs = rs->nr;
	g->has_chunk_size = 1;
	g->chunk_size = IMG_CHUNK_SIZE;
	g->chunk_crc32c = w.crcs;
	g->n_chunk_crc32c = w.nr_crcs;
	w.crcs = NULL;
	rc = 0;
out:
	raw_free(&w);
	free(buf);
	return rc;
}

/* An earlier entry holding the contents of this file, or 0. */
static uint32_t ghost_find(const struct file_table *ft, const struct stat *st)
{
	for (size_t i = 0; i < ft->nr; i++) {
		const FileEntry *e = ft->files[i];

		if (e->path && e->path->ghost && !e->path->ghost->same_as &&
		    ft->keys[i].dev == st->st_dev && ft->keys[i].ino == st->st_ino)
			return e->id;
	}
	return 0;
}

bool files_ghost_known(const struct file_table *ft, const struct stat *st)
{
	return ghost_find(ft, st) != 0;
}

static int refuse_kind(const char *who, const char *link)
{
	static const char *const kinds[][2] = {
		{ "/SYSV", "System V shared memory" },
		{ "/secretmem", "secret memory (memfd_secret)" },
		{ "/anon_hugepage", "hugetlb memory" },
	};

	for (size_t i = 0; i < CR_ARRAY_SIZE(kinds); i++)
		if (!strncmp(link, kinds[i][0], strlen(kinds[i][0])))
			return cr_err("%s (%s) is %s; cryo cannot restore it", who, link,
				      kinds[i][1]);
	return 0;
}

static bool dir_exists(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = strndup(path, slash > path ? (size_t)(slash - path) : 1);
	struct stat st;
	bool ok = dir && !stat(dir, &st) && S_ISDIR(st.st_mode);

	free(dir);
	return ok;
}

/* Fill e's ghost: the contents, or a reference to the entry that has them. `proc`
 * opens the file (/proc/PID/fd/N, /proc/PID/map_files/...) without touching the
 * process's own open file description. */
static int ghost_fill(struct dump_ctx *ctx, const char *who, const char *proc,
		      const struct stat *st, FileEntry *e)
{
	GhostFile *g = calloc(1, sizeof(*g));
	struct runs rs = { 0 };
	char a[32], b[32], c[32];
	uint64_t bytes;
	struct stat now;
	int fd, rc = -1;

	if (!g)
		return cr_err("out of memory");
	ghost_file__init(g);
	g->same_as = ghost_find(&ctx->files, st);
	e->path->ghost = g;
	g->uid = st->st_uid;
	g->gid = st->st_gid;
	g->has_same_as = !!g->same_as;
	if (g->same_as)
		return 0;
	/* Restore could neither give it its name nor tell it from the new file. */
	if (!lstat(e->path->path, &now))
		return cr_err("%s: %s was replaced at its path by another file", who,
			      e->path->path);
	/* Restore makes it again in its directory. */
	if (!dir_exists(e->path->path))
		return cr_err("%s: %s was deleted and its directory was removed too", who,
			      e->path->path);
	for (size_t i = 0; i < ctx->shmem.nr; i++)
		if (ctx->shmem.objs[i]->dev == st->st_dev && ctx->shmem.objs[i]->ino == st->st_ino)
			return cr_err("%s: %s was deleted and is also mapped shared by an earlier "
				      "process, as memory of its own; cryo cannot keep the two one "
				      "file", who, e->path->path);
	fd = open(proc, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return cr_perr("%s: cannot open %s to save it", who, proc);
	if (fstat(fd, &now) || now.st_dev != st->st_dev || now.st_ino != st->st_ino) {
		cr_err("%s: %s changed while it was saved", who, proc);
		goto out;
	}
	if (mem_scan_data(fd, st->st_size, &rs, &bytes))
		goto out;
	if (bytes > ctx->ghost_limit) {
		cr_err("%s: %s was deleted and holds %s of data (size %s), above --ghost-limit "
		       "%s", who, e->path->path, human(bytes, a, sizeof(a)),
		       human(st->st_size, b, sizeof(b)), human(ctx->ghost_limit, c, sizeof(c)));
		goto out;
	}
	rc = write_data(ctx, fd, st->st_size, &rs, g, e->id);
out:
	free(rs.r);
	close(fd);
	return rc;
}

int ghost_dump_fd(const struct fd_probe *pr, FileEntry *e)
{
	char who[64], proc[64];

	snprintf(who, sizeof(who), "process %d: fd %d", pr->p->pid, pr->fd);
	if (refuse_kind(who, pr->link))
		return -1;
	free(e->path->path);
	e->path->path = ghost_path(pr->link);
	if (!e->path->path)
		return cr_err("out of memory");
	snprintf(proc, sizeof(proc), "/proc/%d/fd/%d", pr->p->pid, pr->fd);
	return ghost_fill(pr->p->ctx, who, proc, pr->st, e);
}

int ghost_add_mapped(struct dump_proc *p, uint64_t start, const char *proc, const char *link,
		     const struct stat *st, uint32_t flags, uint32_t *id)
{
	struct file_table *ft = &p->ctx->files;
	char who[64];
	FileEntry *e;

	snprintf(who, sizeof(who), "process %d: mapping 0x%llx", p->pid,
		 (unsigned long long)start);
	if (refuse_kind(who, link))
		return -1;
	for (size_t i = 0; i < ft->nr; i++)
		if (ft->files[i]->path && ft->files[i]->path->mapped && ft->files[i]->path->ghost &&
		    ft->keys[i].dev == st->st_dev && ft->keys[i].ino == st->st_ino &&
		    ft->keys[i].flags == flags) {
			*id = ft->files[i]->id;
			return 0;
		}
	if (file_table_push(ft, &e) || !path_new(e, link, st))
		return -1;
	file_key_set(ft, st, flags, 0, -1);
	e->flags = flags;
	e->path->has_mapped = e->path->mapped = 1;
	free(e->path->path);
	e->path->path = ghost_path(link);
	if (!e->path->path)
		return cr_err("out of memory");
	*id = e->id;
	return ghost_fill(p->ctx, who, proc, st, e);
}

void ghost_free(GhostFile *g)
{
	if (!g)
		return;
	free(g->data_file);
	runs_pb_free(g->runs);
	free(g->chunk_crc32c);
	free(g);
}

/* ---- restore ---- */

int ghost_check(const FileEntry *e)
{
	const GhostFile *g = e->path->ghost;
	uint64_t end = 0, pages;

	if (e->kind != FILE_KIND__FILE_REG || !S_ISREG(e->path->mode))
		return cr_err("image: file %u is a deleted file that is not a regular file", e->id);
	if (g->same_as)
		return g->same_as < e->id ? 0 :
		       cr_err("image: deleted file %u names a later entry %u", e->id, g->same_as);
	if (!g->data_file || strchr(g->data_file, '/') || !g->has_chunk_size || !g->chunk_size)
		return cr_err("image: deleted file %u has no valid data file", e->id);
	if (e->path->size > (1ULL << 50))
		return cr_err("image: deleted file %u is too large", e->id);
	pages = CR_ALIGN_UP(e->path->size, CR_PAGE_SIZE) / CR_PAGE_SIZE;
	for (size_t i = 0; i < g->n_runs; i++) {
		const PageRun *r = g->runs[i];
		uint64_t first = r->vaddr / CR_PAGE_SIZE;

		/* Each run inside the file, after the previous one. */
		if (r->vaddr % CR_PAGE_SIZE || r->vaddr < end || !r->nr_pages || first >= pages ||
		    r->nr_pages > pages - first)
			return cr_err("image: deleted file %u has an invalid data run %zu", e->id, i);
		end = r->vaddr + r->nr_pages * CR_PAGE_SIZE;
	}
	return 0;
}

/* Fds opened ahead for the entries that name an earlier one (same_as). */
struct ahead {
	uint32_t id;
	int fd;
};

struct ahead_list {
	struct ahead *a;
	size_t nr, cap;
};

int ghost_ahead_take(struct restore_ctx *ctx, uint32_t id)
{
	struct ahead_list *l = ctx->ghosts;

	for (size_t i = 0; l && i < l->nr; i++)
		if (l->a[i].id == id && l->a[i].fd >= 0) {
			int fd = l->a[i].fd;

			l->a[i].fd = -1;
			return fd;
		}
	return cr_err("image: file %u names a file made for another entry", id);
}

static int ahead_put(struct restore_ctx *ctx, uint32_t id, int fd)
{
	struct ahead_list *l = ctx->ghosts;

	if (!l && !(l = ctx->ghosts = calloc(1, sizeof(*l))))
		return cr_err("out of memory");
	if (cr_grow(&l->a, &l->cap, l->nr + 1, sizeof(*l->a), 16))
		return -1;
	l->a[l->nr++] = (struct ahead){ id, fd };
	return 0;
}

void ghost_ahead_done(struct restore_ctx *ctx)
{
	struct ahead_list *l = ctx->ghosts;

	for (size_t i = 0; l && i < l->nr; i++)
		if (l->a[i].fd >= 0)
			close(l->a[i].fd);
	if (l)
		free(l->a);
	free(l);
	ctx->ghosts = NULL;
}

/* An open file description of a file cryo made (mfd), with the entry's flags. */
static int ghost_reopen(int mfd, const FileEntry *e, uint64_t pos, const char *what)
{
	char self[64];
	int fd;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", mfd);
	fd = open(self, (e->flags & KEEP_FLAGS & ~O_NOFOLLOW) | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return cr_perr("cannot open %s again for file %u", what, e->id);
	if (pos && lseek(fd, pos, SEEK_SET) != (off_t)pos) {
		close(fd);
		return cr_perr("cannot seek %s to %llu", what, (unsigned long long)pos);
	}
	return fd;
}

/* Open, ahead, every entry that names `creator` (and the creator's own) while the
 * file still has the mode cryo made it with. */
int ghost_open_all(struct restore_ctx *ctx, const FileEntry *creator, int mfd,
		   bool (*names)(const FileEntry *e, const FileEntry *creator),
		   uint64_t (*pos_of)(const FileEntry *e), const char *what, int *own)
{
	const FileTable *ft = ctx->files;

	*own = -1;
	for (size_t i = creator->id - 1; i < ft->n_files; i++) {
		const FileEntry *e = ft->files[i];
		int fd;

		if (e != creator && !names(e, creator))
			continue;
		fd = ghost_reopen(mfd, e, pos_of(e), what);
		if (fd < 0)
			return -1;
		if (e == creator)
			*own = fd;
		else if (ahead_put(ctx, e->id, fd)) {
			close(fd);
			return -1;
		}
	}
	return 0;
}

/* The runs from the image into fd. Reading the image needs cryo's own rights. */
static int fill_data(struct restore_ctx *ctx, const FileEntry *e, int fd)
{
	const GhostFile *g = e->path->ghost;
	uint64_t total = 0, off = 0;
	uint8_t *buf = NULL;
	int data_fd, rc = -1;

	for (size_t i = 0; i < g->n_runs; i++)
		total += g->runs[i]->nr_pages * CR_PAGE_SIZE;
	trust_unbecome(&ctx->trust);
	data_fd = img_open_raw(&ctx->dir, g->data_file, total);
	if (data_fd >= 0 && img_verify_raw(&ctx->dir, g->data_file, data_fd, total,
					   g->chunk_size, g->chunk_crc32c, g->n_chunk_crc32c)) {
		close(data_fd);
		data_fd = -1;
	}
	if (trust_become(&ctx->trust, ctx->creds) || data_fd < 0)
		goto out;
	buf = malloc(GHOST_BUF);
	if (!buf) {
		cr_err("out of memory");
		goto out;
	}
	for (size_t i = 0; i < g->n_runs; i++) {
		uint64_t at = g->runs[i]->vaddr, left = g->runs[i]->nr_pages * CR_PAGE_SIZE;

		while (left) {
			size_t n = left < GHOST_BUF ? left : GHOST_BUF;
			size_t keep = at >= e->path->size ? 0 :
				      e->path->size - at < n ? e->path->size - at : n;

			if (pread(data_fd, buf, n, off) != (ssize_t)n ||
			    pwrite(fd, buf, keep, at) != (ssize_t)keep) {
				cr_perr("cannot write deleted file %s again", e->path->path);
				goto out;
			}
			at += n;
			off += n;
			left -= n;
		}
	}
	rc = ftruncate(fd, e->path->size) ? cr_perr("cannot size %s", e->path->path) : 0;
out:
	free(buf);
	if (data_fd >= 0)
		close(data_fd);
	return rc;
}

/* The owner it had: as the process if it may, else with cryo's rights when the image
 * is cryo's own (docs/SECURITY.md), never for another user's image. */
int ghost_set_owner(struct restore_ctx *ctx, int fd, uint32_t uid, uint32_t gid,
		    const char *what)
{
	struct stat st;
	int rc;

	if (fstat(fd, &st))
		return cr_perr("cannot stat %s", what);
	if (st.st_uid == uid && st.st_gid == gid)
		return 0;
	if (!fchown(fd, uid, gid))
		return 0;
	if (ctx->trust.limited)
		return cr_perr("%s belonged to uid %u gid %u, which the restored process cannot "
			       "give it", what, uid, gid);
	trust_unbecome(&ctx->trust);
	rc = fchown(fd, uid, gid) ? cr_perr("cannot give %s its owner uid %u gid %u", what,
					    uid, gid) : 0;
	if (trust_become(&ctx->trust, ctx->creds))
		return -1;
	return rc;
}

/* Mode and mtime last: the mode can forbid what cryo did. */
static int finish_file(struct restore_ctx *ctx, const FileEntry *e, int fd)
{
	const PathFile *pf = e->path;
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { pf->mtime_sec, 0 } };

	if (ghost_set_owner(ctx, fd, pf->ghost->uid, pf->ghost->gid, pf->path))
		return -1;
	if (fchmod(fd, pf->mode & 07777))
		return cr_perr("cannot give %s its mode %04o", pf->path, pf->mode & 07777);
	if (futimens(fd, ts))
		return cr_perr("cannot give %s its mtime", pf->path);
	return 0;
}

static bool names_ghost(const FileEntry *e, const FileEntry *creator)
{
	return e->path && e->path->ghost && e->path->ghost->same_as == creator->id;
}

static uint64_t ghost_pos(const FileEntry *e)
{
	return e->path->mapped ? 0 : e->path->pos;
}

/* As the process; in a directory it cannot write (it held the file, made before it
 * gave up privileges), with cryo's rights when the image is cryo's own. */
static int create_in(struct restore_ctx *ctx, int dirfd, const char *name)
{
	const int flags = O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC;
	int fd = openat(dirfd, name, flags, 0600), err;

	if (fd >= 0 || (errno != EACCES && errno != EPERM) || ctx->trust.limited)
		return fd;
	trust_unbecome(&ctx->trust);
	fd = openat(dirfd, name, flags, 0600);
	err = errno;
	if (trust_become(&ctx->trust, ctx->creds)) {
		if (fd >= 0) {
			unlinkat(dirfd, name, 0);
			close(fd);
		}
		return -1;
	}
	errno = err;
	return fd;
}

/* In its directory under a name of cryo's, then under its own name if that is free
 * (so that /proc shows the path it had), then removed. */
static int make_ghost(struct restore_ctx *ctx, const FileEntry *e, int dirfd,
		      const char *base)
{
	char tmp[64];
	int mfd, own = -1;
	const char *name = tmp;

	snprintf(tmp, sizeof(tmp), ".cryo-ghost-%d-%u", getpid(), e->id);
	mfd = create_in(ctx, dirfd, tmp);
	if (mfd < 0)
		return cr_perr("cannot make deleted file %s again", e->path->path);
	if (fill_data(ctx, e, mfd) ||
	    ghost_open_all(ctx, e, mfd, names_ghost, ghost_pos, e->path->path, &own) ||
	    finish_file(ctx, e, mfd))
		goto fail;
	if (!renameat2(dirfd, tmp, dirfd, base, RENAME_NOREPLACE))
		name = base;
	else
		pr_info("%s exists again: its deleted file is made as %s", e->path->path, tmp);
	if (unlinkat(dirfd, name, 0)) {
		cr_perr("cannot remove %s again", e->path->path);
		goto fail;
	}
	close(mfd);
	return own;
fail:
	unlinkat(dirfd, name, 0);
	if (own >= 0)
		close(own);
	close(mfd);
	return -1;
}

int ghost_open(struct restore_ctx *ctx, const FileEntry *e)
{
	const GhostFile *g = e->path->ghost;
	char *dir, *slash;
	int dirfd, fd;

	if (g->same_as)
		return ghost_ahead_take(ctx, e->id);
	dir = strdup(e->path->path);
	if (!dir)
		return cr_err("out of memory");
	slash = strrchr(dir, '/');
	*slash = 0;
	dirfd = open(slash == dir ? "/" : dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		cr_perr("cannot make deleted file %s again: its directory", e->path->path);
		free(dir);
		return -1;
	}
	fd = make_ghost(ctx, e, dirfd, slash + 1);
	close(dirfd);
	free(dir);
	return fd;
}
