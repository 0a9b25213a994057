/* The cryo cases: one start-dump-restore-verify cycle of a target (CLI or libcryo), and the
 * loops running each case with its machine limits measured in between. */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cryo.h"

#define PAGE 4096UL

enum via { VIA_CLI, VIA_LIB, VIA_CRIU };

static const char *const via_name[] = { "cli", "lib", "criu" };

/* The case holds TCP connections: dump and restore them (--tcp-established). */
static bool with_tcp;

/* Every figure of one way of driving cryo over the runs of a case. */
struct series {
	struct samples dump, restore, img;
	int img_files;
	bool failed;
	char err[256];
};

/* Limits measured within a cycle, in the state cryo then works in: pre_dump with the
 * target alive, pre_restore with its image in the page cache and the target gone. (On a
 * VM that hands freed memory back to the host, memory in use elsewhere changes what a
 * write or a page fault costs.) */
struct hooks {
	void (*pre_dump)(pid_t pid, void *arg);
	void (*pre_restore)(void *arg);
	void (*post_restore)(pid_t pid, void *arg);	/* restored, before its check */
	void *arg;
};

static int do_dump(pid_t pid, const char *img, enum via via, double *secs, char *err,
		   size_t len)
{
	struct cryo_dump_opts o = { .pid = pid, .dir = img, .tcp_established = with_tcp };
	char pidbuf[16];
	const char *args[] = { cfg.cryo, "dump", "-t", pidbuf, "-D", img,
			       with_tcp ? "--tcp-established" : NULL, NULL };
	double t;
	int rc;

	const char *criu[] = { cfg.criu, "dump", "-t", pidbuf, "-D", img, "--shell-job", NULL };

	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	/* criu, unlike cryo, wants its image directory to exist. */
	if (via == VIA_CRIU && mkdir(img, 0700) && errno != EEXIST)
		return snprintf(err, len, "mkdir %s: %s", img, strerror(errno)), -1;
	if (via == VIA_CRIU)
		return run_cryo(criu, secs, err, len);
	if (via == VIA_CLI)
		return run_cryo(args, secs, err, len);
	t = now();
	rc = cryo_dump(&o);
	*secs = now() - t;
	if (rc)
		snprintf(err, len, "cryo_dump: %s", cryo_last_error());
	return rc;
}

