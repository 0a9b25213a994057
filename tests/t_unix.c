/* Unix domain sockets in a tree of two: the root R and its child C. A stream and a
 * seqpacket socketpair across the fork with bytes and messages queued both ways; a
 * datagram socketpair in R with messages (one empty) both ways; a listener bound to a
 * path (mode 0640) with a connection C made and R accepted, and two connections from
 * R queued, not accepted; an abstract datagram socket holding messages from an
 * unnamed sender and from C's socket connected to it; a stream pair shut down one
 * way; a stream and a datagram socket whose peers were closed after sending; a
 * datagram socket whose path was removed; a big stream queue and a datagram longer
 * than cryo's peek buffer; two named datagram sockets connected to each other; a
 * seqpacket connection of R to its own abstract listener; options (SO_PASSCRED, buffer sizes,
 * timeouts, SO_PEEK_OFF, O_NONBLOCK). C then becomes uid and gid 65534 and connects
 * twice to R's abstract listener: R accepts one, the other stays queued. After restore
 * each process checks, from inside, data byte for byte, message boundaries, names,
 * the peer credentials (PID, uid, gid) each socket shows, shutdown and options. C
 * passes by exiting 0, R by PASS. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tlib.h"

#define R_TO_C 5000		/* stream bytes R sends C */
#define C_TO_R 3000
#define LISTEN_MODE 0640
#define NOBODY 65534
#define BIG_STREAM 150000	/* most of a default send buffer */
#define BIG_DGRAM 400000	/* longer than cryo's peek buffer: read in pieces */

static const size_t dgram_len[] = { 100, 0, 7, 2000 };
#define NR_DGRAM (sizeof(dgram_len) / sizeof(dgram_len[0]))
static const size_t seq_len[] = { 10, 300, 1 };
#define NR_SEQ (sizeof(seq_len) / sizeof(seq_len[0]))

static int stream[2], seq[2], dgram[2], shut[2];
static int listener, accepted, client_c, queued[2];
static int abstract, c_sender;
static int l2, accepted2, c_client2, c_client3;	/* abstract listener, C as nobody */
static int closed_s, closed_d, gone;
static int big_s[2], big_d[2];
static int named_d[2];		/* datagram sockets connected to each other by name */
static int l3, self_c, self_a;	/* R connected to its own abstract listener */
static struct sockaddr_un l3_addr;
static socklen_t l3_len;
static uint8_t big_buf[BIG_DGRAM + 1];
static int ready[2], go[2];
static pid_t r_pid, c_pid;
static uid_t r_uid;
static gid_t r_gid;
static char path[4096], gone_path[100], abs_name[64], l2_name[64];
static socklen_t abs_len, l2_len;

static void send_all(int fd, const void *buf, size_t len)
{
	TL_CHECK(send(fd, buf, len, 0) == (ssize_t)len, "send of %zu bytes to fd %d: %s", len,
		 fd, strerror(errno));
}

static void send_pattern(int fd, size_t len, uint64_t seed)
{
	static uint8_t buf[8192];

	tl_fill(buf, len, seed);
	send_all(fd, buf, len);
}

/* One message (or exactly len stream bytes) of the pattern. */
static void expect_msg(int fd, size_t len, uint64_t seed, const char *what)
{
	static uint8_t buf[8192];
	size_t got = 0;

	do {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - got, MSG_DONTWAIT);

		TL_CHECK(n >= 0, "%s: recv after %zu of %zu bytes: %s", what, got, len,
			 strerror(errno));
		got += n;
		if (!n)
			break;
	} while (got < len);
	TL_CHECK(got == len, "%s: %zu bytes, not %zu", what, got, len);
	TL_CHECK(tl_verify(buf, len, seed) < 0, "%s: its bytes differ", what);
}

static void expect_empty(int fd, const char *what)
{
	char c;

	TL_CHECK(recv(fd, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "%s: not empty", what);
}

static void expect_ids(int fd, pid_t pid, uid_t uid, gid_t gid, const char *what)
{
	struct ucred uc;
	socklen_t l = sizeof(uc);

	TL_CHECK(!getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &l), "%s: SO_PEERCRED", what);
	TL_CHECK(uc.pid == pid && uc.uid == uid && uc.gid == gid,
		 "%s: peer credentials pid %d uid %d gid %d, not pid %d uid %d gid %d", what,
		 uc.pid, uc.uid, uc.gid, pid, uid, gid);
}

