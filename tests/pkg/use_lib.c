/* A program of libcryo's users, built against an installed libcryo through pkg-config
 * (tests/pkg/installed.sh): it checkpoints a sleeping child of its own with cryo_dump,
 * brings it back with cryo_restore, and checks it is alive with its memory intact, from
 * outside (/proc/PID/mem) and from inside (the child checks itself on SIGUSR1). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cryo.h>

#define BUF_SIZE (4u << 20)

static volatile sig_atomic_t checked;

static void on_usr1(int sig)
{
	(void)sig;
	checked = 1;
}

static unsigned char pattern(size_t i, unsigned seed)
{
	return (unsigned char)(((i * 2654435761u) >> 13) ^ seed);
}

static int intact(const unsigned char *buf, unsigned seed)
{
	for (size_t i = 0; i < BUF_SIZE; i++)
		if (buf[i] != pattern(i, seed))
			return 0;
	return 1;
}

/* The child: its own session, nothing open but /dev/null; it sleeps in sigsuspend
 * until SIGUSR1, then exits 0 if its buffer still holds the pattern, 3 if not. */
static void child(int ready, const unsigned char *buf, unsigned seed)
{
	sigset_t none;
	int null = open("/dev/null", O_RDWR);

	setsid();
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
	if (write(ready, "r", 1) != 1)
		_exit(4);
	close_range(3, ~0u, 0);
	sigemptyset(&none);
	while (!checked)
		sigsuspend(&none);
	_exit(intact(buf, seed) ? 0 : 3);
}

static int fail(const char *what)
{
	const char *e = cryo_last_error();

	printf("FAIL %s: %s\n", what, e ? e : "(no error recorded)");
	return 1;
}

/* The child's buffer as seen from outside, through /proc/PID/mem. */
static int intact_outside(pid_t pid, const unsigned char *addr, unsigned seed)
{
	unsigned char *copy = malloc(BUF_SIZE);
	char path[64];
	int fd, ok;

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDONLY);
	ok = copy && fd >= 0 && pread(fd, copy, BUF_SIZE, (off_t)(uintptr_t)addr) == BUF_SIZE &&
	     intact(copy, seed);
	if (fd >= 0)
		close(fd);
	free(copy);
	return ok;
}

static int dump_and_restore(pid_t pid, const char *dir, const unsigned char *buf,
			    unsigned seed)
{
	struct cryo_dump_opts d = { .pid = pid, .dir = dir };
	struct cryo_restore_opts r = { .dir = dir };
	pid_t root;
	int status;

	if (cryo_dump(&d))
		return fail("cryo_dump");
	if (waitpid(pid, &status, 0) == pid && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
		return printf("FAIL the dumped child ended with status 0x%x, not killed\n", status), 1;
	if (kill(pid, 0) == 0)
		return printf("FAIL the dumped child %d still runs\n", pid), 1;
	if (cryo_restore(&r, &root))
		return fail("cryo_restore");
	if (root != pid)
		return printf("FAIL restored as PID %d, not %d\n", root, pid), 1;
	if (!intact_outside(root, buf, seed))
		return printf("FAIL the restored child's memory differs (read from outside)\n"), 1;
	kill(root, SIGUSR1);
	if (waitpid(root, &status, 0) != root)
		return printf("FAIL cannot wait for the restored child\n"), 1;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return printf("FAIL the restored child ended with status 0x%x (3: its memory "
			      "differs)\n", status), 1;
	printf("ok restored PID %d, alive, %u bytes intact inside and out\n", root, BUF_SIZE);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	unsigned seed = (unsigned)getpid();
	unsigned char *buf;
	sigset_t usr1;
	int ready[2];
	Dl_info info;
	pid_t pid;
	char c;

	if (argc != 2)
		return fprintf(stderr, "usage: use_lib IMAGE_DIR\n"), 2;
	if (dladdr((void *)cryo_dump, &info) && info.dli_fname)
		printf("library %s\n", info.dli_fname);
	printf("version %s abi %d (header %d)\n", cryo_version(), cryo_abi_version(),
	       CRYO_ABI_VERSION);
	if (cryo_abi_version() != CRYO_ABI_VERSION)
		return printf("FAIL the library's ABI is not the header's\n"), 1;
	buf = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED || pipe(ready))
		return printf("FAIL mmap or pipe\n"), 1;
	for (size_t i = 0; i < BUF_SIZE; i++)
		buf[i] = pattern(i, seed);
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	pid = fork();
	if (pid < 0)
		return printf("FAIL fork\n"), 1;
	if (pid == 0)
		child(ready[1], buf, seed);
	close(ready[1]);
	/* Its "r", then the end of the pipe: the child has closed its copy too. */
	if (read(ready[0], &c, 1) != 1 || read(ready[0], &c, 1) != 0)
		return printf("FAIL the child did not start\n"), 1;
	close(ready[0]);
	if (dump_and_restore(pid, argv[1], buf, seed)) {
		kill(pid, SIGKILL);
		return 1;
	}
	return 0;
}
