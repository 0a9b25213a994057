/* A POSIX timer whose signal is blocked and already pending at dump: after restore
 * the signal is still pending exactly once (later expirations count as overruns,
 * as the kernel does), never twice, with its payload. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tlib.h"

int main(void)
{
	struct itimerspec its = { { 0, 100000000 }, { 0, 100000000 } }, now;
	struct timespec zero = { 0, 0 };
	struct sigevent ev;
	sigset_t rt;
	siginfo_t si;
	timer_t t;
	int n = 0, r, overruns = 0;

	tl_init();
	sigemptyset(&rt);
	sigaddset(&rt, SIGRTMIN + 4);
	sigprocmask(SIG_BLOCK, &rt, NULL);
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = SIGRTMIN + 4;
	ev.sigev_value.sival_int = 77;
	TL_CHECK(!timer_create(CLOCK_MONOTONIC, &ev, &t), "timer_create");
	TL_CHECK(!timer_settime(t, 0, &its, NULL), "timer_settime");
	usleep(350000);
	tl_ready();
	tl_wait_go();
	usleep(350000);
	while ((r = sigtimedwait(&rt, &si, &zero)) > 0) {
		printf("signal %d, code %d, value %d, overrun %d\n", r, si.si_code,
		       si.si_value.sival_int, si.si_overrun);
		TL_CHECK(si.si_code == SI_TIMER && si.si_value.sival_int == 77,
			 "not the timer's signal (code %d, value %d)", si.si_code,
			 si.si_value.sival_int);
		overruns += si.si_overrun;
		n++;
	}
	TL_CHECK(n == 1, "expected the timer's signal pending once, got it %d times", n);
	TL_CHECK(overruns >= 2, "later expirations were not counted as overruns (%d)", overruns);
	TL_CHECK(!timer_gettime(t, &now) && now.it_interval.tv_nsec == 100000000,
		 "the timer lost its period");
	tl_pass();
}
