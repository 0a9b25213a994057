/* Open files: the file table shared by the image, file descriptors of a process, its
 * cwd and root, and the files its memory maps. Each kind of file is one file_*.c
 * behind struct fd_kind (fd_kind.h); an fd of no known kind makes the dump refuse. */
#ifndef CRYO_FILES_H
#define CRYO_FILES_H

#include <sys/stat.h>

#include "task.h"

/* Add a file (deduplicated for mappings: same file and flags, pos 0). */
int files_add_mapped(struct file_table *ft, const char *path, const struct stat *st,
		     uint32_t flags, uint32_t *id);
int files_dump_fds(struct dump_proc *p);
/* A deleted file mapped (file_ghost.c): `proc` opens it, `link` is its /proc name. */
int ghost_add_mapped(struct dump_proc *p, uint64_t start, const char *proc, const char *link,
		     const struct stat *st, uint32_t flags, uint32_t *id);
/* Is this file a deleted file some fd of the tree holds? */
bool files_ghost_known(const struct file_table *ft, const struct stat *st);
/* A memfd mapped (file_memfd.c): an entry of it that can read it (made if no fd of
 * the tree has one), in *file_id if not NULL. */
int memfd_add_mapped(struct dump_proc *p, uint64_t start, const char *link, int fd,
		     const struct stat *st, uint32_t shmem_id, bool writable, uint32_t *file_id);
int files_write_image(struct dump_ctx *ctx);
void files_table_free(struct file_table *ft);

/* Restore: is every entry of the table sound? Pure. */
int files_check_table(const FileTable *ft);
/* Restore: open every file of the table in cryo (above ctx->fd_base). */
int files_open_all(struct restore_ctx *ctx);
/* Restore: the calls that give the task exactly its fds, cwd and root. */
int files_plan(struct restore_proc *rp, struct plan *p);
/* cryo's fd for a FileTable id, or -1 with an error. */
int files_fd(struct restore_ctx *ctx, uint32_t id);
void files_plan_close_inherited(struct restore_ctx *ctx, struct plan *p);

#endif
