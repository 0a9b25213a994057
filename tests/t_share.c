/* What processes of a tree share besides memory: a child made with CLONE_FILES |
 * CLONE_FS has its parent's fd table, cwd and umask (what it opens, where it goes,
 * the umask it sets, its parent sees); a plain forked child holds an open file
 * description of its parent's (its writes move the parent's offset). Checked after
 * restore from inside each. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tlib.h"

#define FD_SHARED 7
#define FD_BY_CHILD 9
#define CHILD_UMASK 0037

static char dir[4096], sub[4200];
static int go_pipe[2];		/* the parent tells each child to go on */
static int done_pipe[2];	/* the sharing child says it acted */

static void wait_token(int fd)
{
	char c;

	TL_CHECK(read(fd, &c, 1) == 1, "token pipe: %s", strerror(errno));
}

/* Shares the fd table and fs: acts after restore, the parent checks. */
static void sharing_child(void)
{
	int fd;

	wait_token(go_pipe[0]);
	fd = open("shared-by-child.txt", O_RDWR | O_CREAT, 0644);
	TL_CHECK(fd >= 0 && dup2(fd, FD_BY_CHILD) == FD_BY_CHILD, "child: open: %s",
		 strerror(errno));
	close(fd);
	TL_CHECK(!chdir(sub), "child: chdir: %s", strerror(errno));
	umask(CHILD_UMASK);
	TL_CHECK(write(done_pipe[1], "d", 1) == 1, "child: done pipe");
	_exit(0);
}

/* Holds FD_SHARED by inheritance: one open file description with the parent. */
static void forked_child(void)
{
	wait_token(go_pipe[0]);
	TL_CHECK(write(FD_SHARED, "0123456789", 10) == 10, "forked child: write: %s",
		 strerror(errno));
	_exit(0);
}

int main(int argc, char **argv)
{
	pid_t sharer, forked;
	char cwd[4200];
	struct stat st;
	int fd, status;

	tl_init();
	snprintf(dir, sizeof(dir), "%s/t_share.%d", argc > 1 ? argv[1] : ".", getpid());
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	TL_CHECK(!mkdir(dir, 0755) || errno == EEXIST, "mkdir");
	TL_CHECK(!mkdir(sub, 0755) || errno == EEXIST, "mkdir");
	TL_CHECK(!chdir(dir), "chdir");
	umask(022);
	fd = open("offset.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
	TL_CHECK(fd >= 0 && dup2(fd, FD_SHARED) == FD_SHARED, "open");
	close(fd);
	TL_CHECK(write(FD_SHARED, "abc", 3) == 3, "write");
	TL_CHECK(!pipe(go_pipe) && !pipe(done_pipe), "pipe");
	sharer = syscall(SYS_clone, CLONE_FILES | CLONE_FS | SIGCHLD, 0, 0, 0, 0);
	TL_CHECK(sharer >= 0, "clone: %s", strerror(errno));
	if (sharer == 0)
		sharing_child();
	forked = fork();
	TL_CHECK(forked >= 0, "fork");
	if (forked == 0)
		forked_child();
	tl_ready();
	tl_wait_go();
	TL_CHECK(write(go_pipe[1], "gg", 2) == 2, "go pipe");
	TL_CHECK(waitpid(forked, &status, 0) == forked && WIFEXITED(status) && !WEXITSTATUS(status),
		 "the forked child ended with 0x%x", status);
	TL_CHECK(lseek(FD_SHARED, 0, SEEK_CUR) == 13,
		 "the forked child's write did not move the shared offset (at %ld, not 13)",
		 (long)lseek(FD_SHARED, 0, SEEK_CUR));
	wait_token(done_pipe[0]);
	TL_CHECK(fcntl(FD_BY_CHILD, F_GETFD) >= 0 && !fstat(FD_BY_CHILD, &st),
		 "the fd the sharing child opened is not in the parent's table");
	TL_CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, sub),
		 "the sharing child's chdir did not move the parent (%s)", cwd);
	TL_CHECK(umask(0) == CHILD_UMASK, "the sharing child's umask is not the parent's");
	TL_CHECK(waitpid(sharer, &status, 0) == sharer && WIFEXITED(status) && !WEXITSTATUS(status),
		 "the sharing child ended with 0x%x", status);
	tl_pass();
}
