/* Raw IP sockets (SOCK_RAW, IPv4 and IPv6) and ping sockets (SOCK_DGRAM of ICMP or
 * ICMPv6). This kernel has no raw_diag, so everything comes from getsockopt,
 * getsockname and getpeername on a copy: protocol, the address bound (a ping socket's
 * ICMP id with it) and connected to, IP_HDRINCL, ICMP_FILTER, ICMP6_FILTER,
 * IPV6_CHECKSUM and the shared options (sk_opts.c). Datagrams queued and not read yet
 * make dump refuse: they came from the network and cannot be made to come again.
 * Restore makes the socket in cryo. Also the inet address helpers of file_udp.c. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/icmp.h>

#include "fd_kind.h"
#include "file_sk.h"
#include "files.h"
#include "log.h"
#include "sk_opts.h"
#include "trust.h"

#ifndef IPV6_HDRINCL
#define IPV6_HDRINCL 36
#endif
#define ICMP6_FILTER_OPT 1		/* ICMP6_FILTER, at level IPPROTO_ICMPV6 */
#define ICMP6_FILTER_LEN 32

/* ---- pure ---- */

static bool is_ping(uint32_t family, uint32_t type, uint32_t protocol)
{
	return type == SOCK_DGRAM && ((family == AF_INET && protocol == IPPROTO_ICMP) ||
				      (family == AF_INET6 && protocol == IPPROTO_ICMPV6));
}

static bool addr_ok(uint32_t family, protobuf_c_boolean has, const ProtobufCBinaryData *a)
{
	return !has || a->len == (family == AF_INET ? 4u : 16u);
}

int raw_check_entry(const FileEntry *e)
{
	const RawSocket *r = e->raw;

	if (!r || (r->family != AF_INET && r->family != AF_INET6) || r->protocol > 255 ||
	    (r->type != SOCK_RAW && !is_ping(r->family, r->type, r->protocol)) ||
	    (r->type == SOCK_RAW && !r->protocol))
		return cr_err("image: raw socket file %u is invalid", e->id);
	if (!addr_ok(r->family, r->has_addr, &r->addr) || !addr_ok(r->family, r->has_peer, &r->peer) ||
	    (r->has_port && (r->port > 65535 || r->type == SOCK_RAW)))
		return cr_err("image: raw socket file %u has a bad address", e->id);
	if ((r->has_icmp_filter && (r->family != AF_INET || r->protocol != IPPROTO_ICMP ||
				    r->type != SOCK_RAW)) ||
	    (r->has_icmp6_filter && (r->family != AF_INET6 || r->protocol != IPPROTO_ICMPV6 ||
				     r->type != SOCK_RAW || r->icmp6_filter.len != ICMP6_FILTER_LEN)))
		return cr_err("image: raw socket file %u has a bad ICMP filter", e->id);
	if (r->has_checksum && (r->family != AF_INET6 || r->type != SOCK_RAW ||
				r->checksum < -1 || r->checksum > 65535 || r->checksum % 2 > 0))
		return cr_err("image: raw socket file %u has a bad IPV6_CHECKSUM", e->id);
	return sk_opts_check(r->opts);
}

/* One line of /proc/net/raw, raw6, icmp or icmp6: its inode, and its remote address
 * (each 32-bit word of it printed in hex as the host reads it). */
static int parse_line(const char *line, int family, uint64_t *ino, struct sk_inet_addr *peer)
{
	char local[40], rem[40], hex[9] = "";
	unsigned long long inode;
	unsigned port, st;
	size_t words = family == AF_INET ? 1 : 4;

	if (sscanf(line, " %*u: %39[0-9A-Fa-f:] %39[0-9A-Fa-f]:%x %x %*s %*s %*s %*s %*s %llu",
		   local, rem, &port, &st, &inode) != 5 || strlen(rem) != words * 8)
		return -1;
	memset(peer, 0, sizeof(*peer));
	peer->len = words * 4;
	for (size_t i = 0; i < words; i++) {
		uint32_t w;

		memcpy(hex, rem + i * 8, 8);
		w = strtoul(hex, NULL, 16);
		memcpy(peer->addr + i * 4, &w, 4);
	}
	peer->port = port;
	peer->set = !inet_addr_is_any(family, peer->addr);
	*ino = inode;
	return 0;
}

