/* PID 1 of the cross-kernel guest: mounts the basics, runs /xk/guest.sh, reaps every
 * orphan (restored processes outlive the cryo that restored them), then writes /out
 * as a tar archive to the output disk and powers off. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void run(char *const argv[])
{
	pid_t pid = fork(), r;
	int status;

	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	while ((r = wait(&status)) != pid && !(r < 0 && errno == ECHILD))
		;
}

int main(void)
{
	char *script[] = { "/bin/sh", "/xk/guest.sh", NULL };
	char *save[] = { "/bin/sh", "-c",
			 "tar -C /out -cf /dev/nvme0n1 . && sync && echo XK-SAVED", NULL };
	pid_t pid;
	int status;

	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mkdir("/dev/shm", 0777);
	mount("tmpfs", "/dev/shm", "tmpfs", 0, NULL);
	pid = fork();
	if (pid == 0) {
		setsid();
		execv(script[0], script);
		_exit(127);
	}
	/* Reap everything; the script's end ends the run. */
	for (;;) {
		pid_t r = wait(&status);

		if (r == pid) {
			printf("XK-SCRIPT-EXIT %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128);
			break;
		}
		if (r < 0 && errno == ECHILD)
			break;
	}
	run(save);
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
