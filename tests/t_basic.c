/* The smallest complete test: some heap, stack and static data with known contents,
 * verified after restore. With an argument it also holds something cryo must refuse
 * ("child", "pidns-child", "vfork", "thread", "flock", "lockf", "flock-mapped", "lease",
 * "seccomp-thread", "thread-vfork", "map", "nobody", "proc", "dead-cwd", "ghost-big", "replaced",
 * "ghost-no-dir", "memfd-hugetlb", "removed-dir", "removed-cwd", "memfd-future-write"),
 * for the bad-input cases; "nobody-ghost" and "nobody-root-ghost" run as nobody
 * holding a deleted file of nobody's or of root's. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tlib.h"

#define CR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static char static_data[64 << 10];

/* Hold a lock on a file in the work directory: flock or POSIX (lockf); a flock on a
 * file then closed but still mapped ("flock-mapped", what a JVM does with its
 * hsperfdata file); a read lease ("lease"). */
static void lock_file(const char *dir, const char *how)
{
	char path[512];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/basic-lock-%d", dir, getpid());
	fd = open(path, O_RDWR | O_CREAT, 0644);
	if (fd < 0 || ftruncate(fd, 4096) < 0)
		tl_fail("cannot open %s", path);
	/* A read lease needs a file nobody has open for writing. */
	if (!strcmp(how, "lease")) {
		close(fd);
		fd = open(path, O_RDONLY);
	}
	if (!strcmp(how, "lockf"))
		rc = lockf(fd, F_LOCK, 0);
	else if (!strcmp(how, "lease"))
		rc = fcntl(fd, F_SETLEASE, F_RDLCK);
	else
		rc = flock(fd, LOCK_EX);
	if (fd < 0 || rc)
		tl_fail("cannot lock %s: %s", path, strerror(errno));
	if (!strcmp(how, "flock-mapped")) {
		if (mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED)
			tl_fail("cannot map %s", path);
		close(fd);
	}
}

static void *idle_thread(void *arg)
{
	(void)arg;
	tl_thread_start();
	for (;;)
		pause();
	return NULL;
}

/* Map the library copy the harness put in the work directory (basic-map.so). */
static void map_copy(const char *dir)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/basic-map.so", dir);
	fd = open(path, O_RDONLY);
	if (fd < 0 || mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED)
		tl_fail("cannot map %s", path);
	close(fd);
}

/* Its own /proc: an open status file and the cwd; after restore the file must describe
 * the restored process. */
static int proc_status_fd = -1;

static void hold_own_proc(void)
{
	proc_status_fd = open("/proc/self/status", O_RDONLY);
	if (proc_status_fd < 0 || chdir("/proc/self/fd"))
		tl_fail("cannot open its own /proc");
}

static void check_own_proc(void)
{
	char buf[4096], want[32], cwd[64], fdpath[64];
	ssize_t n = pread(proc_status_fd, buf, sizeof(buf) - 1, 0);

	TL_CHECK(n > 0, "the /proc/self/status fd cannot be read: %s", strerror(errno));
	buf[n] = 0;
	snprintf(want, sizeof(want), "\nPid:\t%d\n", getpid());
	TL_CHECK(strstr(buf, want), "the status fd is not the process's own");
	snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd", getpid());
	TL_CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, fdpath), "cwd is %s, not %s", cwd,
		 fdpath);
}

/* A cwd in the /proc entry of a child that is gone. */
static void dead_cwd(void)
{
	char path[64];
	pid_t c = fork();

	if (c == 0) {
		pause();
		_exit(0);
	}
	snprintf(path, sizeof(path), "/proc/%d", c);
	if (chdir(path))
		tl_fail("chdir %s", path);
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
}

/* Files with no name any more that cryo refuses: a deleted file with 2 MiB of data
 * (above the default --ghost-limit), one replaced at its path by another, one whose
 * directory was removed too, a hugetlb memfd, a removed directory open and one as the
 * cwd, a memfd mapped writable and then sealed against future writes. */
