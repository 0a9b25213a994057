/* Seizing converges under a signal storm: four threads, each the target of its own
 * POSIX timer firing every 50 us (SIGEV_THREAD_ID), dumped and restored 30 times. A
 * signal that arrives before cryo's interrupt consumes it; cryo must ask again rather
 * than wait for a stop that never comes. Every thread's handler keeps counting. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tlib.h"

#define NR 4

static atomic_long hits[NR];
static atomic_int started, stop;
static __thread int me = -1;

static void on_tick(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (me >= 0 && si->si_value.sival_int == me)
		atomic_fetch_add(&hits[me], 1);
}

static void *worker(void *arg)
{
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGRTMIN };
	struct itimerspec its = { { 0, 50000 }, { 0, 50000 } };
	timer_t t;

	tl_thread_start();
	me = (int)(long)arg;
	sev.sigev_value.sival_int = me;
	sev._sigev_un._tid = syscall(SYS_gettid);
	if (timer_create(CLOCK_MONOTONIC, &sev, &t) || timer_settime(t, 0, &its, NULL))
		return "timer";
	atomic_fetch_add(&started, 1);
	while (!atomic_load(&stop))
		;
	return NULL;
}

int main(void)
{
	struct sigaction sa;
	pthread_t th[NR];
	long before[NR];

	tl_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_tick;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGRTMIN, &sa, NULL);
	for (long i = 0; i < NR; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	while (atomic_load(&started) < NR)
		usleep(1000);
	printf("REPEAT-DUMPS 30\n");
	tl_ready();
	tl_wait_go();
	for (int i = 0; i < NR; i++)
		before[i] = atomic_load(&hits[i]);
	/* Each timer fires every 50 us: on a loaded machine a thread may not run for a
	 * while, so wait for it (10 s at most) rather than for a fixed time. */
	for (int i = 0; i < NR; i++) {
		double end = tl_now() + 10;

		while (atomic_load(&hits[i]) <= before[i] && tl_now() < end)
			usleep(1000);
		TL_CHECK(atomic_load(&hits[i]) > before[i], "thread %d's timer stopped", i);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < NR; i++) {
		void *rc;

		pthread_join(th[i], &rc);
		TL_CHECK(!rc, "%s", (char *)rc);
	}
	tl_pass();
}
