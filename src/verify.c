/* The page files' checksums, checked by a thread of cryo (its TID one the image does
 * not need: tid_thread.c) while the tree is being made. */
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "lazy.h"
#include "log.h"
#include "verify.h"

static void *verify_main(void *arg)
{
	struct verifier *v = arg;
	struct restore_ctx *ctx = v->ctx;

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

int verify_start(struct verifier *v, struct restore_ctx *ctx)
{
	memset(v, 0, sizeof(*v));
	v->ctx = ctx;
	return tid_thread_start(&v->thread, ctx, verify_main, v);
}

int verify_finish(struct verifier *v)
{
	if (!v->thread.started)
		return 0;
	tid_thread_join(&v->thread);
	return v->rc;
}
