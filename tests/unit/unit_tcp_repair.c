/* tcp_repair.c: the pure parts (FINs of each state, image checks, checksums), then
 * the self-test: loopback connections in each state, dumped, their socket closed in
 * repair mode (silently), made again in a new socket, and the byte streams checked
 * to go on from both ends, every byte once and in order, no reset. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/tcp.h>

#include "tcp_repair.h"
#include "unit.h"

/* The network lock's guardian is not there: tcp_conn_dump asks it for nothing. */
int net_guard_repair(int sk)
{
	(void)sk;
	return 0;
}

static void test_fins(void)
{
	struct tcp_fins f;

	unit_case();
	f = tcp_state_fins(TCPS_ESTABLISHED);
	CHECK(!f.sent && !f.acked && !f.received, "ESTABLISHED has no FIN");
	f = tcp_state_fins(TCPS_FIN_WAIT2);
	CHECK(f.sent && f.acked && !f.received, "FIN_WAIT2: ours sent and acked");
	f = tcp_state_fins(TCPS_LAST_ACK);
	CHECK(f.sent && !f.acked && f.received, "LAST_ACK: both, ours not acked");
	f = tcp_state_fins(TCPS_CLOSING);
	CHECK(f.sent && !f.acked && f.received, "CLOSING: both, ours not acked");
	f = tcp_state_fins(TCPS_CLOSE_WAIT);
	CHECK(!f.sent && f.received, "CLOSE_WAIT: the peer's");
	CHECK(tcp_state_connected(TCPS_SYN_SENT) && !tcp_state_connected(TCPS_LISTEN) &&
	      !tcp_state_connected(TCPS_TIME_WAIT) && !tcp_state_connected(TCPS_SYN_RECV) &&
	      !tcp_state_connected(0) && !tcp_state_connected(99), "connected states");
	CHECK(!strcmp(tcp_state_name(TCPS_CLOSING), "CLOSING") &&
	      !strcmp(tcp_state_name(1234), "an unknown state"), "state names");
}

static TcpConn *sample(void)
{
	static uint8_t sq[10], rq[4];
	static TcpConn c;

	tcp_conn__init(&c);
	c.state = TCPS_ESTABLISHED;
	c.send_queue = (ProtobufCBinaryData){ sizeof(sq), sq };
	c.recv_queue = (ProtobufCBinaryData){ sizeof(rq), rq };
	c.unsent = 3;
	c.mss = 1460;
	c.sack = true;
	c.timestamps = c.has_timestamp = true;
	c.has_snd_wscale = c.has_rcv_wscale = true;
	c.snd_wscale = 7;
	c.rcv_wscale = 14;
	return &c;
}

static void test_check(void)
{
	static TcpWindow w;
	TcpConn *c;

	unit_case();
	CHECK(!tcp_conn_check(sample()), "a sound connection: %s", err_text());
	unit_case();
	c = sample();
	c->state = TCPS_LISTEN;
	CHECK(tcp_conn_check(c) && err_has("LISTEN"), "a listener is no connection");
	unit_case();
	c = sample();
	c->unsent = 11;
	CHECK(tcp_conn_check(c), "more unsent than queued");
	unit_case();
	c = sample();
	c->send_queue.len = TCP_QUEUE_MAX + 1;
	CHECK(tcp_conn_check(c), "a queue too long");
	unit_case();
	c = sample();
	c->rcv_wscale = 15;
	CHECK(tcp_conn_check(c), "a window scale above 14");
	unit_case();
	c = sample();
	c->has_rcv_wscale = false;
	CHECK(tcp_conn_check(c), "half a window scaling");
	unit_case();
	c = sample();
	c->mss = 0;
	CHECK(tcp_conn_check(c), "an MSS of 0");
	unit_case();
	c = sample();
	c->has_timestamp = false;
	CHECK(tcp_conn_check(c), "timestamps without a clock");
	unit_case();
	c = sample();
	c->state = TCPS_FIN_WAIT2;
	CHECK(tcp_conn_check(c), "FIN acknowledged with data unacknowledged");
	unit_case();
	c = sample();
	c->state = TCPS_SYN_SENT;
	CHECK(tcp_conn_check(c), "SYN_SENT with data");
	unit_case();
	c = sample();
	tcp_window__init(&w);
	w.snd_wnd = 100;
	w.max_window = 99;
	c->window = &w;
	CHECK(tcp_conn_check(c), "a window above the largest");
	unit_case();
	CHECK(tcp_conn_check(NULL), "no connection");
}

