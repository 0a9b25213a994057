/* A pseudo-terminal pair inside the tree, as a terminal server and its shell have it:
 * the root holds the master (packet mode); its child leads a new session with the
 * slave as controlling terminal, raw-ish settings and a window size, and has made its
 * own child's group the foreground. After the restore each checks from inside: the
 * same /dev/pts/N by name, termios, window size, packet mode, the session, controlling
 * terminal and foreground group, and bytes going through in both directions.
 * With an argument, a state the dump must refuse, left as it was: /dev/tty open
 * (dev-tty), the master (master-outside) or a slave (slave-outside) held by a
 * process outside the tree. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "tlib.h"

#define ROWS 33
#define COLS 101

static char slave_name[64];
static int master_fd, go_pipe[2], result_pipe[2];

static void must(bool ok, const char *what)
{
	TL_CHECK(ok, "%s: %s", what, strerror(errno));
}

static void put(int fd, const void *buf, size_t len)
{
	must(write(fd, buf, len) == (ssize_t)len, "write");
}

static void get(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		TL_CHECK(n > 0, "read %zu of %zu bytes from fd %d, then %zd (%s)", got, len, fd,
			 n, n < 0 ? strerror(errno) : "end of file");
		got += n;
	}
}

static void set_up_terminal(int s)
{
	struct winsize ws = { ROWS, COLS, 640, 480 };
	struct termios t;

	must(!tcgetattr(s, &t), "tcgetattr");
	t.c_lflag &= ~(ICANON | ECHO);
	t.c_iflag &= ~ICRNL;
	t.c_cc[VMIN] = 3;
	t.c_cc[VTIME] = 7;
	t.c_cc[VINTR] = 0x07;
	cfsetspeed(&t, B9600);
	must(!tcsetattr(s, TCSANOW, &t), "tcsetattr");
	must(!ioctl(s, TIOCSWINSZ, &ws), "TIOCSWINSZ");
}

/* Its controlling terminal, by every name: the fd, /proc/self/stat, /dev/tty. */
static void check_ctty(int s, pid_t sid, pid_t fg, const char *who)
{
	char buf[512], *at;
	struct stat st;
	int fd, n, tty_nr = 0;
	const char *name = ttyname(s);

	TL_CHECK(name && !strcmp(name, slave_name), "%s: the slave is %s, was %s", who,
		 name ? name : "(none)", slave_name);
	TL_CHECK(tcgetsid(s) == sid, "%s: the terminal's session is %d, not %d", who,
		 tcgetsid(s), sid);
	TL_CHECK(tcgetpgrp(s) == fg, "%s: the foreground group is %d, not %d", who,
		 tcgetpgrp(s), fg);
	fd = open("/proc/self/stat", O_RDONLY);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	must(n > 0, "reading /proc/self/stat");
	buf[n] = 0;
	close(fd);
	at = strrchr(buf, ')');
	TL_CHECK(at && sscanf(at + 2, "%*c %*d %*d %*d %d", &tty_nr) == 1, "stat");
	must(!fstat(s, &st), "fstat");
	TL_CHECK((unsigned)tty_nr == ((minor(st.st_rdev) & 0xff) | (major(st.st_rdev) << 8)),
		 "%s: /proc/self/stat says controlling terminal 0x%x", who, tty_nr);
	fd = open("/dev/tty", O_RDWR);
	TL_CHECK(fd >= 0, "%s: /dev/tty: %s", who, strerror(errno));
	close(fd);
}

static void check_settings(int s)
{
	struct winsize ws;
	struct termios t;

	must(!tcgetattr(s, &t) && !ioctl(s, TIOCGWINSZ, &ws), "reading the settings");
	TL_CHECK(!(t.c_lflag & (ICANON | ECHO)) && !(t.c_iflag & ICRNL) && (t.c_lflag & ISIG),
		 "termios flags lost: lflag 0x%x iflag 0x%x", t.c_lflag, t.c_iflag);
	TL_CHECK(t.c_cc[VMIN] == 3 && t.c_cc[VTIME] == 7 && t.c_cc[VINTR] == 0x07,
		 "control characters lost");
	TL_CHECK(cfgetospeed(&t) == B9600, "speed lost");
	TL_CHECK(ws.ws_row == ROWS && ws.ws_col == COLS && ws.ws_xpixel == 640,
		 "window size %dx%d", ws.ws_col, ws.ws_row);
}

/* The foreground job: once told to, it checks its terminal and talks through it (the
 * session leader, in the background, could not read it). */
static void job(int s, int wake, pid_t sid)
{
	char c, abc[3];

	get(wake, &c, 1);
	check_ctty(s, sid, getpgrp(), "the foreground job");
	put(s, "hello\n", 6);
	get(s, abc, 3);
	TL_CHECK(!memcmp(abc, "abc", 3), "the slave read '%.3s'", abc);
	_exit(0);
}

