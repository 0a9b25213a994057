/* Pipes and named FIFOs. Dump reads what sits in a pipe's buffer without taking it
 * (tee() into a pipe of cryo's), with its capacity and, when its writer uses
 * O_DIRECT, its packets; an anonymous pipe whose other end is held outside the image
 * is recorded as external. Restore makes one pipe per dumped pipe in cryo (a FIFO is
 * opened by its path, made again if it is gone), refills it, hands each end to the
 * fds that had it, and connects an external end to an fd given with --inherit-fd. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_kind.h"
#include "files.h"
#include "log.h"
#include "sys.h"
#include "cryo.h"
#include "util.h"

#define PIPE_MODE_FLAGS (O_ACCMODE | O_NONBLOCK | O_DIRECT)

static bool pipe_match(const struct fd_probe *pr)
{
	return S_ISFIFO(pr->st->st_mode) &&
	       (!strncmp(pr->link, "pipe:[", 6) || pr->link[0] == '/');
}

/* ---- dump ---- */

static bool link_is(const char *path, const char *link)
{
	char l[256];
	ssize_t n = readlink(path, l, sizeof(l) - 1);

	return n > 0 && (l[n] = 0, !strcmp(l, link));
}

/* An fd of a process outside the image that is this pipe: its PID. */
static int is_the_pipe(pid_t pid, int fds, const char *name, void *link)
{
	char l[256];
	ssize_t n = readlinkat(fds, name, l, sizeof(l) - 1);

	return n > 0 && (l[n] = 0, !strcmp(l, link)) ? pid : 0;
}

/* Does a process outside the image hold this pipe? Its PID, or 0 (or -1: /proc
 * could not be read). */
static pid_t holder_outside(const struct dump_proc *p, const char *link)
{
	return file_scan_outside(p->ctx, is_the_pipe, (void *)link);
}

/* The access modes one process holds this pipe with: bit 0 read, bit 1 write; and
 * whether a writer uses O_DIRECT (packets). */
static int modes_in(pid_t pid, const char *link, bool *direct)
{
	char dir[64];
	int *fds, modes = 0;
	size_t n;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	if (proc_list_numbers(dir, &fds, &n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		char path[96];
		uint32_t fl;

		snprintf(path, sizeof(path), "%s/%d", dir, fds[i]);
		if (!link_is(path, link) || file_fd_flags(pid, fds[i], &fl))
			continue;
		modes |= (fl & O_ACCMODE) == O_WRONLY ? 2 : (fl & O_ACCMODE) == O_RDWR ? 3 : 1;
		if ((fl & O_ACCMODE) != O_RDONLY && (fl & O_DIRECT))
			*direct = true;
	}
	free(fds);
	return modes;
}

/* The same over every process of the image. */
static int held_modes(const struct fd_probe *pr, bool *direct)
{
	const struct dump_ctx *ctx = pr->p->ctx;
	int modes = 0;

	*direct = false;
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		int m;

		if (ctx->procs[i]->zombie)
			continue;
		m = modes_in(ctx->procs[i]->pid, pr->link, direct);
		if (m < 0)
			return -1;
		modes |= m;
	}
	return modes;
}

/* What the buffer holds, duplicated with tee() into a pipe of cryo's: the process's
 * pipe keeps every byte. Packets keep their boundaries: each read returns one. */
