/* The contexts passed to every kind of state: one process being dumped, one process
 * being restored. Each feature file fills (dump) or consumes (restore) its part. */
#ifndef CRYO_TASK_H
#define CRYO_TASK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpu.h"
#include "cryo.pb-c.h"
#include "image.h"
#include "plan.h"
#include "proc.h"
#include "remote.h"
#include "userns.h"
#include "trust.h"
#include "vdso.h"

#define CR_MAX_FDS 65536

/* Files opened by the dumped process or needed to rebuild it, shared by all. */
struct file_table {
	FileEntry **files;
	size_t nr, cap;
	/* Dump: identity of each entry, to merge duplicates. */
	struct file_key {
		uint64_t dev, ino;
		uint32_t flags;
		pid_t pid;
		int fd;		/* for kcmp: an fd of pid holding this description */
	} *keys;
};

struct shmem_table {
	ShmemObject **objs;
	size_t nr, cap;
};

struct dump_ctx {
	struct img_dir dir;
	struct userns_ids caller;	/* who runs cryo: not root, it dumps only its own */
	bool leave_running;
	bool shell_job;
	bool ext_unix_sk;		/* --ext-unix-sk */
	bool tcp_skip_in_flight;	/* --tcp-skip-in-flight: drop unaccepted connections */
	bool tcp_close;			/* --tcp-close: connections recorded closed */
	uint64_t ghost_limit;		/* largest data of a deleted file (file_ghost.c) */
	struct file_table files;
	struct shmem_table shmem;
	void *ipc;			/* ipc_sysv.c's System V objects */
	struct dump_proc **procs;	/* the tree, parents first; procs[0] the root */
	size_t nr_procs, cap_procs;
	void *locks;			/* file_locks.c's locks seen through fds */
	void *socks_outside;		/* files.c's sockets held outside the tree */
	bool tcp_established;		/* --tcp-established: connections are dumped */
	void *track;			/* mem_track.c's parent image and tracker */
};

struct dump_proc {
	struct dump_ctx *ctx;
	pid_t pid;
	bool zombie;			/* only pid, stat and the wait status are known */
	int exit_status;		/* a zombie's, as waitpid reports it */
	struct borrow_area borrow;	/* where its threads are borrowed from */
	struct rthread *rts;		/* the threads held, in tids order */
	struct proc_stat stat;
	struct proc_status status;
	struct proc_vmas vmas;
	Core core;
	MmState mm;
	pid_t *tids;			/* seized threads, the leader first */
	size_t nr_threads;
	ThreadState *threads;		/* one per tid */
	ThreadState **thread_ptrs;
	PageMap pagemap;
	int group_stop;			/* the signal of the group stop it was in, or 0 */
	bool seized;
	uint8_t *vdso_img;		/* its vDSO's bytes as found */
	uint8_t *vdso_clean;		/* the same without what a dead cryo left */
	struct vdso_layout vdso_layout;
	uint64_t brk;			/* the program break, as the process read it */
	VdsoInfo vdso;			/* its vDSO as it sees it (core.vdso) */
	ControllingTty ctty;		/* core.ctty, when it has one (file_tty.c) */
	void *track;			/* mem_track.c's state of this process */
};

