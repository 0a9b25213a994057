/* File locks: flock and OFD locks, kept with their open file description and taken
 * again by cryo on its fd for it before any process exists; POSIX locks, kept with
 * their process and taken again by the process itself, last in its final table. Every
 * lock /proc/locks shows for the tree must have been seen through an fd. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "file_locks.h"
#include "files.h"
#include "log.h"
#include "sys.h"
#include "util.h"

#ifndef F_OFD_SETLK
#define F_OFD_SETLK 37
#endif

#define LOCK_LINE_MAX 256
#define LOCK_TOKENS 12
#define LOCKS_MAX 4096			/* per file or process in an image */

/* Locks seen through the tree's fds, for locks_dump_check. */
struct locks_seen {
	struct proc_lock *l;
	bool *used;
	size_t nr, cap;
};

/* ---- parsing (pure) ---- */

static int parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > INT64_MAX)
		return -1;
	*out = v;
	return 0;
}

static int parse_hex32(const char *s, char stop, const char **next, uint32_t *out)
{
	unsigned long v;
	char *end;

	if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 16);
	if (errno || *end != stop || v > UINT32_MAX)
		return -1;
	*out = v;
	*next = end + 1;
	return 0;
}

/* "MAJ:MIN:INO" (hex, hex, decimal) or "<none>:0". */
static int parse_dev_ino(const char *s, struct proc_lock *l)
{
	const char *p;

	if (!strcmp(s, "<none>:0"))
		return 0;
	if (parse_hex32(s, ':', &p, &l->dev_major) || parse_hex32(p, ':', &p, &l->dev_minor))
		return -1;
	return parse_u64(p, &l->ino);
}

static int parse_kind(const char *s, struct proc_lock *l)
{
	static const struct { const char *name; int kind; } kinds[] = {
		{ "POSIX", LC_POSIX }, { "OFDLCK", LC_OFD }, { "FLOCK", LC_FLOCK },
		{ "LEASE", LC_LEASE }, { "DELEG", LC_LEASE }, { "ACCESS", LC_OTHER },
		{ "UNKNOWN", LC_OTHER },
	};

	for (size_t i = 0; i < CR_ARRAY_SIZE(kinds); i++)
		if (!strcmp(s, kinds[i].name)) {
			l->kind = kinds[i].kind;
			strcpy(l->kind_name, kinds[i].name);
			return 0;
		}
	return -1;
}

static int parse_type(const char *s, struct proc_lock *l)
{
	l->write = !strcmp(s, "WRITE");
	l->unlock = !strcmp(s, "UNLCK");
	return l->write || l->unlock || !strcmp(s, "READ") ? 0 : -1;
}

static int parse_pid(const char *s, int *pid)
{
	uint64_t v;

	if (!strcmp(s, "-1")) {
		*pid = -1;
		return 0;
	}
	if (parse_u64(s, &v) || v > INT32_MAX)
		return -1;
	*pid = v;
	return 0;
}

static int split(char *buf, char **tok)
{
	char *save;
	int n = 0;

	for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (n == LOCK_TOKENS)
			return -1;
		tok[n++] = t;
	}
	return n;
}

/* "ID: [->] KIND MODIFIER TYPE PID MAJ:MIN:INO START END|EOF" */
static int parse_tokens(char **t, int n, struct proc_lock *l)
{
	size_t idlen = strlen(t[0]);
	int i = 1;

	if (idlen < 2 || t[0][idlen - 1] != ':' || t[0][0] < '0' || t[0][0] > '9')
		return -1;
	if (i < n && !strcmp(t[i], "->")) {
		l->waiter = true;
		i++;
	}
	if (n - i != 7 || parse_kind(t[i], l) || parse_type(t[i + 2], l) ||
	    parse_pid(t[i + 3], &l->pid) || parse_dev_ino(t[i + 4], l) ||
	    parse_u64(t[i + 5], &l->start))
		return -1;
	l->advisory = !strcmp(t[i + 1], "ADVISORY");
	if (!strcmp(t[i + 6], "EOF"))
		l->end = LOCK_TO_EOF;
	else if (parse_u64(t[i + 6], &l->end) || l->end < l->start)
		return -1;
	return 0;
}

