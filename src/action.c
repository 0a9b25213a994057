/* --action-script: the user's script, run through sh at the reference's stages of a
 * dump or a restore, with its environment variables; a script that fails fails the
 * operation (which then leaves the processes as it found them). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "action.h"
#include "log.h"

static __attribute__((noreturn)) void run_script(const char *script, const char *stage,
						  const char *dir, pid_t pid)
{
	char abs[PATH_MAX], num[16];
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	syscall(SYS_close_range, 3, ~0U, 0);
	snprintf(num, sizeof(num), "%d", pid);
	setenv("CRTOOLS_SCRIPT_ACTION", stage, 1);
	if (dir)	/* none with --stream */
		setenv("CRTOOLS_IMAGE_DIR", realpath(dir, abs) ? abs : dir, 1);
	else
		unsetenv("CRTOOLS_IMAGE_DIR");
	if (pid > 0)
		setenv("CRTOOLS_INIT_PID", num, 1);
	else
		unsetenv("CRTOOLS_INIT_PID");
	execl("/bin/sh", "sh", "-c", script, (char *)NULL);
	_exit(127);
}

int action_run(const char *script, const char *stage, const char *dir, pid_t pid)
{
	int status;
	pid_t child;

	if (!script)
		return 0;
	pr_info("action script: %s", stage);
	fflush(NULL);
	child = fork();
	if (child < 0)
		return cr_perr("--action-script, %s: cannot start the script", stage);
	if (!child)
		run_script(script, stage, dir, pid);
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return cr_perr("--action-script, %s: waiting for the script", stage);
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return 0;
	if (WIFSIGNALED(status))
		return cr_err("--action-script, %s: the script was killed by signal %d", stage,
			      WTERMSIG(status));
	return cr_err("--action-script, %s: the script exited with status %d", stage,
		      WEXITSTATUS(status));
}
