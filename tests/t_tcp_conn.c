/* TCP connections in every state through dump and restore (--tcp-established), with
 * a peer outside the dumped tree: a grandchild whose parent exits at once, so it is
 * the harness's. On 127.0.0.1 and ::1, ephemeral ports. Held at dump, the process's
 * ends are:
 *   1 ESTABLISHED  bytes unread both ways; a send queue held back by the peer's window
 *   2 FIN_WAIT2    shut for sending, the FIN acknowledged; the peer's bytes unread
 *   3 CLOSE_WAIT   the peer's bytes and FIN unread
 *   4 FIN_WAIT1    its FIN queued behind bytes the peer's closed window holds back
 *   5 CLOSING      the same, then the peer's FIN received
 *   6 LAST_ACK     the peer's FIN received, then its own queued behind held bytes
 *   7 ESTABLISHED  IPv6, accepted by the process (its listener since closed)
 *   8 SYN_SENT     to a listener whose queue is full
 * and 0, the control connection. After restore the process checks every state from
 * inside, then every stream: each byte arrives once and in order, then the FIN; the
 * peer checks the same of what it reads and says so on the control connection
 * (a reset on either side fails). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "tlib.h"

#define NCONN 9
#define NUSED 9
#define PEER_EXTRA 10000		/* what the peer sends each open stream at the end */

static const unsigned want_state[NCONN] = {
	TCP_ESTABLISHED, TCP_ESTABLISHED, TCP_FIN_WAIT2, TCP_CLOSE_WAIT, TCP_FIN_WAIT1,
	TCP_CLOSING, TCP_LAST_ACK, TCP_ESTABLISHED, TCP_SYN_SENT,
};

/* Byte `off` of the stream of connection i: from the process (dir 0) or the peer. */
static uint8_t pat(size_t off, int i, int dir)
{
	return (off * 7 + (i * 2 + dir) * 31) & 0xff;
}

static unsigned state_of(int sk)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);

	return getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &l) ? 0 : ti.tcpi_state;
}

static bool reach(int sk, unsigned st)
{
	for (int i = 0; i < 10000 && state_of(sk) != st; i++)
		usleep(1000);
	return state_of(sk) == st;
}

/* Send n pattern bytes from *off (n 0: until the send would block). */
static size_t put(int sk, size_t *off, size_t n, int i, int dir)
{
	uint8_t b[4096];
	size_t done = 0;

	while (!n || done < n) {
		size_t k = n && n - done < sizeof(b) ? n - done : sizeof(b);
		ssize_t r;

		for (size_t j = 0; j < k; j++)
			b[j] = pat(*off + j, i, dir);
		r = send(sk, b, k, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r <= 0) {
			if (n && r < 0 && errno == EAGAIN) {
				struct pollfd p = { sk, POLLOUT, 0 };

				poll(&p, 1, 1000);
				continue;
			}
			break;
		}
		*off += r;
		done += r;
	}
	return done;
}

/* Read to the end: the count, or -1 (a wrong byte, an error such as a reset). */
static long drain(int sk, int i, int dir, char *why, size_t wl)
{
	uint8_t b[4096];
	size_t off = 0;

	for (;;) {
		struct pollfd p = { sk, POLLIN, 0 };
		ssize_t r;

		if (poll(&p, 1, 60000) != 1) {
			snprintf(why, wl, "connection %d: nothing for 60 s after %zu bytes", i, off);
			return -1;
		}
		r = recv(sk, b, sizeof(b), MSG_DONTWAIT);
		if (r < 0 && errno == EAGAIN)
			continue;
		if (r < 0) {
			snprintf(why, wl, "connection %d: %s after %zu bytes", i, strerror(errno),
				 off);
			return -1;
		}
		if (!r)
			return off;
		for (ssize_t j = 0; j < r; j++)
			if (b[j] != pat(off + j, i, dir)) {
				snprintf(why, wl, "connection %d: byte %zu is wrong", i, off + j);
				return -1;
			}
		off += r;
	}
}

static int line(int sk, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		ssize_t r = read(sk, buf + n, 1);

		if (r <= 0)
			return -1;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = 0;
	return 0;
}

static void say(int sk, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (write(sk, buf, n) != n)
		exit(3);
}

static int listener(int family, int rcvbuf, int backlog)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l >= 0 && rcvbuf)
		setsockopt(l, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (l < 0 || (family == AF_INET6 ? bind(l, (void *)&a6, sizeof(a6)) :
		      bind(l, (void *)&a4, sizeof(a4))) || listen(l, backlog))
		return -1;
	return l;
}

static int port_of(int sk)
{
	struct sockaddr_in6 a;
	socklen_t l = sizeof(a);

	if (getsockname(sk, (void *)&a, &l))
		return -1;
	return ntohs(a.sin6_port);	/* the same place in sockaddr_in */
}

