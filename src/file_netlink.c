/* Netlink sockets: protocol, type, bound port id, multicast groups (all of them, by
 * NETLINK_LIST_MEMBERSHIPS), the peer it is connected to and the options of its level.
 * Dump refuses messages queued and not read, and a dump answer still being made.
 * Restore makes the socket in cryo, binds it to the same port id (it fails naming the
 * id if another socket has it) and joins the groups. Also the sock_diag dump loop the
 * other kinds of this family share (sk_diag_dump). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/netlink_diag.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>

#include "fd_kind.h"
#include "file_sk.h"
#include "files.h"
#include "log.h"
#include "sk_opts.h"
#include "sys.h"
#include "trust.h"

#define NL_GROUPS_MAX 4096		/* groups one socket may join in an image */
#define NL_GROUP_MAX 65536
#define NL_MAX_LINKS 32

/* ---- pure ---- */

int netlink_diag_parse(const void *buf, size_t len, struct nl_diag *out)
{
	const struct netlink_diag_msg *m = buf;
	size_t at = NLMSG_ALIGN(sizeof(*m));

	memset(out, 0, sizeof(*out));
	if (len < sizeof(*m) || m->ndiag_family != AF_NETLINK)
		return cr_err("netlink_diag: a short or foreign answer");
	out->ino = m->ndiag_ino;
	out->portid = m->ndiag_portid;
	out->dst_portid = m->ndiag_dst_portid;
	out->dst_group = m->ndiag_dst_group;
	out->protocol = m->ndiag_protocol;
	out->type = m->ndiag_type;
	while (at + sizeof(struct nlattr) <= len) {
		const struct nlattr *a = (const void *)((const char *)buf + at);

		if (a->nla_len < NLA_HDRLEN || a->nla_len > len - at)
			return cr_err("netlink_diag: a damaged attribute");
		if (a->nla_type == NETLINK_DIAG_FLAGS) {
			if (a->nla_len - NLA_HDRLEN < 4)
				return cr_err("netlink_diag: a short flags attribute");
			memcpy(&out->flags, (const char *)a + NLA_HDRLEN, 4);
			out->has_flags = true;
		}
		at += NLA_ALIGN(a->nla_len);
	}
	return 0;
}

const char *netlink_proto_name(unsigned protocol, char *buf, size_t len)
{
	static const char *const names[NL_MAX_LINKS] = {
		[NETLINK_ROUTE] = "route", [NETLINK_USERSOCK] = "usersock",
		[NETLINK_FIREWALL] = "firewall", [NETLINK_SOCK_DIAG] = "sock_diag",
		[NETLINK_NFLOG] = "nflog", [NETLINK_XFRM] = "xfrm",
		[NETLINK_SELINUX] = "selinux", [NETLINK_ISCSI] = "iscsi",
		[NETLINK_AUDIT] = "audit", [NETLINK_FIB_LOOKUP] = "fib_lookup",
		[NETLINK_CONNECTOR] = "connector", [NETLINK_NETFILTER] = "netfilter",
		[NETLINK_IP6_FW] = "ip6_fw", [NETLINK_DNRTMSG] = "dnrtmsg",
		[NETLINK_KOBJECT_UEVENT] = "kobject_uevent", [NETLINK_GENERIC] = "generic",
		[NETLINK_SCSITRANSPORT] = "scsitransport", [NETLINK_ECRYPTFS] = "ecryptfs",
		[NETLINK_RDMA] = "rdma", [NETLINK_CRYPTO] = "crypto", [NETLINK_SMC] = "smc",
	};

	if (protocol < NL_MAX_LINKS && names[protocol])
		return names[protocol];
	snprintf(buf, len, "protocol %u", protocol);
	return buf;
}

