/* Real programs made of process trees, checked from outside (included by harness.c):
 * each is dumped while it works, restored, and must end with the output of an
 * undisturbed run; a shell pipeline that never ends must keep appending with no line
 * lost or repeated, those sitting in its pipe at the dump included. */

/* ---- the programs ---- */

#define MAKE_UNITS 8

static int write_text(const char *dir, const char *name, const char *text)
{
	char path[800];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return why("cannot write %s: %s", path, strerror(errno));
	fputs(text, f);
	return fclose(f) ? why("cannot write %s", path) : 0;
}

/* A small C project whose units take a moment to compile. */
static int make_project(const char *dir)
{
	char name[32], *src = malloc(1 << 20);
	size_t at;
	int rc = 0;

	if (!src)
		return why("out of memory");
	for (int u = 1; u <= MAKE_UNITS && !rc; u++) {
		at = snprintf(src, 1 << 20, "unsigned long f%d(unsigned long x)\n{\n", u);
		for (int k = 0; k < 1500; k++)
			at += snprintf(src + at, (1 << 20) - at, "\tx = x * %d + (x >> %d) + %d;\n",
				       2 * k + 1, k % 13 + 1, k * u);
		snprintf(src + at, (1 << 20) - at, "\treturn x;\n}\n");
		snprintf(name, sizeof(name), "m%d.c", u);
		rc = write_text(dir, name, src);
	}
	at = snprintf(src, 1 << 20, "#include <stdio.h>\n");
	for (int u = 1; u <= MAKE_UNITS; u++)
		at += snprintf(src + at, (1 << 20) - at, "unsigned long f%d(unsigned long);\n", u);
	at += snprintf(src + at, (1 << 20) - at, "int main(void)\n{\n\tunsigned long x = 1;\n");
	for (int u = 1; u <= MAKE_UNITS; u++)
		at += snprintf(src + at, (1 << 20) - at, "\tx = f%d(x);\n", u);
	snprintf(src + at, (1 << 20) - at, "\tprintf(\"%%lu\\n\", x);\n\treturn 0;\n}\n");
	if (!rc)
		rc = write_text(dir, "main.c", src);
	free(src);
	if (!rc)
		rc = write_text(dir, "Makefile",
				"OBJS = main.o m1.o m2.o m3.o m4.o m5.o m6.o m7.o m8.o\n"
				"prog: $(OBJS)\n\tcc -o $@ $(OBJS)\n"
				"%.o: %.c\n\tcc -O2 -c $< -o $@\n");
	return rc;
}

static bool make_midway(const char *dir, const char *log)
{
	char path[800];

	(void)log;
	snprintf(path, sizeof(path), "%s/prog", dir);
	if (!access(path, F_OK))
		return true;	/* too late: the dump is then of the link step */
	for (int u = 1; u <= MAKE_UNITS; u++) {
		snprintf(path, sizeof(path), "%s/m%d.o", dir, u);
		if (!access(path, F_OK))
			return true;
	}
	return false;
}

static int lines_in(const char *path)
{
	char *s = read_file(path, NULL);
	int n = 0;

	for (char *p = s; p && *p; p++)
		n += *p == '\n';
	free(s);
	return n;
}

static bool has_progress(const char *dir, const char *log)
{
	(void)dir;
	return file_has(log, "progress 600\n");
}

static bool five_lines(const char *dir, const char *log)
{
	(void)dir;
	return lines_in(log) >= 5;
}

/* ---- comparing with an undisturbed run ---- */

static int cmp_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The file's lines, sorted when their order is the scheduler's (make -j). */
static char *canonical(const char *path, bool sort)
{
	char *s = read_file(path, NULL), **lines = NULL, *out;
	size_t n = 0, len = 0;

	if (!s || !sort)
		return s;
	for (char *p = strtok(s, "\n"); p; p = strtok(NULL, "\n")) {
		char **m = realloc(lines, (n + 1) * sizeof(*lines));

		if (!m)
			break;
		lines = m;
		lines[n++] = p;
		len += strlen(p) + 1;
	}
	qsort(lines, n, sizeof(*lines), cmp_lines);
	out = calloc(1, len + 1);
	for (size_t i = 0; out && i < n; i++)
		strcat(strcat(out, lines[i]), "\n");
	free(lines);
	free(s);
	return out;
}

