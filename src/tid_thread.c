/* cryo's own threads during a restore, each started with a TID the image does not
 * need (tid_thread.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "tid_thread.h"

static void *tid_thread_main(void *arg)
{
	struct tid_thread *t = arg;

	pthread_mutex_lock(&t->lock);
	t->tid = gettid();
	pthread_cond_broadcast(&t->cond);
	while (!t->go)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	return t->go < 0 ? NULL : t->fn(t->arg);
}

static bool tid_needed(const struct restore_ctx *ctx, pid_t tid)
{
	for (size_t i = 0; i < ctx->nr_tree_pids; i++)
		if ((pid_t)ctx->tree_pids[i] == tid)
			return true;
	return false;
}

/* pthread_join returns once the kernel clears the thread's TID word, before the
 * thread is released and its TID free: wait for that too (briefly). */
static void wait_tid_gone(pid_t tid)
{
	struct timespec pause_ts = { 0, 1000000 };
	char path[48];

	snprintf(path, sizeof(path), "/proc/self/task/%d", tid);
	for (int i = 0; i < 1000 && !access(path, F_OK); i++)
		nanosleep(&pause_ts, NULL);
}

static void tell(struct tid_thread *t, int go)
{
	pthread_mutex_lock(&t->lock);
	t->go = go;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

int tid_thread_start(struct tid_thread *t, const struct restore_ctx *ctx, void *(*fn)(void *),
		     void *arg)
{
	memset(t, 0, sizeof(*t));
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	for (int tries = 0; tries < 64; tries++) {
		t->tid = 0;
		t->go = 0;
		if (pthread_create(&t->thread, NULL, tid_thread_main, t))
			return cr_err("cannot start a thread of cryo");
		pthread_mutex_lock(&t->lock);
		while (!t->tid)
			pthread_cond_wait(&t->cond, &t->lock);
		pthread_mutex_unlock(&t->lock);
		if (!tid_needed(ctx, t->tid)) {
			t->started = true;
			tell(t, 1);
			return 0;
		}
		/* The kernel hands out the next free number: quit, try again. */
		pr_debug("a thread of cryo got TID %d, which the image needs", t->tid);
		tell(t, -1);
		pthread_join(t->thread, NULL);
		wait_tid_gone(t->tid);
	}
	return cr_err("cannot start a thread of cryo with a TID the image does not need");
}

void tid_thread_join(struct tid_thread *t)
{
	if (!t->started)
		return;
	pthread_join(t->thread, NULL);
	t->started = false;
}