int raw_proc_peer(const char *text, int family, uint64_t ino, struct sk_inet_addr *peer)
{
	const char *line = strchr(text, '\n');

	while (line && *++line) {
		uint64_t i;

		if (!parse_line(line, family, &i, peer) && i == ino)
			return 0;
		line = strchr(line, '\n');
	}
	return 1;
}

/* ---- inet addresses, shared with file_udp.c ---- */

bool sk_binds_anywhere(const SkOpts *o)
{
	return o && (o->ip_freebind || o->ipv6_freebind || o->ip_transparent ||
		     o->ipv6_transparent);
}

int sk_inet_name(int fd, bool peer, int family, struct sk_inet_addr *out)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t l = sizeof(ss);
	int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &l) :
			getsockname(fd, (struct sockaddr *)&ss, &l);

	memset(out, 0, sizeof(*out));
	if (rc)
		return peer && errno == ENOTCONN ? 0 : -1;
	if (ss.ss_family != family)
		return peer ? 0 : -1;	/* a datagram socket disconnected: AF_UNSPEC */
	if (family == AF_INET) {
		const struct sockaddr_in *s = (const void *)&ss;

		out->len = 4;
		memcpy(out->addr, &s->sin_addr, 4);
		out->port = ntohs(s->sin_port);
	} else {
		const struct sockaddr_in6 *s = (const void *)&ss;

		out->len = 16;
		memcpy(out->addr, &s->sin6_addr, 16);
		out->port = ntohs(s->sin6_port);
		out->scope_id = s->sin6_scope_id;
	}
	out->set = !inet_addr_is_any(family, out->addr) || out->port;
	return 0;
}

int sk_inet_keep(const struct sk_inet_addr *a, ProtobufCBinaryData *b, protobuf_c_boolean *has)
{
	b->data = malloc(a->len);
	if (!b->data)
		return cr_err("out of memory");
	memcpy(b->data, a->addr, a->len);
	b->len = a->len;
	*has = 1;
	return 0;
}

int sk_inet_bind(int fd, uint32_t family, const ProtobufCBinaryData *addr, uint32_t port,
		 bool peer, const char *what)
{
	static const uint8_t zero[16];
	ProtobufCBinaryData any = { family == AF_INET ? 4 : 16, (uint8_t *)zero };
	struct sockaddr_storage ss;
	char str[80];
	socklen_t l;

	if (inet_addr_from_image(family, addr->len ? addr : &any, port, what, &ss, &l))
		return -1;
	if (!(peer ? connect(fd, (struct sockaddr *)&ss, l) : bind(fd, (struct sockaddr *)&ss, l)))
		return 0;
	inet_addr_str(family, (addr->len ? addr : &any)->data, port, str, sizeof(str));
	if (!peer && errno == EADDRINUSE)
		return cr_err("%s: %s is taken by another socket", what, str);
	return cr_perr("%s: cannot %s %s", what, peer ? "connect it to" : "bind it to", str);
}

/* ---- dump ---- */

static bool rawsk_match(const struct fd_probe *pr)
{
	int type, protocol;

	if (!file_sock_is(pr, AF_INET, &type, &protocol) &&
	    !file_sock_is(pr, AF_INET6, &type, &protocol))
		return false;
	return type == SOCK_RAW || (type == SOCK_DGRAM && (protocol == IPPROTO_ICMP ||
							   protocol == IPPROTO_ICMPV6));
}

struct raw_probe {
	const struct fd_probe *pr;
	int fd;
	char what[128];			/* "ping socket 127.0.0.1 (id 7)" */
};

static int raw_refuse(const struct raw_probe *s, const char *why)
{
	return sk_refuse(s->pr, s->what, why);
}

/* Raw and ping sockets have no port of a peer, so getpeername says they are not
 * connected: /proc/net says where to. */
