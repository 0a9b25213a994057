/* UDP and UDP-lite sockets, IPv4 and IPv6: the address and port bound, the peer,
 * shutdown (udp_diag), multicast memberships with their source filters (the groups of
 * /proc/net/igmp and igmp6, each asked of the socket with MCAST_MSFILTER), the UDP
 * options and the shared ones (sk_opts.c), and the datagrams queued and not read yet
 * with their sources (MSG_PEEK at a moving SO_PEEK_OFF on a copy, the offset put back
 * after). Restore makes the socket in cryo, binds it, then sends each queued datagram
 * again as an IP packet of cryo's own (a raw socket) from its source address and port
 * to the socket alone, waits until all are queued, and only then connects it. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/udp.h>

#include "fd_kind.h"
#include "file_sk.h"
#include "files.h"
#include "log.h"
#include "sk_opts.h"
#include "sys.h"
#include "trust.h"
#include "util.h"

#ifndef SOL_UDPLITE
#define SOL_UDPLITE 136
#endif
#define UDPLITE_SEND_CSCOV 10
#define UDPLITE_RECV_CSCOV 11
#define DGRAM_MAX 65535			/* the longest datagram there is */
#define QUEUE_BYTES_MAX (64u << 20)	/* what one socket may hold in an image */
#define QUEUE_MSGS_MAX 16384		/* peeking at an offset walks the queue: quadratic */
#define MEMBERS_MAX 256
#define SOURCES_MAX 64
#define REQUEUE_WAIT_MS 2000

static const struct sk_int_opt udp_opts[] = {
	SK_INT_OPT(UdpSocket, "UDP_CORK", IPPROTO_UDP, UDP_CORK, cork, 0, 1),
	SK_INT_OPT(UdpSocket, "UDP_SEGMENT", IPPROTO_UDP, UDP_SEGMENT, segment, 0, 65535),
	SK_INT_OPT(UdpSocket, "UDP_GRO", IPPROTO_UDP, UDP_GRO, gro, 0, 1),
	SK_INT_OPT(UdpSocket, "UDP_NO_CHECK6_TX", IPPROTO_UDP, UDP_NO_CHECK6_TX, no_check6_tx, 0, 1),
	SK_INT_OPT(UdpSocket, "UDP_NO_CHECK6_RX", IPPROTO_UDP, UDP_NO_CHECK6_RX, no_check6_rx, 0, 1),
	SK_INT_OPT(UdpSocket, "UDPLITE_SEND_CSCOV", SOL_UDPLITE, UDPLITE_SEND_CSCOV, send_cscov, 0,
		   65535),
	SK_INT_OPT(UdpSocket, "UDPLITE_RECV_CSCOV", SOL_UDPLITE, UDPLITE_RECV_CSCOV, recv_cscov, 0,
		   65535),
	SK_INT_OPT(UdpSocket, "IP_MULTICAST_IF", IPPROTO_IP, IP_MULTICAST_IF, multicast_if, 0,
		   UINT32_MAX),
	SK_INT_OPT(UdpSocket, "IPV6_MULTICAST_IF", IPPROTO_IPV6, IPV6_MULTICAST_IF, multicast_if6,
		   0, INT32_MAX),
};

/* ---- pure ---- */

int udp_diag_parse(const void *buf, size_t len, struct udp_diag *out)
{
	const struct inet_diag_msg *m = buf;
	size_t at = NLMSG_ALIGN(sizeof(*m));

	memset(out, 0, sizeof(*out));
	if (len < sizeof(*m) || (m->idiag_family != AF_INET && m->idiag_family != AF_INET6))
		return cr_err("udp_diag: a short or foreign answer");
	out->ino = m->idiag_inode;
	out->sport = ntohs(m->id.idiag_sport);
	out->rqueue = m->idiag_rqueue;
	out->wqueue = m->idiag_wqueue;
	while (at + sizeof(struct nlattr) <= len) {
		const struct nlattr *a = (const void *)((const char *)buf + at);

		if (a->nla_len < NLA_HDRLEN || a->nla_len > len - at)
			return cr_err("udp_diag: a damaged attribute");
		if (a->nla_type == INET_DIAG_SHUTDOWN) {
			if (a->nla_len - NLA_HDRLEN < 1)
				return cr_err("udp_diag: a short shutdown attribute");
			out->has_shutdown = true;
			out->shutdown = *((const uint8_t *)a + NLA_HDRLEN);
		}
		at += NLA_ALIGN(a->nla_len);
	}
	return 0;
}

/* Hex as /proc/net/igmp prints an address: each 32-bit word as the host reads it
 * (igmp), or each byte in order (igmp6). */
