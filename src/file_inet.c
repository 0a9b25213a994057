/* TCP sockets (FILE_TCP), IPv4 and IPv6: listeners (with their backlog and
 * options, v6-only or dual-stack), sockets bound and never connected, sockets
 * never bound, and connections (their state through tcp_repair.c, with
 * --tcp-established; closed with --tcp-close). Dump reads a copy of the fd
 * (TCP_INFO for the state and the accept queue, getsockname, options; sock_diag for
 * what only it shows) and refuses what cannot come back; restore first checks that
 * this host has every address of the image, then makes each socket in cryo:
 * options, bind, listen, or the connection. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>

#include "fd_kind.h"
#include "file_inet.h"
#include "file_sk.h"
#include "log.h"
#include "sk_opts.h"
#include "sys.h"
#include "tcp_repair.h"
#include "util.h"

/* TCP states (include/net/tcp_states.h). */
#define ST_ESTABLISHED 1
#define ST_CLOSE 7
#define ST_LISTEN 10
#define SHUT_BOTH 3			/* InetSocket.shutdown: no more receiving or sending */
#define CC_NAME_MAX 16			/* TCP_CA_NAME_MAX */
#define BACKLOG_MAX 65535		/* somaxconn's ceiling */
#define ULP_NAME_MAX 16

#define TCP_OPT(o, f, a, b) SK_INT_OPT(InetTcpOpts, #o, IPPROTO_TCP, o, f, a, b)
#define TCP_BOOL(o, f) TCP_OPT(o, f, 0, 1)

static const struct sk_int_opt tcp_opts[] = {
	TCP_BOOL(TCP_NODELAY, nodelay),
	TCP_BOOL(TCP_CORK, cork),
	TCP_OPT(TCP_KEEPIDLE, keepidle, 1, 32767),
	TCP_OPT(TCP_KEEPINTVL, keepintvl, 1, 32767),
	TCP_OPT(TCP_KEEPCNT, keepcnt, 1, 127),
	TCP_OPT(TCP_MAXSEG, maxseg, 0, 32767),
	TCP_OPT(TCP_USER_TIMEOUT, user_timeout, 0, INT32_MAX),
	TCP_OPT(TCP_DEFER_ACCEPT, defer_accept, 0, INT32_MAX),
	TCP_OPT(TCP_FASTOPEN, fastopen, 0, INT32_MAX),
	TCP_BOOL(TCP_FASTOPEN_CONNECT, fastopen_connect),
	TCP_OPT(TCP_NOTSENT_LOWAT, notsent_lowat, INT32_MIN, INT32_MAX),
	TCP_OPT(TCP_LINGER2, linger2, -1, INT32_MAX),
	TCP_OPT(TCP_SYNCNT, syncnt, 1, 127),
	TCP_OPT(TCP_WINDOW_CLAMP, window_clamp, 0, INT32_MAX),
	TCP_BOOL(TCP_THIN_LINEAR_TIMEOUTS, thin_linear_timeouts),
	TCP_OPT(TCP_SAVE_SYN, save_syn, 0, 2),
	TCP_BOOL(TCP_FASTOPEN_NO_COOKIE, fastopen_no_cookie),
	TCP_OPT(TCP_TX_DELAY, tx_delay, 0, INT32_MAX),
};

/* ---- pure ---- */

bool inet_cc_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (!n || n >= CC_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-')
			return false;
	return true;
}

bool inet_cc_in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p;) {
		size_t len;

		p += strspn(p, " \t\n");
		len = strcspn(p, " \t\n");
		if (len == n && !memcmp(p, name, n))
			return true;
		p += len;
	}
	return false;
}

static int check_addr(const FileEntry *e, const ProtobufCBinaryData *a, uint32_t port)
{
	struct sockaddr_storage ss;
	char what[48];
	socklen_t l;

	snprintf(what, sizeof(what), "TCP socket file %u", e->id);
	return inet_addr_from_image(e->tcp->family, a, port, what, &ss, &l);
}

static int check_opts(const FileEntry *e)
{
	const InetSocket *s = e->tcp;

	if (sk_opts_check(s->opts))
		return -1;
	if (!s->tcp)
		return 0;
	if (sk_int_opts_check(s->tcp, tcp_opts, CR_ARRAY_SIZE(tcp_opts)))
		return -1;
	if (s->tcp->congestion && !inet_cc_name_ok(s->tcp->congestion))
		return cr_err("image: TCP socket file %u has a bad congestion control name", e->id);
	return 0;
}

