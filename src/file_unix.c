/* Unix domain sockets (stream, datagram, seqpacket). Dump learns each socket's name,
 * peer, queued connections and shutdown state from sock_diag, reads its receive queue
 * without taking it (MSG_PEEK with SO_PEEK_OFF on a copy of the fd), and refuses what
 * cannot come back faithfully. Restore makes every socket of the image in cryo once:
 * pairs, listeners with their queued connections, late datagram connects, queues,
 * shutdown and options; the connect, listen and socketpair calls whose credentials a
 * peer sees (SO_PEERCRED) are made by a short-lived helper with that PID, uid and gid. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

#include "fd_kind.h"
#include "file_unix.h"
#include "files.h"
#include "lifecycle.h"
#include "log.h"
#include "sys.h"
#include "util.h"

#define ST_ESTABLISHED 1
#define ST_CLOSE 7
#define ST_LISTEN 10
#define SHUT_BITS 3			/* RCV_SHUTDOWN | SEND_SHUTDOWN */
#define QUEUE_MAX (64u << 20)		/* bytes one socket may hold in an image */
#define MSG_MAX (8u << 20)
#define QUEUE_MSGS_MAX 65536
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif

/* ---- pure ---- */

int unix_diag_parse(const void *buf, size_t len, struct unix_diag *out)
{
	const struct unix_diag_msg *m = buf;
	size_t at = NLMSG_ALIGN(sizeof(*m));

	memset(out, 0, sizeof(*out));
	if (len < sizeof(*m) || m->udiag_family != AF_UNIX)
		return cr_err("sock_diag: a short or foreign answer");
	out->ino = m->udiag_ino;
	out->type = m->udiag_type;
	out->state = m->udiag_state;
	while (at + sizeof(struct nlattr) <= len) {
		const struct nlattr *a = (const void *)((const char *)buf + at);
		const void *data = (const char *)a + NLA_HDRLEN;
		size_t n;

		if (a->nla_len < NLA_HDRLEN || a->nla_len > len - at)
			return cr_err("sock_diag: a damaged attribute");
		n = a->nla_len - NLA_HDRLEN;
		switch (a->nla_type) {
		case UNIX_DIAG_NAME:
			if (n > sizeof(out->name))
				return cr_err("sock_diag: a name of %zu bytes", n);
			out->has_name = true;
			out->name_len = n;
			memcpy(out->name, data, n);
			break;
		case UNIX_DIAG_VFS:
			if (n < sizeof(struct unix_diag_vfs))
				return cr_err("sock_diag: a short VFS attribute");
			out->has_vfs = true;
			out->vfs_ino = ((const struct unix_diag_vfs *)data)->udiag_vfs_ino;
			break;
		case UNIX_DIAG_PEER:
			if (n < 4)
				return cr_err("sock_diag: a short peer attribute");
			memcpy(&out->peer, data, 4);
			break;
		case UNIX_DIAG_ICONS:
			if (n % 4 || n / 4 > UNIX_ICONS_MAX)
				return cr_err("sock_diag: %zu bytes of queued connections", n);
			out->nr_icons = n / 4;
			memcpy(out->icons, data, n);
			break;
		case UNIX_DIAG_RQLEN:
			if (n < sizeof(struct unix_diag_rqlen))
				return cr_err("sock_diag: a short queue attribute");
			out->has_rqlen = true;
			out->rqueue = ((const struct unix_diag_rqlen *)data)->udiag_rqueue;
			out->wqueue = ((const struct unix_diag_rqlen *)data)->udiag_wqueue;
			break;
		case UNIX_DIAG_SHUTDOWN:
			if (n < 1)
				return cr_err("sock_diag: a short shutdown attribute");
			out->has_shutdown = true;
			out->shutdown = *(const uint8_t *)data;
			break;
		}
		at += NLA_ALIGN(a->nla_len);
	}
	return 0;
}

void unix_name_str(const uint8_t *name, size_t len, char *out, size_t size)
{
	size_t o = 0;

	if (!len) {
		snprintf(out, size, "unnamed");
		return;
	}
	for (size_t i = 0; i < len && o + 1 < size; i++) {
		if (name[0] && !name[i])
			break;
		out[o++] = !name[i] ? '@' : (name[i] < 32 || name[i] > 126) ? '?' : name[i];
	}
	out[o] = 0;
}

bool unix_same_cred(const UnixCred *a, const UnixCred *b)
{
	if (!a || !b)
		return !a && !b;
	return a->pid == b->pid && a->uid == b->uid && a->gid == b->gid;
}

static bool is_path(const UnixFile *u)
{
	return u->has_name && u->name.len && u->name.data[0];
}

int unix_check_entry(const FileEntry *e)
{
	const UnixFile *u = e->unix_sk;
	uint64_t total = 0;

	if (!u || (u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET))
		return cr_err("image: socket file %u is invalid", e->id);
	if (u->state != ST_ESTABLISHED && u->state != ST_CLOSE && u->state != ST_LISTEN)
		return cr_err("image: socket file %u has state %u", e->id, u->state);
	if (u->has_name && (u->name.len > 107 || !u->name.len))
		return cr_err("image: socket file %u has a name of %zu bytes", e->id, u->name.len);
	if (is_path(u) && (u->name.data[0] != '/' || memchr(u->name.data, 0, u->name.len)))
		return cr_err("image: socket file %u has a bad path name", e->id);
	if (u->state == ST_LISTEN && (u->type == SOCK_DGRAM || !u->has_name || u->n_queue))
		return cr_err("image: socket file %u is a listener it cannot be", e->id);
	if (u->state != ST_LISTEN && u->n_incoming)
		return cr_err("image: socket file %u has connections but does not listen", e->id);
	if (u->n_incoming > UNIX_ICONS_MAX || (u->has_shutdown && u->shutdown & ~SHUT_BITS))
		return cr_err("image: socket file %u is invalid", e->id);
	if (u->external_peer.len > 107 || (u->has_external_peer && !u->external_peer.len))
		return cr_err("image: socket file %u has a bad external peer", e->id);
	for (size_t i = 0; i < u->n_queue; i++) {
		const UnixMessage *m = u->queue[i];

		total += m->data.len;
		if (m->data.len > MSG_MAX || (m->has_source && m->source.len > 107))
			return cr_err("image: socket file %u has a bad queued message", e->id);
	}
	if (total > QUEUE_MAX || u->n_queue > QUEUE_MSGS_MAX)
		return cr_err("image: socket file %u queues %llu bytes in %zu messages", e->id,
			      (unsigned long long)total, u->n_queue);
	return 0;
}

/* ---- sock_diag ---- */