static int hex_addr(const char *hex, size_t len, bool words, uint8_t *out)
{
	char b[9] = "";

	if (strspn(hex, "0123456789abcdefABCDEF") < len * 2)
		return -1;
	for (size_t i = 0; words && i < len; i += 4) {
		uint32_t w;

		memcpy(b, hex + i * 2, 8);
		w = strtoul(b, NULL, 16);
		memcpy(out + i, &w, 4);
	}
	for (size_t i = 0; !words && i < len; i++) {
		b[0] = hex[i * 2];
		b[1] = hex[i * 2 + 1];
		b[2] = 0;
		out[i] = strtoul(b, NULL, 16);
	}
	return 0;
}

size_t udp_igmp_groups(const char *text, int family, struct udp_group *out, size_t max)
{
	const char *line = text;
	size_t n = 0;
	int idx = 0;

	for (; line && *line && n < max; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		char name[IFNAMSIZ + 8], hex[40];
		int i;

		if (family == AF_INET && line[0] == '\t') {
			if (sscanf(line, " %8s", hex) == 1 && idx > 0 &&
			    !hex_addr(hex, 4, true, out[n].addr)) {
				out[n].ifindex = idx;
				out[n++].len = 4;
			}
			continue;
		}
		if (family == AF_INET && sscanf(line, "%d %20s :", &i, name) == 2) {
			idx = i;
			continue;
		}
		if (family == AF_INET6 && sscanf(line, "%d %20s %32s", &i, name, hex) == 3 &&
		    i > 0 && strlen(hex) == 32 && !hex_addr(hex, 16, false, out[n].addr)) {
			out[n].ifindex = i;
			out[n++].len = 16;
		}
	}
	return n;
}

static uint32_t sum16(const void *p, size_t len, uint32_t s)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (b[i] << 8) | b[i + 1];
	if (len & 1)
		s += b[len - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return ~s & 0xffff;
}

size_t udp_make_packet(const struct udp_pkt *p, uint8_t *out, size_t size)
{
	size_t ip = p->family == AF_INET ? 20 : 40, ulen = 8 + p->len;
	uint8_t *u = out + ip;
	uint32_t s = 0;
	uint16_t c;

	if (ip + ulen > size || ulen > 0xffff)
		return 0;
	memset(out, 0, ip + 8);
	if (p->family == AF_INET) {
		struct iphdr *h = (void *)out;

		h->version = 4;
		h->ihl = 5;
		h->tot_len = htons(ip + ulen);
		h->ttl = 64;
		h->protocol = p->protocol;
		memcpy(&h->saddr, p->src, 4);
		memcpy(&h->daddr, p->dst, 4);
	} else {
		struct ip6_hdr *h = (void *)out;

		h->ip6_vfc = 6 << 4;
		h->ip6_plen = htons(ulen);
		h->ip6_nxt = p->protocol;
		h->ip6_hlim = 64;
		memcpy(&h->ip6_src, p->src, 16);
		memcpy(&h->ip6_dst, p->dst, 16);
	}
	u[0] = p->sport >> 8;
	u[1] = p->sport;
	u[2] = p->dport >> 8;
	u[3] = p->dport;
	/* UDP-lite: the length field is the checksum's coverage, 0 for all of it. */
	u[4] = p->protocol == IPPROTO_UDPLITE ? 0 : ulen >> 8;
	u[5] = p->protocol == IPPROTO_UDPLITE ? 0 : ulen;
	memcpy(u + 8, p->data, p->len);
	s = sum16(p->src, p->family == AF_INET ? 4 : 16, s);
	s = sum16(p->dst, p->family == AF_INET ? 4 : 16, s);
	s += p->protocol + ulen;
	c = fold(sum16(u, ulen, s));
	if (!c)
		c = 0xffff;
	u[6] = c >> 8;
	u[7] = c;
	return ip + ulen;
}

static bool len_ok(uint32_t family, const ProtobufCBinaryData *a)
{
	return a->len == (family == AF_INET ? 4u : 16u);
}

/* A datagram's source: of the socket's family, or an IPv4 one on an IPv6 socket. */
static bool from_ok(uint32_t family, const UdpDatagram *d)
{
	return len_ok(family, &d->from) || (family == AF_INET6 && d->from.len == 4);
}

