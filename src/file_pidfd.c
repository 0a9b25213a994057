/* pidfds: to a process or thread of the image, opened by the restored task itself once
 * every process of the tree exists (the last table), or to a process already reaped,
 * which cryo makes from a child of its own that it reaps. A pidfd to a process outside
 * the image is refused. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd_kind.h"
#include "files.h"
#include "log.h"
#include "plan.h"
#include "sys.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

static bool pidfd_match(const struct fd_probe *pr)
{
	return !strcmp(pr->link, "anon_inode:[pidfd]");
}

static bool in_tree(const struct dump_ctx *ctx, pid_t pid, bool thread)
{
	if (file_tree_has(ctx, pid))
		return true;
	for (size_t i = 0; thread && i < ctx->nr_procs; i++)
		for (size_t t = 0; t < ctx->procs[i]->nr_threads; t++)
			if (ctx->procs[i]->tids[t] == pid)
				return true;
	return false;
}

static int pidfd_dump(const struct fd_probe *pr, FileEntry *e)
{
	PidFile *pf = calloc(1, sizeof(*pf));
	int pid;

	if (!pf)
		return cr_err("out of memory");
	pid_file__init(pf);
	e->pidfd = pf;
	e->kind = FILE_KIND__FILE_PIDFD;
	e->flags = pr->fi->flags & (O_ACCMODE | O_NONBLOCK);
	pf->thread = !!(pr->fi->flags & PIDFD_THREAD);
	if (proc_parse_pidfd(pr->fdinfo, pr->fdinfo_len, &pid))
		return cr_err("process %d: fd %d (pidfd): cannot read its fdinfo", pr->p->pid,
			      pr->fd);
	if (pid > 0 && !in_tree(pr->p->ctx, pid, pf->thread))
		return cr_err("process %d: fd %d is a pidfd of %s %d, outside what is dumped",
			      pr->p->pid, pr->fd, pf->thread ? "thread" : "process", pid);
	pf->pid = pid > 0 ? pid : 0;
	return 0;
}

static void pidfd_free(FileEntry *e)
{
	free(e->pidfd);
}

static int pidfd_check(const FileEntry *e)
{
	if (!e->pidfd || (e->flags & ~(uint32_t)(O_ACCMODE | O_NONBLOCK)))
		return cr_err("image: pidfd file %u is invalid", e->id);
	return 0;
}

static unsigned int open_flags(const FileEntry *e)
{
	return (e->flags & O_NONBLOCK) | (e->pidfd->thread ? PIDFD_THREAD : 0);
}

/* A pidfd of a reaped process: of a child of cryo's that is reaped at once. */
static int dead_pidfd(const FileEntry *e)
{
	int fd, status;
	pid_t child = fork();

	if (child < 0)
		return cr_perr("cannot fork for a pidfd of a reaped process");
	if (!child)
		_exit(0);
	fd = sys_pidfd_open(child, open_flags(e) & ~PIDFD_THREAD);
	if (waitpid(child, &status, 0) != child) {
		if (fd >= 0)
			close(fd);
		return cr_perr("cannot reap cryo's child %d", child);
	}
	if (fd < 0)
		return cr_perr("cannot open a pidfd of a reaped process");
	return fd;
}

static int pidfd_open_hook(struct restore_ctx *ctx, const FileEntry *e)
{
	(void)ctx;
	return e->pidfd->pid ? FD_BY_TASK : dead_pidfd(e);
}

static bool tree_has(const struct restore_ctx *ctx, uint32_t pid)
{
	for (size_t i = 0; i < ctx->nr_tree_pids; i++)
		if (ctx->tree_pids[i] == pid)
			return true;
	return false;
}

/* In the last table: pidfd_open puts it on the lowest free fd, which the plan knows;
 * it is moved to its number from there. */
static int pidfd_plan_final(struct restore_proc *rp, struct plan *p, const Fd *f,
			    const FileEntry *e, int lowest_free)
{
	if (!tree_has(rp->ctx, e->pidfd->pid))
		return cr_err("image: pidfd %u of process %u names %u, not in the image", f->fd,
			      rp->core->pid, e->pidfd->pid);
	plan_call(p, "opening a pidfd", 0, __NR_pidfd_open, e->pidfd->pid, open_flags(e), 0, 0, 0,
		  0);
	if ((uint32_t)lowest_free != f->fd) {
		plan_call(p, "installing a pidfd", 0, __NR_dup3, lowest_free, f->fd,
			  f->cloexec ? O_CLOEXEC : 0, 0, 0, 0);
		plan_call(p, "installing a pidfd", 0, __NR_close, lowest_free, 0, 0, 0, 0, 0);
	} else if (!f->cloexec) {
		plan_call(p, "installing a pidfd", 0, __NR_fcntl, f->fd, F_SETFD, 0, 0, 0, 0);
	}
	return 0;
}

static bool pidfd_handles(FileKind k)
{
	return k == FILE_KIND__FILE_PIDFD;
}

const struct fd_kind pidfd_kind = {
	.name = "a pidfd",
	.handles = pidfd_handles,
	.match = pidfd_match,
	.dump = pidfd_dump,
	.check = pidfd_check,
	.open = pidfd_open_hook,
	.plan_final = pidfd_plan_final,
	.free = pidfd_free,
};
