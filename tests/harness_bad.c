/* Bad-input cases of the harness (included by harness.c): each expects cryo to fail
 * with one clear line naming what and where, a non-zero exit, the dumped process
 * still running unharmed, and nothing half-restored. Last, image-size cases check
 * that an image holds only what it must. */

#define CR_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CR_P_PIDFD 3			/* waitid's, Linux 5.4 */

/* Start test program `prog` (with an optional extra argument) and wait until it is
 * ready. */
static int start_prog_victim_arg(struct run *r, const char *name, const char *prog,
				 const char *extra, const char *arg)
{
	char path[600], *argv[] = { path, work, (char *)extra, (char *)arg, NULL };

	run_dir(r, name, "bad");
	snprintf(path, sizeof(path), "%s/%s", tests_dir, prog);
	r->pid = spawn(argv, r->log, true);
	if (r->pid < 0)
		return why("fork failed");
	return wait_ready(r->pid, r->log);
}

static int start_prog_victim(struct run *r, const char *name, const char *prog,
			     const char *extra)
{
	return start_prog_victim_arg(r, name, prog, extra, NULL);
}

static int start_victim(struct run *r, const char *name, const char *extra)
{
	return start_prog_victim(r, name, "t_basic", extra);
}

/* The last line cryo printed must be an error naming `needle`. */
static int expect_error(struct run *r, int rc, const char *needle)
{
	size_t len;
	char *out = read_file(r->cryo_log, &len);
	char *last;
	int ok;

	if (rc == 0) {
		free(out);
		return why("cryo succeeded where it should have failed");
	}
	if (rc < 0) {
		free(out);
		return -1;
	}
	if (!out) {
		return why("cryo printed nothing");
	}
	while (len && out[len - 1] == '\n')
		out[--len] = 0;
	last = strrchr(out, '\n');
	last = last ? last + 1 : out;
	ok = strstr(last, "cryo") && strstr(last, needle);
	if (!ok)
		why("expected an error line with '%s', got '%s'", needle, last);
	free(out);
	return ok ? 0 : -1;
}

static int victim_unharmed(struct run *r)
{
	/* Adopted from a restore run with run_cryo: the harness waits for it, so its end
	 * is not reaped as a stray's meanwhile (waitpid then found no child). */
	want(r->pid);
	return finish(r, r->pid);
}

static void bad_result(const char *name, struct run *r, int rc)
{
	if (rc && r->pid > 0)
		kill(r->pid, SIGKILL);
	reap_orphans();
	result(name, "bad input", rc, rc ? r->log : NULL, rc ? r->cryo_log : NULL);
}

/* ---- dump ---- */

static int bad_dump_no_pid(struct run *r)
{
	run_dir(r, "dump-no-such-pid", "bad");
	return expect_error(r, run_cryo(r->cryo_log, "dump", "-t", "4000000", "-D", r->img, NULL),
			    "no process with PID 4000000");
}

static int bad_dump_kthread(struct run *r)
{
	run_dir(r, "dump-kernel-thread", "bad");
	return expect_error(r, run_cryo(r->cryo_log, "dump", "-t", "2", "-D", r->img, NULL),
			    "kernel thread");
}

static int dump_victim(struct run *r, const char *dir, const char *needle)
{
	char pid[16];

	snprintf(pid, sizeof(pid), "%d", r->pid);
	if (expect_error(r, run_cryo(r->cryo_log, "dump", "-t", pid, "-D", dir, NULL), needle))
		return -1;
	return victim_unharmed(r);
}

static int bad_dump_traced(struct run *r)
{
	char pid[16], needle[64];
	int rc;

	if (start_victim(r, "dump-already-traced", NULL))
		return -1;
	if (ptrace(PTRACE_SEIZE, r->pid, 0, 0))
		return why("cannot seize the victim: %s", strerror(errno));
	snprintf(pid, sizeof(pid), "%d", r->pid);
	snprintf(needle, sizeof(needle), "already traced by PID %d", getpid());
	rc = expect_error(r, run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, NULL), needle);
	/* Detaching needs a stopped tracee. */
	ptrace(PTRACE_INTERRUPT, r->pid, 0, 0);
	waitpid(r->pid, NULL, __WALL);
	ptrace(PTRACE_DETACH, r->pid, 0, 0);
	return rc ? rc : victim_unharmed(r);
}

static int bad_dump_not_a_dir(struct run *r)
{
	if (start_victim(r, "dump-dir-is-a-file", NULL))
		return -1;
	return dump_victim(r, "/etc/hostname", "image directory /etc/hostname");
}

static int bad_dump_disk_full(struct run *r)
{
	char mnt[700];
	int rc;

	if (start_victim(r, "dump-disk-full", NULL))
		return -1;
	snprintf(mnt, sizeof(mnt), "%s/full", r->dir);
	mkdir(mnt, 0700);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k,mode=0700"))
		return why("cannot mount a small tmpfs: %s", strerror(errno));
	rc = dump_victim(r, mnt, "No space left on device");
	if (!rc) {
		char inv[800];
		DIR *d = opendir(mnt);
		struct dirent *de;
		int files = 0;

		snprintf(inv, sizeof(inv), "%s/inventory.img", mnt);
		while (d && (de = readdir(d)))
			files += de->d_name[0] != '.';
		if (d)
			closedir(d);
		if (!access(inv, F_OK) || files)
			rc = why("a failed dump left %d files behind", files);
	}
	umount(mnt);
	return rc;
}

/* stdin is a pipe the harness holds: dump records it as external; restore refuses
 * without --inherit-fd naming it, and with it the process has the same pipe. */
static int bad_restore_external_pipe(struct run *r)
{
	char path[600], pid[16], arg[64], ino[40], *argv[] = { path, work, "external", NULL };
	int p[2], rc = -1;
	struct stat st;

	run_dir(r, "restore-external-pipe", "bad");
	snprintf(path, sizeof(path), "%s/t_pipes", tests_dir);
	if (pipe2(p, O_CLOEXEC) || fstat(p[0], &st))
		return why("pipe: %s", strerror(errno));
	r->pid = spawn_with(argv, r->log, true, p[0], -1);
	if (r->pid < 0 || wait_ready(r->pid, r->log) || write(p[1], "before\n", 7) != 7)
		goto out;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	snprintf(ino, sizeof(ino), "pipe:[%lu]", (unsigned long)st.st_ino);
	snprintf(arg, sizeof(arg), "fd[3]:%s", ino);
	if (step_dump(r, r->img, false))
		goto out;
	if (expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", NULL), ino) ||
	    expect_error(r, 1, "--inherit-fd fd[N]:pipe:["))
		goto out;
	if (!kill(r->pid, 0)) {
		why("a refused restore left process %d behind", r->pid);
		goto out;
	}
	rc = run_cryo_giving(p[0], r->cryo_log, "restore", "-D", r->img, "-d", "--inherit-fd", arg,
			     NULL);
	if (rc) {
		rc = why("restore with --inherit-fd %s exited with %d", arg, rc);
		goto out;
	}
	rc = write(p[1], "after\n", 6) == 6 ? victim_unharmed(r) : why("write: %s", strerror(errno));
out:
	close(p[0]);
	close(p[1]);
	return rc;
}

/* t_unix in one of its bad cases (extra, arg). */
static int start_unix_victim(struct run *r, const char *name, const char *extra, const char *arg)
{
	return start_prog_victim_arg(r, name, "t_unix", extra, arg);
}

/* A stream socket connected to a listener of the harness's (outside the tree, the
 * connection accepted): refused, naming the listener's path. */
static int bad_dump_unix_outside(struct run *r)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), c = -1, rc = -1;

	snprintf(a.sun_path, sizeof(a.sun_path), "%.80s/bad-unix-outside.sock", work);
	unlink(a.sun_path);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 4))
		return why("cannot listen on %s: %s", a.sun_path, strerror(errno));
	if (start_unix_victim(r, "dump-unix-outside", "outside", a.sun_path))
		goto out;
	c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0) {
		why("accept: %s", strerror(errno));
		goto out;
	}
	rc = dump_victim(r, r->img, a.sun_path);
out:
	if (c >= 0)
		close(c);
	close(l);
	unlink(a.sun_path);
	return rc;
}

static int bad_dump_unix_unaccepted_data(struct run *r)
{
	if (start_unix_victim(r, "dump-unix-unaccepted-data", "unaccepted-data", NULL))
		return -1;
	return dump_victim(r, r->img, "not accepted yet carries data");
}

/* A datagram socket connected to the harness's socket: refused without --ext-unix-sk
 * (naming the path and the option); dumped with it, restore refuses without it and
 * with it connects the socket there again: the harness gets what it sends. */
static int restore_unix_ext_dgram(struct run *r)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = -1;
	struct timeval tv = { 10, 0 };
	char pid[16], buf[16];

	snprintf(a.sun_path, sizeof(a.sun_path), "%.80s/ext-dgram.sock", work);
	unlink(a.sun_path);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) ||
	    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		return why("cannot bind %s: %s", a.sun_path, strerror(errno));
	if (start_unix_victim(r, "restore-unix-ext-dgram", "extdgram", a.sun_path))
		goto out;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	if (expect_error(r, run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, NULL),
			 a.sun_path) || expect_error(r, 1, "--ext-unix-sk"))
		goto out;
	rc = run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, "--ext-unix-sk", NULL);
	if (rc || wait_for(r->pid, 10, NULL)) {
		rc = rc > 0 ? why("dump --ext-unix-sk exited with %d", rc) : -1;
		goto out;
	}
	rc = -1;
	if (expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", NULL),
			 "restore with --ext-unix-sk"))
		goto out;
	rc = run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", "--ext-unix-sk", NULL);
	if (rc) {
		rc = why("restore --ext-unix-sk exited with %d", rc);
		goto out;
	}
	kill(r->pid, SIGUSR1);
	rc = recv(s, buf, sizeof(buf), 0) == 5 && !memcmp(buf, "after", 5) ? 0 :
	     why("the restored socket does not reach %s", a.sun_path);
	if (!rc)
		rc = victim_unharmed(r);
out:
	close(s);
	unlink(a.sun_path);
	return rc;
}

/* Restore fails with an error naming `needle` and leaves no process behind. */
static int restore_refused(struct run *r, const char *needle)
{
	if (expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", NULL), needle))
		return -1;
	if (!kill(r->pid, 0))
		return why("a refused restore left process %d behind", r->pid);
	return 0;
}

/* Restore while socket *s holds what the image needs: refused naming it (`needle`);
 * once *s is closed, restore goes through and the process is unharmed. */
static int restore_once_free(struct run *r, const char *needle, int *s)
{
	if (restore_refused(r, needle))
		return -1;
	close(*s);
	*s = -1;
	return step_restore_detached(r, r->img) ? -1 : victim_unharmed(r);
}

/* After the dump, another live socket is bound at the path of t_unix's listener:
 * restore refuses and leaves nothing behind; once that socket is closed (its file
 * left stale), restore goes through. */
static int bad_restore_unix_path_taken(struct run *r)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = -1;

	if (l < 0 || start_unix_victim(r, "restore-unix-path-taken", NULL, NULL))
		goto out;
	snprintf(a.sun_path, sizeof(a.sun_path), "%.80s/t_unix.sock.%d", work, r->pid);
	if (step_dump(r, r->img, false))
		goto out;
	unlink(a.sun_path);
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1)) {
		why("cannot listen on %s: %s", a.sun_path, strerror(errno));
		goto out;
	}
	rc = restore_once_free(r, "is in use by another socket", &l);
out:
	if (l >= 0)
		close(l);
	return rc;
}

/* The first process in /proc that `match` takes (given its /proc/PID directory), or 0. */
static pid_t proc_find(bool (*match)(const char *dir, const void *arg), const void *arg)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;

	while (d && !found && (de = readdir(d))) {
		char dir[300];

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(dir, sizeof(dir), "/proc/%s", de->d_name);
		if (match(dir, arg))
			found = atoi(de->d_name);
	}
	if (d)
		closedir(d);
	return found;
}

/* Its NSpid line ends in PID *arg, in a namespace other than the host's. */
static bool holds_inner_pid(const char *dir, const void *arg)
{
	char path[320], want[32], *st, *at, *tab;
	bool yes;

	snprintf(path, sizeof(path), "%s/status", dir);
	st = read_proc(path);
	at = st ? strstr(st, "\nNSpid:\t") : NULL;
	tab = at ? strchr(at + 8, '\t') : NULL;
	snprintf(want, sizeof(want), "\t%d\n", *(const pid_t *)arg);
	yes = tab && tab < strchr(at + 1, '\n') && !strncmp(tab, want, strlen(want));
	free(st);
	return yes;
}

/* A process of some PID namespace with PID `inner` in it, other than the host's own:
 * what a failed --pidns restore must not leave. */
static pid_t pidns_holder(pid_t inner)
{
	return proc_find(holds_inner_pid, &inner);
}

/* The same under --pidns: the error comes out of the namespace's init, and the
 * namespace is gone with every process the restore made in it. */
