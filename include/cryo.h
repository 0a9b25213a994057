/* libcryo: checkpoint and restore Linux processes. The CLI (src/cli.c) is a thin layer
 * over these calls; other programs can link libcryo.a and use them directly. */
#ifndef CRYO_H
#define CRYO_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

struct cryo_dump_opts {
	pid_t pid;			/* the process (tree root) to dump */
	const char *dir;		/* image directory, created 0700 if missing */
	bool leave_running;		/* resume the process after the dump */
	bool shell_job;			/* allow a session/group led outside the tree */
	bool ext_unix_sk;		/* datagram sockets connected outside: reconnect */
	/* --tcp-skip-in-flight: leave connections not accepted yet out of the image */
	bool tcp_skip_in_flight;
	bool tcp_established;		/* dump TCP connections (their traffic locked meanwhile) */
	/* --action-script: run through sh at pre-dump, network-lock, post-dump and
	 * network-unlock (the reference's stages and environment), or NULL. */
	const char *action_script;
	bool tcp_close;			/* record TCP connections as closed */
	/* --ghost-limit: the most data a deleted file still open or mapped may hold
	 * (its bytes outside holes, which go into the image); 0: CRYO_GHOST_LIMIT. */
	unsigned long long ghost_limit;
};

#define CRYO_GHOST_LIMIT (1ULL << 20)

enum cryo_vdso_mode { CRYO_VDSO_AUTO, CRYO_VDSO_REMAP, CRYO_VDSO_PROXY };

/* How a file the process maps is checked at restore (the reference's
 * --file-validation): its ELF build-id and size, falling back to size and mtime for
 * files without one; or its size only. */
enum cryo_file_validation { CRYO_VALIDATE_BUILDID, CRYO_VALIDATE_FILESIZE };

/* --inherit-fd fd[N]:WHAT: cryo's fd N stands for a resource of the image that lies
 * outside it, named as dump named it ("pipe:[INODE]"). */
struct cryo_inherit_fd {
	int fd;
	char what[64];
};
#define CRYO_MAX_INHERIT_FD 64

struct cryo_restore_opts {
	const char *dir;
	bool detach;			/* -d: return once the process runs */
	const char *pidfile;		/* write the root PID here */
	bool shell_job;
	enum cryo_vdso_mode vdso;
	bool ignore_cpu;		/* --cpu-cap=none */
	enum cryo_file_validation file_validation;
	bool trust_image;		/* an image of another user: at most its rights */
	const struct cryo_inherit_fd *inherit;
	size_t nr_inherit;
	bool ext_unix_sk;		/* connect such sockets to their names again */
	/* --action-script: pre-restore, post-restore, pre-resume, network-unlock,
	 * post-resume, or NULL. */
	const char *action_script;
	bool tcp_established;		/* restore the image's TCP connections */
	bool tcp_close;			/* restore them closed */
};

/* All return 0 on success, -1 on failure with cryo_last_error() set. */
int cryo_dump(const struct cryo_dump_opts *opts);
/* Restore; on success *root gets the restored root PID. Without detach the caller
 * stays the parent and should wait for it (cryo_wait_restored). */
int cryo_restore(const struct cryo_restore_opts *opts, pid_t *root);
/* Wait for a restored process, forwarding SIGINT/SIGTERM; returns its exit code
 * (128+N if killed by signal N). */
int cryo_wait_restored(pid_t root);
/* Probe the running kernel; prints one line per feature. Returns the number of
 * missing required features. */
int cryo_check(FILE *out);
/* One probe by its name ("list": print the names): 1 if the feature works, 0 if
 * not, -1 for a name that is none. */
int cryo_check_feature(const char *name, FILE *out);
/* Print an image directory as JSON. */
int cryo_show(const char *dir, FILE *out);
/* Print the parts asked for: a summary (the tree; per process its comm, threads,
 * memory by kind, fds by kind), then the JSON document. */
#define CRYO_SHOW_SUMMARY 1u
#define CRYO_SHOW_JSON 2u
int cryo_show_parts(const char *dir, unsigned parts, FILE *out);

/* After cryo_dump or cryo_restore (failed or not): the time each phase took, and the
 * pages of each process, as a table (cryo --display-stats) or as JSON (--stats FILE).
 * Return 0, or -1 if writing to f failed. */
int cryo_stats_print(FILE *f);
int cryo_stats_json(FILE *f);

const char *cryo_last_error(void);
/* A size with an optional K, M or G suffix (powers of 1024): "1M", "4096". */
int cryo_parse_size(const char *arg, unsigned long long *out);
/* "fd[N]:RESOURCE" into *out; -1 if it is not of that form. */
int cryo_parse_inherit_fd(const char *arg, struct cryo_inherit_fd *out);
/* 0: errors and warnings; 1: progress; 2: debug. */
void cryo_set_verbosity(int level);
/* Progress (at the verbosity set) goes to f instead of stderr, warnings to both; NULL
 * for stderr again. The caller owns f. */
void cryo_set_log_file(FILE *f);
FILE *cryo_log_file(void);
const char *cryo_version(void);

#endif
