/* The copies case: one image of a process holding N bytes restored many times at once
 * (restore --pidns), each copy then touching 5% of its memory: the wall time from the
 * first restore started to the last copy done, and the PSS of all the copies' namespaces
 * (the copy, its init, and a lazy restore's supplier and guard). Eager, lazy with the
 * background fill, and lazy on touch only. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define MAX_COPIES 256
#define TOUCH_TIMEOUT 300.0

extern char **environ;

struct copy {
	pid_t cryo, root, init;
};

struct copies_run {
	const char *img;
	const char *const *mode;	/* extra restore options (NULL-ended), or NULL */
	int n;
	struct copy c[MAX_COPIES];
	char err[256];
};

static long status_field(pid_t pid, const char *key)
{
	char path[64], buf[4096], *at;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	at = strstr(buf, key);
	return at ? strtol(at + strlen(key), NULL, 10) : -1;
}

static bool comm_is(pid_t pid, const char *want)
{
	char path[64], buf[64] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return !strcmp(buf, want);
}

static int read_pidfile(const char *path, pid_t *pid)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	*pid = n > 0 ? atoi(buf) : 0;
	return *pid > 0 ? 0 : -1;
}

/* The error: the copy and cryo's last line (the log is shared: one of the lines). */
static void restore_failed(struct copies_run *cr, int i, const char *log)
{
	char line[200] = "no output", buf[200];
	FILE *f = fopen(log, "re");

	while (f && fgets(buf, sizeof(buf), f))
		if (strstr(buf, "error"))
			snprintf(line, sizeof(line), "%.*s", (int)strcspn(buf, "\n"), buf);
	if (f)
		fclose(f);
	snprintf(cr->err, sizeof(cr->err), "restore of copy %d failed: %s", i + 1, line);
}

/* Every restore started at once; 0 once all of them have their copy running. */
static int start_all(struct copies_run *cr, int first, int n)
{
	posix_spawn_file_actions_t fa;
	char log[512];
	int rc = 0, st;

	snprintf(log, sizeof(log), "%s/cryo.log", cfg.dir);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	for (int i = first; i < first + n; i++) {
		char pidfile[600];
		const char *argv[] = { cfg.cryo, "restore", "-D", cr->img, "-d", "--pidns",
				       "--pidfile", pidfile, cr->mode ? cr->mode[0] : NULL,
				       cr->mode ? cr->mode[1] : NULL, NULL };

		snprintf(pidfile, sizeof(pidfile), "%s.pid%d", cr->img, i);
		unlink(pidfile);
		if (posix_spawn(&cr->c[i].cryo, cfg.cryo, &fa, NULL, (char *const *)argv, environ))
			cr->c[i].cryo = 0;
	}
	posix_spawn_file_actions_destroy(&fa);
	for (int i = first; i < first + n; i++) {
		char pidfile[600];

		snprintf(pidfile, sizeof(pidfile), "%s.pid%d", cr->img, i);
		if (!cr->c[i].cryo || waitpid(cr->c[i].cryo, &st, 0) != cr->c[i].cryo ||
		    !WIFEXITED(st) || WEXITSTATUS(st) || read_pidfile(pidfile, &cr->c[i].root)) {
			if (!rc)
				restore_failed(cr, i, log);
			rc = -1;
			continue;
		}
		unlink(pidfile);
		cr->c[i].init = status_field(cr->c[i].root, "\nPPid:\t");
	}
	return rc;
}

/* Each copy touches its 5%; 0 once every one says it is done and found it intact. */
static int touch_all(struct copies_run *cr, int first, int n)
{
	double end = now() + TOUCH_TIMEOUT;

	for (int i = first; i < first + n; i++)
		kill(cr->c[i].root, SIGUSR2);
	for (int i = first; i < first + n; i++)
		while (!comm_is(cr->c[i].root, "touched")) {
			if (comm_is(cr->c[i].root, "touch-bad"))
				return snprintf(cr->err, sizeof(cr->err), "copy %d found its "
						"memory wrong", i + 1), -1;
			if (now() > end || kill(cr->c[i].root, 0))
				return snprintf(cr->err, sizeof(cr->err), "copy %d did not touch "
						"its memory", i + 1), -1;
			usleep(1000);
		}
	return 0;
}

/* Ended since its parent listed it (a lazy supplier and its guard exit once every
 * page is in): gone, or a zombie. */