static int bad_restore_pidns_unix_path_taken(struct run *r)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = -1;
	pid_t left;

	if (l < 0 || start_unix_victim(r, "restore-pidns-unix-path-taken", NULL, NULL))
		goto out;
	snprintf(a.sun_path, sizeof(a.sun_path), "%.80s/t_unix.sock.%d", work, r->pid);
	if (step_dump(r, r->img, false))
		goto out;
	unlink(a.sun_path);
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1)) {
		why("cannot listen on %s: %s", a.sun_path, strerror(errno));
		goto out;
	}
	if (expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", "--pidns",
				     NULL), "is in use by another socket"))
		goto out;
	left = pidns_holder(r->pid);
	rc = left ? why("a refused --pidns restore left process %d (PID %d inside)", left,
			r->pid) : 0;
out:
	if (l >= 0)
		close(l);
	return rc;
}

static int bad_dump_unix_rights(struct run *r)
{
	if (start_unix_victim(r, "dump-unix-scm-rights", "rights", NULL))
		return -1;
	return dump_victim(r, r->img, "in flight in its queue (SCM_RIGHTS)");
}

/* ---- TCP sockets (t_tcp_listen) ---- */

static int start_tcp_victim(struct run *r, const char *name, const char *extra, const char *arg)
{
	return start_prog_victim_arg(r, name, "t_tcp_listen", extra, arg);
}

static unsigned tcp_port_of(int fd)
{
	struct sockaddr_in a = { 0 };
	socklen_t l = sizeof(a);

	return getsockname(fd, (struct sockaddr *)&a, &l) ? 0 : ntohs(a.sin_port);
}

/* A connection from here to 127.0.0.1:port that has sent "ping"; -1 on error. */
static int tcp_ping(unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr = { htonl(INADDR_LOOPBACK) } };
	struct timeval tv = { 20, 0 };	/* against a hang only */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) || send(fd, "ping", 4, MSG_NOSIGNAL) != 4) {
		why("cannot reach 127.0.0.1:%u: %s", port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The accept queue of the listener on 127.0.0.1:port (/proc/net/tcp), or -1. */
static int accept_queue(unsigned port)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	int n = -1;

	while (f && n < 0 && fgets(line, sizeof(line), f)) {
		unsigned lport, st, rq;

		if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*x:%x", &lport, &st, &rq) == 3 &&
		    lport == port && st == 0x0a)
			n = rq;
	}
	if (f)
		fclose(f);
	return n;
}

/* Until the kernel has put the connection on the queue (it does so on its own time
 * after connect returns). */
static int wait_queued(unsigned port)
{
	for (int i = 0; i < 5000; i++) {
		if (accept_queue(port) >= 1)
			return 0;
		sleep_ms(2);
	}
	return why("the connection to port %u never reached the accept queue", port);
}

static int expect_pong(int fd, const char *what)
{
	char buf[8] = "";

	if (recv(fd, buf, sizeof(buf), MSG_WAITALL) != 4 || memcmp(buf, "pong", 4))
		return why("%s got no answer", what);
	return 0;
}

/* A connection on a listener's queue, not accepted: dump refuses, naming the count and
 * --tcp-skip-in-flight, and leaves it queued; with the flag the dump goes through, the
 * queued connection is reset with the killed tree, and the restored listener takes a
 * new one. */
static int bad_dump_tcp_unaccepted(struct run *r)
{
	char pid[16], needle[160], buf[8];
	unsigned port;
	int c1 = -1, c2 = -1, rc = -1;

	if (start_tcp_victim(r, "dump-tcp-unaccepted", "queue", NULL))
		return -1;
	port = asked(r, "TCP-PORT ", 0, 0, 65535);
	c1 = tcp_ping(port);
	if (c1 < 0 || wait_queued(port))
		goto out;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	snprintf(needle, sizeof(needle), "listening socket 127.0.0.1:%u has 1 connection not "
		 "accepted yet; use --tcp-skip-in-flight to drop them", port);
	if (expect_error(r, run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, NULL), needle))
		goto out;
	if (kill(r->pid, 0) || accept_queue(port) != 1) {
		why("after the refused dump the listener's queue is %d", accept_queue(port));
		goto out;
	}
	rc = run_cryo(r->cryo_log, "dump", "-v", "-t", pid, "-D", r->img, "--skip-in-flight", NULL);
	if (rc || wait_for(r->pid, 10, NULL)) {
		rc = rc > 0 ? why("dump --skip-in-flight exited with %d", rc) : -1;
		goto out;
	}
	rc = -1;
	if (recv(c1, buf, sizeof(buf), 0) > 0) {
		why("the connection left out of the image still gets data");
		goto out;
	}
	if (step_restore_detached(r, r->img))
		goto out;
	c2 = tcp_ping(port);
	if (c2 < 0 || victim_unharmed(r))
		goto out;
	rc = expect_pong(c2, "the connection to the restored listener");
out:
	if (c1 >= 0)
		close(c1);
	if (c2 >= 0)
		close(c2);
	return rc;
}

static int bad_dump_tcp_connection(struct run *r)
{
	if (start_tcp_victim(r, "dump-tcp-connection", "conn", NULL))
		return -1;
	return dump_victim(r, r->img, "; dump it with --tcp-established");
}

/* Dumped with --tcp-close: restore refuses without the flag, naming it, before
 * making anything. */
static int bad_restore_tcp_close(struct run *r)
{
	char pid[16];
	int rc, status;

	if (start_tcp_victim(r, "restore-tcp-close", "conn", NULL))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	rc = run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, "--tcp-close", NULL);
	if (rc)
		return rc < 0 ? -1 : why("dump --tcp-close exited with %d", rc);
	if (wait_for(r->pid, 10, &status))
		return -1;
	/* Before anything is made (its listener's port is in TIME_WAIT for a while:
	 * the connection closed as the process was killed). */
	return restore_refused(r, "dumped with --tcp-close; restore it with --tcp-close");
}

/* A listener the harness holds too (given as the victim's fd 3): refused, naming the
 * harness. */
static int bad_dump_tcp_outside(struct run *r)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr = { htonl(INADDR_LOOPBACK) } };
	char path[600], needle[160], *argv[] = { path, work, "inherited", NULL };
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = -1;

	run_dir(r, "dump-tcp-held-outside", "bad");
	snprintf(path, sizeof(path), "%s/t_tcp_listen", tests_dir);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1)) {
		why("cannot listen: %s", strerror(errno));
		goto out;
	}
	r->pid = spawn_with(argv, r->log, true, -1, l);
	if (r->pid < 0 || wait_ready(r->pid, r->log))
		goto out;
	snprintf(needle, sizeof(needle), "fd 3 (TCP socket 127.0.0.1:%u): process %d outside the "
		 "image holds it too", tcp_port_of(l), getpid());
	rc = dump_victim(r, r->img, needle);
out:
	if (l >= 0)
		close(l);
	return rc;
}

/* After the dump, the harness listens on the port of the image's v4 listener:
 * restore refuses naming the port and the harness, and leaves nothing behind; once
 * the port is free again, restore goes through. */
static int bad_restore_tcp_port_taken(struct run *r)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr = { htonl(INADDR_LOOPBACK) } };
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = -1;
	char needle[160];
	unsigned port;

	if (l < 0 || start_tcp_victim(r, "restore-tcp-port-taken", NULL, NULL))
		goto out;
	port = asked(r, "TCP-PEER 127.0.0.1 ", 0, 0, 65535);
	a.sin_port = htons(port);
	if (step_dump(r, r->img, false))
		goto out;
	/* Beside the victim's connection left in TIME_WAIT there. */
	if (setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int)) ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1)) {
		why("cannot listen on port %u: %s", port, strerror(errno));
		goto out;
	}
	snprintf(needle, sizeof(needle), "port %u is already in use on this host (held by "
		 "process %d, harness)", port, getpid());
	if (restore_refused(r, needle))
		goto out;
	close(l);
	l = -1;
	rc = step_restore_detached(r, r->img) ? -1 : victim_unharmed(r);
out:
	if (l >= 0)
		close(l);
	return rc;
}

static int lo_addr(const char *op, const char *addr)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "ip -6 addr %s %s/128 dev lo%s >/dev/null 2>&1", op, addr,
		 !strcmp(op, "add") ? " nodad" : "");
	return system(cmd) ? -1 : 0;
}

/* A listener on an address of lo's that the harness adds (a unique local one) and
 * removes between dump and restore: restore refuses naming fd, process and address;
 * with the address back it goes through. */
static int bad_restore_tcp_address_gone(struct run *r)
{
	char addr[64], key[96], needle[160];
	unsigned port;
	int rc = -1;

	struct in6_addr a6 = { .s6_addr = { 0xfd, 0x63, 0x72, 0x79, 0x6f, 0x00 } };

	/* A unique local address of this harness's own: concurrent runs do not meet. */
	memcpy(&a6.s6_addr[12], &(uint32_t){ htonl(getpid()) }, 4);
	inet_ntop(AF_INET6, &a6, addr, sizeof(addr));
	if (lo_addr("add", addr))
		return why("ip -6 addr add %s dev lo failed", addr);
	if (start_tcp_victim(r, "restore-tcp-address-gone", "addr", addr))
		goto out;
	snprintf(key, sizeof(key), "TCP-PEER %s ", addr);
	port = asked(r, key, 0, 0, 65535);
	if (step_dump(r, r->img, false))
		goto out;
	if (lo_addr("del", addr)) {
		why("ip -6 addr del %s failed", addr);
		goto out;
	}
	snprintf(needle, sizeof(needle), "is bound to [%s]:%u, an address this host does not "
		 "have", addr, port);
	if (restore_refused(r, needle))
		goto out;
	if (lo_addr("add", addr)) {
		why("ip -6 addr add %s dev lo failed", addr);
		goto out;
	}
	rc = step_restore_detached(r, r->img) ? -1 : victim_unharmed(r);
out:
	lo_addr("del", addr);
	return rc;
}

/* An image of t_tcp_listen whose first TCP socket (the v4 listener) says something
 * wrong, sealed again by img_edit: restore refuses each with one line and leaves
 * nothing behind. */
static int copy_dir(const char *from, const char *to);
static int copy_file(const char *from, const char *to, mode_t mode);

static int bad_restore_tcp_damaged(struct run *r)
{
	static const struct {
		const char *field, *value, *needle;
	} cases[] = {
		{ "family", "1", "TCP socket file" },
		{ "state", "6", "has state 6" },	/* TIME_WAIT: never an fd's */
		{ "state", "1", "TCP connection file" },	/* a listener made a connection */
		{ "port", "70000", "has port 70000" },
		{ "backlog", "1000000", "has a backlog of 1000000" },
		{ "addr-len", "3", "an address of family 2 and 3 bytes" },
		{ "tos", "300", "socket option IP_TOS has value 300" },
	};
	char orig[700], tool[600];
	int rc = 0;

	if (start_tcp_victim(r, "restore-tcp-damaged", NULL, NULL) ||
	    step_dump(r, r->img, false))
		return -1;
	snprintf(orig, sizeof(orig), "%s.orig", r->img);
	snprintf(tool, sizeof(tool), "%s/img_edit", tests_dir);
	if (rename(r->img, orig))
		return why("cannot rename the image: %s", strerror(errno));
	for (size_t i = 0; i < CR_LEN(cases) && !rc; i++) {
		char *argv[] = { tool, r->img, (char *)cases[i].field, (char *)cases[i].value, NULL };
		int st;
		pid_t pid;

		remove_tree(r->img);
		if (copy_dir(orig, r->img))
			return -1;
		pid = spawn(argv, r->cryo_log, false);
		if (pid < 0 || wait_for(pid, 30, &st) || st)
			return why("img_edit %s %s failed", cases[i].field, cases[i].value);
		rc = restore_refused(r, cases[i].needle);
	}
	remove_tree(orig);
	return rc;
}

/* UDP, netlink, packet and raw sockets: what the dump refuses, by name. */
static int bad_dump_netlink_queued(struct run *r)
{
	if (start_prog_victim(r, "dump-netlink-queued", "t_netlink", "queued"))
		return -1;
	return dump_victim(r, r->img, "messages are queued on it, not read yet");
}

static int bad_dump_packet_ring(struct run *r)
{
	if (start_prog_victim(r, "dump-packet-ring", "t_packet", "ring"))
		return -1;
	return dump_victim(r, r->img, "it has a PACKET_MMAP ring; not supported");
}

static int bad_dump_packet_fanout(struct run *r)
{
	if (start_prog_victim(r, "dump-packet-fanout", "t_packet", "fanout"))
		return -1;
	return dump_victim(r, r->img, "it is in a fanout group (PACKET_FANOUT); not supported");
}

static int bad_dump_packet_queued(struct run *r)
{
	if (start_prog_victim(r, "dump-packet-queued", "t_packet", "queued"))
		return -1;
	return dump_victim(r, r->img, "frames it captured are queued on it, not read yet");
}

static int bad_dump_raw_queued(struct run *r)
{
	if (start_prog_victim(r, "dump-raw-queued", "t_raw", "queued"))
		return -1;
	return dump_victim(r, r->img, "datagrams are queued on it, not read yet");
}

/* After the dump another socket takes t_netlink's port id: restore fails naming it and
 * leaves nothing; once that socket is closed, restore goes through. */