static int same_file(const char *a, const char *b, bool sort, const char *what)
{
	char *x = canonical(a, sort), *y = canonical(b, sort);
	int rc = 0;

	if (!x || !y)
		rc = why("%s: cannot read %s", what, x ? b : a);
	else if (strcmp(x, y))
		rc = why("%s differs from an undisturbed run's (%s, %s)", what, a, b);
	free(x);
	free(y);
	return rc;
}

struct real_tree {
	const char *name;
	const char *need;			/* installed, or the case is skipped */
	const char *argv[8];			/* "@" stands for the run's directory */
	int (*setup)(const char *dir);
	bool (*midway)(const char *dir, const char *log);
	bool sorted;				/* compare the output's lines sorted */
	const char *product;			/* a file the run makes, compared too */
};

static pid_t start_real(const struct real_tree *t, const char *dir, const char *log)
{
	char *argv[8], script[700];
	int i;

	for (i = 0; t->argv[i]; i++) {
		argv[i] = (char *)t->argv[i];
		if (!strcmp(argv[i], "@"))
			argv[i] = (char *)dir;
		if (!strncmp(argv[i], "real:", 5)) {
			snprintf(script, sizeof(script), "%s/%s", real_dir, argv[i] + 5);
			argv[i] = script;
		}
	}
	argv[i] = NULL;
	if (t->setup && t->setup(dir))
		return -1;
	return spawn(argv, log, true);
}

/* The end of the (restored) root: it must succeed. */
static int real_end(pid_t pid, const char *name)
{
	int status;

	if (wait_for(pid, EXIT_TIMEOUT, &status))
		return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return why("%s ended with status 0x%x", name, status);
	return 0;
}

static int same_bytes(const char *a, const char *b, const char *what)
{
	size_t la, lb;
	char *x = read_file(a, &la), *y = read_file(b, &lb);
	int rc = 0;

	if (!x || !y)
		rc = why("%s: cannot read %s", what, x ? b : a);
	else if (la != lb || memcmp(x, y, la))
		rc = why("%s differs from an undisturbed run's (%s, %s)", what, a, b);
	free(x);
	free(y);
	return rc;
}

static int real_compare(const struct real_tree *t, const struct run *r, const char *base)
{
	char a[800], b[800];

	snprintf(b, sizeof(b), "%s/output.txt", base);
	if (same_file(r->log, b, t->sorted, "the output"))
		return -1;
	if (!t->product)
		return 0;
	snprintf(a, sizeof(a), "%s/%s", r->dir, t->product);
	snprintf(b, sizeof(b), "%s/%s", base, t->product);
	return same_bytes(a, b, t->product);
}

static int real_mode(const struct real_tree *t, struct run *r, enum mode m, const char *base)
{
	char img2[700];
	double end = now() + READY_TIMEOUT;

	r->pid = start_real(t, r->dir, r->log);
	if (r->pid < 0)
		return why("cannot start %s", t->name);
	while (!t->midway(r->dir, r->log)) {
		if (now() > end)
			return why("%s did not get under way within %.0f s", t->name, READY_TIMEOUT);
		sleep_ms(1);
	}
	snprintf(img2, sizeof(img2), "%s-2", r->img);
	switch (m) {
	case MODE_KILL:
		if (step_dump(r, r->img, false) || step_restore_detached(r, r->img))
			return -1;
		break;
	case MODE_LEAVE:
		if (step_dump(r, r->img, true))
			return -1;
		break;
	default:
		if (step_dump(r, r->img, false) || step_restore_detached(r, r->img) ||
		    step_dump(r, img2, false) || step_restore_detached(r, img2))
			return -1;
	}
	return real_end(r->pid, t->name) || real_compare(t, r, base) ? -1 : 0;
}