int netlink_check_entry(const FileEntry *e)
{
	const NetlinkSocket *n = e->netlink;

	if (!n || n->protocol >= NL_MAX_LINKS || (n->type != SOCK_RAW && n->type != SOCK_DGRAM))
		return cr_err("image: netlink socket file %u is invalid", e->id);
	if (n->n_groups > NL_GROUPS_MAX)
		return cr_err("image: netlink socket file %u joins %zu groups", e->id, n->n_groups);
	for (size_t i = 0; i < n->n_groups; i++)
		if (!n->groups[i] || n->groups[i] > NL_GROUP_MAX)
			return cr_err("image: netlink socket file %u joins group %u", e->id,
				      n->groups[i]);
	if (n->has_dst_group && n->dst_group > 32)
		return cr_err("image: netlink socket file %u sends to group %u", e->id,
			      n->dst_group);
	return sk_opts_check(n->opts);
}

/* ---- sock_diag ---- */

int sk_diag_dump(const void *req, size_t len, int (*cb)(const void *msg, size_t len, void *arg),
		 void *arg)
{
	static char buf[32768] __attribute__((aligned(8)));
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), rc = -1;

	if (fd < 0)
		return cr_perr("cannot open a sock_diag socket");
	if (send(fd, req, len, 0) != (ssize_t)len) {
		cr_perr("cannot ask sock_diag");
		goto out;
	}
	for (;;) {
		ssize_t got = recv(fd, buf, sizeof(buf), 0), n = got;
		struct nlmsghdr *h = (void *)buf;

		if (got < 0) {
			cr_perr("cannot read sock_diag's answer");
			goto out;
		}
		for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				rc = 0;
				goto out;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				errno = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
				cr_perr("sock_diag refused a question");
				goto out;
			}
			if (cb(NLMSG_DATA(h), h->nlmsg_len - NLMSG_HDRLEN, arg))
				goto out;
		}
		if (!got) {
			cr_err("sock_diag's answer ended early");
			goto out;
		}
	}
out:
	close(fd);
	return rc;
}

struct nl_find {
	uint32_t ino;
	bool found;
	struct nl_diag d;
};

static int nl_found(const void *msg, size_t len, void *arg)
{
	struct nl_find *f = arg;
	struct nl_diag d;

	if (netlink_diag_parse(msg, len, &d))
		return -1;
	if (d.ino == f->ino) {
		f->d = d;
		f->found = true;
	}
	return 0;
}

/* The socket of this inode and protocol, if it is bound or in a group (the others are
 * in no table sock_diag walks): 0 and *d, 1 if not found, -1 on error. */
static int nl_diag_one(uint32_t ino, uint8_t protocol, struct nl_diag *d)
{
	struct {
		struct nlmsghdr h;
		struct netlink_diag_req r;
	} req = {
		.h = { sizeof(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0 },
		.r = { .sdiag_family = AF_NETLINK, .sdiag_protocol = protocol,
		       .ndiag_show = NDIAG_SHOW_FLAGS },
	};
	struct nl_find f = { .ino = ino };

	if (sk_diag_dump(&req, sizeof(req), nl_found, &f))
		return -1;
	*d = f.d;
	return f.found ? 0 : 1;
}

/* ---- shared with the other socket kinds ---- */

int sk_int(int fd, int level, int opt, int *v)
{
	socklen_t l = sizeof(*v);

	*v = 0;
	return getsockopt(fd, level, opt, v, &l);
}

int sk_ids(int fd, uint32_t *family, uint32_t *type, uint32_t *protocol)
{
	int f, t, p;

	if (sk_int(fd, SOL_SOCKET, SO_DOMAIN, &f) || sk_int(fd, SOL_SOCKET, SO_TYPE, &t) ||
	    sk_int(fd, SOL_SOCKET, SO_PROTOCOL, &p))
		return -1;
	*family = f;
	*type = t;
	*protocol = p;
	return 0;
}

/* Bytes queued for reading (SO_MEMINFO's receive allocation): -1 if unknown. */
long sk_rqueue(int fd)
{
	uint32_t mem[SK_MEMINFO_VARS];
	socklen_t l = sizeof(mem);

	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &l) || l <= SK_MEMINFO_RMEM_ALLOC * 4)
		return -1;
	return mem[SK_MEMINFO_RMEM_ALLOC];
}