/* What R's sockets show: R's process, as root. */
static void expect_cred(int fd, pid_t pid, const char *what)
{
	expect_ids(fd, pid, r_uid, r_gid, what);
}

static int opt(int fd, int o)
{
	int v = -7;
	socklen_t l = sizeof(v);

	TL_CHECK(!getsockopt(fd, SOL_SOCKET, o, &v, &l), "getsockopt %d", o);
	return v;
}

static socklen_t path_addr(struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	strcpy(a->sun_path, path);
	return sizeof(*a);
}

static void connect_to(int fd, const struct sockaddr_un *a, socklen_t len)
{
	TL_CHECK(!connect(fd, (const struct sockaddr *)a, len), "connect: %s", strerror(errno));
}

static int sock(int type)
{
	int fd = socket(AF_UNIX, type, 0);

	TL_CHECK(fd >= 0, "socket: %s", strerror(errno));
	return fd;
}

/* ---- the child ---- */

static void child_setup(void)
{
	struct sockaddr_un a;
	socklen_t len = path_addr(&a);
	char c = 'c';

	close(stream[0]);
	close(seq[0]);
	client_c = sock(SOCK_STREAM);
	connect_to(client_c, &a, len);
	send_pattern(stream[1], C_TO_R, 2);
	for (size_t i = 0; i < NR_SEQ; i++)
		send_pattern(seq[1], seq_len[i], 40 + i);
	c_sender = sock(SOCK_DGRAM);
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	memcpy(a.sun_path, abs_name, abs_len);
	connect_to(c_sender, &a, offsetof(struct sockaddr_un, sun_path) + abs_len);
	send_pattern(c_sender, 64, 60);
	TL_CHECK(!setresgid(NOBODY, NOBODY, NOBODY) && !setresuid(NOBODY, NOBODY, NOBODY),
		 "becoming nobody: %s", strerror(errno));
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	memcpy(a.sun_path, l2_name, l2_len);
	c_client2 = sock(SOCK_STREAM);
	connect_to(c_client2, &a, offsetof(struct sockaddr_un, sun_path) + l2_len);
	c_client3 = sock(SOCK_STREAM);
	connect_to(c_client3, &a, offsetof(struct sockaddr_un, sun_path) + l2_len);
	TL_CHECK(write(ready[1], &c, 1) == 1, "ready pipe");
}

static void child_check(void)
{
	struct sockaddr_un peer;
	socklen_t len = sizeof(peer);

	expect_cred(stream[1], r_pid, "C's stream end");
	expect_msg(stream[1], R_TO_C, 1, "stream R to C");
	expect_empty(stream[1], "stream R to C after its bytes");
	expect_cred(seq[1], r_pid, "C's seqpacket end");
	expect_msg(seq[1], 1, 50, "seqpacket R to C");
	expect_empty(seq[1], "seqpacket R to C after its message");
	/* C connected; the listener was R's: C sees R. */
	expect_cred(client_c, r_pid, "C's client socket");
	TL_CHECK(!getpeername(client_c, (struct sockaddr *)&peer, &len) && !strcmp(peer.sun_path,
		 path), "C's client is not connected to %s", path);
	/* The listener was R's, listening as root. */
	expect_ids(c_client2, r_pid, r_uid, r_gid, "C's accepted client (nobody)");
	expect_ids(c_client3, r_pid, r_uid, r_gid, "C's queued client (nobody)");
	send_all(client_c, "ping", 4);
	send_all(c_sender, "late", 4);
	send_all(c_client3, "nobody", 6);
	exit(0);
}

static void child(void)
{
	char c;

	child_setup();
	TL_CHECK(read(go[0], &c, 1) == 1, "go pipe");
	child_check();
}

/* ---- the root ---- */