static void run_real_tree(const struct real_tree *t)
{
	static const char *const short_modes[] = { "kill", "leave", "twice" };
	struct run base, r;
	int rc;

	if (access(t->need, X_OK)) {
		printf("SKIP %s: %s is not installed\n", t->name, t->need);
		return;
	}
	memset(&base, 0, sizeof(base));
	run_dir(&base, t->name, "undisturbed");
	reason[0] = 0;
	base.pid = start_real(t, base.dir, base.log);
	rc = base.pid < 0 ? -1 : real_end(base.pid, t->name);
	reap_orphans();
	if (rc) {
		result(t->name, "undisturbed run", rc, base.log, NULL);
		return;
	}
	for (int m = MODE_KILL; m <= MODE_TWICE; m++) {
		memset(&r, 0, sizeof(r));
		run_dir(&r, t->name, short_modes[m]);
		reason[0] = 0;
		rc = real_mode(t, &r, m, base.dir);
		if (rc && r.pid > 0)
			kill(-r.pid, SIGKILL);
		reap_orphans();
		result(t->name, mode_names[m], rc, rc ? r.log : NULL, rc ? r.cryo_log : NULL);
	}
}

/* ---- a pipeline that never ends ---- */

/* A process of the session led by `root` with this name. */
static pid_t find_in_tree(pid_t root, const char *comm)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;

	while (d && !found && (de = readdir(d))) {
		char path[300], *s;
		pid_t pid = atoi(de->d_name);

		if (pid <= 0 || getsid(pid) != root)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		s = read_proc(path);
		if (s && !strncmp(s, comm, strlen(comm)) && s[strlen(comm)] == '\n')
			found = pid;
		free(s);
	}
	if (d)
		closedir(d);
	return found;
}

static double realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int lines_after(const char *path, double t)
{
	char *s = read_file(path, NULL);
	int n = 0;

	for (char *p = s; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
		n += strtod(p, NULL) > t;
	free(s);
	return n;
}

/* Every line a timestamp, each later than the one before; some from while cat was
 * stopped until the dump (they sat in the pipe), and some from after the restore. */
static int check_timestamps(const char *path, double stopped, double dumped, double resumed)
{
	char *s = read_file(path, NULL);
	int in_pipe = 0, after = 0, n = 0, rc = 0;
	double last = 0;

	for (char *line = s ? strtok(s, "\n") : NULL; line && !rc; line = strtok(NULL, "\n")) {
		char *end;
		double t = strtod(line, &end);

		n++;
		if (*end || end == line || !strchr(line, '.'))
			rc = why("line %d of the log is not a timestamp: '%.40s'", n, line);
		else if (t <= last)
			rc = why("line %d (%s) repeats or goes back in time", n, line);
		last = t;
		in_pipe += t > stopped && t < dumped;
		after += t > resumed;
	}
	free(s);
	if (!rc && !in_pipe)
		rc = why("none of the lines written while cat was stopped (they were in the "
			 "pipe at the dump) reached the log");
	if (!rc && after < 2)
		rc = why("the log has %d lines from after the restore", after);
	return rc;
}

static int pipeline_mode(struct run *r, enum mode m)
{
	char logf[700], cmd[900], img2[700];
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	double stopped, dumped, resumed, end;
	pid_t cat;

	snprintf(logf, sizeof(logf), "%s/LOG", r->dir);
	snprintf(cmd, sizeof(cmd), "while :; do date +%%s.%%N; sleep 1; done | cat >> %s", logf);
	r->pid = spawn(argv, r->log, true);
	end = now() + READY_TIMEOUT;
	while (lines_in(logf) < 2 || !(cat = find_in_tree(r->pid, "cat"))) {
		if (now() > end)
			return why("the pipeline did not start within %.0f s", READY_TIMEOUT);
		sleep_ms(10);
	}
	/* Lines pile up in the pipe while cat is stopped: the dump must keep them. */
	kill(cat, SIGSTOP);
	if (wait_state(cat, 'T'))
		return -1;
	stopped = realtime();
	sleep_ms(2500);
	dumped = realtime();
	snprintf(img2, sizeof(img2), "%s-2", r->img);
	if (step_dump(r, r->img, m == MODE_LEAVE) ||
	    (m != MODE_LEAVE && step_restore_detached(r, r->img)) ||
	    (m == MODE_TWICE && (step_dump(r, img2, false) || step_restore_detached(r, img2))))
		return -1;
	resumed = realtime();
	if (kill(cat, SIGCONT))
		return why("cat (%d) is gone after the restore", cat);
	end = now() + 3 * READY_TIMEOUT;
	while (lines_after(logf, resumed) < 2 && now() < end)
		sleep_ms(20);
	kill(-r->pid, SIGKILL);
	return check_timestamps(logf, stopped, dumped, resumed);
}

static void run_pipeline(void)
{
	static const char *const short_modes[] = { "kill", "leave", "twice" };
	const char *name = "sh-date-cat-pipeline";
	struct run r;
	int rc;

	for (int m = MODE_KILL; m <= MODE_TWICE; m++) {
		memset(&r, 0, sizeof(r));
		run_dir(&r, name, short_modes[m]);
		reason[0] = 0;
		rc = pipeline_mode(&r, m);
		if (r.pid > 0)
			kill(-r.pid, SIGKILL);
		reap_orphans();
		result(name, mode_names[m], rc, rc ? r.log : NULL, rc ? r.cryo_log : NULL);
	}
}

/* ---- terminals: a job in the user's terminal, a tmux server ---- */

#define PY_ENV { "TERM=dumb", "PYTHON_BASIC_REPL=1", "HOME=/", NULL }

/* A pty pair the harness plays the user's side of: the master, the slave's name. */
static int open_pty(char *name, size_t len)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (m < 0 || grantpt(m) || unlockpt(m) || !ptsname(m)) {
		if (m >= 0)
			close(m);
		return why("cannot make a pty pair: %s", strerror(errno));
	}
	snprintf(name, len, "%s", ptsname(m));
	return m;
}

