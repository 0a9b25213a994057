/* The victim of the cryo-killing test: the harness kills `cryo dump` at random moments
 * (KILL-CRYO), with and without --leave-running. Whatever instant cryo dies at, this
 * process must go on as if never touched: memory, threads (one in a clock_gettime
 * loop inside the vDSO, one in nanosleep, one computing), a periodic POSIX timer and
 * ITIMER_REAL still firing, its signal mask, a pending blocked signal with its value,
 * a SIGTRAP handler, a sigaltstack and no extra mapping. Also run in the usual modes. */
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

#define MEM_LEN (4u << 20)
#define PAYLOAD 0x5eed

static uint8_t *mem;
static atomic_long ticks_timer, ticks_alarm, traps, beats[3];
static atomic_int stop;
static timer_t timer;
static char altstack[64 << 10];

static void on_timer(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_code == SI_TIMER && si->si_value.sival_int == PAYLOAD)
		atomic_fetch_add(&ticks_timer, 1);
}

static void on_alarm(int sig)
{
	(void)sig;
	atomic_fetch_add(&ticks_alarm, 1);
}

static void on_trap(int sig)
{
	(void)sig;
	atomic_fetch_add(&traps, 1);
}

static void *vdso_loop(void *arg)
{
	struct timespec prev = { 0, 0 }, now;

	(void)arg;
	tl_thread_start();
	while (!atomic_load(&stop)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec < prev.tv_sec ||
		    (now.tv_sec == prev.tv_sec && now.tv_nsec < prev.tv_nsec))
			return "CLOCK_MONOTONIC went backwards";
		prev = now;
		atomic_fetch_add(&beats[0], 1);
	}
	return NULL;
}

static void *sleeper(void *arg)
{
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };

	(void)arg;
	tl_thread_start();
	if (sigaltstack(&ss, NULL))
		return "sigaltstack";
	while (!atomic_load(&stop)) {
		struct timespec t = { 0, 2000000 };

		while (nanosleep(&t, &t) && errno == EINTR)
			;
		atomic_fetch_add(&beats[1], 1);
	}
	if (sigaltstack(NULL, &ss) || ss.ss_sp != altstack || ss.ss_size != sizeof(altstack))
		return "the sleeper's sigaltstack changed";
	return NULL;
}

static void *computer(void *arg)
{
	uint64_t x = 1;

	(void)arg;
	tl_thread_start();
	while (!atomic_load(&stop)) {
		for (int i = 0; i < 100000; i++)
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		if (x == 42)
			printf("unlikely\n");
		atomic_fetch_add(&beats[2], 1);
	}
	return NULL;
}

static void start_timers(void)
{
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN };
	struct itimerspec its = { { 0, 7000000 }, { 0, 7000000 } };
	struct itimerval itv = { { 0, 11000 }, { 0, 11000 } };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_timer;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGRTMIN, &sa, NULL);
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = on_trap;
	sa.sa_flags = 0;
	sigaction(SIGTRAP, &sa, NULL);
	sev.sigev_value.sival_int = PAYLOAD;
	TL_CHECK(!timer_create(CLOCK_MONOTONIC, &sev, &timer), "timer_create");
	TL_CHECK(!timer_settime(timer, 0, &its, NULL), "timer_settime");
	TL_CHECK(!setitimer(ITIMER_REAL, &itv, NULL), "setitimer");
}

static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0, c;

	while (f && (c = fgetc(f)) != EOF)
		n += c == '\n';
	if (f)
		fclose(f);
	return n;
}

/* Every counter must move while the process lives on. */
static void check_alive(void)
{
	long t0 = atomic_load(&ticks_timer), a0 = atomic_load(&ticks_alarm), b0[3];
	struct timespec pause_ts = { 0, 300000000 };

	for (int i = 0; i < 3; i++)
		b0[i] = atomic_load(&beats[i]);
	while (nanosleep(&pause_ts, &pause_ts) && errno == EINTR)
		;
	TL_CHECK(atomic_load(&ticks_timer) > t0, "the POSIX timer stopped firing");
	TL_CHECK(atomic_load(&ticks_alarm) > a0, "ITIMER_REAL stopped firing");
	for (int i = 0; i < 3; i++)
		TL_CHECK(atomic_load(&beats[i]) > b0[i], "thread %d stopped", i);
}

static void check_state(sigset_t *want_mask, int maps_before)
{
	struct timespec zero = { 0, 0 };
	sigset_t mask, usr2;
	siginfo_t si;
	long off = tl_verify(mem, MEM_LEN, 7);
	struct itimerspec its;

	TL_CHECK(off < 0, "memory differs at offset %ld", off);
	pthread_sigmask(SIG_SETMASK, NULL, &mask);
	TL_CHECK(sigismember(&mask, SIGUSR2) && sigismember(&mask, SIGPIPE) &&
		 !sigismember(&mask, SIGALRM), "the signal mask changed");
	(void)want_mask;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	TL_CHECK(sigtimedwait(&usr2, &si, &zero) == SIGUSR2, "the pending SIGUSR2 is gone");
	TL_CHECK(si.si_value.sival_int == PAYLOAD, "the pending SIGUSR2 lost its value");
	TL_CHECK(sigtimedwait(&usr2, &si, &zero) < 0, "SIGUSR2 is pending twice");
	TL_CHECK(!timer_gettime(timer, &its) && its.it_interval.tv_nsec == 7000000,
		 "the POSIX timer lost its interval");
	raise(SIGTRAP);
	TL_CHECK(atomic_load(&traps) == 1, "the SIGTRAP handler did not run");
	if (count_maps() > maps_before) {
		char line[512];
		FILE *f = fopen("/proc/self/maps", "r");

		while (f && fgets(line, sizeof(line), f))
			fputs(line, stdout);
		tl_fail("%d mappings, %d before", count_maps(), maps_before);
	}
}

int main(void)
{
	pthread_t th[3];
	void *(*fn[3])(void *) = { vdso_loop, sleeper, computer };
	sigset_t block;
	int maps_before;

	tl_init();
	mem = malloc(MEM_LEN);
	tl_fill(mem, MEM_LEN, 7);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	TL_CHECK(!sigqueue(getpid(), SIGUSR2, (union sigval){ .sival_int = PAYLOAD }), "sigqueue");
	start_timers();
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, fn[i], NULL);
	check_alive();
	maps_before = count_maps();
	printf("KILL-CRYO 200\n");
	tl_ready();
	tl_wait_go();
	check_alive();
	check_state(&block, maps_before);
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++) {
		void *rc;

		pthread_join(th[i], &rc);
		TL_CHECK(!rc, "%s", (const char *)rc);
	}
	tl_pass();
}
