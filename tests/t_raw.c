/* Raw and ping sockets on loopback. Ping sockets on 127.0.0.1 and ::1, bound (the
 * kernel picks each one's ICMP id), one of them O_NONBLOCK; a raw IPv4 socket of an
 * experimental protocol (253) bound to an address of 127/8 of this run's own, with
 * IP_TOS, exchanging datagrams with a peer outside the tree; a raw ICMP socket with an
 * ICMP_FILTER; a raw ICMPv6 socket that blocks every type (ICMP6_FILTER) and a raw
 * IPv6 socket with IPV6_CHECKSUM, both on ::1; a raw socket connected to the peer with
 * IP_HDRINCL. After restore each socket is checked from inside (addresses, ICMP ids,
 * options, filters), both ping sockets ping and get their answers, and the peer
 * answers a datagram. Ping sockets need the caller's group in
 * net.ipv4.ping_group_range: if group 0 is not in it the test sets it to "0 0" (and
 * leaves it so: runs of the test may overlap). With an argument, a state the dump must
 * refuse: "queued" (a datagram on the raw socket, not read yet). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tlib.h"

#ifndef ICMP_FILTER
#define ICMP_FILTER 1		/* linux/icmp.h, which clashes with netinet/ip_icmp.h */
#endif
#define PROTO 253		/* for experiments (RFC 3692) */
#define TOS 0x28
#define CSUM_OFF 4
#define FILTER_MASK (~(1u << ICMP_ECHOREPLY))

static int ping4, ping6, raw, icmp, icmp6, raw6, hdr;
static uint16_t id4, id6;
static struct in_addr my_addr, peer_addr, icmp_addr;

static int sock(int family, int type, int proto)
{
	int fd = socket(family, type, proto);

	TL_CHECK(fd >= 0, "socket(%d, %d, %d): %s", family, type, proto, strerror(errno));
	return fd;
}

static struct sockaddr_in sin_of(struct in_addr a, uint16_t port)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = a };

	return s;
}

static void bind4(int fd, struct in_addr a, uint16_t port)
{
	struct sockaddr_in s = sin_of(a, port);

	TL_CHECK(!bind(fd, (struct sockaddr *)&s, sizeof(s)), "bind: %s", strerror(errno));
}

static void allow_ping(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ping_group_range", "r");
	long lo = 1, hi = 0;

	TL_CHECK(f && fscanf(f, "%ld %ld", &lo, &hi) == 2, "ping_group_range unreadable");
	fclose(f);
	if (lo <= 0 && hi >= 0)
		return;
	f = fopen("/proc/sys/net/ipv4/ping_group_range", "w");
	TL_CHECK(f && fprintf(f, "0 0\n") > 0 && !fclose(f), "cannot set ping_group_range");
}

/* An echo request of ping socket fd to loopback; the answer must carry its id. */
static void ping(int fd, int family, uint16_t id, uint16_t seq)
{
	struct icmphdr h = { .type = family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST };
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_in s4 = sin_of((struct in_addr){ htonl(INADDR_LOOPBACK) }, 0);
	char buf[64] = "cryo ping";
	struct icmphdr *r = (void *)buf;
	ssize_t n;

	h.un.echo.sequence = htons(seq);
	memcpy(buf, &h, sizeof(h));
	n = family == AF_INET ? sendto(fd, buf, 32, 0, (struct sockaddr *)&s4, sizeof(s4)) :
				sendto(fd, buf, 32, 0, (struct sockaddr *)&s6, sizeof(s6));
	TL_CHECK(n == 32, "ping %d: sendto: %s", family, strerror(errno));
	do {
		n = recv(fd, buf, sizeof(buf), 0);
	} while (n < 0 && errno == EAGAIN);
	TL_CHECK(n == 32, "ping %d: answer of %zd bytes: %s", family, n, strerror(errno));
	TL_CHECK(r->type == (family == AF_INET ? ICMP_ECHOREPLY : ICMP6_ECHO_REPLY) &&
		 ntohs(r->un.echo.id) == id && ntohs(r->un.echo.sequence) == seq,
		 "ping %d: answer type %u id %u seq %u, not id %u seq %u", family, r->type,
		 ntohs(r->un.echo.id), ntohs(r->un.echo.sequence), id, seq);
}

static uint16_t port_of(int fd)
{
	struct sockaddr_in6 s;
	socklen_t l = sizeof(s);

	TL_CHECK(!getsockname(fd, (struct sockaddr *)&s, &l), "getsockname: %s", strerror(errno));
	return ntohs(s.sin6_port);	/* at the same place in both families */
}

