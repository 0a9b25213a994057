/* Pipes and FIFOs in one process: a pipe full to a raised capacity, packets (O_DIRECT),
 * a pipe with no writer left and one with no reader, an end behind two fds and an end
 * opened twice, a named FIFO with bytes in it; each checked from inside, byte for
 * byte, with its flags and capacity. With "external", stdin is a pipe the harness
 * holds: after restore it is the same pipe, still holding what was written to it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tlib.h"

#define FULL_CAP (128 << 10)
#define PART_LEN 1000
#define FIFO_LEN 5000
#define FIFO_MODE 0640

static const size_t packet_len[] = { 100, 200, 4096, 1 };
#define NR_PACKETS (sizeof(packet_len) / sizeof(packet_len[0]))

struct pipes {
	int full[2];		/* filled to FULL_CAP; read end O_NONBLOCK */
	int part[2];		/* PART_LEN bytes in a default-size pipe */
	int packet[2];		/* O_DIRECT, NR_PACKETS packets */
	int no_writer;		/* read end; the write end was closed after 3 bytes */
	int no_reader;		/* write end; the read end is closed */
	int dup_w, dup_w2;	/* one open write end behind two fds (empty pipe) */
	int dup_r, dup_r_again;	/* its read end, and the same end opened again */
	int fifo_r, fifo_w;
};

static struct pipes ps;
static char fifo_path[4096];

static int flags_of(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	TL_CHECK(fl >= 0, "F_GETFL of fd %d: %s", fd, strerror(errno));
	return fl & (O_ACCMODE | O_NONBLOCK | O_DIRECT);
}

static ino_t ino_of(int fd)
{
	struct stat st;

	TL_CHECK(!fstat(fd, &st) && S_ISFIFO(st.st_mode), "fd %d is not a pipe", fd);
	return st.st_ino;
}

static size_t queued(int fd)
{
	int n = -1;

	TL_CHECK(!ioctl(fd, FIONREAD, &n), "FIONREAD of fd %d: %s", fd, strerror(errno));
	return n;
}

static void write_all(int fd, const void *buf, size_t len)
{
	TL_CHECK(write(fd, buf, len) == (ssize_t)len, "write of %zu bytes to fd %d: %s", len,
		 fd, strerror(errno));
}

static void fill(int fd, size_t len, uint64_t seed)
{
	static uint8_t buf[FULL_CAP];

	tl_fill(buf, len, seed);
	write_all(fd, buf, len);
}

/* Read exactly len bytes (non-blocking fd: all must be there) and compare. */
static void expect(int fd, size_t len, uint64_t seed, const char *what)
{
	static uint8_t buf[FULL_CAP];
	size_t got = 0;
	long bad;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		TL_CHECK(n > 0, "%s: read %zu of %zu bytes, then %zd (%s)", what, got, len, n,
			 n < 0 ? strerror(errno) : "end of file");
		got += n;
	}
	bad = tl_verify(buf, len, seed);
	TL_CHECK(bad < 0, "%s: byte %ld differs", what, bad);
}

static void expect_empty(int fd, const char *what)
{
	char c;

	TL_CHECK(read(fd, &c, 1) < 0 && errno == EAGAIN, "%s: not empty (or not O_NONBLOCK)",
		 what);
}

static void make(int fds[2], int flags)
{
	TL_CHECK(!pipe2(fds, flags), "pipe2: %s", strerror(errno));
}

static void setup(const char *work)
{
	int tmp[2], fl;
	char path[64];

	make(ps.full, 0);
	TL_CHECK(fcntl(ps.full[1], F_SETPIPE_SZ, FULL_CAP) == FULL_CAP, "F_SETPIPE_SZ");
	fill(ps.full[1], FULL_CAP, 1);
	fl = fcntl(ps.full[0], F_GETFL);
	fcntl(ps.full[0], F_SETFL, fl | O_NONBLOCK);

	make(ps.part, O_NONBLOCK);
	fill(ps.part[1], PART_LEN, 2);

	make(ps.packet, O_DIRECT | O_NONBLOCK);
	for (size_t i = 0; i < NR_PACKETS; i++)
		fill(ps.packet[1], packet_len[i], 10 + i);

	make(tmp, O_NONBLOCK);
	write_all(tmp[1], "end", 3);
	close(tmp[1]);
	ps.no_writer = tmp[0];

	make(tmp, 0);
	close(tmp[0]);
	ps.no_reader = tmp[1];

	make(tmp, O_NONBLOCK);
	ps.dup_r = tmp[0];
	ps.dup_w = tmp[1];
	ps.dup_w2 = dup(ps.dup_w);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ps.dup_r);
	ps.dup_r_again = open(path, O_RDONLY);
	TL_CHECK(ps.dup_r_again >= 0, "reopening a pipe end: %s", strerror(errno));

	snprintf(fifo_path, sizeof(fifo_path), "%s/t_pipes.fifo.%d", work, getpid());
	unlink(fifo_path);
	TL_CHECK(!mkfifo(fifo_path, FIFO_MODE) && !chmod(fifo_path, FIFO_MODE), "mkfifo");
	ps.fifo_r = open(fifo_path, O_RDONLY | O_NONBLOCK);
	ps.fifo_w = open(fifo_path, O_WRONLY);
	TL_CHECK(ps.fifo_r >= 0 && ps.fifo_w >= 0, "opening the FIFO: %s", strerror(errno));
	fill(ps.fifo_w, FIFO_LEN, 3);
}

