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
/* In the last table: fds that need every process of the tree (pidfds), and what the
 * kinds do once a table is complete (epoll watches). */
int files_plan_final(struct restore_proc *rp, struct plan *p);
/* cryo's fd for a FileTable id, or -1 with an error. */
int files_fd(struct restore_ctx *ctx, uint32_t id);
void files_plan_close_inherited(struct restore_ctx *ctx, struct plan *p);

/* ---- terminals (file_tty.c) ---- */

enum tty_class { TTY_NOT, TTY_PTY_MASTER, TTY_PTY_SLAVE, TTY_CTTY, TTY_CONSOLE, TTY_OTHER };

/* What a character device is as a terminal; a pty slave's index. Pure. */
enum tty_class tty_classify(uint32_t maj, uint32_t min, uint32_t *index);
/* The device of /proc/PID/stat's tty_nr field. Pure. */
void tty_decode_nr(uint32_t tty_nr, uint32_t *maj, uint32_t *min);

/* The kernel's struct termios2 (glibc's struct termios has another layout). */
struct cr_termios2 {
	uint32_t c_iflag, c_oflag, c_cflag, c_lflag;
	uint8_t c_line;
	uint8_t c_cc[19];
	uint32_t c_ispeed, c_ospeed;
};

/* One read of a pty slave's queued input (a canonical line, or all of it): written
 * back on the master with echo, signals and mapping off, is it queued as it was? Not
 * with a line end or end-of-file character inside a canonical line (typed after ^V).
 * Pure. */
bool pty_input_faithful(const struct cr_termios2 *t, const uint8_t *b, size_t len);
/* What the slave's FIONREAD shows once b is queued (a canonical line's end-of-file
 * mark is not counted). Pure. */
size_t pty_input_visible(const struct cr_termios2 *t, const uint8_t *b, size_t len);

struct tty_node {
	pid_t pid, sid;
	uint32_t tty_nr;
};

/* Has every process (n[0] the root) its session leader's controlling terminal, or in
 * a session led from outside, the root's? Pure. */
int tty_check_sessions(const struct tty_node *n, size_t nr);
/* Dump, once every fd of the tree is known: each pty whole in the image, the bytes
 * queued in it (read, then put back), each session's controlling terminal and
 * foreground group. */
int tty_dump_tree(struct dump_ctx *ctx);
/* Restore: a session leader takes its terminal (right after its setsid); its
 * foreground group (in the last table, once every group exists). */
int tty_plan_ctty(struct restore_proc *rp, struct plan *p);
int tty_plan_foreground(struct restore_proc *rp, struct plan *p);
/* --shell-job: the restored job becomes the foreground of cryo's terminal, which goes
 * back to cryo's group once it ends. */
void tty_shell_foreground(struct restore_ctx *ctx);
void tty_shell_take_back(void);

#endif
