/* UDP and UDP-lite sockets on loopback, with a peer outside the tree:
 *  - b4: bound to 127.0.0.1, SO_BROADCAST, IP_TOS, IP_MULTICAST_TTL/LOOP, SO_RCVBUF,
 *    IP_PKTINFO, three datagrams queued (100 bytes and an empty one from the peer's
 *    127.0.0.1 socket, 1400 bytes from its 127.0.0.2 socket);
 *  - c6: bound to ::1 and connected to the peer's ::1 socket, one datagram queued;
 *  - dual: an IPv6 socket bound to :: that is not v6-only, a datagram from IPv4 queued;
 *  - lite: UDP-lite on 127.0.0.1 with UDPLITE_SEND_CSCOV and _RECV_CSCOV, a datagram
 *    from the peer's UDP-lite socket queued;
 *  - mc: bound to 0.0.0.0, in two multicast groups of this run's own on lo, one of
 *    them for a single source (MCAST_JOIN_SOURCE_GROUP);
 *  - shut_rd and shut_wr: connected, shut down one way each;
 *  - byconn: never bound, connected (connect chose its address and port);
 *  - unbound: never bound, O_NONBLOCK, UDP_SEGMENT set.
 * After restore the program checks from inside addresses, peers, options, memberships
 * and shutdown, reads every queued datagram (bytes, source, destination), then each
 * socket with a peer sends it a datagram the peer echoes back. With an argument, a
 * state the dump must refuse: "corked" (a datagram being built under UDP_CORK). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tlib.h"

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif
#define SOL_UDPLITE 136
#define UDPLITE_SEND_CSCOV 10
#define UDPLITE_RECV_CSCOV 11
#define TOS 0x10
#define RCVBUF 300000
#define SEND_CSCOV 20
#define RECV_CSCOV 12
#define SEGMENT 1000

static int b4, c6, dual, lite, mc, shut_rd, shut_wr, byconn, unbound;
static struct sockaddr_storage a_b4, a_c6, a_dual, a_lite, a_shut, a_byconn;
static struct sockaddr_storage p4, p6, plite;	/* the peer's */
static struct in_addr grp_a, grp_b, src_b;

static int sock(int family, int proto)
{
	int fd = socket(family, SOCK_DGRAM, proto);

	TL_CHECK(fd >= 0, "socket: %s", strerror(errno));
	return fd;
}

static struct sockaddr_storage addr(int family, const char *ip, int port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (void *)&ss;
	struct sockaddr_in6 *s6 = (void *)&ss;

	ss.ss_family = family;
	if (family == AF_INET) {
		s4->sin_port = htons(port);
		inet_pton(AF_INET, ip, &s4->sin_addr);
	} else {
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
	}
	return ss;
}

static socklen_t len_of(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static struct sockaddr_storage name_of(int fd)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t l = sizeof(ss);

	TL_CHECK(!getsockname(fd, (struct sockaddr *)&ss, &l), "getsockname: %s", strerror(errno));
	return ss;
}

/* Bound to ip with a port the kernel picks: its address then. */
static struct sockaddr_storage bound(int fd, int family, const char *ip)
{
	struct sockaddr_storage ss = addr(family, ip, 0);

	TL_CHECK(!bind(fd, (struct sockaddr *)&ss, len_of(&ss)), "bind %s: %s", ip, strerror(errno));
	return name_of(fd);
}

static bool same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	return a->ss_family == b->ss_family && !memcmp(a, b, len_of(a));
}

static bool named(int fd, const struct sockaddr_storage *a)
{
	struct sockaddr_storage n = name_of(fd);

	return same(&n, a);
}

static void send_to(int fd, const struct sockaddr_storage *to, const void *buf, size_t len)
{
	TL_CHECK(sendto(fd, buf, len, 0, (const struct sockaddr *)to, len_of(to)) == (ssize_t)len,
		 "sendto: %s", strerror(errno));
}

