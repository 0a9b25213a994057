/* POSIX message queues: name, attributes, owner and queued messages with their
 * priorities (read and sent back while the tree is frozen); restore takes the dumped
 * queue back if it is still there, or makes it again, and refills it once. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "fd_kind.h"
#include "files.h"
#include "log.h"
#include "util.h"

#define MQUEUE_MAGIC 0x19800202
#define MQ_MAX_MSGS 65536		/* HARD_MSGMAX */
#define MQ_MAX_MSGSIZE (16 << 20)	/* HARD_MSGSIZEMAX */
#define MQ_MAX_PRIO 32768		/* MQ_PRIO_MAX */
#define MQ_MAX_COPY (64u << 20)		/* bytes of messages cryo copies at most */

/* ---- dump ---- */

static bool mqueue_match(const struct fd_probe *pr)
{
	struct statfs sf;
	char path[64];

	if (!S_ISREG(pr->st->st_mode))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pr->p->pid, pr->fd);
	return !statfs(path, &sf) && sf.f_type == MQUEUE_MAGIC;
}

/* An fd of a process outside the tree on this queue (arg: its stat). */
static int is_the_queue(pid_t pid, int fds, const char *name, void *arg)
{
	const struct stat *q = arg;
	struct stat st;

	return !fstatat(fds, name, &st, 0) && st.st_dev == q->st_dev && st.st_ino == q->st_ino ?
	       pid : 0;
}

/* Reading the messages and sending them back is only unnoticed when nobody outside the
 * frozen tree can look. */
static int check_no_outside_holder(const struct fd_probe *pr)
{
	int pid = file_scan_outside(pr->p->ctx, is_the_queue, (void *)pr->st);

	if (pid <= 0)
		return pid;
	return cr_err("process %d: fd %d (message queue %s) is also open in process %d, "
		      "outside the tree", pr->p->pid, pr->fd, pr->link, pid);
}

/* A description of the queue of cryo's own (opening the fd's link makes one): the
 * process's is left as it is. */
static int open_queue(const struct fd_probe *pr)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pr->p->pid, pr->fd);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return cr_perr("process %d: fd %d: cannot open message queue %s", pr->p->pid,
			       pr->fd, pr->link);
	return fd;
}

static int add_message(MqueueFile *mq, const char *buf, ssize_t n, unsigned int prio)
{
	MqueueMessage *m = calloc(1, sizeof(*m) + n + 1);

	if (!m)
		return cr_err("out of memory");
	mqueue_message__init(m);
	m->prio = prio;
	m->data.data = (uint8_t *)(m + 1);
	m->data.len = n;
	memcpy(m->data.data, buf, n);
	mq->messages[mq->n_messages++] = m;
	return 0;
}

/* One message in the copy: priority, length, bytes. */
struct mq_rec {
	uint32_t prio, len;
};

/* In a child of cryo's: take every message out (a timeout already past never blocks),
 * put each back in the same order — priorities and the order within each priority are
 * as they were — and only then hand the copies over. A cryo killed meanwhile leaves
 * the child to finish putting them back: a dump never loses a message. */
static int copy_in_child(int fd, uint8_t *buf, size_t cap, long n, long msgsize, int out)
{
	const struct timespec past = { 0, 0 };
	size_t used = 0;
	int rc = 0;

	signal(SIGPIPE, SIG_IGN);
	for (long i = 0; i < n; i++) {
		struct mq_rec r;
		ssize_t len;

		if (cap - used < sizeof(r) + (size_t)msgsize) {
			rc = 2;
			break;
		}
		len = mq_timedreceive(fd, (char *)buf + used + sizeof(r), msgsize, &r.prio, &past);
		if (len < 0) {
			rc = 3;
			break;
		}
		r.len = len;
		memcpy(buf + used, &r, sizeof(r));
		used += sizeof(r) + len;
	}
	for (size_t off = 0; off < used;) {
		struct mq_rec r;

		memcpy(&r, buf + off, sizeof(r));
		if (mq_timedsend(fd, (const char *)buf + off + sizeof(r), r.len, r.prio, &past))
			rc = 4;
		off += sizeof(r) + r.len;
	}
	for (size_t off = 0; off < used;) {
		ssize_t w = write(out, buf + off, used - off);

		if (w <= 0)
			return 5;
		off += w;
	}
	return rc;
}