static void test_checksum(void)
{
	/* A SYN 10.0.0.1:1234 -> 10.0.0.2:80, seq 1, window 65535. */
	uint8_t seg[20] = { 0x04, 0xd2, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02,
			    0xff, 0xff, 0, 0, 0, 0 };
	uint8_t a[4] = { 10, 0, 0, 1 }, b[4] = { 10, 0, 0, 2 };
	uint16_t ck = tcp_checksum(a, b, 4, seg, sizeof(seg));
	uint8_t a6[16] = { [15] = 1 }, b6[16] = { [15] = 1 };

	unit_case();
	memcpy(seg + 16, &ck, 2);
	/* A segment with its checksum in place sums to zero: the checksum of it is 0. */
	CHECK(tcp_checksum(a, b, 4, seg, sizeof(seg)) == 0, "IPv4 checksum verifies");
	memset(seg + 16, 0, 2);
	ck = tcp_checksum(a6, b6, 16, seg, sizeof(seg));
	memcpy(seg + 16, &ck, 2);
	CHECK(tcp_checksum(a6, b6, 16, seg, sizeof(seg)) == 0, "IPv6 checksum verifies");
	CHECK(ck != tcp_checksum(a, b, 4, seg, sizeof(seg)), "the pseudo-header counts");
}

/* ---- the self-test on loopback ---- */

static int listener(int family, int rcvbuf)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int l = socket(family, SOCK_STREAM, 0);

	if (rcvbuf)
		setsockopt(l, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (family == AF_INET6 ? bind(l, (void *)&a6, sizeof(a6)) : bind(l, (void *)&a4, sizeof(a4)))
		return -1;
	return listen(l, 0) ? -1 : l;
}

/* A connected pair over loopback: *c the client, *s the server's accepted socket. */
static int pair(int family, int rcvbuf, int *c, int *s)
{
	struct sockaddr_storage a;
	socklen_t al = sizeof(a);
	int l = listener(family, rcvbuf);

	*c = *s = -1;
	if (l < 0 || getsockname(l, (void *)&a, &al))
		return -1;
	*c = socket(family, SOCK_STREAM, 0);
	if (rcvbuf)
		setsockopt(*c, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (connect(*c, (void *)&a, al))
		return -1;
	*s = accept(l, NULL, NULL);
	close(l);
	return *s < 0 ? -1 : 0;
}

static unsigned state_of(int sk)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);

	return getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &l) ? 0 : ti.tcpi_state;
}

/* Wait for a state (the peer's segments are processed asynchronously). */
static bool reach(int sk, unsigned state)
{
	for (int i = 0; i < 5000 && state_of(sk) != state; i++)
		usleep(1000);
	return state_of(sk) == state;
}

/* Dump sk, close it in repair mode, make it again in a new socket on the same fd. */
static int roundtrip_to(int sk, TcpConn **keep, const struct sockaddr_storage *peer)
{
	struct sockaddr_storage src, dst;
	socklen_t sl = sizeof(src), dl = sizeof(dst);
	struct inet_diag_msg d = { 0 };
	TcpConn *c;
	uint8_t *buf;
	size_t len;
	int n;

	if (peer)
		dst = *peer;
	if (getsockname(sk, (void *)&src, &sl) || (!peer && getpeername(sk, (void *)&dst, &dl)))
		return -1;
	d.idiag_family = src.ss_family;
	d.idiag_state = state_of(sk);
	if (tcp_conn_dump(sk, &d, &c))
		return -1;
	tcp_conn_dump_finish(true);	/* still in repair mode: closes silently */
	/* Through the image format, as restore sees it. */
	len = tcp_conn__get_packed_size(c);
	buf = malloc(len);
	tcp_conn__pack(c, buf);
	tcp_conn_free(c);
	c = tcp_conn__unpack(NULL, len, buf);
	free(buf);
	if (!c)
		return -1;
	n = socket(src.ss_family, SOCK_STREAM, 0);
	close(sk);
	if (n < 0 || dup2(n, sk) < 0)
		return -1;
	close(n);
	if (tcp_conn_restore(sk, c, (void *)&src, (void *)&dst, sl) ||
	    tcp_conn_restore_finish(true)) {
		tcp_conn_restore_finish(false);
		tcp_conn_free(c);
		return -1;
	}
	if (keep)
		*keep = c;
	else
		tcp_conn_free(c);
	return 0;
}