static void nameless(const char *dir, const char *what)
{
	char path[512], other[520];
	static char buf[2 << 20];
	int fd = -1;

	snprintf(path, sizeof(path), "%s/basic-%s-%d", dir, what, getpid());
	snprintf(other, sizeof(other), "%s.new", path);
	if (!strcmp(what, "ghost-big")) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd < 0 || write(fd, buf, sizeof(buf)) != sizeof(buf) || unlink(path))
			tl_fail("ghost-big: %s", strerror(errno));
	} else if (!strcmp(what, "replaced")) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd < 0 || close(open(other, O_RDWR | O_CREAT | O_EXCL, 0600)) ||
		    rename(other, path))
			tl_fail("replaced: %s", strerror(errno));
	} else if (!strcmp(what, "memfd-hugetlb")) {
		fd = memfd_create("huge", MFD_HUGETLB);
	} else if (!strcmp(what, "removed-cwd")) {
		if (mkdir(path, 0700) || chdir(path) || rmdir(path))
			tl_fail("removed-cwd: %s", strerror(errno));
		return;
	} else if (!strcmp(what, "ghost-no-dir")) {
		snprintf(other, sizeof(other), "%s/f", path);
		if (mkdir(path, 0700) || (fd = open(other, O_RDWR | O_CREAT, 0600)) < 0 ||
		    unlink(other) || rmdir(path))
			tl_fail("ghost-no-dir: %s", strerror(errno));
	} else if (!strcmp(what, "removed-dir")) {
		if (mkdir(path, 0700) || (fd = open(path, O_RDONLY | O_DIRECTORY)) < 0 ||
		    rmdir(path))
			tl_fail("removed-dir: %s", strerror(errno));
	} else if (!strcmp(what, "memfd-future-write")) {
		fd = memfd_create("future", MFD_ALLOW_SEALING);
		if (fd < 0 || ftruncate(fd, 4096) ||
		    mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE))
			tl_fail("memfd-future-write: %s", strerror(errno));
		close(fd);
		return;
	} else {
		return;
	}
	if (fd < 0)
		tl_fail("%s: %s", what, strerror(errno));
}

/* A deleted file in a directory anyone can write (reached through an fd: the work
 * directory above it is root's), made by root before the process becomes nobody, or
 * by nobody after. */
static int ghost_fd = -1, ghost_dirfd = -1;
static uid_t ghost_uid;

static void nobody_ghost_dir(const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/nobody-ghosts-%d", dir, getpid());
	if (mkdir(path, 0777) || chmod(path, 0777) ||
	    (ghost_dirfd = open(path, O_PATH | O_DIRECTORY)) < 0)
		tl_fail("mkdir %s: %s", path, strerror(errno));
}

static void make_ghost(void)
{
	char name[64];

	snprintf(name, sizeof(name), "ghost-of-%u", getuid());
	ghost_fd = openat(ghost_dirfd, name, O_RDWR | O_CREAT | O_EXCL, 0640);
	if (ghost_fd < 0 || write(ghost_fd, static_data, 5000) != 5000 ||
	    unlinkat(ghost_dirfd, name, 0))
		tl_fail("ghost %s: %s", name, strerror(errno));
	ghost_uid = getuid();
}

static void check_ghost(void)
{
	uint8_t buf[5000];
	struct stat st;

	TL_CHECK(!fstat(ghost_fd, &st) && st.st_nlink == 0 && st.st_uid == ghost_uid &&
		 (st.st_mode & 07777) == 0640, "the deleted file is not as it was");
	TL_CHECK(pread(ghost_fd, buf, sizeof(buf), 0) == sizeof(buf) &&
		 !memcmp(buf, static_data, sizeof(buf)), "the deleted file's data differ");
}

/* A thread (not the leader) whose filter makes getppid fail with EPERM. */
static void *seccomp_thread(void *arg)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { CR_ARRAY_LEN(f), f };

	tl_thread_start();
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
		tl_fail("seccomp: %s", strerror(errno));
	*(volatile int *)arg = 1;
	for (;;)
		pause();
	return NULL;
}

