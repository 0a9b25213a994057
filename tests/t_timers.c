/* Interval timers across dump and restore: ITIMER_REAL (SIGALRM) and three POSIX
 * timers (SIGEV_SIGNAL with a payload on CLOCK_REALTIME, SIGEV_THREAD_ID aimed at one
 * thread, CLOCK_MONOTONIC) keep firing at their period, with their payloads, ids
 * and target thread, and timer_gettime on the same timer_t shows the same interval. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tlib.h"

#define ITIMER_NS 50000000LL
#define SETTLE_S 0.2	/* expirations from the frozen time arrive within this */
#define WINDOW_S 1.0

struct ptimer {
	const char *what;
	clockid_t clock;
	int notify;
	int sigoff;		/* signal: SIGRTMIN + sigoff */
	long long period_ns;
	uint64_t payload;
	timer_t id;
	atomic_long expirations;	/* signals + overruns */
	atomic_long bad;
	char why[160];			/* the first bad signal */
};

enum { T_SIGNAL, T_THREAD, T_MONO, NR_TIMERS };

static struct ptimer timers[NR_TIMERS] = {
	[T_SIGNAL] = { "SIGEV_SIGNAL/CLOCK_REALTIME", CLOCK_REALTIME, SIGEV_SIGNAL, 1, 40000000LL,
		       0xfeedface12345678ULL },
	[T_THREAD] = { "SIGEV_THREAD_ID", CLOCK_REALTIME, SIGEV_THREAD_ID, 2, 30000000LL,
		       0x7711ULL },
	[T_MONO] = { "SIGEV_SIGNAL/CLOCK_MONOTONIC", CLOCK_MONOTONIC, SIGEV_SIGNAL, 3, 25000000LL,
		     0x3333ULL },
};

static atomic_long alarms;
static pid_t target_tid;
static volatile int target_ready;

static void on_alarm(int sig)
{
	(void)sig;
	atomic_fetch_add(&alarms, 1);
}

static void bad_signal(struct ptimer *t, const char *why, long have, long want)
{
	if (atomic_fetch_add(&t->bad, 1) == 0)
		snprintf(t->why, sizeof(t->why), "%s: %ld, expected %ld", why, have, want);
}

static void on_timer(int sig, siginfo_t *si, void *uc)
{
	struct ptimer *t = &timers[sig - SIGRTMIN - 1];
	int saved = errno;

	(void)uc;
	if (si->si_code != SI_TIMER)
		bad_signal(t, "si_code", si->si_code, SI_TIMER);
	else if ((uint64_t)si->si_value.sival_ptr != t->payload)
		bad_signal(t, "sigev_value", (long)si->si_value.sival_ptr, (long)t->payload);
	else if (si->si_timerid != (int)(intptr_t)t->id)
		bad_signal(t, "si_timerid", si->si_timerid, (long)(intptr_t)t->id);
	else if (t->notify == SIGEV_THREAD_ID && syscall(SYS_gettid) != target_tid)
		bad_signal(t, "handler ran in thread", syscall(SYS_gettid), target_tid);
	atomic_fetch_add(&t->expirations, 1 + (si->si_overrun > 0 ? si->si_overrun : 0));
	errno = saved;
}

/* Everything but the SIGEV_THREAD_ID timer's signal goes to the main thread. */
static void block_process_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGALRM);
	for (int i = 0; i < NR_TIMERS; i++)
		if (i != T_THREAD)
			sigaddset(&set, SIGRTMIN + timers[i].sigoff);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* The thread the SIGEV_THREAD_ID timer aims at: only its signal reaches it. */
static void *target_main(void *arg)
{
	(void)arg;
	block_process_signals();
	target_tid = syscall(SYS_gettid);
	target_ready = 1;
	for (;;)
		pause();
	return NULL;
}

static struct timespec ns_ts(long long ns)
{
	struct timespec ts = { ns / 1000000000LL, ns % 1000000000LL };

	return ts;
}