static void make_listener(const char *work)
{
	struct sockaddr_un a;
	socklen_t len;

	snprintf(path, sizeof(path), "%s/t_unix.sock.%d", work, getpid());
	unlink(path);
	len = path_addr(&a);
	listener = sock(SOCK_STREAM);
	TL_CHECK(!bind(listener, (struct sockaddr *)&a, len) && !chmod(path, LISTEN_MODE),
		 "bind %s: %s", path, strerror(errno));
	TL_CHECK(!listen(listener, 8), "listen");
}

static void make_abstract(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int anon = sock(SOCK_DGRAM);

	abs_len = snprintf(abs_name + 1, sizeof(abs_name) - 1, "t_unix.%d", getpid()) + 1;
	memcpy(a.sun_path, abs_name, abs_len);
	abstract = sock(SOCK_DGRAM);
	TL_CHECK(!bind(abstract, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) +
		 abs_len), "bind abstract: %s", strerror(errno));
	TL_CHECK(sendto(anon, "from-anon", 9, 0, (struct sockaddr *)&a,
			offsetof(struct sockaddr_un, sun_path) + abs_len) == 9, "sendto");
	close(anon);
}

static void make_abstract_listener(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	l2_len = snprintf(l2_name + 1, sizeof(l2_name) - 1, "t_unix-l2.%d", getpid()) + 1;
	memcpy(a.sun_path, l2_name, l2_len);
	l2 = sock(SOCK_STREAM);
	TL_CHECK(!bind(l2, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) +
		 l2_len) && !listen(l2, 4), "abstract listener: %s", strerror(errno));
}

/* Peers closed after sending; a name whose file is gone. */
static void make_orphans(const char *work)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int ps[2], pd[2];

	TL_CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, ps) &&
		 !socketpair(AF_UNIX, SOCK_DGRAM, 0, pd), "socketpair");
	send_all(ps[1], "bye", 3);
	send_all(pd[1], "dgram-bye", 9);
	close(ps[1]);
	close(pd[1]);
	closed_s = ps[0];
	closed_d = pd[0];
	snprintf(gone_path, sizeof(gone_path), "%.70s/t_unix.gone.%d", work, getpid());
	memcpy(a.sun_path, gone_path, sizeof(gone_path));
	unlink(gone_path);
	gone = sock(SOCK_DGRAM);
	TL_CHECK(!bind(gone, (struct sockaddr *)&a, sizeof(a)) && !unlink(gone_path),
		 "bind %s: %s", gone_path, strerror(errno));
}

/* Two abstract datagram sockets connect()ed to each other: no peer credentials. */
static void make_named_dgram(void)
{
	struct sockaddr_un a[2];
	socklen_t len[2];

	for (int i = 0; i < 2; i++) {
		memset(&a[i], 0, sizeof(a[i]));
		a[i].sun_family = AF_UNIX;
		len[i] = offsetof(struct sockaddr_un, sun_path) + 1 +
			 snprintf(a[i].sun_path + 1, sizeof(a[i].sun_path) - 1, "t_unix-d%d.%d", i,
				  getpid());
		named_d[i] = sock(SOCK_DGRAM);
		TL_CHECK(!bind(named_d[i], (struct sockaddr *)&a[i], len[i]), "bind: %s",
			 strerror(errno));
	}
	connect_to(named_d[0], &a[1], len[1]);
	connect_to(named_d[1], &a[0], len[0]);
	send_all(named_d[0], "to-1", 4);
	send_all(named_d[1], "to-0", 4);
}

static void check_named_dgram(void)
{
	struct sockaddr_un from;
	socklen_t len = sizeof(from);
	struct ucred uc;
	socklen_t l = sizeof(uc);
	char buf[8];

	TL_CHECK(!getsockopt(named_d[0], SOL_SOCKET, SO_PEERCRED, &uc, &l) && uc.pid == 0,
		 "datagram sockets connected by name show peer PID %d", uc.pid);
	TL_CHECK(recvfrom(named_d[1], buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
			  &len) == 4 && !memcmp(buf, "to-1", 4) &&
		 !memcmp(from.sun_path + 1, "t_unix-d0.", 10), "the named datagram to [1]");
	TL_CHECK(recv(named_d[0], buf, sizeof(buf), MSG_DONTWAIT) == 4 && !memcmp(buf, "to-0", 4),
		 "the named datagram to [0]");
	send_all(named_d[1], "again", 5);
	TL_CHECK(recv(named_d[0], buf, sizeof(buf), MSG_DONTWAIT) == 5, "[1] no longer reaches [0]");
}

