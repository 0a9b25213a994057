/* A pseudo-terminal pair inside the tree with bytes in flight both ways at the dump:
 * its child, a session leader in canonical mode with echo and ONLCR, wrote
 * "out-bytes\n" the root (the master, packet mode) has not read, and the root typed
 * two lines and the start of a third the child has not read (their echo queued on the
 * master too). After the restore the master reads exactly "out-bytes\r\n" and the
 * echo, the child reads the two lines one by one, then the third once the root has
 * erased its last character and finished it (the line editor still holds it), and
 * the settings are unchanged and still act (ONLCR, echo, erase).
 * With an argument, a state the dump must refuse, left as it was: input queued in
 * EXTPROC mode (extproc), a locked pair with output queued (locked-output), a line
 * with a newline typed after ^V (escaped-newline, still queued: same byte count). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "tlib.h"

#define OUT "out-bytes\n"
#define IN "in-line\nsecond\npartx"
#define SEEN "out-bytes\r\nin-line\r\nsecond\r\npartx"

static void must(bool ok, const char *what)
{
	TL_CHECK(ok, "%s: %s", what, strerror(errno));
}

static void put(int fd, const void *buf, size_t len)
{
	must(write(fd, buf, len) == (ssize_t)len, "write");
}

static size_t queued(int fd)
{
	int n = -1;

	must(!ioctl(fd, FIONREAD, &n), "FIONREAD");
	return n;
}

/* The kernel moves written bytes into the reader's queue a little later: the state
 * the test wants is reached when the count is. */
static void until_queued(int fd, size_t want)
{
	while (queued(fd) < want)
		usleep(1000);
	TL_CHECK(queued(fd) == want, "fd %d has %zu bytes queued, not %zu", fd, queued(fd),
		 want);
}

static void check_tios(int fd, const char *who)
{
	struct termios t;

	must(!tcgetattr(fd, &t), "tcgetattr");
	TL_CHECK((t.c_lflag & (ICANON | ECHO | ISIG | IEXTEN)) == (ICANON | ECHO | ISIG | IEXTEN) &&
		 (t.c_oflag & (OPOST | ONLCR)) == (OPOST | ONLCR) && (t.c_iflag & ICRNL) &&
		 !(t.c_lflag & EXTPROC) && t.c_cc[VERASE] == 0x7f && t.c_cc[VEOF] == 4,
		 "%s: termios changed: iflag 0x%x oflag 0x%x lflag 0x%x", who, t.c_iflag,
		 t.c_oflag, t.c_lflag);
}

/* The master's bytes, each packet's status byte (TIOCPKT_DATA) taken off. */
static void read_master(int m, const char *want)
{
	size_t n_want = strlen(want);
	char got[256];

	TL_CHECK(n_want <= sizeof(got), "want too long");
	tl_read_packets(m, got, n_want);
	TL_CHECK(!memcmp(got, want, n_want), "the master read '%.*s', not '%s'", (int)n_want,
		 got, want);
}

static void read_line(int s, const char *want)
{
	char buf[64];
	ssize_t n = read(s, buf, sizeof(buf));

	TL_CHECK(n == (ssize_t)strlen(want) && !memcmp(buf, want, n),
		 "the child read %zd bytes '%.*s', not '%s'", n, n > 0 ? (int)n : 0, buf, want);
}

static void child(const char *slave, int go, int result)
{
	char c;
	int s;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	must(setsid() > 0, "setsid");
	s = open(slave, O_RDWR);
	must(s >= 0, "opening the slave");
	put(s, OUT, strlen(OUT));
	put(result, "r", 1);
	must(read(go, &c, 1) == 1, "reading go");
	if (c == 'x')
		_exit(0);
	read_line(s, "in-line\n");
	read_line(s, "second\n");
	read_line(s, "partial\n");
	check_tios(s, "the child");
	put(s, "x\n", 2);
	_exit(0);
}

/* A refused state, still there after the refused dump; then the tree ends. */
static void bad_state(const char *what, int m, int go, pid_t pid)
{
	size_t out = queued(m), in = 0;
	struct termios t;
	int s, status;

	s = open(ptsname(m), O_RDWR | O_NOCTTY);
	must(s >= 0, "opening the slave");
	in = queued(s);
	if (!strcmp(what, "extproc")) {
		/* packet mode off: EXTPROC would set a status the dump refuses first */
		must(!ioctl(m, TIOCPKT, &(int){ 0 }) && !tcgetattr(m, &t), "tcgetattr");
		t.c_lflag |= EXTPROC;
		must(!tcsetattr(m, TCSANOW, &t), "tcsetattr");
		in = queued(s);
	}
	if (!strcmp(what, "locked-output"))
		must(!ioctl(m, TIOCSPTLCK, &(int){ 1 }), "TIOCSPTLCK");
	if (!strcmp(what, "escaped-newline")) {
		put(m, "a\026\nb\n", 5);	/* ^V newline: one line "a\nb\n" */
		/* it finishes the line "partx" started: "partxa\nb\n" */
		until_queued(s, in + 9);
		in += 9;
		out = queued(m);
	}
	tl_ready();
	tl_wait_go();
	TL_CHECK(queued(m) == out && queued(s) == in, "queues %zu and %zu, were %zu and %zu",
		 queued(m), queued(s), out, in);
	put(go, "x", 1);
	must(waitpid(pid, &status, 0) == pid, "waitpid");
	tl_pass();
}

int main(int argc, char **argv)
{
	const char *bad = argc > 2 ? argv[2] : NULL;
	int m, go[2], result[2], status, pkt = 0;
	char c, slave[64];
	pid_t pid;

	tl_init();
	m = posix_openpt(O_RDWR | O_NOCTTY);
	must(m >= 0 && !grantpt(m) && !unlockpt(m), "posix_openpt");
	snprintf(slave, sizeof(slave), "%s", ptsname(m));
	must(!ioctl(m, TIOCPKT, &(int){ 1 }), "TIOCPKT");
	must(!pipe(go) && !pipe(result), "pipe");
	pid = fork();
	must(pid >= 0, "fork");
	if (!pid) {
		close(go[1]);
		close(result[0]);
		child(slave, go[0], result[1]);
	}
	close(go[0]);
	close(result[1]);
	must(read(result[0], &c, 1) == 1, "reading the child's word");
	until_queued(m, strlen("out-bytes\r\n"));
	put(m, IN, strlen(IN));
	until_queued(m, strlen(SEEN));	/* echoed: the lines are in the child's queue */
	if (bad)
		bad_state(bad, m, go[1], pid);
	tl_ready();
	tl_wait_go();

	must(!ioctl(m, TIOCGPKT, &pkt), "TIOCGPKT");
	TL_CHECK(pkt == 1, "packet mode %d", pkt);
	check_tios(m, "the master");
	TL_CHECK(queued(m) == strlen(SEEN), "the master has %zu bytes queued", queued(m));
	read_master(m, SEEN);
	put(m, "\177ial\n", 5);
	read_master(m, "\b \bial\r\n");
	put(go[1], "g", 1);
	read_master(m, "x\r\n");
	must(waitpid(pid, &status, 0) == pid, "waitpid");
	TL_CHECK(WIFEXITED(status) && !WEXITSTATUS(status), "the child failed");
	tl_pass();
}
