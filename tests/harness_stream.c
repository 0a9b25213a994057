/* The stream mode of the harness (included by harness.c): `cryo dump --stream` piped
 * into `cryo restore --stream`, the harness passing the bytes along and closing the
 * restore's input only once the dump has exited and its victim is reaped (a restore
 * reads to the end of its input: the PID is free by then). */

/* argv with stdin from `in` and stdout to `out` (either -1: /dev/null, the log);
 * stderr to log. */
static pid_t spawn_piped(char *const argv[], const char *log, int in, int out)
{
	pid_t pid = fork();

	if (pid > 0)
		want(pid);
	if (pid == 0) {
		child_stdio(log, false, in, out);
		if (out >= 0 && (dup2(3, 1) != 1 || close(3)))
			_exit(126);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Copy from -> to until from's end; 0, or -1 (reason set). */
static int relay(int from, int to, uint64_t *bytes)
{
	static char buf[1 << 20];

	for (;;) {
		struct pollfd pfd = { from, POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, (int)EXIT_TIMEOUT * 1000) != 1)
			return why("no stream from the dump within %.0f s", EXIT_TIMEOUT);
		n = read(from, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return why("reading the stream: %s", strerror(errno));
		if (!n)
			return 0;
		*bytes += n;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(to, buf + off, n - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return why("the restore stopped reading the stream: %s",
					   strerror(errno));
			off += w;
		}
	}
}

/* The dump's exit status and its victim's end, then the restore's input closed. */
static int stream_dump_done(struct run *r, pid_t dump, int to_restore)
{
	int status, rc = 0;

	if (wait_for(dump, EXIT_TIMEOUT, &status))
		rc = -1;
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		rc = why("cryo dump --stream exited with status 0x%x", status);
	else if (wait_for(r->pid, 10, &status))
		rc = -1;
	else if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		rc = why("after dump --stream the process ended with status 0x%x", status);
	close(to_restore);
	return rc;
}

static int step_stream(struct run *r)
{
	char pid[16], pidfile[700], buf[32] = "";
	char *dextra = dump_extra(r), *rextra = restore_extra(r);
	char *dargv[] = { (char *)cryo_bin, "dump", "-v", "-t", pid, "--stream", dextra, NULL };
	char *rargv[] = { (char *)cryo_bin, "restore", "-v", "--stream", "-d", "--pidfile",
			  pidfile, rextra, NULL };
	int dp[2] = { -1, -1 }, rp[2] = { -1, -1 }, rc, status, fd;
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	uint64_t bytes = 0;
	pid_t dump, restore;

	snprintf(pid, sizeof(pid), "%d", r->pid);
	snprintf(pidfile, sizeof(pidfile), "%s.pid", r->img);
	unlink(pidfile);
	if (pipe2(dp, O_CLOEXEC) || pipe2(rp, O_CLOEXEC)) {
		rc = why("pipe: %s", strerror(errno));
		goto out;
	}
	dump = spawn_piped(dargv, r->cryo_log, -1, dp[1]);
	restore = spawn_piped(rargv, r->cryo_log, rp[0], -1);
	close(dp[1]);
	close(rp[0]);
	rc = relay(dp[0], rp[1], &bytes);
	close(dp[0]);
	if (rc) {
		close(rp[1]);
		kill(dump, SIGKILL);
		wait_for(dump, 10, &status);
	} else {
		rc = stream_dump_done(r, dump, rp[1]);
	}
	if (wait_for(restore, EXIT_TIMEOUT, &status))
		rc = -1;
	else if (!rc && (!WIFEXITED(status) || WEXITSTATUS(status)))
		rc = why("cryo restore --stream exited with status 0x%x (%llu bytes of stream)",
			 status, (unsigned long long)bytes);
	if (rc)
		goto out;
	fd = open(pidfile, O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
		rc = why("restore --stream wrote no pidfile");
	else if (atoi(buf) != r->pid)
		rc = why("restored PID %d, expected %d", atoi(buf), r->pid);
	if (fd >= 0)
		close(fd);
	if (!rc)
		want(r->pid);
out:
	signal(SIGPIPE, old);
	free(dextra);
	free(rextra);
	return rc;
}