/* Ask about one socket (ino != 0) or every socket in `states` (a dump): cb gets each. */
static int diag_query(uint32_t ino, uint32_t states, uint32_t show,
		      int (*cb)(const struct unix_diag *d, void *arg), void *arg)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} req = {
		.h = { sizeof(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | (ino ? 0 : NLM_F_DUMP), 1, 0 },
		.r = { .sdiag_family = AF_UNIX, .udiag_states = ino ? ~0u : states,
		       .udiag_ino = ino, .udiag_show = show,
		       .udiag_cookie = { ~0u, ~0u } },
	};
	static char buf[32768] __attribute__((aligned(8)));
	struct unix_diag *d = malloc(sizeof(*d));
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), rc = -1;
	bool done = false;

	if (fd < 0 || !d) {
		cr_perr("cannot open a sock_diag socket");
		goto out;
	}
	if (send(fd, &req, sizeof(req), 0) != sizeof(req)) {
		cr_perr("cannot ask sock_diag");
		goto out;
	}
	while (!done) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (void *)buf;

		if (n < 0) {
			cr_perr("cannot read sock_diag's answer");
			goto out;
		}
		for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				done = true;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *err = NLMSG_DATA(h);

				errno = -err->error;
				rc = err->error == -ENOENT ? 1 : -1;
				if (rc < 0)
					cr_perr("sock_diag refused a question about socket %u", ino);
				goto out;
			}
			if (unix_diag_parse(NLMSG_DATA(h), h->nlmsg_len - NLMSG_HDRLEN, d) ||
			    cb(d, arg))
				goto out;
			if (ino)
				done = true;
		}
	}
	rc = 0;
out:
	free(d);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int copy_one(const struct unix_diag *d, void *arg)
{
	memcpy(arg, d, sizeof(*d));
	return 0;
}

#define SHOW_ALL (UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | \
		  UDIAG_SHOW_RQLEN)	/* the shutdown state always comes */

/* 0 and *d filled, 1 if there is no such Unix socket, -1 on error. */
static int diag_one(uint32_t ino, struct unix_diag *d)
{
	return diag_query(ino, 0, SHOW_ALL, copy_one, d);
}

struct icon_search {
	uint32_t ino, listener;
};

static int has_icon(const struct unix_diag *d, void *arg)
{
	struct icon_search *s = arg;

	for (size_t i = 0; i < d->nr_icons; i++)
		if (d->icons[i] == s->ino)
			s->listener = d->ino;
	return 0;
}

/* The listener whose queue holds this (embryonic) socket, or 0. */
static uint32_t listener_holding(uint32_t ino)
{
	struct icon_search s = { ino, 0 };

	if (diag_query(0, 1 << ST_LISTEN, UDIAG_SHOW_ICONS, has_icon, &s))
		return 0;
	return s.listener;
}

/* ---- dump ---- */

static bool unix_match(const struct fd_probe *pr)
{
	struct unix_diag d;

	return S_ISSOCK(pr->st->st_mode) && !strncmp(pr->link, "socket:[", 8) &&
	       pr->st->st_ino <= UINT32_MAX && diag_one(pr->st->st_ino, &d) == 0;
}

static bool fd_is_socket(pid_t pid, uint32_t ino)
{
	char dir[64], want[40];
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	snprintf(want, sizeof(want), "socket:[%u]", ino);
	d = opendir(dir);
	while (d && !found && (de = readdir(d))) {
		char path[320], l[64];
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, l, sizeof(l) - 1);
		found = n > 0 && (l[n] = 0, !strcmp(l, want));
	}
	if (d)
		closedir(d);
	return found;
}

/* The process of the image holding this socket in an fd, or 0. */
static pid_t holder_in_image(const struct dump_ctx *ctx, uint32_t ino)
{
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (!ctx->procs[i]->zombie && fd_is_socket(ctx->procs[i]->pid, ino))
			return ctx->procs[i]->pid;
	return 0;
}

struct sock_probe {
	const struct fd_probe *pr;
	int fd;				/* cryo's copy */
	struct unix_diag d;
	char name[128];			/* for messages */
};

static int refuse(const struct sock_probe *s, const char *fmt, const char *what)
{
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, what);
	return cr_err("process %d: fd %d (Unix socket %s): %s", s->pr->p->pid, s->pr->fd,
		      s->name, msg);
}

static int get_int(const struct sock_probe *s, int opt, int *v)
{
	socklen_t l = sizeof(*v);

	if (getsockopt(s->fd, SOL_SOCKET, opt, v, &l))
		return cr_perr("process %d: fd %d: cannot read socket option %d", s->pr->p->pid,
			       s->pr->fd, opt);
	return 0;
}

static int get_timeo(const struct sock_probe *s, int opt, uint64_t *us)
{
	struct timeval tv;
	socklen_t l = sizeof(tv);

	if (getsockopt(s->fd, SOL_SOCKET, opt, &tv, &l))
		return cr_perr("process %d: fd %d: cannot read a socket timeout", s->pr->p->pid,
			       s->pr->fd);
	*us = (uint64_t)tv.tv_sec * 1000000 + tv.tv_usec;
	return 0;
}

static UnixCred *new_cred(uint32_t pid, uint32_t uid, uint32_t gid)
{
	UnixCred *c = calloc(1, sizeof(*c));

	if (!c) {
		cr_err("out of memory");
		return NULL;
	}
	unix_cred__init(c);
	c->pid = pid;
	c->uid = uid;
	c->gid = gid;
	return c;
}

static int dump_options(struct sock_probe *s, UnixFile *u)
{
	struct ucred uc;
	socklen_t l = sizeof(uc);
	int v, pidfd = 0;

	if (get_int(s, SO_PASSCRED, &v))
		return -1;
	u->has_passcred = 1;
	u->passcred = !!v;
	if (get_int(s, SO_PASSSEC, &v))
		return -1;
	u->has_passsec = 1;
	u->passsec = !!v;
	l = sizeof(pidfd);
	if (!getsockopt(s->fd, SOL_SOCKET, SO_PASSPIDFD, &pidfd, &l) && pidfd)
		return refuse(s, "%s", "SO_PASSPIDFD is set; cryo does not restore it");
	if (get_int(s, SO_RCVBUF, &v))
		return -1;
	u->has_rcvbuf = 1;
	u->rcvbuf = v;
	if (get_int(s, SO_SNDBUF, &v))
		return -1;
	u->has_sndbuf = 1;
	u->sndbuf = v;
	if (get_timeo(s, SO_RCVTIMEO, &u->rcvtimeo_us) || get_timeo(s, SO_SNDTIMEO, &u->sndtimeo_us))
		return -1;
	u->has_rcvtimeo_us = u->has_sndtimeo_us = 1;
	l = sizeof(uc);
	if (getsockopt(s->fd, SOL_SOCKET, SO_PEERCRED, &uc, &l))
		return cr_perr("process %d: fd %d: cannot read SO_PEERCRED", s->pr->p->pid,
			       s->pr->fd);
	if (uc.pid <= 0)
		return 0;
	/* Restore makes the peer see this PID by making the socket in a helper with it:
	 * a process outside the image still holding it would stop that. */
	if (!file_tree_has(s->pr->p->ctx, uc.pid) && (kill(uc.pid, 0) == 0 || errno == EPERM)) {
		char what[96];

		snprintf(what, sizeof(what), "%d", uc.pid);
		return refuse(s, "its peer credentials (SO_PEERCRED) name process %s, outside the "
			      "image and running; cryo cannot make the socket so that it shows them",
			      what);
	}
	u->peer_cred = new_cred(uc.pid, uc.uid, uc.gid);
	return u->peer_cred ? 0 : -1;
}

static bool process_root_is_slash(pid_t pid)
{
	char path[64], l[8];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/root", pid);
	n = readlink(path, l, sizeof(l));
	return n == 1 && l[0] == '/';
}

/* A path name's socket file: its mode and owner; gone if removed; refused if the path
 * now leads to something else (another socket bound there since, a file). */