static int read_buffer(const struct fd_probe *pr, PipeFile *pf, bool packets)
{
	char path[64];
	int src, mine[2] = { -1, -1 }, rc = -1;
	size_t cap = 0, cap_packets = 0;
	uint8_t *buf = NULL;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pr->p->pid, pr->fd);
	src = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (src < 0)
		return cr_perr("process %d: cannot read the pipe of fd %d", pr->p->pid, pr->fd);
	if (pipe2(mine, O_NONBLOCK | O_CLOEXEC | (packets ? O_DIRECT : 0)) ||
	    fcntl(mine[1], F_SETPIPE_SZ, pf->capacity) < (int)pf->capacity) {
		cr_perr("process %d: cannot make a pipe to copy fd %d's buffer", pr->p->pid, pr->fd);
		goto out;
	}
	if (tee(src, mine[1], pf->capacity, SPLICE_F_NONBLOCK) < 0 && errno != EAGAIN) {
		cr_perr("process %d: cannot copy the buffer of fd %d", pr->p->pid, pr->fd);
		goto out;
	}
	for (;;) {
		if (cr_grow(&buf, &cap, pf->data.len + pf->capacity, 1, 4096))
			goto out;
		n = read(mine[0], buf + pf->data.len, pf->capacity);
		if (n <= 0)
			break;
		pf->data.len += n;
		if (packets) {
			if (cr_grow(&pf->packets, &cap_packets, pf->n_packets + 1, 4, 16))
				goto out;
			pf->packets[pf->n_packets++] = n;
		}
	}
	pf->has_data = 1;
	pf->data.data = buf;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(src);
	if (mine[0] >= 0)
		close(mine[0]);
	if (mine[1] >= 0)
		close(mine[1]);
	return rc;
}

static bool data_taken(const struct file_table *ft, const FileEntry *self, uint64_t id)
{
	for (size_t i = 0; i < ft->nr; i++) {
		const FileEntry *e = ft->files[i];

		if (e != self && e->pipe && e->pipe->pipe_id == id && e->pipe->has_data)
			return true;
	}
	return false;
}

static int fill_fifo(const struct fd_probe *pr, PipeFile *pf)
{
	if (file_link_deleted(pr->link))
		return cr_err("process %d: fd %d is the FIFO %s, which was removed; cryo "
			      "cannot open it again", pr->p->pid, pr->fd, pr->link);
	pf->fifo_path = strdup(pr->link);
	if (!pf->fifo_path)
		return cr_err("out of memory");
	pf->has_fifo_mode = 1;
	pf->fifo_mode = pr->st->st_mode & 07777;
	return 0;
}

/* Does anything outside the image hold this pipe? An anonymous pipe with both ends in
 * the image (or one end that nobody holds) is made the same at restore; one that
 * leads outside is external: its bytes stay in it, and restore takes the process's
 * end from --inherit-fd. A FIFO held outside too keeps its bytes; restore opens it
 * by its path again. */
static int check_peer(const struct fd_probe *pr, PipeFile *pf, int modes)
{
	pid_t outside;

	if (!pf->fifo_path && modes == 3)
		return 0;
	outside = holder_outside(pr->p, pr->link);
	if (outside <= 0)
		return outside;
	pf->has_external = pf->external = 1;
	if (pf->fifo_path)
		return 0;
	pr_warn("process %d: fd %d is %s, also held by process %d outside the image; "
		"restore needs --inherit-fd fd[N]:%s", pr->p->pid, pr->fd, pr->link, outside,
		pr->link);
	return 0;
}

static int pipe_dump(const struct fd_probe *pr, FileEntry *e)
{
	PipeFile *pf = calloc(1, sizeof(*pf));
	bool direct;
	int fd, modes = held_modes(pr, &direct);

	if (!pf)
		return cr_err("out of memory");
	pipe_file__init(pf);
	e->pipe = pf;
	e->kind = pr->link[0] == '/' ? FILE_KIND__FILE_FIFO : FILE_KIND__FILE_PIPE;
	e->flags = pr->fi->flags & PIPE_MODE_FLAGS;
	pf->pipe_id = pr->st->st_ino;
	if (modes < 0 || (e->kind == FILE_KIND__FILE_FIFO && fill_fifo(pr, pf)))
		return -1;
	fd = file_fd_dup(pr->p->pid, pr->fd);
	if (fd < 0)
		return -1;
	pf->capacity = fcntl(fd, F_GETPIPE_SZ);
	close(fd);
	if ((int)pf->capacity <= 0)
		return cr_perr("process %d: cannot read the capacity of fd %d", pr->p->pid, pr->fd);
	if (check_peer(pr, pf, modes))
		return -1;
	/* An external pipe's bytes stay in it for whoever reads it now. */
	if (pf->external || data_taken(&pr->p->ctx->files, e, pf->pipe_id))
		return 0;
	return read_buffer(pr, pf, direct);
}

