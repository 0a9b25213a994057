/* signalfd: the signals it reads, from fdinfo; restore makes a new one in cryo (a
 * signalfd reads the signals of whoever reads it, so the task's is the same). */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fd_kind.h"
#include "files.h"
#include "log.h"

static bool signalfd_match(const struct fd_probe *pr)
{
	return !strcmp(pr->link, "anon_inode:[signalfd]");
}

static int signalfd_dump(const struct fd_probe *pr, FileEntry *e)
{
	SignalFile *sf = calloc(1, sizeof(*sf));
	uint64_t mask;

	if (!sf)
		return cr_err("out of memory");
	signal_file__init(sf);
	e->signalfd = sf;
	e->kind = FILE_KIND__FILE_SIGNALFD;
	e->flags = pr->fi->flags & KEEP_FLAGS;
	if (proc_fdinfo_number(pr->fdinfo, pr->fdinfo_len, "sigmask", 16, &mask) != 1)
		return cr_err("process %d: fd %d (signalfd): no sigmask in its fdinfo",
			      pr->p->pid, pr->fd);
	sf->sigmask = mask;
	return 0;
}

static void signalfd_free(FileEntry *e)
{
	free(e->signalfd);
}

static int signalfd_check(const FileEntry *e)
{
	return e->signalfd ? 0 : cr_err("image: signalfd file %u is invalid", e->id);
}

static int signalfd_open(struct restore_ctx *ctx, const FileEntry *e)
{
	uint64_t mask = e->signalfd->sigmask;
	int fd = syscall(__NR_signalfd4, -1, &mask, 8, O_CLOEXEC | (e->flags & O_NONBLOCK));

	(void)ctx;
	return fd < 0 ? cr_perr("cannot create a signalfd") : fd;
}

static bool signalfd_handles(FileKind k)
{
	return k == FILE_KIND__FILE_SIGNALFD;
}

const struct fd_kind signalfd_kind = {
	.name = "a signalfd",
	.handles = signalfd_handles,
	.match = signalfd_match,
	.dump = signalfd_dump,
	.check = signalfd_check,
	.open = signalfd_open,
	.free = signalfd_free,
};
