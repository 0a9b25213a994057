/* The lazy restore's tripwire: pipes of one holder of the userfaultfds (the supplier,
 * or its guard) whose write ends, released as it dies, SIGKILL every process of the
 * tree before that holder's userfaultfds are released. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lazy.h"
#include "log.h"

#define WIRE_TOP_MAX 65536	/* the holders' fd limit: their fd table stays small */

/*
 * Why two pipes. A task that dies drops its fds in ascending order, and the kernel
 * releases each file whose last reference it dropped afterwards, from a list of
 * deferred work that it has run both in the order it was queued and in the reverse
 * one (this 6.18 kernel releases the highest fd first). A write end at the lowest fd
 * is released before every other file in the first case, one at the highest fd in the
 * second: with both, one pipe loses its only writer while its read ends and the
 * holder's userfaultfds are still held. The read ends are owned by the tree's
 * processes with SIGKILL as their signal (fcntl F_SETSIG), which the kernel sends
 * from inside that release (kill_fasync). Each holder has pipes of its own: one
 * shared by two holders would lose its last writer in whichever dies second, which
 * may release a userfaultfd of the first one's before.
 */
int wire_make(struct lazy_wire *w)
{
	struct rlimit rl;
	int lo[2], hi[2];

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return cr_perr("getrlimit");
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > WIRE_TOP_MAX)
		rl.rlim_max = WIRE_TOP_MAX;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return cr_perr("setrlimit");
	w->top = (int)rl.rlim_cur - 1;
	/* Nothing may sit above the top write end. */
	syscall(__NR_close_range, w->top, ~0U, 0);
	if (pipe2(lo, O_CLOEXEC))
		return cr_perr("pipe");
	if (pipe2(hi, O_CLOEXEC)) {
		close(lo[0]);
		close(lo[1]);
		return cr_perr("pipe");
	}
	if (dup3(lo[1], 0, O_CLOEXEC) < 0 || dup3(hi[1], w->top, O_CLOEXEC) < 0) {
		cr_perr("cannot place the tripwire's write ends");
		close(hi[0]);
		close(hi[1]);
		close(lo[0]);
		close(lo[1]);
		return -1;
	}
	close(lo[0]);
	close(lo[1]);
	close(hi[0]);
	close(hi[1]);
	return 0;
}

/* One read end of the pipe whose write end is fd `wfd`, owned by pid. */
static int wire_end(int wfd, pid_t pid)
{
	struct f_owner_ex own = { F_OWNER_PID, pid };
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", wfd);
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fcntl(fd, F_SETSIG, SIGKILL) || fcntl(fd, F_SETOWN_EX, &own) ||
	    fcntl(fd, F_SETFL, O_NONBLOCK | O_ASYNC)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int wire_arm(const struct lazy_wire *w, pid_t pid, int ends[2])
{
	ends[0] = wire_end(0, pid);
	ends[1] = ends[0] < 0 ? -1 : wire_end(w->top, pid);
	if (ends[1] >= 0)
		return 0;
	cr_perr("cannot arm the lazy pages' tripwire for process %d", pid);
	if (ends[0] >= 0)
		close(ends[0]);
	ends[0] = -1;
	return -1;
}

void wire_disarm(int ends[2])
{
	for (int i = 0; i < 2; i++)
		if (ends[i] >= 0) {
			close(ends[i]);
			ends[i] = -1;
		}
}
