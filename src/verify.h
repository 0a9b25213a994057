/* The page files' checksums, checked by a thread of cryo while the tree is being
 * made; no process is released before every byte it will run with was checked. */
#ifndef CRYO_VERIFY_H
#define CRYO_VERIFY_H

#include "task.h"
#include "tid_thread.h"

struct verifier {
	struct restore_ctx *ctx;
	struct tid_thread thread;
	int rc;
};

/* Start checking (in a thread whose TID the image does not need). */
int verify_start(struct verifier *v, struct restore_ctx *ctx);
/* Wait for the verdict: 0 if every page file is sound. */
int verify_finish(struct verifier *v);

#endif