int lock_parse_line(const char *s, size_t len, struct proc_lock *out)
{
	char buf[LOCK_LINE_MAX], *tok[LOCK_TOKENS];
	int n;

	memset(out, 0, sizeof(*out));
	if (memchr(s, '\n', len))
		len = (const char *)memchr(s, '\n', len) - s;
	if (len >= sizeof(buf) || memchr(s, 0, len))
		return -1;
	memcpy(buf, s, len);
	buf[len] = 0;
	n = split(buf, tok);
	return n < 8 || parse_tokens(tok, n, out) ? -1 : 0;
}

/* The start of a line for a message, control characters escaped. */
static const char *shown(const char *s, size_t len, char *out, size_t outlen)
{
	char buf[LOCK_LINE_MAX];

	len = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;
	memcpy(buf, s, len);
	buf[len] = 0;
	cr_escape_line(buf, out, outlen);
	return out;
}

int lock_to_pb(const struct proc_lock *l, FileLock *out)
{
	file_lock__init(out);
	switch (l->kind) {
	case LC_FLOCK:
		if (l->start || l->end != LOCK_TO_EOF)
			return -1;
		out->kind = FILE_LOCK_KIND__LOCK_FLOCK;
		break;
	case LC_POSIX:
		out->kind = FILE_LOCK_KIND__LOCK_POSIX;
		break;
	case LC_OFD:
		out->kind = FILE_LOCK_KIND__LOCK_OFD;
		break;
	default:
		return -1;
	}
	if (l->unlock || !l->advisory || l->waiter)
		return -1;
	out->write = l->write;
	out->start = l->start;
	out->len = l->end == LOCK_TO_EOF ? 0 : l->end - l->start + 1;
	return 0;
}

static bool lock_same(const struct proc_lock *a, const struct proc_lock *b)
{
	return a->kind == b->kind && a->waiter == b->waiter && a->write == b->write &&
	       a->unlock == b->unlock && a->pid == b->pid && a->dev_major == b->dev_major &&
	       a->dev_minor == b->dev_minor && a->ino == b->ino && a->start == b->start &&
	       a->end == b->end;
}

/* ---- dump ---- */

static struct locks_seen *seen_of(struct dump_ctx *ctx)
{
	if (!ctx->locks)
		ctx->locks = calloc(1, sizeof(struct locks_seen));
	return ctx->locks;
}

static bool seen_has(const struct locks_seen *s, const struct proc_lock *l)
{
	for (size_t i = 0; s && i < s->nr; i++)
		if (lock_same(&s->l[i], l))
			return true;
	return false;
}

static int seen_add(struct dump_ctx *ctx, const struct proc_lock *l)
{
	struct locks_seen *s = seen_of(ctx);
	size_t cap;

	if (!s)
		return cr_err("out of memory");
	cap = s->cap;
	if (cr_grow(&s->l, &cap, s->nr + 1, sizeof(*s->l), 16) ||
	    cr_grow(&s->used, &s->cap, s->nr + 1, sizeof(*s->used), 16))
		return -1;
	s->l[s->nr] = *l;
	s->used[s->nr++] = false;
	return 0;
}

static int push_lock(FileLock ***arr, size_t *nr, const FileLock *l)
{
	FileLock **grown, *fl;

	fl = malloc(sizeof(*fl));
	grown = realloc(*arr, (*nr + 1) * sizeof(**arr));
	if (!fl || !grown) {
		free(fl);
		if (grown)
			*arr = grown;
		return cr_err("out of memory");
	}
	*arr = grown;
	*fl = *l;
	(*arr)[(*nr)++] = fl;
	return 0;
}

/* Which files can carry a lock cryo takes again: regular files, and directories for
 * flock. */