/* A child that shares our memory (and so our go) and never calls exec: we wait in
 * vfork until it exits. */
static __attribute__((noinline)) void vfork_child(void)
{
	if (vfork() == 0) {
		tl_ready();
		while (!tl_go)
			pause();
		_exit(0);
	}
}

/* "thread-vfork": a thread waits in vfork (a killable sleep: no ptrace stop until the
 * child goes) for a child that waits for SIGUSR1; dump --timeout must give up. */
static pid_t vfork_pid;

static void *vfork_thread(void *arg)
{
	sigset_t none;
	pid_t c;

	tl_thread_start();
	sigemptyset(&none);
	c = vfork();
	if (c == 0) {
		vfork_pid = getpid();
		*(volatile int *)arg = 1;
		while (!tl_go)
			sigsuspend(&none);
		_exit(0);
	}
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	const char *extra = argc > 2 ? argv[2] : "";
	size_t heap_len = 1 << 20;
	uint8_t *heap = malloc(heap_len);
	char stack_data[4096];
	pid_t me = getpid(), child = 0;
	pthread_t th;

	tl_init();
	tl_fill(heap, heap_len, 1);
	tl_fill(static_data, sizeof(static_data), 2);
	tl_fill(stack_data, sizeof(stack_data), 3);
	if (!strcmp(extra, "pidns-child") && unshare(CLONE_NEWPID))
		tl_fail("unshare(CLONE_NEWPID): %s", strerror(errno));
	if (!strcmp(extra, "vfork"))
		vfork_child();
	if (!strcmp(extra, "child") || !strcmp(extra, "pidns-child")) {
		child = fork();
		if (child == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
	}
	if (!strcmp(extra, "flock") || !strcmp(extra, "lockf") || !strcmp(extra, "lease") ||
	    !strcmp(extra, "flock-mapped"))
		lock_file(argv[1], extra);
	if (!strcmp(extra, "thread"))
		pthread_create(&th, NULL, idle_thread, NULL);
	if (!strcmp(extra, "map"))
		map_copy(argv[1]);
	if (!strcmp(extra, "proc"))
		hold_own_proc();
	if (!strcmp(extra, "dead-cwd"))
		dead_cwd();
	nameless(argv[1], extra);
	if (!strncmp(extra, "nobody-", 7))
		nobody_ghost_dir(argv[1]);
	if (!strcmp(extra, "nobody-root-ghost"))
		make_ghost();
	if (!strncmp(extra, "nobody", 6) && (setgroups(0, NULL) ||
					    setresgid(65534, 65534, 65534) ||
					    setresuid(65534, 65534, 65534)))
		tl_fail("cannot become nobody");
	if (!strcmp(extra, "nobody-ghost"))
		make_ghost();
	if (ghost_dirfd >= 0)
		close(ghost_dirfd);
	if (!strcmp(extra, "seccomp-thread")) {
		static volatile int filtered;

		pthread_create(&th, NULL, seccomp_thread, (void *)&filtered);
		while (!filtered)
			usleep(1000);
	}
	if (!strcmp(extra, "thread-vfork")) {
		static volatile int up;

		pthread_create(&th, NULL, vfork_thread, (void *)&up);
		while (!up)
			usleep(1000);
		printf("VFORK-CHILD %d\n", vfork_pid);
	}
	tl_ready();
	tl_wait_go();
	TL_CHECK(getpid() == me, "pid changed from %d to %d", me, getpid());
	TL_CHECK(tl_verify(heap, heap_len, 1) < 0, "heap differs at %ld", tl_verify(heap, heap_len, 1));
	TL_CHECK(tl_verify(static_data, sizeof(static_data), 2) < 0, "static data differs");
	TL_CHECK(tl_verify(stack_data, sizeof(stack_data), 3) < 0, "stack data differs");
	if (proc_status_fd >= 0)
		check_own_proc();
	if (ghost_fd >= 0)
		check_ghost();
	if (child)
		kill(child, SIGKILL);
	tl_pass();
}
