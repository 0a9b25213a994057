/* Event and notification fds: an eventfd with a count, a semaphore eventfd, a
 * signalfd with a signal pending for it, a relative timerfd with an interval, one that
 * fired and was not read, and an absolute one on CLOCK_REALTIME; checked after restore
 * from inside (counts, flags, what reading gives, time left, the absolute deadline). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "tlib.h"

#define REL_S 600
#define ABS_S 3600

static int counter, sem, sigfd, rel, fired, absolute;
static time_t abs_deadline;

static uint64_t read_u64(int fd, const char *what)
{
	uint64_t v = 0;

	TL_CHECK(read(fd, &v, 8) == 8, "%s: read: %s", what, strerror(errno));
	return v;
}

static void empty(int fd, const char *what)
{
	uint64_t v;

	TL_CHECK(read(fd, &v, 8) < 0 && errno == EAGAIN, "%s: not empty (or blocking)", what);
}

static void setup(void)
{
	struct itimerspec its = { { 1, 0 }, { REL_S, 0 } }, once = { { 0, 0 }, { 0, 1000000 } };
	struct timespec now;
	sigset_t m;

	counter = eventfd(7, EFD_NONBLOCK);
	sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
	sigemptyset(&m);
	sigaddset(&m, SIGUSR2);
	sigprocmask(SIG_BLOCK, &m, NULL);
	sigfd = signalfd(-1, &m, SFD_NONBLOCK);
	rel = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	fired = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	absolute = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	TL_CHECK(counter >= 0 && sem >= 0 && sigfd >= 0 && rel >= 0 && fired >= 0 && absolute >= 0,
		 "creating the fds: %s", strerror(errno));
	TL_CHECK(!timerfd_settime(rel, 0, &its, NULL) && !timerfd_settime(fired, 0, &once, NULL),
		 "timerfd_settime");
	clock_gettime(CLOCK_REALTIME, &now);
	abs_deadline = now.tv_sec + ABS_S;
	its = (struct itimerspec){ { 0, 0 }, { abs_deadline, 0 } };
	TL_CHECK(!timerfd_settime(absolute, TFD_TIMER_ABSTIME, &its, NULL), "absolute timerfd");
	usleep(20000);	/* "fired" expires, unread */
	kill(getpid(), SIGUSR2);
}

static void check(void)
{
	struct signalfd_siginfo si;
	struct itimerspec left;
	struct timespec now;

	TL_CHECK(fcntl(counter, F_GETFL) & O_NONBLOCK, "the eventfd lost O_NONBLOCK");
	TL_CHECK(read_u64(counter, "eventfd") == 7, "the eventfd's count changed");
	empty(counter, "the eventfd after reading it");
	for (int i = 0; i < 3; i++)
		TL_CHECK(read_u64(sem, "semaphore eventfd") == 1, "the eventfd is no semaphore");
	empty(sem, "the semaphore eventfd after three reads");

	TL_CHECK(read(sigfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR2,
		 "the signalfd did not give the pending SIGUSR2");
	TL_CHECK(read(sigfd, &si, sizeof(si)) < 0 && errno == EAGAIN, "the signalfd is not empty");

	TL_CHECK(!timerfd_gettime(rel, &left), "timerfd_gettime");
	TL_CHECK(left.it_interval.tv_sec == 1 && left.it_interval.tv_nsec == 0,
		 "the relative timer's interval changed");
	TL_CHECK(left.it_value.tv_sec > REL_S - 60 && left.it_value.tv_sec <= REL_S,
		 "the relative timer has %ld s left, not up to %d", (long)left.it_value.tv_sec, REL_S);
	TL_CHECK(read_u64(fired, "the fired timer") == 1, "the fired timer's expiry was lost");
	TL_CHECK(!timerfd_gettime(fired, &left) && !left.it_value.tv_sec && !left.it_value.tv_nsec,
		 "the fired timer is armed again");

	TL_CHECK(!timerfd_gettime(absolute, &left), "timerfd_gettime");
	clock_gettime(CLOCK_REALTIME, &now);
	TL_CHECK(labs(now.tv_sec + left.it_value.tv_sec - abs_deadline) <= 1,
		 "the absolute timer's deadline moved by %ld s",
		 (long)(now.tv_sec + left.it_value.tv_sec - abs_deadline));
}

int main(void)
{
	tl_init();
	setup();
	tl_ready();
	tl_wait_go();
	check();
	tl_pass();
}