static int peer_of(struct raw_probe *s, const RawSocket *r, struct sk_inet_addr *peer)
{
	char path[32];
	size_t len;
	char *txt;
	int rc;

	snprintf(path, sizeof(path), "/proc/net/%s%s", r->type == SOCK_RAW ? "raw" : "icmp",
		 r->family == AF_INET6 ? "6" : "");
	txt = proc_read_file(path, &len);
	if (!txt)
		return -1;
	rc = raw_proc_peer(txt, r->family, s->pr->st->st_ino, peer);
	free(txt);
	if (rc > 0)
		return raw_refuse(s, "it is not in /proc/net, which says where it is connected");
	return rc;
}

static int dump_names(struct raw_probe *s, RawSocket *r)
{
	struct sk_inet_addr local, peer;
	char a[80];

	if (sk_inet_name(s->fd, false, r->family, &local))
		return cr_perr("process %d: fd %d: cannot read its address", s->pr->p->pid,
			       s->pr->fd);
	if (r->type == SOCK_RAW) {
		/* its "port" is its protocol */
		local.port = 0;
		local.set = !inet_addr_is_any(r->family, local.addr);
		inet_addr_str(r->family, local.addr, 0, a, sizeof(a));
		*strrchr(a, ':') = 0;
		snprintf(s->what, sizeof(s->what), "raw socket (IP protocol %u, %s)", r->protocol, a);
	} else {
		inet_addr_str(r->family, local.addr, local.port, a, sizeof(a));
		snprintf(s->what, sizeof(s->what), "ping socket (%s, the port being its ICMP id)", a);
	}
	if (peer_of(s, r, &peer))
		return -1;
	if (local.scope_id || peer.scope_id)
		return raw_refuse(s, "it uses a link-local address with a scope; not supported");
	if (local.set && sk_inet_keep(&local, &r->addr, &r->has_addr))
		return -1;
	if (r->type != SOCK_RAW && local.port) {
		r->has_port = 1;
		r->port = local.port;
	}
	if (peer.set && sk_inet_keep(&peer, &r->peer, &r->has_peer))
		return -1;
	return 0;
}

static int dump_own_opts(struct raw_probe *s, RawSocket *r)
{
	socklen_t l = ICMP6_FILTER_LEN;
	int v;

	if (r->type != SOCK_RAW)
		return 0;
	if (!sk_int(s->fd, r->family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
		    r->family == AF_INET ? IP_HDRINCL : IPV6_HDRINCL, &v))
		r->has_hdrincl = r->hdrincl = !!v;
	if (r->family == AF_INET && r->protocol == IPPROTO_ICMP) {
		if (sk_int(s->fd, SOL_RAW, ICMP_FILTER, &v))
			return cr_perr("%s: cannot read ICMP_FILTER", s->what);
		r->has_icmp_filter = 1;
		r->icmp_filter = v;
	}
	if (r->family == AF_INET6 && r->protocol == IPPROTO_ICMPV6) {
		r->icmp6_filter.data = calloc(1, ICMP6_FILTER_LEN);
		if (!r->icmp6_filter.data)
			return cr_err("out of memory");
		if (getsockopt(s->fd, IPPROTO_ICMPV6, ICMP6_FILTER_OPT, r->icmp6_filter.data, &l) ||
		    l != ICMP6_FILTER_LEN)
			return cr_perr("%s: cannot read ICMP6_FILTER", s->what);
		r->has_icmp6_filter = 1;
		r->icmp6_filter.len = l;
	}
	if (r->family == AF_INET6 && !sk_int(s->fd, IPPROTO_IPV6, IPV6_CHECKSUM, &v)) {
		r->has_checksum = 1;
		r->checksum = v;
	}
	return 0;
}

static int rawsk_dump(const struct fd_probe *pr, FileEntry *e)
{
	RawSocket *r = calloc(1, sizeof(*r));
	struct raw_probe s = { pr, -1, "raw socket" };
	int rc = -1;

	if (!r)
		return cr_err("out of memory");
	raw_socket__init(r);
	e->raw = r;
	e->kind = FILE_KIND__FILE_RAW;
	e->flags = pr->fi->flags & KEEP_FLAGS;
	s.fd = file_fd_dup(pr->p->pid, pr->fd);
	if (s.fd < 0)
		return -1;
	if (sk_ids(s.fd, &r->family, &r->type, &r->protocol)) {
		cr_perr("process %d: fd %d: cannot read its kind", pr->p->pid, pr->fd);
		goto out;
	}
	if (dump_names(&s, r) || dump_own_opts(&s, r) ||
	    sk_opts_dump_for(s.fd, r->family, s.what, &r->opts) ||
	    sk_dump_last(pr, s.fd, s.what, "datagrams", "cryo cannot make them arrive again"))
		goto out;
	rc = 0;
out:
	close(s.fd);
	return rc;
}