/* R connects to its own abstract listener and accepts: both ends show R, and the
 * accepted end shares the name of the listener, which still listens. */
static void make_self(void)
{
	memset(&l3_addr, 0, sizeof(l3_addr));
	l3_addr.sun_family = AF_UNIX;
	l3_len = offsetof(struct sockaddr_un, sun_path) + 1 +
		 snprintf(l3_addr.sun_path + 1, sizeof(l3_addr.sun_path) - 1, "t_unix-l3.%d",
			  getpid());
	l3 = sock(SOCK_SEQPACKET);
	TL_CHECK(!bind(l3, (struct sockaddr *)&l3_addr, l3_len) && !listen(l3, 2), "listen: %s",
		 strerror(errno));
	self_c = sock(SOCK_SEQPACKET);
	connect_to(self_c, &l3_addr, l3_len);
	self_a = accept(l3, NULL, NULL);
	TL_CHECK(self_a >= 0, "accept: %s", strerror(errno));
	send_all(self_c, "self", 4);
}

static void check_self(void)
{
	struct sockaddr_un a;
	socklen_t len = sizeof(a);
	char buf[8];
	int c, fd;

	expect_cred(self_a, r_pid, "R's connection to itself, accepted end");
	expect_cred(self_c, r_pid, "R's connection to itself, connecting end");
	TL_CHECK(!getsockname(self_a, (struct sockaddr *)&a, &len) && len == l3_len &&
		 !memcmp(a.sun_path, l3_addr.sun_path, l3_len - offsetof(struct sockaddr_un,
		 sun_path)), "the accepted end lost its listener's name");
	TL_CHECK(recv(self_a, buf, sizeof(buf), MSG_DONTWAIT) == 4 && !memcmp(buf, "self", 4),
		 "R's message to itself is lost");
	c = sock(SOCK_SEQPACKET);
	connect_to(c, &l3_addr, l3_len);
	fd = accept(l3, NULL, NULL);
	TL_CHECK(fd >= 0, "the listener sharing its name does not accept: %s", strerror(errno));
	close(fd);
	close(c);
}

/* A stream queue of BIG_STREAM bytes; one datagram of BIG_DGRAM bytes. */
static void make_big(void)
{
	int v = 1 << 20;

	TL_CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, big_s) &&
		 !socketpair(AF_UNIX, SOCK_DGRAM, 0, big_d), "socketpair");
	tl_fill(big_buf, BIG_DGRAM, 70);
	send_all(big_s[0], big_buf, BIG_STREAM);
	TL_CHECK(!setsockopt(big_d[0], SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)), "SO_SNDBUFFORCE");
	send_all(big_d[0], big_buf, BIG_DGRAM);
}

static void check_big(void)
{
	size_t got = 0;
	ssize_t n;

	while (got < BIG_STREAM) {
		n = recv(big_s[1], big_buf + got, BIG_STREAM - got, MSG_DONTWAIT);
		TL_CHECK(n > 0, "the big stream: %zu of %d bytes, then %s", got, BIG_STREAM,
			 n < 0 ? strerror(errno) : "its end");
		got += n;
	}
	TL_CHECK(tl_verify(big_buf, BIG_STREAM, 70) < 0, "the big stream's bytes differ");
	expect_empty(big_s[1], "the big stream after its bytes");
	n = recv(big_d[1], big_buf, sizeof(big_buf), MSG_DONTWAIT);
	TL_CHECK(n == BIG_DGRAM && tl_verify(big_buf, BIG_DGRAM, 70) < 0,
		 "the big datagram has %zd bytes or differs", n);
	expect_empty(big_d[1], "the big datagram's socket after it");
	TL_CHECK(opt(big_d[0], SO_SNDBUF) == 2 << 20, "the big sender's SO_SNDBUF is %d",
		 opt(big_d[0], SO_SNDBUF));
}

