/* A UDP socket's queue under dumps cryo is killed in (KILL-CRYO): 64 datagrams of
 * different lengths (none empty: docs/FDS.md says why) from two senders of the
 * process's own, closed before the dump. Whatever instant cryo dies at, the walk over
 * the queue (MSG_PEEK at a moving SO_PEEK_OFF) leaves it whole; after restore the
 * process reads every datagram, in order, bytes and source port checked. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tlib.h"

#define NR 64

static struct sockaddr_in bound(int fd)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);

	TL_CHECK(!bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
		 !getsockname(fd, (struct sockaddr *)&a, &l), "bind: %s", strerror(errno));
	return a;
}

static size_t len_of(int i)
{
	return 1 + (i * 97) % 3000;
}

int main(void)
{
	static uint8_t buf[4096];
	int r = socket(AF_INET, SOCK_DGRAM, 0), s[2] = { socket(AF_INET, SOCK_DGRAM, 0),
						       socket(AF_INET, SOCK_DGRAM, 0) };
	int big = 1 << 20;
	struct sockaddr_in to, from[2];

	tl_init();
	printf("KILL-CRYO 20\n");
	TL_CHECK(r >= 0 && s[0] >= 0 && s[1] >= 0, "socket: %s", strerror(errno));
	TL_CHECK(!setsockopt(r, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big)), "SO_RCVBUF");
	to = bound(r);
	from[0] = bound(s[0]);
	from[1] = bound(s[1]);
	for (int i = 0; i < NR; i++) {
		tl_fill(buf, len_of(i), i);
		TL_CHECK(sendto(s[i % 2], buf, len_of(i), 0, (struct sockaddr *)&to, sizeof(to)) ==
			 (ssize_t)len_of(i), "sendto: %s", strerror(errno));
	}
	close(s[0]);
	close(s[1]);
	tl_ready();
	tl_wait_go();
	for (int i = 0; i < NR; i++) {
		struct sockaddr_in a;
		socklen_t l = sizeof(a);
		ssize_t n = recvfrom(r, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&a, &l);

		TL_CHECK(n == (ssize_t)len_of(i), "datagram %d: %zd bytes, not %zu: %s", i, n,
			 len_of(i), n < 0 ? strerror(errno) : "");
		TL_CHECK(tl_verify(buf, n, i) < 0, "datagram %d: its bytes differ", i);
		TL_CHECK(a.sin_port == from[i % 2].sin_port && a.sin_addr.s_addr == to.sin_addr.s_addr,
			 "datagram %d: from port %u, not %u", i, ntohs(a.sin_port),
			 ntohs(from[i % 2].sin_port));
	}
	TL_CHECK(recv(r, buf, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "more datagrams queued");
	tl_pass();
}