static void connect_to(int fd, const struct sockaddr_storage *to)
{
	TL_CHECK(!connect(fd, (const struct sockaddr *)to, len_of(to)), "connect: %s",
		 strerror(errno));
}

/* The source of the datagram at the head of the queue, which stays. */
static struct sockaddr_storage peek_source(int fd)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t l = sizeof(ss);
	char c;

	TL_CHECK(recvfrom(fd, &c, 1, MSG_PEEK, (struct sockaddr *)&ss, &l) >= 0,
		 "peek: %s", strerror(errno));
	return ss;
}

static int opt(int fd, int level, int o)
{
	int v = -7;
	socklen_t l = sizeof(v);

	TL_CHECK(!getsockopt(fd, level, o, &v, &l), "getsockopt %d/%d: %s", level, o,
		 strerror(errno));
	return v;
}

static void set(int fd, int level, int o, int v)
{
	TL_CHECK(!setsockopt(fd, level, o, &v, sizeof(v)), "setsockopt %d/%d: %s", level, o,
		 strerror(errno));
}

/* ---- the peer, outside the tree ---- */

static void echo(int fd)
{
	struct sockaddr_storage from;
	socklen_t l = sizeof(from);
	char buf[64];
	ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &l);

	if (n == 4 && !memcmp(buf, "quit", 4))
		_exit(0);
	if (n > 0)
		send_to(fd, &from, buf, n);
}

/* Forked once the tree's sockets exist: it drops its copies of them first. */
static void peer(int up)
{
	static uint8_t big[1400];
	int s4 = sock(AF_INET, 0), s4b = sock(AF_INET, 0), s6 = sock(AF_INET6, 0);
	int sl = sock(AF_INET, IPPROTO_UDPLITE);
	struct pollfd pf[4] = { { s4, POLLIN, 0 }, { s4b, POLLIN, 0 }, { s6, POLLIN, 0 },
				{ sl, POLLIN, 0 } };
	int fds[] = { b4, c6, dual, lite, mc, shut_rd, shut_wr, byconn, unbound };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		close(fds[i]);
	bound(s4, AF_INET, "127.0.0.1");
	bound(s4b, AF_INET, "127.0.0.2");
	bound(s6, AF_INET6, "::1");
	bound(sl, AF_INET, "127.0.0.1");
	tl_fill(big, sizeof(big), 3);
	send_to(s4, &a_b4, "one hundred bytes follow, well almost: the first queued datagram of b4"
		"............................", 100);
	send_to(s4, &a_b4, "", 0);
	send_to(s4b, &a_b4, big, sizeof(big));
	send_to(s6, &a_c6, "to c6", 5);
	send_to(s4, &a_dual, "to dual", 7);
	send_to(sl, &a_lite, "to lite", 7);
	tl_outside_up(up);
	for (;;) {
		TL_CHECK(poll(pf, 4, -1) > 0, "peer: poll");
		for (int i = 0; i < 4; i++)
			if (pf[i].revents & POLLIN)
				echo(pf[i].fd);
	}
}

/* ---- the tree ---- */

static void join(int fd, struct in_addr g, const struct in_addr *src)
{
	struct group_source_req r = { .gsr_interface = 1 };	/* lo */
	struct sockaddr_in *gs = (void *)&r.gsr_group, *ss = (void *)&r.gsr_source;

	gs->sin_family = ss->sin_family = AF_INET;
	gs->sin_addr = g;
	if (src)
		ss->sin_addr = *src;
	TL_CHECK(!setsockopt(fd, IPPROTO_IP, src ? MCAST_JOIN_SOURCE_GROUP : MCAST_JOIN_GROUP, &r,
			     src ? sizeof(r) : sizeof(struct group_req)),
		 "joining a group: %s", strerror(errno));
}

