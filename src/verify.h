/* The page files' checksums, checked by a thread of cryo while the tree is being
 * made; no process is released before every byte it will run with was checked. */
#ifndef CRYO_VERIFY_H
#define CRYO_VERIFY_H

#include <pthread.h>
#include <stdbool.h>

#include "task.h"

struct verifier {
	struct restore_ctx *ctx;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pid_t tid;
	int go;				/* 1 verify, -1 quit */
	int rc;
};

/* Start checking (in a thread whose TID the image does not need). */
int verify_start(struct verifier *v, struct restore_ctx *ctx);
/* Wait for the verdict: 0 if every page file is sound. */
int verify_finish(struct verifier *v);

#endif
