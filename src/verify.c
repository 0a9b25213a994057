/* The page files' checksums, checked by a thread of cryo while the tree is being
 * made. The thread holds a TID, and one the image needs would make the restore fail:
 * it says its TID first and waits for a go, and is replaced if the TID is needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "lazy.h"
#include "log.h"
#include "verify.h"

static void *verify_main(void *arg)
{
	struct verifier *v = arg;
	struct restore_ctx *ctx = v->ctx;

	pthread_mutex_lock(&v->lock);
	v->tid = gettid();
	pthread_cond_broadcast(&v->cond);
	while (!v->go)
		pthread_cond_wait(&v->cond, &v->lock);
	pthread_mutex_unlock(&v->lock);
	if (v->go < 0)
		return NULL;
	for (size_t i = 0; i < ctx->nr_procs && !v->rc; i++) {
		const struct restore_proc *rp = ctx->procs[i];

		if (rp->zombie)
			continue;
		/* Its own page file, then those of a pre-dump chain it reads from; lazily
		 * restored bytes are checked by the supplier as it reads them. */
		for (size_t k = 0; k < rp->nr_srcs && !v->rc; k++) {
			const struct page_src *s = &rp->srcs[k];
			bool *want = lazy_eager_chunks(rp, k);

			if (rp->lazy && !want) {
				v->rc = cr_err("out of memory");
				break;
			}
			v->rc = img_verify_chunks(s->dir, s->pm->pages_file, s->fd, s->bytes,
						  s->pm->chunk_size, s->pm->chunk_crc32c,
						  s->pm->n_chunk_crc32c, want);
			free(want);
		}
	}
	return NULL;
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

static void tell(struct verifier *v, int go)
{
	pthread_mutex_lock(&v->lock);
	v->go = go;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

int verify_start(struct verifier *v, struct restore_ctx *ctx)
{
	memset(v, 0, sizeof(*v));
	v->ctx = ctx;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	for (int tries = 0; tries < 64; tries++) {
		v->tid = 0;
		v->go = 0;
		if (pthread_create(&v->thread, NULL, verify_main, v))
			return cr_err("cannot start the page verifier");
		pthread_mutex_lock(&v->lock);
		while (!v->tid)
			pthread_cond_wait(&v->cond, &v->lock);
		pthread_mutex_unlock(&v->lock);
		if (!tid_needed(ctx, v->tid)) {
			v->started = true;
			tell(v, 1);
			return 0;
		}
		/* The kernel hands out the next free number: quit, try again. */
		pr_debug("page verifier got TID %d, which the image needs", v->tid);
		tell(v, -1);
		pthread_join(v->thread, NULL);
		wait_tid_gone(v->tid);
	}
	return cr_err("cannot start the page verifier with a TID the image does not need");
}

int verify_finish(struct verifier *v)
{
	if (!v->started)
		return 0;
	pthread_join(v->thread, NULL);
	v->started = false;
	return v->rc;
}