int sk_refuse(const struct fd_probe *pr, const char *what, const char *why)
{
	return cr_err("process %d: fd %d is a %s: %s", pr->p->pid, pr->fd, what, why);
}

int sk_dump_last(const struct fd_probe *pr, int fd, const char *what, const char *items,
		 const char *why)
{
	pid_t holder = file_socket_outside(pr->p->ctx, pr->st->st_ino);
	long q = items ? sk_rqueue(fd) : 0;
	char msg[256];

	if (holder < 0)
		return -1;
	if (holder) {
		snprintf(msg, sizeof(msg), "process %d, outside the tree, holds it too; the "
			 "restored socket would not be theirs", holder);
		return sk_refuse(pr, what, msg);
	}
	if (!items || !q)
		return 0;
	snprintf(msg, sizeof(msg), "%s are queued on it, not read yet (%ld bytes with their "
		 "overhead); %s", items, q, why);
	return sk_refuse(pr, what, msg);
}

/* ---- dump ---- */

static bool netlink_match(const struct fd_probe *pr)
{
	return file_sock_is(pr, AF_NETLINK, NULL, NULL);
}

struct nl_probe {
	const struct fd_probe *pr;
	int fd;
	char what[64];			/* "netlink socket (route, port id 42)" */
};

static int nl_refuse(const struct nl_probe *s, const char *why)
{
	return sk_refuse(s->pr, s->what, why);
}

static int dump_groups(struct nl_probe *s, NetlinkSocket *n)
{
	uint32_t bits[NL_GROUPS_MAX / 32];
	socklen_t l = sizeof(bits);

	if (getsockopt(s->fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, bits, &l))
		return cr_perr("process %d: fd %d: cannot list its netlink groups", s->pr->p->pid,
			       s->pr->fd);
	if (l > sizeof(bits))
		return nl_refuse(s, "its protocol has more groups than cryo keeps");
	n->groups = calloc(l * 8 + 1, sizeof(*n->groups));
	if (!n->groups)
		return cr_err("out of memory");
	for (size_t g = 0; g < l * 8; g++)
		if (bits[g / 32] & (1u << (g % 32)))
			n->groups[n->n_groups++] = g + 1;
	return 0;
}

static int dump_flags(struct nl_probe *s, NetlinkSocket *n)
{
	struct { int opt; protobuf_c_boolean *has, *on; } flags[] = {
		{ NETLINK_PKTINFO, &n->has_pktinfo, &n->pktinfo },
		{ NETLINK_BROADCAST_ERROR, &n->has_broadcast_error, &n->broadcast_error },
		{ NETLINK_NO_ENOBUFS, &n->has_no_enobufs, &n->no_enobufs },
		{ NETLINK_LISTEN_ALL_NSID, &n->has_listen_all_nsid, &n->listen_all_nsid },
		{ NETLINK_CAP_ACK, &n->has_cap_ack, &n->cap_ack },
		{ NETLINK_EXT_ACK, &n->has_ext_ack, &n->ext_ack },
		{ NETLINK_GET_STRICT_CHK, &n->has_get_strict_chk, &n->get_strict_chk },
	};
	int v;

	for (size_t i = 0; i < CR_ARRAY_SIZE(flags); i++) {
		if (sk_int(s->fd, SOL_NETLINK, flags[i].opt, &v))
			return cr_perr("process %d: fd %d: cannot read netlink option %d",
				       s->pr->p->pid, s->pr->fd, flags[i].opt);
		*flags[i].has = *flags[i].on = !!v;
	}
	return 0;
}