static void setup(void)
{
	int id = getpid() & 0xffff;

	b4 = sock(AF_INET, 0);
	set(b4, SOL_SOCKET, SO_BROADCAST, 1);
	set(b4, IPPROTO_IP, IP_TOS, TOS);
	set(b4, IPPROTO_IP, IP_MULTICAST_TTL, 5);
	set(b4, IPPROTO_IP, IP_MULTICAST_LOOP, 0);
	set(b4, SOL_SOCKET, SO_RCVBUF, RCVBUF / 2);
	set(b4, IPPROTO_IP, IP_PKTINFO, 1);
	a_b4 = bound(b4, AF_INET, "127.0.0.1");
	c6 = sock(AF_INET6, 0);
	a_c6 = bound(c6, AF_INET6, "::1");
	dual = sock(AF_INET6, 0);
	set(dual, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	a_dual = bound(dual, AF_INET6, "::");
	a_dual = addr(AF_INET, "127.0.0.1", ntohs(((struct sockaddr_in6 *)&a_dual)->sin6_port));
	lite = sock(AF_INET, IPPROTO_UDPLITE);
	set(lite, SOL_UDPLITE, UDPLITE_SEND_CSCOV, SEND_CSCOV);
	set(lite, SOL_UDPLITE, UDPLITE_RECV_CSCOV, RECV_CSCOV);
	a_lite = bound(lite, AF_INET, "127.0.0.1");
	mc = sock(AF_INET, 0);
	bound(mc, AF_INET, "0.0.0.0");
	grp_a.s_addr = htonl(0xefc00000u | id);	/* 239.192.x.y */
	grp_b.s_addr = htonl(0xefc10000u | id);
	src_b.s_addr = htonl(0x7f000001u);
	join(mc, grp_a, NULL);
	join(mc, grp_b, &src_b);
	shut_rd = sock(AF_INET, 0);
	shut_wr = sock(AF_INET, 0);
	a_shut = bound(shut_rd, AF_INET, "127.0.0.1");
	byconn = sock(AF_INET, 0);
	unbound = sock(AF_INET, 0);
	set(unbound, IPPROTO_UDP, UDP_SEGMENT, SEGMENT);
	TL_CHECK(!fcntl(unbound, F_SETFL, O_NONBLOCK), "O_NONBLOCK");
	tl_outside(peer);
	p4 = peek_source(b4);
	p6 = peek_source(c6);
	plite = peek_source(lite);
	connect_to(c6, &p6);
	connect_to(shut_rd, &p4);
	connect_to(shut_wr, &p4);
	TL_CHECK(!shutdown(shut_rd, SHUT_RD), "shutdown: %s", strerror(errno));
	TL_CHECK(!shutdown(shut_wr, SHUT_WR), "shutdown: %s", strerror(errno));
	connect_to(byconn, &p4);
	a_byconn = name_of(byconn);
	printf("UDP-PORT %d\n", ntohs(((struct sockaddr_in *)&a_b4)->sin_port));
}

/* One queued datagram: its bytes, its source and, with IP_PKTINFO, where it went. */
static void expect(int fd, const void *data, size_t len, const struct sockaddr_storage *from,
		   const char *what)
{
	static char buf[2048];
	union {
		char b[256];
		struct cmsghdr align;
	} ctl;
	struct sockaddr_storage src = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr m = { &src, sizeof(src), &iov, 1, ctl.b, sizeof(ctl.b), 0 };
	ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT);

	TL_CHECK(n == (ssize_t)len && !memcmp(buf, data, len), "%s: %zd bytes, not %zu: %s", what,
		 n, len, n < 0 ? strerror(errno) : "");
	TL_CHECK(same(&src, from), "%s: from another address", what);
	if (fd != b4)
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo *pi = (void *)CMSG_DATA(c);

			TL_CHECK(pi->ipi_addr.s_addr == htonl(INADDR_LOOPBACK), "%s: sent to %08x",
				 what, ntohl(pi->ipi_addr.s_addr));
			return;
		}
	tl_fail("%s: no IP_PKTINFO", what);
}