/* A connection: both ends, no backlog, its state (if kept) the socket's. */
static int check_conn(const FileEntry *e)
{
	const InetSocket *s = e->tcp;

	if (!s->has_src_addr || !s->src_port || !s->has_dst_addr || !s->has_dst_port ||
	    !s->dst_port || check_addr(e, &s->dst_addr, s->dst_port))
		return cr_err("image: TCP connection file %u has bad addresses", e->id);
	if (s->has_backlog || (s->conn && s->conn->state != s->state))
		return cr_err("image: TCP connection file %u is inconsistent", e->id);
	if (s->conn && tcp_conn_check(s->conn))
		return -1;
	return check_opts(e);
}

int inet_check_entry(const FileEntry *e)
{
	const InetSocket *s = e->tcp;

	if (!s || (s->family != AF_INET && s->family != AF_INET6))
		return cr_err("image: TCP socket file %u is invalid", e->id);
	if (s->state != ST_LISTEN && s->state != ST_CLOSE && !tcp_state_connected(s->state))
		return cr_err("image: TCP socket file %u has state %u", e->id, s->state);
	if (s->has_src_addr != s->has_src_port ||
	    (s->has_src_addr && check_addr(e, &s->src_addr, s->src_port)))
		return cr_err("image: TCP socket file %u has a bad local address", e->id);
	if (tcp_state_connected(s->state))
		return check_conn(e);
	if (s->has_dst_addr || s->has_dst_port || s->conn)
		return cr_err("image: TCP socket file %u has a peer but is not connected", e->id);
	if (s->state == ST_LISTEN && (!s->has_src_port || !s->src_port || !s->has_backlog))
		return cr_err("image: TCP socket file %u listens without a port or backlog",
			      e->id);
	if (s->state != ST_LISTEN && s->has_backlog)
		return cr_err("image: TCP socket file %u has a backlog but does not listen", e->id);
	if (s->has_backlog && s->backlog > BACKLOG_MAX)
		return cr_err("image: TCP socket file %u has a backlog of %u", e->id, s->backlog);
	if (s->has_shutdown && (s->state != ST_CLOSE || s->has_src_addr || s->shutdown != SHUT_BOTH))
		return cr_err("image: TCP socket file %u has a bad shutdown state", e->id);
	return check_opts(e);
}

/* ---- sock_diag ---- */

/* Every TCP socket of `family` in `states` on local port `sport` (the kernel
 * filters by port: one question costs what that port has, not what the host has):
 * cb gets each answer; `info` asks for what TCP_INFO carries (and the MD5 keys). */
static int diag_query(int family, uint32_t states, uint16_t sport, bool info,
		      int (*cb)(const void *msg, size_t len, void *arg), void *arg)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
		struct nlattr a;
		struct inet_diag_bc_op ops[2];
	} req = {
		.h = { sizeof(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0 },
		.r = { .sdiag_family = family, .sdiag_protocol = IPPROTO_TCP,
		       .idiag_ext = info ? 1 << (INET_DIAG_INFO - 1) : 0,
		       .idiag_states = states },
		.a = { NLA_HDRLEN + sizeof(req.ops), INET_DIAG_REQ_BYTECODE },
		/* sport == op[1].no: on to the end (accept), else 4 past it (reject). */
		.ops = { { INET_DIAG_BC_S_EQ, sizeof(req.ops), sizeof(req.ops) + 4 },
			 { 0, 0, sport } },
	};
	return sk_diag_dump(&req, sizeof(req), cb, arg);
}

struct diag_seen {
	uint32_t ino;
	bool found, md5;
	struct inet_diag_msg msg;	/* the socket's, once found */
};

static int diag_attrs(const void *msg, size_t msg_len, void *arg)
{
	const struct inet_diag_msg *m = msg;
	size_t len = msg_len - sizeof(*m), at = 0;
	struct diag_seen *seen = arg;

	if (msg_len < sizeof(*m) || m->idiag_inode != seen->ino)
		return 0;
	seen->found = true;
	seen->msg = *m;
	while (at + sizeof(struct nlattr) <= len) {
		const struct nlattr *a = (const void *)((const char *)(m + 1) + at);

		if (a->nla_len < sizeof(*a) || a->nla_len > len - at)
			return 0;
		if ((a->nla_type & NLA_TYPE_MASK) == INET_DIAG_MD5SIG)
			seen->md5 = true;
		at += NLA_ALIGN(a->nla_len);
	}
	return 0;
}