/* In a child: a new session with the slave as its controlling terminal on fds 0-2
 * (stdout and stderr to log instead, if given), nothing else open. */
static void child_on_tty(const char *slave, const char *log)
{
	int s, fd;

	setsid();
	s = open(slave, O_RDWR);
	if (s < 0)
		_exit(126);
	for (fd = 0; fd < 3; fd++)
		dup2(s, fd);
	fd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	syscall(SYS_close_range, 3, ~0U, 0);
	signal(SIGPIPE, SIG_DFL);
}

/* What the terminal shows, read until `want` appears (bounded, not timed). */
struct screen {
	char text[65536];
	size_t len;
};

static int pty_expect(int m, struct screen *sc, const char *want)
{
	double end = now() + READY_TIMEOUT;

	while (!memmem(sc->text, sc->len, want, strlen(want))) {
		struct pollfd pfd = { m, POLLIN, 0 };
		ssize_t n;

		if (now() > end)
			return why("the terminal did not show '%s' within %.0f s; it showed '%.*s'",
				   want, READY_TIMEOUT, (int)sc->len, sc->text);
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (sc->len > sizeof(sc->text) / 2)
			sc->len = 0;
		n = read(m, sc->text + sc->len, sizeof(sc->text) - sc->len);
		if (n <= 0)
			return why("the terminal closed before showing '%s'", want);
		sc->len += n;
	}
	return 0;
}

/* Type a line and wait for what it must show. */
static int pty_type(int m, struct screen *sc, const char *keys, const char *want)
{
	sc->len = 0;
	if (write(m, keys, strlen(keys)) != (ssize_t)strlen(keys))
		return why("cannot type into the terminal: %s", strerror(errno));
	return pty_expect(m, sc, want);
}

/* "The shell": a session on the terminal running python3 as its foreground job. */
static pid_t start_shell_with_python(const char *slave)
{
	pid_t shell = fork(), py;
	int status;

	if (shell)
		return shell;
	child_on_tty(slave, NULL);
	py = fork();
	if (!py) {
		char *argv[] = { "/usr/bin/python3", "-q", NULL }, *env[] = PY_ENV;

		setpgid(0, 0);
		signal(SIGTTOU, SIG_IGN);
		tcsetpgrp(0, getpid());
		signal(SIGTTOU, SIG_DFL);
		execve(argv[0], argv, env);
		_exit(127);
	}
	setpgid(py, py);
	waitpid(py, &status, 0);
	_exit(0);
}

