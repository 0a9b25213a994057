/* Test-program side of the harness protocol (see tlib.h). */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "tlib.h"

volatile int tl_go;

static void on_go(int sig)
{
	(void)sig;
	tl_go = 1;
}

void tl_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_go;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	setvbuf(stdout, NULL, _IONBF, 0);
}

void tl_ready(void)
{
	printf("READY\n");
}

void tl_thread_start(void)
{
	sigset_t usr1;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
}

/* The race-free pattern: the flag is checked with SIGUSR1 blocked, and only
 * sigsuspend unblocks it. */
void tl_wait_go(void)
{
	sigset_t usr1, old, wait;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	wait = old;
	sigdelset(&wait, SIGUSR1);
	while (!tl_go)
		sigsuspend(&wait);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

void tl_fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	exit(1);
}

/* One write: stdout is unbuffered, and printf("PASS\n") (compiled to puts) wrote
 * "PASS" and "\n" apart, so that copies of one image appending to one log at once
 * interleaved them ("PASSPASS", then two newlines). */
void tl_pass(void)
{
	static const char pass[] = "PASS\n";

	if (write(STDOUT_FILENO, pass, sizeof(pass) - 1) < 0)
		exit(1);
	exit(0);
}

void tl_fill(void *p, size_t len, uint64_t seed)
{
	uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		b[i] = tl_pattern(i, seed);
}

long tl_verify(const void *p, size_t len, uint64_t seed)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i] != tl_pattern(i, seed))
			return (long)i;
	return -1;
}

double tl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void tl_read_packets(int m, char *out, size_t len)
{
	size_t got = 0;
	char pkt[256];

	while (got < len) {
		ssize_t n = read(m, pkt, sizeof(pkt));

		TL_CHECK(n > 1 && pkt[0] == TIOCPKT_DATA && (size_t)(n - 1) <= len - got,
			 "the master read %zd bytes (0x%02x first) after %zu data bytes", n,
			 n > 0 ? (unsigned char)pkt[0] : 0, got);
		memcpy(out + got, pkt + 1, n - 1);
		got += n - 1;
	}
}

void tl_outside(void (*fn)(int up))
{
	int p[2];
	char c;

	TL_CHECK(!pipe(p), "pipe");
	if (!fork()) {
		close(p[0]);
		if (!fork()) {
			alarm(120);
			setsid();	/* the tree's session and group IDs are its root's PID */
			fn(p[1]);
			_exit(0);
		}
		_exit(0);
	}
	close(p[1]);
	wait(NULL);
	TL_CHECK(read(p[0], &c, 1) == 1, "the process outside the tree did not start");
	close(p[0]);
}

void tl_outside_up(int up)
{
	TL_CHECK(write(up, "u", 1) == 1, "outside: write");
	close(up);
}