static int check_members(const FileEntry *e)
{
	const UdpSocket *u = e->udp;

	if (u->n_memberships > MEMBERS_MAX)
		return cr_err("image: UDP socket file %u has %zu memberships", e->id,
			      u->n_memberships);
	for (size_t i = 0; i < u->n_memberships; i++) {
		const UdpMembership *m = u->memberships[i];
		size_t n = strnlen(m->ifname, IFNAMSIZ);

		if (!len_ok(u->family, &m->group) || !m->ifindex || !n || n >= IFNAMSIZ ||
		    strchr(m->ifname, '/') || m->n_sources > SOURCES_MAX ||
		    (m->include && !m->n_sources))
			return cr_err("image: UDP socket file %u has a bad membership", e->id);
		for (size_t j = 0; j < m->n_sources; j++)
			if (!len_ok(u->family, &m->sources[j]))
				return cr_err("image: UDP socket file %u has a bad membership",
					      e->id);
	}
	return 0;
}

static int check_queue(const FileEntry *e)
{
	const UdpSocket *u = e->udp;
	uint64_t total = 0;

	if (u->n_queue > QUEUE_MSGS_MAX || (u->n_queue && !u->port))
		return cr_err("image: UDP socket file %u queues %zu datagrams", e->id, u->n_queue);
	for (size_t i = 0; i < u->n_queue; i++) {
		const UdpDatagram *d = u->queue[i];

		total += d->data.len;
		if (d->data.len > DGRAM_MAX - 48 || !from_ok(u->family, d) || d->from_port > 65535 ||
		    (d->has_to && d->to.len != d->from.len))
			return cr_err("image: UDP socket file %u has a bad queued datagram", e->id);
	}
	if (total > QUEUE_BYTES_MAX)
		return cr_err("image: UDP socket file %u queues %llu bytes", e->id,
			      (unsigned long long)total);
	return 0;
}

int udp_check_entry(const FileEntry *e)
{
	const UdpSocket *u = e->udp;

	if (!u || (u->family != AF_INET && u->family != AF_INET6) ||
	    (u->protocol != IPPROTO_UDP && u->protocol != IPPROTO_UDPLITE))
		return cr_err("image: UDP socket file %u is invalid", e->id);
	if ((u->has_addr && !len_ok(u->family, &u->addr)) ||
	    (u->has_peer && !len_ok(u->family, &u->peer)) || u->port > 65535 ||
	    u->peer_port > 65535 || (u->has_peer && !u->peer_port) ||
	    (u->addr_by_connect && !u->has_peer))
		return cr_err("image: UDP socket file %u has a bad address", e->id);
	if (u->has_shutdown && u->shutdown & ~3u)
		return cr_err("image: UDP socket file %u has shutdown bits 0x%x", e->id,
			      u->shutdown);
	if (check_members(e) || check_queue(e))
		return -1;
	if (sk_int_opts_check(u, udp_opts, CR_ARRAY_SIZE(udp_opts)))
		return -1;
	return sk_opts_check(u->opts);
}

/* ---- dump ---- */

static bool udp_match(const struct fd_probe *pr)
{
	int type, protocol;

	if (!file_sock_is(pr, AF_INET, &type, &protocol) &&
	    !file_sock_is(pr, AF_INET6, &type, &protocol))
		return false;
	return type == SOCK_DGRAM && (protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE);
}

struct udp_probe {
	const struct fd_probe *pr;
	int fd;
	char what[128];			/* "UDP socket 127.0.0.1:5353" */
	struct udp_diag d;
	bool found;
};

static int udp_refuse(const struct udp_probe *s, const char *why)
{
	return sk_refuse(s->pr, s->what, why);
}

static int udp_found(const void *msg, size_t len, void *arg)
{
	struct udp_probe *s = arg;
	struct udp_diag d;

	if (udp_diag_parse(msg, len, &d))
		return -1;
	if (d.ino == s->pr->st->st_ino) {
		s->d = d;
		s->found = true;
	}
	return 0;
}

/* udp_diag's sockets of one family and protocol bound to `port` (the kernel filters
 * them, by bytecode): cb gets each answer. */
static int udp_diag_port(int family, uint32_t protocol, uint16_t port,
			 int (*cb)(const void *msg, size_t len, void *arg), void *arg)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
		struct nlattr a;
		struct inet_diag_bc_op ops[2];
	} req = {
		.h = { sizeof(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0 },
		.r = { .sdiag_family = family, .sdiag_protocol = protocol, .idiag_states = ~0u },
		.a = { NLA_HDRLEN + sizeof(req.ops), INET_DIAG_REQ_BYTECODE },
		/* the source port is ops[1]'s: on past the end (yes), else 4 further (no) */
		.ops = { { INET_DIAG_BC_S_EQ, sizeof(req.ops), sizeof(req.ops) + 4 },
			 { 0, 0, port } },
	};

	return sk_diag_dump(&req, sizeof(req), cb, arg);
}

