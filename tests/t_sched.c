/* Per-thread scheduling state across restore: nice values, a SCHED_BATCH thread,
 * CPU affinity, I/O priority, and the process's oom_score_adj. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tlib.h"

#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_PRIO(class, data) (((class) << 13) | (data))

static volatile int go2;
static const char *thread_fail;

static void *worker(void *arg)
{
	struct sched_param sp = { 0 };
	sigset_t usr1;
	cpu_set_t cpus;

	(void)arg;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	if (sched_setscheduler(0, SCHED_BATCH, &sp) || setpriority(PRIO_PROCESS, gettid(), 3) ||
	    sched_setaffinity(0, sizeof(cpus), &cpus) ||
	    syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_PRIO(2, 6)))
		thread_fail = "cannot set up the thread";
	go2 = 1;
	while (go2 != 2)
		usleep(1000);
	CPU_ZERO(&cpus);
	sched_getaffinity(0, sizeof(cpus), &cpus);
	if (sched_getscheduler(0) != SCHED_BATCH)
		thread_fail = "the thread lost SCHED_BATCH";
	else if (getpriority(PRIO_PROCESS, gettid()) != 3)
		thread_fail = "the thread's nice value changed";
	else if (CPU_COUNT(&cpus) != 1 || !CPU_ISSET(0, &cpus))
		thread_fail = "the thread's CPU affinity changed";
	else if (syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0) != IOPRIO_PRIO(2, 6))
		thread_fail = "the thread's I/O priority changed";
	return NULL;
}

int main(void)
{
	pthread_t th;
	FILE *f;
	int oom = 0;

	tl_init();
	TL_CHECK(!setpriority(PRIO_PROCESS, 0, 7), "setpriority");
	f = fopen("/proc/self/oom_score_adj", "w");
	TL_CHECK(f && fprintf(f, "200") > 0 && !fclose(f), "cannot set oom_score_adj");
	pthread_create(&th, NULL, worker, NULL);
	while (!go2)
		usleep(1000);
	TL_CHECK(!thread_fail, "%s", thread_fail);
	tl_ready();
	tl_wait_go();
	TL_CHECK(getpriority(PRIO_PROCESS, 0) == 7, "the main thread's nice is %d, not 7",
		 getpriority(PRIO_PROCESS, 0));
	TL_CHECK(sched_getscheduler(0) == SCHED_OTHER, "the main thread's policy changed");
	f = fopen("/proc/self/oom_score_adj", "r");
	TL_CHECK(f && fscanf(f, "%d", &oom) == 1, "cannot read oom_score_adj");
	fclose(f);
	TL_CHECK(oom == 200, "oom_score_adj is %d, not 200", oom);
	go2 = 2;
	pthread_join(th, NULL);
	TL_CHECK(!thread_fail, "%s", thread_fail);
	tl_pass();
}
