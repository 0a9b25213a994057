/* Stream and page-server cases of the harness (included by harness.c after
 * harness_bad.c): a damaged or cut stream is refused with one line before anything
 * runs; a refused dump says why in the stream; the page server round trip; a reader
 * or a page server gone mid-dump fails the dump and leaves its process unharmed. */

/* dump --stream of the victim into `file`; killed (reaped) unless leave. */
static int dump_to_file(struct run *r, const char *file, bool leave)
{
	char pid[16];
	char *argv[] = { (char *)cryo_bin, "dump", "-t", pid, "--stream",
			 leave ? "-R" : NULL, NULL };
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), status;
	pid_t p;

	if (fd < 0)
		return why("cannot create %s: %s", file, strerror(errno));
	snprintf(pid, sizeof(pid), "%d", r->pid);
	p = spawn_piped(argv, r->cryo_log, -1, fd);
	close(fd);
	if (wait_for(p, EXIT_TIMEOUT, &status))
		return -1;
	if (leave)
		return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return why("cryo dump --stream exited with status 0x%x", status);
	if (wait_for(r->pid, 10, &status))
		return -1;
	return 0;
}

/* restore --stream -d from `file`; its exit code. */
static int restore_from_file(struct run *r, const char *file)
{
	char pidfile[700];
	char *argv[] = { (char *)cryo_bin, "restore", "--stream", "-d", "--pidfile", pidfile,
			 NULL };
	int fd = open(file, O_RDONLY | O_CLOEXEC), status;
	pid_t p;

	if (fd < 0)
		return why("cannot open %s: %s", file, strerror(errno));
	snprintf(pidfile, sizeof(pidfile), "%s.pid", r->img);
	p = spawn_piped(argv, r->cryo_log, fd, -1);
	close(fd);
	if (wait_for(p, EXIT_TIMEOUT, &status))
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A copy of `from` cut to `len` bytes, one byte at `flip` changed (-1: none). */
static int damaged_copy(const char *from, const char *to, off_t len, off_t flip)
{
	size_t n;
	char *s = read_file(from, &n);
	int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), rc = 0;

	if (!s || fd < 0 || (size_t)len > n) {
		free(s);
		if (fd >= 0)
			close(fd);
		return why("cannot copy %s", from);
	}
	if (flip >= 0)
		s[flip] ^= 0x20;
	if (write(fd, s, len) != len)
		rc = why("cannot write %s", to);
	close(fd);
	free(s);
	return rc;
}

static int stream_size(const char *file, off_t *size)
{
	struct stat st;

	if (stat(file, &st))
		return why("cannot stat %s", file);
	*size = st.st_size;
	return 0;
}

/* Cut and flipped streams are refused, leaving nothing behind; the whole one then
 * restores (so the refusals were the damage's). */
static int bad_stream_damaged(struct run *r)
{
	char good[700], bad[700];
	off_t size = 0;
	int rc;

	if (start_victim(r, "restore-stream-damaged", NULL))
		return -1;
	snprintf(good, sizeof(good), "%s.stream", r->img);
	snprintf(bad, sizeof(bad), "%s.bad", r->img);
	if (dump_to_file(r, good, false) || stream_size(good, &size))
		return -1;
	{
		const struct { off_t len, flip; const char *needle; } cases[] = {
			{ 0, -1, "truncated after 0 bytes" },
			{ 10, -1, "truncated after 10 bytes" },
			{ size / 2, -1, "truncated after" },
			{ size - 40, -1, "truncated after" },
			{ size, 3, "not a cryo image stream" },
			{ size, 20, "damaged" },
			{ size, size / 2, "damaged" },
			{ size, size - 30, "damaged" },
		};

		for (size_t i = 0; i < CR_LEN(cases); i++) {
			if (damaged_copy(good, bad, cases[i].len, cases[i].flip))
				return -1;
			rc = restore_from_file(r, bad);
			if (expect_error(r, rc, cases[i].needle))
				return why("stream cut at %lld, byte %lld flipped: %s",
					   (long long)cases[i].len, (long long)cases[i].flip,
					   reason);
			if (!kill(r->pid, 0))
				return why("a refused stream left process %d behind", r->pid);
		}
	}
	if ((rc = restore_from_file(r, good)))
		return why("the whole stream did not restore (exit %d)", rc);
	want(r->pid);
	return victim_unharmed(r);
}

