/* Syscall restart: an untimed FUTEX_WAIT on a private futex keeps waiting after
 * restore; the go handler (SA_RESTART) changes the word, so the wait the kernel
 * restarts after it fails with EAGAIN. EINTR or an earlier return is a failure. */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tlib.h"

static volatile uint32_t word;

static void on_go(int sig)
{
	(void)sig;
	word = 1;
	tl_go = 1;
}

int main(void)
{
	struct sigaction sa;
	long r;
	int err;

	tl_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_go;
	sa.sa_flags = SA_RESTART;
	TL_CHECK(!sigaction(SIGUSR1, &sa, NULL), "sigaction");
	tl_ready();
	r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	err = errno;
	TL_CHECK(tl_go, "FUTEX_WAIT returned %ld (%s) before the go signal", r,
		 r < 0 ? strerror(err) : "woken");
	TL_CHECK(r == -1 && err == EAGAIN, "FUTEX_WAIT returned %ld (%s), expected EAGAIN", r,
		 r < 0 ? strerror(err) : "woken");
	tl_pass();
}