/* Its shutdown state and queues (udp_diag; a socket bound to no port is in no table). */
static int dump_diag(struct udp_probe *s, const UdpSocket *u)
{
	if (udp_diag_port(u->family, u->protocol, u->port, udp_found, s))
		return -1;
	if (!s->found)
		return udp_refuse(s, "udp_diag does not show it");
	return 0;
}

/* Was the local address chosen by connect (the route's source to the peer)? */
static bool addr_from_route(const UdpSocket *u, const struct sk_inet_addr *local)
{
	struct sockaddr_storage ss;
	struct sk_inet_addr via;
	socklen_t l;
	int t = socket(u->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool same = false;

	if (t < 0)
		return false;
	if (!inet_addr_from_image(u->family, &u->peer, u->peer_port, NULL, &ss, &l) &&
	    !connect(t, (struct sockaddr *)&ss, l) && !sk_inet_name(t, false, u->family, &via))
		same = via.len == local->len && !memcmp(via.addr, local->addr, via.len);
	close(t);
	cr_err_reset();
	return same;
}

static int dump_names(struct udp_probe *s, UdpSocket *u)
{
	struct sk_inet_addr local, peer;
	char a[80];

	if (sk_inet_name(s->fd, false, u->family, &local) ||
	    sk_inet_name(s->fd, true, u->family, &peer))
		return cr_perr("process %d: fd %d: cannot read its addresses", s->pr->p->pid,
			       s->pr->fd);
	inet_addr_str(u->family, local.addr, local.port, a, sizeof(a));
	snprintf(s->what, sizeof(s->what), "%s socket %s",
		 u->protocol == IPPROTO_UDP ? "UDP" : "UDP-lite", a);
	if (local.scope_id || peer.scope_id)
		return udp_refuse(s, "it uses a link-local address with a scope; not supported");
	if (!inet_addr_is_any(u->family, local.addr) &&
	    sk_inet_keep(&local, &u->addr, &u->has_addr))
		return -1;
	if (local.port) {
		u->has_port = 1;
		u->port = local.port;
	}
	if (peer.set) {
		if (sk_inet_keep(&peer, &u->peer, &u->has_peer))
			return -1;
		u->has_peer_port = 1;
		u->peer_port = peer.port;
		if (u->has_addr && addr_from_route(u, &local))
			u->has_addr_by_connect = u->addr_by_connect = 1;
	}
	return 0;
}

/* The socket's filter for one group on one interface: 1 if it is not a member. */
static int group_filter(int fd, const UdpSocket *u, const struct udp_group *g,
			UdpMembership *m)
{
	union {
		struct group_filter gf;
		uint8_t b[GROUP_FILTER_SIZE(SOURCES_MAX)];
	} f;
	socklen_t l = sizeof(f);

	memset(&f, 0, sizeof(f));
	f.gf.gf_interface = g->ifindex;
	f.gf.gf_numsrc = SOURCES_MAX;
	f.gf.gf_group.ss_family = u->family;
	if (u->family == AF_INET)
		memcpy(&((struct sockaddr_in *)&f.gf.gf_group)->sin_addr, g->addr, 4);
	else
		memcpy(&((struct sockaddr_in6 *)&f.gf.gf_group)->sin6_addr, g->addr, 16);
	if (getsockopt(fd, u->family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6, MCAST_MSFILTER, &f,
		       &l))
		return errno == EADDRNOTAVAIL || errno == EINVAL ? 1 : -1;
	if (f.gf.gf_numsrc > SOURCES_MAX)
		return cr_err("more than %d sources in its filter", SOURCES_MAX);
	m->include = f.gf.gf_fmode == MCAST_INCLUDE;
	m->sources = calloc(f.gf.gf_numsrc + 1, sizeof(*m->sources));
	if (!m->sources)
		return cr_err("out of memory");
	for (uint32_t i = 0; i < f.gf.gf_numsrc; i++) {
		struct sk_inet_addr a = { .len = g->len };
		const struct sockaddr_storage *ss = &f.gf.gf_slist[i];

		memcpy(a.addr, u->family == AF_INET ? (void *)&((struct sockaddr_in *)ss)->sin_addr :
			       (void *)&((struct sockaddr_in6 *)ss)->sin6_addr, g->len);
		if (sk_inet_keep(&a, &m->sources[m->n_sources++], &(protobuf_c_boolean){ 0 }))
			return -1;
	}
	return 0;
}

static int add_member(UdpSocket *u, const struct udp_group *g, UdpMembership **out)
{
	UdpMembership *m = calloc(1, sizeof(*m));
	char name[IF_NAMESIZE];
	struct sk_inet_addr a = { .len = g->len };

	if (!m || !if_indextoname(g->ifindex, name)) {
		free(m);
		return cr_perr("interface %u", g->ifindex);
	}
	udp_membership__init(m);
	u->memberships[u->n_memberships++] = m;
	m->ifindex = g->ifindex;
	m->ifname = strdup(name);
	memcpy(a.addr, g->addr, g->len);
	if (!m->ifname || sk_inet_keep(&a, &m->group, &(protobuf_c_boolean){ 0 }))
		return cr_err("out of memory");
	*out = m;
	return 0;
}

/* Every group some socket of the host joined (/proc/net/igmp, igmp6), asked of this
 * socket: the kernel has no list of one socket's memberships to give. */
static int dump_members(struct udp_probe *s, UdpSocket *u)
{
	struct udp_group *g = calloc(MEMBERS_MAX * 4, sizeof(*g));
	char *txt = proc_read_file(u->family == AF_INET ? "/proc/net/igmp" : "/proc/net/igmp6",
				   NULL);
	size_t n;
	int rc = 0;

	u->memberships = calloc(MEMBERS_MAX + 1, sizeof(*u->memberships));
	if (!g || !txt || !u->memberships) {
		free(g);
		free(txt);
		return txt ? cr_err("out of memory") : -1;
	}
	n = udp_igmp_groups(txt, u->family, g, MEMBERS_MAX * 4);
	for (size_t i = 0; i < n && !rc; i++) {
		UdpMembership probe = UDP_MEMBERSHIP__INIT, *m = NULL;

		rc = group_filter(s->fd, u, &g[i], &probe);
		if (rc)
			rc = rc > 0 ? 0 : udp_refuse(s, "cannot read one of its multicast filters");
		else if (u->n_memberships >= MEMBERS_MAX)
			rc = udp_refuse(s, "it is in more multicast groups than cryo keeps");
		else if (!(rc = add_member(u, &g[i], &m))) {
			m->include = probe.include;
			m->sources = probe.sources;
			m->n_sources = probe.n_sources;
			probe.sources = NULL;
		}
		free(probe.sources);
	}
	free(g);
	free(txt);
	return rc;
}

static int dump_opts(struct udp_probe *s, UdpSocket *u)
{
	int encap = 0;

	if (sk_opts_dump_for(s->fd, u->family, s->what, &u->opts) ||
	    sk_int_opts_dump(s->fd, u->family, udp_opts, CR_ARRAY_SIZE(udp_opts), u, s->what))
		return -1;
	if (!sk_int(s->fd, IPPROTO_UDP, UDP_ENCAP, &encap) && encap)
		return udp_refuse(s, "it is an encapsulation socket (UDP_ENCAP); not supported");
	if (u->cork && s->d.wqueue)
		return udp_refuse(s, "a corked datagram (UDP_CORK) is being built on it; cryo "
				  "cannot take it over");
	return 0;
}

/* One queued datagram into the image: its source (and destination, with pktinfo). */
static int keep_dgram(struct udp_probe *s, UdpSocket *u, const uint8_t *buf, size_t n,
		      const struct sockaddr_storage *from, const struct msghdr *m, size_t *cap)
{
	UdpDatagram *d = calloc(1, sizeof(*d));
	struct sk_inet_addr a = { 0 };

	if (!d || cr_grow(&u->queue, cap, u->n_queue + 1, sizeof(*u->queue), 16)) {
		free(d);
		return cr_err("out of memory");
	}
	udp_datagram__init(d);
	u->queue[u->n_queue++] = d;
	if (from->ss_family == AF_INET) {
		a.len = 4;
		memcpy(a.addr, &((struct sockaddr_in *)from)->sin_addr, 4);
		d->from_port = ntohs(((struct sockaddr_in *)from)->sin_port);
	} else {
		const struct sockaddr_in6 *f6 = (const void *)from;

		a.len = 16;
		memcpy(a.addr, &f6->sin6_addr, 16);
		d->from_port = ntohs(f6->sin6_port);
		if (f6->sin6_scope_id)
			return udp_refuse(s, "a datagram queued on it comes from a link-local "
					  "address with a scope; cryo cannot send it again");
		if (IN6_IS_ADDR_V4MAPPED(&f6->sin6_addr)) {
			a.len = 4;	/* it came over IPv4 */
			memmove(a.addr, a.addr + 12, 4);
		}
	}
	if (sk_inet_keep(&a, &d->from, &(protobuf_c_boolean){ 0 }))
		return -1;
	d->data.data = malloc(n + 1);
	if (!d->data.data)
		return cr_err("out of memory");
	memcpy(d->data.data, buf, n);
	d->data.len = n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
		struct sk_inet_addr to = { .len = a.len };

		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && a.len == 4)
			memcpy(to.addr, &((struct in_pktinfo *)CMSG_DATA(c))->ipi_addr, 4);
		else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO)
			memcpy(to.addr, (uint8_t *)&((struct in6_pktinfo *)CMSG_DATA(c))->ipi6_addr +
			       (a.len == 4 ? 12 : 0), a.len);
		else
			continue;
		if (sk_inet_keep(&to, &d->to, &d->has_to))
			return -1;
	}
	return 0;
}