static int do_restore(pid_t pid, const char *img, enum via via, double *secs, char *err,
		      size_t len)
{
	struct cryo_restore_opts o = { .dir = img, .detach = true, .tcp_established = with_tcp };
	const char *args[] = { cfg.cryo, "restore", "-D", img, "-d",
			       with_tcp ? "--tcp-established" : NULL, NULL };
	const char *criu[] = { cfg.criu, "restore", "-D", img, "-d", "--shell-job", NULL };
	pid_t root = 0;
	double t;
	int rc;

	if (via == VIA_CRIU)
		return run_cryo(criu, secs, err, len);
	if (via == VIA_CLI)
		return run_cryo(args, secs, err, len);
	t = now();
	rc = cryo_restore(&o, &root);
	*secs = now() - t;
	if (rc)
		return snprintf(err, len, "cryo_restore: %s", cryo_last_error()), -1;
	if (root != pid)
		return snprintf(err, len, "cryo_restore made PID %d, not %d", root, pid), -1;
	return 0;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* Start the target, dump it (cryo kills it), wait until its PID is free, restore it,
 * check it is alive and ours, have it verify its memory, reap it. */
static int cycle(char *const argv[], enum via via, const struct hooks *h, struct series *s)
{
	double dump_t, restore_t;
	uint64_t bytes;
	char img[512];
	pid_t pid;
	int rc = -1;

	snprintf(img, sizeof(img), "%s/img", cfg.dir);
	rm_tree(img);
	pid = spawn_target(argv[0], argv, s->err, sizeof(s->err));
	if (pid < 0)
		return -1;
	if (h && h->pre_dump)
		h->pre_dump(pid, h->arg);
	if (do_dump(pid, img, via, &dump_t, s->err, sizeof(s->err)))
		goto out;
	if (wait_gone(pid, 30)) {
		snprintf(s->err, sizeof(s->err), "dumped PID %d did not go away", pid);
		goto out;
	}
	bytes = dir_bytes(img, &s->img_files);
	if (h && h->pre_restore)
		h->pre_restore(h->arg);
	if (do_restore(pid, img, via, &restore_t, s->err, sizeof(s->err)) ||
	    check_alive(pid, base_name(argv[0]), s->err, sizeof(s->err)))
		goto out;
	if (h && h->post_restore)
		h->post_restore(pid, h->arg);
	if (verify_and_reap(pid, 300, s->err, sizeof(s->err)))
		goto out;
	samples_add(&s->dump, dump_t);
	samples_add(&s->restore, restore_t);
	samples_add(&s->img, bytes);
	rc = 0;
out:
	if (rc)
		kill_and_reap(pid);
	rm_tree(img);
	reap_strays();
	return rc;
}

static void run_cycle(char *const argv[], enum via via, const struct hooks *h,
		      struct series *s)
{
	if (s->failed || interrupted)
		return;
	if (cycle(argv, via, h, s))
		s->failed = true;
}

static void set_limit(struct row *row, const struct limit *l)
{
	if (!l)
		return;
	str_copy(row->limit_name, sizeof(row->limit_name), l->name);
	row->lim = l;
}

struct targets {
	enum target_kind tk;
	double value;
	bool headline;
};

/* A row of samples; err (if not NULL) says why they are missing. */
static struct row *samples_row(struct results *r, const char *group, const char *name,
			       const struct samples *s, const char *err)
{
	struct row *row = row_new(r, group, name);

	if (!row)
		return NULL;
	row->s = *s;
	if (err)
		str_copy(row->error, sizeof(row->error), err);
	return row;
}

static struct row *time_row(struct results *r, const char *group, const char *what,
			    enum via via, const struct samples *s, const struct series *se)
{
	char name[96];

	snprintf(name, sizeof(name), "%s (%s)", what, via_name[via]);
	return samples_row(r, group, name, s, se->failed ? se->err : NULL);
}

static void rate_note(struct row *row, double data)
{
	if (data > 0 && row->s.n)
		snprintf(row->note, sizeof(row->note), "%.2f GB/s",
			 data / samples_median(&row->s) / 1e9);
}

/* The rows of one series: dump, restore (and the image size, once per case). */
static int emit(struct results *r, const char *group, enum via via, const struct series *se,
		const struct limit *dl, const struct limit *rl, double data,
		const struct targets *tg)
{
	struct row *d = time_row(r, group, "dump", via, &se->dump, se);
	struct row *rs = time_row(r, group, "restore -d", via, &se->restore, se);
	struct row *img;

	if (!d || !rs)
		return -1;
	set_limit(d, dl);
	set_limit(rs, rl);
	d->tk = rs->tk = tg->tk;
	d->target = rs->target = tg->value;
	d->headline = rs->headline = tg->headline && via == VIA_CLI;
	rate_note(d, data);
	rate_note(rs, data);
	if (via != VIA_CLI)
		return se->failed ? -1 : 0;
	img = row_new(r, group, "image size");
	if (!img)
		return -1;
	img->bytes = true;
	img->s = se->img;
	if (data > 0) {
		snprintf(img->limit_name, sizeof(img->limit_name), "touched data");
		img->limit = img->limit_min = data;
	}
	snprintf(img->note, sizeof(img->note), "%d files", se->img_files);
	if (se->failed)
		str_copy(img->error, sizeof(img->error), se->err);
	return se->failed ? -1 : 0;
}

/* Unrecorded cycles first: the first use of memory, files and binaries in a run is
 * slower than the rest. */
static void warm_up(char *const argv[], const struct hooks *h)
{
	for (int i = 0; i < cfg.warmup && !interrupted; i++) {
		struct series scratch = { 0 };

		run_cycle(argv, VIA_CLI, h, &scratch);
	}
}

/* ---- idle ---- */

int case_idle(struct results *r, const char *bin, const char *group, struct limit *spawn_lim)
{
	char *argv[] = { (char *)bin, "idle", NULL };
	struct series cli = { 0 }, lib = { 0 };
	struct targets tg = { TGT_ABS, 0.010, true };
	char spawn_bin[512];
	int rc;

	snprintf(spawn_bin, sizeof(spawn_bin), "%s/target-static", cfg.targets);
	warm_up(argv, NULL);
	for (int i = 0; i < cfg.idle_runs && !interrupted; i++) {
		double t = spawn_exit_time(spawn_bin);

		if (t >= 0)
			samples_add(&spawn_lim->s, t);
		run_cycle(argv, VIA_CLI, NULL, &cli);
		if (cfg.lib)
			run_cycle(argv, VIA_LIB, NULL, &lib);
	}
	rc = emit(r, group, VIA_CLI, &cli, spawn_lim, spawn_lim, 0, &tg);
	if (cfg.lib && emit(r, group, VIA_LIB, &lib, spawn_lim, spawn_lim, 0, &tg))
		rc = -1;
	return rc;
}

/* ---- large memory ---- */

struct mem_limits {
	struct limit *write, *read_fresh, *touch, *populate;
};

/* data_sz names the bytes written and read; size_sz the mapping populated. */
static int mem_limits_new(struct results *r, struct mem_limits *l, const char *data_sz,
			  const char *size_sz, size_t step, double data)
{
	struct limit **all[] = { &l->write, &l->read_fresh, &l->touch, &l->populate };
	char name[80];

	snprintf(name, sizeof(name), "write %s to a new file, close", data_sz);
	l->write = limit_new(r, name);
	snprintf(name, sizeof(name), "read the cached %s image into fresh mem", data_sz);
	l->read_fresh = limit_new(r, name);
	if (step == 1)
		snprintf(name, sizeof(name), "populate %s: mmap + touch", size_sz);
	else
		snprintf(name, sizeof(name), "populate %s: touch 1/%zu pages", size_sz, step);
	l->touch = limit_new(r, name);
	l->populate = NULL;
	if (step == 1) {
		snprintf(name, sizeof(name), "populate %s: MAP_POPULATE", size_sz);
		l->populate = limit_new(r, name);
	}
	for (size_t i = 0; i < 4; i++) {
		if (!*all[i] && (i < 3 || step == 1))
			return -1;
		if (*all[i]) {
			(*all[i])->rate = true;
			(*all[i])->bytes = i < 2 ? data : (double)(step == 1 ? data : 0);
		}
	}
	return 0;
}

static void add_or_flag(struct limit *l, double t)
{
	if (!l)
		return;
	if (t >= 0)
		samples_add(&l->s, t);
	else
		snprintf(l->note, sizeof(l->note), "failed: %s", strerror(errno));
}

struct mem_run {
	struct mem_limits *l;		/* NULL: measure without recording */
	size_t size, step, data;
};

/* With the target alive: write its data to a new file. An unrecorded write first, so
 * that the recorded one, like the dump after it, reuses memory freed a moment ago. */
static void mem_pre_dump(pid_t pid, void *arg)
{
	const struct mem_run *m = arg;
	struct mem_limits none = { 0 }, *l = m->l ? m->l : &none;
	char path[512];

	(void)pid;
	snprintf(path, sizeof(path), "%s/write-baseline", cfg.dir);
	lim_write(path, m->data, false);
	unlink(path);
	add_or_flag(l->write, lim_write(path, m->data, false));
	unlink(path);
}

/* With the image in the page cache: populate fresh memory as the restore must (after
 * an unrecorded round, as above), and read the image's page data into fresh memory,
 * the least a restore that copies its pages can do. */
static void mem_pre_restore(void *arg)
{
	const struct mem_run *m = arg;
	struct mem_limits none = { 0 }, *l = m->l ? m->l : &none;
	char img[512], pages[768];

	lim_touch(m->size, m->step);
	add_or_flag(l->touch, lim_touch(m->size, m->step));
	if (m->step == 1)
		add_or_flag(l->populate, lim_map_populate(m->size));
	snprintf(img, sizeof(img), "%s/img", cfg.dir);
	if (largest_file(img, pages, sizeof(pages)) == 0)
		add_or_flag(l->read_fresh, lim_read_fresh(pages, m->data));
}

/* "1.2 GB/s" becomes "1.2 GB/s, 0.93x cached read": how far from a plain copy. */
static void note_vs_read(struct row *w, const struct limit *read)
{
	size_t n = strlen(w->note);

	if (w->s.n && read->s.n)
		snprintf(w->note + n, sizeof(w->note) - n, ", %.2fx cached read",
			 samples_median(&w->s) / samples_median(&read->s));
}

/* The faster way to populate memory is the reference for restore. */
static const struct limit *faster(const struct limit *a, const struct limit *b)
{
	if (!b || !b->s.n)
		return a;
	if (!a->s.n)
		return b;
	return samples_median(&b->s) < samples_median(&a->s) ? b : a;
}

static void size_name(char *buf, size_t len, size_t bytes)
{
	if (bytes % (1UL << 30) == 0)
		snprintf(buf, len, "%zu GiB", bytes >> 30);
	else if (bytes % (1UL << 20) == 0)
		snprintf(buf, len, "%zu MiB", bytes >> 20);
	else
		snprintf(buf, len, "%.1f MiB", bytes / MiB);
}

/* The reference's figures, measured in cycles alternating with cryo's, as limits, and
 * cryo's CLI figures against them: the issue's target is 0.6x. */
static int emit_vs_criu(struct results *r, const char *group, const struct series *cli,
			const struct series *crit)
{
	const char *what[] = { "dump", "restore -d" };
	const struct samples *mine[] = { &cli->dump, &cli->restore };
	const struct samples *theirs[] = { &crit->dump, &crit->restore };
	char name[80];

	for (int i = 0; i < 2; i++) {
		struct limit *l;
		struct row *row;

		snprintf(name, sizeof(name), "criu %s, same target, alternating", what[i]);
		l = limit_new(r, name);
		if (!l)
			return -1;
		l->s = *theirs[i];
		if (crit->failed)
			str_copy(l->note, sizeof(l->note), crit->err);
		snprintf(name, sizeof(name), "%s vs criu", what[i]);
		row = time_row(r, group, name, VIA_CLI, mine[i], cli);
		if (!row)
			return -1;
		set_limit(row, l);
		row->tk = TGT_RATIO;
		row->target = 0.6;
		row->headline = true;
	}
	return crit->failed ? -1 : 0;
}

int case_mem(struct results *r, const char *group, size_t size, size_t step, bool headline)
{
	char bytes_arg[32], step_arg[32], bin[512], sz[32], dsz[32];
	char *argv[] = { bin, "mem", bytes_arg, step_arg, NULL };
	struct series cli = { 0 }, lib = { 0 }, crit = { 0 };
	struct targets tg = { headline ? TGT_RATIO : TGT_NONE, 1.5, headline };
	size_t pages = size / PAGE, data = (pages + step - 1) / step * PAGE;
	struct mem_limits l;
	struct mem_run warm = { NULL, size, step, data }, run = { &l, size, step, data };
	struct hooks warm_h = { mem_pre_dump, mem_pre_restore, NULL, &warm };
	struct hooks run_h = { mem_pre_dump, mem_pre_restore, NULL, &run };
	const struct limit *pop;
	int rc;

	snprintf(bin, sizeof(bin), "%s/target-static", cfg.targets);
	snprintf(bytes_arg, sizeof(bytes_arg), "%zu", size);
	snprintf(step_arg, sizeof(step_arg), "%zu", step);
	size_name(dsz, sizeof(dsz), data);
	size_name(sz, sizeof(sz), size);
	if (mem_limits_new(r, &l, dsz, sz, step, data))
		return -1;
	warm_up(argv, &warm_h);
	for (int i = 0; i < cfg.runs && !interrupted; i++) {
		run_cycle(argv, VIA_CLI, &run_h, &cli);
		if (cfg.criu && headline)
			run_cycle(argv, VIA_CRIU, &warm_h, &crit);
		if (cfg.lib)
			run_cycle(argv, VIA_LIB, NULL, &lib);
	}
	pop = faster(l.touch, l.populate);
	rc = emit(r, group, VIA_CLI, &cli, l.write, pop, data, &tg);
	note_vs_read(&r->rows[r->nr_rows - 2], l.read_fresh);
	if (cfg.lib && emit(r, group, VIA_LIB, &lib, l.write, pop, data, &tg))
		rc = -1;
	if (cfg.lib)
		note_vs_read(&r->rows[r->nr_rows - 1], l.read_fresh);
	if (cfg.criu && headline && emit_vs_criu(r, group, &cli, &crit))
		rc = -1;
	return rc;
}

/* ---- many VMAs ---- */

struct vmas_run {
	struct limit *smaps, *maps;	/* NULL: measure without recording */
	int nr;
};

static void vmas_pre_dump(pid_t pid, void *arg)
{
	struct vmas_run *v = arg;

	add_or_flag(v->smaps, lim_read_smaps(pid));
}

static void vmas_pre_restore(void *arg)
{
	struct vmas_run *v = arg;

	add_or_flag(v->maps, lim_vmas(v->nr));
}

int case_vmas(struct results *r, const char *group, int nr, double idle_dump)
{
	char nr_arg[16], bin[512], name[64];
	char *argv[] = { bin, "vmas", nr_arg, NULL };
	struct targets tg = { TGT_NONE, 0, false };
	struct series cli = { 0 };
	struct vmas_run warm = { NULL, NULL, nr }, run = { NULL, NULL, nr };
	struct hooks warm_h = { vmas_pre_dump, vmas_pre_restore, NULL, &warm };
	struct hooks run_h = { vmas_pre_dump, vmas_pre_restore, NULL, &run };
	struct limit *maps, *smaps;
	struct row *d;
	int rc;

	snprintf(bin, sizeof(bin), "%s/target-static", cfg.targets);
	snprintf(nr_arg, sizeof(nr_arg), "%d", nr);
	snprintf(name, sizeof(name), "mmap+fill %d one-page VMAs", nr);
	maps = limit_new(r, name);
	snprintf(name, sizeof(name), "read smaps of the %d-VMA target", nr);
	smaps = limit_new(r, name);
	if (!maps || !smaps)
		return -1;
	run.maps = maps;
	run.smaps = smaps;
	warm_up(argv, &warm_h);
	for (int i = 0; i < cfg.runs && !interrupted; i++)
		run_cycle(argv, VIA_CLI, &run_h, &cli);
	rc = emit(r, group, VIA_CLI, &cli, smaps, maps, (double)nr * PAGE, &tg);
	d = &r->rows[r->nr_rows - 3];
	if (!rc && idle_dump > 0 && d->s.n)
		snprintf(d->note, sizeof(d->note), "%.1f us/VMA over idle",
			 (samples_median(&d->s) - idle_dump) / nr * 1e6);
	if (!rc && r->rows[r->nr_rows - 2].s.n)
		snprintf(r->rows[r->nr_rows - 2].note, sizeof(r->rows[0].note),
			 "%.1f us/VMA", samples_median(&r->rows[r->nr_rows - 2].s) / nr * 1e6);
	return rc;
}

/* ---- a tree sharing its memory copy-on-write ---- */

#define TREE_MAX_KIDS 64

struct tree_run {
	struct mem_run mem;
	struct samples *pss_before, *pss_after;	/* NULL: measure without recording */
	pid_t kids[TREE_MAX_KIDS];
	int nr_kids;
};

ssize_t read_small(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = 0;
	return n;
}

long pss_kb(pid_t pid)
{
	char path[64], buf[4096], *at;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	at = strstr(buf, "\nPss:");
	return at ? strtol(at + 5, NULL, 10) : -1;
}

/* The root and its children (read from its children file). */
static double tree_pss(pid_t root, struct tree_run *t)
{
	char path[64], buf[1024], *at, *end;
	long kb = pss_kb(root), one;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", root, root);
	if (kb < 0 || read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	t->nr_kids = 0;
	for (at = buf;; at = end) {
		long kid = strtol(at, &end, 10);

		if (end == at || t->nr_kids == TREE_MAX_KIDS)
			break;
		t->kids[t->nr_kids++] = kid;
		one = pss_kb(kid);
		if (one < 0)
			return -1;
		kb += one;
	}
	return kb * 1024.0;
}

static void tree_pre_dump(pid_t pid, void *arg)
{
	struct tree_run *t = arg;
	double b = tree_pss(pid, t);

	if (t->pss_before && b >= 0)
		samples_add(t->pss_before, b);
	mem_pre_dump(pid, &t->mem);
}

/* The killed children were adopted by the benchmark (a subreaper): reap them, so
 * their PIDs are free for the restore. */
static void tree_pre_restore(void *arg)
{
	struct tree_run *t = arg;

	for (int i = 0; i < t->nr_kids; i++)
		for (int k = 0; k < 30000 && !kill(t->kids[i], 0); k++) {
			reap_strays();
			usleep(100);
		}
	mem_pre_restore(&t->mem);
}

static void tree_post_restore(pid_t pid, void *arg)
{
	struct tree_run *t = arg;
	double a = tree_pss(pid, t);

	if (t->pss_after && a >= 0)
		samples_add(t->pss_after, a);
}

static void pss_row(struct results *r, const char *group, const char *name,
		    const struct samples *s, const struct samples *before)
{
	struct row *row = row_new(r, group, name);

	if (!row)
		return;
	row->bytes = true;
	row->s = *s;
	if (before && s->n && before->n)
		snprintf(row->note, sizeof(row->note), "%.2fx before",
			 samples_median(s) / samples_median(before));
}

int case_tree(struct results *r, const char *group, size_t size, int kids)
{
	char bytes_arg[32], kids_arg[16], bin[512], dsz[32];
	char *argv[] = { bin, "tree", bytes_arg, kids_arg, NULL };
	struct series cli = { 0 };
	struct targets tg = { TGT_NONE, 0, false };
	struct samples before = { 0 }, after = { 0 };
	struct mem_limits l;
	struct tree_run warm = { { NULL, size, 1, size }, NULL, NULL, { 0 }, 0 };
	struct tree_run run = { { &l, size, 1, size }, &before, &after, { 0 }, 0 };
	struct hooks warm_h = { tree_pre_dump, tree_pre_restore, tree_post_restore, &warm };
	struct hooks run_h = { tree_pre_dump, tree_pre_restore, tree_post_restore, &run };
	int rc;

	snprintf(bin, sizeof(bin), "%s/target-static", cfg.targets);
	snprintf(bytes_arg, sizeof(bytes_arg), "%zu", size);
	snprintf(kids_arg, sizeof(kids_arg), "%d", kids);
	size_name(dsz, sizeof(dsz), size);
	if (mem_limits_new(r, &l, dsz, dsz, 1, size))
		return -1;
	warm_up(argv, &warm_h);
	for (int i = 0; i < cfg.runs && !interrupted; i++)
		run_cycle(argv, VIA_CLI, &run_h, &cli);
	rc = emit(r, group, VIA_CLI, &cli, l.write, faster(l.touch, l.populate), size, &tg);
	pss_row(r, group, "PSS of all, before", &before, NULL);
	pss_row(r, group, "PSS of all, after", &after, &before);
	return rc;
}

/* ---- established TCP connections ---- */

/* The bench holds the peers' ends: outside the dumped tree, as a real peer. */
struct conns_run {
	int listener, n;
	int *peers, nr_peers;
};

static void conns_close(struct conns_run *c)
{
	for (int i = 0; i < c->nr_peers; i++)
		close(c->peers[i]);
	c->nr_peers = 0;
}

static void conns_pre_dump(pid_t pid, void *arg)
{
	struct conns_run *c = arg;

	(void)pid;
	conns_close(c);
	while (c->nr_peers < c->n) {
		int s = accept4(c->listener, NULL, NULL, SOCK_CLOEXEC);

		if (s < 0)
			break;
		c->peers[c->nr_peers++] = s;
	}
}

static void conns_post_restore(pid_t pid, void *arg)
{
	struct conns_run *c = arg;

	(void)pid;
	for (int i = 0; i < c->nr_peers; i++)
		if (write(c->peers[i], "x", 1) != 1)
			break;
}

/* The same number of connections made, accepted and closed on loopback: what the
 * kernel charges for a connection without cryo. */
static double lim_connect_loop(int listener, int n)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	double t = now();

	if (getsockname(listener, (struct sockaddr *)&a, &al))
		return -1;
	for (int i = 0; i < n; i++) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), s;

		if (c < 0 || connect(c, (struct sockaddr *)&a, al)) {
			if (c >= 0)
				close(c);
			return -1;
		}
		s = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		close(c);
		if (s < 0)
			return -1;
		close(s);
	}
	return now() - t;
}