/* The same, for tcp_diag_ends's single answer. */
static void diag_attrs_h(const struct nlmsghdr *h, void *arg)
{
	diag_attrs(NLMSG_DATA(h), h->nlmsg_len - NLMSG_HDRLEN, arg);
}

/* What sock_diag alone shows of socket `ino` (in `states`, on local port `sport`):
 * TCP MD5 keys (to cryo, which has CAP_NET_ADMIN). */
static int diag_lookup(int family, uint32_t ino, uint32_t states, uint16_t sport,
		       struct diag_seen *seen)
{
	*seen = (struct diag_seen){ .ino = ino };
	return diag_query(family, states, sport, true, diag_attrs, seen);
}

/* The same of one connection, asked by its two ends: the kernel answers for that
 * one socket (a server's thousand connections on one port cost one answer each). */
static int diag_conn(const struct sockaddr_storage *local, const struct sockaddr_storage *peer,
		     uint32_t ino, struct diag_seen *seen)
{
	*seen = (struct diag_seen){ .ino = ino };
	return tcp_diag_ends(SOCK_DIAG_BY_FAMILY, (const struct sockaddr *)local,
			     (const struct sockaddr *)peer, diag_attrs_h, seen) < 0 ? -1 : 0;
}

/* ---- dump ---- */

struct tcp_probe {
	const struct fd_probe *pr;
	int fd;				/* cryo's copy */
	int family;
	struct tcp_info info;
	struct sockaddr_storage local;
	char name[160];			/* "process P: fd N (TCP socket A)", for messages */
};

static int sock_int(int fd, int level, int opt, int *v)
{
	socklen_t l = sizeof(*v);

	return getsockopt(fd, level, opt, v, &l);
}

static bool inet_match(const struct fd_probe *pr)
{
	int type = 0, proto = 0;

	return (file_sock_is(pr, AF_INET, &type, &proto) ||
		file_sock_is(pr, AF_INET6, &type, &proto)) &&
	       type == SOCK_STREAM && proto == IPPROTO_TCP;
}

static const void *addr_bytes(const struct sockaddr_storage *ss, uint32_t *port)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)ss;

		*port = ntohs(s->sin6_port);
		return &s->sin6_addr;
	}
	*port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return &((const struct sockaddr_in *)ss)->sin_addr;
}

static void local_str(const struct tcp_probe *s, char *out, size_t size)
{
	uint32_t port;
	const void *a = addr_bytes(&s->local, &port);

	inet_addr_str(s->family, a, port, out, size);
}