/* The session leader ("the shell"). */
static void shell(int go, int result, bool dev_tty)
{
	int s, wake[2], status;
	char c;
	pid_t fg;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	close(master_fd);
	close(go_pipe[1]);
	close(result_pipe[0]);
	must(setsid() > 0, "setsid");
	s = open(slave_name, O_RDWR);
	must(s >= 0, "opening the slave");
	set_up_terminal(s);
	must(!pipe(wake), "pipe");
	fg = fork();
	must(fg >= 0, "fork");
	if (!fg) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(wake[1]);
		close(go);
		close(result);
		setpgid(0, 0);
		job(s, wake[0], getppid());
	}
	close(wake[0]);
	setpgid(fg, fg);
	must(!tcsetpgrp(s, fg), "tcsetpgrp");
	must(!dev_tty || open("/dev/tty", O_RDWR) >= 0, "opening /dev/tty");
	put(result, "r", 1);

	get(go, &c, 1);
	if (c == 'x') {
		kill(fg, SIGKILL);
		waitpid(fg, &status, 0);
		_exit(0);
	}
	check_ctty(s, getpid(), fg, "the session leader");
	check_settings(s);
	put(wake[1], "w", 1);
	must(waitpid(fg, &status, 0) == fg, "waitpid");
	TL_CHECK(WIFEXITED(status) && !WEXITSTATUS(status), "the foreground job failed");
	put(result, "k", 1);
	_exit(0);
}

/* A process outside the tree (its parent ends: the harness adopts it) holding fd
 * until the tree's root ends. */
static void hold_outside(int fd)
{
	int hold[2];
	char c;

	must(!pipe(hold), "pipe");
	if (!fork()) {
		close(hold[1]);
		close(go_pipe[1]);
		close(result_pipe[0]);
		if (!fork()) {
			while (read(hold[0], &c, 1) > 0)
				;
			_exit(0);
		}
		_exit(0);
	}
	wait(NULL);
	close(hold[0]);
	close(fd);
}

/* A refused state: still there after the refused dump; then the tree ends. */
static void bad_state(const char *what, int m, int go, pid_t child)
{
	int s = -1, status;

	if (!strcmp(what, "slave-outside")) {
		s = open(slave_name, O_RDWR | O_NOCTTY);
		must(s >= 0, "opening the slave");
	}
	if (!strcmp(what, "master-outside"))
		hold_outside(m);
	if (!strcmp(what, "slave-outside"))
		hold_outside(s);
	tl_ready();
	tl_wait_go();
	put(go, "x", 1);
	must(waitpid(child, &status, 0) == child, "waitpid");
	tl_pass();
}

int main(int argc, char **argv)
{
	const char *bad = argc > 2 ? argv[2] : NULL;
	int m, go[2], result[2], status, lck = 1, pkt = 0;
	char c, out[16];
	struct winsize ws;
	pid_t child;

	tl_init();
	m = master_fd = posix_openpt(O_RDWR | O_NOCTTY);
	must(m >= 0 && !grantpt(m) && !unlockpt(m), "posix_openpt");
	snprintf(slave_name, sizeof(slave_name), "%s", ptsname(m));
	must(!ioctl(m, TIOCPKT, &(int){ 1 }), "TIOCPKT");
	must(!pipe(go_pipe) && !pipe(result_pipe), "pipe");
	memcpy(go, go_pipe, sizeof(go));
	memcpy(result, result_pipe, sizeof(result));
	child = fork();
	must(child >= 0, "fork");
	if (!child)
		shell(go[0], result[1], bad && !strcmp(bad, "dev-tty"));
	close(go[0]);
	close(result[1]);
	get(result[0], &c, 1);
	printf("slave %s\n", slave_name);
	if (bad)
		bad_state(bad, m, go[1], child);
	tl_ready();
	tl_wait_go();

	TL_CHECK(!strcmp(ptsname(m), slave_name), "the master's slave is %s, was %s",
		 ptsname(m), slave_name);
	must(!ioctl(m, TIOCGPKT, &pkt) && !ioctl(m, TIOCGPTLCK, &lck) &&
	     !ioctl(m, TIOCGWINSZ, &ws), "reading the master's state");
	TL_CHECK(pkt == 1 && lck == 0, "packet mode %d, locked %d", pkt, lck);
	TL_CHECK(ws.ws_row == ROWS && ws.ws_col == COLS, "the master's window size");
	put(go[1], "g", 1);
	/* The slave's "hello\n" may come in two packets: "hello", then the "\r\n" its
	 * newline becomes, each pushed to the master on its own. */
	tl_read_packets(m, out, 7);
	TL_CHECK(!memcmp(out, "hello\r\n", 7), "the master read '%.7s'", out);
	put(m, "abc", 3);
	get(result[0], &c, 1);
	TL_CHECK(c == 'k', "the session leader said '%c'", c);
	must(waitpid(child, &status, 0) == child, "waitpid");
	TL_CHECK(WIFEXITED(status) && !WEXITSTATUS(status), "the session leader failed");
	tl_pass();
}