static void send_raw(int fd, struct in_addr to, const char *text)
{
	struct sockaddr_in s = sin_of(to, 0);
	char buf[32] = "";

	strncpy(buf, text, sizeof(buf) - 1);
	TL_CHECK(sendto(fd, buf, sizeof(buf), 0, (struct sockaddr *)&s, sizeof(s)) == sizeof(buf),
		 "raw sendto: %s", strerror(errno));
}

/* A datagram of a raw IPv4 socket comes with its IP header. */
static void recv_raw(int fd, struct in_addr from, const char *text)
{
	char buf[128];
	struct iphdr *ip = (void *)buf;
	ssize_t n = recv(fd, buf, sizeof(buf), 0);

	TL_CHECK(n == 20 + 32, "raw recv of '%s': %zd: %s", text, n, strerror(errno));
	TL_CHECK(ip->saddr == from.s_addr && ip->protocol == PROTO &&
		 !strncmp(buf + 20, text, 32), "raw: got '%.32s' from %08x, not '%s' from %08x",
		 buf + 20, ntohl(ip->saddr), text, ntohl(from.s_addr));
}

static int opt(int fd, int level, int o)
{
	int v = -7;
	socklen_t l = sizeof(v);

	TL_CHECK(!getsockopt(fd, level, o, &v, &l), "getsockopt %d/%d: %s", level, o,
		 strerror(errno));
	return v;
}

/* Where a raw socket is connected: getpeername does not say (it has no port), the
 * remote address of its line in /proc/net/raw does. */
static uint32_t raw_peer(int fd)
{
	FILE *f = fopen("/proc/net/raw", "r");
	char line[512];
	struct stat st;
	unsigned long long ino;
	unsigned rem;

	TL_CHECK(f && !fstat(fd, &st), "/proc/net/raw: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " %*u: %*x:%*x %x:%*x %*x %*s %*s %*s %*s %*s %llu", &rem,
			   &ino) == 2 && ino == st.st_ino) {
			fclose(f);
			return rem;	/* the bytes of the address, as the host reads them */
		}
	tl_fail("the raw socket is not in /proc/net/raw");
}

/* Outside the tree, made before its sockets. */
static void peer(int up)
{
	int fd = sock(AF_INET, SOCK_RAW, PROTO);

	bind4(fd, peer_addr, 0);
	tl_outside_up(up);
	recv_raw(fd, my_addr, "before");
	send_raw(fd, my_addr, "answer 1");
	recv_raw(fd, my_addr, "after");
	send_raw(fd, my_addr, "answer 2");
	_exit(0);
}

