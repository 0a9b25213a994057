/* memfds: name, size, seals, mode and owner, with the contents kept as a shared
 * memory object (mem.c), the one its shared mappings name too. Restore makes the
 * memfd once, fills it, opens every open file description of it, seals it last and
 * hands it to mem.c as that object, so fds and mappings are one file again. Shared
 * anonymous memory held as an fd ("/dev/zero (deleted)") is the same without a
 * name: mem.c makes that object early and the fds are opened on it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "fd_kind.h"
#include "files.h"
#include "log.h"
#include "mem.h"
#include "sys.h"

#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif
#define HUGETLBFS_MAGIC 0x958458f6
#define SEALS_KNOWN (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | \
		     F_SEAL_FUTURE_WRITE | F_SEAL_EXEC)
#define MEMFD_PREFIX "/memfd:"
#define SHARED_ANON "/dev/zero (deleted)"
#define MEMFD_NAME_MAX 249	/* the kernel's limit, without "memfd:" */

static bool memfd_match(const struct fd_probe *pr)
{
	return S_ISREG(pr->st->st_mode) && pr->st->st_nlink == 0 &&
	       ((!strncmp(pr->link, MEMFD_PREFIX, 7) && file_link_deleted(pr->link)) ||
		!strcmp(pr->link, SHARED_ANON));
}

/* Its name, from "/memfd:NAME (deleted)". */
static char *memfd_name(const char *link)
{
	return strndup(link + 7, strlen(link) - 7 - 10);
}

/* Name, seals, mode and owner of the memfd open as fd (an open file description of
 * cryo's), its contents as a shared memory object. */
static int fill_memfd(struct dump_ctx *ctx, const char *who, const char *link, int fd,
		      const struct stat *st, MemfdFile *mf)
{
	struct statfs sfs;
	int seals;

	if (!fstatfs(fd, &sfs) && sfs.f_type == HUGETLBFS_MAGIC)
		return cr_err("%s (%s) is a hugetlb memfd; cryo cannot restore it", who, link);
	if (!strcmp(link, SHARED_ANON)) {
		mf->has_shared_anon = mf->shared_anon = 1;
		mf->name = strdup("");
		mf->size = st->st_size;
		return mf->name ? mem_shmem_add(ctx, fd, st, &mf->shmem_id) :
				  cr_err("out of memory");
	}
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return cr_perr("%s (%s): cannot read its seals", who, link);
	if (seals & ~SEALS_KNOWN)
		return cr_err("%s (%s) has seals cryo does not know (0x%x)", who, link, seals);
	mf->name = memfd_name(link);
	if (!mf->name)
		return cr_err("out of memory");
	mf->seals = seals;
	mf->size = st->st_size;
	mf->mode = st->st_mode & 07777;
	mf->uid = st->st_uid;
	mf->gid = st->st_gid;
	return mem_shmem_add(ctx, fd, st, &mf->shmem_id);
}

static MemfdFile *new_memfd(FileEntry *e)
{
	MemfdFile *mf = calloc(1, sizeof(*mf));

	if (!mf) {
		cr_err("out of memory");
		return NULL;
	}
	memfd_file__init(mf);
	e->memfd = mf;
	e->kind = FILE_KIND__FILE_MEMFD;
	return mf;
}