static const char *unlockable(const FileEntry *e, int kind)
{
	if (e->kind == FILE_KIND__FILE_REG && !(e->path && e->path->in_own_proc))
		return NULL;
	if (e->kind == FILE_KIND__FILE_DIR && kind == LC_FLOCK)
		return NULL;
	return e->kind == FILE_KIND__FILE_DIR ? "a directory" : "a file of this kind";
}

static struct dump_proc *tree_proc(struct dump_ctx *ctx, int pid);

/* The process sharing p's fd table (CLONE_FILES) that took a POSIX lock; p itself, or
 * one that has ended since, is not recorded: p takes it again. */
static void taken_by(struct dump_proc *p, const struct proc_lock *l, FileLock *fl)
{
	struct dump_proc *t = tree_proc(p->ctx, l->pid);

	if (!t || t == p || sys_kcmp(p->pid, t->pid, KCMP_FILES, 0, 0))
		return;
	fl->has_pid = 1;
	fl->pid = t->pid;
}

static int dump_one_lock(const struct fd_probe *pr, FileEntry *e, bool new,
			 const struct proc_lock *l)
{
	struct dump_proc *p = pr->p;
	const char *why;
	FileLock fl;

	if (l->kind == LC_LEASE)
		return cr_err("process %d: fd %d (%s) holds a lease (F_SETLEASE, %s); cryo does not "
			      "restore leases", p->pid, pr->fd, pr->link, l->kind_name);
	if (l->kind == LC_OTHER || !l->advisory || l->waiter || l->unlock)
		return cr_err("process %d: fd %d (%s) holds a %s lock cryo does not know", p->pid,
			      pr->fd, pr->link, l->kind_name);
	why = unlockable(e, l->kind);
	if (why)
		return cr_err("process %d: fd %d (%s) holds a %s lock on %s; cryo restores locks "
			      "on regular files only", p->pid, pr->fd, pr->link, l->kind_name, why);
	if (lock_to_pb(l, &fl))
		return cr_err("process %d: fd %d (%s) holds a %s lock with a range", p->pid, pr->fd,
			      pr->link, l->kind_name);
	/* A process's POSIX lock shows on each of its fds of that description. */
	if (l->kind == LC_POSIX) {
		if (seen_has(p->ctx->locks, l))
			return 0;
		if (p->core.n_posix_locks >= LOCKS_MAX)
			return cr_err("process %d holds more than %d POSIX locks", p->pid, LOCKS_MAX);
		fl.has_fd = 1;
		fl.fd = pr->fd;
		taken_by(p, l, &fl);
		return push_lock(&p->core.posix_locks, &p->core.n_posix_locks, &fl) ||
		       seen_add(p->ctx, l);
	}
	/* flock and OFD locks show on every fd of the description: taken from its first. */
	if (!new)
		return 0;
	if (e->n_locks >= LOCKS_MAX)
		return cr_err("process %d: fd %d (%s) holds more than %d locks", p->pid, pr->fd,
			      pr->link, LOCKS_MAX);
	return push_lock(&e->locks, &e->n_locks, &fl) || seen_add(p->ctx, l);
}

int locks_dump_fd(const struct fd_probe *pr, FileEntry *e, bool new)
{
	const char *s = pr->fdinfo, *end = pr->fdinfo + pr->fdinfo_len;

	while (s < end) {
		const char *nl = memchr(s, '\n', end - s);
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
		struct proc_lock l;

		if (n > 5 && !memcmp(s, "lock:", 5)) {
			char line[64];

			if (lock_parse_line(s + 5, n - 5, &l))
				return cr_err("process %d: fd %d (%s): unreadable lock line in its "
					      "fdinfo '%s'", pr->p->pid, pr->fd, pr->link,
					      shown(s, n, line, sizeof(line)));
			if (dump_one_lock(pr, e, new, &l))
				return -1;
		}
		s += n + 1;
	}
	return 0;
}