static int dial(int family, int port, bool block)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT,
				   .sin6_port = htons(port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (block ? 0 : SOCK_NONBLOCK), 0);
	int rc = family == AF_INET6 ? connect(s, (void *)&a6, sizeof(a6)) :
				      connect(s, (void *)&a4, sizeof(a4));

	if (rc && !(errno == EINPROGRESS && !block))
		return -1;
	return s;
}

/* ---- the peer ---- */

static int pc[NCONN];

static bool peer_cmd(const char *cmd, int l, int l2, int *filler)
{
	int i, n;
	size_t off = 0;
	uint8_t id;

	if (sscanf(cmd, "accept %d", &n) == 1) {
		for (int k = 0; k < n; k++) {
			int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);

			if (s < 0 || read(s, &id, 1) != 1 || id >= NCONN)
				return false;
			pc[id] = s;
		}
	} else if (sscanf(cmd, "send %d %d", &i, &n) == 2) {
		return put(pc[i], &off, n, i, 1) == (size_t)n;
	} else if (sscanf(cmd, "shut %d", &i) == 1) {
		return !shutdown(pc[i], SHUT_WR);
	} else if (sscanf(cmd, "dial %d", &n) == 1) {
		id = 7;
		pc[7] = dial(AF_INET6, n, true);
		return pc[7] >= 0 && write(pc[7], &id, 1) == 1;
	} else if (!strcmp(cmd, "fill")) {
		*filler = dial(AF_INET, port_of(l2), true);
		return *filler >= 0;
	} else {
		return false;
	}
	return true;
}

/* The end: what the process sent each connection, to its end; then the peer's last
 * bytes to each one still open for them, and every end closed. */
static bool peer_check(const char *cmd, int l2, int filler, char *why, size_t wl)
{
	long total[NCONN] = { 0 };
	const char *p = cmd + 3;
	uint8_t id;
	int s;

	for (int i = 1; i < NCONN; i++)
		total[i] = strtol(p, (char **)&p, 10);
	{
		close(filler);
		close(accept4(l2, NULL, NULL, SOCK_CLOEXEC));	/* the filler's other end */
		s = accept4(l2, NULL, NULL, SOCK_CLOEXEC);	/* the SYN sent again */
		if (s < 0 || read(s, &id, 1) != 1 || id != 8) {
			snprintf(why, wl, "connection 8 never came");
			return false;
		}
		pc[8] = s;
	}
	for (int i = 1; i < NCONN; i++) {
		long got = drain(pc[i], i, 0, why, wl);

		if (got < 0)
			return false;
		if (got != total[i]) {
			snprintf(why, wl, "connection %d: %ld bytes, not %ld", i, got, total[i]);
			return false;
		}
	}
	for (int i = 1; i < NCONN; i++) {
		size_t off = i == 1 ? 3000 : i == 2 ? 500 : i == 7 ? 2000 : 0;

		if ((i == 1 || i == 2 || i == 7 || i == 8) &&
		    put(pc[i], &off, PEER_EXTRA, i, 1) != PEER_EXTRA) {
			snprintf(why, wl, "connection %d: cannot send: %s", i, strerror(errno));
			return false;
		}
		close(pc[i]);
	}
	return true;
}

static void peer(int l, int l2, int ctl_l)
{
	int ctl = accept4(ctl_l, NULL, NULL, SOCK_CLOEXEC), filler = -1;
	char cmd[512], why[256] = "";

	alarm(600);
	close(ctl_l);
	while (ctl >= 0 && !line(ctl, cmd, sizeof(cmd))) {
		if (!strncmp(cmd, "go ", 3)) {
			bool ok = peer_check(cmd, l2, filler, why, sizeof(why));

			say(ctl, ok ? "OK\n" : "BAD %s\n", why);
			break;
		}
		if (!peer_cmd(cmd, l, l2, &filler)) {
			say(ctl, "BAD command %s: %s\n", cmd, strerror(errno));
			break;
		}
		say(ctl, "ok\n");
	}
	_exit(0);
}

/* ---- the process ---- */

static int ctl;

static void ask(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	TL_CHECK(write(ctl, buf, n) == n, "control: %s", strerror(errno));
	TL_CHECK(!line(ctl, buf, sizeof(buf)) && !strcmp(buf, "ok"), "peer: %s", buf);
}

static void start_peer(int *l, int *l2)
{
	int ctl_l = listener(AF_INET, 0, 1);
	pid_t c;

	*l = listener(AF_INET, 4096, 16);
	*l2 = listener(AF_INET, 0, 0);
	TL_CHECK(*l >= 0 && *l2 >= 0 && ctl_l >= 0, "listeners: %s", strerror(errno));
	c = fork();
	TL_CHECK(c >= 0, "fork");
	if (!c) {
		/* Its own session: a session or group id of the process's PID would
		 * keep that PID taken, and restore needs it. */
		if (!fork() && setsid() > 0)
			peer(*l, *l2, ctl_l);
		_exit(0);
	}
	TL_CHECK(waitpid(c, NULL, 0) == c, "waitpid");
	ctl = dial(AF_INET, port_of(ctl_l), true);
	TL_CHECK(ctl >= 0, "control connection: %s", strerror(errno));
	close(ctl_l);
}