/* A dump refused midway ends its stream with the reason; restore says it. */
static int bad_stream_refused_dump(struct run *r)
{
	char file[700];
	int rc;

	if (start_prog_victim(r, "restore-stream-refused-dump", "t_notify", "aio"))
		return -1;
	snprintf(file, sizeof(file), "%s.stream", r->img);
	rc = dump_to_file(r, file, true);
	if (expect_error(r, rc, "AIO ring"))
		return -1;
	rc = restore_from_file(r, file);
	if (expect_error(r, rc, "the dump failed: ") || expect_error(r, rc, "AIO ring"))
		return -1;
	return victim_unharmed(r);
}

/* dump --page-server, then the dump's metadata copied next to the pages, and the
 * restore from there. */
static int page_server_roundtrip(struct run *r)
{
	char pid[16], ps_dir[700], portstr[16], pages[800];
	unsigned port = 0;
	pid_t server;
	int status, rc;

	if (start_prog_victim(r, "page-server", "t_big_memory", NULL))
		return -1;
	snprintf(ps_dir, sizeof(ps_dir), "%s.pages", r->img);
	server = start_page_server(r, ps_dir, &port);
	if (server < 0)
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	snprintf(portstr, sizeof(portstr), "%u", port);
	rc = run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, "--page-server", "--address",
		      "127.0.0.1", "--port", portstr, NULL);
	if (wait_for(server, EXIT_TIMEOUT, &status))
		return -1;
	if (rc)
		return why("cryo dump --page-server exited with %d", rc);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return why("the page server exited with status 0x%x", status);
	if (wait_for(r->pid, 10, &status))
		return -1;
	snprintf(pages, sizeof(pages), "%s/pages-%d.img", ps_dir, r->pid);
	if (access(pages, F_OK))
		return why("the page server wrote no %s", pages);
	if (copy_metadata(r->img, ps_dir) || step_restore_detached(r, ps_dir))
		return -1;
	return victim_unharmed(r);
}

/* A page server that takes the stream's first bytes and goes: the dump fails with
 * one line, and its process runs on. */
static int bad_page_server_gone(struct run *r)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	char pid[16], portstr[16], buf[4096];
	char *argv[] = { (char *)cryo_bin, "dump", "-t", pid, "-D", r->img, "--page-server",
			 "--address", "127.0.0.1", "--port", portstr, NULL };
	int lfd, conn, status, rc;
	pid_t dump;

	if (start_prog_victim(r, "dump-page-server-gone", "t_big_memory", NULL))
		return -1;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&a, &len))
		return why("cannot listen on 127.0.0.1: %s", strerror(errno));
	snprintf(pid, sizeof(pid), "%d", r->pid);
	snprintf(portstr, sizeof(portstr), "%u", ntohs(a.sin_port));
	dump = spawn(argv, r->cryo_log, false);
	conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	if (conn < 0)
		return why("accept: %s", strerror(errno));
	/* Some pages, then gone with data unread (a reset). */
	if (recv(conn, buf, sizeof(buf), MSG_WAITALL) != sizeof(buf))
		rc = why("the dump sent less than %zu bytes", sizeof(buf));
	close(conn);
	if (wait_for(dump, EXIT_TIMEOUT, &status))
		return -1;
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	if (expect_error(r, rc, "page server 127.0.0.1 port"))
		return -1;
	snprintf(buf, sizeof(buf), "%s/inventory.img", r->img);
	if (!access(buf, F_OK))
		return why("a failed dump --page-server left an inventory");
	return victim_unharmed(r);
}