static int bad_restore_netlink_port_taken(struct run *r)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK };
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), rc = -1;
	char needle[64];

	if (s < 0 || start_prog_victim(r, "restore-netlink-port-taken", "t_netlink", NULL))
		goto out;
	a.nl_pid = 0x40000000u | r->pid;
	if (step_dump(r, r->img, false))
		goto out;
	if (bind(s, (struct sockaddr *)&a, sizeof(a))) {
		why("cannot bind to port id %u: %s", a.nl_pid, strerror(errno));
		goto out;
	}
	snprintf(needle, sizeof(needle), "port id %u is taken by another socket", a.nl_pid);
	rc = restore_once_free(r, needle, &s);
out:
	if (s >= 0)
		close(s);
	return rc;
}

static int bad_dump_udp_corked(struct run *r)
{
	if (start_prog_victim(r, "dump-udp-corked", "t_udp", "corked"))
		return -1;
	return dump_victim(r, r->img, "a corked datagram (UDP_CORK) is being built on it");
}

/* After the dump another socket takes the port of t_udp's first socket: restore fails
 * naming the address and leaves nothing; once that socket is closed, restore goes
 * through. */
static int bad_restore_udp_port_taken(struct run *r)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = -1;
	char needle[64];

	if (s < 0 || start_prog_victim(r, "restore-udp-port-taken", "t_udp", NULL))
		goto out;
	a.sin_port = htons(asked(r, "UDP-PORT ", 0, 0, 65535));
	if (step_dump(r, r->img, false))
		goto out;
	if (bind(s, (struct sockaddr *)&a, sizeof(a))) {
		why("cannot bind to port %d: %s", ntohs(a.sin_port), strerror(errno));
		goto out;
	}
	snprintf(needle, sizeof(needle), "127.0.0.1:%d is taken by another socket",
		 ntohs(a.sin_port));
	rc = restore_once_free(r, needle, &s);
out:
	if (s >= 0)
		close(s);
	return rc;
}

/* A flock taken through a file then closed but still mapped: no fd shows it. */
static int bad_dump_lock_mapped(struct run *r)
{
	char needle[64];

	if (start_victim(r, "dump-lock-mapped", "flock-mapped"))
		return -1;
	snprintf(needle, sizeof(needle), "process %d holds a FLOCK lock", r->pid);
	return dump_victim(r, r->img, needle) ||
	       expect_error(r, 1, "through no open fd (a file closed while it stays mapped?)");
}

static int bad_dump_lease(struct run *r)
{
	if (start_victim(r, "dump-lease", "lease"))
		return -1;
	return dump_victim(r, r->img, "holds a lease (F_SETLEASE");
}

/* The victim's lock (flock or lockf) is taken by the harness between dump and
 * restore: restore refuses and leaves nothing; once it is free, restore works. */
static int lock_taken(struct run *r, const char *name, const char *how, const char *needle)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char path[700];
	int fd, rc = -1;

	if (start_victim(r, name, how) || step_dump(r, r->img, false))
		return -1;
	snprintf(path, sizeof(path), "%s/basic-lock-%d", work, r->pid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return why("open %s: %s", path, strerror(errno));
	if (!strcmp(how, "flock") ? flock(fd, LOCK_EX | LOCK_NB) : fcntl(fd, F_SETLK, &fl)) {
		why("the harness cannot take the lock on %s: %s", path, strerror(errno));
		goto out;
	}
	if (restore_refused(r, needle))
		goto out;
	close(fd);
	fd = -1;
	rc = step_restore_detached(r, r->img) || victim_unharmed(r);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static int bad_restore_flock_taken(struct run *r)
{
	return lock_taken(r, "restore-flock-taken", "flock",
			  "flock write lock is held by another process now");
}

static int bad_restore_posix_lock_taken(struct run *r)
{
	return lock_taken(r, "restore-posix-lock-taken", "lockf", "taking its POSIX write lock of fd 3 at 0 again");
}

/* A pty pair in a state the dump refuses (prog's argument: t_pty, t_pty_data). */
static int bad_pty_of(struct run *r, const char *prog, const char *name, const char *state,
		      const char *needle)
{
	char path[600], *argv[] = { path, work, (char *)state, NULL };

	run_dir(r, name, "bad");
	snprintf(path, sizeof(path), "%s/%s", tests_dir, prog);
	r->pid = spawn(argv, r->log, true);
	if (r->pid < 0)
		return why("fork failed");
	if (wait_ready(r->pid, r->log))
		return -1;
	return dump_victim(r, r->img, needle);
}

static int bad_pty(struct run *r, const char *name, const char *state, const char *needle)
{
	return bad_pty_of(r, "t_pty", name, state, needle);
}

static int bad_dump_pty_extproc(struct run *r)
{
	return bad_pty_of(r, "t_pty_data", "dump-pty-extproc-input", "extproc",
			  "in external processing mode (EXTPROC)");
}

static int bad_dump_pty_locked_output(struct run *r)
{
	return bad_pty_of(r, "t_pty_data", "dump-pty-locked-output", "locked-output",
			  "the master of the locked /dev/pts/");
}

static int bad_dump_pty_escaped_newline(struct run *r)
{
	return bad_pty_of(r, "t_pty_data", "dump-pty-escaped-newline", "escaped-newline",
			  "cannot put back as it is");
}

static int bad_dump_dev_tty(struct run *r)
{
	return bad_pty(r, "dump-dev-tty", "dev-tty", "is /dev/tty");
}

static int bad_dump_pty_master_outside(struct run *r)
{
	return bad_pty(r, "dump-pty-master-outside", "master-outside",
		       "whose master is not open in the image");
}

static int bad_dump_pty_slave_outside(struct run *r)
{
	return bad_pty(r, "dump-pty-slave-outside", "slave-outside", "outside the image");
}

/* The victim's first child, from its children file. */
static pid_t child_of(pid_t pid)
{
	char path[64], *txt;
	pid_t c = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	for (int i = 0; i < 1000 && !c; i++) {
		txt = read_proc(path);
		c = txt ? atoi(txt) : 0;
		free(txt);
		if (!c)
			sleep_ms(2);
	}
	return c;
}

/* A member of the tree is refused: the whole tree goes on, none of it traced. */
static int tree_refused(struct run *r, const char *name, const char *extra, bool seize,
			const char *needle_fmt)
{
	char needle[128], status[64];
	pid_t child;
	int rc;

	if (start_victim(r, name, extra))
		return -1;
	child = child_of(r->pid);
	if (!child)
		return why("the victim made no child");
	if (seize && ptrace(PTRACE_SEIZE, child, 0, 0))
		return why("cannot seize the child: %s", strerror(errno));
	snprintf(needle, sizeof(needle), needle_fmt, child, getpid());
	rc = dump_victim(r, r->img, needle);
	if (!seize) {
		char *st;

		snprintf(status, sizeof(status), "/proc/%d/status", child);
		st = read_proc(status);
		if (!rc && (kill(child, 0) || !st || !strstr(st, "TracerPid:\t0\n")))
			rc = why("the refused dump harmed child %d", child);
		free(st);
	}
	return rc;
}

static int bad_dump_traced_member(struct run *r)
{
	return tree_refused(r, "dump-tree-member-traced", "child", true,
			    "process %d is already traced by PID %d");
}

static int bad_dump_pidns_member(struct run *r)
{
	return tree_refused(r, "dump-tree-member-pidns", "pidns-child", false,
			    "process %d is in another pid namespace");
}

/* A process made with CLONE_FILES | CLONE_FS, dumped without the parent it shares
 * them with: refused (its fs first), and both go on. */
static int bad_dump_shared_fd_table(struct run *r)
{
	char path[600], pid[16], needle[128], *argv[] = { path, work, NULL }, *kids;
	pid_t sharer = 0;

	run_dir(r, "dump-fd-table-shared-outside", "bad");
	snprintf(path, sizeof(path), "%s/t_share", tests_dir);
	r->pid = spawn(argv, r->log, true);
	if (r->pid < 0 || wait_ready(r->pid, r->log))
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", r->pid, r->pid);
	kids = read_proc(path);
	for (char *at = kids, *end; at && !sharer; at = end) {
		long c = strtol(at, &end, 10);

		if (end == at)
			break;
		if (syscall(SYS_kcmp, r->pid, c, KCMP_FILES, 0, 0) == 0)
			sharer = c;
	}
	free(kids);
	snprintf(path, sizeof(path), "%s/t_share", tests_dir);
	if (!sharer)
		return why("t_share made no child sharing its fd table");
	snprintf(pid, sizeof(pid), "%d", sharer);
	snprintf(needle, sizeof(needle), "(CLONE_FS) with its parent %d, outside what is dumped",
		 r->pid);
	if (expect_error(r, run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, "--shell-job",
				     NULL), needle))
		return -1;
	return victim_unharmed(r);
}

/* The parent waits in vfork; the child shares its memory (and its go). */
static int bad_dump_vfork(struct run *r)
{
	char pid[16], needle[96];
	pid_t child;

	if (start_victim(r, "dump-in-vfork", "vfork"))
		return -1;
	child = child_of(r->pid);
	if (!child)
		return why("the victim made no child");
	snprintf(pid, sizeof(pid), "%d", r->pid);
	snprintf(needle, sizeof(needle), "process %d is in the middle of vfork: its child %d",
		 r->pid, child);
	if (expect_error(r, run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, NULL), needle))
		return -1;
	kill(child, SIGUSR1);
	return victim_unharmed(r);
}

/* --timeout: a thread that cannot stop (it waits in vfork) makes the dump give up
 * after the time given, not the 10 s each task gets; the process goes on untouched. */
static int bad_dump_timeout(struct run *r)
{
	char pid[16], needle[96];
	int child;

	if (start_victim(r, "dump-timeout", "thread-vfork"))
		return -1;
	child = asked(r, "VFORK-CHILD ", 0, 0, 1 << 30);
	if (!child)
		return why("the victim named no vfork child");
	snprintf(pid, sizeof(pid), "%d", r->pid);
	snprintf(needle, sizeof(needle), "did not stop within --timeout 1 s");
	if (expect_error(r, run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, "--timeout",
				     "1", NULL), needle))
		return -1;
	if (access(r->img, F_OK) == 0)
		return why("the timed-out dump left %s", r->img);
	kill(child, SIGUSR1);
	return victim_unharmed(r);
}

/* A pidfd of the harness, outside the tree. */
static int bad_dump_pidfd_outside(struct run *r)
{
	char needle[96];

	if (start_prog_victim(r, "dump-pidfd-outside", "t_notify", "outside-pidfd"))
		return -1;
	snprintf(needle, sizeof(needle), "is a pidfd of process %d, outside what is dumped",
		 getpid());
	return dump_victim(r, r->img, needle);
}

/* inotify events queued and not read: they cannot be saved without taking them. */
static int bad_dump_inotify_queued(struct run *r)
{
	if (start_prog_victim(r, "dump-inotify-queued", "t_notify", "queued-inotify"))
		return -1;
	return dump_victim(r, r->img, "bytes of events queued, not read yet");
}

/* Kinds cryo does not restore are refused by name. */
static int bad_dump_fanotify(struct run *r)
{
	if (start_prog_victim(r, "dump-fanotify", "t_notify", "fanotify"))
		return -1;
	return dump_victim(r, r->img, "(anon_inode:[fanotify]); cryo cannot restore it");
}

static int bad_dump_aio(struct run *r)
{
	if (start_prog_victim(r, "dump-aio-ring", "t_notify", "aio"))
		return -1;
	return dump_victim(r, r->img, "it is an AIO ring (io_setup)");
}

static int bad_dump_seccomp_thread(struct run *r)
{
	if (start_victim(r, "dump-seccomp-thread", "seccomp-thread"))
		return -1;
	return dump_victim(r, r->img, "uses seccomp");
}

/* -D a link to a directory: refused, and nothing appears in the directory. */
static int bad_dump_dir_link(struct run *r)
{
	char target[700], link[700];
	int rc;

	if (start_victim(r, "dump-dir-is-a-link", NULL))
		return -1;
	snprintf(target, sizeof(target), "%s/target", r->dir);
	snprintf(link, sizeof(link), "%s/link", r->dir);
	mkdir(target, 0700);
	if (symlink(target, link))
		return why("symlink: %s", strerror(errno));
	rc = dump_victim(r, link, "is a symbolic link");
	if (!rc && rmdir(target))
		return why("the dump wrote into the link's target");
	return rc;
}

/* An image file planted as a link to a file elsewhere: the dump replaces the link and
 * never writes through it. */
static int bad_dump_planted_link(struct run *r)
{
	char victim_file[700], planted[700], pid[16];
	struct stat st;
	int rc;

	if (start_victim(r, "dump-planted-link", NULL))
		return -1;
	snprintf(victim_file, sizeof(victim_file), "%s/precious", r->dir);
	snprintf(planted, sizeof(planted), "%s/pstree.img", r->img);
	mkdir(r->img, 0700);
	if (close(open(victim_file, O_WRONLY | O_CREAT, 0600)) || symlink(victim_file, planted))
		return why("cannot plant the link");
	snprintf(pid, sizeof(pid), "%d", r->pid);
	rc = run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, "--leave-running", NULL);
	if (rc)
		return why("cryo dump exited with %d", rc);
	if (stat(victim_file, &st) || st.st_size)
		return why("the dump wrote through the planted link");
	if (lstat(planted, &st) || !S_ISREG(st.st_mode))
		return why("pstree.img is not a regular file after the dump");
	return victim_unharmed(r);
}