static void per_conn_note(struct row *row, int n, const struct limit *l)
{
	double lim = l->s.n ? samples_median(&l->s) : 0;

	if (!row->s.n)
		return;
	if (lim > 0)
		snprintf(row->note, sizeof(row->note), "%.1f us/connection, %.1fx connect()",
			 samples_median(&row->s) / n * 1e6, samples_median(&row->s) / lim);
	else
		snprintf(row->note, sizeof(row->note), "%.1f us/connection",
			 samples_median(&row->s) / n * 1e6);
}

int case_conns(struct results *r, const char *group, int n)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char port[16], nr_arg[16], bin[512], name[80];
	char *argv[] = { bin, "conns", port, nr_arg, NULL };
	struct targets tg = { TGT_NONE, 0, false };
	struct conns_run run = { .n = n };
	struct hooks h = { conns_pre_dump, NULL, conns_post_restore, &run };
	struct series cli = { 0 };
	socklen_t al = sizeof(a);
	struct rlimit rl;
	struct limit *loop;
	int rc = -1;

	/* The target's n fds and the bench's n ends. */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)n + 64 ? rl.rlim_max : (rlim_t)n + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	snprintf(name, sizeof(name), "%d socket+connect+accept+close on loopback", n);
	loop = limit_new(r, name);
	run.peers = calloc(n, sizeof(*run.peers));
	run.listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!loop || !run.peers || run.listener < 0 ||
	    bind(run.listener, (struct sockaddr *)&a, sizeof(a)) || listen(run.listener, n + 16) ||
	    getsockname(run.listener, (struct sockaddr *)&a, &al))
		goto out;
	snprintf(bin, sizeof(bin), "%s/target-static", cfg.targets);
	snprintf(port, sizeof(port), "%d", ntohs(a.sin_port));
	snprintf(nr_arg, sizeof(nr_arg), "%d", n);
	with_tcp = true;
	warm_up(argv, &h);
	for (int i = 0; i < cfg.runs && !interrupted; i++) {
		add_or_flag(loop, lim_connect_loop(run.listener, n));
		run_cycle(argv, VIA_CLI, &h, &cli);
	}
	with_tcp = false;
	rc = emit(r, group, VIA_CLI, &cli, loop, loop, 0, &tg);
	per_conn_note(&r->rows[r->nr_rows - 3], n, loop);
	per_conn_note(&r->rows[r->nr_rows - 2], n, loop);
