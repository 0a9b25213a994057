/* Shared pieces of the benchmark: the configuration, timing, sample sets, result rows,
 * and the interfaces of limits.c (machine limits), proc.c (processes) and report.c. */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MAX_SAMPLES 64
#define MAX_ROWS 64
#define MAX_LIMITS 32
#define MiB (1024.0 * 1024.0)
#define GiB (1024.0 * MiB)

struct config {
	const char *cryo;		/* the cryo binary */
	const char *targets;		/* directory holding target-static, target-dynamic */
	const char *dir;		/* images and the write-baseline file go here */
	const char *json;		/* results file */
	const char *rev;		/* source revision, for the record */
	size_t size;			/* N: bytes of the large process */
	int runs;			/* runs of each large case */
	int idle_runs;			/* runs of each idle case */
	int nr_vmas;			/* mappings of the many-VMA case */
	int warmup;			/* unrecorded cycles before each case */
	int copies;			/* restores of one image at once (copies case) */
	const char *cases;		/* comma-separated cases to run */
	bool lib;			/* also measure through libcryo */
	const char *criu;		/* the reference, when `criu check` passes here */
	char **criu_env;		/* its environment (criu-vclock.so preloaded), or NULL */
	char criu_note[288];		/* which criu, or why it is not compared */
	bool created_dir;		/* we made cfg.dir, so we remove it */
};

/* What the figures were measured on, for the header and the JSON record. */
struct host {
	char kernel[160];
	char cpu[128];
	int cpus;
	double mem_bytes;
	char thp[32];
	char fs[32];
	char memory[96];		/* what reclaims or reports memory behind our back */
	double load_start, load_end;	/* 1-minute load average: how busy the machine was */
	char time[32];
};

extern struct config cfg;
extern struct host host;
extern volatile int interrupted;

struct samples {
	int n;
	double v[MAX_SAMPLES];
};

void samples_add(struct samples *s, double v);
double samples_median(const struct samples *s);
double samples_min(const struct samples *s);

enum target_kind { TGT_NONE, TGT_ABS, TGT_RATIO };

/* One measured figure, its reference limit (median and min) and its target. */
struct row {
	char group[32];
	char name[48];
	bool bytes;			/* a size in bytes rather than a time in seconds */
	bool headline;			/* counts in the summary */
	struct samples s;
	char limit_name[80];
	const struct limit *lim;	/* the limit, when it is a measured one */
	double limit, limit_min;	/* 0: no limit; set from lim by results_finalize */
	enum target_kind tk;
	double target;
	char note[96];
	char error[256];		/* set when the figure could not be measured */
};

/* A machine limit: what the hardware and kernel do without cryo. */
struct limit {
	char name[80];
	bool rate;			/* print as bytes/second from `bytes` */
	double bytes;
	struct samples s;
	char note[64];
};

struct results {
	struct row rows[MAX_ROWS];
	int nr_rows;
	struct limit limits[MAX_LIMITS];
	int nr_limits;
};

struct row *row_new(struct results *r, const char *group, const char *name);
void results_finalize(struct results *r);
struct limit *limit_new(struct results *r, const char *name);

/* Copy with truncation to len - 1 characters. */
void str_copy(char *dst, size_t len, const char *src);
double now(void);

/* limits.c: each returns the seconds taken, or a negative value on failure. */
double lim_memcpy(size_t len, int reps);
double lim_write(const char *path, size_t len, bool do_fsync);
double lim_read_fresh(const char *path, size_t len);
double lim_touch(size_t len, size_t step);
double lim_map_populate(size_t len);
double lim_vmas(int nr);
double lim_read_smaps(pid_t pid);

/* proc.c */
pid_t spawn_target(const char *bin, char *const argv[], char *err, size_t errlen);
/* The same, keeping the end of the target's fd 3 in *ready (it says more there). */
pid_t spawn_target_keep(const char *bin, char *const argv[], int *ready, char *err,
			size_t errlen);
double spawn_exit_time(const char *bin);
int run_cryo(const char *const args[], double *secs, char *err, size_t errlen);
int wait_gone(pid_t pid, double timeout);
/* 0 with its status, 1 if reaped elsewhere, -1 on timeout. */
int wait_child(pid_t pid, double timeout, int *status);
int spawn_piped(char *const argv[], int in, int out, pid_t *pid);
/* Start cryo without waiting; a child (or orphan) of the bench by its name. */
pid_t spawn_cryo(const char *const args[]);
pid_t child_named(const char *comm);
int check_alive(pid_t pid, const char *comm, char *err, size_t errlen);
int verify_and_reap(pid_t pid, double timeout, char *err, size_t errlen);
void kill_and_reap(pid_t pid);
void reap_strays(void);
int rm_tree(const char *path);
uint64_t dir_bytes(const char *path, int *nr_files);
int largest_file(const char *dir, char *out, size_t len);

/* cases.c: each adds its rows (and limits) to r; 0, or -1 if a figure failed. */
int case_idle(struct results *r, const char *bin, const char *group, struct limit *spawn_lim);
int case_mem(struct results *r, const char *group, size_t size, size_t step, bool headline);
int case_vmas(struct results *r, const char *group, int nr, double idle_dump);
/* A parent and `kids` forked children sharing `size` bytes copy-on-write. */
int case_tree(struct results *r, const char *group, size_t size, int kids);
/* A small file (/proc text) into buf, NUL-ended: its length, or -1. */
ssize_t read_small(const char *path, char *buf, size_t len);
/* The proportional set size of a process, from its smaps_rollup (kB; -1 if gone). */
long pss_kb(pid_t pid);
/* A process holding `n` established loopback connections, dumped and restored with
 * --tcp-established; the bench holds the peers' ends. */
int case_conns(struct results *r, const char *group, int n);
/* stream.c: `size` bytes dumped --stream into a pipe to restore --stream, against a
 * dump to files and a restore from them in the same run. */
int case_stream(struct results *r, const char *group, size_t size);
/* `size` bytes restored eagerly and with --lazy-pages: the first heartbeat of the
 * restored process, and when every page is in. */
int case_lazy(struct results *r, const char *group, size_t size);

/* Iterative dumps: `size` bytes touched, 1% written again between rounds; the last
 * dump's frozen time against a whole dump's. */
int case_predump(struct results *r, const char *group, size_t size);

/* copies.c: `n` restore --pidns of one image of `size` bytes at once (in batches that
 * fit in memory), each copy then touching 5% of it. */
int case_copies(struct results *r, const char *group, size_t size, int n);

/* report.c */
void report_header(void);
void report_table(const struct results *r);
int report_summary(const struct results *r, char *line, size_t len);
int report_json(const struct results *r, const char *path, const char *summary);
void fmt_time(char *buf, size_t len, double secs);
void fmt_bytes(char *buf, size_t len, double bytes);

#endif