static int parse_copy(MqueueFile *mq, const uint8_t *buf, size_t len, long curmsgs)
{
	mq->messages = calloc(curmsgs + 1, sizeof(*mq->messages));
	if (!mq->messages)
		return cr_err("out of memory");
	for (size_t off = 0; off < len;) {
		struct mq_rec r;

		if (len - off < sizeof(r))
			return -1;
		memcpy(&r, buf + off, sizeof(r));
		off += sizeof(r);
		if (r.len > len - off || mq->n_messages == (size_t)curmsgs ||
		    add_message(mq, (const char *)buf + off, r.len, r.prio))
			return -1;
		off += r.len;
	}
	return mq->n_messages == (size_t)curmsgs ? 0 : -1;
}

static int read_all(int fd, uint8_t *buf, size_t cap, size_t *len)
{
	*len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + *len, cap - *len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n;
		*len += n;
		if (*len == cap)
			return 0;
	}
}

static int copy_messages(const struct fd_probe *pr, MqueueFile *mq, int fd, long curmsgs,
			 uint64_t qsize)
{
	size_t cap = qsize + curmsgs * sizeof(struct mq_rec) + mq->msgsize;
	uint8_t *buf;
	int pfd[2], status, rc = -1;
	size_t len;
	pid_t kid;

	if (qsize > MQ_MAX_COPY)
		return cr_err("process %d: fd %d: message queue %s holds %llu bytes, more than "
			      "cryo copies", pr->p->pid, pr->fd, mq->name, (unsigned long long)qsize);
	buf = malloc(cap);
	if (!buf)
		return cr_err("out of memory");
	if (pipe2(pfd, O_CLOEXEC)) {
		free(buf);
		return cr_perr("pipe");
	}
	kid = fork();
	if (kid == 0) {
		close(pfd[0]);
		_exit(copy_in_child(fd, buf, cap, curmsgs, mq->msgsize, pfd[1]));
	}
	close(pfd[1]);
	if (kid < 0) {
		cr_perr("fork");
		goto out;
	}
	rc = read_all(pfd[0], buf, cap, &len);
	if (waitpid(kid, &status, 0) != kid)
		status = -1;
	if (rc < 0)
		cr_perr("reading the copy of message queue %s", mq->name);
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		rc = cr_err("process %d: fd %d: copying message queue %s failed (status 0x%x)",
			    pr->p->pid, pr->fd, mq->name, status);
	else if (parse_copy(mq, buf, len, curmsgs))
		rc = cr_err("process %d: fd %d: message queue %s changed while it was copied",
			    pr->p->pid, pr->fd, mq->name);
out:
	close(pfd[0]);
	free(buf);
	return rc;
}

/* Another entry of the table is the same queue: it carries the messages. */
static bool queue_seen(const struct file_table *ft, const FileEntry *self, uint64_t ino)
{
	for (size_t i = 0; i < ft->nr; i++)
		if (ft->files[i] != self && ft->files[i]->kind == FILE_KIND__FILE_MQUEUE &&
		    ft->files[i]->mqueue && ft->files[i]->mqueue->ino == ino)
			return true;
	return false;
}

/* Reading the queue itself gives its status line; pread leaves the offset alone. */
static int check_notify(const struct fd_probe *pr, int fd, uint64_t *qsize)
{
	struct proc_mq_status st;
	char buf[256];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);

	if (n < 0)
		return cr_perr("process %d: fd %d: cannot read the status of message queue %s",
			       pr->p->pid, pr->fd, pr->link);
	if (proc_parse_mq_status(buf, n, &st))
		return -1;
	if (st.notify_pid)
		return cr_err("process %d: fd %d (message queue %s): process %d has a "
			      "notification registered (mq_notify), which cryo does not restore",
			      pr->p->pid, pr->fd, pr->link, (int)st.notify_pid);
	*qsize = st.qsize;
	return 0;
}

static int fill_queue(const struct fd_probe *pr, const FileEntry *e, MqueueFile *mq, int fd)
{
	struct mq_attr attr;
	uint64_t qsize = 0;

	if (check_notify(pr, fd, &qsize))
		return -1;
	if (mq_getattr(fd, &attr))
		return cr_perr("process %d: fd %d: mq_getattr", pr->p->pid, pr->fd);
	mq->maxmsg = attr.mq_maxmsg;
	mq->msgsize = attr.mq_msgsize;
	if (queue_seen(&pr->p->ctx->files, e, mq->ino))
		return 0;
	mq->has_carries_messages = mq->carries_messages = true;
	if (attr.mq_curmsgs && attr.mq_curmsgs == attr.mq_maxmsg)
		return cr_err("process %d: fd %d: message queue %s is full: a sender may be "
			      "waiting, and reading it would let that message in", pr->p->pid,
			      pr->fd, mq->name);
	if (!attr.mq_curmsgs)
		return 0;
	if (check_no_outside_holder(pr))
		return -1;
	return copy_messages(pr, mq, fd, attr.mq_curmsgs, qsize);
}

