/* A process without rseq (glibc told not to register one) and a thread that
 * registered its own area: after restore the first still has none (registering
 * now succeeds) and the second still has exactly its own (registering again says
 * EBUSY). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tlib.h"

static struct rseq own __attribute__((aligned(32)));
static volatile int registered, checked;
static int own_result = -1;

static long rseq_call(struct rseq *area, int flags)
{
	return syscall(SYS_rseq, area, sizeof(*area), flags, RSEQ_SIG);
}

static void *with_own_rseq(void *arg)
{
	sigset_t usr1;

	(void)arg;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	if (rseq_call(&own, 0))
		return (void *)"cannot register an rseq area";
	registered = 1;
	while (!checked)
		usleep(1000);
	errno = 0;
	own_result = rseq_call(&own, 0) == -1 ? errno : 0;
	return NULL;
}

int main(int argc, char **argv)
{
	static struct rseq mine __attribute__((aligned(32)));
	const char *tun = getenv("GLIBC_TUNABLES");
	pthread_t th;
	void *rc;

	if (!tun || !strstr(tun, "glibc.pthread.rseq=0")) {
		setenv("GLIBC_TUNABLES", "glibc.pthread.rseq=0", 1);
		execv("/proc/self/exe", argv);
		tl_fail("cannot re-exec without rseq");
	}
	(void)argc;
	tl_init();
	TL_CHECK(__rseq_size == 0, "glibc registered rseq despite the tunable");
	pthread_create(&th, NULL, with_own_rseq, NULL);
	while (!registered)
		usleep(1000);
	tl_ready();
	tl_wait_go();
	/* The main thread has no registration: registering works (then undo it). */
	TL_CHECK(rseq_call(&mine, 0) == 0, "the main thread got an rseq registration back "
		 "it never had (%s)", strerror(errno));
	TL_CHECK(rseq_call(&mine, RSEQ_FLAG_UNREGISTER) == 0, "cannot unregister");
	checked = 1;
	pthread_join(th, &rc);
	TL_CHECK(!rc, "%s", (char *)rc);
	TL_CHECK(own_result == EBUSY, "the thread's own rseq area is not registered after "
		 "restore (rseq gave %s)", own_result ? strerror(own_result) : "success");
	tl_pass();
}