/* Bound: the port id; connected: where to; a dump answer being made refuses. */
static int dump_addrs(struct nl_probe *s, NetlinkSocket *n)
{
	struct sockaddr_nl a = { 0 };
	socklen_t l = sizeof(a);
	struct nl_diag d;
	char proto[24];
	int rc;

	if (getsockname(s->fd, (struct sockaddr *)&a, &l))
		return cr_perr("process %d: fd %d: getsockname", s->pr->p->pid, s->pr->fd);
	snprintf(s->what, sizeof(s->what), "netlink socket (%s, port id %u)",
		 netlink_proto_name(n->protocol, proto, sizeof(proto)), a.nl_pid);
	if (a.nl_pid) {
		n->has_portid = 1;
		n->portid = a.nl_pid;
		rc = nl_diag_one(s->pr->st->st_ino, n->protocol, &d);
		if (rc < 0)
			return -1;
		if (rc > 0)
			return nl_refuse(s, "netlink_diag does not show it");
		if (d.has_flags && d.flags & NDIAG_FLAG_CB_RUNNING)
			return nl_refuse(s, "the kernel is still making the answer to a dump request "
					 "it sent; cryo cannot make the rest of it again");
	}
	l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getpeername(s->fd, (struct sockaddr *)&a, &l))
		return cr_perr("process %d: fd %d: getpeername", s->pr->p->pid, s->pr->fd);
	if (a.nl_pid || a.nl_groups) {
		n->has_dst_portid = n->has_dst_group = 1;
		n->dst_portid = a.nl_pid;
		n->dst_group = a.nl_groups ? __builtin_ffs(a.nl_groups) : 0;
	}
	return 0;
}

static int netlink_dump(const struct fd_probe *pr, FileEntry *e)
{
	NetlinkSocket *n = calloc(1, sizeof(*n));
	struct nl_probe s = { pr, -1, "netlink socket" };
	uint32_t family;
	int rc = -1;

	if (!n)
		return cr_err("out of memory");
	netlink_socket__init(n);
	e->netlink = n;
	e->kind = FILE_KIND__FILE_NETLINK;
	e->flags = pr->fi->flags & KEEP_FLAGS;
	s.fd = file_fd_dup(pr->p->pid, pr->fd);
	if (s.fd < 0)
		return -1;
	if (sk_ids(s.fd, &family, &n->type, &n->protocol)) {
		cr_perr("process %d: fd %d: cannot read its type", pr->p->pid, pr->fd);
		goto out;
	}
	if (dump_addrs(&s, n) || dump_groups(&s, n) || dump_flags(&s, n) ||
	    sk_opts_dump_for(s.fd, AF_NETLINK, s.what, &n->opts) ||
	    sk_dump_last(pr, s.fd, s.what, "messages", "cryo cannot put them back"))
		goto out;
	rc = 0;
out:
	close(s.fd);
	return rc;
}

static void netlink_free(FileEntry *e)
{
	if (e->netlink) {
		free(e->netlink->groups);
		sk_opts_free(e->netlink->opts);
	}
	free(e->netlink);
}

/* ---- restore ---- */

/* A group an image of another user may join with cryo's rights: only route's, which
 * any process may join, except the two multicast routing ones. */
static bool group_for_anyone(const NetlinkSocket *n, uint32_t g)
{
	return n->protocol == NETLINK_ROUTE && g != RTNLGRP_IPV4_MROUTE_R &&
	       g != RTNLGRP_IPV6_MROUTE_R;
}

static int netlink_check(const FileEntry *e)
{
	return netlink_check_entry(e);
}

int sk_set_int(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof(v));
}

int sk_open_done(int fd, uint32_t flags)
{
	if (!fcntl(fd, F_SETFL, flags & O_NONBLOCK))
		return fd;
	cr_perr("cannot set the flags of a socket");
	close(fd);
	return -1;
}