static void setup_ping(void)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };

	ping4 = sock(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	bind4(ping4, (struct in_addr){ htonl(INADDR_LOOPBACK) }, 0);
	id4 = port_of(ping4);
	TL_CHECK(id4, "no ICMP id");
	ping(ping4, AF_INET, id4, 1);
	ping6 = sock(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
	TL_CHECK(!bind(ping6, (struct sockaddr *)&s6, sizeof(s6)), "bind ::1: %s", strerror(errno));
	id6 = port_of(ping6);
	TL_CHECK(!fcntl(ping6, F_SETFL, O_NONBLOCK), "O_NONBLOCK");
	ping(ping6, AF_INET6, id6, 1);
}

static void setup_raw(void)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_in to = sin_of(peer_addr, 0);
	struct icmp6_filter f6;
	int tos = TOS, mask = FILTER_MASK, off = CSUM_OFF, one = 1;

	raw = sock(AF_INET, SOCK_RAW, PROTO);
	TL_CHECK(!setsockopt(raw, IPPROTO_IP, IP_TOS, &tos, sizeof(tos)), "IP_TOS");
	bind4(raw, my_addr, 0);
	send_raw(raw, peer_addr, "before");
	recv_raw(raw, peer_addr, "answer 1");
	icmp = sock(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	TL_CHECK(!setsockopt(icmp, SOL_RAW, ICMP_FILTER, &mask, sizeof(mask)), "ICMP_FILTER");
	bind4(icmp, icmp_addr, 0);
	icmp6 = sock(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
	ICMP6_FILTER_SETBLOCKALL(&f6);
	TL_CHECK(!setsockopt(icmp6, IPPROTO_ICMPV6, ICMP6_FILTER, &f6, sizeof(f6)), "ICMP6_FILTER");
	TL_CHECK(!bind(icmp6, (struct sockaddr *)&s6, sizeof(s6)), "bind ::1: %s", strerror(errno));
	raw6 = sock(AF_INET6, SOCK_RAW, PROTO);
	TL_CHECK(!setsockopt(raw6, IPPROTO_IPV6, IPV6_CHECKSUM, &off, sizeof(off)),
		 "IPV6_CHECKSUM: %s", strerror(errno));
	/* Sends only: its receive side would see every run's datagrams of PROTO. */
	hdr = sock(AF_INET, SOCK_RAW, IPPROTO_RAW);
	TL_CHECK(!setsockopt(hdr, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one)), "IP_HDRINCL");
	TL_CHECK(!connect(hdr, (struct sockaddr *)&to, sizeof(to)), "connect: %s", strerror(errno));
}

static void check_raw(void)
{
	struct sockaddr_in s;
	struct icmp6_filter f6, all;
	socklen_t l = sizeof(s);
	uint32_t mask = 0;

	TL_CHECK(!getsockname(raw, (struct sockaddr *)&s, &l) && s.sin_addr.s_addr == my_addr.s_addr,
		 "raw: bound to %08x", ntohl(s.sin_addr.s_addr));
	TL_CHECK(opt(raw, IPPROTO_IP, IP_TOS) == TOS, "raw: IP_TOS %d", opt(raw, IPPROTO_IP, IP_TOS));
	TL_CHECK(opt(raw, IPPROTO_IP, IP_HDRINCL) == 0, "raw: IP_HDRINCL appeared");
	TL_CHECK(opt(raw, SOL_SOCKET, SO_PROTOCOL) == PROTO, "raw: protocol");
	send_raw(raw, peer_addr, "after");
	recv_raw(raw, peer_addr, "answer 2");
	l = sizeof(mask);
	TL_CHECK(!getsockopt(icmp, SOL_RAW, ICMP_FILTER, &mask, &l) && mask == FILTER_MASK,
		 "ICMP_FILTER 0x%x", mask);
	l = sizeof(s);
	TL_CHECK(!getsockname(icmp, (struct sockaddr *)&s, &l) &&
		 s.sin_addr.s_addr == icmp_addr.s_addr, "raw ICMP: bound to %08x",
		 ntohl(s.sin_addr.s_addr));
	l = sizeof(f6);
	ICMP6_FILTER_SETBLOCKALL(&all);
	TL_CHECK(!getsockopt(icmp6, IPPROTO_ICMPV6, ICMP6_FILTER, &f6, &l) &&
		 !memcmp(&f6, &all, sizeof(f6)), "ICMP6_FILTER lost");
	TL_CHECK(opt(raw6, IPPROTO_IPV6, IPV6_CHECKSUM) == CSUM_OFF, "IPV6_CHECKSUM %d",
		 opt(raw6, IPPROTO_IPV6, IPV6_CHECKSUM));
	TL_CHECK(opt(hdr, IPPROTO_IP, IP_HDRINCL) == 1, "IP_HDRINCL lost");
	TL_CHECK(raw_peer(hdr) == peer_addr.s_addr, "the connected raw socket is connected to "
		 "%08x", ntohl(raw_peer(hdr)));
}

static void check_ping(void)
{
	TL_CHECK(port_of(ping4) == id4, "ping: ICMP id %u, not %u", port_of(ping4), id4);
	TL_CHECK(port_of(ping6) == id6, "ping6: ICMP id %u, not %u", port_of(ping6), id6);
	TL_CHECK(fcntl(ping6, F_GETFL) & O_NONBLOCK, "ping6: O_NONBLOCK lost");
	TL_CHECK(!(fcntl(ping4, F_GETFL) & O_NONBLOCK), "ping: O_NONBLOCK appeared");
	ping(ping4, AF_INET, id4, 2);
	ping(ping6, AF_INET6, id6, 2);
}

int main(int argc, char **argv)
{
	const char *bad = argc > 2 ? argv[2] : NULL;
	uint32_t base = 0x7f000000u | ((getpid() & 0x3fff) << 8);

	tl_init();
	my_addr.s_addr = htonl(base | 1);
	peer_addr.s_addr = htonl(base | 2);
	icmp_addr.s_addr = htonl(base | 3);
	allow_ping();
	tl_outside(peer);
	setup_ping();
	setup_raw();
	if (bad)
		send_raw(raw, my_addr, "queued");
	tl_ready();
	tl_wait_go();
	if (bad)
		recv_raw(raw, my_addr, "queued");
	check_raw();
	check_ping();
	tl_pass();
}
