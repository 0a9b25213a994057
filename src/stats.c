/* What a dump or a restore spent its time on (--display-stats, --stats FILE) and the
 * progress line a terminal shows while one takes longer than a second. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cryo.h"
#include "stats.h"
#include "sys.h"
#include "util.h"

#define PROGRESS_AFTER_MS 1000
#define PROGRESS_EVERY_MS 200
#define MAX_PROCS_KEPT 4096

struct proc_stats {
	pid_t pid;
	uint64_t pages, bytes;
};

static struct {
	bool restore, running;
	int64_t t0, total;
	int64_t started[PH_COUNT], spent[PH_COUNT];
	bool seen[PH_COUNT];
	struct proc_stats *procs;
	size_t nr_procs;
	/* the progress line */
	const char *what;
	uint64_t done, todo;
	pid_t watch;
	uint64_t watch_base;
	int64_t what_t0, last_print;
	bool shown;
	int64_t after_us;
} st;

static const char *const phase_names[PH_COUNT] = {
	[PH_SEIZE] = "seize",
	[PH_FROZEN] = "frozen",
	[PH_MEM_SCAN] = "memory_scan",
	[PH_PAGE_WRITE] = "page_write",
	[PH_METADATA] = "metadata",
	[PH_READ_IMAGES] = "read_images",
	[PH_WAIT_IDS] = "wait_ids",
	[PH_CREATE] = "create",
	[PH_VERIFY] = "verify",
	[PH_RELEASE] = "release",
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- pure ---- */

void stats_human_bytes(uint64_t n, char *out, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < CR_ARRAY_SIZE(unit)) {
		v /= 1024;
		u++;
	}
	if (u)
		snprintf(out, len, "%.1f %s", v, unit[u]);
	else
		snprintf(out, len, "%llu B", (unsigned long long)n);
}

void stats_progress_text(const char *what, uint64_t done, uint64_t todo, double secs,
			 char *out, size_t len)
{
	char d[32], t[32], r[32];
	double rate = secs > 0 ? done / secs : 0;
	size_t n;

	stats_human_bytes(done, d, sizeof(d));
	stats_human_bytes(todo, t, sizeof(t));
	stats_human_bytes((uint64_t)rate, r, sizeof(r));
	n = (size_t)snprintf(out, len, "%s: %s of %s, %s/s", what, d, t, r);
	if (n < len && rate > 0 && todo > done)
		snprintf(out + n, len - n, ", ETA %.0f s", (todo - done) / rate);
}

/* ---- recording ---- */

void stats_start(bool restore)
{
	free(st.procs);
	memset(&st, 0, sizeof(st));
	st.restore = restore;
	st.running = true;
	st.t0 = now_us();
	/* CRYO_PROGRESS_AFTER_MS: when the line may start (tests show it at once). */
	st.after_us = getenv("CRYO_PROGRESS_AFTER_MS") ?
		      atoll(getenv("CRYO_PROGRESS_AFTER_MS")) * 1000 : PROGRESS_AFTER_MS * 1000;
}

void stats_enter(enum stats_phase ph)
{
	st.started[ph] = now_us();
	st.seen[ph] = true;
}

void stats_leave(enum stats_phase ph)
{
	if (st.started[ph])
		st.spent[ph] += now_us() - st.started[ph];
	st.started[ph] = 0;
}

void stats_add_proc(pid_t pid, uint64_t pages, uint64_t bytes)
{
	size_t cap = st.nr_procs;

	if (st.nr_procs >= MAX_PROCS_KEPT ||
	    cr_grow(&st.procs, &cap, st.nr_procs + 1, sizeof(*st.procs), 16))
		return;
	st.procs[st.nr_procs++] = (struct proc_stats){ pid, pages, bytes };
}

/* ---- figures moved between processes ---- */

struct stats_packed {
	uint32_t restore, nr_procs;
	int64_t total;
	int64_t spent[PH_COUNT];
	uint8_t seen[PH_COUNT];
	struct proc_stats procs[];
};

void *stats_pack(size_t *len)
{
	struct stats_packed *p;

	*len = sizeof(*p) + st.nr_procs * sizeof(p->procs[0]);
	p = calloc(1, *len);
	if (!p)
		return NULL;
	p->restore = st.restore;
	p->nr_procs = st.nr_procs;
	p->total = st.total;
	for (int i = 0; i < PH_COUNT; i++) {
		p->spent[i] = st.spent[i];
		p->seen[i] = st.seen[i];
	}
	if (st.nr_procs)
		memcpy(p->procs, st.procs, st.nr_procs * sizeof(p->procs[0]));
	return p;
}