static int bad_dump_open_dir(struct run *r)
{
	if (start_victim(r, "dump-dir-writable-by-others", NULL))
		return -1;
	mkdir(r->img, 0700);
	chmod(r->img, 0777);
	return dump_victim(r, r->img, "can be written by others (mode 0777)");
}

/* A refused dump removes the directory it made. */
static int bad_dump_leaves_nothing(struct run *r)
{
	if (start_victim(r, "dump-refused-leaves-no-dir", "lease"))
		return -1;
	if (dump_victim(r, r->img, "holds a lease (F_SETLEASE"))
		return -1;
	if (!access(r->img, F_OK))
		return why("the refused dump left %s behind", r->img);
	return 0;
}

/* A stopped process (SIGSTOP) is dumped and comes back stopped; SIGCONT goes on. */
static int stopped_state(pid_t pid)
{
	char path[64], buf[512];
	int fd;
	ssize_t n;
	char *at;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return '?';
	buf[n] = 0;
	at = strrchr(buf, ')');
	return at && at[1] ? at[2] : '?';
}

static int wait_state(pid_t pid, int want)
{
	for (int i = 0; i < 2000; i++) {
		if (stopped_state(pid) == want)
			return 0;
		sleep_ms(2);
	}
	return why("process %d is in state %c, not %c", pid, stopped_state(pid), want);
}

static int stopped_process(struct run *r, bool leave)
{
	char pid[16];
	int rc, status;

	if (start_victim(r, leave ? "stopped-leave-running" : "stopped-kill-restore", NULL))
		return -1;
	kill(r->pid, SIGSTOP);
	if (wait_state(r->pid, 'T'))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	rc = leave ? run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, "--leave-running",
			      NULL) :
		     run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, NULL);
	if (rc)
		return why("cryo dump exited with %d", rc);
	if (!leave) {
		if (wait_for(r->pid, 10, &status))
			return -1;
		if (step_restore_detached(r, r->img))
			return -1;
	}
	if (wait_state(r->pid, 'T'))
		return -1;
	kill(r->pid, SIGCONT);
	return victim_unharmed(r);
}

static int bad_stopped_kill(struct run *r)
{
	return stopped_process(r, false);
}

static int bad_stopped_leave(struct run *r)
{
	return stopped_process(r, true);
}

/* ---- restore ---- */

static int copy_file(const char *from, const char *to, mode_t mode)
{
	size_t len;
	char *data = read_file(from, &len);
	int fd = data ? open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) : -1;
	int rc = fd >= 0 && write(fd, data, len) == (ssize_t)len ? 0 : -1;

	if (fd >= 0 && (close(fd) || fchmodat(AT_FDCWD, to, mode, 0)))
		rc = -1;
	free(data);
	return rc ? why("cannot copy %s to %s", from, to) : 0;
}

static int copy_dir(const char *from, const char *to)
{
	DIR *d = opendir(from);
	struct dirent *de;

	if (!d)
		return why("cannot open %s", from);
	mkdir(to, 0700);
	while ((de = readdir(d))) {
		char a[1200], b[1200];

		if (de->d_name[0] == '.')
			continue;
		snprintf(a, sizeof(a), "%s/%s", from, de->d_name);
		snprintf(b, sizeof(b), "%s/%s", to, de->d_name);
		if (copy_file(a, b, 0644)) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

static char base_image[700];
static pid_t base_pid;

/* One image of a killed t_basic, shared by the restore cases. */
static int make_base_image(void)
{
	struct run r;
	char pid[16];
	int rc, status;

	memset(&r, 0, sizeof(r));
	if (start_victim(&r, "restore-base", NULL))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r.pid);
	rc = run_cryo(r.cryo_log, "dump", "-t", pid, "-D", r.img, NULL);
	if (rc)
		return why("dump for the restore cases failed (%d)", rc);
	wait_for(r.pid, 10, &status);
	snprintf(base_image, sizeof(base_image), "%s", r.img);
	base_pid = r.pid;
	return 0;
}

static int flip_byte(const char *path, long off_from_end_or_start, bool from_end)
{
	int fd = open(path, O_RDWR);
	struct stat st;
	unsigned char b;
	off_t off;

	if (fd < 0 || fstat(fd, &st))
		return why("cannot open %s", path);
	off = from_end ? st.st_size - off_from_end_or_start : off_from_end_or_start;
	if (pread(fd, &b, 1, off) != 1)
		return why("cannot read %s", path);
	b ^= 0x10;
	if (pwrite(fd, &b, 1, off) != 1)
		return why("cannot write %s", path);
	close(fd);
	return 0;
}

enum damage { DMG_TRUNCATE_CORE, DMG_FLIP_CORE, DMG_FLIP_PAGES, DMG_MISSING_PAGES,
	      DMG_NEWER_FORMAT, DMG_OLDER_FORMAT, DMG_NONE };

static int damaged_restore(struct run *r, const char *name, enum damage dmg, const char *needle)
{
	char file[1200];

	run_dir(r, name, "bad");
	if (!base_image[0] && make_base_image())
		return -1;
	if (copy_dir(base_image, r->img))
		return -1;
	switch (dmg) {
	case DMG_TRUNCATE_CORE:
		snprintf(file, sizeof(file), "%s/core-%d.img", r->img, base_pid);
		if (truncate(file, 100))
			return why("truncate failed");
		break;
	case DMG_FLIP_CORE:
		snprintf(file, sizeof(file), "%s/core-%d.img", r->img, base_pid);
		if (flip_byte(file, 200, true))
			return -1;
		break;
	case DMG_FLIP_PAGES:
		snprintf(file, sizeof(file), "%s/pages-%d.img", r->img, base_pid);
		if (flip_byte(file, 5000, false))
			return -1;
		break;
	case DMG_MISSING_PAGES:
		snprintf(file, sizeof(file), "%s/pages-%d.img", r->img, base_pid);
		unlink(file);
		break;
	case DMG_NEWER_FORMAT:
	case DMG_OLDER_FORMAT: {
		uint16_t major = dmg == DMG_NEWER_FORMAT ? 99 : 1;
		int fd;

		snprintf(file, sizeof(file), "%s/inventory.img", r->img);
		fd = open(file, O_RDWR);
		if (fd < 0 || pwrite(fd, &major, 2, 6) != 2)
			return why("cannot patch %s", file);
		close(fd);
		break;
	}
	case DMG_NONE:
		break;
	}
	if (expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", NULL), needle))
		return -1;
	if (!kill(base_pid, 0))
		return why("a failed restore left process %d behind", base_pid);
	return 0;
}

static int bad_restore_truncated(struct run *r)
{
	return damaged_restore(r, "restore-truncated-core", DMG_TRUNCATE_CORE, "bytes");
}

static int bad_restore_flipped_core(struct run *r)
{
	return damaged_restore(r, "restore-flipped-bit-core", DMG_FLIP_CORE, "checksum mismatch");
}

static int bad_restore_flipped_pages(struct run *r)
{
	return damaged_restore(r, "restore-flipped-bit-pages", DMG_FLIP_PAGES,
			       "checksum mismatch in bytes 0-1048575");
}

static int bad_restore_missing_pages(struct run *r)
{
	return damaged_restore(r, "restore-missing-page-file", DMG_MISSING_PAGES, "is missing");
}

static int bad_restore_newer(struct run *r)
{
	return damaged_restore(r, "restore-newer-format", DMG_NEWER_FORMAT, "newer than this cryo");
}

/* cryo 0.1.x wrote format 1: every file's header says so, the inventory first. */
static int bad_restore_older(struct run *r)
{
	return damaged_restore(r, "restore-format-1", DMG_OLDER_FORMAT,
			       "format 1 (cryo 0.1.x), which this cryo");
}

static int bad_restore_not_image(struct run *r)
{
	run_dir(r, "restore-not-an-image", "bad");
	mkdir(r->img, 0700);
	return expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, NULL),
			    "is not a cryo image");
}

static int bad_restore_pid_taken(struct run *r)
{
	char pid[16], needle[64];

	if (start_victim(r, "restore-pid-taken", NULL))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	if (run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, "--leave-running", NULL))
		return why("dump --leave-running failed");
	snprintf(needle, sizeof(needle), "PID %d is in use by 't_basic'", r->pid);
	if (expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", NULL), needle))
		return -1;
	return victim_unharmed(r);
}

/* A foreground restore forwards SIGTERM to the process and exits with 128+15 when
 * it dies of it. */
static int restore_forwards_sigterm(struct run *r)
{
	char pid[16], *argv[] = { (char *)cryo_bin, "restore", "-D", r->img, NULL };
	int status;
	pid_t fg;

	if (start_victim(r, "restore-forwards-sigterm", NULL))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	if (run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, NULL))
		return why("dump failed");
	if (wait_for(r->pid, 10, &status))
		return -1;
	fg = spawn(argv, r->cryo_log, false);
	for (int i = 0; i < 2000 && kill(r->pid, 0); i++)
		sleep_ms(2);
	sleep_ms(100);
	kill(fg, SIGTERM);
	if (wait_for(fg, 30, &status))
		return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 128 + SIGTERM)
		return why("cryo restore ended with status 0x%x, expected exit %d", status,
			   128 + SIGTERM);
	return kill(r->pid, 0) ? 0 : why("the restored process survived SIGTERM");
}

/* A FIFO where the inventory should be: restore and show refuse at once. */
static int bad_restore_fifo_inventory(struct run *r)
{
	char inv[1200];

	run_dir(r, "restore-fifo-inventory", "bad");
	if (!base_image[0] && make_base_image())
		return -1;
	if (copy_dir(base_image, r->img))
		return -1;
	snprintf(inv, sizeof(inv), "%s/inventory.img", r->img);
	unlink(inv);
	if (mkfifo(inv, 0600))
		return why("mkfifo: %s", strerror(errno));
	if (expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", NULL),
			 "is not a regular file"))
		return -1;
	return expect_error(r, run_cryo(r->cryo_log, "show", r->img, NULL),
			    "is not a regular file");
}

/* An image file that is a link (to a good copy, even): refused. */
static int bad_restore_linked_file(struct run *r)
{
	char core[1200], copy[1300];

	run_dir(r, "restore-linked-image-file", "bad");
	if (!base_image[0] && make_base_image())
		return -1;
	if (copy_dir(base_image, r->img))
		return -1;
	snprintf(core, sizeof(core), "%s/core-%d.img", r->img, base_pid);
	snprintf(copy, sizeof(copy), "%s/../core-copy.img", r->img);
	if (rename(core, copy) || symlink(copy, core))
		return why("cannot plant the link");
	return expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", NULL),
			    "is a symbolic link");
}

/* The offset of the build-id's bytes in an ELF file, or -1. */
static long build_id_offset(const char *path)
{
	size_t len;
	char *b = read_file(path, &len);
	long off = -1;

	/* The note: namesz 4, descsz, type 3 (NT_GNU_BUILD_ID), "GNU\0". */
	for (size_t i = 0; b && i + 16 < len && off < 0; i++)
		if (!memcmp(b + i, "\x04\0\0\0", 4) && !memcmp(b + i + 8, "\x03\0\0\0GNU\0", 8))
			off = i + 16;
	free(b);
	return off;
}

/* A library the process maps, dumped, then copied again (new mtime) or rebuilt. */
static int mapped_file_case(struct run *r, const char *name, bool rebuild)
{
	char lib[700], cmd[3000], pid[16];
	long off;
	int rc, status;

	snprintf(lib, sizeof(lib), "%s/basic-map.so", work);
	snprintf(cmd, sizeof(cmd), "cp /usr/lib/x86_64-linux-gnu/libm.so.6 %s", lib);
	if (system(cmd))
		return why("cannot copy libm.so.6");
	if (start_victim(r, name, "map"))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	rc = run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, NULL);
	if (rc || wait_for(r->pid, 10, &status))
		return why("cryo dump exited with %d", rc);
	sleep_ms(1100);
	/* Copied again: same bytes, another mtime. */
	snprintf(cmd, sizeof(cmd), "cp %s %s.new && mv %s.new %s", lib, lib, lib, lib);
	if (system(cmd))
		return why("cannot copy the library again");
	if (!rebuild) {
		if (step_restore_detached(r, r->img))
			return -1;
		return victim_unharmed(r);
	}
	off = build_id_offset(lib);
	if (off < 0 || flip_byte(lib, off, false))
		return why("no build-id in %s", lib);
	if (expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", NULL),
			 "is another build: build-id"))
		return -1;
	return kill(r->pid, 0) ? 0 : why("a failed restore left process %d behind", r->pid);
}

static int restore_mapped_copied(struct run *r)
{
	return mapped_file_case(r, "restore-mapped-file-copied", false);
}

static int bad_restore_mapped_rebuilt(struct run *r)
{
	return mapped_file_case(r, "restore-mapped-file-rebuilt", true);
}

/* An image another user owns (here: chowned to nobody after the dump). */
/* A victim that becomes nobody runs a copy of t_basic, with its cwd, in the work
 * directory: a restore as nobody must reach its program and its cwd, and the harness's
 * directory may be under one closed to others (a clone in a `mktemp -d` directory,
 * mode 0700). */