static struct dump_proc *tree_proc(struct dump_ctx *ctx, int pid)
{
	for (size_t i = 0; pid > 0 && i < ctx->nr_procs; i++)
		if (ctx->procs[i]->pid == pid && !ctx->procs[i]->zombie)
			return ctx->procs[i];
	return NULL;
}

/* The first mapping of the tree of that inode; *who its process. */
static const struct proc_vma *mapped_by(struct dump_ctx *ctx, const struct proc_lock *l,
					 struct dump_proc **who)
{
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		const struct proc_vmas *vs = &ctx->procs[i]->vmas;

		for (size_t j = 0; !ctx->procs[i]->zombie && j < vs->nr; j++)
			if (vs->v[j].ino == l->ino && vs->v[j].dev_major == l->dev_major &&
			    vs->v[j].dev_minor == l->dev_minor && l->ino) {
				*who = ctx->procs[i];
				return &vs->v[j];
			}
	}
	return NULL;
}

static bool seen_take(struct locks_seen *s, const struct proc_lock *l)
{
	for (size_t i = 0; s && i < s->nr; i++)
		if (!s->used[i] && lock_same(&s->l[i], l)) {
			s->used[i] = true;
			return true;
		}
	return false;
}

/* A lock of /proc/locks no fd of the tree showed. */
static int check_unseen(struct dump_ctx *ctx, const struct proc_lock *l)
{
	struct dump_proc *owner = tree_proc(ctx, l->pid), *mapper = NULL;
	const struct proc_vma *v = mapped_by(ctx, l, &mapper);
	const char *path = v && v->path ? v->path : "a file";

	if (l->waiter) {
		if (!owner)
			return 0;	/* outside, waiting for the tree's lock */
		return cr_err("process %d is waiting for a %s lock on %02x:%02x:%llu while stopped",
			      l->pid, l->kind_name, l->dev_major, l->dev_minor,
			      (unsigned long long)l->ino);
	}
	if (owner)
		return cr_err("process %d holds a %s lock on %02x:%02x:%llu (%s) through no open fd "
			      "(a file closed while it stays mapped?); cryo cannot restore it",
			      l->pid, l->kind_name, l->dev_major, l->dev_minor,
			      (unsigned long long)l->ino, v ? path : "mapped by none of the tree");
	/* An OFD lock names no process, and a lock cryo took again at a restore names
	 * that cryo, gone since: one on a file the tree maps may be held through that
	 * mapping's description. */
	if (v && (l->pid == -1 || (l->pid > 0 && kill(l->pid, 0) && errno == ESRCH)))
		return cr_err("process %d maps %s, on which a %s lock is held through no fd of "
			      "the tree (a file closed while it stays mapped?); cryo cannot tell "
			      "whose it is", mapper->pid, path, l->kind_name);
	return 0;
}

int locks_dump_check(struct dump_ctx *ctx)
{
	size_t len;
	char *txt = proc_read_file("/proc/locks", &len), *s, *end;
	int rc = 0;

	if (!txt)
		return -1;
	for (s = txt, end = txt + len; s < end && !rc;) {
		char *nl = memchr(s, '\n', end - s);
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
		struct proc_lock l;

		char line[64];

		if (n && lock_parse_line(s, n, &l))
			rc = cr_err("/proc/locks: unreadable line '%s'",
				    shown(s, n, line, sizeof(line)));
		else if (n && !seen_take(ctx->locks, &l))
			rc = check_unseen(ctx, &l);
		s += n + 1;
	}
	free(txt);
	if (!rc && ctx->locks) {
		struct locks_seen *sn = ctx->locks;

		for (size_t i = 0; i < sn->nr; i++)
			if (!sn->used[i])
				return cr_err("a %s lock on %02x:%02x:%llu shown in an fdinfo is not "
					      "in /proc/locks", sn->l[i].kind_name, sn->l[i].dev_major,
					      sn->l[i].dev_minor, (unsigned long long)sn->l[i].ino);
	}
	return rc;
}