/* python3 typed into in one terminal, dumped with -j; restored with -j by a cryo run in
 * another terminal, it is that terminal's foreground job: it keeps its variables and
 * answers what is typed (a background job reading its terminal would be stopped). */
static int shell_job_mode(struct run *r)
{
	char slave[64], pid[16], *argv[] = { (char *)cryo_bin, "restore", "-v", "-j", "-D", r->img,
					     NULL };
	static struct screen sc;
	int m, rc, status, fg = 0;
	pid_t shell, cryo;

	m = open_pty(slave, sizeof(slave));
	if (m < 0)
		return -1;
	sc.len = 0;
	shell = start_shell_with_python(slave);
	want(shell);
	rc = pty_expect(m, &sc, ">>> ") || pty_type(m, &sc, "x = 42\n", ">>> ");
	r->pid = rc ? 0 : find_in_tree(shell, "python3");
	if (!rc && !r->pid)
		rc = why("python3 is not running in the terminal");
	snprintf(pid, sizeof(pid), "%d", r->pid);
	if (!rc && (rc = run_cryo(r->cryo_log, "dump", "-v", "-j", "-t", pid, "-D", r->img, NULL)))
		rc = rc < 0 ? -1 : why("cryo dump -j exited with %d", rc);
	if (!rc)
		rc = wait_for(shell, 10, &status);
	close(m);
	if (rc)
		return -1;
	/* Another terminal, where cryo restore -j runs as the shell's job would. */
	m = open_pty(slave, sizeof(slave));
	if (m < 0)
		return -1;
	cryo = fork();
	if (!cryo) {
		child_on_tty(slave, r->cryo_log);
		execv(argv[0], argv);
		_exit(127);
	}
	want(cryo);
	rc = pty_type(m, &sc, "print(x)\n", "42");
	if (!rc && (ioctl(m, TIOCGPGRP, &fg) || fg != r->pid))
		rc = why("the foreground group of cryo's terminal is %d, not the job's %d", fg,
			 r->pid);
	if (!rc)
		rc = pty_type(m, &sc, "print(x + 1)\n", "43") || pty_type(m, &sc, "exit()\n", "") ||
		     wait_for(cryo, EXIT_TIMEOUT, &status) ? -1 : 0;
	if (!rc && (!WIFEXITED(status) || WEXITSTATUS(status)))
		rc = why("cryo restore -j ended with status 0x%x", status);
	if (rc)
		kill(cryo, SIGKILL);
	close(m);
	return rc;
}

static void run_shell_job(void)
{
	struct run r;
	int rc;

	memset(&r, 0, sizeof(r));
	run_dir(&r, "python3-shell-job", "kill");
	reason[0] = 0;
	rc = shell_job_mode(&r);
	if (rc && r.pid > 0)
		kill(r.pid, SIGKILL);
	reap_orphans();
	result("python3-shell-job", mode_names[MODE_KILL], rc, rc ? r.log : NULL,
	       rc ? r.cryo_log : NULL);
}

/* The log shows `want`, sooner or later. */
static int log_shows(const char *log, const char *want)
{
	double end = now() + READY_TIMEOUT;

	for (;;) {
		char *s = read_file(log, NULL);
		bool found = s && strstr(s, want);

		free(s);
		if (found)
			return 0;
		if (now() > end)
			return why("the output did not show '%s' within %.0f s", want,
				   READY_TIMEOUT);
		sleep_ms(5);
	}
}

static int type_into(int fd, const char *keys)
{
	if (write(fd, keys, strlen(keys)) != (ssize_t)strlen(keys))
		return why("cannot write to the FIFO: %s", strerror(errno));
	return 0;
}