static int dump_path(struct sock_probe *s, UnixFile *u)
{
	char path[110];
	struct stat st;

	memcpy(path, s->d.name, s->d.name_len);
	path[s->d.name_len] = 0;
	if (path[0] != '/')
		return refuse(s, "%s", "its name is a relative path; cryo restores only absolute "
			      "ones");
	if (!process_root_is_slash(s->pr->p->pid))
		return refuse(s, "%s", "the process has another root directory, where its path "
			      "name lies; cryo binds names only under /");
	if (lstat(path, &st)) {
		if (errno != ENOENT)
			return cr_perr("process %d: fd %d: cannot stat %s", s->pr->p->pid,
				       s->pr->fd, path);
		u->has_path_gone = u->path_gone = 1;
		return 0;
	}
	/* An accepted connection has its listener's name, and the file may be a later
	 * listener's: what matters is that a socket is there. */
	if (S_ISSOCK(st.st_mode) && s->d.state == ST_ESTABLISHED && s->d.type != SOCK_DGRAM &&
	    (!s->d.has_vfs || st.st_ino != s->d.vfs_ino))
		return 0;
	if (!S_ISSOCK(st.st_mode) || !s->d.has_vfs || st.st_ino != s->d.vfs_ino)
		return refuse(s, "%s now leads to another file than the socket's; cryo cannot "
			      "bind the socket there again", path);
	u->has_path_mode = u->has_path_uid = u->has_path_gid = 1;
	u->path_mode = st.st_mode & 07777;
	u->path_uid = st.st_uid;
	u->path_gid = st.st_gid;
	return 0;
}

/* Who connected a queued client: taken to be the process of the image holding it, as
 * it is now (seized: its credentials stay); its own status, as the process may not
 * have been collected yet. */
static int cred_of_holder(const struct dump_ctx *ctx, uint32_t ino, UnixCred **out)
{
	pid_t pid = holder_in_image(ctx, ino);
	struct proc_status st;
	size_t len;
	char *txt;
	int rc;

	if (!pid)
		return cr_err("socket %u: no process of the image holds it", ino);
	txt = proc_read_pid_file(pid, "status", &len);
	if (!txt)
		return -1;
	rc = proc_parse_status(txt, len, &st);
	free(txt);
	if (rc)
		return -1;
	*out = new_cred(pid, st.uid[1], st.gid[1]);
	return *out ? 0 : -1;
}

/* Each connection queued on a listener (sock_diag names its client): the client must
 * be in the image, and must have sent nothing (cryo cannot read what waits for the
 * accept without accepting; the client's unread bytes show as its send queue). */
static int dump_incoming(struct sock_probe *s, UnixFile *u)
{
	const struct dump_ctx *ctx = s->pr->p->ctx;
	struct unix_diag *c = malloc(sizeof(*c));
	int rc = 0;

	u->incoming = calloc(s->d.nr_icons + 1, sizeof(*u->incoming));
	if (!u->incoming || !c) {
		free(c);
		return cr_err("out of memory");
	}
	for (size_t i = 0; i < s->d.nr_icons && !rc; i++) {
		UnixIncoming *in = calloc(1, sizeof(*in));
		char what[64];

		if (!in) {
			rc = cr_err("out of memory");
			break;
		}
		unix_incoming__init(in);
		u->incoming[u->n_incoming++] = in;
		in->client_ino = s->d.icons[i];
		if (!in->client_ino || !holder_in_image(ctx, in->client_ino)) {
			rc = refuse(s, "%s", "a connection queued on it and not accepted yet comes "
				    "from a socket outside the image (or one already closed)");
			break;
		}
		rc = diag_one(in->client_ino, c);
		snprintf(what, sizeof(what), "%u", c->wqueue);
		if (rc)
			rc = rc < 0 ? -1 : refuse(s, "%s", "a queued connection vanished");
		else if (c->wqueue)
			rc = refuse(s, "a connection queued on it and not accepted yet carries data "
				    "(%s bytes with their overhead); cryo cannot read it without "
				    "accepting the connection", what);
		else
			rc = cred_of_holder(ctx, in->client_ino, &in->connector);
	}
	free(c);
	return rc;
}

/* A connected socket whose peer has no inode: a connection queued on a listener, not
 * accepted yet (the listener must be in the image), or a peer that was closed. */
static int dump_unaccepted(struct sock_probe *s, UnixFile *u)
{
	const struct dump_ctx *ctx = s->pr->p->ctx;
	uint32_t l = listener_holding(s->d.ino);
	struct unix_diag *ld;
	char lname[128] = "unnamed", msg[300];

	if (!l) {
		struct sockaddr_un a;
		socklen_t len = sizeof(a);

		/* A datagram socket someone connected to is ESTABLISHED too; only one with
		 * a peer of its own (dead) has a peer name. */
		if (s->d.type == SOCK_DGRAM && getpeername(s->fd, (struct sockaddr *)&a, &len))
			return 0;
		u->has_peer_ino = 1;	/* 0: the peer was closed */
		return 0;
	}
	if (holder_in_image(ctx, l))
		return 0;		/* the listener's entry lists it */
	ld = malloc(sizeof(*ld));
	if (ld && !diag_one(l, ld))
		unix_name_str((uint8_t *)ld->name, ld->name_len, lname, sizeof(lname));
	free(ld);
	snprintf(msg, sizeof(msg), "its connection to %s (listening socket %u, outside the "
		 "image) is not accepted yet", lname, l);
	return refuse(s, "%s", msg);
}

/* A copy of a name from sock_diag. */
static int set_bytes(ProtobufCBinaryData *b, protobuf_c_boolean *has, const void *p, size_t n)
{
	b->data = malloc(n ? n : 1);
	if (!b->data)
		return cr_err("out of memory");
	memcpy(b->data, p, n);
	b->len = n;
	*has = 1;
	return 0;
}

/* The peer outside the image: refused, naming it; with --ext-unix-sk a datagram
 * socket connected to a named socket is recorded to be connected there again. */
static int dump_outside_peer(struct sock_probe *s, UnixFile *u)
{
	struct unix_diag *pd = malloc(sizeof(*pd));
	char pname[128] = "unnamed", msg[300];
	pid_t holder;
	int rc;

	if (!pd)
		return cr_err("out of memory");
	rc = diag_one(s->d.peer, pd);
	if (rc == 0)
		unix_name_str((uint8_t *)pd->name, pd->name_len, pname, sizeof(pname));
	if (rc == 0 && s->d.type == SOCK_DGRAM && pd->name_len && s->pr->p->ctx->ext_unix_sk) {
		rc = set_bytes(&u->external_peer, &u->has_external_peer, pd->name, pd->name_len);
		free(pd);
		return rc;
	}
	free(pd);
	holder = file_socket_outside(s->pr->p->ctx, s->d.peer);
	if (holder < 0) {
		cr_err_reset();	/* /proc unreadable: no holder to name, nothing more */
		holder = 0;
	}
	if (holder)
		snprintf(msg, sizeof(msg), "connected to %s (socket %u of process %d), outside the "
			 "image%s", pname, s->d.peer, holder, s->d.type == SOCK_DGRAM ?
			 "; dump and restore with --ext-unix-sk to connect it there again" : "");
	else
		snprintf(msg, sizeof(msg), "connected to %s (socket %u), which no process of the "
			 "image holds", pname, s->d.peer);
	return refuse(s, "%s", msg);
}