static int refuse(const struct tcp_probe *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int refuse(const struct tcp_probe *s, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cr_err("%s: %s", s->name, msg);
}

static int set_bytes(ProtobufCBinaryData *b, protobuf_c_boolean *has, const void *d, size_t n)
{
	b->data = malloc(n);
	if (!b->data)
		return cr_err("out of memory");
	memcpy(b->data, d, n);
	b->len = n;
	*has = 1;
	return 0;
}

static int dump_tcp_opts(struct tcp_probe *s, InetSocket *is)
{
	char cc[CC_NAME_MAX + 1] = "", ulp[ULP_NAME_MAX + 1] = "";
	socklen_t l = sizeof(ulp) - 1;
	InetTcpOpts *t = calloc(1, sizeof(*t));

	if (!t)
		return cr_err("out of memory");
	inet_tcp_opts__init(t);
	is->tcp = t;
	if (!getsockopt(s->fd, IPPROTO_TCP, TCP_ULP, ulp, &l) && ulp[0])
		return refuse(s, "it has the upper layer protocol %s (TCP_ULP); cryo does not "
			      "restore it", ulp);
	if (sk_int_opts_dump(s->fd, s->family, tcp_opts, CR_ARRAY_SIZE(tcp_opts), t, s->name))
		return -1;
	l = sizeof(cc) - 1;
	if (getsockopt(s->fd, IPPROTO_TCP, TCP_CONGESTION, cc, &l))
		return cr_perr("%s: cannot read TCP_CONGESTION", s->name);
	cc[l < sizeof(cc) ? l : sizeof(cc) - 1] = 0;
	if (cc[0] && !(t->congestion = strdup(cc)))
		return cr_err("out of memory");
	return 0;
}

/* The accept queue: connections complete but not accepted. Without
 * --tcp-skip-in-flight they are refused (cryo cannot put them back); with it they
 * are left out of the image (in a killed tree their clients see a reset). */
static int dump_listener(struct tcp_probe *s, InetSocket *is)
{
	const struct dump_ctx *ctx = s->pr->p->ctx;
	struct diag_seen seen;
	char a[80];

	is->has_backlog = 1;
	is->backlog = s->info.tcpi_sacked;	/* TCP_INFO of a listener: max backlog */
	local_str(s, a, sizeof(a));
	if (s->info.tcpi_unacked && !ctx->tcp_skip_in_flight)
		return cr_err("process %d: fd %d: listening socket %s has %u connection%s not "
			      "accepted yet; use --tcp-skip-in-flight to drop them",
			      s->pr->p->pid, s->pr->fd, a, s->info.tcpi_unacked,
			      s->info.tcpi_unacked == 1 ? "" : "s");
	if (s->info.tcpi_unacked)
		pr_info("process %d: fd %d: %u connection%s not accepted on %s left out "
			"(--tcp-skip-in-flight)\n", s->pr->p->pid, s->pr->fd,
			s->info.tcpi_unacked, s->info.tcpi_unacked == 1 ? "" : "s", a);
	if (diag_lookup(s->family, s->pr->st->st_ino, 1 << ST_LISTEN, is->src_port, &seen))
		return -1;
	if (!seen.found)
		return refuse(s, "sock_diag does not show it listening");
	if (seen.md5)
		return refuse(s, "it has TCP MD5 signature keys (TCP_MD5SIG); cryo does not "
			      "restore them");
	return 0;
}

/* Never connected: a connect that failed or a connection that ended leaves the
 * socket in TCP_CLOSE too, but with segments counted. */
static bool never_connected(const struct tcp_info *i)
{
	return !i->tcpi_segs_out && !i->tcpi_segs_in;
}

/* sock_diag's answer on a connection: by its ends, or (SYN_SENT: no peer name yet)
 * among the sockets in its state. */
static int find_conn(struct tcp_probe *s, unsigned state, struct diag_seen *seen)
{
	struct sockaddr_storage peer = { .ss_family = s->family };
	socklen_t l = sizeof(peer);

	uint32_t port;

	if (!getpeername(s->fd, (struct sockaddr *)&peer, &l))
		return diag_conn(&s->local, &peer, s->pr->st->st_ino, seen);
	addr_bytes(&s->local, &port);
	return diag_lookup(s->family, s->pr->st->st_ino, 1 << state, port, seen);
}

static int conn_refuse(struct tcp_probe *s, const char *local, const char *remote,
		       const char *why)
{
	return cr_err("process %d: fd %d is a TCP connection %s -> %s; %s", s->pr->p->pid,
		      s->pr->fd, local, remote, why);
}

/* A connection, in any state but LISTEN (a CLOSE one that was connected too): kept
 * with --tcp-established (tcp_repair.c), its ends only with --tcp-close. */
static int dump_connection(struct tcp_probe *s, InetSocket *is)
{
	const struct dump_ctx *ctx = s->pr->p->ctx;
	size_t alen = s->family == AF_INET6 ? 16 : 4;
	char local[80], remote[80] = "(no peer)";
	struct diag_seen seen = { 0 };
	uint32_t lport;
	const void *la = addr_bytes(&s->local, &lport);

	local_str(s, local, sizeof(local));
	if (is->state == ST_CLOSE) {	/* it ended: reads end-of-file, sends fail */
		is->has_shutdown = true;
		is->shutdown = SHUT_BOTH;
		return 0;
	}
	if (find_conn(s, is->state, &seen))
		return -1;
	if (seen.found)
		inet_addr_str(s->family, seen.msg.id.idiag_dst, ntohs(seen.msg.id.idiag_dport),
			      remote, sizeof(remote));
	if (!seen.found || !tcp_state_connected(is->state))
		return conn_refuse(s, local, remote, "cryo cannot keep a connection in this "
				   "state");
	if (!ctx->tcp_established && !ctx->tcp_close)
		return conn_refuse(s, local, remote, "dump it with --tcp-established");
	if (seen.md5)
		return conn_refuse(s, local, remote, "it has TCP MD5 signature keys "
				   "(TCP_MD5SIG), which cryo does not restore");
	if (set_bytes(&is->src_addr, &is->has_src_addr, la, alen) ||
	    set_bytes(&is->dst_addr, &is->has_dst_addr, seen.msg.id.idiag_dst, alen))
		return -1;
	is->has_src_port = is->has_dst_port = true;
	is->src_port = lport;
	is->dst_port = ntohs(seen.msg.id.idiag_dport);
	if (ctx->tcp_close)
		return 0;	/* recorded closed: no state */
	return tcp_conn_dump(s->fd, &seen.msg, &is->conn);
}

static int dump_state(struct tcp_probe *s, InetSocket *is)
{
	uint32_t port;
	const void *a = addr_bytes(&s->local, &port);
	size_t alen = s->family == AF_INET6 ? 16 : 4;
	char local[80];

	local_str(s, local, sizeof(local));
	is->state = s->info.tcpi_state;
	if (is->state != ST_LISTEN && (is->state != ST_CLOSE || !never_connected(&s->info)))
		return dump_connection(s, is);
	if (port || !inet_addr_is_any(s->family, a))
		if (set_bytes(&is->src_addr, &is->has_src_addr, a, alen))
			return -1;
	is->has_src_port = is->has_src_addr;
	is->src_port = port;
	return is->state == ST_LISTEN ? dump_listener(s, is) : 0;
}

static int dump_sock(struct tcp_probe *s, FileEntry *e, InetSocket *is)
{
	socklen_t l = sizeof(s->info);
	char local[80];
	pid_t holder;

	if (sock_int(s->fd, SOL_SOCKET, SO_DOMAIN, &s->family))
		return cr_perr("process %d: fd %d: cannot read its family", s->pr->p->pid,
			       s->pr->fd);
	l = sizeof(s->local);
	if (getsockname(s->fd, (struct sockaddr *)&s->local, &l))
		return cr_perr("process %d: fd %d: cannot read its address", s->pr->p->pid,
			       s->pr->fd);
	local_str(s, local, sizeof(local));
	snprintf(s->name, sizeof(s->name), "process %d: fd %d (TCP socket %s)", s->pr->p->pid,
		 s->pr->fd, local);
	holder = file_socket_outside(s->pr->p->ctx, s->pr->st->st_ino);
	if (holder < 0)
		return -1;
	if (holder)
		return refuse(s, "process %d outside the image holds it too; a restored copy "
			      "would not be the socket that process has", holder);
	l = sizeof(s->info);
	if (getsockopt(s->fd, IPPROTO_TCP, TCP_INFO, &s->info, &l))
		return cr_perr("%s: cannot read TCP_INFO", s->name);
	e->flags = s->pr->fi->flags & (O_ACCMODE | O_NONBLOCK);
	is->family = s->family;
	is->ino = s->pr->st->st_ino;
	if (dump_state(s, is) || sk_opts_dump_for(s->fd, s->family, s->name, &is->opts) ||
	    dump_tcp_opts(s, is))
		return -1;
	/* A connection's MSS is its state's (in repair mode this reads mss_clamp). */
	if (tcp_state_connected(is->state))
		is->tcp->has_maxseg = false;
	/* A stream socket has no multicast hops to set (ENOPROTOOPT), though an accepted
	 * IPv6 one reads its SYN's hop limit there. */
	if (is->opts)
		is->opts->has_ipv6_multicast_hops = false;
	return 0;
}

static int inet_dump(const struct fd_probe *pr, FileEntry *e)
{
	struct tcp_probe s = { .pr = pr };
	InetSocket *is = calloc(1, sizeof(*is));
	int rc = -1;

	if (!is)
		return cr_err("out of memory");
	inet_socket__init(is);
	e->kind = FILE_KIND__FILE_TCP;	/* its free hook frees what is made */
	e->tcp = is;
	s.fd = file_fd_dup(pr->p->pid, pr->fd);
	if (s.fd >= 0) {
		rc = dump_sock(&s, e, is);
		close(s.fd);
	}
	return rc;
}

/* ---- restore ---- */

static bool inet_handles(FileKind k)
{
	return k == FILE_KIND__FILE_TCP;
}

static int inet_check(const FileEntry *e)
{
	return inet_check_entry(e);
}

/* "the image's socket fd N of process P" (the first fd naming it), for messages. */
static void owner_str(const struct restore_ctx *ctx, const FileEntry *e, char *out, size_t size)
{
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		const Core *c = ctx->procs[i]->core;

		for (size_t j = 0; c && j < c->n_fds; j++)
			if (c->fds[j]->file_id == e->id) {
				snprintf(out, size, "the image's socket fd %u of process %u",
					 c->fds[j]->fd, c->pid);
				return;
			}
	}
	snprintf(out, size, "the image's TCP socket file %u", e->id);
}

