/* TCP sockets that are not connections, on loopback and ephemeral ports: a v4
 * listener (backlog 5, TCP_DEFER_ACCEPT, TCP_FASTOPEN, keepalive times, TCP_MAXSEG,
 * TCP_USER_TIMEOUT, the reno congestion control, TOS, TTL, buffer sizes, SO_LINGER;
 * a connection it accepted and closed first left in TIME_WAIT on its port),
 * a v6-only listener on ::1 (SO_REUSEPORT, traffic class, hop limit, O_NONBLOCK), a
 * dual-stack listener bound to the v4-mapped ::ffff:127.0.0.1, a socket bound and
 * never listening, and a v6 socket never bound (keepalive, TCP_NODELAY, a receive
 * timeout). Each listener's address is printed as "TCP-PEER ADDR PORT": the harness
 * connects to it from outside once the program is restored and sends "ping". After
 * restore the program checks from inside every address and option, accepts the
 * harness's connection on each listener and answers "pong" (the harness checks it);
 * then it makes the bound socket listen and connects the unbound one to it.
 * With "addr A": one more v4 listener on address A (the harness's restore-time
 * address check). With "queue": only a v4 listener, its port printed as "TCP-PORT N"
 * (the harness connects and leaves the connection unaccepted; on go the program
 * accepts one connection and answers it). With "conn": a connection of the program's
 * to its own listener, which dump refuses. With "inherited": fd 3 is a listener the
 * harness holds too, which dump refuses. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tlib.h"

#define V4_BACKLOG 5
#define V6_BACKLOG 9
#define DEFER_SECS 3
#define FASTOPEN_QLEN 17
#define MSS 1200
#define USER_TIMEOUT_MS 4321
#define RCVBUF_SET 40000

struct sock {
	const char *what;
	int fd, family;
	struct sockaddr_storage addr;	/* as bound */
	socklen_t len;
};

static struct sock v4, v6, dual, bound, unbound, extra;
static int sndbuf_v4, rcvbuf_v4;
static struct timeval timeo;	/* as read back (the kernel keeps it in jiffies) */

static void set(int fd, int level, int opt, int v, const char *name)
{
	TL_CHECK(!setsockopt(fd, level, opt, &v, sizeof(v)), "setting %s: %s", name,
		 strerror(errno));
}

static int get(const struct sock *s, int level, int opt, const char *name)
{
	socklen_t l = sizeof(int);
	int v = 0;

	TL_CHECK(!getsockopt(s->fd, level, opt, &v, &l), "%s: reading %s: %s", s->what, name,
		 strerror(errno));
	return v;
}

#define EXPECT(s, level, opt, want) do {						\
	int v_ = get(s, level, opt, #opt);						\
	TL_CHECK(v_ == (want), "%s: %s is %d, not %d", (s)->what, #opt, v_, (int)(want)); \
} while (0)

static void make(struct sock *s, const char *what, int family, const char *addr)
{
	s->what = what;
	s->family = family;
	s->fd = socket(family, SOCK_STREAM, 0);
	TL_CHECK(s->fd >= 0, "socket: %s", strerror(errno));
	memset(&s->addr, 0, sizeof(s->addr));
	if (family == AF_INET) {
		struct sockaddr_in *a = (void *)&s->addr;

		a->sin_family = AF_INET;
		TL_CHECK(inet_pton(AF_INET, addr, &a->sin_addr) == 1, "bad address %s", addr);
		s->len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&s->addr;

		a->sin6_family = AF_INET6;
		TL_CHECK(inet_pton(AF_INET6, addr, &a->sin6_addr) == 1, "bad address %s", addr);
		s->len = sizeof(*a);
	}
}

/* Bound to port 0: the kernel's port is kept in s->addr. */
static void bind_it(struct sock *s)
{
	socklen_t l = sizeof(s->addr);

	TL_CHECK(!bind(s->fd, (struct sockaddr *)&s->addr, s->len), "%s: bind: %s", s->what,
		 strerror(errno));
	TL_CHECK(!getsockname(s->fd, (struct sockaddr *)&s->addr, &l), "getsockname: %s",
		 strerror(errno));
}

static unsigned port_of(const struct sockaddr_storage *a)
{
	return ntohs(a->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)a)->sin6_port :
			((const struct sockaddr_in *)a)->sin_port);
}

static void print_peer(const struct sock *s, const char *addr)
{
	printf("TCP-PEER %s %u\n", addr, port_of(&s->addr));
}