static int peek(int fd, void *buf, size_t len, struct sockaddr_un *from, socklen_t *fromlen,
		bool *rights, int *mflags)
{
	union {
		char b[CMSG_SPACE(253 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { buf, len };
	struct msghdr m = { from, from ? sizeof(*from) : 0, &iov, 1, ctl.b, sizeof(ctl.b), 0 };
	ssize_t n = recvmsg(fd, &m, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	*rights = false;
	if (n < 0)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int *fds = (int *)CMSG_DATA(c);
			size_t nr = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			/* A peek installs them in cryo: they go at once. */
			for (size_t i = 0; i < nr; i++)
				close(fds[i]);
			*rights = true;
		}
	}
	*rights |= !!(m.msg_flags & MSG_CTRUNC);
	if (fromlen)
		*fromlen = m.msg_namelen;
	*mflags = m.msg_flags;
	return n;
}

static int push_message(UnixFile *u, size_t *cap, uint8_t *data, size_t len,
			const struct sockaddr_un *from, socklen_t fromlen)
{
	UnixMessage *m = calloc(1, sizeof(*m));
	size_t plen = fromlen > offsetof(struct sockaddr_un, sun_path) ?
		      fromlen - offsetof(struct sockaddr_un, sun_path) : 0;

	if (!m || cr_grow(&u->queue, cap, u->n_queue + 1, sizeof(*u->queue), 8)) {
		free(m);
		return cr_err("out of memory");
	}
	unix_message__init(m);
	m->data.data = data;
	m->data.len = len;
	u->queue[u->n_queue++] = m;
	/* A path name as the kernel gives it may end in a zero. */
	if (plen && from->sun_path[0])
		plen = strnlen(from->sun_path, plen);
	if (plen && set_bytes(&m->source, &m->has_source, from->sun_path, plen))
		return -1;
	return 0;
}

/* Walk the receive queue with MSG_PEEK at a moving SO_PEEK_OFF: one message (or one
 * run of bytes) at a time, nothing taken. */
static int walk_queue(struct sock_probe *s, UnixFile *u)
{
	size_t cap = 0, total = 0, bufsz = 256 << 10;
	uint8_t *buf = malloc(bufsz), *msg = NULL;
	size_t mlen = 0, mcap = 0;
	bool stream = s->d.type == SOCK_STREAM;
	int rc = -1;

	if (!buf)
		return cr_err("out of memory");
	for (;;) {
		struct sockaddr_un from;
		socklen_t fromlen = 0;
		bool rights;
		int mflags;
		int n = peek(s->fd, buf, bufsz, s->d.type == SOCK_DGRAM ? &from : NULL, &fromlen,
			     &rights, &mflags);

		if (n < 0 && errno == EAGAIN && !mlen)
			break;
		if (n < 0) {
			cr_perr("process %d: fd %d: cannot read the socket's queue", s->pr->p->pid,
				s->pr->fd);
			goto out;
		}
		if (rights) {
			refuse(s, "%s", "file descriptors are in flight in its queue (SCM_RIGHTS); "
			       "cryo does not restore them");
			goto out;
		}
		/* The end of a stream, or of a queue shut down for receiving (a zero-length
		 * datagram last in such a queue cannot be told from it). */
		if (!n && !mlen && (stream || (s->d.shutdown & 1)))
			break;
		total += n;
		if (total > QUEUE_MAX || cr_grow(&msg, &mcap, mlen + n + 1, 1, 4096)) {
			refuse(s, "%s", "its queue holds more than cryo keeps in an image");
			goto out;
		}
		memcpy(msg + mlen, buf, n);
		mlen += n;
		if (u->n_queue >= QUEUE_MSGS_MAX) {
			refuse(s, "%s", "its queue holds more messages than cryo keeps in an image");
			goto out;
		}
		if (!stream && (mflags & MSG_TRUNC))
			continue;
		if (push_message(u, &cap, msg, mlen, &from, s->d.type == SOCK_DGRAM ? fromlen : 0))
			goto out;
		msg = NULL;
		mlen = mcap = 0;
	}
	if (stream && s->d.has_rqlen && total != s->d.rqueue) {
		refuse(s, "%s", "its queue did not read back whole (out-of-band data?)");
		goto out;
	}
	rc = 0;
out:
	free(msg);
	free(buf);
	return rc;
}

/* Without a peek offset a peek takes nothing and moves nothing: an empty queue, or a
 * stream queue read whole in one peek, needs no walk (and the socket is not touched at
 * all). 0: done, 1: walk it, -1: error. */
static int peek_at_once(struct sock_probe *s, UnixFile *u)
{
	size_t len = s->d.type == SOCK_STREAM && s->d.has_rqlen ? s->d.rqueue : 0;
	uint8_t *buf = malloc(len + 1);
	size_t cap = 0;
	bool rights;
	int mflags, n;

	if (!buf)
		return cr_err("out of memory");
	n = peek(s->fd, buf, len + 1, NULL, NULL, &rights, &mflags);
	if ((n < 0 && errno == EAGAIN) || (!n && !len && s->d.type == SOCK_STREAM)) {
		free(buf);
		return 0;
	}
	if (n < 0 || rights || !len || (size_t)n != len) {
		free(buf);
		return 1;
	}
	if (push_message(u, &cap, buf, len, NULL, 0))
		return -1;
	return 0;
}

static int dump_queue(struct sock_probe *s, UnixFile *u)
{
	int old, zero = 0, rc = 1;

	if (get_int(s, SO_PEEK_OFF, &old))
		return -1;
	u->has_peek_off = 1;
	u->peek_off = old;
	if (old == -1)
		rc = peek_at_once(s, u);
	if (rc > 0) {
		if (setsockopt(s->fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)))
			return cr_perr("process %d: fd %d: cannot set SO_PEEK_OFF", s->pr->p->pid,
				       s->pr->fd);
		rc = walk_queue(s, u);
		/* The copy shares the socket: its peek offset goes back as it was. */
		if (setsockopt(s->fd, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old)))
			return cr_perr("process %d: fd %d: cannot put SO_PEEK_OFF back",
				       s->pr->p->pid, s->pr->fd);
	}
	if (rc || !u->n_queue || !u->passcred)
		return rc;
	return refuse(s, "%s", "SO_PASSCRED is set and messages are queued: they carry their "
		      "senders' credentials, which cryo cannot send again");
}

/* Datagrams restore from their sender: the peer (named as it was), or an unnamed
 * socket of cryo's when the socket has a name to send to. */
static int check_sources(struct sock_probe *s, const UnixFile *u)
{
	struct unix_diag *pd;
	bool peer_known = s->d.peer && !u->has_external_peer;
	int rc = 0;

	if (s->d.type != SOCK_DGRAM || !u->n_queue)
		return 0;
	if (u->has_external_peer)
		return refuse(s, "%s", "datagrams from its peer outside the image are queued");
	pd = malloc(sizeof(*pd));
	if (!pd)
		return cr_err("out of memory");
	if (peer_known && diag_one(s->d.peer, pd))
		peer_known = false;
	for (size_t i = 0; i < u->n_queue && !rc; i++) {
		const UnixMessage *m = u->queue[i];
		char src[128];

		if (peer_known && m->source.len == pd->name_len &&
		    !memcmp(m->source.data, pd->name, pd->name_len))
			continue;
		/* cryo's unnamed socket sends it: to the name, or as the closed peer. */
		if (!m->has_source && (u->has_name || (u->has_peer_ino && !u->peer_ino)))
			continue;
		unix_name_str(m->source.data, m->source.len, src, sizeof(src));
		rc = refuse(s, "a datagram from %s is queued, a sender cryo cannot send it as "
			    "again", src);
	}
	free(pd);
	return rc;
}