out:
	with_tcp = false;
	conns_close(&run);
	free(run.peers);
	if (run.listener >= 0)
		close(run.listener);
	return rc;
}

/* ---- iterative dumps ---- */

/* The "frozen" phase of a --stats file, in seconds. */
static int frozen_of(const char *path, double *secs)
{
	char buf[2048], *at;
	FILE *f = fopen(path, "re");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = 0;
	at = strstr(buf, "\"frozen\": ");
	if (!at)
		return -1;
	*secs = strtoll(at + 10, NULL, 10) / 1e6;
	return 0;
}

/* One cryo command with --stats: its frozen time. */
static int frozen_run(const char *const args[], double *frozen, char *err, size_t len)
{
	char path[512];
	double t;

	snprintf(path, sizeof(path), "%s/stats.json", cfg.dir);
	if (run_cryo(args, &t, err, len))
		return -1;
	if (frozen_of(path, frozen))
		return snprintf(err, len, "no frozen time in the --stats file"), -1;
	return 0;
}

/* The target writes 1% of its pages again and says so. */
static int rewrite(pid_t pid, int fd, char *err, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	kill(pid, SIGUSR2);
	if (poll(&p, 1, 60000) != 1 || read(fd, &c, 1) != 1 || c != 'W')
		return snprintf(err, len, "the target did not write its pages again"), -1;
	return 0;
}