/* The ends of one pipe are one pipe, and no two pipes became one. */
static void check_identity(void)
{
	ino_t now[6] = { ino_of(ps.full[1]), ino_of(ps.part[1]), ino_of(ps.packet[1]),
			 ino_of(ps.no_writer), ino_of(ps.dup_w), ino_of(ps.fifo_w) };
	struct stat st;

	TL_CHECK(ino_of(ps.full[0]) == now[0] && ino_of(ps.part[0]) == now[1] &&
		 ino_of(ps.packet[0]) == now[2] && ino_of(ps.dup_r) == now[4] &&
		 ino_of(ps.dup_w2) == now[4] && ino_of(ps.dup_r_again) == now[4] &&
		 ino_of(ps.fifo_r) == now[5], "the two ends of a pipe are different pipes");
	for (int i = 0; i < 6; i++)
		for (int j = i + 1; j < 6; j++)
			TL_CHECK(now[i] != now[j], "pipes %d and %d became one", i, j);
	TL_CHECK(!stat(fifo_path, &st) && S_ISFIFO(st.st_mode) && st.st_ino == now[5] &&
		 (st.st_mode & 07777) == FIFO_MODE, "the FIFO's path no longer leads to it");
}

static void check_flags(void)
{
	TL_CHECK(flags_of(ps.full[0]) == (O_RDONLY | O_NONBLOCK), "full read end flags %#x",
		 flags_of(ps.full[0]));
	TL_CHECK(flags_of(ps.full[1]) == O_WRONLY, "full write end flags %#x",
		 flags_of(ps.full[1]));
	TL_CHECK(flags_of(ps.packet[1]) == (O_WRONLY | O_NONBLOCK | O_DIRECT),
		 "packet write end flags %#x", flags_of(ps.packet[1]));
	TL_CHECK(flags_of(ps.dup_r_again) == O_RDONLY && flags_of(ps.dup_r) ==
		 (O_RDONLY | O_NONBLOCK), "the reopened end shares flags with the first");
	TL_CHECK(fcntl(ps.full[0], F_GETPIPE_SZ) == FULL_CAP, "capacity %d, not %d",
		 fcntl(ps.full[0], F_GETPIPE_SZ), FULL_CAP);
	TL_CHECK(fcntl(ps.part[0], F_GETPIPE_SZ) == 65536, "default capacity changed");
}

static void check_data(void)
{
	char c[8];

	TL_CHECK(queued(ps.full[0]) == FULL_CAP, "full pipe holds %zu bytes", queued(ps.full[0]));
	expect(ps.full[0], FULL_CAP, 1, "full pipe");
	expect_empty(ps.full[0], "full pipe after reading it");

	TL_CHECK(queued(ps.part[0]) == PART_LEN, "pipe holds %zu bytes", queued(ps.part[0]));
	expect(ps.part[0], PART_LEN, 2, "partly filled pipe");
	expect_empty(ps.part[0], "partly filled pipe after reading it");

	for (size_t i = 0; i < NR_PACKETS; i++) {
		uint8_t buf[8192];
		ssize_t n = read(ps.packet[0], buf, sizeof(buf));

		TL_CHECK(n == (ssize_t)packet_len[i], "packet %zu has %zd bytes, not %zu", i, n,
			 packet_len[i]);
		TL_CHECK(tl_verify(buf, n, 10 + i) < 0, "packet %zu differs", i);
	}
	expect_empty(ps.packet[0], "packet pipe after its packets");

	TL_CHECK(read(ps.no_writer, c, sizeof(c)) == 3 && !memcmp(c, "end", 3),
		 "pipe without a writer lost its bytes");
	TL_CHECK(read(ps.no_writer, c, sizeof(c)) == 0, "pipe without a writer has a writer");
	TL_CHECK(write(ps.no_reader, "x", 1) < 0 && errno == EPIPE,
		 "pipe without a reader has a reader");

	expect_empty(ps.dup_r, "empty pipe");
	write_all(ps.dup_w2, "abc", 3);
	TL_CHECK(read(ps.dup_r_again, c, 3) == 3 && !memcmp(c, "abc", 3),
		 "the reopened read end does not read the pipe");

	expect(ps.fifo_r, FIFO_LEN, 3, "FIFO");
	expect_empty(ps.fifo_r, "FIFO after reading it");
	write_all(ps.fifo_w, "fifo", 4);
	TL_CHECK(read(ps.fifo_r, c, 4) == 4 && !memcmp(c, "fifo", 4), "the FIFO does not flow");
}

/* stdin is the harness's pipe: same pipe after restore, with "before\n" (written
 * before the dump) then "after\n" (written after the restore). */
static void external(void)
{
	ino_t ino = ino_of(0);
	char buf[64] = "";
	size_t got = 0;

	tl_ready();
	tl_wait_go();
	TL_CHECK(ino_of(0) == ino, "stdin is another pipe after restore");
	while (got < 13) {
		struct pollfd pfd = { 0, POLLIN, 0 };
		ssize_t n;

		TL_CHECK(poll(&pfd, 1, 10000) == 1, "nothing more on stdin after '%s'", buf);
		n = read(0, buf + got, sizeof(buf) - 1 - got);
		TL_CHECK(n > 0, "stdin ended after '%s'", buf);
		got += n;
	}
	TL_CHECK(!strcmp(buf, "before\nafter\n"), "stdin gave '%s'", buf);
	tl_pass();
}

int main(int argc, char **argv)
{
	tl_init();
	signal(SIGPIPE, SIG_IGN);
	if (argc > 2 && !strcmp(argv[2], "external"))
		external();
	setup(argc > 1 ? argv[1] : ".");
	tl_ready();
	tl_wait_go();
	check_identity();
	check_flags();
	check_data();
	unlink(fifo_path);
	tl_pass();
}