static int unix_dump_sock(struct sock_probe *s, FileEntry *e, UnixFile *u)
{
	const struct dump_ctx *ctx = s->pr->p->ctx;

	if (diag_one(s->pr->st->st_ino, &s->d))
		return cr_err("process %d: fd %d: sock_diag does not know socket %lu", s->pr->p->pid,
			      s->pr->fd, (unsigned long)s->pr->st->st_ino);
	/* A path name comes with its terminating zero. */
	if (s->d.name_len && s->d.name[0])
		s->d.name_len = strnlen(s->d.name, s->d.name_len);
	unix_name_str((uint8_t *)s->d.name, s->d.name_len, s->name, sizeof(s->name));
	e->kind = FILE_KIND__FILE_UNIX;
	e->flags = s->pr->fi->flags & (O_ACCMODE | O_NONBLOCK);
	u->ino = s->d.ino;
	u->type = s->d.type;
	u->state = s->d.state;
	if (u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET)
		return refuse(s, "%s", "it is of a socket type cryo does not know");
	if (u->state != ST_ESTABLISHED && u->state != ST_CLOSE && u->state != ST_LISTEN)
		return refuse(s, "%s", "it is connecting or in a state cryo does not know");
	if (s->d.name_len && (set_bytes(&u->name, &u->has_name, s->d.name, s->d.name_len) ||
			      (s->d.name[0] && dump_path(s, u))))
		return -1;
	u->has_shutdown = 1;
	u->shutdown = s->d.shutdown & SHUT_BITS;
	if (u->state == ST_LISTEN) {
		u->has_backlog = 1;
		u->backlog = s->d.wqueue;
		return dump_options(s, u) || dump_incoming(s, u);
	}
	if (s->d.peer) {
		u->has_peer_ino = 1;
		u->peer_ino = s->d.peer;
		if (!holder_in_image(ctx, s->d.peer) && dump_outside_peer(s, u))
			return -1;
	} else if (u->state == ST_ESTABLISHED && dump_unaccepted(s, u)) {
		return -1;
	}
	if (dump_options(s, u))
		return -1;
	/* Made again as one end of a socketpair whose other end goes: only a socketpair's
	 * end shows credentials, so one connected with connect() cannot be made so. */
	if (u->type == SOCK_DGRAM && u->has_peer_ino && !u->peer_ino && !u->peer_cred)
		return refuse(s, "%s", "the datagram socket it was connected to was closed; cryo "
			      "cannot make a socket connected to a closed one that shows no peer "
			      "credentials");
	return dump_queue(s, u) || check_sources(s, u);
}

static int unix_dump(const struct fd_probe *pr, FileEntry *e)
{
	struct sock_probe *s = calloc(1, sizeof(*s));
	UnixFile *u = calloc(1, sizeof(*u));
	int rc = -1;

	if (!s || !u) {
		free(s);
		free(u);
		return cr_err("out of memory");
	}
	unix_file__init(u);
	e->unix_sk = u;
	s->pr = pr;
	s->fd = file_fd_dup(pr->p->pid, pr->fd);
	if (s->fd >= 0) {
		rc = unix_dump_sock(s, e, u);
		close(s->fd);
	}
	free(s);
	return rc;
}

static void unix_free(FileEntry *e)
{
	UnixFile *u = e->unix_sk;

	if (!u)
		return;
	for (size_t i = 0; i < u->n_queue; i++) {
		free(u->queue[i]->data.data);
		free(u->queue[i]->source.data);
		free(u->queue[i]);
	}
	for (size_t i = 0; i < u->n_incoming; i++) {
		free(u->incoming[i]->connector);
		free(u->incoming[i]);
	}
	free(u->queue);
	free(u->incoming);
	free(u->name.data);
	free(u->external_peer.data);
	free(u->peer_cred);
	free(u);
}

/* ---- restore ---- */

static int unix_check(const FileEntry *e)
{
	return unix_check_entry(e);
}

/* One socket of the image, made once in cryo. */
struct sock_made {
	const FileEntry *e;
	const UnixFile *u;
	int fd;			/* -1 until made */
	int sender;		/* cryo's other end of a pair whose peer was closed */
	bool bound_path;	/* cryo bound its path name (the file is cryo's) */
};

struct unix_state {
	struct sock_made *s;
	size_t nr;
	bool built, waited, failed;
};

static struct sock_made *by_ino(struct unix_state *st, uint64_t ino)
{
	for (size_t i = 0; ino && i < st->nr; i++)
		if (st->s[i].u->ino == ino)
			return &st->s[i];
	return NULL;
}

static socklen_t addr_of(const uint8_t *name, size_t len, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path, name, len);
	return offsetof(struct sockaddr_un, sun_path) + len;
}

static int sock_err(const struct sock_made *m, const char *what)
{
	char name[128];

	unix_name_str(m->u->name.data, m->u->name.len, name, sizeof(name));
	return cr_perr("socket file %u (%s): %s", m->e->id, name, what);
}

/* A path about to be bound: a socket file nobody listens on any more (the dumped
 * process's, left behind) is removed; anything else there is refused. */
/* Does nobody listen at this socket file any more (connect says ECONNREFUSED)? */
static bool socket_file_stale(const char *path)
{
	struct sockaddr_un a;
	socklen_t len = addr_of((const uint8_t *)path, strlen(path), &a);
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), rc;

	if (probe < 0)
		return false;
	rc = connect(probe, (struct sockaddr *)&a, len);
	close(probe);
	return rc < 0 && errno == ECONNREFUSED;
}

static int free_path(const struct sock_made *m, const char *path)
{
	struct stat st;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : sock_err(m, "cannot stat its path");
	if (!S_ISSOCK(st.st_mode))
		return cr_err("socket file %u: %s exists and is not a socket; cryo does not "
			      "replace it", m->e->id, path);
	if (!socket_file_stale(path))
		return cr_err("socket file %u: %s is in use by another socket", m->e->id, path);
	if (unlink(path) && errno != ENOENT)
		return sock_err(m, "cannot remove the old socket file");
	return 0;
}

static int bind_name(struct sock_made *m, int fd, const ProtobufCBinaryData *name)
{
	struct sockaddr_un a;
	socklen_t len = addr_of(name->data, name->len, &a);
	bool path = name->data[0] != 0;

	if (path && free_path(m, a.sun_path))
		return -1;
	if (bind(fd, (struct sockaddr *)&a, len))
		return sock_err(m, "cannot bind its name again");
	m->bound_path |= path;
	return 0;
}

/* ---- helpers that make a call as the process the peer saw ---- */

enum job_op { JOB_SOCKETPAIR, JOB_LISTEN, JOB_CONNECT };

struct job {
	enum job_op op;
	int type, fd, backlog;
	struct sockaddr_un addr;
	socklen_t addr_len;
	int out[2];
};

static int job_do(struct job *j)
{
	switch (j->op) {
	case JOB_SOCKETPAIR:
		return socketpair(AF_UNIX, j->type | SOCK_CLOEXEC, 0, j->out);
	case JOB_LISTEN:
		return listen(j->fd, j->backlog);
	case JOB_CONNECT:
		return connect(j->fd, (struct sockaddr *)&j->addr, j->addr_len);
	}
	return -1;
}