/* util-linux script running python3 on a pty pair of its own: script holds the
 * master and relays its stdin (a FIFO the harness writes) and its log; python3 leads
 * a session on the slave. Dumped, restored, python3 still knows x. */
static int script_mode(struct run *r, enum mode m)
{
	char *argv[] = { "/usr/bin/script", "-q", "-c",
			 "env TERM=dumb PYTHON_BASIC_REPL=1 /usr/bin/python3 -q", "/dev/null", NULL };
	char fifo[800], img2[700];
	int in, w, rc;

	snprintf(fifo, sizeof(fifo), "%s/stdin", r->dir);
	snprintf(img2, sizeof(img2), "%s-2", r->img);
	unlink(fifo);
	if (mkfifo(fifo, 0600) || (in = open(fifo, O_RDWR | O_CLOEXEC)) < 0)
		return why("cannot make the FIFO %s: %s", fifo, strerror(errno));
	w = open(fifo, O_WRONLY | O_CLOEXEC);
	r->pid = spawn_with(argv, r->log, true, in, -1);
	close(in);
	rc = w < 0 || r->pid < 0 ? why("cannot start script") : 0;
	if (!rc)
		rc = log_shows(r->log, ">>> ") || type_into(w, "x = 42\n") ||
		     log_shows(r->log, ">>> x = 42\r\n>>> ") ? -1 : 0;
	if (!rc && m == MODE_KILL)
		rc = step_dump(r, r->img, false) || step_restore_detached(r, r->img);
	if (!rc && m == MODE_LEAVE)
		rc = step_dump(r, r->img, true);
	if (!rc && m == MODE_TWICE)
		rc = step_dump(r, r->img, false) || step_restore_detached(r, r->img) ||
		     step_dump(r, img2, false) || step_restore_detached(r, img2) ? -1 : 0;
	if (!rc)
		rc = type_into(w, "print(x)\n") || log_shows(r->log, "print(x)\r\n42\r\n") ||
		     type_into(w, "exit()\n") || real_end(r->pid, "script") ? -1 : 0;
	if (w >= 0)
		close(w);
	return rc;
}

static void run_script(void)
{
	static const char *const short_modes[] = { "kill", "leave", "twice" };
	struct run r;
	int rc;

	if (access("/usr/bin/script", X_OK)) {
		printf("SKIP script-python3: /usr/bin/script is not installed\n");
		return;
	}
	for (int m = MODE_KILL; m <= MODE_TWICE; m++) {
		memset(&r, 0, sizeof(r));
		run_dir(&r, "script-python3", short_modes[m]);
		reason[0] = 0;
		rc = script_mode(&r, m);
		if (rc && r.pid > 0)
			kill(-r.pid, SIGKILL);
		reap_orphans();
		result("script-python3", mode_names[m], rc, rc ? r.log : NULL,
		       rc ? r.cryo_log : NULL);
	}
}