static void expect_empty(int fd, const char *what)
{
	char c;

	TL_CHECK(recv(fd, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "%s: more queued", what);
}

/* The peer echoes a datagram back from where it was sent. */
static void ping(int fd, const struct sockaddr_storage *to, const char *what)
{
	struct sockaddr_storage from;
	socklen_t l = sizeof(from);
	char buf[64];
	ssize_t n;

	if (to)
		send_to(fd, to, what, strlen(what));
	else
		TL_CHECK(send(fd, what, strlen(what), 0) == (ssize_t)strlen(what), "%s: send: %s",
			 what, strerror(errno));
	n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &l);
	TL_CHECK(n == (ssize_t)strlen(what) && !memcmp(buf, what, n), "%s: echo of %zd bytes",
		 what, n);
	TL_CHECK(!to || same(&from, to), "%s: the echo came from elsewhere", what);
}

/* The socket's source filter for group g on lo: its mode and sources (-1: not in it). */
static int filter_of(int fd, struct in_addr g, struct in_addr *src, uint32_t *nsrc)
{
	union {
		struct group_filter gf;
		char b[GROUP_FILTER_SIZE(4)];
	} f = { .gf = { .gf_interface = 1, .gf_numsrc = 4 } };
	socklen_t l = sizeof(f);

	((struct sockaddr_in *)&f.gf.gf_group)->sin_family = AF_INET;
	((struct sockaddr_in *)&f.gf.gf_group)->sin_addr = g;
	if (getsockopt(fd, IPPROTO_IP, MCAST_MSFILTER, &f, &l))
		return -1;
	*nsrc = f.gf.gf_numsrc;
	if (*nsrc)
		*src = ((struct sockaddr_in *)&f.gf.gf_slist[0])->sin_addr;
	return f.gf.gf_fmode;
}

static void check_b4_queue(void)
{
	static uint8_t big[1400];
	struct sockaddr_storage p4b;

	expect(b4, "one hundred bytes follow, well almost: the first queued datagram of b4"
	       "............................", 100, &p4, "b4's first datagram");
	expect(b4, "", 0, &p4, "b4's empty datagram");
	tl_fill(big, sizeof(big), 3);
	p4b = peek_source(b4);
	TL_CHECK(((struct sockaddr_in *)&p4b)->sin_addr.s_addr == htonl(0x7f000002),
		 "b4's third datagram comes from %08x",
		 ntohl(((struct sockaddr_in *)&p4b)->sin_addr.s_addr));
	expect(b4, big, sizeof(big), &p4b, "b4's third datagram");
	expect_empty(b4, "b4");
}

static void check_b4(void)
{
	TL_CHECK(named(b4, &a_b4), "b4: bound elsewhere");
	TL_CHECK(opt(b4, SOL_SOCKET, SO_BROADCAST) == 1, "b4: SO_BROADCAST lost");
	TL_CHECK(opt(b4, IPPROTO_IP, IP_TOS) == TOS, "b4: IP_TOS %d", opt(b4, IPPROTO_IP, IP_TOS));
	TL_CHECK(opt(b4, IPPROTO_IP, IP_MULTICAST_TTL) == 5, "b4: IP_MULTICAST_TTL");
	TL_CHECK(opt(b4, IPPROTO_IP, IP_MULTICAST_LOOP) == 0, "b4: IP_MULTICAST_LOOP");
	TL_CHECK(opt(b4, SOL_SOCKET, SO_RCVBUF) == RCVBUF, "b4: SO_RCVBUF %d",
		 opt(b4, SOL_SOCKET, SO_RCVBUF));
	check_b4_queue();
	ping(b4, &p4, "ping b4");
}

