/* File locks (file_locks.c): flock and OFD locks belong to an open file description
 * and are kept in its FileEntry; POSIX locks belong to a process and are kept in its
 * Core. Leases are refused. */
#ifndef CRYO_FILE_LOCKS_H
#define CRYO_FILE_LOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fd_kind.h"
#include "task.h"

enum lock_class { LC_FLOCK, LC_POSIX, LC_OFD, LC_LEASE, LC_OTHER };

#define LOCK_TO_EOF UINT64_MAX

/* One line of /proc/locks, or of an fdinfo "lock:" line without its "lock:\t". */
struct proc_lock {
	int kind;			/* enum lock_class */
	bool waiter;			/* "->": a request blocked behind the lock above */
	bool advisory;			/* "ADVISORY" (the only kind kernels have now) */
	bool write;			/* WRITE; READ otherwise (UNLCK: a lease breaking) */
	bool unlock;			/* UNLCK */
	int pid;			/* -1: an OFD lock on recent kernels */
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	uint64_t start, end;		/* inclusive; end LOCK_TO_EOF for "EOF" */
	char kind_name[12];		/* as printed (POSIX, FLOCK, LEASE, ...) */
};

/* Parse one line (len bytes, no newline needed); 0, or -1 (no error recorded: the
 * caller says where the line is from). */
int lock_parse_line(const char *s, size_t len, struct proc_lock *out);
/* The lock of an image (kind, write, start, len) for a parsed held lock; -1 (nothing
 * recorded) for a lock of no such kind or not plainly held. */
int lock_to_pb(const struct proc_lock *l, FileLock *out);

/* Dump: the "lock:" lines of one fd (pr->fdinfo); e is its file, new the first time
 * the tree's fds reach that open file description. */
int locks_dump_fd(const struct fd_probe *pr, FileEntry *e, bool new);
/* Dump, once every fd of the tree is read: every lock /proc/locks lists that belongs
 * to the tree must have been seen through an fd. */
int locks_dump_check(struct dump_ctx *ctx);
void locks_dump_free(struct dump_ctx *ctx);
void locks_free_entry(FileEntry *e);

/* Restore: are a file's / a process's locks sound? Pure. */
int locks_check_entry(const FileEntry *e);
int locks_check_core(const Core *c, const FileTable *ft);
/* Restore: take a file's flock and OFD locks on cryo's fd for it. */
int locks_take(const FileEntry *e, int fd);
/* Restore: the calls taking the process's POSIX locks, last in its final table. */
int locks_plan_posix(struct restore_proc *rp, struct plan *p);

#endif
