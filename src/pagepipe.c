/* Page data from a stopped task to the page file with one copy: the task vmsplice()s
 * its own pages into a pipe (references, no copy) and a cryo thread splice()s the
 * pipe into the image file (the one copy, into the page cache), checksumming what
 * it wrote through a mapping of the file. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "pagepipe.h"
#include "sys.h"

#define AREA_SIZE (64u << 10)
#define MAX_SEGS 1024
#define PIPE_WANT (1u << 20)

struct drain {
	int rfd, null_fd;
	struct raw_writer *w;
	uint64_t total, moved;
	int error;
	char msg[512];
};

/* Move `total` bytes from the pipe into the page file. After an error everything
 * still goes on to /dev/null, so the task is never left blocked in vmsplice. */
static void *drain_main(void *arg)
{
	struct drain *d = arg;

	while (d->moved < d->total) {
		size_t want = d->total - d->moved > (64u << 20) ? 64u << 20 : d->total - d->moved;
		int out = d->error ? d->null_fd : d->w->fd;
		ssize_t n = splice(d->rfd, NULL, out, NULL, want, SPLICE_F_MOVE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!d->error) {
				d->error = 1;
				if (n < 0)
					snprintf(d->msg, sizeof(d->msg), "cannot write %s/%s: %s",
						 d->w->dir->path, d->w->name, strerror(errno));
				else
					snprintf(d->msg, sizeof(d->msg), "the task stopped sending "
						 "its pages");
				if (n < 0)
					continue;
			}
			break;
		}
		if (!d->error && raw_account_written(d->w, n)) {
			d->error = 1;
			snprintf(d->msg, sizeof(d->msg), "%s", cr_last_error());
		}
		d->moved += n;
	}
	return NULL;
}

struct task_pipe {
	struct remote *r;
	uint64_t area;
	int wfd;		/* the write end, in the task */
	int rfd;		/* the read end, in cryo */
	size_t size;
};

static int remote_call(struct remote *r, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		       uint64_t a4, const char *what, int64_t *out)
{
	int64_t ret;

	if (remote_syscall(r, nr, a1, a2, a3, a4, 0, 0, &ret))
		return -1;
	if (ret < 0 && ret > -4096) {
		errno = -ret;
		return cr_perr("task %d: %s", r->tid, what);
	}
	if (out)
		*out = ret;
	return 0;
}

/* A pipe whose write end lives in the task and read end in cryo. */
static int open_task_pipe(struct task_pipe *tp)
{
	struct remote *r = tp->r;
	int32_t fds[2];
	int pidfd;
	int64_t ret;

	if (remote_call(r, __NR_mmap, 0, AREA_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, "cannot map a transfer area", &ret))
		return -1;
	tp->area = ret;
	if (remote_call(r, __NR_pipe2, tp->area, O_CLOEXEC, 0, 0, "cannot make a pipe", NULL) ||
	    remote_read(r, tp->area, fds, sizeof(fds)))
		return -1;
	tp->wfd = fds[1];
	pidfd = sys_pidfd_open(r->tid, 0);
	if (pidfd < 0)
		return cr_perr("cannot open a pidfd for task %d", r->tid);
	tp->rfd = sys_pidfd_getfd(pidfd, fds[0]);
	close(pidfd);
	if (tp->rfd < 0)
		return cr_perr("cannot take the pipe from task %d", r->tid);
	if (remote_call(r, __NR_close, fds[0], 0, 0, 0, "cannot close its pipe end", NULL))
		return -1;
	fcntl(tp->rfd, F_SETPIPE_SZ, PIPE_WANT);
	tp->size = fcntl(tp->rfd, F_GETPIPE_SZ);
	return 0;
}

static void close_task_pipe(struct task_pipe *tp)
{
	int64_t ret;

	if (tp->wfd >= 0)
		remote_syscall(tp->r, __NR_close, tp->wfd, 0, 0, 0, 0, 0, &ret);
	tp->wfd = -1;
	if (tp->area)
		remote_syscall(tp->r, __NR_munmap, tp->area, AREA_SIZE, 0, 0, 0, 0, &ret);
	tp->area = 0;
}

/* vmsplice one chunk; vmsplice may take part of it when the pipe is partly full. */
static int send_chunk(struct task_pipe *tp, struct iovec *iov, int n)
{
	while (n) {
		int64_t sent;

		if (remote_write(tp->r, tp->area, iov, n * sizeof(*iov)) ||
		    remote_call(tp->r, __NR_vmsplice, tp->wfd, tp->area, n, 0,
				"cannot hand its pages over", &sent))
			return -1;
		if (!sent)
			return cr_err("task %d: vmsplice moved nothing", tp->r->tid);
		while (n && (uint64_t)sent >= iov->iov_len) {
			sent -= iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (char *)iov->iov_base + sent;
			iov->iov_len -= sent;
		}
	}
	return 0;
}

static int send_all(struct task_pipe *tp, const struct page_range *ranges, size_t nr)
{
	struct iovec iov[MAX_SEGS];
	size_t chunk = tp->size, bytes = 0;
	int n = 0;

	for (size_t i = 0; i < nr; i++) {
		uint64_t addr = ranges[i].start, left = ranges[i].len;

		while (left) {
			size_t take = left < chunk - bytes ? left : chunk - bytes;

			iov[n].iov_base = (void *)addr;
			iov[n].iov_len = take;
			n++;
			bytes += take;
			addr += take;
			left -= take;
			if (bytes == chunk || n == MAX_SEGS) {
				if (send_chunk(tp, iov, n))
					return -1;
				n = 0;
				bytes = 0;
			}
		}
	}
	return n ? send_chunk(tp, iov, n) : 0;
}

int pagepipe_dump(struct remote *r, struct raw_writer *w, const struct page_range *ranges,
		  size_t nr)
{
	struct task_pipe tp = { .r = r, .wfd = -1, .rfd = -1 };
	struct drain d = { .rfd = -1, .null_fd = -1, .w = w };
	pthread_t thread;
	bool started = false;
	int rc = -1;

	for (size_t i = 0; i < nr; i++)
		d.total += ranges[i].len;
	if (open_task_pipe(&tp))
		goto out;
	d.rfd = tp.rfd;
	d.null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (d.null_fd < 0) {
		cr_perr("cannot open /dev/null");
		goto out;
	}
	if (pthread_create(&thread, NULL, drain_main, &d)) {
		cr_err("cannot start the page writer");
		goto out;
	}
	started = true;
	rc = send_all(&tp, ranges, nr);
out:
	/* Closing the task's end lets the writer see the end of a short transfer. */
	close_task_pipe(&tp);
	if (started)
		pthread_join(thread, NULL);
	if (started && d.error && !rc)
		rc = cr_err("%s", d.msg);
	if (started && !rc && d.moved != d.total)
		rc = cr_err("task %d: %llu of %llu bytes of page data arrived", r->tid,
			    (unsigned long long)d.moved, (unsigned long long)d.total);
	if (tp.rfd >= 0)
		close(tp.rfd);
	if (d.null_fd >= 0)
		close(d.null_fd);
	return rc;
}