static int send_pair(int ctl, const int fds[2])
{
	union {
		char b[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	char c = 0;
	struct iovec iov = { &c, 1 };
	struct msghdr m = { NULL, 0, &iov, 1, u.b, sizeof(u.b), 0 };
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);

	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(2 * sizeof(int));
	memcpy(CMSG_DATA(h), fds, 2 * sizeof(int));
	return sendmsg(ctl, &m, 0) == 1 ? 0 : -1;
}

static int recv_pair(int ctl, int fds[2])
{
	union {
		char b[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	char c;
	struct iovec iov = { &c, 1 };
	struct msghdr m = { NULL, 0, &iov, 1, u.b, sizeof(u.b), 0 };
	struct cmsghdr *h;

	if (recvmsg(ctl, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT) != 1)
		return -1;
	h = CMSG_FIRSTHDR(&m);
	if (!h || h->cmsg_type != SCM_RIGHTS || h->cmsg_len != CMSG_LEN(2 * sizeof(int)))
		return -1;
	memcpy(fds, CMSG_DATA(h), 2 * sizeof(int));
	return 0;
}

static __attribute__((noreturn)) void helper_main(const UnixCred *c, struct job *j, int ctl,
						   pid_t parent)
{
	/* Like a restored task: a dead cryo leaves nothing holding the PID. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(202);
	if (setgroups(0, NULL) || setresgid(c->gid, c->gid, c->gid) ||
	    setresuid(c->uid, c->uid, c->uid))
		_exit(200);
	if (job_do(j))
		_exit(errno & 0x7f);
	if (j->op == JOB_SOCKETPAIR && send_pair(ctl, j->out))
		_exit(201);
	_exit(0);
}

/* Under a limited trust, a peer may only see the image owner's uid and a gid one of
 * the image's processes has (docs/SECURITY.md). */
static int cred_allowed(const struct restore_ctx *ctx, const UnixCred *c)
{
	if (!ctx->trust.limited)
		return 0;
	if (c->uid == ctx->trust.owner)
		for (size_t i = 0; i < ctx->nr_procs; i++)
			if (ctx->procs[i]->core && ctx->procs[i]->core->creds &&
			    ctx->procs[i]->core->creds->egid == c->gid)
				return 0;
	return cr_err("image: a socket's peer credentials (uid %u, gid %u) are beyond what "
		      "this image may ask for", c->uid, c->gid);
}

/* Do the job as the process the peer saw: a helper process with its PID (set_tid),
 * uid and gid. Without credentials to show, cryo does it itself. */
static int run_as(struct unix_state *st, struct restore_ctx *ctx, const UnixCred *c,
		  struct job *j)
{
	uint64_t tid = c ? c->pid : 0;
	struct cr_clone_args args = { .exit_signal = SIGCHLD, .set_tid = (uint64_t)&tid,
				      .set_tid_size = 1 };
	pid_t parent = getpid();
	int ctl[2], status;
	long pid;

	if (!c || !c->pid)
		return job_do(j) ? -1 : 0;
	if (cred_allowed(ctx, c) || (!st->waited && task_wait_ids(ctx)))
		return -1;
	st->waited = true;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl))
		return cr_perr("cannot make a socketpair");
	pid = task_clone_with_id(&args, c->pid);
	if (pid == 0)
		helper_main(c, j, ctl[1], parent);
	close(ctl[1]);
	if (pid < 0) {
		close(ctl[0]);
		if (errno == EEXIST)
			return cr_err("a socket's peer saw PID %u, which another process holds now; "
				      "cryo cannot make the socket so that its peer sees it", c->pid);
		return cr_perr("cannot make a helper process with PID %u", c->pid);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		close(ctl[0]);
		if (WIFEXITED(status) && WEXITSTATUS(status) < 128) {
			errno = WEXITSTATUS(status);
			return -1;
		}
		return cr_err("the helper making a socket as PID %u failed (status 0x%x)", c->pid,
			      status);
	}
	status = j->op == JOB_SOCKETPAIR ? recv_pair(ctl[0], j->out) : 0;
	close(ctl[0]);
	return status;
}

/* ---- making the sockets ---- */

static int new_socket(struct sock_made *m)
{
	int fd = socket(AF_UNIX, m->u->type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return sock_err(m, "cannot make a socket");
	m->fd = fd;
	if (m->u->has_name && m->u->state != ST_LISTEN && bind_name(m, fd, &m->u->name))
		return -1;
	return 0;
}

/* Both ends see the same credentials: a socketpair made as that process, each end
 * given its name afterwards. */
static int pair_same_cred(struct unix_state *st, struct restore_ctx *ctx, struct sock_made *x,
			  struct sock_made *y)
{
	struct job j = { .op = JOB_SOCKETPAIR, .type = x->u->type };

	if (run_as(st, ctx, x->u->peer_cred, &j))
		return sock_err(x, "cannot make its socketpair");
	x->fd = j.out[0];
	if (y)
		y->fd = j.out[1];
	else
		x->sender = j.out[1];
	if (x->u->has_name && bind_name(x, x->fd, &x->u->name))
		return -1;
	return y && y->u->has_name ? bind_name(y, y->fd, &y->u->name) : 0;
}

/* The ends see different credentials: a connection through a listener bound at the
 * accepted end's name, listening as who the connecting end saw, connected as who the
 * accepted end saw. */
static int pair_by_connect(struct unix_state *st, struct restore_ctx *ctx, struct sock_made *c,
			   struct sock_made *a)
{
	struct job j = { .op = JOB_LISTEN, .backlog = 1 };
	int l = socket(AF_UNIX, c->u->type | SOCK_CLOEXEC, 0), rc = -1;

	if (l < 0)
		return sock_err(a, "cannot make a socket");
	if (bind_name(a, l, &a->u->name))
		goto out;
	j.fd = l;
	if (run_as(st, ctx, c->u->peer_cred, &j)) {
		sock_err(a, "cannot listen for its connection");
		goto out;
	}
	if (new_socket(c))
		goto out;
	j = (struct job){ .op = JOB_CONNECT, .fd = c->fd };
	j.addr_len = addr_of(a->u->name.data, a->u->name.len, &j.addr);
	if (run_as(st, ctx, a->u->peer_cred, &j)) {
		sock_err(c, "cannot connect it again");
		goto out;
	}
	a->fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	rc = a->fd < 0 ? sock_err(a, "cannot accept its connection") : 0;
out:
	close(l);
	return rc;
}

/* Datagram sockets connected to each other with connect(): no credentials to show,
 * so no socketpair; each is bound and connected to the other's name. */
static int pair_dgram_connect(struct sock_made *x, struct sock_made *y)
{
	struct sock_made *ends[2] = { x, y };
	struct sockaddr_un a;

	if (!x->u->has_name || !y->u->has_name)
		return cr_err("image: datagram sockets %u and %u are connected to each other "
			      "without a name or a socketpair's credentials", x->e->id, y->e->id);
	if (new_socket(x) || new_socket(y))
		return -1;
	for (int i = 0; i < 2; i++) {
		const ProtobufCBinaryData *to = &ends[1 - i]->u->name;
		socklen_t len = addr_of(to->data, to->len, &a);

		if (connect(ends[i]->fd, (struct sockaddr *)&a, len))
			return sock_err(ends[i], "cannot connect it again");
	}
	return 0;
}

static bool same_name(const ProtobufCBinaryData *a, protobuf_c_boolean has,
		      const ProtobufCBinaryData *b)
{
	return has ? a->len == b->len && !memcmp(a->data, b->data, a->len) : !b->len;
}

/* Has this socket a listener's name (an accepted connection)? */
static bool listener_name(const struct unix_state *st, const struct sock_made *m)
{
	for (size_t i = 0; i < st->nr && m->u->has_name; i++) {
		const UnixFile *l = st->s[i].u;

		if (l->state == ST_LISTEN && l->type == m->u->type &&
		    same_name(&l->name, l->has_name, &m->u->name))
			return true;
	}
	return false;
}

/* A connected pair. A stream or seqpacket end with a name is made by accepting: its
 * name may be a listener's, which an accepted socket shares and no bind could give it
 * twice; the other end connects, bound first if it has a name of its own. */
static int make_pair(struct unix_state *st, struct restore_ctx *ctx, struct sock_made *x,
		     struct sock_made *y)
{
	if (y && x->u->type == SOCK_DGRAM && !x->u->peer_cred && !y->u->peer_cred)
		return pair_dgram_connect(x, y);
	if (!y && !x->u->peer_cred)
		return cr_err("image: socket file %u lost its peer but shows no credentials",
			      x->e->id);
	if (!y || x->u->type == SOCK_DGRAM || (!x->u->has_name && !y->u->has_name &&
					       unix_same_cred(x->u->peer_cred, y->u->peer_cred)))
		return pair_same_cred(st, ctx, x, y);
	if (listener_name(st, x) || (!y->u->has_name && x->u->has_name))
		return pair_by_connect(st, ctx, y, x);
	if (y->u->has_name)
		return pair_by_connect(st, ctx, x, y);
	return cr_err("image: sockets %u and %u are connected, unnamed, and see different "
		      "credentials; no connection can make that", x->e->id, y->e->id);
}

/* Connected sockets first: pairs, one-way datagram senders, ends whose peer was closed;
 * then unconnected ones. Listeners and their clients come later. */
static bool queued_client(const struct unix_state *st, uint64_t ino)
{
	for (size_t i = 0; i < st->nr; i++)
		for (size_t k = 0; k < st->s[i].u->n_incoming; k++)
			if (st->s[i].u->incoming[k]->client_ino == ino)
				return true;
	return false;
}

static int make_connected(struct unix_state *st, struct restore_ctx *ctx, struct sock_made *m)
{
	const UnixFile *u = m->u;
	struct sock_made *peer = by_ino(st, u->peer_ino);

	if (u->state == ST_LISTEN || (u->state == ST_ESTABLISHED && !u->has_peer_ino &&
				      queued_client(st, u->ino)))
		return 0;	/* made with its listener */
	if (u->state == ST_ESTABLISHED && u->peer_ino && !peer && !u->has_external_peer)
		return cr_err("image: socket file %u is connected to a socket the image does "
			      "not have", m->e->id);
	if (peer && peer->u->peer_ino == u->ino)
		return make_pair(st, ctx, m, peer);
	if (u->has_peer_ino && !u->peer_ino)
		return make_pair(st, ctx, m, NULL);	/* its peer was closed */
	return new_socket(m);
}

static int make_listener(struct unix_state *st, struct restore_ctx *ctx, struct sock_made *m)
{
	const UnixFile *u = m->u;
	struct job j = { .op = JOB_LISTEN, .backlog = u->backlog };

	m->fd = socket(AF_UNIX, u->type | SOCK_CLOEXEC, 0);
	if (m->fd < 0)
		return sock_err(m, "cannot make a socket");
	if (bind_name(m, m->fd, &u->name))
		return -1;
	j.fd = m->fd;
	if (run_as(st, ctx, u->peer_cred, &j))
		return sock_err(m, "cannot listen again");
	for (size_t i = 0; i < u->n_incoming; i++) {
		struct sock_made *c = by_ino(st, u->incoming[i]->client_ino);

		if (!c || c->fd >= 0 || c->u->state != ST_ESTABLISHED || c->u->type != u->type)
			return cr_err("image: socket file %u has a queued connection from an "
				      "unknown socket", m->e->id);
		if (new_socket(c))
			return -1;
		j = (struct job){ .op = JOB_CONNECT, .fd = c->fd };
		j.addr_len = addr_of(u->name.data, u->name.len, &j.addr);
		if (run_as(st, ctx, u->incoming[i]->connector, &j))
			return sock_err(c, "cannot queue its connection again");
	}
	return 0;
}

/* Datagram sockets connected one way, and to a name outside the image. */
static int connect_late(struct unix_state *st, struct restore_ctx *ctx, struct sock_made *m)
{
	const UnixFile *u = m->u;
	struct sock_made *peer = by_ino(st, u->peer_ino);
	const ProtobufCBinaryData *to;
	struct sockaddr_un a;
	socklen_t len;

	if (u->has_external_peer && !ctx->ext_unix_sk) {
		char name[128];

		unix_name_str(u->external_peer.data, u->external_peer.len, name, sizeof(name));
		return cr_err("image: socket file %u was connected to %s, outside the image; "
			      "restore with --ext-unix-sk to connect it there again", m->e->id, name);
	}
	if (u->has_external_peer)
		to = &u->external_peer;
	else if (peer && peer->u->peer_ino != u->ino && u->type == SOCK_DGRAM)
		to = &peer->u->name;
	else
		return 0;
	if (!to->len)
		return cr_err("image: socket file %u is connected to an unnamed socket", m->e->id);
	len = addr_of(to->data, to->len, &a);
	if (connect(m->fd, (struct sockaddr *)&a, len))
		return sock_err(m, "cannot connect it again");
	return 0;
}

/* Who sends a queued message back: the socket it came from (the peer, a one-way
 * sender), or an unnamed socket of cryo's sending to the socket's name. */
static int sender_of(struct unix_state *st, struct sock_made *m, const UnixMessage *msg,
		     bool *to_name)
{
	*to_name = false;
	if (m->sender >= 0)
		return m->sender;
	for (size_t i = 0; i < st->nr; i++) {
		struct sock_made *o = &st->s[i];

		if (o->u->peer_ino != m->u->ino || o->fd < 0)
			continue;
		if (m->u->type != SOCK_DGRAM || same_name(&msg->source, msg->has_source,
							  &o->u->name))
			return o->fd;
	}
	if (m->u->type == SOCK_DGRAM && !msg->has_source && m->u->has_name) {
		*to_name = true;
		return -1;
	}
	return cr_err("image: socket file %u has a queued message without a sender", m->e->id);
}

static int send_one(int fd, const struct sock_made *m, const UnixMessage *msg, bool to_name)
{
	struct sockaddr_un a;
	socklen_t len = 0;
	int big = INT_MAX / 2;
	size_t at = 0;

	if (to_name)
		len = addr_of(m->u->name.data, m->u->name.len, &a);
	/* What waits in the peer's queue counts against the sender: room for the whole
	 * queue, until its options are set (settle). */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	do {
		ssize_t n = sendto(fd, msg->data.data + at, msg->data.len - at,
				   MSG_DONTWAIT | MSG_NOSIGNAL, to_name ? (void *)&a : NULL, len);

		if (n < 0)
			return sock_err(m, "cannot put its queue back");
		at += n;
	} while (at < msg->data.len && m->u->type == SOCK_STREAM);
	if (at != msg->data.len)
		return sock_err(m, "cannot put a whole message back");
	return 0;
}

static int refill(struct unix_state *st, struct sock_made *m)
{
	int anon = -1, rc = 0;

	for (size_t i = 0; i < m->u->n_queue && !rc; i++) {
		bool to_name;
		int fd = sender_of(st, m, m->u->queue[i], &to_name);

		if (to_name && anon < 0)
			anon = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		rc = (to_name && anon < 0) ? sock_err(m, "cannot make a socket") :
		     (!to_name && fd < 0) ? -1 :
		     send_one(to_name ? anon : fd, m, m->u->queue[i], to_name);
	}
	if (anon >= 0)
		close(anon);
	return rc;
}

static int set_timeo(int fd, int opt, uint64_t us)
{
	struct timeval tv = { us / 1000000, us % 1000000 };

	return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

/* The kernel doubles what is set; the image holds what was read. */
static int set_buf(int fd, int opt, uint32_t v)
{
	int half = v / 2;

	return setsockopt(fd, SOL_SOCKET, opt, &half, sizeof(half));
}

static int set_options(struct sock_made *m)
{
	const UnixFile *u = m->u;
	int on, fd = m->fd;

	on = u->passcred;
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)))
		return sock_err(m, "cannot set SO_PASSCRED");
	on = u->passsec;
	if (u->passsec && setsockopt(fd, SOL_SOCKET, SO_PASSSEC, &on, sizeof(on)))
		return sock_err(m, "cannot set SO_PASSSEC");
	if ((u->has_rcvbuf && set_buf(fd, SO_RCVBUFFORCE, u->rcvbuf)) ||
	    (u->has_sndbuf && set_buf(fd, SO_SNDBUFFORCE, u->sndbuf)))
		return sock_err(m, "cannot set its buffer sizes");
	if (set_timeo(fd, SO_RCVTIMEO, u->rcvtimeo_us) || set_timeo(fd, SO_SNDTIMEO, u->sndtimeo_us))
		return sock_err(m, "cannot set its timeouts");
	on = u->has_peek_off ? u->peek_off : -1;
	if (u->state != ST_LISTEN && on != -1 &&
	    setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &on, sizeof(on)))
		return sock_err(m, "cannot set SO_PEEK_OFF");
	if (fcntl(fd, F_SETFL, m->e->flags & O_NONBLOCK))
		return sock_err(m, "cannot set its flags");
	return 0;
}