struct restore_ctx {
	struct img_dir dir;
	Inventory *inv;
	PsTree *tree;
	struct restore_proc **procs;	/* as in the tree: parents first, procs[0] the root */
	size_t nr_procs;
	uint64_t area_base, area_size;	/* every plan of the tree, in one range */
	FileTable *files;
	ShmemTable *shmem;
	int *file_fds;			/* cryo's fd for each FileTable entry, -1 if none */
	int *shmem_fds;
	int fd_base;			/* fds inherited by the new task start here */
	int next_fd;
	struct vdso_runtime rt_vdso;
	int vdso_mode;			/* enum cryo_vdso_mode */
	bool ignore_cpu;
	bool shell_job;
	bool detach;
	bool pidns;			/* restoring as PID 1 of a new PID namespace */
	int file_validation;		/* enum cryo_file_validation */
	struct trust trust;
	void *pipes;			/* file_pipe.c's pipes made so far */
	void *ipc;			/* ipc_sysv.c's System V objects */
	void *mqueues;			/* file_mqueue.c's queues made or taken back */
	void *ttys;			/* file_tty.c's pty pairs made so far */
	void *unix_socks;		/* file_unix.c's sockets made so far */
	bool ext_unix_sk;		/* --ext-unix-sk */
	void *netlock;			/* net_lock.c's NetLock of the image, if any */
	bool tcp_established, tcp_close;	/* --tcp-established, --tcp-close */
	void *ghosts;			/* file_ghost.c's and file_memfd.c's fds opened ahead */
	const struct cryo_inherit_fd *inherit;	/* --inherit-fd */
	size_t nr_inherit;
	uint32_t *tree_pids;		/* every PID and TID of the image */
	size_t nr_tree_pids;
	const Creds *creds;		/* the root's, to open the files with */
	struct cpu_info cpu_image;	/* the dumping CPU */
	struct cpu_info cpu_here;
	bool xstate_differs;		/* xstate buffers need cpu_xstate_convert */
	void *chain;			/* mem_track.c's parent images, opened as needed */
	bool lazy_pages;		/* --lazy-pages */
	int fill_ok;			/* mem_fill.c: 0 not asked yet, 1 can, -1 cannot */
	bool lazy_on_touch;		/* --lazy-fill on-touch: no background fill */
	void *lazy;			/* mem_lazy.c's supplier, once started */
};

/* Where a restored process's vDSO goes, and how (vdso.c). */
struct vdso_place {
	bool has_vdso;			/* the image has one */
	bool proxy;
	struct vdso_layout dst;		/* the dumped vDSO's place */
	bool has_cur;
	struct vdso_layout cur;		/* the running vDSO block when its plan starts */
	uint64_t temp;			/* remap: a free place to move through */
	uint64_t new_vdso;		/* proxy: where the running vDSO goes */
};

struct restore_proc {
	struct restore_ctx *ctx;
	const ProcessEntry *pe;
	struct restore_proc *parent;	/* NULL for the root */
	struct restore_proc **children;
	size_t nr_children;
	bool zombie;
	Core *core;			/* NULL for a zombie */
	PageMap *pm;
	int page_fd;
	uint64_t page_bytes;
	/* The page files the pages come from: srcs[0] is page_fd, the others a pre-dump
	 * chain's (mem_track.c); segs, in address order, say what comes from where. */
	struct page_src {
		struct img_dir *dir;
		const PageMap *pm;
		int fd;
		uint64_t bytes;
		uint64_t *offs;		/* each run's place in its file */
		const uint8_t *map;	/* the file mapped while a fill reads it (page_map.c) */
	} *srcs;
	size_t nr_srcs;
	struct page_seg {
		uint64_t vaddr, len, off;
		uint32_t src;
	} *segs;
	size_t nr_segs;
	struct plan plan;
	pid_t pid;
	bool created;
	struct user_regs_struct regs_base;	/* at its first stop; each table starts so */
	size_t nr_threads;
	uint64_t *thread_tables;	/* plan table of each thread (0: the leader's) */
	/* The leader's later tables, each run across the tree in turn: its process
	 * group, a zombie's end, then what comes last. */
	uint64_t table_group, stop_group, table_exit, table_final, stop_final;
	uint64_t *thread_stops;		/* the stop block ending each table */
	int stop_sig;			/* the signal those stops use */
	bool *thread_created;		/* the leader made it (cryo traces it) */
	/* Page reads planned, to check their results. */
	struct { size_t call; uint64_t bytes; } *reads;
	size_t nr_reads, max_reads;
	struct vdso_place vp;
	uint8_t *proxy;			/* vDSO proxy bytes */
	int proxy_fds[3];		/* memory files of the proxy and its placeholders */
	/* --lazy-pages (mem_lazy.c): which VMAs and segments the supplier fills, the
	 * calls making and closing the task's userfaultfd, the table after it. */
	bool lazy;
	bool fill_now;			/* marked so, but cryo fills it at once */
	bool *lazy_vmas, *lazy_segs;
	size_t lazy_call, lazy_close;
	uint64_t table_main2, stop_main2;
	int lazy_uffd, lazy_pidfd;
};

/* A file opened for the new task, moved above every fd number it will use. */
int restore_inherit_fd(struct restore_ctx *ctx, int fd, const char *what);
const FileEntry *file_by_id(const FileTable *ft, uint32_t id);

#endif
