/* epoll instances: the watches come from the fd's fdinfo at dump; restore makes a new
 * instance in cryo and the task registers every watch once its fd table is in place
 * (watches are keyed by fd number). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fd_kind.h"
#include "files.h"
#include "log.h"

#define EPOLL_LINK "anon_inode:[eventpoll]"

static bool epoll_match(const struct fd_probe *pr)
{
	return !strcmp(pr->link, EPOLL_LINK);
}

static int epoll_dump(const struct fd_probe *pr, FileEntry *e)
{
	struct proc_epoll_target *t;
	EpollTarget *items;
	EpollFile *ef;
	size_t n;

	if (proc_parse_epoll(pr->fdinfo, pr->fdinfo_len, &t, &n))
		return -1;
	ef = calloc(1, sizeof(*ef));
	items = calloc(n + 1, sizeof(*items));
	if (ef) {
		epoll_file__init(ef);
		ef->targets = calloc(n + 1, sizeof(*ef->targets));
	}
	e->kind = FILE_KIND__FILE_EPOLL;
	e->flags = pr->fi->flags & KEEP_FLAGS;
	e->epoll = ef;
	if (!items || !ef || !ef->targets) {
		free(t);
		free(items);
		return cr_err("out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		epoll_target__init(&items[i]);
		items[i].tfd = t[i].tfd;
		items[i].events = t[i].events;
		items[i].data = t[i].data;
		ef->targets[i] = &items[i];
	}
	ef->n_targets = n;
	if (!n)
		free(items);	/* freed through targets[0] otherwise */
	free(t);
	pr_debug("process %d: fd %d is an epoll instance watching %zu fds", pr->p->pid, pr->fd, n);
	return 0;
}

static bool holds_fd(const Core *core, uint32_t fd)
{
	for (size_t i = 0; i < core->n_fds; i++)
		if (core->fds[i]->fd == fd)
			return true;
	return false;
}

/* A watch whose fd number was closed (or reused) cannot be registered again. */
static int epoll_check_all(struct dump_proc *p)
{
	for (size_t i = 0; i < p->core.n_fds; i++) {
		const FileEntry *e = p->ctx->files.files[p->core.fds[i]->file_id - 1];

		if (e->kind != FILE_KIND__FILE_EPOLL)
			continue;
		for (size_t t = 0; t < e->epoll->n_targets; t++)
			if (!holds_fd(&p->core, e->epoll->targets[t]->tfd))
				return cr_err("process %d: epoll fd %u watches fd %u, which is closed; "
					      "cryo cannot restore such a watch", p->pid,
					      p->core.fds[i]->fd, e->epoll->targets[t]->tfd);
	}
	return 0;
}

static void epoll_free(FileEntry *e)
{
	if (!e->epoll)
		return;
	if (e->epoll->n_targets)
		free(e->epoll->targets[0]);
	free(e->epoll->targets);
	free(e->epoll);
}

static int epoll_check(const FileEntry *e)
{
	return e->epoll ? 0 : cr_err("image: epoll file %u has no watch list", e->id);
}

static int epoll_open(struct restore_ctx *ctx, const FileEntry *e)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	(void)ctx;
	if (fd < 0)
		return cr_perr("cannot create an epoll instance");
	if ((e->flags & O_NONBLOCK) && fcntl(fd, F_SETFL, O_NONBLOCK)) {
		close(fd);
		return cr_perr("cannot make an epoll instance non-blocking");
	}
	return fd;
}

static int epoll_plan_after(struct restore_proc *rp, struct plan *p, const Fd *f,
			    const FileEntry *e)
{
	for (size_t t = 0; t < e->epoll->n_targets; t++) {
		const EpollTarget *et = e->epoll->targets[t];
		struct epoll_event ev = { .events = et->events, .data.u64 = et->data };

		if (!holds_fd(rp->core, et->tfd))
			return cr_err("image: epoll fd %u watches fd %u, which the process does not "
				      "have", f->fd, et->tfd);
		plan_call(p, "registering an epoll watch", 0, __NR_epoll_ctl, f->fd, EPOLL_CTL_ADD,
			  et->tfd, plan_data(p, &ev, sizeof(ev)), 0, 0);
	}
	return 0;
}

static bool epoll_handles(FileKind k)
{
	return k == FILE_KIND__FILE_EPOLL;
}

const struct fd_kind epoll_kind = {
	.name = "an epoll instance",
	.handles = epoll_handles,
	.match = epoll_match,
	.dump = epoll_dump,
	.check_all = epoll_check_all,
	.check = epoll_check,
	.open = epoll_open,
	.plan_after = epoll_plan_after,
	.free = epoll_free,
};