static int start_nobodys_victim(struct run *r, const char *name, const char *extra)
{
	char from[600], to[600], *argv[] = { to, work, (char *)extra, NULL };
	int here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC), rc;

	snprintf(from, sizeof(from), "%s/t_basic", tests_dir);
	snprintf(to, sizeof(to), "%s/t_basic-of-nobody", work);
	if (here < 0 || copy_file(from, to, 0755) || chdir(work)) {
		if (here >= 0)
			close(here);
		return why("cannot start a copy of t_basic in %s", work);
	}
	run_dir(r, name, "bad");
	r->pid = spawn(argv, r->log, true);
	rc = fchdir(here);
	close(here);
	if (rc)
		return why("cannot go back to the harness's directory: %s", strerror(errno));
	if (r->pid < 0)
		return why("fork failed");
	return wait_ready(r->pid, r->log);
}

static int owned_image(struct run *r, const char *name, const char *extra)
{
	char pid[16], cmd[1400];
	int rc, status;

	rc = extra && !strncmp(extra, "nobody", 6) ? start_nobodys_victim(r, name, extra) :
						    start_victim(r, name, extra);
	if (rc)
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	rc = run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, NULL);
	if (rc || wait_for(r->pid, 10, &status))
		return why("cryo dump exited with %d", rc);
	snprintf(cmd, sizeof(cmd), "chown -R 65534:65534 %s", r->img);
	return system(cmd) ? why("chown failed") : 0;
}

static int bad_restore_users_image(struct run *r)
{
	if (owned_image(r, "restore-image-of-another-user", NULL))
		return -1;
	return expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", NULL),
			    "belongs to uid 65534");
}

/* Trusted, a user's image still cannot make a root process. */
static int bad_restore_trusted_root(struct run *r)
{
	if (owned_image(r, "restore-trusted-image-as-root", NULL))
		return -1;
	return expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d",
					"--trust-image", NULL), "would run as uid 0");
}

/* A trusted user's image: files are opened as that user, and only then. */
static int restore_trusted_user(struct run *r)
{
	int rc;

	if (owned_image(r, "restore-trusted-image-of-nobody", "nobody"))
		return -1;
	if (expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", "--trust-image",
				     NULL), "output.txt: Permission denied"))
		return -1;
	/* Reachable and writable by nobody: what the process itself could open. */
	if (chmod(work, 0711) || chmod(r->log, 0666))
		return why("chmod: %s", strerror(errno));
	rc = run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", "--trust-image", NULL);
	chmod(work, 0700);
	if (rc)
		return why("the trusted restore failed");
	return victim_unharmed(r);
}

/* A trusted user's deleted file is made again as that user, in its directory. */
static int restore_trusted_ghost(struct run *r)
{
	int rc;

	if (owned_image(r, "restore-trusted-ghost-of-nobody", "nobody-ghost"))
		return -1;
	if (chmod(work, 0711) || chmod(r->log, 0666))
		return why("chmod: %s", strerror(errno));
	rc = run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", "--trust-image", NULL);
	chmod(work, 0700);
	if (rc)
		return why("the trusted restore failed");
	return victim_unharmed(r);
}

/* ... but one of root's it held is not given to it by a trusted user's image, and the
 * file begun is gone again. */
static int bad_restore_trusted_root_ghost(struct run *r)
{
	char dir[700];
	struct dirent *de;
	DIR *d;
	int rc;

	if (owned_image(r, "restore-trusted-ghost-of-root", "nobody-root-ghost"))
		return -1;
	if (chmod(work, 0711) || chmod(r->log, 0666))
		return why("chmod: %s", strerror(errno));
	rc = expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d",
				      "--trust-image", NULL), "belonged to uid 0 gid 0, which the "
			  "restored process cannot give it");
	chmod(work, 0700);
	snprintf(dir, sizeof(dir), "%s/nobody-ghosts-%d", work, r->pid);
	d = opendir(dir);
	if (!d)
		return why("cannot list %s: %s", dir, strerror(errno));
	while (!rc && (de = readdir(d)))
		if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")))
			rc = why("the refused restore left %s in %s", de->d_name, dir);
	closedir(d);
	return rc;
}

/* Files and cwd in its own /proc come back pointing at the restored process. */
static int restore_own_proc(struct run *r)
{
	char pid[16];
	int rc, status;

	if (start_victim(r, "restore-own-proc-files", "proc"))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	rc = run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, NULL);
	if (rc || wait_for(r->pid, 10, &status))
		return why("cryo dump exited with %d", rc);
	if (step_restore_detached(r, r->img))
		return -1;
	return victim_unharmed(r);
}

static int bad_dump_dead_cwd(struct run *r)
{
	if (start_victim(r, "dump-cwd-in-dead-proc", "dead-cwd"))
		return -1;
	return dump_victim(r, r->img, "its cwd");
}

static int bad_dump_nameless(struct run *r, const char *name, const char *extra,
			     const char *needle)
{
	if (start_victim(r, name, extra))
		return -1;
	return dump_victim(r, r->img, needle);
}

static int bad_dump_ghost_big(struct run *r)
{
	return bad_dump_nameless(r, "dump-ghost-above-limit", "ghost-big",
				 "was deleted and holds 2.0 MiB of data (size 2.0 MiB), above "
				 "--ghost-limit 1.0 MiB");
}

/* The same file fits under a larger --ghost-limit, and comes back. */
static int ghost_big_limit(struct run *r)
{
	char pid[16];
	int rc;

	if (start_victim(r, "dump-ghost-under-limit", "ghost-big"))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	rc = run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, "--ghost-limit", "3M", NULL);
	if (rc)
		return rc < 0 ? -1 : why("cryo dump --ghost-limit 3M exited with %d", rc);
	if (wait_for(r->pid, 10, &rc))
		return -1;
	if (step_restore_detached(r, r->img))
		return -1;
	return finish(r, r->pid);
}

static int bad_dump_replaced(struct run *r)
{
	return bad_dump_nameless(r, "dump-file-replaced", "replaced",
				 "was replaced at its path by another file");
}

static int bad_dump_ghost_no_dir(struct run *r)
{
	return bad_dump_nameless(r, "dump-ghost-dir-removed", "ghost-no-dir",
				 "was deleted and its directory was removed too");
}

static int bad_dump_memfd_hugetlb(struct run *r)
{
	return bad_dump_nameless(r, "dump-memfd-hugetlb", "memfd-hugetlb",
				 "is a hugetlb memfd");
}

static int bad_dump_removed_cwd(struct run *r)
{
	return bad_dump_nameless(r, "dump-removed-cwd", "removed-cwd",
				 "removed directories are not supported");
}

static int bad_dump_removed_dir(struct run *r)
{
	return bad_dump_nameless(r, "dump-removed-dir", "removed-dir",
				 "removed directories are not supported");
}

static int bad_dump_memfd_future_write(struct run *r)
{
	return bad_dump_nameless(r, "dump-memfd-future-write", "memfd-future-write",
				 "sealed with F_SEAL_FUTURE_WRITE");
}

static int bad_dump_init(struct run *r)
{
	run_dir(r, "dump-init", "bad");
	return expect_error(r, run_cryo(r->cryo_log, "dump", "-t", "1", "-D", r->img, NULL),
			    "PID 1 is init");
}

/* Run as nobody, without capabilities: dump refuses a process of another user's
 * (PID 5, a kernel thread's); restore (into a user namespace of nobody's) cannot open
 * root's directory; check says it needs root. */
static int bad_unprivileged(struct run *r)
{
	static const char *const cmds[] = { "dump", "restore", "check" };
	static const char *const needles[] = {
		"process 5 runs as another user; cryo run by uid 65534 dumps only that user's "
		"own processes",
		"cannot open image directory",
		"check needs root",
	};

	run_dir(r, "unprivileged", "bad");
	for (size_t i = 0; i < CR_LEN(cmds); i++) {
		char *argv[] = { "/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
				 "--clear-groups", (char *)cryo_bin, (char *)cmds[i], "-t", "5",
				 "-D", r->img, NULL };
		int status;
		pid_t pid;

		if (!strcmp(cmds[i], "check"))
			argv[6] = NULL;
		else if (strcmp(cmds[i], "dump"))
			argv[6] = "-D", argv[7] = r->img, argv[8] = NULL;
		pid = spawn(argv, r->cryo_log, false);
		if (wait_for(pid, 30, &status))
			return -1;
		if (expect_error(r, WEXITSTATUS(status), needles[i]))
			return -1;
	}
	return 0;
}

static int bad_cli(struct run *r)
{
	int rc;

	run_dir(r, "cli-invalid-pid", "bad");
	rc = run_cryo(r->cryo_log, "dump", "-t", "12abc", "-D", r->img, NULL);
	if (rc != 2)
		return why("invalid PID: exit %d, expected 2", rc);
	if (!file_has(r->cryo_log, "invalid PID '12abc'"))
		return why("no usage error printed");
	rc = run_cryo(r->cryo_log, "restore", "-D", r->img, "--cpu-cap=none,fpu", NULL);
	if (rc != 2 || !file_has(r->cryo_log, "invalid --cpu-cap 'none,fpu'"))
		return why("--cpu-cap=none,fpu: exit %d, or no line naming it", rc);
	rc = run_cryo(r->cryo_log, "restore", "-D", r->img, "--lazy-pages",
		      "--lazy-fill=sometimes", NULL);
	if (rc != 2 || !file_has(r->cryo_log, "invalid --lazy-fill mode 'sometimes'"))
		return why("--lazy-fill=sometimes: exit %d, or no line naming it", rc);
	rc = run_cryo(r->cryo_log, "restore", "-D", r->img, "--lazy-fill=on-touch", NULL);
	if (rc != 2 || !file_has(r->cryo_log, "--lazy-fill needs --lazy-pages"))
		return why("--lazy-fill without --lazy-pages: exit %d, or no line saying so", rc);
	return 0;
}

/* The reference's flags for what cryo does not do yet: one line naming the flag and
 * the feature, exit 2, no usage text. */
static int bad_cli_reference_flag(struct run *r)
{
	static const char *const flags[][2] = {
		{ "--manage-cgroups", "cgroups" },
		{ "--manage-cgroups=soft", "cgroups" },
		{ "--link-remap", "linking deleted files back" },
		{ "--lazy-pages", "pages left in the dumped process; restore --lazy-pages works "
				  "on any image" },
	};
	char needle[160];

	run_dir(r, "cli-reference-flag", "bad");
	for (size_t i = 0; i < CR_LEN(flags); i++) {
		int rc = run_cryo(r->cryo_log, "dump", "-t", "1", "-D", r->img, flags[i][0], NULL);

		snprintf(needle, sizeof(needle), "%.*s: not supported yet (%s",
			 (int)strcspn(flags[i][0], "="), flags[i][0], flags[i][1]);
		if (rc != 2 || !file_has(r->cryo_log, needle))
			return why("%s: exit %d, or no line '%s'", flags[i][0], rc, needle);
		if (file_has(r->cryo_log, "usage:"))
			return why("%s: the usage text was printed", flags[i][0]);
	}
	return 0;
}

/* -o FILE -W DIR -v4: the progress goes to the file, not stderr; the victim is
 * untouched (--leave-running). */
static int cli_log_file(struct run *r)
{
	char pid[16], log[800];

	if (start_victim(r, "cli-log-file", NULL))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	if (run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, "-R", "-o", "dump.log",
		     "-W", r->dir, "-v4", NULL))
		return why("cryo dump -o dump.log -v4 failed");
	snprintf(log, sizeof(log), "%s/dump.log", r->dir);
	if (!file_has(log, "seizing process") || !file_has(log, "writing images"))
		return why("%s lacks the progress lines", log);
	if (file_has(r->cryo_log, "seizing process"))
		return why("progress went to stderr too");
	return victim_unharmed(r);
}

/* --display-stats and --stats FILE after a dump; cryo show's summary of the image. */
static int cli_stats(struct run *r)
{
	char pid[16], json[800], line[64];

	if (start_victim(r, "cli-stats", NULL))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	snprintf(json, sizeof(json), "%s/stats.json", r->dir);
	if (run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, "-R", "--display-stats",
		     "--stats", json, NULL))
		return why("cryo dump --display-stats --stats failed");
	snprintf(line, sizeof(line), "{ \"pid\": %d, \"pages\": ", r->pid);
	if (!file_has(json, "\"operation\": \"dump\"") || !file_has(json, "\"page_write\": ") ||
	    !file_has(json, "\"frozen\": ") || !file_has(json, line))
		return why("%s lacks the phases or the process", json);
	snprintf(line, sizeof(line), "process %d: ", r->pid);
	if (!file_has(r->cryo_log, "Dump statistics") || !file_has(r->cryo_log, line))
		return why("--display-stats printed no table");
	if (file_has(r->cryo_log, "\r"))
		return why("a progress line went to a file");
	if (run_cryo(r->cryo_log, "show", r->img, NULL))
		return why("cryo show failed");
	snprintf(line, sizeof(line), "  %d \"t_basic\", 1 thread", r->pid);
	if (!file_has(r->cryo_log, line) || !file_has(r->cryo_log, "    fds: ") ||
	    file_has(r->cryo_log, "\"inventory\""))
		return why("cryo show: no summary line '%s', or JSON without --full", line);
	if (run_cryo(r->cryo_log, "show", "--full", r->img, NULL) ||
	    !file_has(r->cryo_log, "\"inventory\""))
		return why("cryo show --full: no JSON");
	return victim_unharmed(r);
}