static bool freebind(const SkOpts *o)
{
	return o && ((o->has_ip_freebind && o->ip_freebind) ||
		     (o->has_ip_transparent && o->ip_transparent) ||
		     (o->has_ipv6_freebind && o->ipv6_freebind) ||
		     (o->has_ipv6_transparent && o->ipv6_transparent));
}

/* What the image's owner could not do itself: a port below
 * ip_unprivileged_port_start, a congestion control not allowed to everyone, a
 * privileged option. */
static int check_rights(const struct restore_ctx *ctx, const InetSocket *s, const char *what)
{
	int start = read_int_file("/proc/sys/net/ipv4/ip_unprivileged_port_start", 1024);
	const char *cc = s->tcp ? s->tcp->congestion : NULL;
	char allowed[512] = "";
	FILE *f;

	if (!ctx->trust.limited || !ctx->trust.owner)
		return 0;
	if (s->has_src_port && s->src_port && (int)s->src_port < start)
		return cr_err("%s is bound to port %u, which its owner may not bind", what,
			      s->src_port);
	if (s->tcp && s->tcp->has_tx_delay && s->tcp->tx_delay)
		return cr_err("%s sets TCP_TX_DELAY, which needs rights the image's owner may "
			      "not have", what);
	f = fopen("/proc/sys/net/ipv4/tcp_allowed_congestion_control", "r");
	if (f && !fgets(allowed, sizeof(allowed), f))
		allowed[0] = 0;
	if (f)
		fclose(f);
	if (cc && !inet_cc_in_list(allowed, cc)) {
		char dflt[CC_NAME_MAX + 8] = "";

		f = fopen("/proc/sys/net/ipv4/tcp_congestion_control", "r");
		if (f && !fgets(dflt, sizeof(dflt), f))
			dflt[0] = 0;
		if (f)
			fclose(f);
		if (!inet_cc_in_list(dflt, cc))
			return cr_err("%s uses congestion control %s, which its owner may not "
				      "choose", what, cc);
	}
	return sk_opts_check_rights(s->opts, true, what);
}