static void rawsk_free(FileEntry *e)
{
	RawSocket *r = e->raw;

	if (!r)
		return;
	free(r->addr.data);
	free(r->peer.data);
	free(r->icmp6_filter.data);
	sk_opts_free(r->opts);
	free(r);
}

/* ---- restore ---- */

static int rawsk_check(const FileEntry *e)
{
	const RawSocket *r = e->raw;
	char what[48];

	if (raw_check_entry(e))
		return -1;
	snprintf(what, sizeof(what), "raw socket file %u", e->id);
	if (!r->has_addr || sk_binds_anywhere(r->opts))
		return 0;
	return inet_addr_local_check(r->family, r->addr.data, 0, what);
}

static int set_own_opts(int fd, const RawSocket *r, const char *what)
{
	int now;

	if (r->has_hdrincl && r->hdrincl &&
	    sk_set_int(fd, r->family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
		       r->family == AF_INET ? IP_HDRINCL : IPV6_HDRINCL, 1))
		return cr_perr("%s: cannot set IP_HDRINCL", what);
	if (r->has_icmp_filter && sk_set_int(fd, SOL_RAW, ICMP_FILTER, r->icmp_filter))
		return cr_perr("%s: cannot set ICMP_FILTER", what);
	if (r->has_icmp6_filter && setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER_OPT,
					      r->icmp6_filter.data, r->icmp6_filter.len))
		return cr_perr("%s: cannot set ICMP6_FILTER", what);
	if (r->has_checksum && !sk_int(fd, IPPROTO_IPV6, IPV6_CHECKSUM, &now) &&
	    now != r->checksum && sk_set_int(fd, IPPROTO_IPV6, IPV6_CHECKSUM, r->checksum))
		return cr_perr("%s: cannot set IPV6_CHECKSUM", what);
	return 0;
}

static int rawsk_open(struct restore_ctx *ctx, const FileEntry *e)
{
	const RawSocket *r = e->raw;
	bool ping = r->type != SOCK_RAW;
	char what[48];
	int fd;

	snprintf(what, sizeof(what), "%s socket file %u", ping ? "ping" : "raw", e->id);
	if (!ping && ctx->trust.limited)
		return cr_err("%s: an image of another user may not have one (it needs "
			      "CAP_NET_RAW)", what);
	fd = socket(r->family, r->type | SOCK_CLOEXEC, r->protocol);
	if (fd < 0 && ping && errno == EACCES)
		return cr_perr("%s: cannot make a ping socket (net.ipv4.ping_group_range does "
			       "not include cryo's group)", what);
	if (fd < 0)
		return cr_perr("%s: cannot make it", what);
	if (sk_opts_restore_for(fd, r->family, r->opts, ctx->trust.limited, what) ||
	    set_own_opts(fd, r, what))
		goto fail;
	if ((r->has_addr || r->has_port) &&
	    sk_inet_bind(fd, r->family, &r->addr, r->has_port ? r->port : 0, false, what))
		goto fail;
	if (r->has_peer && sk_inet_bind(fd, r->family, &r->peer, 0, true, what))
		goto fail;
	return sk_open_done(fd, e->flags);
fail:
	close(fd);
	return -1;
}

static bool rawsk_handles(FileKind k)
{
	return k == FILE_KIND__FILE_RAW;
}

const struct fd_kind raw_kind = {
	.name = "a raw or ping socket",
	.handles = rawsk_handles,
	.match = rawsk_match,
	.dump = rawsk_dump,
	.check = rawsk_check,
	.open = rawsk_open,
	.free = rawsk_free,
};