/* Each datagram with MSG_PEEK, SO_PEEK_OFF moving on by itself. */
static int walk_queue(struct udp_probe *s, UdpSocket *u)
{
	uint8_t *buf = malloc(DGRAM_MAX + 1);
	size_t cap = 0, total = 0;
	int rc = 0;

	if (!buf)
		return cr_err("out of memory");
	for (;;) {
		union {
			char b[512];
			struct cmsghdr align;
		} ctl;
		struct sockaddr_storage from = { 0 };
		struct iovec iov = { buf, DGRAM_MAX + 1 };
		struct msghdr m = { &from, sizeof(from), &iov, 1, ctl.b, sizeof(ctl.b), 0 };
		ssize_t n = recvmsg(s->fd, &m, MSG_PEEK | MSG_DONTWAIT);

		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			rc = cr_perr("%s: cannot read its queue", s->what);
			break;
		}
		total += n;
		if (m.msg_flags & MSG_TRUNC || total > QUEUE_BYTES_MAX || u->n_queue >= QUEUE_MSGS_MAX) {
			rc = udp_refuse(s, "its queue holds more than cryo keeps in an image");
			break;
		}
		rc = keep_dgram(s, u, buf, n, &from, &m, &cap);
		if (rc)
			break;
	}
	free(buf);
	return rc;
}