struct predump_series {
	struct samples full, pre, last, last_bytes;
	bool failed;
	char err[256];
};

/* Whole dump -R (the reference), pre-dump, 1%, pre-dump, 1%, the last dump; the
 * chain restored and checked. */
static int predump_cycle(char *const argv[], struct predump_series *s)
{
	char full[512], pre1[512], pre2[512], last[512], stats[512], pid_s[16];
	double f_full, f_pre, f_last;
	int fd = -1, rc = -1, nr_files;
	uint64_t bytes;
	pid_t pid;

	snprintf(full, sizeof(full), "%s/full", cfg.dir);
	snprintf(pre1, sizeof(pre1), "%s/pre1", cfg.dir);
	snprintf(pre2, sizeof(pre2), "%s/pre2", cfg.dir);
	snprintf(last, sizeof(last), "%s/last", cfg.dir);
	snprintf(stats, sizeof(stats), "%s/stats.json", cfg.dir);
	pid = spawn_target_keep(argv[0], argv, &fd, s->err, sizeof(s->err));
	if (pid < 0)
		return -1;
	snprintf(pid_s, sizeof(pid_s), "%d", pid);
	{
		const char *a_full[] = { cfg.cryo, "dump", "-R", "-t", pid_s, "-D", full,
					 "--stats", stats, NULL };
		const char *a_pre1[] = { cfg.cryo, "pre-dump", "-t", pid_s, "-D", pre1,
					 "--stats", stats, NULL };
		const char *a_pre2[] = { cfg.cryo, "pre-dump", "-t", pid_s, "-D", pre2,
					 "--prev-images-dir", "../pre1", NULL };
		const char *a_last[] = { cfg.cryo, "dump", "-t", pid_s, "-D", last,
					 "--prev-images-dir", "../pre2", "--track-mem",
					 "--stats", stats, NULL };
		const char *a_rest[] = { cfg.cryo, "restore", "-D", last, "-d", NULL };
		double t;

		if (frozen_run(a_full, &f_full, s->err, sizeof(s->err)))
			goto out;
		rm_tree(full);
		if (frozen_run(a_pre1, &f_pre, s->err, sizeof(s->err)) ||
		    rewrite(pid, fd, s->err, sizeof(s->err)) ||
		    run_cryo(a_pre2, &t, s->err, sizeof(s->err)) ||
		    rewrite(pid, fd, s->err, sizeof(s->err)) ||
		    frozen_run(a_last, &f_last, s->err, sizeof(s->err)))
			goto out;
		if (wait_gone(pid, 30)) {
			snprintf(s->err, sizeof(s->err), "dumped PID %d did not go away", pid);
			goto out;
		}
		bytes = dir_bytes(last, &nr_files);
		if (run_cryo(a_rest, &t, s->err, sizeof(s->err)) ||
		    check_alive(pid, base_name(argv[0]), s->err, sizeof(s->err)) ||
		    verify_and_reap(pid, 300, s->err, sizeof(s->err)))
			goto out;
	}
	samples_add(&s->full, f_full);
	samples_add(&s->pre, f_pre);
	samples_add(&s->last, f_last);
	samples_add(&s->last_bytes, bytes);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		kill_and_reap(pid);
	rm_tree(full);
	rm_tree(pre1);
	rm_tree(pre2);
	rm_tree(last);
	unlink(stats);
	reap_strays();
	return rc;
}