/* One tmux command on the test's own server; its output in `out` if given. */
static int tmux(const struct run *r, const char *out, char *const args[])
{
	char *argv[16] = { "/usr/bin/tmux", "-L", "cryo-test", "-f", "/dev/null" };
	char log[800];
	int n = 5, status;
	pid_t pid;

	for (int i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	snprintf(log, sizeof(log), "%s/%s", r->dir, out ? out : "tmux.txt");
	if (out)
		unlink(log);
	pid = spawn(argv, log, false);
	if (pid < 0 || wait_for(pid, EXIT_TIMEOUT, &status))
		return pid < 0 ? why("fork failed") : -1;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 :
	       why("tmux %s failed (status 0x%x)", args[0], status);
}

/* The pane shows `want` (capture-pane), sooner or later. */
static int pane_shows(const struct run *r, const char *want)
{
	char *cap[] = { "capture-pane", "-p", "-t", "0", NULL }, path[800];
	double end = now() + READY_TIMEOUT;

	snprintf(path, sizeof(path), "%s/pane.txt", r->dir);
	for (;;) {
		char *s;
		bool found;

		if (tmux(r, "pane.txt", cap))
			return -1;
		s = read_file(path, NULL);
		found = s && strstr(s, want);
		free(s);
		if (found)
			return 0;
		if (now() > end)
			return why("the tmux pane did not show '%s' within %.0f s", want,
				   READY_TIMEOUT);
		sleep_ms(20);
	}
}

/* A tmux server (its own socket) with python3 in a pane where x = 42 was typed:
 * the server's tree is dumped, killed and restored; then print(x) typed through
 * tmux shows 42. The server listens on a unix socket: this needs that kind. */
static int tmux_mode(struct run *r)
{
	char *start[] = { "new-session", "-d", "-x", "80", "-y", "24",
			  "env TERM=dumb PYTHON_BASIC_REPL=1 /usr/bin/python3 -q", NULL };
	char *x42[] = { "send-keys", "-t", "0", "x = 42", "Enter", NULL };
	char *print[] = { "send-keys", "-t", "0", "print(x)", "Enter", NULL };
	char *pid[] = { "display-message", "-p", "#{pid}", NULL };
	char *kill_server[] = { "kill-server", NULL };
	char path[800], *s;
	int rc;

	setenv("TMUX_TMPDIR", r->dir, 1);
	unsetenv("TMUX");
	rc = tmux(r, NULL, start) || pane_shows(r, ">>>") || tmux(r, NULL, x42) ||
	     pane_shows(r, ">>> x = 42\n>>>") || tmux(r, "pid.txt", pid) ? -1 : 0;
	snprintf(path, sizeof(path), "%s/pid.txt", r->dir);
	s = rc ? NULL : read_file(path, NULL);
	r->pid = s ? atoi(s) : 0;
	free(s);
	if (!rc && r->pid <= 0)
		rc = why("no tmux server PID");
	if (!rc) {
		want(r->pid);	/* the daemon is the harness's, a child subreaper */
		rc = step_dump(r, r->img, false) || step_restore_detached(r, r->img) ||
		     tmux(r, NULL, print) || pane_shows(r, "print(x)\n42\n") ? -1 : 0;
	}
	tmux(r, NULL, kill_server);
	if (r->pid > 0 && !rc)
		rc = wait_for(r->pid, EXIT_TIMEOUT, &(int){ 0 });
	unsetenv("TMUX_TMPDIR");
	return rc;
}

static void run_tmux(void)
{
	struct run r;
	int rc;

	if (access("/usr/bin/tmux", X_OK)) {
		printf("SKIP tmux-python3: /usr/bin/tmux is not installed\n");
		return;
	}
	memset(&r, 0, sizeof(r));
	run_dir(&r, "tmux-python3", "kill");
	reason[0] = 0;
	rc = tmux_mode(&r);
	if (rc && r.pid > 0)
		kill(r.pid, SIGKILL);
	reap_orphans();
	result("tmux-python3", mode_names[MODE_KILL], rc, rc ? r.log : NULL,
	       rc ? r.cryo_log : NULL);
}

static void run_real_trees(void)
{
	static const struct real_tree trees[] = {
		{ "make-j2", "/usr/bin/make",
		  { "/usr/bin/make", "--no-print-directory", "-j2", "-C", "@", NULL },
		  make_project, make_midway, true, "prog" },
		{ "python3-multiprocessing-pool", "/usr/bin/python3",
		  { "/usr/bin/python3", "real:mp_pool.py", NULL }, NULL, has_progress, false,
		  NULL },
		{ "busybox-sh-sleep-loop", "/usr/bin/busybox",
		  { "/usr/bin/busybox", "sh", "-c",
		    "i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo $i; /bin/sleep 0.1; done",
		    NULL }, NULL, five_lines, false, NULL },
	};

	for (size_t i = 0; i < sizeof(trees) / sizeof(trees[0]); i++)
		if (selected(trees[i].name))
			run_real_tree(&trees[i]);
	if (selected("sh-date-cat-pipeline"))
		run_pipeline();
	if (selected("script-python3"))
		run_script();
	if (selected("python3-shell-job"))
		run_shell_job();
	if (selected("tmux-python3"))
		run_tmux();
}
