/* Parsers for /proc/PID text files: pure functions from a buffer to a struct, so they
 * can be unit-tested and fuzzed without a live process. */
#ifndef CRYO_PROC_H
#define CRYO_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* VmFlags mnemonics of /proc/PID/smaps, as bits of our own (stable in images). */
enum {
	VMF_RD, VMF_WR, VMF_EX, VMF_SH, VMF_MR, VMF_MW, VMF_ME, VMF_MS,
	VMF_GD, VMF_PF, VMF_LO, VMF_IO, VMF_SR, VMF_RR, VMF_DC, VMF_DE,
	VMF_LF, VMF_AC, VMF_NR, VMF_HT, VMF_SF, VMF_AR, VMF_WF, VMF_DD,
	VMF_BT, VMF_SD, VMF_MM, VMF_HG, VMF_NH, VMF_MG, VMF_UM, VMF_UW,
	VMF_MT, VMF_UI, VMF_SS, VMF_DP, VMF_SL, VMF_GU,
	VMF_NR_BITS
};
#define VMF(x) (1ULL << VMF_##x)

/* The mnemonic of bit b, or NULL. */
const char *vmf_name(int bit);

struct proc_vma {
	uint64_t start, end, pgoff;
	uint32_t prot;			/* PROT_* */
	bool shared;			/* 's' in the perms column */
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	uint64_t vm_flags;		/* VMF_* */
	uint64_t unknown_flags;		/* 1 if VmFlags had a mnemonic we do not know */
	char unknown_flag[4];		/* the first such mnemonic */
	uint64_t anon_kb;		/* Anonymous: */
	uint64_t anon_huge_kb;		/* AnonHugePages: */
	char *path;			/* pathname column, NULL if empty (malloc'd) */
};

struct proc_vmas {
	struct proc_vma *v;
	size_t nr, cap;
};

/* Parse /proc/PID/smaps (or maps; then vm_flags stays 0). Returns 0 or -1 with the
 * error recorded (naming the line). */
int proc_parse_smaps(const char *buf, size_t len, struct proc_vmas *out);
void proc_vmas_free(struct proc_vmas *v);

struct proc_stat {
	pid_t pid;
	char comm[64];
	char state;
	pid_t ppid, pgid, sid;
	uint32_t tty_nr;			/* its controlling terminal's device, 0: none */
	pid_t tpgid;			/* that terminal's foreground group, -1: none */
	uint64_t flags;
	uint64_t start_code, end_code, start_stack;
	uint64_t start_data, end_data, start_brk;
	uint64_t arg_start, arg_end, env_start, env_end;
	int exit_signal;
	long num_threads;
	int exit_code;			/* a zombie's wait status */
};

#define CR_GROUPS_MAX 256
#define CR_PF_KTHREAD 0x00200000
#define CR_PF_EXITING 0x00000004

int proc_parse_stat(const char *buf, size_t len, struct proc_stat *out);

struct proc_status {
	pid_t tgid, ppid, tracer_pid;
	char state;
	uint32_t uid[4], gid[4];	/* real, effective, saved, fs */
	uint32_t groups[CR_GROUPS_MAX];
	int nr_groups;
	uint64_t sig_pnd, shd_pnd, sig_blk, sig_ign, sig_cgt;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int no_new_privs;
	int seccomp;
	int umask;			/* -1 if absent */
	int kthread;			/* -1 if absent */
	int threads;
	int nspid_levels;		/* number of entries in NSpid */
};

int proc_parse_status(const char *buf, size_t len, struct proc_status *out);

struct proc_fdinfo {
	uint64_t pos;
	uint32_t flags;
	int mnt_id;
	uint64_t ino;
};

int proc_parse_fdinfo(const char *buf, size_t len, struct proc_fdinfo *out);
/* The number on fdinfo's "key:" line (base 8, 10 or 16, "0x" allowed for 16): 1 if
 * found, 0 if there is no such line, -1 if it is malformed. */
int proc_fdinfo_number(const char *buf, size_t len, const char *key, int base, uint64_t *out);

/* A timerfd's fdinfo: its clock, expirations not read yet, settime flags, the time to
 * the next expiry (0: disarmed) and the interval. */
struct proc_timerfd {
	int clockid;
	uint64_t ticks;
	uint32_t flags;
	uint64_t value_ns, interval_ns;
};
int proc_parse_timerfd(const char *buf, size_t len, struct proc_timerfd *out);

/* "Pid:" of a pidfd's fdinfo (-1: the process was reaped). */
int proc_parse_pidfd(const char *buf, size_t len, int *pid);

/* One "inotify" line of an inotify fd's fdinfo. sdev is the kernel's internal dev_t
 * (major << 20 | minor); the handle is for open_by_handle_at. */
struct proc_inotify_watch {
	int wd;
	uint64_t ino;
	uint32_t sdev;
	uint32_t mask;
	int handle_type;
	uint32_t handle_bytes;
	uint8_t handle[128];
};

/* The watches of an inotify fd's fdinfo; *out is malloc'd. */
int proc_parse_inotify(const char *buf, size_t len, struct proc_inotify_watch **out, size_t *nr);

/* The mount point of a mount of device major:minor whose root is the file system's
 * own, from mountinfo text: 1 if found, 0 if none, -1 if malformed. */
int proc_mount_of_dev(const char *buf, size_t len, unsigned int major, unsigned int minor,
		      char *out, size_t outlen);
/* What reading a POSIX message queue gives, "QSIZE:n NOTIFY:n SIGNO:n NOTIFY_PID:n":
 * bytes queued and the notification registered (notify_pid 0: none). */
struct proc_mq_status {
	uint64_t qsize;
	int64_t notify, signo, notify_pid;
};
int proc_parse_mq_status(const char *buf, size_t len, struct proc_mq_status *out);

struct proc_epoll_target {
	int tfd;
	uint32_t events;
	uint64_t data;
};

/* The "tfd:" lines of an epoll fd's fdinfo; *out is malloc'd. */
int proc_parse_epoll(const char *buf, size_t len, struct proc_epoll_target **out, size_t *nr);

/* One entry of /proc/PID/timers. */
struct proc_timer {
	int id;
	int signo;
	uint64_t sigev_value;
	int notify;		/* SIGEV_* value, with SIGEV_THREAD_ID when "tid" */
	pid_t notify_pid;
	int clock_id;
};

/* Parse /proc/PID/timers; *out is malloc'd. */
int proc_parse_timers(const char *buf, size_t len, struct proc_timer **out, size_t *nr);

/* The numeric names in a /proc directory (fd, task), sorted; *out is malloc'd. */
int proc_list_numbers(const char *path, int **out, size_t *nr);
/* The thread ids in /proc/PID/task. */
int proc_list_tasks(pid_t pid, pid_t **tids, size_t *nr);

/* Read a whole /proc file into a NUL-terminated malloc'd buffer. */
char *proc_read_file(const char *path, size_t *len);
char *proc_read_pid_file(pid_t pid, const char *name, size_t *len);
/* The start of a small /proc/PID file into buf (NUL-terminated), with no error
 * recorded (the process may be gone): the bytes read, or -1. */
ssize_t proc_peek_pid_file(pid_t pid, const char *name, char *buf, size_t size);

#endif