int case_predump(struct results *r, const char *group, size_t size)
{
	char bin[512], sz[32];
	char *argv[] = { bin, "predump", sz, "2", NULL };
	struct predump_series s = { 0 };
	struct limit *whole = limit_new(r, "frozen: whole dump -R of the same process");
	struct row *full, *pre, *last, *img;

	if (!whole)
		return -1;
	snprintf(bin, sizeof(bin), "%s/target-static", cfg.targets);
	snprintf(sz, sizeof(sz), "%zu", size);
	for (int i = 0; i < cfg.runs && !interrupted && !s.failed; i++)
		if (predump_cycle(argv, &s))
			s.failed = true;
	whole->s = s.full;
	full = row_new(r, group, "frozen, whole dump");
	pre = row_new(r, group, "frozen, pre-dump");
	last = row_new(r, group, "frozen, last dump");
	img = row_new(r, group, "last image");
	if (!full || !pre || !last || !img)
		return -1;
	full->s = s.full;
	pre->s = s.pre;
	last->s = s.last;
	img->s = s.last_bytes;
	img->bytes = true;
	set_limit(pre, whole);
	set_limit(last, whole);
	last->tk = TGT_RATIO;
	last->target = 0.05;
	last->headline = true;
	snprintf(last->note, sizeof(last->note), "1%% of the pages written since the pre-dump");
	if (s.failed)
		for (struct row *w = full; w <= img; w++)
			str_copy(w->error, sizeof(w->error), s.err);
	return s.failed ? -1 : 0;
}

