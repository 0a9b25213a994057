/* Syscall restart: a thread blocked in sigsuspend() with a temporary mask keeps
 * waiting with that mask after restore, and its real blocked mask is back exactly
 * once sigsuspend() returns. The go signal is blocked outside the call, as
 * sigsuspend() is meant to be used. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tlib.h"

static volatile uint64_t handler_mask;

static uint64_t raw_mask(void)
{
	uint64_t m = 0;

	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, sizeof(m));
	return m;
}

static void on_go(int sig)
{
	(void)sig;
	handler_mask = raw_mask();
	tl_go = 1;
}

static uint64_t bit(int sig)
{
	return 1ULL << (sig - 1);
}

static void set_of(uint64_t bits, sigset_t *set)
{
	sigemptyset(set);
	for (int sig = 1; sig <= 64; sig++)
		if (bits & bit(sig))
			sigaddset(set, sig);
}

int main(void)
{
	const uint64_t real = bit(SIGUSR1) | bit(SIGUSR2) | bit(SIGTERM) | bit(SIGWINCH) |
			      bit(SIGRTMIN + 3) | bit(SIGRTMAX);
	const uint64_t temp = bit(SIGHUP) | bit(SIGQUIT) | bit(SIGTTIN) | bit(SIGRTMIN + 5);
	struct sigaction sa;
	sigset_t real_set, temp_set;
	int r, err;

	tl_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_go;
	sa.sa_flags = SA_RESTART;
	TL_CHECK(!sigaction(SIGUSR1, &sa, NULL), "sigaction");
	set_of(real, &real_set);
	set_of(temp, &temp_set);
	TL_CHECK(!sigprocmask(SIG_SETMASK, &real_set, NULL), "sigprocmask");
	TL_CHECK(raw_mask() == real, "mask 0x%llx not set", (unsigned long long)raw_mask());
	tl_ready();
	r = sigsuspend(&temp_set);
	err = errno;
	TL_CHECK(tl_go, "sigsuspend() returned %d (%s) before the go signal", r, strerror(err));
	TL_CHECK(r == -1 && err == EINTR, "sigsuspend() returned %d (%s), not EINTR", r,
		 strerror(err));
	/* The handler ran under the temporary mask plus its own signal. */
	TL_CHECK(handler_mask == (temp | bit(SIGUSR1)),
		 "mask in the handler is 0x%llx, expected 0x%llx (temporary mask + SIGUSR1)",
		 (unsigned long long)handler_mask, (unsigned long long)(temp | bit(SIGUSR1)));
	TL_CHECK(raw_mask() == real, "blocked mask after sigsuspend is 0x%llx, expected 0x%llx",
		 (unsigned long long)raw_mask(), (unsigned long long)real);
	tl_pass();
}