static bool ended(pid_t pid)
{
	char path[64], buf[512], *at;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return true;
	at = strrchr(buf, ')');
	return at && (at[2] == 'Z' || at[2] == 'X');
}

/* kB of pid and every descendant (a namespace's init: the copy, the supplier and its
 * guard, whatever the copy forked); a descendant that has ended holds none. */
static long pss_below(pid_t pid, int depth)
{
	char path[64], buf[2048], *at, *end;
	long kb = pss_kb(pid), one;

	if (kb < 0 && depth && ended(pid))
		return 0;
	if (kb < 0 || depth > 4)
		return kb;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return depth && ended(pid) ? kb : -1;
	for (at = buf;; at = end) {
		long kid = strtol(at, &end, 10);

		if (end == at)
			break;
		one = pss_below(kid, depth + 1);
		if (one < 0)
			return -1;
		kb += one;
	}
	return kb;
}

static double pss_all(const struct copies_run *cr, int first, int n)
{
	double sum = 0;

	for (int i = first; i < first + n; i++) {
		long kb = pss_below(cr->c[i].init, 0);

		if (kb < 0)
			return -1;
		sum += kb * 1024.0;
	}
	return sum;
}

/* Killing a root ends its init (with 128+9) and so its namespace. */
static void end_all(struct copies_run *cr, int first, int n)
{
	int st;

	for (int i = first; i < first + n; i++)
		if (cr->c[i].root > 0)
			kill(cr->c[i].root, SIGKILL);
	for (int i = first; i < first + n; i++) {
		if (cr->c[i].init > 0)
			while (waitpid(cr->c[i].init, &st, __WALL) < 0 && errno == EINTR)
				;
		cr->c[i] = (struct copy){ 0 };
	}
	reap_strays();
}

/* n copies, `batch` at a time: the summed wall time, and the largest PSS of a batch. */
static int copies_once(struct copies_run *cr, int batch, double *secs, double *pss)
{
	*secs = 0;
	*pss = 0;
	for (int first = 0; first < cr->n && !interrupted; first += batch) {
		int k = cr->n - first < batch ? cr->n - first : batch;
		double t = now(), p;
		int rc = start_all(cr, first, k) || touch_all(cr, first, k);

		*secs += now() - t;
		p = rc ? -1 : pss_all(cr, first, k);
		end_all(cr, first, k);
		if (rc)
			return -1;
		if (p < 0)
			return snprintf(cr->err, sizeof(cr->err), "cannot read the copies' PSS"), -1;
		if (p > *pss)
			*pss = p;
	}
	return interrupted ? -1 : 0;
}

/* Copies of `size` bytes that fit in half of the memory available now (at least 1). */
static int fitting_batch(size_t size, int n)
{
	long kb = -1;
	char line[256];
	FILE *f = fopen("/proc/meminfo", "re");
	int b;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	b = kb > 0 ? (int)(kb * 1024.0 / 2 / size) : 1;
	return b < 1 ? 1 : b > n ? n : b;
}

static int make_image(const char *img, size_t size, char *err, size_t len)
{
	char bin[512], bytes[32];
	char *argv[] = { bin, "mem", bytes, "1", NULL };
	char pidbuf[16];
	const char *args[] = { cfg.cryo, "dump", "-t", pidbuf, "-D", img, NULL };
	double t;
	pid_t pid;

	snprintf(bin, sizeof(bin), "%s/target-static", cfg.targets);
	snprintf(bytes, sizeof(bytes), "%zu", size);
	rm_tree(img);
	pid = spawn_target(bin, argv, err, len);
	if (pid < 0)
		return -1;
	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	if (run_cryo(args, &t, err, len)) {
		kill_and_reap(pid);
		return -1;
	}
	return wait_gone(pid, 30) ? snprintf(err, len, "the dumped target stayed"), -1 : 0;
}

/* One way of restoring the copies: its rows and samples. */
struct copies_way {
	const char *const *option;	/* NULL: eager */
	const char *label;
	bool touched_only;		/* its copies hold only what they touch */
	int batch;
	struct samples t, p;
	struct row *tr, *pr;
};

static int way_rows(struct results *r, const char *group, struct copies_way *w, int n,
		    int batch)
{
	char name[80];

	snprintf(name, sizeof(name), "%d restores+touch, %s", n, w->label);
	w->tr = row_new(r, group, name);
	snprintf(name, sizeof(name), "PSS of %d copies, %s", batch, w->label);
	w->pr = row_new(r, group, name);
	if (!w->tr || !w->pr)
		return -1;
	w->pr->bytes = true;
	if (batch < n)
		snprintf(w->tr->note, sizeof(w->tr->note), "%d batches of %d (RAM)",
			 (n + batch - 1) / batch, batch);
	return 0;
}