int main(void)
{
	size_t sent[NCONN] = { 0 };
	int c[NCONN], l, l2, l6;
	char buf[512];

	tl_init();
	printf("DUMP-ARG --tcp-established\nRESTORE-ARG --tcp-established\n");
	start_peer(&l, &l2);
	c[0] = ctl;
	for (uint8_t i = 1; i <= 6; i++) {
		c[i] = dial(AF_INET, port_of(l), true);
		TL_CHECK(c[i] >= 0 && write(c[i], &i, 1) == 1, "connection %d", i);
	}
	ask("accept 6\n");
	close(l);
	ask("send 1 3000\n");
	put(c[1], &sent[1], 0, 1, 0);
	put(c[2], &sent[2], 1000, 2, 0);
	shutdown(c[2], SHUT_WR);
	TL_CHECK(reach(c[2], TCP_FIN_WAIT2), "connection 2: state %u", state_of(c[2]));
	ask("send 2 500\n");
	ask("send 3 700\n");
	ask("shut 3\n");
	TL_CHECK(reach(c[3], TCP_CLOSE_WAIT), "connection 3: state %u", state_of(c[3]));
	for (int i = 4; i <= 6; i++)
		put(c[i], &sent[i], 0, i, 0);
	shutdown(c[4], SHUT_WR);
	shutdown(c[5], SHUT_WR);
	ask("shut 5\n");
	ask("shut 6\n");
	TL_CHECK(reach(c[6], TCP_CLOSE_WAIT), "connection 6: state %u", state_of(c[6]));
	shutdown(c[6], SHUT_WR);
	l6 = listener(AF_INET6, 0, 1);
	TL_CHECK(l6 >= 0, "IPv6 listener: %s", strerror(errno));
	ask("dial %d\n", port_of(l6));
	c[7] = accept4(l6, NULL, NULL, SOCK_CLOEXEC);
	TL_CHECK(c[7] >= 0 && read(c[7], buf, 1) == 1 && buf[0] == 7, "connection 7");
	close(l6);
	ask("send 7 2000\n");
	put(c[7], &sent[7], 5000, 7, 0);
	{
		ask("fill\n");
		c[8] = dial(AF_INET, port_of(l2), false);
		TL_CHECK(c[8] >= 0, "connection 8: %s", strerror(errno));
	}
	close(l2);
	for (int i = 0; i < NCONN; i++)
		TL_CHECK(reach(c[i], want_state[i]), "connection %d: state %u, not %u", i,
			 state_of(c[i]), want_state[i]);

	tl_ready();
	tl_wait_go();

	for (int i = 0; i < NCONN; i++)
		TL_CHECK(state_of(c[i]) == want_state[i], "restored connection %d: state %u, "
			 "not %u", i, state_of(c[i]), want_state[i]);
	snprintf(buf, sizeof(buf), "go");
	for (int i = 1; i < NCONN; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " %zu",
			 sent[i] + (i == 8 ? 1000 : 0));
	strcat(buf, "\n");
	TL_CHECK(write(ctl, buf, strlen(buf)) == (ssize_t)strlen(buf), "control");
	shutdown(c[1], SHUT_WR);
	shutdown(c[3], SHUT_WR);
	shutdown(c[7], SHUT_WR);
	/* The SYN is sent again when the listener has room: then the id byte, bytes, FIN. */
	{
		struct pollfd p = { c[8], POLLOUT, 0 };
		uint8_t id = 8;
		int fl = fcntl(c[8], F_GETFL);

		TL_CHECK(poll(&p, 1, 60000) == 1 && state_of(c[8]) == TCP_ESTABLISHED,
			 "connection 8 never completed (state %u)", state_of(c[8]));
		fcntl(c[8], F_SETFL, fl & ~O_NONBLOCK);
		TL_CHECK(write(c[8], &id, 1) == 1, "connection 8: %s", strerror(errno));
		put(c[8], &sent[8], 1000, 8, 0);
		shutdown(c[8], SHUT_WR);
	}
	for (int i = 1; i < NCONN; i++) {
		long want = i == 1 ? 3000 : i == 2 ? 500 : i == 3 ? 700 : i == 7 ? 2000 : 0;
		char why[256];
		long got;

		if (i == 1 || i == 2 || i == 7 || i == 8)
			want += PEER_EXTRA;
		got = drain(c[i], i, 1, why, sizeof(why));
		TL_CHECK(got >= 0, "%s", why);
		TL_CHECK(got == want, "connection %d: read %ld bytes, not %ld", i, got, want);
	}
	TL_CHECK(!line(ctl, buf, sizeof(buf)), "the peer's verdict: %s", strerror(errno));
	TL_CHECK(!strcmp(buf, "OK"), "the peer: %s", buf);
	tl_pass();
}