static int roundtrip(int sk, TcpConn **keep)
{
	return roundtrip_to(sk, keep, NULL);
}

/* The numbered stream: byte i of a direction is (i * 7 + seed) & 0xff. */
static void fill(uint8_t *b, size_t off, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = ((off + i) * 7 + seed) & 0xff;
}

static ssize_t send_all(int sk, size_t *off, size_t n, int seed)
{
	uint8_t b[65536];
	size_t done = 0;

	while (done < n) {
		size_t k = n - done > sizeof(b) ? sizeof(b) : n - done;
		ssize_t r;

		fill(b, *off, k, seed);
		r = send(sk, b, k, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r <= 0)
			break;
		*off += r;
		done += r;
	}
	return done;
}

/* Read and check exactly n bytes (or until EOF when n is 0): the count read, -1 on a
 * wrong byte or an error (a reset). */
static ssize_t expect(int sk, size_t *off, size_t n, int seed, bool eof)
{
	uint8_t b[65536], want[65536];
	size_t got = 0;

	for (;;) {
		struct pollfd p = { sk, POLLIN, 0 };
		size_t k = n && n - got < sizeof(b) ? n - got : sizeof(b);
		ssize_t r;

		if (n && got == n && !eof)
			return got;
		if (poll(&p, 1, 10000) != 1)
			return -1;
		r = recv(sk, b, k ? k : sizeof(b), MSG_DONTWAIT);
		if (r < 0)
			return -1;
		if (r == 0)
			return eof ? (ssize_t)got : -1;
		fill(want, *off, r, seed);
		if (memcmp(b, want, r))
			return -1;
		*off += r;
		got += r;
	}
}

static void test_established(int family)
{
	size_t c_out = 0, c_in = 0, s_out = 0, s_in = 0;
	TcpConn *kept = NULL;
	int c, s;

	unit_case();
	CHECK(!pair(family, 0, &c, &s), "a loopback pair");
	/* Queued both ways on the client: unread bytes, and a send queue held back by
	 * the server's full window (the server reads nothing yet). */
	send_all(s, &s_out, 3000, 1);
	while (send_all(c, &c_out, 1 << 20, 2) > 0)
		usleep(2000);
	CHECK(!roundtrip(c, &kept), "client made again: %s", err_text());
	CHECK(kept && kept->recv_queue.len == 3000, "its 3000 unread bytes kept (%zu)",
	      kept ? kept->recv_queue.len : 0);
	CHECK(kept && kept->send_queue.len > 0, "its send queue kept (%zu, %u unsent)",
	      kept ? kept->send_queue.len : 0, kept ? kept->unsent : 0);
	CHECK(state_of(c) == TCPS_ESTABLISHED, "ESTABLISHED again");
	/* The stream goes on: the server reads all the client ever sent, and more. */
	send_all(c, &c_out, 5000, 2);
	send_all(s, &s_out, 7000, 1);
	CHECK(expect(c, &c_in, s_out, 1, false) == (ssize_t)s_out, "client reads all");
	CHECK(expect(s, &s_in, c_out, 2, false) == (ssize_t)c_out, "server reads all %zu",
	      c_out);
	/* And the server side too, with the window scaling the client agreed. */
	CHECK(!roundtrip(s, NULL), "server made again: %s", err_text());
	send_all(s, &s_out, 100000, 1);
	send_all(c, &c_out, 100000, 2);
	CHECK(expect(c, &c_in, 100000, 1, false) == 100000, "client reads on");
	CHECK(expect(s, &s_in, 100000, 2, false) == 100000, "server reads on");
	close(c);
	CHECK(expect(s, &s_in, 0, 2, true) == 0, "server sees the client's FIN, no reset");
	close(s);
	tcp_conn_free(kept);
}

/* Half-closed both ways: the client's FIN acknowledged (FIN_WAIT2), the server's end
 * has it (CLOSE_WAIT); both dumped with data unread. */
