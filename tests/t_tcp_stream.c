/* The streaming test: a numbered byte stream over a loopback TCP connection at full
 * speed, through 20 dumps (REPEAT-DUMPS) of one end, with --tcp-established. Built
 * as t_tcp_stream, the dumped process is the server that echoes; as
 * t_tcp_stream_client (STREAM_CLIENT), it is the client that sends and checks the
 * echo. The other end is outside the dumped tree (a grandchild whose parent exits)
 * and checks what it sees too; at the end the client sees every byte once, in
 * order, and no reset, and the peer says so on a control connection. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "tlib.h"

#ifndef STREAM_CLIENT
#define STREAM_CLIENT 0
#endif
#define CHUNK 65536

static uint8_t pat(uint64_t off)
{
	return (off * 7 + (off >> 16)) & 0xff;
}

/* The client's side of the stream: send as fast as the connection takes it, check
 * the echo; until *stop, then the rest of the echo to its end. */
struct client {
	int sk;
	uint64_t sent, got;
	bool shut;
	char why[256];
};

static bool client_send(struct client *c)
{
	uint8_t b[CHUNK];
	ssize_t n;

	for (int j = 0; j < CHUNK; j++)
		b[j] = pat(c->sent + j);
	n = send(c->sk, b, CHUNK, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0 && errno != EAGAIN) {
		snprintf(c->why, sizeof(c->why), "send after %llu bytes: %s",
			 (unsigned long long)c->sent, strerror(errno));
		return false;
	}
	if (n > 0)
		c->sent += n;
	return true;
}

/* 1: more to read, 0: the end, -1: a wrong byte or an error. */
static int client_recv(struct client *c)
{
	uint8_t b[CHUNK];
	ssize_t n = recv(c->sk, b, sizeof(b), MSG_DONTWAIT);

	if (n < 0 && errno == EAGAIN)
		return 1;
	if (n < 0) {
		snprintf(c->why, sizeof(c->why), "receive after %llu bytes: %s",
			 (unsigned long long)c->got, strerror(errno));
		return -1;
	}
	if (!n)
		return 0;
	for (ssize_t j = 0; j < n; j++)
		if (b[j] != pat(c->got + j)) {
			snprintf(c->why, sizeof(c->why), "echoed byte %llu is wrong",
				 (unsigned long long)(c->got + j));
			return -1;
		}
	c->got += n;
	return 1;
}

/* Run the client until *stop is set and the echo has ended: 0 or -1 (c->why). */
static int client_run(struct client *c, volatile int *stop)
{
	for (;;) {
		struct pollfd p = { c->sk, POLLIN | (c->shut ? 0 : POLLOUT), 0 };
		int r;

		if (*stop && !c->shut) {
			shutdown(c->sk, SHUT_WR);
			c->shut = true;
		}
		if (poll(&p, 1, 1000) < 0 && errno != EINTR)
			return -1;
		if (p.revents & POLLOUT && !c->shut && !client_send(c))
			return -1;
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			r = client_recv(c);
			if (r < 0)
				return -1;
			if (!r) {
				if (!c->shut || c->got != c->sent) {
					snprintf(c->why, sizeof(c->why), "the echo ended after %llu "
						 "of %llu bytes", (unsigned long long)c->got,
						 (unsigned long long)c->sent);
					return -1;
				}
				return 0;
			}
		}
	}
}

/* The server's side: echo everything back, to the end (0), or an error (-1). */
static int echo_run(int sk, uint64_t *echoed, char *why, size_t wl)
{
	uint8_t b[CHUNK];

	for (;;) {
		ssize_t n = recv(sk, b, sizeof(b), 0), w = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, wl, "receive after %llu bytes: %s",
				 (unsigned long long)*echoed, strerror(errno));
			return -1;
		}
		if (!n) {
			shutdown(sk, SHUT_WR);
			return 0;
		}
		while (w < n) {
			ssize_t k = send(sk, b + w, n - w, MSG_NOSIGNAL);

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				snprintf(why, wl, "send after %llu bytes: %s",
					 (unsigned long long)*echoed, strerror(errno));
				return -1;
			}
			w += k;
		}
		*echoed += n;
	}
}

static int listener(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0 || bind(l, (void *)&a, sizeof(a)) || listen(l, 4))
		return -1;
	return l;
}