static int mqueue_dump(const struct fd_probe *pr, FileEntry *e)
{
	MqueueFile *mq = calloc(1, sizeof(*mq));
	size_t len = strlen(pr->link);
	int fd, rc;

	if (!mq)
		return cr_err("out of memory");
	mqueue_file__init(mq);
	e->mqueue = mq;
	e->kind = FILE_KIND__FILE_MQUEUE;
	e->flags = pr->fi->flags & KEEP_FLAGS;
	if (file_link_deleted(pr->link)) {
		len -= 10;
		mq->has_unlinked = mq->unlinked = true;
	}
	mq->name = strndup(pr->link, len);
	if (!mq->name)
		return cr_err("out of memory");
	mq->ino = pr->st->st_ino;
	mq->mode = pr->st->st_mode & 07777;
	mq->uid = pr->st->st_uid;
	mq->gid = pr->st->st_gid;
	fd = open_queue(pr);
	if (fd < 0)
		return -1;
	rc = fill_queue(pr, e, mq, fd);
	close(fd);
	return rc;
}

static void mqueue_free(FileEntry *e)
{
	if (!e->mqueue)
		return;
	for (size_t i = 0; i < e->mqueue->n_messages; i++)
		free(e->mqueue->messages[i]);
	free(e->mqueue->messages);
	free(e->mqueue->name);
	free(e->mqueue);
}

/* ---- restore ---- */

static int mqueue_check(const FileEntry *e)
{
	const MqueueFile *mq = e->mqueue;
	size_t len = mq && mq->name ? strlen(mq->name) : 0;

	if (!mq || len < 2 || len > 255 || mq->name[0] != '/' || strchr(mq->name + 1, '/') ||
	    mq->maxmsg < 1 || mq->maxmsg > MQ_MAX_MSGS || mq->msgsize < 1 ||
	    mq->msgsize > MQ_MAX_MSGSIZE || mq->mode > 07777 ||
	    mq->n_messages > (size_t)mq->maxmsg || (mq->n_messages && !mq->carries_messages))
		return cr_err("image: message queue file %u is invalid", e->id);
	for (size_t i = 0; i < mq->n_messages; i++)
		if (mq->messages[i]->data.len > (size_t)mq->msgsize ||
		    mq->messages[i]->prio >= MQ_MAX_PRIO)
			return cr_err("image: message %zu of queue file %u is invalid", i, e->id);
	return 0;
}

struct mq_made {
	uint64_t ino;			/* the dumped queue */
	char *name;			/* where it is now (a temporary name if unlinked) */
	int fd;				/* O_RDWR, cryo's, until it is filled */
	bool created, temp;
};

struct mq_state {
	struct mq_made *q;
	size_t nr, cap;
};

static struct mq_made *made_of(struct restore_ctx *ctx, uint64_t ino)
{
	struct mq_state *s = ctx->mqueues;

	for (size_t i = 0; s && i < s->nr; i++)
		if (s->q[i].ino == ino)
			return &s->q[i];
	return NULL;
}

/* The dumped queue itself, left by the tree (same inode, same attributes). */
static int take_back(const MqueueFile *mq, int fd)
{
	struct mq_attr attr;
	struct stat st;

	if (fstat(fd, &st) || st.st_ino != mq->ino || mq_getattr(fd, &attr) ||
	    attr.mq_maxmsg != mq->maxmsg || attr.mq_msgsize != mq->msgsize)
		return cr_err("cannot restore message queue %s: that name is another queue now",
			      mq->name);
	pr_debug("message queue %s is still there: taken back", mq->name);
	return 0;
}

static int create(const MqueueFile *mq, const char *name)
{
	struct mq_attr attr = { .mq_maxmsg = mq->maxmsg, .mq_msgsize = mq->msgsize };
	struct stat st;
	int fd = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mq->mode & 0777, &attr);

	if (fd < 0)
		return cr_perr("cannot create message queue %s", name);
	/* Not under cryo's umask; owned as dumped. */
	if (fchmod(fd, mq->mode) || fstat(fd, &st) ||
	    ((st.st_uid != mq->uid || st.st_gid != mq->gid) && fchown(fd, mq->uid, mq->gid))) {
		cr_perr("cannot give message queue %s its mode and owner", name);
		mq_unlink(name);
		close(fd);
		return -1;
	}
	return fd;
}

