/* O_PATH fds on what is neither a regular file nor a directory (file_path.c has
 * those): symlinks (the link itself), FIFOs, socket files and device nodes. Nothing is
 * opened through them, so the path, the file type and a device's number are the state. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_kind.h"
#include "files.h"
#include "log.h"

static bool opath_match(const struct fd_probe *pr)
{
	return (pr->fi->flags & O_PATH) && !S_ISREG(pr->st->st_mode) &&
	       !S_ISDIR(pr->st->st_mode);
}

static int opath_dump(const struct fd_probe *pr, FileEntry *e)
{
	PathFile *pf = calloc(1, sizeof(*pf));
	struct stat by_path;

	if (!pf)
		return cr_err("out of memory");
	path_file__init(pf);
	e->path = pf;
	e->kind = FILE_KIND__FILE_OPATH;
	e->flags = O_PATH;
	if (pr->link[0] != '/' || file_in_own_proc(pr->p, pr->link) ||
	    lstat(pr->link, &by_path) || by_path.st_dev != pr->st->st_dev ||
	    by_path.st_ino != pr->st->st_ino)
		return cr_err("process %d: fd %d (O_PATH, %s) was deleted or replaced, or is "
			      "under its own /proc", pr->p->pid, pr->fd, pr->link);
	pf->path = strdup(pr->link);
	if (!pf->path)
		return cr_err("out of memory");
	pf->mode = pr->st->st_mode;
	if (S_ISCHR(pr->st->st_mode) || S_ISBLK(pr->st->st_mode)) {
		pf->has_rdev = 1;
		pf->rdev = pr->st->st_rdev;
	}
	return 0;
}

static void opath_free(FileEntry *e)
{
	if (!e->path)
		return;
	free(e->path->path);
	free(e->path);
}

static int opath_check(const FileEntry *e)
{
	mode_t t;

	if (!e->path || e->path->path[0] != '/' || e->flags != O_PATH)
		return cr_err("image: O_PATH file %u is invalid", e->id);
	t = e->path->mode & S_IFMT;
	if (t != S_IFLNK && t != S_IFIFO && t != S_IFSOCK && t != S_IFCHR && t != S_IFBLK)
		return cr_err("image: O_PATH file %u is of a kind it cannot be", e->id);
	return 0;
}

/* The file itself, never what a symlink points to; it must be of the same type (and
 * the same device). */
static int opath_open(struct restore_ctx *ctx, const FileEntry *e)
{
	const PathFile *pf = e->path;
	int fd = open(pf->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	(void)ctx;
	if (fd < 0)
		return cr_perr("cannot open %s (O_PATH)", pf->path);
	if (fstat(fd, &st)) {
		cr_perr("cannot stat %s", pf->path);
		goto fail;
	}
	if ((st.st_mode & S_IFMT) != (pf->mode & S_IFMT)) {
		cr_err("%s is no longer the kind of file it was at dump", pf->path);
		goto fail;
	}
	if (pf->has_rdev && st.st_rdev != pf->rdev) {
		cr_err("%s is a different device than at dump", pf->path);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static bool opath_handles(FileKind k)
{
	return k == FILE_KIND__FILE_OPATH;
}

const struct fd_kind opath_kind = {
	.name = "an O_PATH file",
	.handles = opath_handles,
	.match = opath_match,
	.dump = opath_dump,
	.check = opath_check,
	.open = opath_open,
	.free = opath_free,
};