static void test_half_closed(void)
{
	size_t c_out = 0, c_in = 0, s_out = 0, s_in = 0;
	int c, s;

	unit_case();
	CHECK(!pair(AF_INET, 0, &c, &s), "a loopback pair");
	send_all(c, &c_out, 1000, 3);
	shutdown(c, SHUT_WR);
	CHECK(reach(c, TCPS_FIN_WAIT2) && reach(s, TCPS_CLOSE_WAIT), "FIN_WAIT2/CLOSE_WAIT");
	send_all(s, &s_out, 500, 4);
	CHECK(!roundtrip(c, NULL), "FIN_WAIT2 made again: %s", err_text());
	CHECK(!roundtrip(s, NULL), "CLOSE_WAIT made again: %s", err_text());
	CHECK(state_of(c) == TCPS_FIN_WAIT2, "FIN_WAIT2 again (%u)", state_of(c));
	CHECK(state_of(s) == TCPS_CLOSE_WAIT, "CLOSE_WAIT again (%u)", state_of(s));
	CHECK(expect(s, &s_in, 0, 3, true) == 1000, "server reads 1000 bytes, then EOF");
	send_all(s, &s_out, 20000, 4);
	CHECK(expect(c, &c_in, 20500, 4, false) == 20500, "client reads what it is sent");
	CHECK(send(c, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "client shut for writing");
	close(s);
	CHECK(expect(c, &c_in, 0, 4, true) == 0, "client sees the server's FIN");
	close(c);
}

/* FINs not sent yet, held behind data the peer's closed window keeps: FIN_WAIT1, then
 * CLOSING when the peer's FIN comes; the peer in FIN_WAIT2. */
static void test_closing(void)
{
	size_t c_out = 0, c_in = 0, s_in = 0;
	int c, s;

	unit_case();
	CHECK(!pair(AF_INET, 4096, &c, &s), "a loopback pair");
	while (send_all(c, &c_out, 1 << 20, 5) > 0)
		usleep(2000);
	shutdown(c, SHUT_WR);
	CHECK(reach(c, TCPS_FIN_WAIT1), "FIN_WAIT1 (%u)", state_of(c));
	CHECK(!roundtrip(c, NULL), "FIN_WAIT1 made again: %s", err_text());
	CHECK(state_of(c) == TCPS_FIN_WAIT1, "FIN_WAIT1 again (%u)", state_of(c));
	shutdown(s, SHUT_WR);
	CHECK(reach(c, TCPS_CLOSING) && reach(s, TCPS_FIN_WAIT2), "CLOSING/FIN_WAIT2");
	CHECK(!roundtrip(c, NULL), "CLOSING made again: %s", err_text());
	CHECK(!roundtrip(s, NULL), "FIN_WAIT2 made again: %s", err_text());
	CHECK(state_of(c) == TCPS_CLOSING, "CLOSING again (%u)", state_of(c));
	CHECK(expect(c, &c_in, 0, 6, true) == 0, "client sees the server's FIN");
	CHECK(expect(s, &s_in, 0, 5, true) == (ssize_t)c_out, "server reads all %zu, then EOF",
	      c_out);
	close(c);
	close(s);
}

/* The peer's FIN first (CLOSE_WAIT), then ours held behind data: LAST_ACK. */
static void test_last_ack(void)
{
	size_t c_out = 0, c_in = 0, s_in = 0;
	int c, s;

	unit_case();
	CHECK(!pair(AF_INET6, 4096, &c, &s), "a loopback pair");
	while (send_all(c, &c_out, 1 << 20, 7) > 0)
		usleep(2000);
	shutdown(s, SHUT_WR);
	CHECK(reach(c, TCPS_CLOSE_WAIT), "CLOSE_WAIT (%u)", state_of(c));
	shutdown(c, SHUT_WR);
	CHECK(reach(c, TCPS_LAST_ACK), "LAST_ACK (%u)", state_of(c));
	CHECK(!roundtrip(c, NULL), "LAST_ACK made again: %s", err_text());
	CHECK(!roundtrip(s, NULL), "FIN_WAIT2 made again: %s", err_text());
	CHECK(state_of(c) == TCPS_LAST_ACK, "LAST_ACK again (%u)", state_of(c));
	CHECK(expect(c, &c_in, 0, 8, true) == 0, "client reads EOF");
	CHECK(expect(s, &s_in, 0, 7, true) == (ssize_t)c_out, "server reads all %zu, then EOF",
	      c_out);
	close(c);
	close(s);
}

/* A SYN the listener drops (its queue is full): SYN_SENT, made again with the same
 * initial sequence number; the connection completes once the listener has room. */
static void test_syn_sent(void)
{
	struct sockaddr_storage a;
	socklen_t al = sizeof(a);
	size_t out = 0, in = 0;
	int l = listener(AF_INET, 0), c1, c2, s;

	unit_case();
	CHECK(l >= 0 && !getsockname(l, (void *)&a, &al), "a listener");
	c1 = socket(AF_INET, SOCK_STREAM, 0);
	c2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK(!connect(c1, (void *)&a, al), "the first connection fills the queue");
	CHECK(connect(c2, (void *)&a, al) && errno == EINPROGRESS, "the second waits");
	CHECK(state_of(c2) == TCPS_SYN_SENT, "SYN_SENT (%u)", state_of(c2));
	CHECK(!roundtrip_to(c2, NULL, &a), "SYN_SENT made again: %s", err_text());
	CHECK(state_of(c2) == TCPS_SYN_SENT, "SYN_SENT again (%u)", state_of(c2));
	close(accept(l, NULL, NULL));
	CHECK(reach(c2, TCPS_ESTABLISHED), "the connection completes (%u)", state_of(c2));
	s = accept(l, NULL, NULL);
	send_all(c2, &out, 1000, 9);
	CHECK(s >= 0 && expect(s, &in, 1000, 9, false) == 1000, "and carries bytes");
	close(s);
	close(c1);
	close(c2);
	close(l);
}

/* Sent and not acknowledged: in a network namespace of its own, the client's
 * segments are dropped while it sends; made again, it sends them again once the
 * drop is gone, and the server reads each byte once. */
static void unacked_in_netns(void)
{
	size_t c_out = 0, s_in = 0;
	TcpConn *kept = NULL;
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	char cmd[256];
	int c, s;

	CHECK(!system("ip link set lo up"), "loopback up");
	CHECK(!pair(AF_INET, 0, &c, &s) && !getsockname(c, (void *)&a, &al), "a pair");
	snprintf(cmd, sizeof(cmd), "nft add table ip t && nft add chain ip t o "
		 "'{ type filter hook input priority 0; }' && nft add rule ip t o tcp sport "
		 "%u drop", ntohs(a.sin_port));
	CHECK(!system(cmd), "client's segments dropped");
	send_all(c, &c_out, 5000, 10);
	CHECK(!roundtrip(c, &kept), "client made again: %s", err_text());
	CHECK(kept && kept->send_queue.len == 5000 && kept->unsent == 0,
	      "5000 bytes sent, none acknowledged (%zu, %u unsent)",
	      kept ? kept->send_queue.len : 0, kept ? kept->unsent : 0);
	CHECK(!system("nft delete table ip t"), "the drop gone");
	send_all(c, &c_out, 3000, 10);
	CHECK(expect(s, &s_in, 8000, 10, false) == 8000, "server reads the 8000 bytes");
	close(c);
	CHECK(expect(s, &s_in, 0, 10, true) == 0, "then EOF, no reset");
	close(s);
	tcp_conn_free(kept);
}

static void test_unacked(void)
{
	int status;
	pid_t pid;

	unit_case();
	fflush(stdout);
	pid = fork();
	if (!pid) {
		if (unshare(CLONE_NEWNET)) {
			printf("no network namespace: %s\n", strerror(errno));
			_exit(1);
		}
		unacked_in_netns();
		fflush(stdout);
		_exit(unit_failed ? 1 : 0);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      !WEXITSTATUS(status), "unacknowledged data kept");
}

int main(void)
{
	test_fins();
	test_check();
	test_checksum();
	if (geteuid()) {
		printf("not root: no self-test of repair mode\n");
		return unit_done("unit_tcp_repair");
	}
	test_established(AF_INET);
	test_established(AF_INET6);
	test_half_closed();
	test_closing();
	test_last_ack();
	test_syn_sent();
	test_unacked();
	return unit_done("unit_tcp_repair");
}