static void check_others(void)
{
	struct sockaddr_storage any = addr(AF_INET, "0.0.0.0", 0), n;
	struct sockaddr_storage mapped = addr(AF_INET6, "::ffff:127.0.0.1",
					      ntohs(((struct sockaddr_in *)&p4)->sin_port));
	socklen_t l = sizeof(n);

	TL_CHECK(!getpeername(c6, (struct sockaddr *)&n, &l) && same(&n, &p6), "c6: peer");
	expect(c6, "to c6", 5, &p6, "c6's datagram");
	ping(c6, NULL, "ping c6");
	expect(dual, "to dual", 7, &mapped, "dual's datagram");
	TL_CHECK(opt(dual, IPPROTO_IPV6, IPV6_V6ONLY) == 0, "dual: v6-only");
	TL_CHECK(opt(lite, SOL_UDPLITE, UDPLITE_SEND_CSCOV) == SEND_CSCOV, "lite: send coverage");
	TL_CHECK(opt(lite, SOL_UDPLITE, UDPLITE_RECV_CSCOV) == RECV_CSCOV, "lite: recv coverage");
	TL_CHECK(opt(lite, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_UDPLITE, "lite: protocol");
	expect(lite, "to lite", 7, &plite, "lite's datagram");
	ping(lite, &plite, "ping lite");
	TL_CHECK(send(shut_wr, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "shut_wr: it sends");
	TL_CHECK(poll(&(struct pollfd){ shut_rd, POLLRDHUP, 0 }, 1, 0) == 1,
		 "shut_rd: not shut down for reading");
	TL_CHECK(named(shut_rd, &a_shut), "shut_rd: address");
	TL_CHECK(named(byconn, &a_byconn), "byconn: address");
	ping(byconn, NULL, "ping byconn");
	/* Its address came with connect: disconnecting lets it go, the port stays. */
	any.ss_family = AF_UNSPEC;
	TL_CHECK(!connect(byconn, (struct sockaddr *)&any, sizeof(struct sockaddr_in)), "disconnect");
	n = name_of(byconn);
	TL_CHECK(((struct sockaddr_in *)&n)->sin_addr.s_addr == 0, "byconn: still bound to %08x",
		 ntohl(((struct sockaddr_in *)&n)->sin_addr.s_addr));
	n = name_of(unbound);
	TL_CHECK(((struct sockaddr_in *)&n)->sin_port == 0, "unbound: it has a port");
	TL_CHECK(fcntl(unbound, F_GETFL) & O_NONBLOCK, "unbound: O_NONBLOCK lost");
	TL_CHECK(opt(unbound, IPPROTO_UDP, UDP_SEGMENT) == SEGMENT, "unbound: UDP_SEGMENT");
}

static void check_mc(void)
{
	struct in_addr s;
	uint32_t n;

	TL_CHECK(filter_of(mc, grp_a, &s, &n) == MCAST_EXCLUDE && n == 0, "mc: group a");
	TL_CHECK(filter_of(mc, grp_b, &s, &n) == MCAST_INCLUDE && n == 1 &&
		 s.s_addr == src_b.s_addr, "mc: group b and its source");
}

int main(int argc, char **argv)
{
	const char *bad = argc > 2 ? argv[2] : NULL;
	char big_echo[64];

	tl_init();
	setup();
	if (bad) {
		set(b4, IPPROTO_UDP, UDP_CORK, 1);
		send_to(b4, &p4, "corked", 6);
	}
	tl_ready();
	tl_wait_go();
	if (bad) {
		check_b4_queue();
		set(b4, IPPROTO_UDP, UDP_CORK, 0);	/* sends it: the peer echoes it */
		TL_CHECK(recv(b4, big_echo, sizeof(big_echo), 0) == 6 &&
			 !memcmp(big_echo, "corked", 6), "the corked datagram was not sent");
		send_to(b4, &p4, "quit", 4);
		tl_pass();
	}
	check_b4();
	check_others();
	check_mc();
	send_to(b4, &p4, "quit", 4);
	tl_pass();
}