/* A connection needs the flag it was dumped for: --tcp-close for one recorded
 * closed, --tcp-established (or --tcp-close) for one kept. */
static int conn_flags_check(const struct restore_ctx *ctx, const InetSocket *s,
			    const char *what)
{
	char a[80], b[80];

	if (!tcp_state_connected(s->state) || ctx->tcp_close)
		return 0;
	if (!s->conn)
		return cr_err("%s is a TCP connection dumped with --tcp-close; restore it "
			      "with --tcp-close", what);
	inet_addr_str(s->family, s->src_addr.data, s->src_port, a, sizeof(a));
	inet_addr_str(s->family, s->dst_addr.data, s->dst_port, b, sizeof(b));
	if (!ctx->tcp_established)
		return cr_err("%s is a TCP connection %s -> %s; restore it with "
			      "--tcp-established (or --tcp-close)", what, a, b);
	return 0;
}

/* Before any socket is made: every local address of the image is this host's
 * (unless the socket may bind any, IP_FREEBIND or IP_TRANSPARENT), and nothing asks
 * for more than the image's owner may have. */
static int inet_preflight(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->files->n_files; i++) {
		const FileEntry *e = ctx->files->files[i];
		const InetSocket *s = e->tcp;
		char what[96];

		if (e->kind != FILE_KIND__FILE_TCP || !s)
			continue;
		owner_str(ctx, e, what, sizeof(what));
		if (conn_flags_check(ctx, s, what))
			return -1;
		if (check_rights(ctx, s, what))
			return -1;
		if (s->has_src_addr && !freebind(s->opts) &&
		    inet_addr_local_check(s->family, s->src_addr.data, s->src_port, what))
			return -1;
	}
	return 0;
}

