/* Syscall restart: select() with a timeout and no fds, interrupted by the dump,
 * neither returns early nor fails with EINTR: it returns 0 once the whole timeout
 * has passed (SIGUSR1 is blocked meanwhile, the go signal is not needed). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/select.h>

#include "tlib.h"

#define TIMEOUT_S 3

int main(void)
{
	struct timeval tv = { TIMEOUT_S, 0 };
	double deadline, end;
	sigset_t usr1;
	int r, err;

	tl_init();
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	TL_CHECK(!sigprocmask(SIG_BLOCK, &usr1, NULL), "sigprocmask");
	tl_ready();
	deadline = tl_now() + TIMEOUT_S;
	r = select(0, NULL, NULL, NULL, &tv);
	err = errno;
	end = tl_now();
	TL_CHECK(r == 0, "select() returned %d (%s), expected 0 (timeout)", r,
		 r < 0 ? strerror(err) : "ready");
	TL_CHECK(end >= deadline, "select() returned %.3f s before its deadline",
		 deadline - end);
	printf("select() returned %.3f s after its deadline\n", end - deadline);
	tl_pass();
}
