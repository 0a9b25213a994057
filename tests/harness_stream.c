/* The stream and page-server modes of the harness (included by harness.c): `cryo
 * dump --stream` piped into `cryo restore --stream`, the harness passing the bytes
 * along and closing the restore's input only once the dump has exited and its victim
 * is reaped (a restore reads to the end of its input: the PID is free by then); and
 * `cryo dump --page-server` to a `cryo page-server` on loopback, the dump's metadata
 * then copied next to the pages and restored from there. */

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
		become_user();
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

/* cryo page-server on 127.0.0.1, any port: its pid, and the port it printed. */
static pid_t start_page_server(struct run *r, const char *dir, unsigned *port)
{
	char *argv[] = { (char *)cryo_bin, "page-server", "-D", (char *)dir, "--address",
			 "127.0.0.1", "--port", "0", NULL };
	char line[32];
	int p[2];
	ssize_t n = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return why("pipe: %s", strerror(errno));
	pid = spawn_piped(argv, r->cryo_log, -1, p[1]);
	close(p[1]);
	/* One line, written once it listens. */
	while (n < (ssize_t)sizeof(line) - 1) {
		ssize_t got = read(p[0], line + n, sizeof(line) - 1 - n);

		if (got <= 0)
			break;
		n += got;
		if (memchr(line, '\n', n))
			break;
	}
	close(p[0]);
	line[n > 0 ? n : 0] = 0;
	*port = atoi(line);
	if (!*port) {
		kill(pid, SIGKILL);
		wait_for(pid, 10, NULL);
		return why("the page server printed no port ('%s')", line);
	}
	return pid;
}

static int copy_metadata(const char *from, const char *to)
{
	DIR *d = opendir(from);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return why("cannot open %s", from);
	while (!rc && (de = readdir(d))) {
		char src[1200], dst[1200];
		size_t n;
		char *s;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		if (!strncmp(de->d_name, "pages-", 6)) {
			rc = why("the dump directory holds %s: the pages went there", de->d_name);
			break;
		}
		snprintf(src, sizeof(src), "%s/%s", from, de->d_name);
		snprintf(dst, sizeof(dst), "%s/%s", to, de->d_name);
		s = read_file(src, &n);
		fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (!s || fd < 0 || write(fd, s, n) != (ssize_t)n)
			rc = why("cannot copy %s to %s", src, dst);
		if (fd >= 0)
			close(fd);
		give_to_user(dst);
		free(s);
	}
	closedir(d);
	return rc;
}

/* The page-server mode: one dump --page-server, the restore from the server's
 * directory. */
static int step_page_server(struct run *r)
{
	char pid[16], ps_dir[700], portstr[16];
	char *extra = dump_extra(r);
	unsigned port = 0;
	pid_t server;
	int status, rc;

	snprintf(ps_dir, sizeof(ps_dir), "%s.pages", r->img);
	server = start_page_server(r, ps_dir, &port);
	if (server < 0) {
		free(extra);
		return -1;
	}
	snprintf(pid, sizeof(pid), "%d", r->pid);
	snprintf(portstr, sizeof(portstr), "%u", port);
	rc = run_cryo(r->cryo_log, "dump", "-v", "-t", pid, "-D", r->img, "--page-server",
		      "--address", "127.0.0.1", "--port", portstr, extra, NULL);
	free(extra);
	if (wait_for(server, EXIT_TIMEOUT, &status))
		return -1;
	if (rc)
		return rc < 0 ? -1 : why("cryo dump --page-server exited with %d", rc);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return why("the page server exited with status 0x%x", status);
	if (wait_for(r->pid, 10, &status))
		return -1;
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		return why("after dump the process ended with status 0x%x, not SIGKILL", status);
	return copy_metadata(r->img, ps_dir) || step_restore_detached(r, ps_dir) ? -1 : 0;
}