struct holder_search {
	uint32_t ino;			/* a socket with an fd */
	bool time_wait;			/* a connection of before, in TIME_WAIT */
};

#define ST_TIME_WAIT 6

static int find_port(const void *msg, size_t len, void *arg)
{
	const struct inet_diag_msg *m = msg;
	struct holder_search *hs = arg;

	if (len < sizeof(*m))
		return 0;
	if (m->idiag_state == ST_TIME_WAIT)
		hs->time_wait = true;
	else if (!hs->ino)
		hs->ino = m->idiag_inode;
	return 0;
}

/* Who has a TCP port of this host (listening, bound, connected, TIME_WAIT). */
static void port_search(uint16_t port, struct holder_search *h)
{
	if (diag_query(AF_INET, ~0u, port, false, find_port, h) ||
	    (!h->ino && diag_query(AF_INET6, ~0u, port, false, find_port, h)))
		cr_err_reset();		/* nobody to name: the error says what it can */
}

/* Does process `pid` hold `want` ("socket:[INO]") in an fd? */
static bool holds(int pid, const char *want)
{
	char path[64], l[64];
	struct dirent *fe;
	bool found = false;
	DIR *fds;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	fds = opendir(path);
	while (fds && !found && (fe = readdir(fds))) {
		ssize_t n = readlinkat(dirfd(fds), fe->d_name, l, sizeof(l) - 1);

		found = n > 0 && (l[n] = 0, !strcmp(l, want));
	}
	if (fds)
		closedir(fds);
	return found;
}

/* " (held by process P, COMM)" for a process with socket `ino` in an fd, or "". */
static void holder_str(uint32_t ino, char *out, size_t size)
{
	char want[40], path[64], comm[32] = "?";
	struct dirent *de;
	DIR *proc = ino ? opendir("/proc") : NULL;
	int pid = 0;
	FILE *f;

	out[0] = 0;
	snprintf(want, sizeof(want), "socket:[%u]", ino);
	while (proc && !pid && (de = readdir(proc)))
		if (isdigit((unsigned char)de->d_name[0]) && holds(atoi(de->d_name), want))
			pid = atoi(de->d_name);
	if (proc)
		closedir(proc);
	if (!pid)
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "r");
	if (f && fgets(comm, sizeof(comm), f))
		comm[strcspn(comm, "\n")] = 0;
	if (f)
		fclose(f);
	snprintf(out, size, " (held by process %d, %s)", pid, comm);
}

static int bind_err(const InetSocket *s, const char *what)
{
	struct holder_search h = { 0 };
	char a[80], who[128] = "";
	int err = errno;

	inet_addr_str(s->family, s->src_addr.data, s->src_port, a, sizeof(a));
	if (err != EADDRINUSE) {
		errno = err;
		return cr_perr("%s: cannot bind it to %s", what, a);
	}
	port_search(s->src_port, &h);
	holder_str(h.ino, who, sizeof(who));
	if (!who[0] && h.time_wait)
		snprintf(who, sizeof(who), " (by connections in TIME_WAIT, which only sockets "
			 "with SO_REUSEADDR on both sides may bind beside)");
	return cr_err("%s is bound to %s, and port %u is already in use on this host%s", what,
		      a, s->src_port, who);
}

static int set_int(int fd, int level, int opt, int v, const char *what, const char *name)
{
	if (setsockopt(fd, level, opt, &v, sizeof(v)))
		return cr_perr("%s: cannot set %s", what, name);
	return 0;
}

static int restore_cc(int fd, const InetSocket *s, const char *what)
{
	const char *cc = s->tcp ? s->tcp->congestion : NULL;
	char now[CC_NAME_MAX + 1] = "";
	socklen_t l = sizeof(now) - 1;

	if (!cc || (!getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, now, &l) &&
		    (now[l < sizeof(now) ? l : sizeof(now) - 1] = 0, !strcmp(now, cc))))
		return 0;
	if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, strlen(cc)))
		return cr_perr("%s uses congestion control %s, which this host cannot give",
			       what, cc);
	return 0;
}