/* The socket file of a path name: its mode and owner, or gone as it was. */
static int settle_path(struct sock_made *m)
{
	const UnixFile *u = m->u;
	struct stat st;
	char path[110];

	if (!is_path(u) || !m->bound_path)
		return 0;
	memcpy(path, u->name.data, u->name.len);
	path[u->name.len] = 0;
	if (u->path_gone)
		return unlink(path) && errno != ENOENT ? sock_err(m, "cannot remove its file") : 0;
	if (!u->has_path_mode)
		return 0;
	if (lstat(path, &st))
		return sock_err(m, "cannot stat its socket file");
	if ((st.st_uid != u->path_uid || st.st_gid != u->path_gid) &&
	    lchown(path, u->path_uid, u->path_gid))
		return sock_err(m, "cannot give its socket file its owner");
	if (fchmodat(AT_FDCWD, path, u->path_mode, 0))
		return sock_err(m, "cannot give its socket file its mode");
	return 0;
}

/* Shutdown last but for options: it also ends what the peer may send. */
static int settle(struct sock_made *m)
{
	static const int how[] = { -1, SHUT_RD, SHUT_WR, SHUT_RDWR };

	if (m->sender >= 0) {
		close(m->sender);
		m->sender = -1;
	}
	if (m->u->shutdown && shutdown(m->fd, how[m->u->shutdown & SHUT_BITS]) &&
	    errno != ENOTCONN)
		return sock_err(m, "cannot shut it down again");
	return set_options(m) || settle_path(m);
}