static void way_done(struct copies_way *w, const char *err)
{
	w->tr->s = w->t;
	w->pr->s = w->p;
	if (err[0] && !w->t.n) {
		str_copy(w->tr->error, sizeof(w->tr->error), err);
		str_copy(w->pr->error, sizeof(w->pr->error), err);
	}
}

/* Does this cryo's restore take `flag` (lazy restore, once it is built)? */
static bool restore_has(const char *flag)
{
	char cmd[600], line[256];
	bool found = false;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s restore --help 2>/dev/null", cfg.cryo);
	f = popen(cmd, "r");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, flag))
			found = true;
	if (f)
		pclose(f);
	return found;
}

int case_copies(struct results *r, const char *group, size_t size, int n)
{
	static const char *const lazy[] = { "--lazy-pages", NULL };
	static const char *const on_touch[] = { "--lazy-pages", "--lazy-fill=on-touch", NULL };
	static struct copies_run cr;
	struct copies_way ways[3] = { { NULL, "eager", false, 0 }, { lazy, "lazy", false, 0 },
				      { on_touch, "lazy on touch", true, 0 } };
	int runs = cfg.runs < 3 ? cfg.runs : 3, nr_ways;
	char img[512], name[80];
	struct limit *pop;
	double secs, pss;

	if (n > MAX_COPIES)
		n = MAX_COPIES;
	nr_ways = restore_has("--lazy-fill") ? 3 : restore_has("--lazy-pages") ? 2 : 1;
	/* On touch, a copy holds a twentieth of its memory: all of them at once. */
	for (int w = 0; w < nr_ways; w++)
		ways[w].batch = fitting_batch(ways[w].touched_only ? size / 20 : size, n);
	memset(&cr, 0, sizeof(cr));
	snprintf(img, sizeof(img), "%s/copies-img", cfg.dir);
	cr.img = img;
	cr.n = n;
	snprintf(name, sizeof(name), "populate %zu MiB x %d: MAP_POPULATE", size >> 20, n);
	pop = limit_new(r, name);
	if (!pop)
		return -1;
	for (int w = 0; w < nr_ways; w++)
		if (way_rows(r, group, &ways[w], n, ways[w].batch))
			return -1;
	str_copy(ways[0].tr->limit_name, sizeof(ways[0].tr->limit_name), pop->name);
	ways[0].tr->lim = pop;
	ways[0].pr->limit = ways[0].pr->limit_min = (double)ways[0].batch * size;
	str_copy(ways[0].pr->limit_name, sizeof(ways[0].pr->limit_name),
		 "the copies' memory, each its own");
	if (make_image(img, size, cr.err, sizeof(cr.err)))
		goto out;
	/* Interleaved runs: each way meets the machine as busy as the other. */
	for (int i = 0; i < runs && !interrupted && !cr.err[0]; i++) {
		double l = lim_map_populate(size);

		if (l >= 0)
			samples_add(&pop->s, l * n);
		for (int w = 0; w < nr_ways && !cr.err[0]; w++) {
			cr.mode = ways[w].option;
			if (copies_once(&cr, ways[w].batch, &secs, &pss))
				break;
			samples_add(&ways[w].t, secs);
			samples_add(&ways[w].p, pss);
		}
	}
	/* Lazy against eager, measured in the same run; the PSS per copy, as the
	 * batches may differ. */
	for (int w = 1; w < nr_ways && ways[0].t.n; w++) {
		struct row *t = ways[w].tr, *p = ways[w].pr;
		double per = (double)ways[w].batch / ways[0].batch;

		str_copy(t->limit_name, sizeof(t->limit_name), "the eager copies (same run)");
		t->limit = samples_median(&ways[0].t);
		t->limit_min = samples_min(&ways[0].t);
		snprintf(p->limit_name, sizeof(p->limit_name), "PSS of %d eager copies%s",
			 ways[w].batch, per != 1 ? " (from the batch's)" : "");
		p->limit = samples_median(&ways[0].p) * per;
		p->limit_min = samples_min(&ways[0].p) * per;
	}
out:
	for (int w = 0; w < nr_ways; w++)
		way_done(&ways[w], cr.err);
	rm_tree(img);
	return cr.err[0] ? -1 : 0;
}