static int dump_queue(struct udp_probe *s, UdpSocket *u)
{
	int old = -1, zero = 0, rc;
	char c;

	if (!s->d.rqueue)
		return 0;
	if (u->gro)
		return udp_refuse(s, "datagrams are queued on it with UDP_GRO set; cryo would not "
				  "send them again as the segments they were");
	if (u->opts && u->opts->reuseport)
		return udp_refuse(s, "datagrams are queued on it and it shares its port "
				  "(SO_REUSEPORT); cryo could not send them to it alone");
	if (sk_int(s->fd, SOL_SOCKET, SO_PEEK_OFF, &old))
		return cr_perr("%s: cannot read SO_PEEK_OFF", s->what);
	if (old == -1 && recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN)
		return 0;	/* read meanwhile: nothing touched */
	if (setsockopt(s->fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)))
		return cr_perr("%s: cannot set SO_PEEK_OFF", s->what);
	rc = walk_queue(s, u);
	/* The copy shares the socket: its peek offset goes back as it was. */
	if (setsockopt(s->fd, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old)))
		return cr_perr("%s: cannot put SO_PEEK_OFF back", s->what);
	return rc;
}

static int udp_dump(const struct fd_probe *pr, FileEntry *e)
{
	UdpSocket *u = calloc(1, sizeof(*u));
	struct udp_probe *s = calloc(1, sizeof(*s));
	uint32_t type;
	int rc = -1;

	if (!u || !s) {
		free(u);
		free(s);
		return cr_err("out of memory");
	}
	udp_socket__init(u);
	e->udp = u;
	e->kind = FILE_KIND__FILE_UDP;
	e->flags = pr->fi->flags & KEEP_FLAGS;
	s->pr = pr;
	s->fd = file_fd_dup(pr->p->pid, pr->fd);
	if (s->fd < 0)
		goto out;
	if (sk_ids(s->fd, &u->family, &type, &u->protocol)) {
		cr_perr("process %d: fd %d: cannot read its kind", pr->p->pid, pr->fd);
		goto out;
	}
	if (dump_names(s, u) || (u->has_port && dump_diag(s, u)) || dump_opts(s, u) ||
	    dump_members(s, u) || sk_dump_last(pr, s->fd, s->what, NULL, NULL) ||
	    dump_queue(s, u))
		goto out;
	if (s->d.has_shutdown && s->d.shutdown) {
		u->has_shutdown = 1;
		u->shutdown = s->d.shutdown;
	}
	rc = 0;
out:
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	return rc;
}

