/* Raw system call wrappers glibc lacks and kernel constants newer than the 6.1
 * headers this project builds against (the kernels it runs on are newer). */
#ifndef CRYO_SYS_H
#define CRYO_SYS_H

#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#include <linux/sched.h>

#define CR_PTRACE_GET_RSEQ_CONFIGURATION 0x420f
struct cr_rseq_configuration {
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size;
	uint32_t signature;
	uint32_t flags;
	uint32_t pad;
};

/* PAGEMAP_SCAN (6.7) */
#define CR_PAGEMAP_SCAN		0xc0606610	/* _IOWR('f', 16, struct pm_scan_arg) */
#define CR_PAGE_IS_WPALLOWED	(1 << 0)
#define CR_PAGE_IS_WRITTEN	(1 << 1)
#define CR_PAGE_IS_FILE		(1 << 2)
#define CR_PAGE_IS_PRESENT	(1 << 3)
#define CR_PAGE_IS_SWAPPED	(1 << 4)
#define CR_PAGE_IS_PFNZERO	(1 << 5)
#define CR_PAGE_IS_HUGE		(1 << 6)
#define CR_PAGE_IS_SOFT_DIRTY	(1 << 7)
#define CR_PAGE_IS_GUARD	(1 << 8)	/* 6.14 */

struct cr_pm_scan_arg {
	uint64_t size;
	uint64_t flags;
	uint64_t start;
	uint64_t end;
	uint64_t walk_end;
	uint64_t vec;
	uint64_t vec_len;
	uint64_t max_pages;
	uint64_t category_inverted;
	uint64_t category_mask;
	uint64_t category_anyof_mask;
	uint64_t return_mask;
};

struct cr_page_region {
	uint64_t start;
	uint64_t end;
	uint64_t categories;
};

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif

#ifndef PR_SET_MM
#define PR_SET_MM 35
#endif
#ifndef PR_SET_MM_MAP
#define PR_SET_MM_MAP 14
#define PR_SET_MM_MAP_SIZE 15
#endif

struct cr_prctl_mm_map {
	uint64_t start_code;
	uint64_t end_code;
	uint64_t start_data;
	uint64_t end_data;
	uint64_t start_brk;
	uint64_t brk;
	uint64_t start_stack;
	uint64_t arg_start;
	uint64_t arg_end;
	uint64_t env_start;
	uint64_t env_end;
	uint64_t auxv;
	uint32_t auxv_size;
	uint32_t exe_fd;
};

#ifndef __NR_mseal
#define __NR_mseal 462
#endif
#ifndef __NR_rseq
#define __NR_rseq 334
#endif
#ifndef RSEQ_FLAG_UNREGISTER
#define RSEQ_FLAG_UNREGISTER 1
#endif
#define CR_RSEQ_SIG 0x53053053

#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif

/* struct clone_args with set_tid (5.5) */
struct cr_clone_args {
	uint64_t flags;
	uint64_t pidfd;
	uint64_t child_tid;
	uint64_t parent_tid;
	uint64_t exit_signal;
	uint64_t stack;
	uint64_t stack_size;
	uint64_t tls;
	uint64_t set_tid;
	uint64_t set_tid_size;
	uint64_t cgroup;
};

/* Kernel-side struct sigaction for rt_sigaction on x86_64. */
struct cr_ksigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

#define CR_SA_RESTORER 0x04000000

static inline long sys_clone3(struct cr_clone_args *args)
{
	return syscall(__NR_clone3, args, sizeof(*args));
}

static inline int sys_pidfd_open(pid_t pid, unsigned int flags)
{
	return syscall(__NR_pidfd_open, pid, flags);
}

static inline int sys_pidfd_getfd(int pidfd, int fd)
{
	return syscall(__NR_pidfd_getfd, pidfd, fd, 0);
}

static inline int sys_tgkill(pid_t tgid, pid_t tid, int sig)
{
	return syscall(__NR_tgkill, tgid, tid, sig);
}

static inline int sys_kcmp(pid_t p1, pid_t p2, int type, unsigned long a, unsigned long b)
{
	return syscall(__NR_kcmp, p1, p2, type, a, b);
}

#define CR_PAGE_SIZE 4096UL
#define CR_PAGE_MASK (~(CR_PAGE_SIZE - 1))
#define CR_ALIGN_UP(x, a) (((x) + (a) - 1) & ~((a) - 1))
#define CR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CR_MAX(a, b) ((a) > (b) ? (a) : (b))

/* The highest user address on x86_64 with 4-level paging. */
#define CR_TASK_SIZE 0x7ffffffff000UL

#endif