/* On a terminal the dump shows its progress on one line; not elsewhere (the other
 * cases capture stderr in a file and never see it). */
static int cli_progress(struct run *r)
{
	char cmd[1200];
	pid_t sh;
	int status;

	if (start_victim(r, "cli-progress", NULL))
		return -1;
	snprintf(cmd, sizeof(cmd), "CRYO_PROGRESS_AFTER_MS=0 %s dump -t %d -D %s -R", cryo_bin,
		 r->pid, r->img);
	sh = spawn((char *[]){ "/usr/bin/script", "-qec", cmd, "/dev/null", NULL }, r->cryo_log,
		   false);
	if (sh < 0 || wait_for(sh, EXIT_TIMEOUT, &status))
		return why("cannot run cryo under script(1)");
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return why("cryo dump on a terminal failed (status 0x%x)", status);
	if (!file_has(r->cryo_log, "\rdump writing pages: ") || !file_has(r->cryo_log, "\033[K"))
		return why("no progress line on the terminal");
	return victim_unharmed(r);
}

/* cryo check --feature: one probe, its answer in the exit status; an unknown name is
 * a usage error. */
static int cli_check_feature(struct run *r)
{
	int rc;

	run_dir(r, "cli-check-feature", "bad");
	rc = run_cryo(r->cryo_log, "check", "--feature", "clone3_set_tid", NULL);
	if (rc != 0 || !file_has(r->cryo_log, "clone3 with set_tid"))
		return why("--feature clone3_set_tid: exit %d", rc);
	if (file_has(r->cryo_log, "process_vm_readv"))
		return why("--feature ran other probes");
	rc = run_cryo(r->cryo_log, "check", "--feature", "list", NULL);
	if (rc != 0 || !file_has(r->cryo_log, "network_lock_nftables"))
		return why("--feature list: exit %d, or no names", rc);
	rc = run_cryo(r->cryo_log, "check", "--all", NULL);
	if (rc != 0 || !file_has(r->cryo_log, "ptrace seize and interrupt"))
		return why("--all: exit %d", rc);
	return expect_error(r, run_cryo(r->cryo_log, "check", "--feature", "warp_drive", NULL),
			    "no feature 'warp_drive'");
}

/* A script written for the reference's CLI (tests/real/criu-cr.sh: dump -o -v4
 * --shell-job --action-script, restore -d --pidfile --status-fd), run unchanged with a
 * `criu` that is cryo; then the restored process checks itself. */
static int cli_criu_script(struct run *r)
{
	char bin[700], link[760], script[700], path[1600], pid[16], actions[760];
	char expect[1700];
	pid_t sh;
	int status;

	if (start_victim(r, "cli-criu-script", NULL))
		return -1;
	snprintf(bin, sizeof(bin), "%s/bin", r->dir);
	snprintf(link, sizeof(link), "%s/criu", bin);
	if (mkdir(bin, 0755) || symlink(cryo_bin[0] == '/' ? cryo_bin : realpath(cryo_bin, path),
					link))
		return why("cannot make %s: %s", link, strerror(errno));
	snprintf(script, sizeof(script), "%s/criu-cr.sh", real_dir);
	snprintf(path, sizeof(path), "PATH=%s:%s", bin, getenv("PATH") ? getenv("PATH") : "");
	snprintf(pid, sizeof(pid), "%d", r->pid);
	unwant(r->pid);		/* killed by the dump: reaped while the script runs */
	sh = spawn((char *[]){ "/usr/bin/env", path, "/bin/sh", script, pid, r->img, r->dir,
			       NULL }, r->cryo_log, false);
	if (sh < 0 || wait_for(sh, EXIT_TIMEOUT, &status))
		return why("cannot run %s", script);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return why("%s failed (status 0x%x)", script, status);
	want(r->pid);	/* adopted once cryo is gone */
	snprintf(actions, sizeof(actions), "%s/actions.log", r->dir);
	for (size_t i = 0; i < 6; i++) {
		static const char *const stage[] = { "pre-dump", "post-dump", "pre-restore",
						     "post-restore", "pre-resume", "post-resume" };

		snprintf(expect, sizeof(expect), "%s %s %s\n", stage[i],
			 i == 2 ? "none" : pid, realpath(r->img, path) ? path : r->img);
		if (!file_has(actions, expect))
			return why("the action script did not run at %s as '%s'", stage[i],
				   expect);
	}
	return victim_unharmed(r);
}

static int bad_show_damaged(struct run *r)
{
	char file[1200];

	run_dir(r, "show-damaged-image", "bad");
	if (!base_image[0] && make_base_image())
		return -1;
	if (copy_dir(base_image, r->img))
		return -1;
	snprintf(file, sizeof(file), "%s/pstree.img", r->img);
	if (flip_byte(file, 2, true))
		return -1;
	return expect_error(r, run_cryo(r->cryo_log, "show", r->img, NULL), "pstree.img");
}

/* ---- image size ---- */

#define SPARSE_MAX_PAGE_FILE (2 << 20)

/* t_sparse touches 10 pages of a 4 GiB mapping: its page file holds about those
 * pages only, and the image restores. */
static int image_size_sparse(struct run *r)
{
	char path[600], file[1200], *argv[] = { path, work, NULL };
	struct stat st;

	run_dir(r, "image-size-sparse", "size");
	snprintf(path, sizeof(path), "%s/t_sparse", tests_dir);
	r->pid = spawn(argv, r->log, true);
	if (r->pid < 0)
		return why("fork failed");
	if (wait_ready(r->pid, r->log) || step_dump(r, r->img, false))
		return -1;
	snprintf(file, sizeof(file), "%s/pages-%d.img", r->img, r->pid);
	if (stat(file, &st))
		return why("cannot stat %s: %s", file, strerror(errno));
	if (st.st_size < 10 * 4096)
		return why("%s has %lld bytes, less than the 10 touched pages", file,
			   (long long)st.st_size);
	if (st.st_size > SPARSE_MAX_PAGE_FILE)
		return why("%s has %lld bytes for 10 touched pages (limit %d)", file,
			   (long long)st.st_size, SPARSE_MAX_PAGE_FILE);
	if (step_restore_detached(r, r->img))
		return -1;
	return finish(r, r->pid);
}

/* ---- System V IPC (t_sysv) ---- */

static int start_sysv(struct run *r, const char *name, const char *extra)
{
	char path[600], *argv[] = { path, work, (char *)extra, NULL };

	run_dir(r, name, "bad");
	snprintf(path, sizeof(path), "%s/t_sysv", tests_dir);
	r->pid = spawn(argv, r->log, true);
	if (r->pid < 0)
		return why("fork failed");
	return wait_ready(r->pid, r->log);
}

/* t_sysv's keys, from its PID. */
static int sysv_key(pid_t pid, int kind)
{
	return (0x5c000000 + (kind << 24)) | pid;
}

static void sysv_remove(pid_t pid)
{
	int id;

	if ((id = shmget(sysv_key(pid, 0), 0, 0)) >= 0)
		shmctl(id, IPC_RMID, NULL);
	if ((id = semget(sysv_key(pid, 1), 0, 0)) >= 0)
		semctl(id, 0, IPC_RMID);
	if ((id = msgget(sysv_key(pid, 2), 0)) >= 0)
		msgctl(id, IPC_RMID, NULL);
}

static int bad_dump_sysv_outside(struct run *r)
{
	char pid[16];
	int id, rc;
	void *at;

	if (start_sysv(r, "dump-sysv-attached-outside", NULL))
		return -1;
	id = shmget(sysv_key(r->pid, 0), 0, 0);
	at = id < 0 ? (void *)-1 : shmat(id, NULL, SHM_RDONLY);
	if (at == (void *)-1)
		return why("cannot attach the victim's segment: %s", strerror(errno));
	snprintf(pid, sizeof(pid), "%d", r->pid);
	rc = expect_error(r, run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, NULL),
			  "one attached outside it cannot be restored");
	shmdt(at);
	return rc ? rc : victim_unharmed(r);
}

static int bad_dump_sysv_split(struct run *r)
{
	if (start_sysv(r, "dump-sysv-split", "split"))
		return -1;
	return dump_victim(r, r->img, "is attached in part");
}

static int bad_dump_sysv_undo(struct run *r)
{
	if (start_sysv(r, "dump-sysv-sem-undo", "undo"))
		return -1;
	return dump_victim(r, r->img, "it has a semaphore undo list");
}

static int bad_dump_sysv_locked(struct run *r)
{
	if (start_sysv(r, "dump-sysv-shm-locked", "locked"))
		return -1;
	return dump_victim(r, r->img, "is locked in memory (SHM_LOCK)");
}

/* Dumped and killed, then what it had is replaced by another's: refused naming it,
 * nothing left made. */
static int sysv_taken(struct run *r, const char *name, bool same_id, const char *needle)
{
	char pid[16];
	int id, other = -1, rc;

	if (start_sysv(r, name, NULL))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	id = shmget(sysv_key(r->pid, 0), 0, 0);
	rc = run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, NULL);
	if (rc || wait_for(r->pid, 10, NULL))
		return why("the dump failed");
	shmctl(id, IPC_RMID, NULL);
	/* Gone once the killed child has let go of it too. */
	for (int i = 0; i < 2500 && !shmctl(id, IPC_STAT, &(struct shmid_ds){ 0 }); i++) {
		reap_adopted();
		sleep_ms(2);
	}
	if (same_id) {
		char num[16];
		int fd = open("/proc/sys/kernel/shm_next_id", O_WRONLY);

		snprintf(num, sizeof(num), "%d", id);
		if (fd < 0 || write(fd, num, strlen(num)) < 0)
			return why("cannot write shm_next_id");
		close(fd);
		other = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	} else {
		other = shmget(sysv_key(r->pid, 0), 4096, IPC_CREAT | 0600);
	}
	if (other < 0 || (same_id && other != id))
		return why("cannot make the other segment");
	rc = expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", NULL), needle);
	shmctl(other, IPC_RMID, NULL);
	sysv_remove(r->pid);
	if (!rc && !kill(r->pid, 0))
		return why("a failed restore left process %d behind", r->pid);
	r->pid = 0;
	return rc;
}

static int bad_restore_sysv_key_taken(struct run *r)
{
	return sysv_taken(r, "restore-sysv-key-taken", false, "is taken by another");
}

static int bad_restore_sysv_id_taken(struct run *r)
{
	return sysv_taken(r, "restore-sysv-id-taken", true, "is another shared memory segment");
}

/* ---- POSIX message queues (t_mqueue) ---- */

static int start_mqueue(struct run *r, const char *name, const char *extra)
{
	char path[600], *argv[] = { path, work, (char *)extra, NULL };

	run_dir(r, name, "bad");
	snprintf(path, sizeof(path), "%s/t_mqueue", tests_dir);
	r->pid = spawn(argv, r->log, true);
	if (r->pid < 0)
		return why("fork failed");
	return wait_ready(r->pid, r->log);
}

static void mqueue_name(char *buf, size_t len, pid_t pid)
{
	snprintf(buf, len, "/cryo-t-mq-%d", pid);
}

static int bad_dump_mqueue_notify(struct run *r)
{
	if (start_mqueue(r, "dump-mqueue-notify", "notify"))
		return -1;
	return dump_victim(r, r->img, "has a notification registered (mq_notify)");
}

static int bad_dump_mqueue_full(struct run *r)
{
	if (start_mqueue(r, "dump-mqueue-full", "full"))
		return -1;
	return dump_victim(r, r->img, "is full: a sender may be waiting");
}

static int bad_dump_mqueue_outside(struct run *r)
{
	char name[64], pid[16];
	mqd_t q;
	int rc;

	if (start_mqueue(r, "dump-mqueue-open-outside", NULL))
		return -1;
	mqueue_name(name, sizeof(name), r->pid);
	q = mq_open(name, O_RDONLY);
	if (q == (mqd_t)-1)
		return why("cannot open the victim's queue: %s", strerror(errno));
	snprintf(pid, sizeof(pid), "%d", r->pid);
	rc = expect_error(r, run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, NULL),
			  "outside the tree");
	mq_close(q);
	return rc ? rc : victim_unharmed(r);
}

/* Dumped and killed, then its queue's name given to another queue: refused. */
static int bad_restore_mqueue_replaced(struct run *r)
{
	struct mq_attr attr = { .mq_maxmsg = 8, .mq_msgsize = 64 };
	char name[64], pid[16];
	mqd_t other;
	int rc;

	if (start_mqueue(r, "restore-mqueue-replaced", NULL))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	mqueue_name(name, sizeof(name), r->pid);
	rc = run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, NULL);
	if (rc || wait_for(r->pid, 10, NULL))
		return why("the dump failed");
	mq_unlink(name);
	other = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
	if (other == (mqd_t)-1)
		return why("cannot make the other queue: %s", strerror(errno));
	rc = expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", NULL),
			  "that name is another queue now");
	mq_close(other);
	mq_unlink(name);
	if (!rc && !kill(r->pid, 0))
		return why("a failed restore left process %d behind", r->pid);
	r->pid = 0;
	return rc;
}

