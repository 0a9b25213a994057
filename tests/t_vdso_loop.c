/* clock_gettime in a tight loop in two threads (each of which first calls write()
 * once, leaving a stale return address on its stack), dumped and restored 100 times
 * with a forced vDSO proxy: each dump may catch a thread inside vDSO code, which cryo
 * must bring out first. Time must never go backwards and must stay in step with the
 * system call. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "tlib.h"
#include "vdso_calls.h"

#define NR_THREADS 2

static atomic_int stop;
static atomic_long calls;

static void *loop(void *arg)
{
	struct timespec prev = { 0, 0 }, now, sys;
	sigset_t usr1;
	long n = 0;

	(void)arg;
	if (write(1, "", 0) < 0)
		return "write";
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	while (!atomic_load(&stop)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (ts_ns(&now) < ts_ns(&prev))
			return "CLOCK_MONOTONIC went backwards";
		prev = now;
		if (++n % 4096 == 0) {
			syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &sys);
			if (ts_ns(&sys) < ts_ns(&now) || ts_ns(&sys) - ts_ns(&now) > 1000000000LL)
				return "clock_gettime is out of step with the system call";
		}
	}
	atomic_fetch_add(&calls, n);
	return NULL;
}

int main(void)
{
	pthread_t th[NR_THREADS];
	const char *why = NULL;

	tl_init();
	for (int i = 0; i < NR_THREADS; i++)
		pthread_create(&th[i], NULL, loop, NULL);
	printf("REPEAT-DUMPS 100\nRESTORE-ARG --vdso=proxy\n");
	tl_ready();
	tl_wait_go();
	usleep(100000);
	atomic_store(&stop, 1);
	for (int i = 0; i < NR_THREADS; i++) {
		void *rc;

		pthread_join(th[i], &rc);
		if (rc)
			why = rc;
	}
	TL_CHECK(!why, "%s", why);
	printf("%ld clock_gettime calls\n", atomic_load(&calls));
	tl_pass();
}