/* ---- lazy restore ---- */

/* Every figure of one way of restoring (eager or --lazy-pages) over the runs. */
struct lazy_series {
	struct samples beat, ret, all_in;
	bool failed;
	char err[256];
};

/* The restore's timeline from t0: the first heartbeat (the watched file written),
 * cryo's exit, and (lazy) the supplier's. */
static int lazy_timeline(int watch, pid_t cryo, double t0, bool lazy, struct lazy_series *s)
{
	int cfd = syscall(SYS_pidfd_open, cryo, 0), st;
	struct pollfd pf[2] = { { watch, POLLIN, 0 }, { cfd, POLLIN, 0 } };
	double beat = -1, ret = -1, all_in;
	pid_t sup;

	if (cfd < 0)
		return snprintf(s->err, sizeof(s->err), "pidfd_open: %s", strerror(errno)), -1;
	while ((beat < 0 || ret < 0) && now() - t0 < 120) {
		if (poll(pf, 2, 1000) < 0 && errno != EINTR)
			break;
		if (pf[0].revents && beat < 0)
			beat = now() - t0, pf[0].fd = -1;
		if (pf[1].revents && ret < 0)
			ret = now() - t0, pf[1].fd = -1;
	}
	close(cfd);
	if (wait_child(cryo, 60, &st) || !WIFEXITED(st) || WEXITSTATUS(st))
		return snprintf(s->err, sizeof(s->err), "cryo restore%s failed (0x%x)",
				lazy ? " --lazy-pages" : "", st), -1;
	if (beat < 0)
		return snprintf(s->err, sizeof(s->err), "no heartbeat after restore"), -1;
	all_in = ret;
	/* After cryo's exit the supplier is the bench's (subreaper): its end is the fill's. */
	sup = lazy ? child_named("cryo-lazy") : 0;
	if (sup && wait_child(sup, 300, &st) == 0)
		all_in = now() - t0;
	samples_add(&s->beat, beat);
	samples_add(&s->ret, ret);
	samples_add(&s->all_in, all_in);
	return 0;
}