/* t_ghost's deleted file is 64 MiB with 18 KiB of data: its image holds about the
 * data, not the size. */
#define GHOST_MAX_DATA (256 << 10)

static int image_size_ghost(struct run *r)
{
	char path[600], file[1200], *argv[] = { path, work, NULL };
	uint64_t total = 0;
	struct dirent *de;
	struct stat st;
	DIR *d;

	run_dir(r, "image-size-sparse-ghost", "size");
	snprintf(path, sizeof(path), "%s/t_ghost", tests_dir);
	r->pid = spawn(argv, r->log, true);
	if (r->pid < 0)
		return why("fork failed");
	if (wait_ready(r->pid, r->log) || step_dump(r, r->img, false))
		return -1;
	d = opendir(r->img);
	if (!d)
		return why("cannot list %s: %s", r->img, strerror(errno));
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "ghost-", 6)) {
			snprintf(file, sizeof(file), "%s/%s", r->img, de->d_name);
			if (!stat(file, &st))
				total += st.st_size;
		}
	closedir(d);
	if (total < 16384 || total > GHOST_MAX_DATA)
		return why("the ghost files of the image hold %llu bytes for 18 KiB of data "
			   "(limit %d)", (unsigned long long)total, GHOST_MAX_DATA);
	if (step_restore_detached(r, r->img))
		return -1;
	return finish(r, r->pid);
}

struct bad_case {
	const char *name;
	int (*fn)(struct run *);
};

static void run_cases(const struct bad_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct run r;

		if (!selected(cases[i].name))
			continue;
		memset(&r, 0, sizeof(r));
		reason[0] = 0;
		bad_result(cases[i].name, &r, cases[i].fn(&r));
		remove_test_ipc();
	}
}

/* ---- pre-dump chains ---- */

/* cryo pre-dump of the victim into dir, naming prev unless NULL. */
static int pre_dump_into(struct run *r, const char *dir, const char *prev)
{
	char pid[16];
	int rc;

	snprintf(pid, sizeof(pid), "%d", r->pid);
	rc = prev ? run_cryo(r->cryo_log, "pre-dump", "-t", pid, "-D", dir, "--prev-images-dir",
			     prev, NULL) :
		    run_cryo(r->cryo_log, "pre-dump", "-t", pid, "-D", dir, NULL);
	return rc ? why("cryo pre-dump exited with %d", rc) : 0;
}

/* t_basic pre-dumped into IMG.pre, then dumped (killed) into IMG on top of it. */
static int chain_of_two(struct run *r, const char *name, char *pre, size_t len)
{
	char pid[16];
	int rc;

	if (start_victim(r, name, NULL))
		return -1;
	snprintf(pre, len, "%s.pre", r->img);
	if (pre_dump_into(r, pre, NULL))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	rc = run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, "--prev-images-dir",
		      "../img.pre", "--track-mem", NULL);
	if (rc)
		return why("cryo dump exited with %d", rc);
	return wait_for(r->pid, 10, &rc);
}

/* The parent image moved away: restore names it and makes nothing; back in place,
 * the chain restores. A pre-dump alone is not restorable. */
static int bad_restore_parent_missing(struct run *r)
{
	char pre[700], moved[720];

	if (chain_of_two(r, "restore-parent-missing", pre, sizeof(pre)))
		return -1;
	snprintf(moved, sizeof(moved), "%s.moved", pre);
	if (rename(pre, moved))
		return why("rename: %s", strerror(errno));
	if (restore_refused(r, "img.pre"))
		return -1;
	if (rename(moved, pre))
		return why("rename: %s", strerror(errno));
	if (expect_error(r, run_cryo(r->cryo_log, "restore", "-D", pre, "-d", NULL),
			 "is a pre-dump"))
		return -1;
	/* The chain moved as a whole still restores: an image names its parent
	 * relative to itself. */
	snprintf(moved, sizeof(moved), "%s/chain", r->dir);
	if (mkdir(moved, 0700))
		return why("mkdir: %s", strerror(errno));
	snprintf(moved, sizeof(moved), "%s/chain/img.pre", r->dir);
	if (rename(pre, moved))
		return why("rename: %s", strerror(errno));
	snprintf(moved, sizeof(moved), "%s/chain/img", r->dir);
	if (rename(r->img, moved))
		return why("rename: %s", strerror(errno));
	if (step_restore_detached(r, moved))
		return -1;
	return victim_unharmed(r);
}

/* A byte of the parent's page file changed: its checksum refuses the restore. */
static int bad_restore_parent_tampered(struct run *r)
{
	char pre[700], pages[760];
	unsigned char b;
	int fd, rc;

	if (chain_of_two(r, "restore-parent-tampered", pre, sizeof(pre)))
		return -1;
	snprintf(pages, sizeof(pages), "%s/pages-%d.img", pre, r->pid);
	fd = open(pages, O_RDWR);
	if (fd < 0 || pread(fd, &b, 1, 4096 + 17) != 1)
		return why("cannot read %s", pages);
	b ^= 0x40;
	if (pwrite(fd, &b, 1, 4096 + 17) != 1)
		return why("cannot write %s", pages);
	rc = restore_refused(r, "checksum mismatch");
	b ^= 0x40;
	if (pwrite(fd, &b, 1, 4096 + 17) != 1)
		rc = why("cannot write %s", pages);
	close(fd);
	if (rc || step_restore_detached(r, r->img))
		return -1;
	return victim_unharmed(r);
}

/* Another process's pre-dump as the parent: refused, the process unharmed. */
static int bad_dump_parent_of_other(struct run *r)
{
	struct run other;
	char pre[700], pid[16];
	int rc;

	memset(&other, 0, sizeof(other));
	if (start_victim(&other, "dump-parent-of-other-1", NULL))
		return -1;
	snprintf(pre, sizeof(pre), "%s.pre", other.img);
	rc = pre_dump_into(&other, pre, NULL);
	if (!rc && start_victim(r, "dump-parent-of-other", NULL))
		rc = -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	if (!rc)
		rc = expect_error(r, run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img,
					      "--prev-images-dir", pre, "--track-mem", NULL),
				  "is not of this process tree");
	if (!rc)
		rc = victim_unharmed(r);
	if (!rc)
		rc = victim_unharmed(&other);
	if (rc)
		kill(other.pid, SIGKILL);
	else
		remove_tree(other.dir);
	return rc;
}

/* A process holding a userfaultfd: pre-dump refuses it by fd. */
static int bad_predump_uffd_user(struct run *r)
{
	char pid[16];

	if (start_prog_victim(r, "predump-userfaultfd-user", "t_predump", "uffd"))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	if (expect_error(r, run_cryo(r->cryo_log, "pre-dump", "-t", pid, "-D", r->img, NULL),
			 "is a userfaultfd"))
		return -1;
	return victim_unharmed(r);
}

/* A cryo-track process whose pidfd (its fd 4) names PID *arg. */
static bool tracks(const char *dir, const void *arg)
{
	char path[320], want[32], *txt;
	bool yes = false;

	snprintf(path, sizeof(path), "%s/comm", dir);
	txt = read_proc(path);
	if (txt && !strcmp(txt, "cryo-track\n")) {
		free(txt);
		snprintf(path, sizeof(path), "%s/fdinfo/4", dir);
		snprintf(want, sizeof(want), "\nPid:\t%d\n", *(const pid_t *)arg);
		txt = read_proc(path);
		yes = txt && strstr(txt, want);
	}
	free(txt);
	return yes;
}

/* The tracker of the victim's pre-dump, found by its name and the pidfd it holds. */
static pid_t tracker_of(pid_t pid)
{
	return proc_find(tracks, &pid);
}

/* The tracker killed between rounds: the dump says so, saves every page, and the
 * image restores without its parent. */
static int predump_tracker_gone(struct run *r)
{
	char pre[700], pid[16];
	pid_t tracker;
	int rc;

	if (start_victim(r, "predump-tracker-gone", NULL))
		return -1;
	snprintf(pre, sizeof(pre), "%s.pre", r->img);
	if (pre_dump_into(r, pre, NULL))
		return -1;
	tracker = tracker_of(r->pid);
	if (!tracker)
		return why("no tracker holds process %d's userfaultfd after its pre-dump", r->pid);
	kill(tracker, SIGKILL);
	for (int i = 0; i < 1000 && !kill(tracker, 0) && !is_zombie(tracker); i++)
		sleep_ms(2);
	snprintf(pid, sizeof(pid), "%d", r->pid);
	rc = run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, "--prev-images-dir",
		      "../img.pre", "--track-mem", NULL);
	if (rc)
		return why("cryo dump exited with %d", rc);
	if (!file_has(r->cryo_log, "is gone: every page is dumped"))
		return why("the dump did not say the tracker was gone");
	if (wait_for(r->pid, 10, &rc))
		return -1;
	remove_tree(pre);
	if (step_restore_detached(r, r->img))
		return -1;
	return victim_unharmed(r);
}

/* Anything of a userfaultfd in the process: an fd, or a VMA registered ("uw"). */
static const char *uffd_trace(pid_t pid)
{
	char path[64], link[300], *smaps;
	struct dirent *de;
	const char *found = NULL;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	while (d && !found && (de = readdir(d))) {
		char fd[400];
		ssize_t n;

		snprintf(fd, sizeof(fd), "%s/%s", path, de->d_name);
		n = readlink(fd, link, sizeof(link) - 1);
		if (n > 0 && (link[n] = 0, !strcmp(link, "anon_inode:[userfaultfd]")))
			found = "a userfaultfd fd";
	}
	if (d)
		closedir(d);
	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	smaps = found ? NULL : read_file(path, NULL);
	for (char *at = smaps; at && !found && (at = strstr(at, "VmFlags:")); at++)
		if (strstr(at, " uw") && strstr(at, " uw") < strchr(at, '\n'))
			found = "a mapping registered with userfaultfd";
	free(smaps);
	return found;
}

/* End every tracker of process pid, each waited for through a pidfd until it has
 * exited: its fd table goes first (tracker_of no longer finds it) and its
 * userfaultfd is released only later in its exit, so a round started in between
 * found the mappings still registered. The pidfd, opened before the tracker is
 * checked again, keeps a PID come round again from being signalled. */
static void end_trackers(pid_t pid)
{
	pid_t tracker;

	for (int tries = 0; tries < 100 && (tracker = tracker_of(pid)); tries++) {
		struct pollfd pfd = { .fd = syscall(SYS_pidfd_open, tracker, 0), .events = POLLIN };
		char dir[64];

		if (pfd.fd < 0)
			continue;
		snprintf(dir, sizeof(dir), "/proc/%d", tracker);
		if (tracks(dir, &pid) && !syscall(SYS_pidfd_send_signal, pfd.fd, SIGKILL, NULL, 0))
			poll(&pfd, 1, 2000);
		close(pfd.fd);
	}
}

/* cryo pre-dump killed at random moments: the process runs on, untraced, with nothing
 * of a userfaultfd unless the pre-dump was complete (its tracker holds the tracking;
 * it is ended before the next try), and no tracker outlives an incomplete image. */
static int predump_cryo_killed(struct run *r)
{
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	int complete = 0, n = 40;
	double t0, t;
	char pid[16];

	if (start_victim(r, "predump-cryo-killed", NULL))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	victim_blocked = stable_mask(r->pid);
	t0 = now();
	if (pre_dump_into(r, r->img, NULL))
		return -1;
	t = now() - t0;
	srand(seed);
	for (int i = 0; i < n; i++) {
		double delay = t * 1.3 * rand() / RAND_MAX;
		struct timespec ts = { 0, (long)(delay * 1e9) };
		char *argv[] = { (char *)cryo_bin, "pre-dump", "-t", pid, "-D", r->img, NULL };
		const char *left;
		pid_t cryo;
		int st;

		/* A complete round's tracker (two, if cryo died before ending the old). */
		end_trackers(r->pid);
		cryo = spawn(argv, r->cryo_log, false);
		nanosleep(&ts, NULL);
		kill(cryo, i % 10 == 9 ? SIGTERM : SIGKILL);
		if (wait_for(cryo, 30, &st) || victim_free(r))
			return why("%s (kill %d of %d, seed %u)", reason, i + 1, n, seed);
		if (image_complete(r)) {
			complete++;
			continue;
		}
		for (int k = 0; k < 1000 && (tracker_of(r->pid) || uffd_trace(r->pid)); k++)
			sleep_ms(2);
		left = uffd_trace(r->pid);
		if (tracker_of(r->pid) || left)
			return why("pre-dump killed %.1f ms in, its image incomplete: %s (kill %d "
				   "of %d, seed %u)", delay * 1e3,
				   left ? left : "its tracker still runs", i + 1, n, seed);
	}
	printf("    cryo pre-dump killed %d times over a %.1f ms pre-dump: %d before its "
	       "image was complete (nothing left), %d after\n", n, t * 1e3, n - complete,
	       complete);
	return victim_unharmed(r);
}