static int dial(int l)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0 || getsockname(l, (void *)&a, &al) || connect(s, (void *)&a, al))
		return -1;
	return s;
}

/* ---- the peer, outside the tree: the other end, then its verdict on ctl ---- */

static volatile int peer_stop;

static void verdict(int ctl, int rc, const char *why, uint64_t bytes)
{
	if (rc)
		dprintf(ctl, "BAD %s\n", why);
	else
		dprintf(ctl, "OK %llu\n", (unsigned long long)bytes);
}

static void peer(int l)
{
	int ctl = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	int sk = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	char why[256] = "", buf[16];
	int rc;

	alarm(900);
	close(l);
	if (ctl < 0 || sk < 0)
		_exit(1);
	if (STREAM_CLIENT) {		/* the peer echoes */
		uint64_t echoed = 0;

		rc = echo_run(sk, &echoed, why, sizeof(why));
		verdict(ctl, rc, why, echoed);
	} else {			/* the peer streams, until the process says stop */
		struct client c = { .sk = sk };

		if (fork() == 0) {	/* reads ctl: a byte there is the stop */
			if (read(ctl, buf, 1) == 1)
				kill(getppid(), SIGUSR2);
			_exit(0);
		}
		rc = client_run(&c, &peer_stop);
		verdict(ctl, rc, c.why, c.got);
	}
	_exit(0);
}

static void on_stop(int sig)
{
	(void)sig;
	peer_stop = 1;
}

int main(void)
{
	char why[256] = "", verdict[512];
	int l = listener(), ctl, sk, rc;
	ssize_t n;
	pid_t c;

	tl_init();
	signal(SIGUSR2, on_stop);
	printf("DUMP-ARG --tcp-established\nRESTORE-ARG --tcp-established\nREPEAT-DUMPS 20\n");
	TL_CHECK(l >= 0, "listener: %s", strerror(errno));
	c = fork();
	TL_CHECK(c >= 0, "fork");
	if (!c) {
		/* Its own session: a session or group id of the process's PID would
		 * keep that PID taken, and restore needs it. */
		if (!fork() && setsid() > 0)
			peer(l);
		_exit(0);
	}
	TL_CHECK(waitpid(c, NULL, 0) == c, "waitpid");
	ctl = dial(l);
	sk = dial(l);
	TL_CHECK(ctl >= 0 && sk >= 0, "connections: %s", strerror(errno));
	close(l);
	tl_ready();
	if (STREAM_CLIENT) {
		struct client cl = { .sk = sk };

		rc = client_run(&cl, &tl_go);
		TL_CHECK(!rc, "client: %s", cl.why);
		printf("%llu bytes sent and echoed\n", (unsigned long long)cl.got);
	} else {
		uint64_t echoed = 0;

		/* The go signal comes while it echoes: then it asks the peer to stop. */
		while (!tl_go) {
			uint8_t b[CHUNK];
			ssize_t k = recv(sk, b, sizeof(b), MSG_DONTWAIT), w = 0;
			struct pollfd p = { sk, POLLIN, 0 };

			if (k < 0 && errno == EAGAIN) {
				poll(&p, 1, 100);
				continue;
			}
			TL_CHECK(k > 0, "server: the stream ended: %s", k ? strerror(errno) : "EOF");
			while (w < k) {
				ssize_t s = send(sk, b + w, k - w, MSG_NOSIGNAL);

				TL_CHECK(s > 0 || errno == EINTR, "server: send: %s", strerror(errno));
				w += s > 0 ? s : 0;
			}
			echoed += k;
		}
		TL_CHECK(write(ctl, "s", 1) == 1, "control: %s", strerror(errno));
		rc = echo_run(sk, &echoed, why, sizeof(why));
		TL_CHECK(!rc, "server: %s", why);
		printf("%llu bytes echoed\n", (unsigned long long)echoed);
	}
	n = read(ctl, verdict, sizeof(verdict) - 1);
	TL_CHECK(n > 0, "no verdict from the peer: %s", n ? strerror(errno) : "EOF");
	verdict[n] = 0;
	TL_CHECK(!strncmp(verdict, "OK ", 3), "the peer: %s", verdict);
	printf("peer: %s", verdict);
	tl_pass();
}