static int lazy_cycle(char *const argv[], const char *beat_path, bool lazy,
		      struct lazy_series *s)
{
	const char *args[] = { cfg.cryo, "restore", "-D", NULL, "-d",
			       lazy ? "--lazy-pages" : NULL, NULL };
	char img[512], buf[4096];
	double dump_t, t0;
	int watch = -1, rc = -1;
	pid_t pid, cryo;

	snprintf(img, sizeof(img), "%s/img", cfg.dir);
	args[3] = img;
	rm_tree(img);
	pid = spawn_target(argv[0], argv, s->err, sizeof(s->err));
	if (pid < 0)
		return -1;
	if (do_dump(pid, img, VIA_CLI, &dump_t, s->err, sizeof(s->err)))
		goto out;
	if (wait_gone(pid, 30)) {
		snprintf(s->err, sizeof(s->err), "dumped PID %d did not go away", pid);
		goto out;
	}
	watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (watch < 0 || inotify_add_watch(watch, beat_path, IN_MODIFY) < 0) {
		snprintf(s->err, sizeof(s->err), "inotify: %s", strerror(errno));
		goto out;
	}
	while (read(watch, buf, sizeof(buf)) > 0)
		;
	t0 = now();
	cryo = spawn_cryo(args);
	if (cryo < 0) {
		snprintf(s->err, sizeof(s->err), "cannot run cryo: %s", strerror(errno));
		goto out;
	}
	if (lazy_timeline(watch, cryo, t0, lazy, s) ||
	    check_alive(pid, base_name(argv[0]), s->err, sizeof(s->err)) ||
	    verify_and_reap(pid, 300, s->err, sizeof(s->err)))
		goto out;
	rc = 0;
out:
	if (watch >= 0)
		close(watch);
	if (rc)
		kill_and_reap(pid);
	rm_tree(img);
	reap_strays();
	return rc;
}

static struct row *lazy_row(struct results *r, const char *group, const char *name,
			    const struct samples *s, const struct lazy_series *se)
{
	return samples_row(r, group, name, s, se->failed ? se->err : NULL);
}

int case_lazy(struct results *r, const char *group, size_t size)
{
	char bin[512], bytes_arg[32], path[512];
	char *argv[] = { bin, "beat", path, bytes_arg, NULL };
	struct lazy_series eager = { 0 }, lazy = { 0 }, scratch = { 0 };
	struct limit *eager_lim = limit_new(r, "eager restore -d of the same image");
	struct row *beat, *ret, *all_in, *eb;

	if (!eager_lim)
		return -1;
	snprintf(bin, sizeof(bin), "%s/target-static", cfg.targets);
	snprintf(path, sizeof(path), "%s/beat", cfg.dir);
	snprintf(bytes_arg, sizeof(bytes_arg), "%zu", size);
	for (int i = 0; i < cfg.warmup && !interrupted; i++)
		lazy_cycle(argv, path, true, &scratch);
	for (int i = 0; i < cfg.runs && !interrupted; i++) {
		if (!eager.failed && lazy_cycle(argv, path, false, &eager))
			eager.failed = true;
		if (!lazy.failed && lazy_cycle(argv, path, true, &lazy))
			lazy.failed = true;
	}
	eager_lim->s = eager.all_in;
	eb = lazy_row(r, group, "eager: first heartbeat", &eager.beat, &eager);
	beat = lazy_row(r, group, "lazy: first heartbeat", &lazy.beat, &lazy);
	ret = lazy_row(r, group, "lazy: restore -d", &lazy.ret, &lazy);
	all_in = lazy_row(r, group, "lazy: every page in", &lazy.all_in, &lazy);
	if (!eb || !beat || !ret || !all_in)
		return -1;
	set_limit(eb, eager_lim);
	beat->tk = TGT_ABS;
	beat->target = 0.010;
	beat->headline = true;
	set_limit(beat, eager_lim);
	set_limit(ret, eager_lim);
	set_limit(all_in, eager_lim);
	all_in->tk = TGT_RATIO;
	all_in->target = 1.0;
	all_in->headline = true;
	rate_note(all_in, size);
	unlink(path);
	return eager.failed || lazy.failed ? -1 : 0;
}