static void pipe_free(FileEntry *e)
{
	if (!e->pipe)
		return;
	free(e->pipe->data.data);
	free(e->pipe->packets);
	free(e->pipe->fifo_path);
	free(e->pipe);
}

/* ---- restore ---- */

/* One pipe of the image, made once in cryo. */
struct pipe_made {
	uint64_t id;
	const char *fifo;
	int end[2];		/* read, write (-1: not opened) */
	int hold_reader;	/* a FIFO's writer needs a reader to open */
};

struct pipe_state {
	struct pipe_made *p;
	size_t nr, cap;
};

static int pipe_check(const FileEntry *e)
{
	const PipeFile *pf = e->pipe;
	uint64_t total = 0;

	if (!pf || !pf->capacity || pf->capacity > (1u << 30))
		return cr_err("image: pipe file %u is invalid", e->id);
	if ((e->kind == FILE_KIND__FILE_FIFO) != (pf->fifo_path != NULL) ||
	    (pf->fifo_path && pf->fifo_path[0] != '/'))
		return cr_err("image: pipe file %u has a wrong FIFO path", e->id);
	if (pf->data.len > pf->capacity)
		return cr_err("image: pipe file %u holds more than its capacity", e->id);
	for (size_t i = 0; i < pf->n_packets; i++)
		total += pf->packets[i];
	if (pf->n_packets && total != pf->data.len)
		return cr_err("image: the packets of pipe file %u do not add up", e->id);
	return 0;
}

static struct pipe_made *made_of(struct restore_ctx *ctx, const FileEntry *e)
{
	struct pipe_state *s = ctx->pipes;

	if (!s) {
		s = ctx->pipes = calloc(1, sizeof(*s));
		if (!s) {
			cr_err("out of memory");
			return NULL;
		}
	}
	for (size_t i = 0; i < s->nr; i++)
		if (s->p[i].id == e->pipe->pipe_id && (e->kind == FILE_KIND__FILE_FIFO) ==
							      (s->p[i].fifo != NULL))
			return &s->p[i];
	if (cr_grow(&s->p, &s->cap, s->nr + 1, sizeof(*s->p), 8))
		return NULL;
	s->p[s->nr] = (struct pipe_made){ e->pipe->pipe_id, e->pipe->fifo_path, { -1, -1 }, -1 };
	return &s->p[s->nr++];
}

/* A FIFO by its path (made again, with its mode, if it is gone). Opening it never
 * blocks: a reader is opened first, and kept until every end is handed out. */