int stats_unpack(const void *buf, size_t len)
{
	struct stats_packed p;
	size_t procs_len;

	if (len < sizeof(p))
		return -1;
	memcpy(&p, buf, sizeof(p));
	procs_len = (size_t)p.nr_procs * sizeof(struct proc_stats);
	if (p.nr_procs > MAX_PROCS_KEPT || len != sizeof(p) + procs_len)
		return -1;
	stats_start(p.restore);
	st.running = false;
	st.total = p.total;
	for (int i = 0; i < PH_COUNT; i++) {
		st.spent[i] = p.spent[i];
		st.seen[i] = p.seen[i];
	}
	st.procs = procs_len ? malloc(procs_len) : NULL;
	if (procs_len && !st.procs)
		return -1;
	if (procs_len)
		memcpy(st.procs, (const char *)buf + sizeof(p), procs_len);
	st.nr_procs = p.nr_procs;
	return 0;
}

/* ---- the progress line ---- */

static bool progress_wanted(void)
{
	return st.running && cryo_log_file() == NULL && isatty(STDERR_FILENO);
}

static uint64_t rchar_of(pid_t pid)
{
	char path[48], buf[512];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/io", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "rchar: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

void stats_progress(const char *what, uint64_t todo)
{
	st.what = what;
	st.todo = todo;
	st.done = 0;
	st.watch = 0;
	st.what_t0 = now_us();
}

void stats_progress_add(uint64_t bytes)
{
	st.done += bytes;
	stats_tick();
}

void stats_progress_set(uint64_t done)
{
	st.done = done;
	stats_tick();
}

void stats_progress_watch(pid_t pid, uint64_t todo)
{
	stats_progress("reading memory", todo);
	st.watch = pid;
	st.watch_base = rchar_of(pid);
}

void stats_tick(void)
{
	char line[160];
	int64_t t = now_us();

	if (!st.what || !progress_wanted() || t - st.t0 < st.after_us ||
	    (st.last_print && t - st.last_print < PROGRESS_EVERY_MS * 1000))
		return;
	if (st.watch) {
		uint64_t r = rchar_of(st.watch);

		st.done = r > st.watch_base ? CR_MIN(r - st.watch_base, st.todo) : 0;
	}
	st.last_print = t;
	stats_progress_text(st.what, st.done, st.todo, (t - st.what_t0) / 1e6, line,
			    sizeof(line));
	fprintf(stderr, "\r%s %s\033[K", st.restore ? "restore" : "dump", line);
	st.shown = true;
}

void stats_finish(void)
{
	st.total = now_us() - st.t0;
	st.running = false;
	st.what = NULL;
	if (st.shown)
		fprintf(stderr, "\r\033[K");
	st.shown = false;
}

/* ---- reporting ---- */

int cryo_stats_print(FILE *f)
{
	uint64_t pages = 0, bytes = 0;

	fprintf(f, "%s statistics\n", st.restore ? "Restore" : "Dump");
	for (int i = 0; i < PH_COUNT; i++)
		if (st.seen[i])
			fprintf(f, "  %-12s %10.3f ms\n", phase_names[i], st.spent[i] / 1e3);
	fprintf(f, "  %-12s %10.3f ms\n", "total", st.total / 1e3);
	for (size_t i = 0; i < st.nr_procs; i++) {
		fprintf(f, "  process %d: %llu pages, %llu bytes\n", st.procs[i].pid,
			(unsigned long long)st.procs[i].pages,
			(unsigned long long)st.procs[i].bytes);
		pages += st.procs[i].pages;
		bytes += st.procs[i].bytes;
	}
	fprintf(f, "  %llu pages, %llu bytes %s\n", (unsigned long long)pages,
		(unsigned long long)bytes, st.restore ? "restored" : "written");
	return ferror(f) ? -1 : 0;
}

int cryo_stats_json(FILE *f)
{
	uint64_t pages = 0, bytes = 0;

	fprintf(f, "{\n  \"operation\": \"%s\",\n  \"times_us\": {",
		st.restore ? "restore" : "dump");
	for (int i = 0; i < PH_COUNT; i++)
		if (st.seen[i])
			fprintf(f, " \"%s\": %lld,", phase_names[i], (long long)st.spent[i]);
	fprintf(f, " \"total\": %lld },\n  \"processes\": [", (long long)st.total);
	for (size_t i = 0; i < st.nr_procs; i++) {
		fprintf(f, "%s\n    { \"pid\": %d, \"pages\": %llu, \"bytes\": %llu }",
			i ? "," : "", st.procs[i].pid, (unsigned long long)st.procs[i].pages,
			(unsigned long long)st.procs[i].bytes);
		pages += st.procs[i].pages;
		bytes += st.procs[i].bytes;
	}
	fprintf(f, "%s],\n  \"pages\": %llu,\n  \"bytes\": %llu\n}\n", st.nr_procs ? "\n  " : "",
		(unsigned long long)pages, (unsigned long long)bytes);
	return ferror(f) ? -1 : 0;
}
