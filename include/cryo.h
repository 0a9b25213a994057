/* libcryo: checkpoint and restore Linux processes. The CLI (src/cli.c) is a thin layer
 * over these calls; other programs link libcryo (pkg-config --cflags --libs cryo).
 *
 * Conventions, for every function below unless it says otherwise:
 * - success returns 0; failure returns -1 and cryo_last_error() then describes the
 *   first thing that went wrong, in one line (errno is not meaningful);
 * - the calls share the process's state (the error, the verbosity, the log file): make
 *   one call at a time. dump and restore need root, or CAP_CHECKPOINT_RESTORE (or
 *   CAP_SYS_ADMIN) with CAP_SYS_PTRACE; a caller who is not root dumps and restores
 *   only its own processes (dump even without capabilities; docs/USAGE.md). During cryo_dump and cryo_restore SIGCHLD is
 *   reset to SIG_DFL and blocked (unblocked again at the end if it was not blocked).
 * - ABI: CRYO_ABI_VERSION is the N of libcryo.so.N. Any change of a structure's layout
 *   or of a function's meaning in a release makes it N+1. */
#ifndef CRYO_H
#define CRYO_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#define CRYO_ABI_VERSION 2

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
	/* --timeout: the most seconds from the seize to a complete image; past it the
	 * dump fails and the tree goes on untouched. 0: no limit beyond the 10 s each
	 * task gets to stop. */
	unsigned timeout;
	/* --stream: the whole image goes to stream_fd as one stream (docs/STREAM.md)
	 * instead of into dir. */
	bool stream;
	int stream_fd;
	/* --page-server: the raw (page) files go to the page server at
	 * page_server_address:page_server_port; the rest stays in dir. */
	const char *page_server_address;
	unsigned page_server_port;
	/* cryo pre-dump: memory only, the process left running with its writes tracked
	 * (userfaultfd write protection) for the next round. */
	bool pre_dump;
	/* --prev-images-dir: the previous round's image (relative to dir unless
	 * absolute); pages unchanged since are left there. Needs track_mem or pre_dump. */
	const char *prev_images_dir;
	/* --track-mem: use the parent's tracking; with leave_running, leave writes
	 * tracked for another round. */
	bool track_mem;
};

#define CRYO_TIMEOUT_MAX 86400

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
	bool lazy_pages;		/* private memory supplied after the tree runs */
	/* --stream: read the image as one stream from stream_fd (no dir): all of it is
	 * read and checked, in memory, before anything is restored. */
	bool stream;
	int stream_fd;
	/* --pidns: into a new PID namespace (and mount namespace, with its own /proc),
	 * the processes keeping their PIDs in it under an init of cryo's (PID 1), which
	 * exits with the root's status when the root exits. *root is then the root's PID
	 * outside; cryo's child is the init (cryo_wait_restored waits for it). */
	bool pidns;
	/* With lazy_pages: CRYO_LAZY_BACKGROUND fills every page in the background and the
	 * supplier exits once all are in; CRYO_LAZY_ON_TOUCH copies only the pages the tree
	 * touches, one at a time, and the supplier stays as long as any of the tree's
	 * address spaces does (copies of one image then share nothing they do not touch). */
	enum cryo_lazy_fill { CRYO_LAZY_BACKGROUND, CRYO_LAZY_ON_TOUCH } lazy_fill;
};

/* cryo page-server: receive the raw files of one dump --page-server on a TCP port
 * and write them into dir. */
struct cryo_page_server_opts {
	const char *dir;
	const char *address;		/* NULL: every address */
	unsigned port;			/* 0: any free port */
	int port_fd;			/* the port is written here once listening (-1: no) */
};

/* Dump the tree rooted at opts->pid into opts->dir (the process and all its
 * descendants). Everything cryo cannot restore faithfully makes it fail with nothing
 * changed: the tree goes on as if never touched, and no image is left. On success the
 * tree is killed, or left running with leave_running. */
int cryo_dump(const struct cryo_dump_opts *opts);
/* Restore the tree saved in opts->dir with its PIDs; on success *root gets the root's
 * PID. Without detach the caller is the root's parent and should wait for it
 * (cryo_wait_restored or waitpid). On failure every process it made is killed. */
int cryo_restore(const struct cryo_restore_opts *opts, pid_t *root);
/* Wait for a restored root, forwarding SIGINT and SIGTERM to it; returns its exit code
 * (128+N if killed by signal N), or -1 if it cannot be waited for. After a pidns
 * restore it waits for the namespace's init, which ends with the root's code. */
int cryo_wait_restored(pid_t root);
/* Serve one dump, then return (0: its pages are all stored in dir). */
int cryo_page_server(const struct cryo_page_server_opts *opts);
/* Probe the running kernel, printing one line per feature to out. Returns the number of
 * required features missing (0: all there; then cryo_last_error says how many). */
int cryo_check(FILE *out);
/* One probe by its name ("list": print the names): 1 if the feature works, 0 if
 * not, -1 for a name that is none. */
int cryo_check_feature(const char *name, FILE *out);
/* Print the image in dir as JSON to out (page contents summarised). */
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

/* The first error of the last failed call, one line; NULL if none. Valid until the
 * next call of cryo_dump, cryo_restore, cryo_show, cryo_check or a parser below. */
const char *cryo_last_error(void);
/* A size with an optional K, M or G suffix (powers of 1024): "1M", "4096". */
int cryo_parse_size(const char *arg, unsigned long long *out);
/* The reference's --cpu-cap[=CAP[,CAP...]] (CAP: all, cpu, fpu, ins, none; NULL: its
 * default, fpu). cryo always records the CPU and always checks on restore the
 * instruction sets and XSAVE components a process may use, which covers fpu, ins and
 * cpu; the one choice left is "none", alone: restore without that check. Sets *check
 * (false for "none"); returns -1 for an unknown cap, an empty one, or none mixed with
 * others. */
int cryo_parse_cpu_cap(const char *arg, bool *check);
/* "fd[N]:RESOURCE" (--inherit-fd) into *out. */
int cryo_parse_inherit_fd(const char *arg, struct cryo_inherit_fd *out);
/* 0: errors and warnings (the default); 1: progress; 2: debug. Never fails. */
void cryo_set_verbosity(int level);
/* Progress (at the verbosity set) goes to f instead of stderr, warnings to both; NULL
 * for stderr again. The caller owns f. Never fails. */
void cryo_set_log_file(FILE *f);
/* The file set by cryo_set_log_file, or NULL. */
FILE *cryo_log_file(void);
/* The library's release, e.g. "0.3.0"; never NULL. */
const char *cryo_version(void);
/* CRYO_ABI_VERSION of the library actually loaded: a program built with another
 * header can compare them. */
int cryo_abi_version(void);

#endif