static long long ts_ns(const struct timespec *ts)
{
	return ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static void create_timer(struct ptimer *t)
{
	struct sigevent ev;
	struct itimerspec its = { ns_ts(t->period_ns), ns_ts(t->period_ns) };

	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = t->notify;
	ev.sigev_signo = SIGRTMIN + t->sigoff;
	ev.sigev_value.sival_ptr = (void *)t->payload;
	if (t->notify == SIGEV_THREAD_ID)
		ev._sigev_un._tid = target_tid;
	TL_CHECK(!timer_create(t->clock, &ev, &t->id), "timer_create (%s): %s", t->what,
		 strerror(errno));
	TL_CHECK(!timer_settime(t->id, 0, &its, NULL), "timer_settime (%s)", t->what);
}

static void setup(void)
{
	struct sigaction sa;
	struct itimerval itv = { { 0, ITIMER_NS / 1000 }, { 0, ITIMER_NS / 1000 } };
	pthread_t th;
	sigset_t usr1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_timer;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	for (int i = 0; i < NR_TIMERS; i++)
		TL_CHECK(!sigaction(SIGRTMIN + timers[i].sigoff, &sa, NULL), "sigaction");
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	TL_CHECK(!sigaction(SIGALRM, &sa, NULL), "sigaction SIGALRM");
	TL_CHECK(!pthread_create(&th, NULL, target_main, NULL), "pthread_create");
	while (!target_ready)
		usleep(1000);
	for (int i = 0; i < NR_TIMERS; i++)
		create_timer(&timers[i]);
	TL_CHECK(!setitimer(ITIMER_REAL, &itv, NULL), "setitimer");
	/* Only tl_wait_go's sigsuspend unblocks the go signal, atomically: one sent
	 * while this thread is not yet inside sigsuspend is not lost. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
}

/* Sleep until a CLOCK_MONOTONIC time, through the signals' interruptions. */
static void sleep_until(double t)
{
	struct timespec ts = { (time_t)t, (long)((t - (time_t)t) * 1e9) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void wait_firing(void)
{
	double end = tl_now() + 20;

	for (int i = 0; i < NR_TIMERS; i++)
		while (atomic_load(&timers[i].expirations) < 3) {
			TL_CHECK(tl_now() < end, "%s does not fire", timers[i].what);
			usleep(5000);
		}
	while (atomic_load(&alarms) < 3) {
		TL_CHECK(tl_now() < end, "ITIMER_REAL does not fire");
		usleep(5000);
	}
}

/* At least `low` of the expected count (POSIX timers count their overruns, so a
 * program kept off the CPU still sees them all), and not many more. */
static int check_count(const char *what, long n, double secs, long long period_ns, double low)
{
	double expect = secs * 1e9 / period_ns;

	printf("%-30s %4ld expirations in %.3f s, %.1f expected\n", what, n, secs, expect);
	if (n >= low * expect && n <= 1.5 * expect + 3)
		return 0;
	printf("  %s: %ld expirations is not close to %.1f\n", what, n, expect);
	return 1;
}

static int check_timer(struct ptimer *t)
{
	struct itimerspec its;

	if (atomic_load(&t->bad)) {
		printf("  %s: %ld bad signals, first: %s\n", t->what, atomic_load(&t->bad), t->why);
		return 1;
	}
	if (timer_gettime(t->id, &its)) {
		printf("  %s: timer_gettime on timer %ld: %s\n", t->what, (long)(intptr_t)t->id,
		       strerror(errno));
		return 1;
	}
	if (ts_ns(&its.it_interval) != t->period_ns || ts_ns(&its.it_value) <= 0 ||
	    ts_ns(&its.it_value) > t->period_ns) {
		printf("  %s: interval %lld ns, next in %lld ns; expected interval %lld ns\n",
		       t->what, ts_ns(&its.it_interval), ts_ns(&its.it_value), t->period_ns);
		return 1;
	}
	if (timer_getoverrun(t->id) < 0) {
		printf("  %s: timer_getoverrun: %s\n", t->what, strerror(errno));
		return 1;
	}
	return 0;
}

static int count_proc_timers(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/timers", "r");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += !strncmp(line, "ID:", 3);
	fclose(f);
	return n;
}

int main(void)
{
	long c0[NR_TIMERS], a0, bad = 0;
	struct itimerval itv;
	double t0, t1;

	tl_init();
	setup();
	wait_firing();
	tl_ready();
	tl_wait_go();
	sleep_until(tl_now() + SETTLE_S);
	t0 = tl_now();
	for (int i = 0; i < NR_TIMERS; i++)
		c0[i] = atomic_load(&timers[i].expirations);
	a0 = atomic_load(&alarms);
	sleep_until(t0 + WINDOW_S);
	t1 = tl_now();
	for (int i = 0; i < NR_TIMERS; i++)
		bad += check_count(timers[i].what, atomic_load(&timers[i].expirations) - c0[i],
				   t1 - t0, timers[i].period_ns, 0.6);
	/* SIGALRMs merge while the program waits for a CPU (a loaded machine under
	 * AddressSanitizer: 11 of 23.7), and an itimer has no overrun count: only firing
	 * is asked of it here, its interval is checked exactly below. */
	bad += check_count("ITIMER_REAL", atomic_load(&alarms) - a0, t1 - t0, ITIMER_NS, 0.04);
	for (int i = 0; i < NR_TIMERS; i++)
		bad += check_timer(&timers[i]);
	TL_CHECK(!getitimer(ITIMER_REAL, &itv), "getitimer");
	TL_CHECK(itv.it_interval.tv_sec == 0 && itv.it_interval.tv_usec == ITIMER_NS / 1000,
		 "ITIMER_REAL interval is %ld.%06ld s", (long)itv.it_interval.tv_sec,
		 (long)itv.it_interval.tv_usec);
	TL_CHECK(count_proc_timers() == NR_TIMERS, "/proc/self/timers lists %d timers, not %d",
		 count_proc_timers(), NR_TIMERS);
	TL_CHECK(!bad, "%ld timer checks failed", bad);
	tl_pass();
}
