/* eventfd: its count and whether it counts as a semaphore, from fdinfo; restore makes
 * a new one in cryo with the same flags and writes the count back. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fd_kind.h"
#include "files.h"
#include "log.h"

static bool eventfd_match(const struct fd_probe *pr)
{
	return !strcmp(pr->link, "anon_inode:[eventfd]");
}

static int eventfd_dump(const struct fd_probe *pr, FileEntry *e)
{
	EventFile *ef = calloc(1, sizeof(*ef));
	uint64_t count, sem;
	int has_sem;

	if (!ef)
		return cr_err("out of memory");
	event_file__init(ef);
	e->eventfd = ef;
	e->kind = FILE_KIND__FILE_EVENTFD;
	e->flags = pr->fi->flags & KEEP_FLAGS;
	if (proc_fdinfo_number(pr->fdinfo, pr->fdinfo_len, "eventfd-count", 16, &count) != 1)
		return cr_err("process %d: fd %d (eventfd): no count in its fdinfo", pr->p->pid,
			      pr->fd);
	has_sem = proc_fdinfo_number(pr->fdinfo, pr->fdinfo_len, "eventfd-semaphore", 10, &sem);
	if (has_sem != 1)
		return cr_err("process %d: fd %d (eventfd): this kernel does not say whether it "
			      "is a semaphore (EFD_SEMAPHORE)", pr->p->pid, pr->fd);
	ef->count = count;
	ef->semaphore = sem != 0;
	return 0;
}

static void eventfd_free(FileEntry *e)
{
	free(e->eventfd);
}

static int eventfd_check(const FileEntry *e)
{
	if (!e->eventfd || e->eventfd->count == UINT64_MAX)
		return cr_err("image: eventfd file %u is invalid", e->id);
	return 0;
}

static int eventfd_open(struct restore_ctx *ctx, const FileEntry *e)
{
	const EventFile *ef = e->eventfd;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | (ef->semaphore ? EFD_SEMAPHORE : 0));

	(void)ctx;
	if (fd < 0)
		return cr_perr("cannot create an eventfd");
	if ((ef->count && write(fd, &ef->count, 8) != 8) ||
	    fcntl(fd, F_SETFL, e->flags & O_NONBLOCK)) {
		close(fd);
		return cr_perr("cannot give an eventfd its count");
	}
	return fd;
}

static bool eventfd_handles(FileKind k)
{
	return k == FILE_KIND__FILE_EVENTFD;
}

const struct fd_kind eventfd_kind = {
	.name = "an eventfd",
	.handles = eventfd_handles,
	.match = eventfd_match,
	.dump = eventfd_dump,
	.check = eventfd_check,
	.open = eventfd_open,
	.free = eventfd_free,
};