static void root_setup(void)
{
	struct sockaddr_un a;
	socklen_t len = path_addr(&a);
	struct timeval tv = { 1, 500000 };
	int v;

	close(stream[1]);
	close(seq[1]);
	accepted = accept(listener, NULL, NULL);
	accepted2 = accept(l2, NULL, NULL);
	TL_CHECK(accepted >= 0 && accepted2 >= 0, "accept: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		queued[i] = sock(SOCK_STREAM);
		connect_to(queued[i], &a, len);
	}
	send_pattern(stream[0], R_TO_C, 1);
	send_pattern(seq[0], 1, 50);
	TL_CHECK(!socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram), "socketpair");
	for (size_t i = 0; i < NR_DGRAM; i++) {
		send_pattern(dgram[0], dgram_len[i], 20 + i);
		send_pattern(dgram[1], dgram_len[NR_DGRAM - 1 - i], 30 + i);
	}
	TL_CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, shut), "socketpair");
	send_all(shut[0], "last", 4);
	TL_CHECK(!shutdown(shut[0], SHUT_WR), "shutdown");
	v = 1;
	setsockopt(shut[0], SOL_SOCKET, SO_PASSCRED, &v, sizeof(v));
	v = 100000;
	setsockopt(shut[1], SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	v = 50000;
	setsockopt(shut[1], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	setsockopt(shut[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	v = 2;
	setsockopt(dgram[1], SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v));
	fcntl(dgram[0], F_SETFL, O_NONBLOCK);
}

static void check_options(void)
{
	struct timeval tv;
	socklen_t l = sizeof(tv);
	char buf[8];

	TL_CHECK(opt(shut[0], SO_PASSCRED) == 1 && !opt(shut[1], SO_PASSCRED), "SO_PASSCRED lost");
	TL_CHECK(opt(shut[1], SO_RCVBUF) == 200000, "SO_RCVBUF %d", opt(shut[1], SO_RCVBUF));
	TL_CHECK(opt(shut[1], SO_SNDBUF) == 100000, "SO_SNDBUF %d", opt(shut[1], SO_SNDBUF));
	TL_CHECK(!getsockopt(shut[1], SOL_SOCKET, SO_RCVTIMEO, &tv, &l) && tv.tv_sec == 1 &&
		 tv.tv_usec == 500000, "SO_RCVTIMEO lost");
	TL_CHECK(fcntl(dgram[0], F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
	TL_CHECK(!(fcntl(dgram[1], F_GETFL) & O_NONBLOCK), "O_NONBLOCK gained");
	TL_CHECK(opt(stream[0], SO_TYPE) == SOCK_STREAM && opt(seq[0], SO_TYPE) == SOCK_SEQPACKET &&
		 opt(dgram[0], SO_TYPE) == SOCK_DGRAM, "a socket changed type");
	/* shut[0] may no longer send; shut[1] reads its bytes then the end. */
	TL_CHECK(send(shut[0], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "shut[0] still sends");
	TL_CHECK(recv(shut[1], buf, sizeof(buf), 0) == 4 && !memcmp(buf, "last", 4),
		 "the shut-down stream lost its bytes");
	TL_CHECK(recv(shut[1], buf, sizeof(buf), 0) == 0, "the shut-down stream has no end");
	send_all(shut[1], "back", 4);
	TL_CHECK(recv(shut[0], buf, sizeof(buf), 0) == 4, "shut[0] no longer receives");
}

static void check_pairs(void)
{
	int v = -1;

	expect_cred(stream[0], r_pid, "R's stream end");
	expect_msg(stream[0], C_TO_R, 2, "stream C to R");
	expect_empty(stream[0], "stream C to R after its bytes");
	for (size_t i = 0; i < NR_SEQ; i++)
		expect_msg(seq[0], seq_len[i], 40 + i, "seqpacket C to R");
	expect_empty(seq[0], "seqpacket C to R after its messages");
	expect_cred(dgram[0], r_pid, "datagram pair");
	TL_CHECK(opt(dgram[1], SO_PEEK_OFF) == 2, "SO_PEEK_OFF %d", opt(dgram[1], SO_PEEK_OFF));
	TL_CHECK(opt(dgram[0], SO_PEEK_OFF) == -1, "SO_PEEK_OFF set on the other end");
	setsockopt(dgram[1], SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v));
	for (size_t i = 0; i < NR_DGRAM; i++) {
		expect_msg(dgram[1], dgram_len[i], 20 + i, "datagram to [1]");
		expect_msg(dgram[0], dgram_len[NR_DGRAM - 1 - i], 30 + i, "datagram to [0]");
	}
	expect_empty(dgram[0], "datagram pair after its messages");
}

static void check_listener(void)
{
	struct sockaddr_un a;
	socklen_t len = sizeof(a);
	struct stat st;
	char buf[8];

	TL_CHECK(!stat(path, &st) && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == LISTEN_MODE,
		 "the listener's socket file is gone or has another mode");
	TL_CHECK(!getsockname(listener, (struct sockaddr *)&a, &len) && !strcmp(a.sun_path, path),
		 "the listener lost its name");
	TL_CHECK(opt(listener, SO_ACCEPTCONN) == 1, "the listener no longer listens");
	/* Accepted from C before the dump: it shows C; its name is the listener's. */
	expect_cred(accepted, c_pid, "the connection accepted from C");
	len = sizeof(a);
	TL_CHECK(!getsockname(accepted, (struct sockaddr *)&a, &len) && !strcmp(a.sun_path, path),
		 "the accepted socket lost its name");
	TL_CHECK(recv(accepted, buf, 4, MSG_WAITALL) == 4 && !memcmp(buf, "ping", 4),
		 "nothing from C's connection");
	fcntl(listener, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 2; i++) {
		int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK);

		TL_CHECK(fd >= 0, "queued connection %d is gone: %s", i, strerror(errno));
		expect_cred(fd, r_pid, "a queued connection");
		expect_cred(queued[i], r_pid, "a queued client");
		send_all(queued[i], "q", 1);
		TL_CHECK(recv(fd, buf, 1, 0) == 1 && buf[0] == 'q', "queued connection %d is not "
			 "queued[%d]'s", i, i);
		close(fd);
	}
	TL_CHECK(accept4(listener, NULL, NULL, SOCK_NONBLOCK) < 0 && errno == EAGAIN,
		 "a third connection was queued");
}

static void check_orphans(void)
{
	struct sockaddr_un a;
	socklen_t len = sizeof(a);
	struct stat st;
	char buf[16];

	expect_cred(closed_s, r_pid, "the stream socket whose peer was closed");
	TL_CHECK(recv(closed_s, buf, sizeof(buf), 0) == 3 && !memcmp(buf, "bye", 3),
		 "the closed peer's bytes are lost");
	TL_CHECK(recv(closed_s, buf, sizeof(buf), 0) == 0, "no end after the closed peer");
	TL_CHECK(send(closed_s, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE,
		 "sending to a closed peer: %s", strerror(errno));
	TL_CHECK(recv(closed_d, buf, sizeof(buf), MSG_DONTWAIT) == 9 &&
		 !memcmp(buf, "dgram-bye", 9), "the closed peer's datagram is lost");
	TL_CHECK(send(closed_d, "x", 1, 0) < 0 && errno == ECONNREFUSED,
		 "a datagram to a closed peer: %s", strerror(errno));
	TL_CHECK(!getsockname(gone, (struct sockaddr *)&a, &len) && !strcmp(a.sun_path, gone_path),
		 "the socket whose file was removed lost its name");
	TL_CHECK(stat(gone_path, &st) && errno == ENOENT, "%s is back", gone_path);
}

/* C, as nobody, connected twice: R accepted one, the other waits. */
static void check_nobody(void)
{
	char buf[8];
	int fd;

	expect_ids(accepted2, c_pid, NOBODY, NOBODY, "the connection accepted from nobody");
	fd = accept(l2, NULL, NULL);
	TL_CHECK(fd >= 0, "the connection queued from nobody is gone: %s", strerror(errno));
	expect_ids(fd, c_pid, NOBODY, NOBODY, "the connection queued from nobody");
	TL_CHECK(recv(fd, buf, 6, MSG_WAITALL) == 6 && !memcmp(buf, "nobody", 6),
		 "nothing from nobody's queued connection");
	close(fd);
}

static void check_abstract(void)
{
	struct sockaddr_un from, a;
	socklen_t len = sizeof(a);
	char buf[128];

	TL_CHECK(!getsockname(abstract, (struct sockaddr *)&a, &len) &&
		 len == offsetof(struct sockaddr_un, sun_path) + abs_len &&
		 !memcmp(a.sun_path, abs_name, abs_len), "the abstract name is lost");
	len = sizeof(from);
	TL_CHECK(recvfrom(abstract, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
			  &len) == 9 && !memcmp(buf, "from-anon", 9), "the first datagram is lost");
	TL_CHECK(len <= offsetof(struct sockaddr_un, sun_path), "the unnamed sender has a name");
	expect_msg(abstract, 64, 60, "the datagram from C");
	TL_CHECK(recv(abstract, buf, sizeof(buf), 0) == 4 && !memcmp(buf, "late", 4),
		 "C's datagram socket is no longer connected to the abstract one");
}

/* "rights": a socket with an fd in flight, never received. */
static void bad_rights(void)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	char c = 'r';
	struct iovec iov = { &c, 1 };
	struct msghdr m = { NULL, 0, &iov, 1, u.b, sizeof(u.b), 0 };
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	int fds[2], one = 1;

	TL_CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, fds), "socketpair");
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &one, sizeof(int));
	TL_CHECK(sendmsg(fds[0], &m, 0) == 1, "sendmsg: %s", strerror(errno));
}

