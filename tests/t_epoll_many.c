/* An epoll instance watching 1000 fds (other epoll instances): the restore plan must
 * size itself by what it holds (cryo 0.1.0's estimate overflowed past about 600
 * watches). Every watch comes back. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tlib.h"

#define N 1000

int main(void)
{
	struct rlimit rl = { 4096, 4096 };
	struct epoll_event ev, out[8];
	int top, fds[N];

	tl_init();
	TL_CHECK(!setrlimit(RLIMIT_NOFILE, &rl), "setrlimit: %s", strerror(errno));
	top = epoll_create1(0);
	for (int i = 0; i < N; i++) {
		fds[i] = epoll_create1(0);
		ev.events = EPOLLIN | (i % 2 ? EPOLLET : 0);
		ev.data.u64 = 0xabc00000ULL + i;
		TL_CHECK(fds[i] >= 0 && !epoll_ctl(top, EPOLL_CTL_ADD, fds[i], &ev),
			 "watch %d: %s", i, strerror(errno));
	}
	tl_ready();
	tl_wait_go();
	for (int i = 0; i < N; i++) {
		ev.events = EPOLLIN;
		ev.data.u64 = 0;
		/* Adding again must fail: the watch is there. */
		TL_CHECK(epoll_ctl(top, EPOLL_CTL_ADD, fds[i], &ev) < 0 && errno == EEXIST,
			 "watch %d is gone", i);
	}
	TL_CHECK(epoll_wait(top, out, 8, 0) == 0, "nothing should be ready");
	tl_pass();
}
