/* timerfd: clock, time to the next expiry, interval, expirations not read yet and
 * settime flags, from fdinfo. Restore makes a new one in cryo: a relative timer goes
 * on with the time it had left (the dumped time does not count, as for itimers), an
 * absolute one keeps its deadline; the unread expirations go back with
 * TFD_IOC_SET_TICKS. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "fd_kind.h"
#include "files.h"
#include "log.h"

#ifndef TFD_TIMER_CANCEL_ON_SET
#define TFD_TIMER_CANCEL_ON_SET (1 << 1)
#endif
#define CR_TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#define NS 1000000000ULL

static bool timerfd_match(const struct fd_probe *pr)
{
	return !strcmp(pr->link, "anon_inode:[timerfd]");
}

static int64_t clock_ns(int clockid)
{
	struct timespec ts;

	if (clock_gettime(clockid, &ts))
		return -1;
	return (int64_t)ts.tv_sec * (int64_t)NS + ts.tv_nsec;
}

static int timerfd_dump(const struct fd_probe *pr, FileEntry *e)
{
	TimerFile *tf = calloc(1, sizeof(*tf));
	struct proc_timerfd t;

	if (!tf)
		return cr_err("out of memory");
	timer_file__init(tf);
	e->timerfd = tf;
	e->kind = FILE_KIND__FILE_TIMERFD;
	e->flags = pr->fi->flags & KEEP_FLAGS;
	if (proc_parse_timerfd(pr->fdinfo, pr->fdinfo_len, &t))
		return -1;
	tf->clockid = t.clockid;
	tf->ticks = t.ticks;
	tf->settime_flags = t.flags;
	tf->value_ns = t.value_ns;
	tf->interval_ns = t.interval_ns;
	if ((t.flags & TFD_TIMER_ABSTIME) && t.value_ns) {
		int64_t now = clock_ns(t.clockid);

		if (now < 0)
			return cr_perr("process %d: fd %d (timerfd): cannot read clock %d",
				       pr->p->pid, pr->fd, t.clockid);
		tf->has_deadline_ns = 1;
		tf->deadline_ns = now + (int64_t)t.value_ns;
	}
	return 0;
}

static void timerfd_free(FileEntry *e)
{
	free(e->timerfd);
}

static int timerfd_check(const FileEntry *e)
{
	const TimerFile *tf = e->timerfd;

	if (!tf || tf->clockid < 0 || tf->settime_flags & ~(TFD_TIMER_ABSTIME |
							      TFD_TIMER_CANCEL_ON_SET) ||
	    tf->value_ns / NS > INT32_MAX || tf->interval_ns / NS > INT32_MAX ||
	    (tf->has_deadline_ns && tf->deadline_ns < 0))
		return cr_err("image: timerfd file %u is invalid", e->id);
	return 0;
}

static struct timespec ts_of(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / NS), (long)(ns % NS) };

	return ts;
}

static int timerfd_open(struct restore_ctx *ctx, const FileEntry *e)
{
	const TimerFile *tf = e->timerfd;
	struct itimerspec its = { ts_of(tf->interval_ns), ts_of(tf->value_ns) };
	int flags = 0, fd = timerfd_create(tf->clockid, TFD_CLOEXEC | TFD_NONBLOCK);

	(void)ctx;
	if (fd < 0)
		return cr_perr("cannot create a timerfd on clock %d", tf->clockid);
	if (tf->has_deadline_ns) {
		its.it_value = ts_of(tf->deadline_ns);
		flags = tf->settime_flags;
	}
	if ((tf->value_ns && timerfd_settime(fd, flags, &its, NULL)) ||
	    (tf->ticks && ioctl(fd, CR_TFD_IOC_SET_TICKS, &tf->ticks)) ||
	    fcntl(fd, F_SETFL, e->flags & O_NONBLOCK)) {
		close(fd);
		return cr_perr("cannot set a timerfd as it was");
	}
	return fd;
}

static bool timerfd_handles(FileKind k)
{
	return k == FILE_KIND__FILE_TIMERFD;
}

const struct fd_kind timerfd_kind = {
	.name = "a timerfd",
	.handles = timerfd_handles,
	.match = timerfd_match,
	.dump = timerfd_dump,
	.check = timerfd_check,
	.open = timerfd_open,
	.free = timerfd_free,
};