static int make_queue(const MqueueFile *mq, struct mq_made *m)
{
	static unsigned int seq;
	char temp[64];

	m->ino = mq->ino;
	m->fd = -1;
	if (mq->unlinked) {
		snprintf(temp, sizeof(temp), "/cryo-restore-%d-%u", getpid(), seq++);
		m->name = strdup(temp);
		if (!m->name)
			return cr_err("out of memory");
		m->fd = create(mq, m->name);
		m->created = m->temp = m->fd >= 0;
		return m->fd < 0 ? -1 : 0;
	}
	m->name = strdup(mq->name);
	if (!m->name)
		return cr_err("out of memory");
	m->fd = mq_open(mq->name, O_RDWR | O_CLOEXEC);
	if (m->fd >= 0)
		return take_back(mq, m->fd);
	if (errno != ENOENT)
		return cr_perr("cannot open message queue %s", mq->name);
	m->fd = create(mq, mq->name);
	m->created = m->fd >= 0;
	return m->fd < 0 ? -1 : 0;
}

static int mqueue_open(struct restore_ctx *ctx, const FileEntry *e)
{
	struct mq_made *m = made_of(ctx, e->mqueue->ino);
	struct mq_state *s = ctx->mqueues;
	int fd;

	if (!m) {
		if (!s && !(s = ctx->mqueues = calloc(1, sizeof(*s))))
			return cr_err("out of memory");
		if (cr_grow(&s->q, &s->cap, s->nr + 1, sizeof(*s->q), 4))
			return -1;
		m = &s->q[s->nr++];
		memset(m, 0, sizeof(*m));
		if (make_queue(e->mqueue, m))
			return -1;
	}
	fd = mq_open(m->name, (e->flags & (O_ACCMODE | O_NONBLOCK)) | O_CLOEXEC);
	if (fd < 0)
		return cr_perr("cannot open message queue %s", e->mqueue->name);
	return fd;
}

/* Every entry is open: a queue that was unlinked loses its temporary name. */
static void mqueue_open_done(struct restore_ctx *ctx)
{
	struct mq_state *s = ctx->mqueues;

	for (size_t i = 0; s && i < s->nr; i++)
		if (s->q[i].temp) {
			mq_unlink(s->q[i].name);
			s->q[i].temp = false;
			s->q[i].created = false;
		}
}

static const MqueueFile *carrier(const FileTable *ft, uint64_t ino)
{
	for (size_t i = 0; i < ft->n_files; i++)
		if (ft->files[i]->kind == FILE_KIND__FILE_MQUEUE && ft->files[i]->mqueue->ino == ino &&
		    ft->files[i]->mqueue->carries_messages)
			return ft->files[i]->mqueue;
	return NULL;
}

static int refill(const FileTable *ft, struct mq_made *m)
{
	const struct timespec past = { 0, 0 };
	const MqueueFile *mq = carrier(ft, m->ino);
	struct mq_attr attr;

	if (mq_getattr(m->fd, &attr))
		return cr_perr("message queue %s", m->name);
	/* Taken back: what is in it now goes first. */
	if (attr.mq_curmsgs) {
		char *buf = malloc(attr.mq_msgsize);

		if (!buf)
			return cr_err("out of memory");
		while (mq_timedreceive(m->fd, buf, attr.mq_msgsize, NULL, &past) >= 0)
			;
		free(buf);
	}
	for (size_t i = 0; mq && i < mq->n_messages; i++)
		if (mq_timedsend(m->fd, (const char *)mq->messages[i]->data.data,
				 mq->messages[i]->data.len, mq->messages[i]->prio, &past))
			return cr_perr("cannot put message %zu back into queue %s", i, mq->name);
	return 0;
}

int mqueue_restore_contents(struct restore_ctx *ctx)
{
	struct mq_state *s = ctx->mqueues;

	for (size_t i = 0; s && i < s->nr; i++) {
		if (refill(ctx->files, &s->q[i]))
			return -1;
		close(s->q[i].fd);
		s->q[i].fd = -1;
	}
	return 0;
}

void mqueue_restore_finish(struct restore_ctx *ctx, bool ok)
{
	struct mq_state *s = ctx->mqueues;

	for (size_t i = 0; s && i < s->nr; i++) {
		if (!ok && s->q[i].created)
			mq_unlink(s->q[i].name);
		if (s->q[i].fd >= 0)
			close(s->q[i].fd);
		free(s->q[i].name);
	}
	if (s)
		free(s->q);
	free(s);
	ctx->mqueues = NULL;
}

static bool mqueue_handles(FileKind k)
{
	return k == FILE_KIND__FILE_MQUEUE;
}

const struct fd_kind mqueue_kind = {
	.name = "a message queue",
	.handles = mqueue_handles,
	.match = mqueue_match,
	.dump = mqueue_dump,
	.check = mqueue_check,
	.open = mqueue_open,
	.open_done = mqueue_open_done,
	.free = mqueue_free,
};