static int memfd_dump(const struct fd_probe *pr, FileEntry *e)
{
	MemfdFile *mf = new_memfd(e);
	char who[64], proc[64];
	int fd, rc;

	if (!mf)
		return -1;
	e->flags = pr->fi->flags & KEEP_FLAGS;
	mf->pos = pr->fi->pos;
	snprintf(who, sizeof(who), "process %d: fd %d", pr->p->pid, pr->fd);
	/* An open file description of cryo's: the process's position stays. */
	snprintf(proc, sizeof(proc), "/proc/%d/fd/%d", pr->p->pid, pr->fd);
	fd = open(proc, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cr_perr("%s: cannot open %s", who, proc);
	rc = fill_memfd(pr->p->ctx, who, pr->link, fd, pr->st, mf);
	close(fd);
	return rc;
}

/* An entry of the object that a mapping can be made through. */
static bool readable(const FileEntry *e, uint32_t shmem_id)
{
	int acc = e->flags & O_ACCMODE;

	return e->memfd && e->memfd->shmem_id == shmem_id && !(e->flags & O_PATH) &&
	       (acc == O_RDONLY || acc == O_RDWR);
}

int memfd_add_mapped(struct dump_proc *p, uint64_t start, const char *link, int fd,
		     const struct stat *st, uint32_t shmem_id, bool writable, uint32_t *file_id)
{
	struct file_table *ft = &p->ctx->files;
	int seals = fcntl(fd, F_GET_SEALS);
	char who[64];
	FileEntry *e;

	snprintf(who, sizeof(who), "process %d: mapping 0x%llx", p->pid,
		 (unsigned long long)start);
	if (seals < 0)
		return cr_perr("%s (%s): cannot read its seals", who, link);
	/* Sealed after it was mapped writable: a restore would map it after sealing. */
	if (writable && (seals & F_SEAL_FUTURE_WRITE))
		return cr_err("%s (%s) is writable and the memfd is sealed with "
			      "F_SEAL_FUTURE_WRITE; cryo cannot restore that", who, link);
	for (size_t i = 0; i < ft->nr; i++)
		if (readable(ft->files[i], shmem_id)) {
			if (file_id)
				*file_id = ft->files[i]->id;
			return 0;
		}
	if (file_table_push(ft, &e) || !new_memfd(e))
		return -1;
	file_key_set(ft, st, O_RDWR, 0, -1);
	e->flags = O_RDWR;
	if (file_id)
		*file_id = e->id;
	e->memfd->has_mapped_only = e->memfd->mapped_only = 1;
	return fill_memfd(p->ctx, who, link, fd, st, e->memfd);
}

static void memfd_free(FileEntry *e)
{
	if (!e->memfd)
		return;
	free(e->memfd->name);
	free(e->memfd);
}

/* ---- restore ---- */

static int memfd_check(const FileEntry *e)
{
	const MemfdFile *mf = e->memfd;

	if (!mf || !mf->name || strlen(mf->name) > MEMFD_NAME_MAX || !mf->shmem_id)
		return cr_err("image: memfd file %u has no valid name or contents", e->id);
	if (mf->seals & ~SEALS_KNOWN || mf->mode & ~07777 || mf->size > (1ULL << 40))
		return cr_err("image: memfd file %u has invalid seals, mode or size", e->id);
	if (mf->shared_anon && (mf->name[0] || mf->mapped_only))
		return cr_err("image: shared memory file %u has a name or no fd", e->id);
	return 0;
}

static bool names_memfd(const FileEntry *e, const FileEntry *creator)
{
	return e->memfd && e->memfd->shmem_id == creator->memfd->shmem_id;
}

static uint64_t memfd_pos(const FileEntry *e)
{
	return e->memfd->pos;
}

/* The first entry of the memfd makes it. */
static bool is_creator(const struct restore_ctx *ctx, const FileEntry *e)
{
	for (size_t i = 0; i + 1 < e->id; i++)
		if (names_memfd(ctx->files->files[i], e))
			return false;
	return true;
}

/* Sealing is allowed unless F_SEAL_SEAL is the only seal (no MFD_ALLOW_SEALING). */
static int make_memfd(struct restore_ctx *ctx, const FileEntry *e, const ShmemObject *o)
{
	const MemfdFile *mf = e->memfd;
	bool sealing = mf->seals != F_SEAL_SEAL;
	int fd, own = -1, rc;
	char what[300];

	snprintf(what, sizeof(what), "memfd:%s", mf->name);
	fd = memfd_create(mf->name, MFD_CLOEXEC | (sealing ? MFD_ALLOW_SEALING : 0));
	if (fd < 0)
		return cr_perr("cannot make %s again", what);
	if (ftruncate(fd, mf->size)) {
		cr_perr("cannot size %s", what);
		goto fail;
	}
	/* The contents are read from the image with cryo's rights. */
	trust_unbecome(&ctx->trust);
	rc = mem_shmem_write(ctx, o, fd, mf->size);
	if (trust_become(&ctx->trust, ctx->creds) || rc ||
	    ghost_open_all(ctx, e, fd, names_memfd, memfd_pos, what, &own) ||
	    ghost_set_owner(ctx, fd, mf->uid, mf->gid, what))
		goto fail;
	if (fchmod(fd, mf->mode)) {
		cr_perr("cannot give %s its mode %04o", what, mf->mode);
		goto fail;
	}
	if (sealing && mf->seals && fcntl(fd, F_ADD_SEALS, mf->seals)) {
		cr_perr("cannot seal %s (seals 0x%x)", what, mf->seals);
		goto fail;
	}
	if (mem_shmem_adopt(ctx, mf->shmem_id, fd)) {
		close(own);
		return -1;
	}
	return own;
fail:
	if (own >= 0)
		close(own);
	close(fd);
	return -1;
}

/* mem.c makes the object (reading the image with cryo's rights); the fds open it. */
static int make_shared_anon(struct restore_ctx *ctx, const FileEntry *e,
			    const ShmemObject *o)
{
	int fd, own = -1;

	trust_unbecome(&ctx->trust);
	fd = mem_shmem_make(ctx, o);
	if (trust_become(&ctx->trust, ctx->creds) || fd < 0 ||
	    ghost_open_all(ctx, e, fd, names_memfd, memfd_pos, "shared memory", &own))
		return -1;
	return own;
}

static int memfd_open(struct restore_ctx *ctx, const FileEntry *e)
{
	const MemfdFile *mf = e->memfd;
	const ShmemObject *o = mem_shmem_object(ctx, mf->shmem_id);

	if (!o || o->size != CR_ALIGN_UP(mf->size, CR_PAGE_SIZE))
		return cr_err("image: memfd file %u names no memory object of its size", e->id);
	if (!is_creator(ctx, e))
		return ghost_ahead_take(ctx, e->id);
	return mf->shared_anon ? make_shared_anon(ctx, e, o) : make_memfd(ctx, e, o);
}

static bool memfd_handles(FileKind k)
{
	return k == FILE_KIND__FILE_MEMFD;
}

const struct fd_kind memfd_kind = {
	.name = "a memfd",
	.handles = memfd_handles,
	.match = memfd_match,
	.dump = memfd_dump,
	.check = memfd_check,
	.open = memfd_open,
	.open_done = ghost_ahead_done,
	.free = memfd_free,
};