static void free_bytes_list(ProtobufCBinaryData *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(b[i].data);
	free(b);
}

static void udp_free(FileEntry *e)
{
	UdpSocket *u = e->udp;

	if (!u)
		return;
	for (size_t i = 0; i < u->n_memberships; i++) {
		free(u->memberships[i]->ifname);
		free(u->memberships[i]->group.data);
		free_bytes_list(u->memberships[i]->sources, u->memberships[i]->n_sources);
		free(u->memberships[i]);
	}
	for (size_t i = 0; i < u->n_queue; i++) {
		free(u->queue[i]->data.data);
		free(u->queue[i]->from.data);
		free(u->queue[i]->to.data);
		free(u->queue[i]);
	}
	free(u->memberships);
	free(u->queue);
	free(u->addr.data);
	free(u->peer.data);
	sk_opts_free(u->opts);
	free(u);
}

/* ---- restore ---- */

static int udp_check(const FileEntry *e)
{
	const UdpSocket *u = e->udp;
	char what[48];

	if (udp_check_entry(e))
		return -1;
	snprintf(what, sizeof(what), "UDP socket file %u", e->id);
	if (u->has_addr && !u->addr_by_connect && !sk_binds_anywhere(u->opts) &&
	    inet_addr_local_check(u->family, u->addr.data, u->port, what))
		return -1;
	for (size_t i = 0; i < u->n_memberships; i++) {
		const UdpMembership *m = u->memberships[i];

		if (if_nametoindex(m->ifname) != m->ifindex)
			return cr_err("%s is in a multicast group on interface %s (index %u), which "
				      "this host does not have", what, m->ifname, m->ifindex);
	}
	return 0;
}

static int join(int fd, const UdpSocket *u, const UdpMembership *m, int opt, const void *src)
{
	struct group_source_req r = { .gsr_interface = m->ifindex };
	int level = u->family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
	size_t off = u->family == AF_INET ? offsetof(struct sockaddr_in, sin_addr) :
					    offsetof(struct sockaddr_in6, sin6_addr);

	r.gsr_group.ss_family = r.gsr_source.ss_family = u->family;
	memcpy((char *)&r.gsr_group + off, m->group.data, m->group.len);
	if (src)
		memcpy((char *)&r.gsr_source + off, src, m->group.len);
	return setsockopt(fd, level, opt, &r, src ? sizeof(r) : sizeof(struct group_req));
}

static int restore_members(int fd, const UdpSocket *u, const char *what)
{
	for (size_t i = 0; i < u->n_memberships; i++) {
		const UdpMembership *m = u->memberships[i];
		bool fail = false;

		if (!m->include)
			fail = join(fd, u, m, MCAST_JOIN_GROUP, NULL);
		for (size_t j = 0; j < m->n_sources && !fail; j++)
			fail = join(fd, u, m, m->include ? MCAST_JOIN_SOURCE_GROUP :
						 MCAST_BLOCK_SOURCE, m->sources[j].data);
		if (fail)
			return cr_perr("%s: cannot join its multicast group on %s", what, m->ifname);
	}
	return 0;
}

/* Where queued datagrams go: where each was sent if known, else the address bound,
 * else loopback (the socket takes them on every address). */
static void requeue_dst(const UdpSocket *u, const UdpDatagram *d, uint8_t *dst)
{
	static const uint8_t lo4[4] = { 127, 0, 0, 1 }, lo6[16] = { [15] = 1 };

	if (d->has_to) {
		memcpy(dst, d->to.data, d->to.len);
		return;
	}
	if (u->has_addr && !u->addr_by_connect && u->addr.len == d->from.len) {
		memcpy(dst, u->addr.data, u->addr.len);
		return;
	}
	if (u->has_addr && u->addr.len == 16 && d->from.len == 4 &&
	    IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)u->addr.data)) {
		memcpy(dst, u->addr.data + 12, 4);
		return;
	}
	memcpy(dst, d->from.len == 4 ? lo4 : lo6, d->from.len);
}

