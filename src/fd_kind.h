/* The kinds of open file: one file per kind (file_path.c, file_epoll.c, file_pipe.c, ...)
 * holds both halves behind these hooks; files.c keeps the fd table, sharing and
 * installing. A new kind is a new file, a FileKind value with its submessage in
 * proto/cryo.proto, and one line in files.c's list. */
#ifndef CRYO_FD_KIND_H
#define CRYO_FD_KIND_H

#include <stdbool.h>
#include <sys/stat.h>

#include "proc.h"
#include "task.h"

/* Open flags that describe how a file was opened, without one-shot creation flags. */
#define KEEP_FLAGS (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECT | \
		    O_NOATIME | O_DIRECTORY | O_NOFOLLOW | O_LARGEFILE | O_PATH)

/* What dump knows of one fd before its kind looks at it. */
struct fd_probe {
	struct dump_proc *p;
	int fd;
	const char *link;		/* its /proc/PID/fd/N link */
	const struct stat *st;		/* stat through that link */
	const char *fdinfo;
	size_t fdinfo_len;
	const struct proc_fdinfo *fi;
};

/* The task opens it itself (files_plan), not cryo. */
#define FD_BY_TASK (-2)

struct fd_kind {
	const char *name;
	bool (*handles)(FileKind k);
	/* dump: is this fd of the kind? */
	bool (*match)(const struct fd_probe *pr);
	/* dump: fill the entry (kind, flags and submessage). */
	int (*dump)(const struct fd_probe *pr, FileEntry *e);
	/* dump, after every fd of the process: what needs them all (epoll watches). */
	int (*check_all)(struct dump_proc *p);
	/* restore: is the entry from the image sound? */
	int (*check)(const FileEntry *e);
	/* restore: once the table is checked, before any file is opened: what the host
	 * must have for the kind's entries (addresses a socket is bound to). */
	int (*preflight)(struct restore_ctx *ctx);
	/* restore: an fd in cryo for the task to inherit, or FD_BY_TASK. */
	int (*open)(struct restore_ctx *ctx, const FileEntry *e);
	/* restore: every entry is open; what cryo kept for them can go. */
	void (*open_done)(struct restore_ctx *ctx);
	/* restore: for FD_BY_TASK, the calls opening it onto fd 0. */
	int (*plan_open)(struct restore_proc *rp, struct plan *p, const FileEntry *e);
	/* restore: calls once the fd table is in place. */
	int (*plan_after)(struct restore_proc *rp, struct plan *p, const Fd *f, const FileEntry *e);
	/* restore: for FD_BY_TASK that needs every process of the tree (pidfds): the calls
	 * in the last table opening it onto fd `lowest_free` and moving it to f->fd. */
	int (*plan_final)(struct restore_proc *rp, struct plan *p, const Fd *f, const FileEntry *e,
			  int lowest_free);
	void (*free)(FileEntry *e);
};

extern const struct fd_kind path_kind, epoll_kind, pipe_kind, eventfd_kind, signalfd_kind,
	timerfd_kind, pidfd_kind, inotify_kind, opath_kind, mqueue_kind, tty_kind,
	unix_kind, memfd_kind, tcp_kind, netlink_kind, packet_kind, raw_kind, udp_kind;

/* Shared by the kinds (files.c). */
/* Is pid one of the dumped tree's processes? */
bool file_tree_has(const struct dump_ctx *ctx, pid_t pid);
/* Every fd of every process outside the tree (and not cryo): visit(pid, fds, name,
 * arg), with `fds` its /proc/PID/fd directory, until one returns non-zero; that value,
 * or 0. */
int file_scan_outside(const struct dump_ctx *ctx,
		      int (*visit)(pid_t pid, int fds, const char *name, void *arg), void *arg);
/* A process outside the tree (and not cryo) holding socket `ino` in an fd, 0 if none,
 * -1 on error. One scan of /proc for the whole dump, freed with the dump. */
pid_t file_socket_outside(struct dump_ctx *ctx, uint64_t ino);
void file_sockets_outside_free(struct dump_ctx *ctx);
int file_table_push(struct file_table *ft, FileEntry **out);
void file_key_set(struct file_table *ft, const struct stat *st, uint32_t flags, pid_t pid, int fd);
bool file_link_deleted(const char *link);
bool file_in_own_proc(const struct dump_proc *p, const char *path);
/* The open flags of another fd of the process (its fdinfo). */
int file_fd_flags(pid_t pid, int fd, uint32_t *flags);
/* A copy of a process's fd in cryo (pidfd_getfd). */
int file_fd_dup(pid_t pid, int fd);
/* Is the fd a socket of this address family (SO_DOMAIN)? Its type and protocol (either
 * may be NULL). Quiet: false on any error. */
bool file_sock_is(const struct fd_probe *pr, int domain, int *type, int *protocol);
/* The same open file description as an fd already in the table: its id, or 0. */
uint32_t file_find_shared(struct file_table *ft, pid_t pid, int fd, const struct stat *st);

/* Deleted files (file_ghost.c), for file_path.c. */
int ghost_dump_fd(const struct fd_probe *pr, FileEntry *e);
int ghost_check(const FileEntry *e);
int ghost_open(struct restore_ctx *ctx, const FileEntry *e);
void ghost_free(GhostFile *g);
/* Files cryo makes again (ghosts, memfds): the entries naming one are opened ahead,
 * while cryo may, and taken by id (then all closed by ghost_ahead_done). */
int ghost_open_all(struct restore_ctx *ctx, const FileEntry *creator, int mfd,
		   bool (*names)(const FileEntry *e, const FileEntry *creator),
		   uint64_t (*pos_of)(const FileEntry *e), const char *what, int *own);
int ghost_ahead_take(struct restore_ctx *ctx, uint32_t id);
void ghost_ahead_done(struct restore_ctx *ctx);
/* Its owner as at dump, with cryo's rights only for cryo's own image. */
int ghost_set_owner(struct restore_ctx *ctx, int fd, uint32_t uid, uint32_t gid,
		    const char *what);

/* Paths (file_path.c): cwd and root, checked like fds. */
PathFile *path_new(FileEntry *e, const char *path, const struct stat *st);
int path_add_dir(struct dump_proc *p, const char *what, uint32_t *id);
/* The calls for the task to chdir to a directory entry (fd: cryo's, or 0). */
void path_plan_chdir(struct plan *p, const FileEntry *e, int fd, const char *label);

/* Message queues (file_mqueue.c): once the image's PIDs are free, each queue gets its
 * messages (a queue taken back is emptied first); at the end, on failure, the queues
 * made go again. */
int mqueue_restore_contents(struct restore_ctx *ctx);
void mqueue_restore_finish(struct restore_ctx *ctx, bool ok);

#endif
