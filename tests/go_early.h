/* Restart tests: a go handler that also covers the go signal arriving between the
 * restore and the re-issued system call. cryo resumes an interrupted call by running
 * its syscall instruction again (docs/RESTART.md); a signal handled just before that
 * acts as if it had come a moment before the call, and pause() would then wait for
 * a signal that already came. Found in front of that instruction, the handler
 * completes the call with -EINTR itself, as if the signal had interrupted it. */
#ifndef GO_EARLY_H
#define GO_EARLY_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include "tlib.h"

static long go_nr;		/* the system call the test waits in */
static volatile int go_early;	/* the go signal came before the call was re-entered */

static void go_handler(int sig, siginfo_t *si, void *ctx)
{
	greg_t *g = ((ucontext_t *)ctx)->uc_mcontext.gregs;

	(void)sig;
	(void)si;
	tl_go = 1;
	if (g[REG_RAX] != go_nr || *(const uint16_t *)(uintptr_t)g[REG_RIP] != 0x050f)
		return;
	g[REG_RAX] = -EINTR;
	g[REG_RIP] += 2;
	go_early = 1;
}

/* Replace tl_init's go handler (call after it); nr: the call waited in. */
static inline void go_early_init(long nr)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = go_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	go_nr = nr;
	TL_CHECK(!sigaction(SIGUSR1, &sa, NULL), "sigaction");
}

#endif