static int open_fifo(struct pipe_made *m, const PipeFile *pf)
{
	struct stat st;

	if (lstat(pf->fifo_path, &st) && errno == ENOENT &&
	    mkfifo(pf->fifo_path, pf->has_fifo_mode ? pf->fifo_mode : 0600))
		return cr_perr("cannot make the FIFO %s again", pf->fifo_path);
	m->end[0] = open(pf->fifo_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (m->end[0] < 0)
		return cr_perr("cannot open the FIFO %s", pf->fifo_path);
	if (fstat(m->end[0], &st) || !S_ISFIFO(st.st_mode))
		return cr_err("%s is no longer a FIFO", pf->fifo_path);
	m->end[1] = open(pf->fifo_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (m->end[1] < 0)
		return cr_perr("cannot open the FIFO %s for writing", pf->fifo_path);
	return 0;
}

static int make_pipe(struct pipe_made *m, const PipeFile *pf)
{
	if (pf->fifo_path)
		return open_fifo(m, pf);
	if (pipe2(m->end, O_CLOEXEC | O_NONBLOCK | (pf->n_packets ? O_DIRECT : 0)))
		return cr_perr("cannot make a pipe");
	return 0;
}

/* Capacity, then the bytes, packet by packet for a packet pipe. */
static int refill(struct pipe_made *m, const PipeFile *pf)
{
	size_t at = 0;

	if (fcntl(m->end[1], F_SETPIPE_SZ, pf->capacity) < (int)pf->capacity)
		return cr_perr("cannot give a pipe its capacity of %u bytes", pf->capacity);
	if (pf->n_packets && fcntl(m->end[1], F_SETFL, O_NONBLOCK | O_DIRECT))
		return cr_perr("cannot put packets back into a pipe");
	for (size_t i = 0; at < pf->data.len; i++) {
		size_t n = pf->n_packets ? pf->packets[i] : pf->data.len - at;

		if (write(m->end[1], pf->data.data + at, n) != (ssize_t)n)
			return cr_perr("cannot put %zu bytes back into a pipe", pf->data.len);
		at += n;
	}
	return 0;
}

/* A new open file description of one end, with the entry's flags. */
static int end_for(struct pipe_made *m, const FileEntry *e)
{
	int side = (e->flags & O_ACCMODE) == O_WRONLY ? 1 : 0;
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", m->end[side]);
	fd = open(path, (e->flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return cr_perr("cannot open a pipe end again");
	if (fcntl(fd, F_SETFL, e->flags & (O_NONBLOCK | O_DIRECT))) {
		close(fd);
		return cr_perr("cannot set the flags of a pipe end");
	}
	return fd;
}

static int inherited(struct restore_ctx *ctx, const FileEntry *e)
{
	char want[48];
	struct stat st;

	snprintf(want, sizeof(want), "pipe:[%llu]", (unsigned long long)e->pipe->pipe_id);
	for (size_t i = 0; i < ctx->nr_inherit; i++) {
		int fd;

		if (strcmp(ctx->inherit[i].what, want))
			continue;
		if (fstat(ctx->inherit[i].fd, &st) || !S_ISFIFO(st.st_mode))
			return cr_err("--inherit-fd fd[%d]:%s: fd %d is not a pipe",
				      ctx->inherit[i].fd, want, ctx->inherit[i].fd);
		fd = fcntl(ctx->inherit[i].fd, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? cr_perr("cannot take fd %d", ctx->inherit[i].fd) : fd;
	}
	return cr_err("image: %s leads outside the image; give the process's end of it with "
		      "--inherit-fd fd[N]:%s", want, want);
}

static int pipe_open(struct restore_ctx *ctx, const FileEntry *e)
{
	struct pipe_made *m;

	if (e->pipe->external && e->kind == FILE_KIND__FILE_PIPE)
		return inherited(ctx, e);
	m = made_of(ctx, e);
	if (!m)
		return -1;
	if (m->end[0] < 0 && make_pipe(m, e->pipe))
		return -1;
	if (e->pipe->has_data && refill(m, e->pipe))
		return -1;
	return end_for(m, e);
}

/* Every end is handed out: cryo's own go (an end nobody had is closed, as it was). */
static void pipe_open_done(struct restore_ctx *ctx)
{
	struct pipe_state *s = ctx->pipes;

	for (size_t i = 0; s && i < s->nr; i++)
		for (int k = 0; k < 2; k++)
			if (s->p[i].end[k] >= 0)
				close(s->p[i].end[k]);
	if (s)
		free(s->p);
	free(s);
	ctx->pipes = NULL;
}

static bool pipe_handles(FileKind k)
{
	return k == FILE_KIND__FILE_PIPE || k == FILE_KIND__FILE_FIFO;
}

const struct fd_kind pipe_kind = {
	.name = "a pipe or FIFO",
	.handles = pipe_handles,
	.match = pipe_match,
	.dump = pipe_dump,
	.check = pipe_check,
	.open = pipe_open,
	.open_done = pipe_open_done,
	.free = pipe_free,
};