/* The stream's reader takes the first bytes and goes (a cut ssh, say): the dump fails
 * with one line, and its process runs on. */
static int bad_stream_reader_gone(struct run *r)
{
	char pid[16], buf[4096];
	char *argv[] = { (char *)cryo_bin, "dump", "-t", pid, "--stream", NULL };
	int p[2], status;
	pid_t dump;

	if (start_prog_victim(r, "dump-stream-reader-gone", "t_big_memory", NULL))
		return -1;
	if (pipe2(p, O_CLOEXEC))
		return why("pipe: %s", strerror(errno));
	snprintf(pid, sizeof(pid), "%d", r->pid);
	dump = spawn_piped(argv, r->cryo_log, -1, p[1]);
	close(p[1]);
	for (size_t got = 0; got < sizeof(buf);) {
		ssize_t n = read(p[0], buf + got, sizeof(buf) - got);

		if (n <= 0)
			break;
		got += n;
	}
	close(p[0]);
	if (wait_for(dump, EXIT_TIMEOUT, &status))
		return -1;
	if (expect_error(r, WIFEXITED(status) ? WEXITSTATUS(status) : 128,
			 "the stream (stdout): the reader is gone"))
		return -1;
	return victim_unharmed(r);
}

/* Until the pipe holds `want` bytes (the dump is blocked writing), at most 60 s. */
static int wait_pipe_full(int fd, int want)
{
	for (int i = 0; i < 30000; i++) {
		int queued = 0;

		if (ioctl(fd, FIONREAD, &queued))
			return why("FIONREAD: %s", strerror(errno));
		if (queued >= want)
			return 0;
		reap_adopted();
		sleep_ms(2);
	}
	return why("the dump never filled the stream's pipe");
}

/* Nobody reads the stream: the dump blocks with its process frozen; cryo killed
 * then leaves the process running as it was. */
static int bad_stream_stalled_killed(struct run *r)
{
	char pid[16];
	char *argv[] = { (char *)cryo_bin, "dump", "-t", pid, "--stream", NULL };
	int p[2], status, size, rc;
	pid_t dump;

	if (start_prog_victim(r, "dump-stream-stalled-cryo-killed", "t_big_memory", NULL))
		return -1;
	victim_blocked = stable_mask(r->pid);
	if (pipe2(p, O_CLOEXEC))
		return why("pipe: %s", strerror(errno));
	snprintf(pid, sizeof(pid), "%d", r->pid);
	dump = spawn_piped(argv, r->cryo_log, -1, p[1]);
	close(p[1]);
	/* cryo makes the pipe 1 MiB (when the system lets it) before it writes. */
	rc = wait_pipe_full(p[0], 32 << 10);
	size = fcntl(p[0], F_GETPIPE_SZ);
	if (!rc && size > (64 << 10))	/* full, less what a partial page slot wastes */
		rc = wait_pipe_full(p[0], size - (32 << 10));
	kill(dump, SIGKILL);
	close(p[0]);
	if (wait_for(dump, 30, &status) || rc)
		return -1;
	if (reap_now(r->pid, &status) == r->pid)
		return why("the process ended (status 0x%x) when cryo was killed", status);
	return victim_free(r) || victim_unharmed(r) ? -1 : 0;
}

static void run_stream_cases(void)
{
	static const struct bad_case cases[] = {
		{ "restore-stream-damaged", bad_stream_damaged },
		{ "restore-stream-refused-dump", bad_stream_refused_dump },
		{ "dump-stream-reader-gone", bad_stream_reader_gone },
		{ "dump-stream-stalled-cryo-killed", bad_stream_stalled_killed },
		{ "page-server", page_server_roundtrip },
		{ "dump-page-server-gone", bad_page_server_gone },
	};

	run_cases(cases, CR_LEN(cases));
}