static int send_one(int raw[2], const UdpSocket *u, const UdpDatagram *d, uint8_t *pkt)
{
	int v4 = d->from.len == 4;
	struct udp_pkt p = { .family = v4 ? AF_INET : AF_INET6, .protocol = u->protocol,
			     .sport = d->from_port, .dport = u->port, .data = d->data.data,
			     .len = d->data.len };
	struct sockaddr_storage to = { 0 };
	ProtobufCBinaryData dst = { d->from.len, p.dst };
	socklen_t l;
	size_t n;

	memcpy(p.src, d->from.data, d->from.len);
	requeue_dst(u, d, p.dst);
	n = udp_make_packet(&p, pkt, DGRAM_MAX + 64);
	if (!n || inet_addr_from_image(p.family, &dst, 0, NULL, &to, &l))
		return -1;
	if (raw[!v4] < 0)
		raw[!v4] = socket(p.family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (raw[!v4] < 0)
		return -1;
	return sendto(raw[!v4], pkt, n, 0, (struct sockaddr *)&to, l) == (ssize_t)n ? 0 : -1;
}

struct port_users {
	uint16_t port;
	int n;
};

static int port_user(const void *msg, size_t len, void *arg)
{
	struct port_users *p = arg;
	struct udp_diag d;

	if (udp_diag_parse(msg, len, &d))
		return -1;
	p->n += d.sport == p->port;
	return 0;
}

/* Sockets of the protocol bound to the port, in both families (an IPv6 socket may take
 * IPv4 datagrams): sent to the port, a datagram could go to another than ours. */
static int port_shared(const UdpSocket *u, const char *what)
{
	struct port_users p = { u->port, 0 };

	if (udp_diag_port(AF_INET, u->protocol, u->port, port_user, &p) ||
	    udp_diag_port(AF_INET6, u->protocol, u->port, port_user, &p))
		return -1;
	if (p.n > 1)
		return cr_err("%s: another socket shares its port %u; cryo could not send its "
			      "queued datagrams to it alone", what, u->port);
	return 0;
}

/* Wait until the socket's queue grows past `before` (bytes with their overhead). */
static int wait_queued(int fd, long before)
{
	for (int ms = 0; ms < REQUEUE_WAIT_MS; ms++) {
		if (sk_rqueue(fd) > before)
			return 0;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	return -1;
}

/* Each queued datagram, sent again from its source to the socket, one at a time so
 * that they queue in order: loopback delivers each at once, but not always before
 * sendto returns. Peeking is no way to count them: a peek marks an empty datagram,
 * which later peeks at an offset then pass over. */
static int requeue(int fd, const UdpSocket *u, const char *what)
{
	uint8_t *pkt = malloc(DGRAM_MAX + 64);
	int raw[2] = { -1, -1 }, rc = 0;

	if (!pkt)
		return cr_err("out of memory");
	rc = port_shared(u, what);
	for (size_t i = 0; i < u->n_queue && !rc; i++) {
		long before = sk_rqueue(fd);

		if (send_one(raw, u, u->queue[i], pkt))
			rc = cr_perr("%s: cannot send its queued datagram %zu again", what, i + 1);
		else if (wait_queued(fd, before))
			rc = cr_err("%s: its queued datagram %zu did not come back", what, i + 1);
	}
	for (int i = 0; i < 2; i++)
		if (raw[i] >= 0)
			close(raw[i]);
	free(pkt);
	return rc;
}

static int udp_open(struct restore_ctx *ctx, const FileEntry *e)
{
	const UdpSocket *u = e->udp;
	static const ProtobufCBinaryData none = { 0, NULL };
	char what[48];
	int fd;

	snprintf(what, sizeof(what), "UDP socket file %u", e->id);
	fd = socket(u->family, SOCK_DGRAM | SOCK_CLOEXEC, u->protocol);
	if (fd < 0)
		return cr_perr("%s: cannot make it", what);
	if (sk_opts_restore_for(fd, u->family, u->opts, ctx->trust.limited, what) ||
	    sk_int_opts_restore(fd, u->family, udp_opts, CR_ARRAY_SIZE(udp_opts), u, what))
		goto fail;
	if ((u->has_addr || u->has_port) &&
	    sk_inet_bind(fd, u->family, u->addr_by_connect ? &none : &u->addr, u->port, false, what))
		goto fail;
	if (u->n_queue && requeue(fd, u, what))
		goto fail;
	if (u->has_peer && sk_inet_bind(fd, u->family, &u->peer, u->peer_port, true, what))
		goto fail;
	if (restore_members(fd, u, what))
		goto fail;
	if (u->shutdown && shutdown(fd, u->shutdown - 1) && errno != ENOTCONN) {
		cr_perr("%s: cannot shut it down", what);
		goto fail;
	}
	return sk_open_done(fd, e->flags);
fail:
	close(fd);
	return -1;
}

static bool udp_handles(FileKind k)
{
	return k == FILE_KIND__FILE_UDP;
}

const struct fd_kind udp_kind = {
	.name = "a UDP socket",
	.handles = udp_handles,
	.match = udp_match,
	.dump = udp_dump,
	.check = udp_check,
	.open = udp_open,
	.free = udp_free,
};
