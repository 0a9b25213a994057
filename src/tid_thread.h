/* cryo's own threads during a restore (the page verifier, the page fill's helper).
 * Each holds a TID, and one the image needs would make the restore fail: the thread
 * says its TID and waits for a go; given a needed one, it quits and another is made. */
#ifndef CRYO_TID_THREAD_H
#define CRYO_TID_THREAD_H

#include <pthread.h>
#include <stdbool.h>

#include "task.h"

struct tid_thread {
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pid_t tid;
	int go;				/* 1 run, -1 quit */
	void *(*fn)(void *);
	void *arg;
};

/* Run fn(arg) in a thread whose TID no process or thread of the image has. */
int tid_thread_start(struct tid_thread *t, const struct restore_ctx *ctx, void *(*fn)(void *),
		     void *arg);
/* Wait for fn to return (nothing if it was not started). */
void tid_thread_join(struct tid_thread *t);

#endif