/* A connection accepted on the listener and closed by this side first: its end
 * stays in TIME_WAIT on the listener's port, which a restored listener binds beside
 * (SO_REUSEADDR). Both fds are gone before the dump. */
static void leave_time_wait(const struct sock *l)
{
	int c = socket(l->family, SOCK_STREAM, 0), a;
	char b;

	TL_CHECK(c >= 0 && !connect(c, (const struct sockaddr *)&l->addr, l->len),
		 "%s: connect: %s", l->what, strerror(errno));
	TL_CHECK(send(c, "x", 1, 0) == 1, "send: %s", strerror(errno));	/* DEFER_ACCEPT */
	a = accept(l->fd, NULL, NULL);
	TL_CHECK(a >= 0 && recv(a, &b, 1, 0) == 1, "%s: accept: %s", l->what, strerror(errno));
	close(a);
	TL_CHECK(recv(c, &b, 1, 0) == 0, "no end of file after the peer closed");
	close(c);
}

static void setup_v4(void)
{
	struct linger lg = { 1, 4 };

	make(&v4, "the v4 listener", AF_INET, "127.0.0.1");
	set(v4.fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
	set(v4.fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
	set(v4.fd, SOL_SOCKET, SO_RCVBUF, RCVBUF_SET, "SO_RCVBUF");
	TL_CHECK(!setsockopt(v4.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), "SO_LINGER");
	set(v4.fd, IPPROTO_IP, IP_TOS, 0x28, "IP_TOS");
	set(v4.fd, IPPROTO_IP, IP_TTL, 45, "IP_TTL");
	set(v4.fd, IPPROTO_TCP, TCP_KEEPIDLE, 123, "TCP_KEEPIDLE");
	set(v4.fd, IPPROTO_TCP, TCP_KEEPINTVL, 17, "TCP_KEEPINTVL");
	set(v4.fd, IPPROTO_TCP, TCP_KEEPCNT, 4, "TCP_KEEPCNT");
	set(v4.fd, IPPROTO_TCP, TCP_MAXSEG, MSS, "TCP_MAXSEG");
	set(v4.fd, IPPROTO_TCP, TCP_USER_TIMEOUT, USER_TIMEOUT_MS, "TCP_USER_TIMEOUT");
	set(v4.fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, DEFER_SECS, "TCP_DEFER_ACCEPT");
	set(v4.fd, IPPROTO_TCP, TCP_FASTOPEN, FASTOPEN_QLEN, "TCP_FASTOPEN");
	TL_CHECK(!setsockopt(v4.fd, IPPROTO_TCP, TCP_CONGESTION, "reno", 4), "TCP_CONGESTION: %s",
		 strerror(errno));
	bind_it(&v4);
	TL_CHECK(!listen(v4.fd, V4_BACKLOG), "listen: %s", strerror(errno));
	leave_time_wait(&v4);
	rcvbuf_v4 = get(&v4, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF");
	sndbuf_v4 = get(&v4, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF");
	print_peer(&v4, "127.0.0.1");
}

static void setup(const char *extra_addr)
{
	struct timeval tv = { 3, 250000 };
	socklen_t l;

	setup_v4();
	make(&v6, "the v6-only listener", AF_INET6, "::1");
	set(v6.fd, IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
	set(v6.fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
	set(v6.fd, IPPROTO_IPV6, IPV6_TCLASS, 0x48, "IPV6_TCLASS");
	set(v6.fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 21, "IPV6_UNICAST_HOPS");
	bind_it(&v6);
	TL_CHECK(!listen(v6.fd, V6_BACKLOG), "listen: %s", strerror(errno));
	TL_CHECK(!fcntl(v6.fd, F_SETFL, O_NONBLOCK), "O_NONBLOCK");
	print_peer(&v6, "::1");

	make(&dual, "the dual-stack listener", AF_INET6, "::ffff:127.0.0.1");
	set(dual.fd, IPPROTO_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY");
	bind_it(&dual);
	TL_CHECK(!listen(dual.fd, 1), "listen: %s", strerror(errno));
	print_peer(&dual, "127.0.0.1");

	make(&bound, "the bound socket", AF_INET, "127.0.0.1");
	set(bound.fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
	bind_it(&bound);

	make(&unbound, "the unbound socket", AF_INET6, "::");
	set(unbound.fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
	set(unbound.fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
	TL_CHECK(!setsockopt(unbound.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), "RCVTIMEO");
	l = sizeof(timeo);
	TL_CHECK(!getsockopt(unbound.fd, SOL_SOCKET, SO_RCVTIMEO, &timeo, &l) && timeo.tv_sec == 3,
		 "SO_RCVTIMEO read back");

	if (!extra_addr)
		return;
	make(&extra, "the listener on the extra address", strchr(extra_addr, ':') ? AF_INET6 :
	     AF_INET, extra_addr);
	bind_it(&extra);
	TL_CHECK(!listen(extra.fd, 2), "listen: %s", strerror(errno));
	print_peer(&extra, extra_addr);
}

static void check_addr(const struct sock *s)
{
	struct sockaddr_storage a;
	socklen_t l = sizeof(a);

	TL_CHECK(!getsockname(s->fd, (struct sockaddr *)&a, &l), "%s: getsockname: %s", s->what,
		 strerror(errno));
	TL_CHECK(l == s->len && !memcmp(&a, &s->addr, l), "%s: bound elsewhere (port %u, not %u)",
		 s->what, port_of(&a), port_of(&s->addr));
	EXPECT(s, SOL_SOCKET, SO_DOMAIN, s->family);
}

static void check_v4(void)
{
	struct linger lg;
	socklen_t l = sizeof(lg);
	char cc[16] = "";

	check_addr(&v4);
	EXPECT(&v4, SOL_SOCKET, SO_ACCEPTCONN, 1);
	EXPECT(&v4, SOL_SOCKET, SO_REUSEADDR, 1);
	EXPECT(&v4, SOL_SOCKET, SO_REUSEPORT, 0);
	EXPECT(&v4, SOL_SOCKET, SO_KEEPALIVE, 1);
	EXPECT(&v4, SOL_SOCKET, SO_RCVBUF, rcvbuf_v4);
	EXPECT(&v4, SOL_SOCKET, SO_SNDBUF, sndbuf_v4);
	TL_CHECK(!getsockopt(v4.fd, SOL_SOCKET, SO_LINGER, &lg, &l) && lg.l_onoff &&
		 lg.l_linger == 4, "SO_LINGER");
	EXPECT(&v4, IPPROTO_IP, IP_TOS, 0x28);
	EXPECT(&v4, IPPROTO_IP, IP_TTL, 45);
	EXPECT(&v4, IPPROTO_TCP, TCP_KEEPIDLE, 123);
	EXPECT(&v4, IPPROTO_TCP, TCP_KEEPINTVL, 17);
	EXPECT(&v4, IPPROTO_TCP, TCP_KEEPCNT, 4);
	EXPECT(&v4, IPPROTO_TCP, TCP_MAXSEG, MSS);
	EXPECT(&v4, IPPROTO_TCP, TCP_USER_TIMEOUT, USER_TIMEOUT_MS);
	EXPECT(&v4, IPPROTO_TCP, TCP_DEFER_ACCEPT, DEFER_SECS);
	EXPECT(&v4, IPPROTO_TCP, TCP_FASTOPEN, FASTOPEN_QLEN);
	l = sizeof(cc) - 1;
	TL_CHECK(!getsockopt(v4.fd, IPPROTO_TCP, TCP_CONGESTION, cc, &l) && !strcmp(cc, "reno"),
		 "congestion control %s, not reno", cc);
	TL_CHECK((fcntl(v4.fd, F_GETFL) & O_NONBLOCK) == 0, "the v4 listener is non-blocking");
}

static void check_others(void)
{
	struct timeval tv;
	socklen_t l = sizeof(tv);

	check_addr(&v6);
	EXPECT(&v6, SOL_SOCKET, SO_ACCEPTCONN, 1);
	EXPECT(&v6, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	EXPECT(&v6, SOL_SOCKET, SO_REUSEPORT, 1);
	EXPECT(&v6, SOL_SOCKET, SO_REUSEADDR, 0);
	EXPECT(&v6, IPPROTO_IPV6, IPV6_TCLASS, 0x48);
	EXPECT(&v6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 21);
	TL_CHECK(fcntl(v6.fd, F_GETFL) & O_NONBLOCK, "the v6 listener lost O_NONBLOCK");
	check_addr(&dual);
	EXPECT(&dual, SOL_SOCKET, SO_ACCEPTCONN, 1);
	EXPECT(&dual, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	check_addr(&bound);
	EXPECT(&bound, SOL_SOCKET, SO_ACCEPTCONN, 0);
	EXPECT(&bound, IPPROTO_TCP, TCP_NODELAY, 1);
	check_addr(&unbound);
	EXPECT(&unbound, SOL_SOCKET, SO_KEEPALIVE, 1);
	EXPECT(&unbound, IPPROTO_TCP, TCP_NODELAY, 1);
	TL_CHECK(!getsockopt(unbound.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &l) &&
		 tv.tv_sec == timeo.tv_sec && tv.tv_usec == timeo.tv_usec, "SO_RCVTIMEO %ld.%06ld",
		 (long)tv.tv_sec, (long)tv.tv_usec);
	if (extra.what)
		check_addr(&extra);
}

/* The harness's connection: accepted (waiting for it, for a non-blocking listener),
 * "ping" read, "pong" sent. */
static void answer(const struct sock *s)
{
	struct pollfd p = { s->fd, POLLIN, 0 };
	char buf[8] = "";
	int c;

	TL_CHECK(poll(&p, 1, -1) == 1, "%s: poll: %s", s->what, strerror(errno));
	c = accept(s->fd, NULL, NULL);
	TL_CHECK(c >= 0, "%s: accept: %s", s->what, strerror(errno));
	TL_CHECK(recv(c, buf, 4, MSG_WAITALL) == 4 && !memcmp(buf, "ping", 4),
		 "%s: the harness's ping did not come", s->what);
	TL_CHECK(send(c, "pong", 4, 0) == 4, "%s: send: %s", s->what, strerror(errno));
	close(c);
}

/* The bound socket listens; the unbound one connects to it: both still work. */
static void use_bound(void)
{
	char buf[4];
	int c;

	TL_CHECK(!listen(bound.fd, 1), "the bound socket cannot listen: %s", strerror(errno));
	TL_CHECK(!connect(unbound.fd, (struct sockaddr *)&(struct sockaddr_in6){
				.sin6_family = AF_INET6,
				.sin6_port = htons(port_of(&bound.addr)),
				.sin6_addr = { .s6_addr = { [10] = 0xff, [11] = 0xff, 127, 0, 0, 1 } },
			 }, sizeof(struct sockaddr_in6)),
		 "the unbound socket cannot connect to the bound one: %s", strerror(errno));
	c = accept(bound.fd, NULL, NULL);
	TL_CHECK(c >= 0, "accept on the bound socket: %s", strerror(errno));
	TL_CHECK(send(unbound.fd, "abc", 3, 0) == 3 && recv(c, buf, 3, MSG_WAITALL) == 3 &&
		 !memcmp(buf, "abc", 3), "no data between the bound and the unbound socket");
	close(c);
}

static void queue_mode(void)
{
	make(&v4, "the listener", AF_INET, "127.0.0.1");
	bind_it(&v4);
	TL_CHECK(!listen(v4.fd, 4), "listen: %s", strerror(errno));
	printf("TCP-PORT %u\n", port_of(&v4.addr));
	tl_ready();
	tl_wait_go();
	check_addr(&v4);
	answer(&v4);
	tl_pass();
}

static void conn_mode(void)
{
	int c;

	make(&v4, "the listener", AF_INET, "127.0.0.1");
	bind_it(&v4);
	TL_CHECK(!listen(v4.fd, 4), "listen: %s", strerror(errno));
	c = socket(AF_INET, SOCK_STREAM, 0);
	TL_CHECK(c >= 0 && !connect(c, (struct sockaddr *)&v4.addr, v4.len), "connect: %s",
		 strerror(errno));
	TL_CHECK(accept(v4.fd, NULL, NULL) >= 0, "accept: %s", strerror(errno));
	tl_ready();
	tl_wait_go();
	tl_pass();
}

static void inherited_mode(void)
{
	struct sock l = { .what = "the inherited listener", .fd = 3 };

	EXPECT(&l, SOL_SOCKET, SO_ACCEPTCONN, 1);
	tl_ready();
	tl_wait_go();
	EXPECT(&l, SOL_SOCKET, SO_ACCEPTCONN, 1);
	tl_pass();
}

int main(int argc, char **argv)
{
	tl_init();
	if (argc > 2 && !strcmp(argv[2], "inherited"))
		inherited_mode();
	if (argc > 2 && !strcmp(argv[2], "queue"))
		queue_mode();
	if (argc > 2 && !strcmp(argv[2], "conn"))
		conn_mode();
	setup(argc > 3 && !strcmp(argv[2], "addr") ? argv[3] : NULL);
	printf("KILL-CRYO 20\n");
	tl_ready();
	tl_wait_go();
	check_v4();
	check_others();
	answer(&v4);
	answer(&v6);
	answer(&dual);
	if (extra.what)
		answer(&extra);
	use_bound();
	tl_pass();
}