static void free_locks(FileLock **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

void locks_free_entry(FileEntry *e)
{
	free_locks(e->locks, e->n_locks);
	e->locks = NULL;
	e->n_locks = 0;
}

void locks_dump_free(struct dump_ctx *ctx)
{
	struct locks_seen *s = ctx->locks;

	for (size_t i = 0; i < ctx->nr_procs; i++) {
		Core *c = &ctx->procs[i]->core;

		if (ctx->procs[i]->zombie)
			continue;
		free_locks(c->posix_locks, c->n_posix_locks);
		c->posix_locks = NULL;
		c->n_posix_locks = 0;
	}
	if (s) {
		free(s->l);
		free(s->used);
		free(s);
		ctx->locks = NULL;
	}
}

/* ---- restore ---- */

static int check_range(const FileLock *l)
{
	if (l->start > INT64_MAX || l->len > INT64_MAX ||
	    (l->len && l->start > (uint64_t)INT64_MAX - (l->len - 1)))
		return -1;
	return 0;
}

/* The description must be open for what the lock needs (F_RDLCK: read, F_WRLCK:
 * write); flock needs nothing. */
static bool mode_allows(uint32_t flags, const FileLock *l)
{
	uint32_t acc = flags & O_ACCMODE;

	if (l->kind == FILE_LOCK_KIND__LOCK_FLOCK)
		return true;
	return l->write ? acc == O_WRONLY || acc == O_RDWR : acc == O_RDONLY || acc == O_RDWR;
}

int locks_check_entry(const FileEntry *e)
{
	size_t nr_flock = 0;

	if (!e->n_locks)
		return 0;
	if (e->n_locks > LOCKS_MAX)
		return cr_err("image: file %u has %zu locks", e->id, e->n_locks);
	if (e->kind != FILE_KIND__FILE_REG && e->kind != FILE_KIND__FILE_DIR)
		return cr_err("image: file %u has locks but is not a regular file", e->id);
	if (e->path && e->path->in_own_proc)
		return cr_err("image: file %u has locks but lies under its process's /proc", e->id);
	for (size_t i = 0; i < e->n_locks; i++) {
		const FileLock *l = e->locks[i];

		if (l->kind == FILE_LOCK_KIND__LOCK_FLOCK) {
			if (l->start || l->len || ++nr_flock > 1)
				return cr_err("image: file %u has a bad flock lock", e->id);
		} else if (l->kind != FILE_LOCK_KIND__LOCK_OFD || check_range(l) ||
			   e->kind != FILE_KIND__FILE_REG) {
			return cr_err("image: file %u has a bad lock (kind %d)", e->id, l->kind);
		}
		if (l->has_fd)
			return cr_err("image: file %u has a lock naming an fd", e->id);
		if (!mode_allows(e->flags, l))
			return cr_err("image: file %u has a lock its open mode cannot take", e->id);
	}
	return 0;
}

static const Fd *fd_of(const Core *c, uint32_t fd)
{
	for (size_t i = 0; i < c->n_fds; i++)
		if (c->fds[i]->fd == fd)
			return c->fds[i];
	return NULL;
}

int locks_check_core(const Core *c, const FileTable *ft)
{
	if (c->n_posix_locks > LOCKS_MAX)
		return cr_err("image: process %u has %zu POSIX locks", c->pid, c->n_posix_locks);
	for (size_t i = 0; i < c->n_posix_locks; i++) {
		const FileLock *l = c->posix_locks[i];
		const Fd *f = l->has_fd ? fd_of(c, l->fd) : NULL;
		const FileEntry *e = f ? file_by_id(ft, f->file_id) : NULL;

		if (l->kind != FILE_LOCK_KIND__LOCK_POSIX || check_range(l))
			return cr_err("image: process %u has a bad POSIX lock", c->pid);
		if (!e || e->kind != FILE_KIND__FILE_REG || (e->path && e->path->in_own_proc))
			return cr_err("image: process %u has a POSIX lock through fd %u, which is no "
				      "regular file of it", c->pid, l->fd);
		if (!mode_allows(e->flags, l))
			return cr_err("image: process %u has a %s lock through fd %u, not open for "
				      "it", c->pid, l->write ? "write" : "read", l->fd);
	}
	return 0;
}

static void to_flock(const FileLock *l, struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = l->write ? F_WRLCK : F_RDLCK;
	fl->l_whence = SEEK_SET;
	fl->l_start = l->start;
	fl->l_len = l->len;
}

static int take_one(const FileEntry *e, int fd, const FileLock *l)
{
	const char *path = e->path ? e->path->path : "?";
	const char *what = l->kind == FILE_LOCK_KIND__LOCK_FLOCK ? "flock" : "OFD";
	struct flock fl;
	int rc;

	if (l->kind == FILE_LOCK_KIND__LOCK_FLOCK) {
		rc = flock(fd, (l->write ? LOCK_EX : LOCK_SH) | LOCK_NB);
	} else {
		to_flock(l, &fl);
		rc = fcntl(fd, F_OFD_SETLK, &fl);
	}
	if (!rc)
		return 0;
	if (errno == EWOULDBLOCK || errno == EAGAIN || errno == EACCES)
		return cr_err("file %u (%s): its %s %s lock is held by another process now; it "
			      "cannot be restored", e->id, path, what, l->write ? "write" : "read");
	return cr_perr("file %u (%s): cannot take its %s lock", e->id, path, what);
}

int locks_take(const FileEntry *e, int fd)
{
	for (size_t i = 0; i < e->n_locks; i++)
		if (take_one(e, fd, e->locks[i]))
			return -1;
	return 0;
}

/* Where its fd table is kept: itself, or the parent it shares it with (CLONE_FILES). */
static const struct restore_proc *table_owner(const struct restore_proc *rp)
{
	while (rp->core->shares_files && rp->parent && rp->parent->core)
		rp = rp->parent;
	return rp;
}

/* Every lock taken by another process must name one sharing the table. */
static int check_takers(const struct restore_proc *owner)
{
	const struct restore_ctx *ctx = owner->ctx;
	const Core *c = owner->core;

	for (size_t i = 0; i < c->n_posix_locks; i++) {
		uint32_t pid = c->posix_locks[i]->pid;
		bool found = !c->posix_locks[i]->has_pid || pid == c->pid;

		for (size_t j = 0; j < ctx->nr_procs && !found; j++)
			found = ctx->procs[j]->core && ctx->procs[j]->core->pid == pid &&
				table_owner(ctx->procs[j]) == owner;
		if (!found)
			return cr_err("image: process %u has a POSIX lock taken by process %u, "
				      "which does not share its fd table", c->pid, pid);
	}
	return 0;
}

/* After every fd cryo handed down is closed: closing any fd of a file drops the
 * process's POSIX locks on it. Its own, and those it took through the fd table of a
 * parent it shares. */
int locks_plan_posix(struct restore_proc *rp, struct plan *p)
{
	const struct restore_proc *owner = table_owner(rp);
	const Core *c = owner->core;

	if (owner == rp && (locks_check_core(c, rp->ctx->files) || check_takers(rp)))
		return -1;
	for (size_t i = 0; i < c->n_posix_locks; i++) {
		const FileLock *l = c->posix_locks[i];
		char label[128];
		struct flock fl;
		uint64_t at;
		int n;

		if ((l->has_pid ? l->pid : c->pid) != rp->core->pid)
			continue;
		/* The label lives in the plan, as long as its calls. */
		n = snprintf(label, sizeof(label), "taking its POSIX %s lock of fd %u at %llu "
			     "again (held by another process now?)", l->write ? "write" : "read",
			     l->fd, (unsigned long long)l->start);
		at = plan_data(p, label, n + 1);
		to_flock(l, &fl);
		plan_call(p, at ? (const char *)at : "taking a POSIX lock again", 0, __NR_fcntl,
			  l->fd, F_SETLK, plan_data(p, &fl, sizeof(fl)), 0, 0, 0);
	}
	return 0;
}
