/* Thread churn: four workers each create and join short-lived threads in a tight
 * loop, so threads are born and end while cryo freezes the process. After restore
 * every worker keeps going, and each counted as many joins as creations, each
 * short-lived thread ran once and returned what it was given. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "tlib.h"

#define NR_WORKERS 4
#define PROGRESS_AFTER_GO 200	/* joins each worker must add after go */

struct worker {
	pthread_t thread;
	atomic_long created;
	atomic_long joined;
	atomic_long ran;	/* short-lived threads that started */
	atomic_long bad;	/* wrong results or failed calls */
	char why[128];
};

static struct worker workers[NR_WORKERS];
static atomic_int stop;

struct job {
	struct worker *w;
	long n;
};

static void *short_lived(void *arg)
{
	struct job *j = arg;

	atomic_fetch_add(&j->w->ran, 1);
	return (void *)(j->n * 3 + 1);
}

static void worker_failed(struct worker *w, const char *what, int err)
{
	if (atomic_fetch_add(&w->bad, 1) == 0)
		snprintf(w->why, sizeof(w->why), "%s: %s", what, strerror(err));
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct job job = { w, 0 };

	while (!atomic_load(&stop)) {
		pthread_t th;
		void *res;
		int rc;

		job.n++;
		rc = pthread_create(&th, NULL, short_lived, &job);
		if (rc) {
			worker_failed(w, "pthread_create", rc);
			if (rc == EAGAIN)
				continue;
			break;
		}
		atomic_fetch_add(&w->created, 1);
		rc = pthread_join(th, &res);
		if (rc) {
			worker_failed(w, "pthread_join", rc);
			break;
		}
		atomic_fetch_add(&w->joined, 1);
		if (res != (void *)(job.n * 3 + 1))
			worker_failed(w, "wrong result from a short-lived thread", 0);
	}
	return NULL;
}

static long min_joined(void)
{
	long m = -1;

	for (int i = 0; i < NR_WORKERS; i++)
		if (m < 0 || atomic_load(&workers[i].joined) < m)
			m = atomic_load(&workers[i].joined);
	return m;
}

/* Every worker adds n joins within a generous deadline. */
static void wait_progress(long n, const char *when)
{
	long base[NR_WORKERS];
	double end = tl_now() + 30;

	for (int i = 0; i < NR_WORKERS; i++)
		base[i] = atomic_load(&workers[i].joined);
	for (int i = 0; i < NR_WORKERS; i++)
		while (atomic_load(&workers[i].joined) - base[i] < n) {
			TL_CHECK(tl_now() < end, "worker %d stopped %s: %ld joins in 30 s", i, when,
				 atomic_load(&workers[i].joined) - base[i]);
			usleep(1000);
		}
}

int main(void)
{
	sigset_t usr1;
	int bad = 0;

	tl_init();
	/* Workers and their threads inherit a mask blocking the go signal. It stays
	 * blocked here too: tl_wait_go's sigsuspend unblocks it atomically, so a go
	 * signal sent while this thread is not yet inside sigsuspend (just restored,
	 * waiting for a CPU among the busy workers) is not lost. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	for (int i = 0; i < NR_WORKERS; i++)
		TL_CHECK(!pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]),
			 "pthread_create worker %d", i);
	wait_progress(PROGRESS_AFTER_GO, "before the dump");
	tl_ready();
	tl_wait_go();
	printf("at go: at least %ld threads created and joined per worker\n", min_joined());
	wait_progress(PROGRESS_AFTER_GO, "after restore");
	atomic_store(&stop, 1);
	for (int i = 0; i < NR_WORKERS; i++) {
		struct worker *w = &workers[i];

		pthread_join(w->thread, NULL);
		printf("worker %d: %ld created, %ld joined, %ld ran\n", i,
		       atomic_load(&w->created), atomic_load(&w->joined), atomic_load(&w->ran));
		if (atomic_load(&w->bad)) {
			printf("worker %d: %ld failures, first: %s\n", i, atomic_load(&w->bad),
			       w->why);
			bad++;
		} else if (atomic_load(&w->created) != atomic_load(&w->joined) ||
			   atomic_load(&w->ran) != atomic_load(&w->created)) {
			printf("worker %d: counts disagree\n", i);
			bad++;
		}
	}
	TL_CHECK(!bad, "%d workers went wrong", bad);
	tl_pass();
}
