/* cryo benchmarks: this machine's limits and cryo's dump/restore of idle, 1 GiB, sparse and
 * many-VMA processes and of a tree sharing memory copy-on-write, measured in one run as
 * root and subreaper; table, summary, JSON. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MEMCPY_LEN (256UL << 20)
#define MEMCPY_REPS 5
#define FSYNC_RUNS 2
#define TREE_BYTES (256UL << 20)
#define TREE_KIDS 8
#define BENCH_CONNS 1000		/* the connections of the socket case */
/* The figure: 4 GiB touched, 1% of it written between rounds (N if the
 * machine lacks the memory). */
#define PREDUMP_BYTES (4UL << 30)

struct config cfg = {
	.json = "results-latest.json",
	.rev = "unknown",
	.size = 1UL << 30,
	.runs = 5,
	.idle_runs = 15,
	.nr_vmas = 5000,
	.warmup = 1,
	.copies = 50,
	.cases = "idle,mem,sparse,vmas,tree,conns,stream,predump,copies,lazy,fsync",
	.lib = true,
};
struct host host;
volatile int interrupted;

/* ---- small shared helpers ---- */

double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void str_copy(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (!len)
		return;
	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

void samples_add(struct samples *s, double v)
{
	if (s->n < MAX_SAMPLES)
		s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double samples_median(const struct samples *s)
{
	double v[MAX_SAMPLES];

	if (!s->n)
		return 0;
	memcpy(v, s->v, s->n * sizeof(double));
	qsort(v, s->n, sizeof(double), cmp_double);
	return s->n % 2 ? v[s->n / 2] : (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
}

double samples_min(const struct samples *s)
{
	double m = s->n ? s->v[0] : 0;

	for (int i = 1; i < s->n; i++)
		if (s->v[i] < m)
			m = s->v[i];
	return m;
}

struct row *row_new(struct results *r, const char *group, const char *name)
{
	struct row *w;

	if (r->nr_rows == MAX_ROWS)
		return NULL;
	w = &r->rows[r->nr_rows++];
	memset(w, 0, sizeof(*w));
	str_copy(w->group, sizeof(w->group), group);
	str_copy(w->name, sizeof(w->name), name);
	return w;
}

/* Limits gather samples until the end; rows take their final median and min. */
void results_finalize(struct results *r)
{
	for (int i = 0; i < r->nr_rows; i++) {
		struct row *w = &r->rows[i];

		if (!w->lim || !w->lim->s.n)
			continue;
		w->limit = samples_median(&w->lim->s);
		w->limit_min = samples_min(&w->lim->s);
	}
}

struct limit *limit_new(struct results *r, const char *name)
{
	struct limit *l;

	if (r->nr_limits == MAX_LIMITS)
		return NULL;
	l = &r->limits[r->nr_limits++];
	memset(l, 0, sizeof(*l));
	str_copy(l->name, sizeof(l->name), name);
	return l;
}

/* ---- set-up ---- */

static const char usage[] =
	"usage: bench --cryo PATH --targets DIR [options]   (as root; `make bench` runs it)\n"
	"  --cryo PATH      the cryo binary\n"
	"  --targets DIR    directory with target-static and target-dynamic\n"
	"  -D DIR           images and write baseline (default $CRYO_BENCH_DIR or\n"
	"                   /var/tmp/cryo-bench); created if missing, cleaned up after\n"
	"  -o FILE          JSON results (default results-latest.json)\n"
	"  -s MIB           size N of the large process (default 1024)\n"
	"  -n RUNS          runs per large case (default 5, at least 3 recommended)\n"
	"  -i RUNS          runs per idle case (default 15)\n"
	"  -V N             mappings in the many-VMA case (default 5000)\n"
	"  -w N             unrecorded warm-up cycles before each case (default 1)\n"
	"  -c LIST          cases to run (default idle,mem,sparse,vmas,tree,conns,stream,\n"
	"                   predump,copies,lazy,fsync)\n"
	"  -N COPIES        restores of one N-byte image at once in the copies case\n"
	"                   (default 50; eager ones in batches that fit in memory)\n"
	"  --no-lib         skip the libcryo figures\n"
	"  --rev STR        source revision recorded in the results\n";

static int parse_args(int argc, char **argv)
{
	enum { OPT_CRYO = 256, OPT_TARGETS, OPT_NO_LIB, OPT_REV };
	static const struct option opts[] = {
		{ "cryo", required_argument, 0, OPT_CRYO },
		{ "targets", required_argument, 0, OPT_TARGETS },
		{ "no-lib", no_argument, 0, OPT_NO_LIB },
		{ "rev", required_argument, 0, OPT_REV },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	int c;

	cfg.dir = getenv("CRYO_BENCH_DIR");
	if (!cfg.dir || !cfg.dir[0])
		cfg.dir = "/var/tmp/cryo-bench";
	while ((c = getopt_long(argc, argv, "D:o:s:n:i:V:w:c:N:h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_CRYO:
			cfg.cryo = optarg;
			break;
		case OPT_TARGETS:
			cfg.targets = optarg;
			break;
		case OPT_NO_LIB:
			cfg.lib = false;
			break;
		case OPT_REV:
			cfg.rev = optarg;
			break;
		case 'D':
			cfg.dir = optarg;
			break;
		case 'o':
			cfg.json = optarg;
			break;
		case 's':
			cfg.size = strtoull(optarg, NULL, 0) << 20;
			break;
		case 'n':
			cfg.runs = atoi(optarg);
			break;
		case 'i':
			cfg.idle_runs = atoi(optarg);
			break;
		case 'V':
			cfg.nr_vmas = atoi(optarg);
			break;
		case 'w':
			cfg.warmup = atoi(optarg);
			break;
		case 'c':
			cfg.cases = optarg;
			break;
		case 'N':
			cfg.copies = atoi(optarg);
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			fputs(usage, stderr);
			return -1;
		}
	}
	if (!cfg.cryo || !cfg.targets || !cfg.size || cfg.runs < 1 || cfg.idle_runs < 1 ||
	    cfg.runs > MAX_SAMPLES || cfg.idle_runs > MAX_SAMPLES || cfg.nr_vmas < 1 || cfg.warmup < 0 ||
	    cfg.copies < 1) {
		fputs(usage, stderr);
		return -1;
	}
	return 0;
}

static void read_line(const char *path, const char *key, char *out, size_t len)
{
	char line[512];
	FILE *f = fopen(path, "re");

	snprintf(out, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *v = key ? strstr(line, key) : line;

		if (v != line)
			continue;
		v = key ? strchr(line, ':') : line;
		if (!v)
			continue;
		v += key ? 1 : 0;
		v += strspn(v, " \t");
		v[strcspn(v, "\n")] = 0;
		str_copy(out, len, v);
		break;
	}
	fclose(f);
}

static const char *fs_name(long type)
{
	switch (type) {
	case 0xef53:
		return "ext4";
	case 0x58465342:
		return "xfs";
	case 0x9123683e:
		return "btrfs";
	case 0x01021994:
		return "tmpfs";
	case 0x794c7630:
		return "overlayfs";
	default:
		return "other";
	}
}

/* A virtio balloon with free page reporting (feature bit 5) returns freed guest memory
 * to the host, so touching it again costs host page faults; DAMON may reclaim. */
static void probe_memory(char *out, size_t len)
{
	char path[128], v[256];
	bool reporting = false, damon;

	for (int i = 0; i < 16 && !reporting; i++) {
		snprintf(path, sizeof(path), "/sys/bus/virtio/devices/virtio%d/device", i);
		read_line(path, NULL, v, sizeof(v));
		if (strcmp(v, "0x0005"))
			continue;
		snprintf(path, sizeof(path), "/sys/bus/virtio/devices/virtio%d/features", i);
		read_line(path, NULL, v, sizeof(v));
		reporting = strlen(v) > 5 && v[5] == '1';
	}
	read_line("/sys/kernel/mm/damon/admin/kdamonds/0/state", NULL, v, sizeof(v));
	damon = !strcmp(v, "on");
	snprintf(out, len, "balloon free page reporting %s, DAMON %s", reporting ? "ON" : "off",
		 damon ? "ON" : "off");
}

static void probe_host(void)
{
	struct utsname un;
	struct statfs sf;
	char thp[128], *a, *b;
	time_t t = time(NULL);

	uname(&un);
	snprintf(host.kernel, sizeof(host.kernel), "Linux %s %s", un.release, un.machine);
	read_line("/proc/cpuinfo", "model name", host.cpu, sizeof(host.cpu));
	host.cpus = sysconf(_SC_NPROCESSORS_ONLN);
	host.mem_bytes = (double)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
	read_line("/sys/kernel/mm/transparent_hugepage/enabled", NULL, thp, sizeof(thp));
	a = strchr(thp, '[');
	b = a ? strchr(a, ']') : NULL;
	if (a && b)
		*b = 0;
	str_copy(host.thp, sizeof(host.thp), a && b ? a + 1 : thp);
	snprintf(host.fs, sizeof(host.fs), "%s", statfs(cfg.dir, &sf) ? "?" : fs_name(sf.f_type));
	probe_memory(host.memory, sizeof(host.memory));
	getloadavg(&host.load_start, 1);
	strftime(host.time, sizeof(host.time), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
}

/* Is the clock the vDSO reads the TSC (no paravirtual clock page in [vvar_vclock])? */
static bool clock_is_tsc(void)
{
	char buf[32] = "";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource",
			"re");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
	}
	return !strcmp(buf, "tsc\n");
}

/* criu 3.17 fails `criu check` where the vDSO has a [vvar_vclock] mapping (6.13 on):
 * with bench/criu_vclock.c preloaded it sees the layout it knows, and the targets
 * unmap theirs (harmless on the TSC clock). 0 if criu then passes. */
static int criu_with_vclock_fold(const char **args, char *err, size_t len)
{
	static char preload[600];
	static char *env[256];
	extern char **environ;
	char path[512];
	size_t n = 0;
	double t;

	snprintf(path, sizeof(path), "%s/criu-vclock.so", cfg.targets);
	if (!clock_is_tsc() || access(path, R_OK))
		return -1;
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", path);
	env[n++] = preload;
	for (char **e = environ; *e && n < 254; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11))
			env[n++] = *e;
	env[n] = NULL;
	cfg.criu_env = env;
	cfg.criu = args[0];
	if (run_cryo(args, &t, err, len)) {
		cfg.criu = NULL;
		cfg.criu_env = NULL;
		return -1;
	}
	setenv("CRYO_BENCH_NO_VCLOCK", "1", 1);
	return 0;
}

/* The reference (criu) is compared with when installed and `criu check` passes here,
 * as it is or with criu-vclock.so preloaded. */
static void probe_criu(void)
{
	static const char *const paths[] = { "/usr/sbin/criu", "/usr/bin/criu",
					     "/usr/local/sbin/criu" };
	const char *args[] = { NULL, "check", NULL };
	char err[160];
	double t;

	snprintf(cfg.criu_note, sizeof(cfg.criu_note), "not installed: ratios to machine "
		 "limits only");
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (access(paths[i], X_OK))
			continue;
		args[0] = paths[i];
		if (!run_cryo(args, &t, err, sizeof(err))) {
			cfg.criu = paths[i];
			snprintf(cfg.criu_note, sizeof(cfg.criu_note), "%s (criu check passed): "
				 "each mem-N cycle of cryo is followed by one of criu", paths[i]);
		} else if (!criu_with_vclock_fold(args, err, sizeof(err))) {
			snprintf(cfg.criu_note, sizeof(cfg.criu_note), "%s with criu-vclock.so "
				 "preloaded (it predates the [vvar_vclock] mapping; every target "
				 "unmaps its own): each mem-N cycle of cryo is followed by one of "
				 "criu", paths[i]);
		} else {
			snprintf(cfg.criu_note, sizeof(cfg.criu_note), "%s not compared (`make "
				 "bench-criu-guest` compares in a 6.1 guest): %s", paths[i], err);
		}
		return;
	}
}

static int check_exec(const char *path)
{
	if (access(path, X_OK) == 0)
		return 0;
	fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
	return -1;
}

static char lock_path[512];

/* One bench at a time per directory: a second would remove the first one's images. */
static int lock_dir(void)
{
	int fd;

	snprintf(lock_path, sizeof(lock_path), "%s.lock", cfg.dir);
	fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return fprintf(stderr, "bench: %s: %s\n", lock_path, strerror(errno)), -1;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		fprintf(stderr, "bench: another bench is using %s\n", cfg.dir);
		close(fd);
		lock_path[0] = 0;
		return -1;
	}
	return 0;	/* held until exit */
}

static int setup(void)
{
	char path[512];
	struct statvfs sv;
	struct sigaction sa;

	if (geteuid()) {
		fprintf(stderr, "bench: must run as root (cryo dump and restore need it)\n");
		return -1;
	}
	/* Inherited descriptors (make's jobserver pipe, ...) would reach libcryo's restored
	 * processes, which start as copies of this one. */
	syscall(SYS_close_range, 3, ~0U, 0);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		return perror("bench: PR_SET_CHILD_SUBREAPER"), -1;
	snprintf(path, sizeof(path), "%s/target-dynamic", cfg.targets);
	if (check_exec(cfg.cryo) || check_exec(path))
		return -1;
	snprintf(path, sizeof(path), "%s/target-static", cfg.targets);
	if (check_exec(path))
		return -1;
	if (lock_dir())
		return -1;
	if (mkdir(cfg.dir, 0700) == 0)
		cfg.created_dir = true;
	else if (errno != EEXIST)
		return fprintf(stderr, "bench: mkdir %s: %s\n", cfg.dir, strerror(errno)), -1;
	if (statvfs(cfg.dir, &sv))
		return fprintf(stderr, "bench: %s: %s\n", cfg.dir, strerror(errno)), -1;
	if ((double)sv.f_bavail * sv.f_frsize < 2.2 * cfg.size + 256 * MiB) {
		fprintf(stderr, "bench: %s needs %.1f GiB free\n", cfg.dir,
			(2.2 * cfg.size + 256 * MiB) / GiB);
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static void cleanup(void)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/img", cfg.dir);
	rm_tree(path);
	snprintf(path, sizeof(path), "%s/write-baseline", cfg.dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/cryo.log", cfg.dir);
	unlink(path);
	if (cfg.created_dir && rmdir(cfg.dir))
		fprintf(stderr, "bench: cannot remove %s: %s\n", cfg.dir, strerror(errno));
	if (lock_path[0])
		unlink(lock_path);
	reap_strays();
}

/* ---- the run ---- */

static void progress(const char *what, int runs)
{
	fprintf(stderr, "bench: %s (%d runs)...\n", what, runs);
}

static double median_of(const struct results *r, const char *group, const char *name)
{
	for (int i = 0; i < r->nr_rows; i++)
		if (!strcmp(r->rows[i].group, group) && !strcmp(r->rows[i].name, name))
			return samples_median(&r->rows[i].s);
	return 0;
}

static void memcpy_limit(struct results *r)
{
	struct limit *l = limit_new(r, "memcpy 256 MiB, best of 5");
	double t;

	if (!l)
		return;
	progress("memcpy bandwidth", MEMCPY_REPS);
	t = lim_memcpy(MEMCPY_LEN, MEMCPY_REPS);
	l->rate = true;
	l->bytes = MEMCPY_LEN;
	if (t > 0)
		samples_add(&l->s, t);
	else
		snprintf(l->note, sizeof(l->note), "failed");
}

static void fsync_limit(struct results *r)
{
	struct limit *l = limit_new(r, "write N + fsync, close (info)");
	char path[512];

	if (!l)
		return;
	snprintf(path, sizeof(path), "%s/write-baseline", cfg.dir);
	l->rate = true;
	l->bytes = cfg.size;
	progress("write + fsync", FSYNC_RUNS);
	for (int i = 0; i < FSYNC_RUNS && !interrupted; i++) {
		double t = lim_write(path, cfg.size, true);

		unlink(path);
		if (t > 0)
			samples_add(&l->s, t);
	}
}

static void size_label(char *buf, size_t len, size_t bytes)
{
	if (bytes % (1UL << 30) == 0)
		snprintf(buf, len, "%zuGiB", bytes >> 30);
	else
		snprintf(buf, len, "%zuMiB", bytes >> 20);
}

/* Is `name` in the comma-separated cfg.cases? */
static bool want(const char *name)
{
	size_t n = strlen(name);

	for (const char *p = cfg.cases; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, name, n) && (p[n] == ',' || !p[n]))
			return true;
	return false;
}

static int run_idle(struct results *r)
{
	struct limit *spawn_lim = limit_new(r, "spawn+exec+exit+reap a static no-op");
	char bin[512];
	int rc;

	if (!spawn_lim)
		return -1;
	progress("idle-static", cfg.idle_runs);
	snprintf(bin, sizeof(bin), "%s/target-static", cfg.targets);
	rc = case_idle(r, bin, "idle-static", spawn_lim);
	progress("idle-dynamic", cfg.idle_runs);
	snprintf(bin, sizeof(bin), "%s/target-dynamic", cfg.targets);
	return case_idle(r, bin, "idle-dynamic", spawn_lim) | rc;
}

/* The 4 GiB when the machine has room for it (the process, and its pre-dump
 * in the page cache), else N: the size is in the case's name. */
static size_t predump_bytes(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	unsigned long long kb = 0;
	char line[128];

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * 1024 > 3 * PREDUMP_BYTES ? PREDUMP_BYTES : cfg.size;
}

static int run_all(struct results *r)
{
	char group[48], sz[32];
	int rc = 0;

	memcpy_limit(r);
	if (want("idle"))
		rc |= run_idle(r);
	size_label(sz, sizeof(sz), cfg.size);
	if (want("mem") && !interrupted) {
		snprintf(group, sizeof(group), "mem-%s", sz);
		progress(group, cfg.runs);
		rc |= case_mem(r, group, cfg.size, 1, true);
	}
	if (want("sparse") && !interrupted) {
		snprintf(group, sizeof(group), "mem-%s-10%%", sz);
		progress(group, cfg.runs);
		rc |= case_mem(r, group, cfg.size, 10, false);
	}
	if (want("vmas") && !interrupted) {
		snprintf(group, sizeof(group), "vmas-%d", cfg.nr_vmas);
		progress(group, cfg.runs);
		rc |= case_vmas(r, group, cfg.nr_vmas,
				median_of(r, "idle-static", "dump (cli)"));
	}
	if (want("tree") && !interrupted) {
		snprintf(group, sizeof(group), "tree-1+%d", TREE_KIDS);
		progress(group, cfg.runs);
		rc |= case_tree(r, group, TREE_BYTES, TREE_KIDS);
	}
	if (want("conns") && !interrupted) {
		snprintf(group, sizeof(group), "tcp-%d-conns", BENCH_CONNS);
		progress(group, cfg.runs);
		rc |= case_conns(r, group, BENCH_CONNS);
	}
	if (want("stream") && !interrupted) {
		snprintf(group, sizeof(group), "stream-%s", sz);
		progress(group, cfg.runs);
		rc |= case_stream(r, group, cfg.size);
	}
	if (want("predump") && !interrupted) {
		size_t bytes = predump_bytes();

		size_label(sz, sizeof(sz), bytes);
		snprintf(group, sizeof(group), "predump-%s-1%%", sz);
		progress(group, cfg.runs);
		rc |= case_predump(r, group, bytes);
	}
	if (want("copies") && !interrupted) {
		snprintf(group, sizeof(group), "copies-%d", cfg.copies);
		progress(group, cfg.runs < 3 ? cfg.runs : 3);
		rc |= case_copies(r, group, cfg.size, cfg.copies);
	}
	if (want("lazy") && !interrupted) {
		size_label(sz, sizeof(sz), cfg.size);
		snprintf(group, sizeof(group), "lazy-%s", sz);
		progress(group, cfg.runs);
		rc |= case_lazy(r, group, cfg.size);
	}
	if (want("fsync") && !interrupted)
		fsync_limit(r);
	return rc || interrupted ? -1 : 0;
}

int main(int argc, char **argv)
{
	static struct results res;
	char summary[1400];
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_args(argc, argv))
		return 2;
	if (setup()) {
		if (lock_path[0])
			unlink(lock_path);
		return 2;
	}
	catch_signals();
	probe_host();
	probe_criu();
	report_header();
	rc = run_all(&res);
	getloadavg(&host.load_end, 1);
	cleanup();
	results_finalize(&res);
	report_table(&res);
	report_summary(&res, summary, sizeof(summary));
	if (report_json(&res, cfg.json, summary))
		fprintf(stderr, "bench: cannot write %s: %s\n", cfg.json, strerror(errno));
	else
		printf("\nresults written to %s\n", cfg.json);
	if (interrupted)
		printf("INTERRUPTED: the figures are incomplete\n");
	printf("%s\n", summary);
	return rc ? 1 : 0;
}