static int build_all(struct unix_state *st, struct restore_ctx *ctx)
{
	const FileTable *ft = ctx->files;
	int rc = 0;

	st->s = calloc(ft->n_files + 1, sizeof(*st->s));
	if (!st->s)
		return cr_err("out of memory");
	for (size_t i = 0; i < ft->n_files; i++)
		if (ft->files[i]->kind == FILE_KIND__FILE_UNIX)
			st->s[st->nr++] = (struct sock_made){ ft->files[i], ft->files[i]->unix_sk,
							      -1, -1, false };
	for (size_t i = 0; i < st->nr && !rc; i++)
		if (st->s[i].fd < 0)
			rc = make_connected(st, ctx, &st->s[i]);
	for (size_t i = 0; i < st->nr && !rc; i++)
		if (st->s[i].u->state == ST_LISTEN)
			rc = make_listener(st, ctx, &st->s[i]);
	for (size_t i = 0; i < st->nr && !rc; i++)
		if (st->s[i].fd < 0)
			rc = cr_err("image: socket file %u is connected to a socket the image does "
				    "not have", st->s[i].e->id);
	for (size_t i = 0; i < st->nr && !rc; i++)
		rc = connect_late(st, ctx, &st->s[i]);
	for (size_t i = 0; i < st->nr && !rc; i++)
		rc = refill(st, &st->s[i]);
	for (size_t i = 0; i < st->nr && !rc; i++)
		rc = settle(&st->s[i]);
	st->built = true;
	st->failed = rc != 0;
	return rc;
}

static int unix_open(struct restore_ctx *ctx, const FileEntry *e)
{
	struct unix_state *st = ctx->unix_socks;
	int fd;

	if (!st) {
		st = ctx->unix_socks = calloc(1, sizeof(*st));
		if (!st)
			return cr_err("out of memory");
	}
	if (!st->built && build_all(st, ctx))
		return -1;
	for (size_t i = 0; i < st->nr; i++) {
		if (st->s[i].e != e)
			continue;
		fd = fcntl(st->s[i].fd, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? sock_err(&st->s[i], "cannot hand it out") : fd;
	}
	return cr_err("image: socket file %u was not made", e->id);
}

/* A socket file cryo bound for a restore that failed goes again. */
static void unbind_path(const struct sock_made *m)
{
	char path[110];
	struct stat st;

	if (!m->bound_path || !is_path(m->u))
		return;
	memcpy(path, m->u->name.data, m->u->name.len);
	path[m->u->name.len] = 0;
	/* Not one another process bound since. */
	if (!lstat(path, &st) && S_ISSOCK(st.st_mode) && socket_file_stale(path))
		unlink(path);
}

static void unix_open_done(struct restore_ctx *ctx)
{
	struct unix_state *st = ctx->unix_socks;

	for (size_t i = 0; st && i < st->nr; i++) {
		if (st->s[i].fd >= 0)
			close(st->s[i].fd);
		if (st->s[i].sender >= 0)
			close(st->s[i].sender);
	}
	for (size_t i = 0; st && st->failed && i < st->nr; i++)
		unbind_path(&st->s[i]);
	if (st)
		free(st->s);
	free(st);
	ctx->unix_socks = NULL;
}

static bool unix_handles(FileKind k)
{
	return k == FILE_KIND__FILE_UNIX;
}

const struct fd_kind unix_kind = {
	.name = "a Unix socket",
	.handles = unix_handles,
	.match = unix_match,
	.dump = unix_dump,
	.check = unix_check,
	.open = unix_open,
	.open_done = unix_open_done,
	.free = unix_free,
};