static int nl_set_flags(int fd, const NetlinkSocket *n)
{
	const struct { int opt; protobuf_c_boolean on; } flags[] = {
		{ NETLINK_PKTINFO, n->pktinfo }, { NETLINK_BROADCAST_ERROR, n->broadcast_error },
		{ NETLINK_NO_ENOBUFS, n->no_enobufs }, { NETLINK_LISTEN_ALL_NSID, n->listen_all_nsid },
		{ NETLINK_CAP_ACK, n->cap_ack }, { NETLINK_EXT_ACK, n->ext_ack },
		{ NETLINK_GET_STRICT_CHK, n->get_strict_chk },
	};

	for (size_t i = 0; i < CR_ARRAY_SIZE(flags); i++)
		if (flags[i].on && sk_set_int(fd, SOL_NETLINK, flags[i].opt, 1))
			return cr_perr("cannot set netlink option %d", flags[i].opt);
	return 0;
}

static int nl_bind(struct restore_ctx *ctx, int fd, const FileEntry *e, const char *proto)
{
	const NetlinkSocket *n = e->netlink;
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = n->portid };

	for (size_t i = 0; i < n->n_groups; i++) {
		if (ctx->trust.limited && !group_for_anyone(n, n->groups[i]))
			return cr_err("netlink socket file %u (%s) joins group %u, which needs "
				      "rights an image of another user does not give", e->id, proto,
				      n->groups[i]);
		if (n->groups[i] <= 32)
			a.nl_groups |= 1u << (n->groups[i] - 1);
	}
	if ((n->portid || a.nl_groups) && bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		if (errno == EADDRINUSE)
			return cr_err("netlink socket file %u (%s): port id %u is taken by another "
				      "socket", e->id, proto, n->portid);
		return cr_perr("netlink socket file %u (%s): cannot bind it to port id %u",
			       e->id, proto, n->portid);
	}
	for (size_t i = 0; i < n->n_groups; i++)
		if (n->groups[i] > 32 &&
		    sk_set_int(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, n->groups[i]))
			return cr_perr("netlink socket file %u (%s): cannot join group %u", e->id,
				       proto, n->groups[i]);
	return 0;
}

static int netlink_open(struct restore_ctx *ctx, const FileEntry *e)
{
	const NetlinkSocket *n = e->netlink;
	struct sockaddr_nl peer = { .nl_family = AF_NETLINK, .nl_pid = n->dst_portid };
	char proto[24], what[64];
	const char *pn = netlink_proto_name(n->protocol, proto, sizeof(proto));
	int fd = socket(AF_NETLINK, n->type | SOCK_CLOEXEC, n->protocol);

	if (fd < 0)
		return cr_perr("cannot make a netlink socket (%s)", pn);
	snprintf(what, sizeof(what), "netlink socket file %u (%s)", e->id, pn);
	if (sk_opts_restore_for(fd, AF_NETLINK, n->opts, ctx->trust.limited, what))
		goto fail;
	if (nl_set_flags(fd, n) || nl_bind(ctx, fd, e, pn))
		goto fail;
	if (n->dst_group)
		peer.nl_groups = 1u << (n->dst_group - 1);
	if ((n->dst_portid || n->dst_group) && connect(fd, (struct sockaddr *)&peer, sizeof(peer))) {
		cr_perr("netlink socket file %u (%s): cannot connect it to port id %u", e->id, pn,
			n->dst_portid);
		goto fail;
	}
	return sk_open_done(fd, e->flags);
fail:
	close(fd);
	return -1;
}

static bool netlink_handles(FileKind k)
{
	return k == FILE_KIND__FILE_NETLINK;
}

const struct fd_kind netlink_kind = {
	.name = "a netlink socket",
	.handles = netlink_handles,
	.match = netlink_match,
	.dump = netlink_dump,
	.check = netlink_check,
	.open = netlink_open,
	.free = netlink_free,
};