/* A tracee's next step: cryo's own threads run on, its other processes (the
 * tracker, the child it forks through) stop at each syscall. */
static void resume_tracee(pid_t pid, pid_t cryo, int sig)
{
	char path[64], *st;
	const char *at;
	bool thread;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	st = read_proc(path);
	at = st ? strstr(st, "\nTgid:\t") : NULL;
	thread = at && atoi(at + 7) == cryo;
	free(st);
	ptrace(thread ? PTRACE_CONT : PTRACE_SYSCALL, pid, 0, sig);
}

static bool is_tracker(pid_t pid)
{
	char path[64], *comm;
	bool yes;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	comm = read_proc(path);
	yes = comm && !strcmp(comm, "cryo-track\n");
	free(comm);
	return yes;
}

/* One stop of a tracee of run_holding: held (the end of the tracker's first write),
 * or resumed. */
static void tracee_stop(pid_t pid, int st, pid_t cryo, pid_t *writing, pid_t *held)
{
	struct __ptrace_syscall_info si;

	if (WSTOPSIG(st) != (SIGTRAP | 0x80)) {
		/* An event or the first stop: nothing to deliver; a signal: it. */
		resume_tracee(pid, cryo, (st >> 16) || WSTOPSIG(st) == SIGTRAP ? 0 :
					 WSTOPSIG(st));
		return;
	}
	if (pid == *writing) {
		*held = pid;
		*writing = 0;
		return;
	}
	if (!*held && ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof(si), &si) > 0 &&
	    si.op == PTRACE_SYSCALL_INFO_ENTRY && si.entry.nr == SYS_write && is_tracker(pid))
		*writing = pid;
	resume_tracee(pid, cryo, 0);
}

/* Run cryo (argv) traced to its end, holding the memory tracker it starts at the end
 * of its first write(): its PID's report to cryo. Returns cryo's exit code, or -1;
 * *held: the tracker (stopped, traced by the harness) or 0, *held_fd a pidfd of it. */
static int run_holding(char *argv[], const char *log, pid_t *held, int *held_fd)
{
	int gate[2], st, rc = -1;
	pid_t cryo, writing = 0, pid;
	char go = 0;

	*held = 0;
	*held_fd = -1;
	if (pipe2(gate, O_CLOEXEC))
		return why("pipe: %s", strerror(errno));
	cryo = fork();
	if (cryo == 0) {
		if (read(gate[0], &go, 1) != 1)
			_exit(126);
		child_stdio(log, false, -1, -1);
		become_user();
		/* Traced, a cryo built with AddressSanitizer cannot look for leaks at exit
		 * (LeakSanitizer stops the world with ptrace) and would abort. */
		setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1", 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(gate[0]);
	if (cryo > 0)
		want(cryo);
	if (cryo < 0 || ptrace(PTRACE_SEIZE, cryo, 0, PTRACE_O_TRACESYSGOOD |
			       PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE)) {
		close(gate[1]);
		why("cannot start cryo traced: %s", strerror(errno));
		if (cryo > 0)
			wait_for(cryo, 10, &st);
		return -1;
	}
	if (write(gate[1], &go, 1) != 1)
		kill(cryo, SIGKILL);
	close(gate[1]);
	while ((pid = waitpid(-1, &st, __WALL)) != -1 || errno == EINTR) {
		if (pid <= 0)
			continue;
		if (pid == cryo && !WIFSTOPPED(st)) {
			unwant(cryo);
			rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			break;
		}
		if (WIFSTOPPED(st))
			tracee_stop(pid, st, cryo, &writing, held);
	}
	if (rc < 0)
		why("waitpid: %s", strerror(errno));
	if (*held)
		*held_fd = syscall(SYS_pidfd_open, *held, 0);
	return rc;
}

/* The tracker reports its PID to cryo once its fds are in place. Held right there
 * (the harness traces cryo), it is found by the pidfd it holds, and the dump that
 * follows takes its tracking. Reported earlier, a tracker still moving its fds when
 * cryo ended was none the next round could find or take: that round refused the
 * mappings it kept registered, and the tracker ran on (predump-cryo-killed, now and
 * then on a busy machine). */
static int predump_tracker_held(struct run *r)
{
	char pid[16], pre[700];
	char *argv[] = { (char *)cryo_bin, "pre-dump", "-t", pid, "-D", pre, NULL };
	pid_t tracker;
	siginfo_t si;
	int rc, fd, st;

	if (start_victim(r, "predump-tracker-held", NULL))
		return -1;
	snprintf(pid, sizeof(pid), "%d", r->pid);
	snprintf(pre, sizeof(pre), "%s.pre", r->img);
	rc = run_holding(argv, r->cryo_log, &tracker, &fd);
	if (rc > 0)
		why("cryo pre-dump exited with %d", rc);
	else if (!rc && !tracker)
		rc = why("cryo pre-dump started no tracker (none was held)");
	else if (!rc && tracker_of(r->pid) != tracker)
		rc = why("tracker %d, held once it told cryo its PID, does not hold process "
			 "%d's pidfd at fd 4", tracker, r->pid);
	if (!rc && (rc = run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img,
				  "--prev-images-dir", "../img.pre", "--track-mem", NULL)))
		why("cryo dump, the tracker held, exited with %d", rc);
	if (!rc && file_has(r->cryo_log, "is gone"))
		rc = why("the dump did not find the held tracker");
	if (fd >= 0) {
		syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
		waitid((idtype_t)CR_P_PIDFD, fd, &si, WEXITED | __WALL);
		close(fd);
	}
	if (rc || wait_for(r->pid, 10, &st) || step_restore_detached(r, r->img))
		return -1;
	return victim_unharmed(r);
}

static void run_bad_inputs(void)
{
	static const struct bad_case cases[] = {
		{ "dump-no-such-pid", bad_dump_no_pid },
		{ "dump-kernel-thread", bad_dump_kthread },
		{ "dump-already-traced", bad_dump_traced },
		{ "dump-dir-is-a-file", bad_dump_not_a_dir },
		{ "dump-disk-full", bad_dump_disk_full },
		{ "dump-tree-member-traced", bad_dump_traced_member },
		{ "dump-tree-member-pidns", bad_dump_pidns_member },
		{ "dump-in-vfork", bad_dump_vfork },
		{ "dump-timeout", bad_dump_timeout },
		{ "dump-pidfd-outside", bad_dump_pidfd_outside },
		{ "dump-inotify-queued", bad_dump_inotify_queued },
		{ "dump-fanotify", bad_dump_fanotify },
		{ "dump-aio-ring", bad_dump_aio },
		{ "dump-fd-table-shared-outside", bad_dump_shared_fd_table },
		{ "dump-lock-closed-but-mapped", bad_dump_lock_mapped },
		{ "dump-lease", bad_dump_lease },
		{ "restore-flock-taken", bad_restore_flock_taken },
		{ "restore-posix-lock-taken", bad_restore_posix_lock_taken },
		{ "dump-pty-extproc-input", bad_dump_pty_extproc },
		{ "dump-pty-locked-output", bad_dump_pty_locked_output },
		{ "dump-pty-escaped-newline", bad_dump_pty_escaped_newline },
		{ "dump-dev-tty", bad_dump_dev_tty },
		{ "dump-pty-master-outside", bad_dump_pty_master_outside },
		{ "dump-pty-slave-outside", bad_dump_pty_slave_outside },
		{ "dump-unix-outside", bad_dump_unix_outside },
		{ "dump-unix-scm-rights", bad_dump_unix_rights },
		{ "dump-unix-unaccepted-data", bad_dump_unix_unaccepted_data },
		{ "restore-unix-ext-dgram", restore_unix_ext_dgram },
		{ "restore-unix-path-taken", bad_restore_unix_path_taken },
		{ "restore-pidns-unix-path-taken", bad_restore_pidns_unix_path_taken },
		{ "dump-tcp-unaccepted", bad_dump_tcp_unaccepted },
		{ "dump-tcp-connection", bad_dump_tcp_connection },
		{ "dump-tcp-held-outside", bad_dump_tcp_outside },
		{ "restore-tcp-close", bad_restore_tcp_close },
		{ "restore-tcp-port-taken", bad_restore_tcp_port_taken },
		{ "restore-tcp-address-gone", bad_restore_tcp_address_gone },
		{ "restore-tcp-damaged-image", bad_restore_tcp_damaged },
		{ "dump-netlink-queued", bad_dump_netlink_queued },
		{ "restore-netlink-port-taken", bad_restore_netlink_port_taken },
		{ "dump-packet-ring", bad_dump_packet_ring },
		{ "dump-packet-fanout", bad_dump_packet_fanout },
		{ "dump-packet-queued", bad_dump_packet_queued },
		{ "dump-raw-queued", bad_dump_raw_queued },
		{ "dump-udp-corked", bad_dump_udp_corked },
		{ "restore-udp-port-taken", bad_restore_udp_port_taken },
		{ "dump-seccomp-thread", bad_dump_seccomp_thread },
		{ "dump-dir-is-a-link", bad_dump_dir_link },
		{ "dump-planted-link", bad_dump_planted_link },
		{ "dump-dir-writable-by-others", bad_dump_open_dir },
		{ "dump-refused-leaves-no-dir", bad_dump_leaves_nothing },
		{ "stopped-kill-restore", bad_stopped_kill },
		{ "stopped-leave-running", bad_stopped_leave },
		{ "restore-truncated-core", bad_restore_truncated },
		{ "restore-flipped-bit-core", bad_restore_flipped_core },
		{ "restore-flipped-bit-pages", bad_restore_flipped_pages },
		{ "restore-missing-page-file", bad_restore_missing_pages },
		{ "restore-newer-format", bad_restore_newer },
		{ "restore-format-1", bad_restore_older },
		{ "restore-external-pipe", bad_restore_external_pipe },
		{ "restore-not-an-image", bad_restore_not_image },
		{ "restore-pid-taken", bad_restore_pid_taken },
		{ "restore-fifo-inventory", bad_restore_fifo_inventory },
		{ "restore-linked-image-file", bad_restore_linked_file },
		{ "restore-mapped-file-copied", restore_mapped_copied },
		{ "restore-mapped-file-rebuilt", bad_restore_mapped_rebuilt },
		{ "restore-image-of-another-user", bad_restore_users_image },
		{ "restore-own-proc-files", restore_own_proc },
		{ "dump-cwd-in-dead-proc", bad_dump_dead_cwd },
		{ "restore-trusted-image-as-root", bad_restore_trusted_root },
		{ "restore-trusted-image-of-nobody", restore_trusted_user },
		{ "restore-trusted-ghost-of-nobody", restore_trusted_ghost },
		{ "restore-trusted-ghost-of-root", bad_restore_trusted_root_ghost },
		{ "cli-invalid-pid", bad_cli },
		{ "cli-reference-flag", bad_cli_reference_flag },
		{ "cli-log-file", cli_log_file },
		{ "cli-stats", cli_stats },
		{ "cli-progress", cli_progress },
		{ "cli-criu-script", cli_criu_script },
		{ "cli-check-feature", cli_check_feature },
		{ "dump-init", bad_dump_init },
		{ "unprivileged", bad_unprivileged },
		{ "restore-forwards-sigterm", restore_forwards_sigterm },
		{ "show-damaged-image", bad_show_damaged },
		{ "image-size-sparse", image_size_sparse },
		{ "dump-sysv-attached-outside", bad_dump_sysv_outside },
		{ "dump-sysv-split", bad_dump_sysv_split },
		{ "dump-sysv-sem-undo", bad_dump_sysv_undo },
		{ "dump-sysv-shm-locked", bad_dump_sysv_locked },
		{ "restore-sysv-key-taken", bad_restore_sysv_key_taken },
		{ "restore-sysv-id-taken", bad_restore_sysv_id_taken },
		{ "dump-mqueue-notify", bad_dump_mqueue_notify },
		{ "dump-mqueue-full", bad_dump_mqueue_full },
		{ "dump-mqueue-open-outside", bad_dump_mqueue_outside },
		{ "restore-mqueue-replaced", bad_restore_mqueue_replaced },
		{ "dump-ghost-above-limit", bad_dump_ghost_big },
		{ "dump-ghost-under-limit", ghost_big_limit },
		{ "dump-file-replaced", bad_dump_replaced },
		{ "dump-ghost-dir-removed", bad_dump_ghost_no_dir },
		{ "dump-memfd-hugetlb", bad_dump_memfd_hugetlb },
		{ "dump-removed-cwd", bad_dump_removed_cwd },
		{ "dump-removed-dir", bad_dump_removed_dir },
		{ "dump-memfd-future-write", bad_dump_memfd_future_write },
		{ "image-size-sparse-ghost", image_size_ghost },
		{ "restore-parent-missing", bad_restore_parent_missing },
		{ "restore-parent-tampered", bad_restore_parent_tampered },
		{ "dump-parent-of-other", bad_dump_parent_of_other },
		{ "predump-userfaultfd-user", bad_predump_uffd_user },
		{ "predump-tracker-gone", predump_tracker_gone },
		{ "predump-cryo-killed", predump_cryo_killed },
		{ "predump-tracker-held", predump_tracker_held },
	};

	run_cases(cases, CR_LEN(cases));
}
