/* Syscall restart: poll() without a timeout on an fd that is never ready keeps
 * waiting after restore; it returns EINTR only because the go signal's handler ran. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/syscall.h>

#include "go_early.h"
#include "tlib.h"

int main(void)
{
	/* A negative fd is never ready; the kernel still reads the array. */
	struct pollfd pfd = { .fd = -1, .events = POLLIN };
	int r, err;

	tl_init();
	go_early_init(SYS_poll);
	tl_ready();
	r = poll(&pfd, 1, -1);
	err = errno;
	TL_CHECK(tl_go, "poll() returned %d (%s) before the go signal", r,
		 r < 0 ? strerror(err) : "ready");
	TL_CHECK(r == -1 && err == EINTR, "poll() returned %d (%s), expected EINTR", r,
		 r < 0 ? strerror(err) : "ready");
	TL_CHECK(pfd.revents == 0, "revents 0x%x", pfd.revents);
	if (go_early)
		printf("the go signal came just before poll() was re-entered\n");
	tl_pass();
}
