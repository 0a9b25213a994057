/* Syscall restart: a thread blocked in pause() at dump time keeps waiting after
 * restore; pause() returns only once the go signal's handler ran. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "go_early.h"
#include "tlib.h"

int main(void)
{
	int r, err;

	tl_init();
	go_early_init(SYS_pause);
	tl_ready();
	r = pause();
	err = errno;
	TL_CHECK(tl_go, "pause() returned %d (%s) before the go signal", r, strerror(err));
	TL_CHECK(r == -1 && err == EINTR, "pause() returned %d (%s), not EINTR", r,
		 strerror(err));
	if (go_early)
		printf("the go signal came just before pause() was re-entered\n");
	tl_pass();
}