/* Bound with SO_REUSEADDR (a port whose sockets of before are in TIME_WAIT binds),
 * listening, then the image's own value. */
static int bind_listen(int fd, const InetSocket *s, const char *what)
{
	bool reuse = s->opts && s->opts->has_reuseaddr && s->opts->reuseaddr;
	struct sockaddr_storage ss;
	socklen_t len;

	if (!s->has_src_addr)
		return 0;
	if (inet_addr_from_image(s->family, &s->src_addr, s->src_port, what, &ss, &len) ||
	    (!reuse && set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1, what, "SO_REUSEADDR")))
		return -1;
	if (bind(fd, (struct sockaddr *)&ss, len))
		return bind_err(s, what);
	if (s->state == ST_LISTEN && listen(fd, s->backlog))
		return cr_perr("%s: cannot listen", what);
	return reuse ? 0 : set_int(fd, SOL_SOCKET, SO_REUSEADDR, 0, what, "SO_REUSEADDR");
}

/* A connection, or one that ended or that --tcp-close closes: a socket shut down
 * both ways reads end-of-file and fails to send, as one whose connection closed. */
static int open_conn(struct restore_ctx *ctx, int fd, const InetSocket *s, const char *what)
{
	struct sockaddr_storage src, dst;
	socklen_t len;
	char a[80], b[80];

	if (conn_flags_check(ctx, s, what))
		return -1;
	if (!tcp_state_connected(s->state) || ctx->tcp_close || !s->conn) {
		if (shutdown(fd, SHUT_RDWR) && errno != ENOTCONN)
			return cr_perr("%s: cannot shut it down", what);
		return 0;
	}
	inet_addr_str(s->family, s->src_addr.data, s->src_port, a, sizeof(a));
	inet_addr_str(s->family, s->dst_addr.data, s->dst_port, b, sizeof(b));
	if (inet_addr_from_image(s->family, &s->src_addr, s->src_port, what, &src, &len) ||
	    inet_addr_from_image(s->family, &s->dst_addr, s->dst_port, what, &dst, &len))
		return -1;
	if (tcp_conn_restore(fd, s->conn, (struct sockaddr *)&src, (struct sockaddr *)&dst,
			     len))
		return cr_err_set() ? -1 : cr_err("%s: connection %s -> %s", what, a, b);
	return 0;
}

static bool is_conn(const InetSocket *s)
{
	return tcp_state_connected(s->state) || s->has_shutdown;
}

static int inet_open(struct restore_ctx *ctx, const FileEntry *e)
{
	const InetSocket *s = e->tcp;
	char what[96];
	int fd;

	owner_str(ctx, e, what, sizeof(what));
	fd = socket(s->family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return cr_perr("%s: cannot make a TCP socket", what);
	if (fcntl(fd, F_SETFL, e->flags & O_NONBLOCK) ||
	    sk_opts_restore_for(fd, s->family, s->opts, ctx->trust.limited, what) ||
	    (s->tcp && sk_int_opts_restore(fd, s->family, tcp_opts, CR_ARRAY_SIZE(tcp_opts),
					   s->tcp, what)) ||
	    restore_cc(fd, s, what) ||
	    (is_conn(s) ? open_conn(ctx, fd, s, what) : bind_listen(fd, s, what))) {
		if (!cr_err_set())
			cr_perr("%s: cannot make it again", what);
		close(fd);
		return -1;
	}
	return fd;
}

static void inet_free(FileEntry *e)
{
	InetSocket *s = e->tcp;

	if (!s)
		return;
	free(s->src_addr.data);
	free(s->dst_addr.data);
	sk_opts_free(s->opts);
	if (s->tcp)
		free(s->tcp->congestion);
	free(s->tcp);
	tcp_conn_free(s->conn);
	free(s);
	e->tcp = NULL;
}

const struct fd_kind tcp_kind = {
	.name = "a TCP socket",
	.handles = inet_handles,
	.match = inet_match,
	.dump = inet_dump,
	.check = inet_check,
	.preflight = inet_preflight,
	.open = inet_open,
	.free = inet_free,
};