/* "unaccepted-data": a connection to its own listener, with bytes, not accepted. */
static void bad_unaccepted_data(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1 +
			snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "t_unix-bad.%d", getpid());
	int l = sock(SOCK_STREAM), c = sock(SOCK_STREAM);

	TL_CHECK(!bind(l, (struct sockaddr *)&a, len) && !listen(l, 2), "listen");
	connect_to(c, &a, len);
	send_all(c, "abc", 3);
}

/* Bad cases and the external datagram case for the harness. "outside PATH": a stream
 * connection accepted by a listener outside the tree. "extdgram PATH": a datagram
 * socket connected to PATH outside the tree, which after restore sends "after". */
static void other_case(const char *what, const char *arg)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = -1;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", arg);
	if (!strcmp(what, "outside") || !strcmp(what, "extdgram")) {
		fd = sock(!strcmp(what, "outside") ? SOCK_STREAM : SOCK_DGRAM);
		connect_to(fd, &a, sizeof(a));
	} else if (!strcmp(what, "rights")) {
		bad_rights();
	} else {
		bad_unaccepted_data();
	}
	tl_ready();
	tl_wait_go();
	if (!strcmp(what, "extdgram"))
		send_all(fd, "after", 5);
	tl_pass();
}

int main(int argc, char **argv)
{
	int status;
	char c;

	tl_init();
	if (argc > 2)
		other_case(argv[2], argc > 3 ? argv[3] : "");
	signal(SIGPIPE, SIG_IGN);
	r_pid = getpid();
	TL_CHECK(!pipe(ready) && !pipe(go), "pipe");
	TL_CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, stream) &&
		 !socketpair(AF_UNIX, SOCK_SEQPACKET, 0, seq), "socketpair");
	r_uid = getuid();
	r_gid = getgid();
	make_listener(argc > 1 ? argv[1] : ".");
	make_abstract();
	make_abstract_listener();
	c_pid = fork();
	TL_CHECK(c_pid >= 0, "fork");
	if (!c_pid)
		child();
	TL_CHECK(read(ready[0], &c, 1) == 1, "the child did not set up");
	root_setup();
	make_orphans(argc > 1 ? argv[1] : ".");
	make_big();
	make_named_dgram();
	make_self();
	tl_ready();
	tl_wait_go();
	check_pairs();
	check_options();
	TL_CHECK(write(go[1], "g", 1) == 1, "go pipe");
	check_abstract();
	check_listener();
	check_orphans();
	check_nobody();
	check_big();
	check_named_dgram();
	check_self();
	TL_CHECK(waitpid(c_pid, &status, 0) == c_pid && WIFEXITED(status) &&
		 !WEXITSTATUS(status), "the child failed (0x%x)", status);
	unlink(path);
	tl_pass();
}
