/* The cryo command line: argument parsing for dump, restore, check and show, over
 * libcryo (include/cryo.h). Errors are one line on stderr and a non-zero exit. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cryo.h"

static const char usage_main[] =
	"usage: cryo COMMAND [OPTIONS]\n"
	"\n"
	"Checkpoint and restore Linux processes.\n"
	"\n"
	"commands:\n"
	"  dump     -t PID -D DIR   freeze a process into an image directory\n"
	"           (--stream: to stdout)\n"
	"  pre-dump -t PID -D DIR   save its memory, leave it running with its writes\n"
	"                           tracked for the next round (--prev-images-dir)\n"
	"  restore  -D DIR          bring a process back from an image\n"
	"           (--stream: from stdin)\n"
	"  page-server -D DIR --port PORT\n"
	"                           receive a dump's pages over TCP\n"
	"  check                    probe the kernel for what cryo needs\n"
	"  show     DIR             summarise an image (--full, --json: all of it as JSON)\n"
	"\n"
	"`cryo COMMAND -h` describes a command's options; `cryo --version` prints the version.\n";

static const char usage_dump[] =
	"usage: cryo dump -t PID -D DIR [--leave-running] [--shell-job] [--file-locks]\n"
	"                 [--ext-unix-sk] [--tcp-skip-in-flight] [--ghost-limit SIZE]\n"
	"                 [--tcp-established] [--tcp-close] [--cpu-cap[=CAPS]]\n"
	"                 [--timeout N] [--prev-images-dir DIR]\n"
	"                 [--track-mem] [-v]\n"
	"       cryo dump -t PID --stream [OPTIONS] > STREAM\n"
	"       cryo dump -t PID -D DIR --page-server --address ADDR --port PORT\n"
	"       cryo pre-dump -t PID -D DIR [--prev-images-dir DIR] [options as dump]\n"
	"\n"
	"Freeze process PID and write its image to DIR (created with mode 0700 if\n"
	"missing). By default the process is killed once the image is complete.\n"
	"pre-dump saves the memory only, leaves the process running and tracks what it\n"
	"writes; a later dump (or pre-dump) naming it with --prev-images-dir saves only\n"
	"the pages written since, and restore reads the chain.\n"
	"\n"
	"  -t, --tree PID        the process to dump\n"
	"  -D, --images-dir DIR  image directory\n"
	"      --stream          write the whole image to stdout as one stream (no -D),\n"
	"                        for `cryo restore --stream` to read (docs/STREAM.md)\n"
	"      --page-server     send the page files to `cryo page-server` at\n"
	"                        --address ADDR (default 127.0.0.1) --port PORT; the\n"
	"                        rest of the image goes to DIR\n"
	"  -R, --leave-running   let the process continue after the dump\n"
	"  -j, --shell-job       allow a process whose session is led outside the dump;\n"
	"                        it is restored into the restorer's session\n"
	"  -l, --file-locks      accepted for CRIU's command lines: file locks (flock,\n"
	"                        POSIX, OFD) are always dumped\n"
	"      --ext-unix-sk     allow datagram Unix sockets connected to a named socket\n"
	"                        outside the dump; restore connects them to it again\n"
	"      --tcp-skip-in-flight  leave out of the image the connections a listening\n"
	"                        TCP socket has not accepted yet (--skip-in-flight too)\n"
	"      --ghost-limit SIZE  the most data (bytes outside holes) a deleted file\n"
	"                        still open or mapped may hold, saved in the image\n"
	"                        (K, M, G suffixes; default 1M)\n"
	"      --tcp-established  keep TCP connections (their traffic is held meanwhile);\n"
	"                        without it, or --tcp-close, a connection is refused\n"
	"      --tcp-close       record TCP connections as closed: restore (with\n"
	"                        --tcp-close) gives sockets that read end-of-file\n"
	"      --cpu-cap[=CAPS]  accepted for CRIU's command lines (all, cpu, fpu, ins):\n"
	"                        the CPU's features are always recorded\n"
	"      --timeout N       fail (leaving the tree untouched) if the tree is not\n"
	"                        stopped and written within N seconds (default: each\n"
	"                        task gets 10 s to stop, the whole dump no limit)\n"
	"      --prev-images-dir DIR  the previous round's image (relative to -D unless\n"
	"                        absolute): pages unchanged since are left there\n"
	"      --track-mem       use the previous round's write tracking (with\n"
	"                        --prev-images-dir); with -R, leave writes tracked for\n"
	"                        another round\n"
	"  -v                    more output (repeat for debug output); -v0 ... -v4 as\n"
	"                        in CRIU (3: progress, 4: debug)\n"
	"  -o, --log-file FILE   progress to FILE (relative to -W, else to the current\n"
	"                        directory) instead of stderr; errors go to both\n"
	"  -W, --work-dir DIR    where a relative -o FILE goes\n"
	"      --display-stats   the time of each phase and the pages of each process,\n"
	"                        on stdout at the end\n"
	"      --stats FILE      the same as JSON in FILE\n"
	"      --action-script SCRIPT  run SCRIPT (through sh) at each stage, as CRIU\n"
	"                        does (CRTOOLS_SCRIPT_ACTION=pre-dump, network-lock,\n"
	"                        post-dump, network-unlock; pre-restore, post-restore,\n"
	"                        pre-resume, network-unlock, post-resume)\n"
	"      --status-fd FD    write one zero byte to FD when done (restore: once the\n"
	"                        tree runs), then close it\n"
	"  -h, --help            this text\n"
	"CRIU's flags for what cryo does not do yet (dump --lazy-pages,\n"
	"--manage-cgroups, ...) are refused by name.\n";

static const char usage_restore[] =
	"usage: cryo restore -D DIR | --stream [-d] [--pidfile FILE] [--vdso=MODE]\n"
	"                    [--cpu-cap[=CAPS]]\n"
	"                    [--file-validation=MODE] [--trust-image] [--file-locks]\n"
	"                    [--inherit-fd fd[N]:RESOURCE]... [--ext-unix-sk]\n"
	"                    [--tcp-established] [--tcp-close] [--pidns] [--lazy-pages]\n"
	"                    [--lazy-fill=background|on-touch] [-v]\n"
	"\n"
	"Restore the process saved in DIR with its original PID. Without -d, cryo stays\n"
	"its parent, forwards SIGINT and SIGTERM to it, and exits with its exit status\n"
	"(128+N if it was killed by signal N).\n"
	"\n"
	"  -D, --images-dir DIR  image directory\n"
	"      --stream          read the image from stdin, as `cryo dump --stream`\n"
	"                        wrote it (no -D); it is read whole and checked, in\n"
	"                        memory, before anything is restored\n"
	"  -d, --restore-detached  exit as soon as the process runs\n"
	"      --lazy-pages      run the tree before its private memory is in: a\n"
	"                        supplier process fills each page on first touch and\n"
	"                        the rest in the background (the tree is killed if it\n"
	"                        dies first)\n"
	"      --lazy-fill=MODE  with --lazy-pages: background (default) fills every page\n"
	"                        and the supplier then exits; on-touch copies only the\n"
	"                        pages the tree touches, and the supplier stays while\n"
	"                        the tree's memory does (many copies of one image)\n"
	"      --pidfile FILE    write the restored PID to FILE\n"
	"  -j, --shell-job       restore into cryo's session (see dump --shell-job)\n"
	"      --vdso=MODE       auto (default), remap (same kernel only), proxy\n"
	"      --cpu-cap[=CAPS]  all, cpu, fpu, ins: the default check of this CPU; none:\n"
	"                        restore even if it lacks features of the dumping CPU\n"
	"      --file-validation=buildid|filesize\n"
	"                        how mapped files are recognised: ELF build-id and size\n"
	"                        (default; size and mtime without a build-id), or size only\n"
	"      --trust-image     restore an image another user owns, with at most that\n"
	"                        user's rights (docs/SECURITY.md)\n"
	"      --inherit-fd fd[N]:RESOURCE\n"
	"                        cryo's fd N stands for RESOURCE, something the image\n"
	"                        leads to outside itself, e.g. pipe:[INODE] for a pipe\n"
	"                        whose other end was not dumped (dump's message and\n"
	"                        'cryo show' name it)\n"
	"  -l, --file-locks      accepted for CRIU's command lines: the image's file locks\n"
	"                        are always restored\n"
	"      --ext-unix-sk     connect datagram sockets dumped with --ext-unix-sk to\n"
	"                        their peers' names again\n"
	"      --tcp-established  restore the image's TCP connections\n"
	"      --tcp-close       restore them closed instead: each socket reads\n"
	"                        end-of-file and fails to send (EPIPE)\n"
	"      --pidns           restore into a new PID namespace (and mount namespace\n"
	"                        with its own /proc): the processes keep their PIDs in\n"
	"                        it, under an init of cryo's (PID 1) that exits with\n"
	"                        the root's status when the root exits; any number of\n"
	"                        copies of one image can run at once. --pidfile gets\n"
	"                        the root's PID outside the namespace\n"
	"  -v, -o FILE, -W DIR, --display-stats, --stats FILE, --action-script SCRIPT,\n"
	"  --status-fd FD        as for dump\n"
	"  -h, --help            this text\n";

static const char usage_check[] =
	"usage: cryo check [--all] [--feature NAME] [-v]\n"
	"\n"
	"Probe the running kernel for every feature cryo relies on; print each with\n"
	"yes/no and what breaks without it. Exits non-zero if a required one is missing.\n"
	"      --all             the same (every probe always runs; the reference's flag)\n"
	"      --feature NAME    only that probe; exit 0 if it works, 1 if not\n"
	"                        (--feature list: the names)\n";

static const char usage_show[] =
	"usage: cryo show [--full | --json] DIR\n"
	"\n"
	"Summarise the image in DIR: its process tree and, for each process, its\n"
	"command, threads, memory by kind and open files by kind.\n"
	"      --full            the summary, then the whole image as JSON (page data\n"
	"                        is summarised, not printed)\n"
	"      --json            the JSON only\n";

static int fail(void)
{
	const char *e = cryo_last_error();

	fprintf(stderr, "cryo: error: %s\n", e ? e : "unknown failure");
	if (cryo_log_file())
		fprintf(cryo_log_file(), "cryo: error: %s\n", e ? e : "unknown failure");
	return 1;
}

static int bad_usage(const char *fmt, const char *arg, const char *usage)
{
	fprintf(stderr, "cryo: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage);
	return 2;
}

#define CAP_BIT(n) (1ULL << (n))
#define CR_CAP_SYS_PTRACE 19
#define CR_CAP_SYS_ADMIN 21
#define CR_CAP_CHECKPOINT_RESTORE 40

/* Say it in one line instead of failing at the first system call. A user who is not
 * root dumps and restores their own processes with or without capabilities (libcryo
 * checks whose they are; without CAP_CHECKPOINT_RESTORE it restores into a user and
 * PID namespace of its own). */
static int need_privileges(const char *cmd)
{
	unsigned long long eff = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	bool cr;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	if (f)
		fclose(f);
	cr = eff & (CAP_BIT(CR_CAP_CHECKPOINT_RESTORE) | CAP_BIT(CR_CAP_SYS_ADMIN));
	if (cr && (eff & CAP_BIT(CR_CAP_SYS_PTRACE)))
		return 0;
	if (getuid() != 0 && (!strcmp(cmd, "dump") || !strcmp(cmd, "restore")))
		return 0;
	fprintf(stderr, "cryo: error: %s needs root (or CAP_CHECKPOINT_RESTORE and "
		"CAP_SYS_PTRACE)\n", cmd);
	return 1;
}

/* --timeout N: whole seconds, 1 ... CRYO_TIMEOUT_MAX. */
static int parse_timeout(const char *s, unsigned *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > CRYO_TIMEOUT_MAX)
		return -1;
	*out = v;
	return 0;
}

static int parse_pid(const char *s, pid_t *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > INT_MAX)
		return -1;
	*out = v;
	return 0;
}

/* ---- what dump and restore share: the reference's logging options, and its flags
 * for what cryo does not do yet, each refused by name ---- */

enum { OPT_DISPLAY_STATS = 500, OPT_STATS, OPT_ACTION_SCRIPT, OPT_STATUS_FD,
       OPT_UNSUPPORTED = 512 };

static const struct {
	const char *flag;
	int has_arg;
	const char *what;
} unsupported[] = {
	{ "link-remap", no_argument, "linking deleted files back instead of saving their data" },
	/* restore --lazy-pages is restore's own option; dump's is CRIU's page serving
	 * from the dumped process. */
	{ "lazy-pages", no_argument, "pages left in the dumped process; restore "
				     "--lazy-pages works on any image" },
	{ "manage-cgroups", optional_argument, "cgroups" },
};

#define NR_UNSUPPORTED (sizeof(unsupported) / sizeof(unsupported[0]))
#define MAX_OPTS 64

/* A command's own options, then those every command with a log shares, then the
 * reference's flags cryo refuses by name. */
static const struct option *with_common(const struct option *own)
{
	static const struct option common[] = {
		{ "log-file", required_argument, 0, 'o' },
		{ "work-dir", required_argument, 0, 'W' },
		{ "display-stats", no_argument, 0, OPT_DISPLAY_STATS },
		{ "stats", required_argument, 0, OPT_STATS },
		{ "action-script", required_argument, 0, OPT_ACTION_SCRIPT },
		{ "status-fd", required_argument, 0, OPT_STATUS_FD },
	};
	static struct option all[MAX_OPTS];
	size_t n = 0;

	while (own[n].name && n < MAX_OPTS - 1)
		all[n] = own[n], n++;
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]) && n < MAX_OPTS - 1; i++)
		all[n++] = common[i];
	for (size_t i = 0; i < NR_UNSUPPORTED && n < MAX_OPTS - 1; i++)
		all[n++] = (struct option){ unsupported[i].flag, unsupported[i].has_arg, 0,
					    OPT_UNSUPPORTED + (int)i };
	all[n] = (struct option){ 0, 0, 0, 0 };
	return all;
}

struct common_opts {
	int verbose;
	const char *log_path, *work_dir;
	bool display_stats;
	const char *stats_path;
	const char *action_script;
	int status_fd;			/* --status-fd N, as N + 1 (0: none) */
};

/* -v, -vv, or the reference's -v0 ... -v4 (3: progress, 4: debug). */
static int parse_verbose(const char *arg, int *level)
{
	if (!arg) {
		(*level)++;
		return 0;
	}
	if (arg[0] >= '0' && arg[0] <= '4' && !arg[1]) {
		*level = arg[0] <= '2' ? 0 : arg[0] - '2';
		return 0;
	}
	for (const char *p = arg; *p; p++)
		if (*p != 'v')
			return -1;
	*level += 1 + strlen(arg);
	return 0;
}

/* An option every command with a log takes: 1 if c was one, -1 on an error (said). */
static int common_opt(int c, struct common_opts *co, const char *usage)
{
	if (c == 'v') {
		if (!parse_verbose(optarg, &co->verbose))
			return 1;
		bad_usage("invalid verbosity '-v%s' (-v, -vv or -v0 ... -v4)", optarg, usage);
		return -1;
	}
	if (c == 'o' || c == 'W') {
		*(c == 'o' ? &co->log_path : &co->work_dir) = optarg;
		return 1;
	}
	if (c == OPT_ACTION_SCRIPT) {
		co->action_script = optarg;
		return 1;
	}
	if (c == OPT_STATUS_FD) {
		char *end;
		long fd;

		errno = 0;
		fd = strtol(optarg, &end, 10);
		if (errno || end == optarg || *end || fd < 0 || fd >= INT_MAX) {
			bad_usage("invalid --status-fd '%s'", optarg, usage);
			return -1;
		}
		if (fcntl((int)fd, F_GETFD) < 0) {
			fprintf(stderr, "cryo: error: --status-fd %ld: not an open fd\n", fd);
			return -1;
		}
		co->status_fd = (int)fd + 1;
		return 1;
	}
	if (c == OPT_DISPLAY_STATS || c == OPT_STATS) {
		co->display_stats |= c == OPT_DISPLAY_STATS;
		if (c == OPT_STATS)
			co->stats_path = optarg;
		return 1;
	}
	if (c >= OPT_UNSUPPORTED && c < OPT_UNSUPPORTED + (int)NR_UNSUPPORTED) {
		c -= OPT_UNSUPPORTED;
		fprintf(stderr, "cryo: error: --%s: not supported yet (%s)\n", unsupported[c].flag,
			unsupported[c].what);
		return -1;
	}
	return 0;
}

/* --display-stats to stdout, --stats FILE as JSON (made afresh, never through a
 * symlink); after a failed operation too, for what it did. */
static int report_stats(const struct common_opts *co)
{
	FILE *f;
	int fd, rc;

	if (co->display_stats && cryo_stats_print(stdout))
		return 1;
	if (!co->stats_path)
		return 0;
	fd = open(co->stats_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		fprintf(stderr, "cryo: error: cannot write --stats %s: %s\n", co->stats_path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	rc = cryo_stats_json(f);
	if (fclose(f) || rc) {
		fprintf(stderr, "cryo: error: cannot write --stats %s\n", co->stats_path);
		return 1;
	}
	return 0;
}

/* --status-fd: one zero byte once the work is done (the tree runs), then closed. */
static void tell_status(const struct common_opts *co)
{
	if (!co->status_fd)
		return;
	if (write(co->status_fd - 1, "", 1) != 1)
		fprintf(stderr, "cryo: warning: --status-fd %d: %s\n", co->status_fd - 1,
			strerror(errno));
	close(co->status_fd - 1);
}

/* -o FILE (relative to -W DIR, else to the current directory): never through a
 * symlink, made afresh for this run. */
static int open_log(const struct common_opts *co)
{
	int dir = AT_FDCWD, fd;
	FILE *f;

	cryo_set_verbosity(co->verbose);
	if (!co->log_path)
		return 0;
	if (co->work_dir && (dir = open(co->work_dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "cryo: error: --work-dir %s: %s\n", co->work_dir, strerror(errno));
		return -1;
	}
	fd = openat(dir, co->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (dir != AT_FDCWD)
		close(dir);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		fprintf(stderr, "cryo: error: cannot open the log file %s: %s\n", co->log_path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setvbuf(f, NULL, _IOLBF, 0);
	cryo_set_log_file(f);
	return 0;
}

/* ---- --stream and the page server ---- */

/* The stream's own fd; for dump, stdout then stands for stderr, so that no stray
 * output (a script's, the statistics) can get into the stream. */
static int stream_fd(int *out, int std)
{
	int fd;

	if (isatty(std)) {
		fprintf(stderr, "cryo: error: --stream: %s is a terminal; redirect it to a pipe "
			"or a file\n", std ? "stdout" : "stdin");
		return -1;
	}
	fd = fcntl(std, F_DUPFD_CLOEXEC, 3);
	if (fd < 0 || (std && dup2(2, std) != std)) {
		fprintf(stderr, "cryo: error: --stream: %s\n", strerror(errno));
		return -1;
	}
	/* Bigger pipe buffers: fewer wake-ups (at most pipe-max-size, without privilege). */
	fcntl(fd, F_SETPIPE_SZ, 1 << 20);
	*out = fd;
	return 0;
}

struct page_server_args {
	bool on;
	const char *address;
	unsigned port;
	bool have_port;
};

static int page_server_arg(struct page_server_args *ps, int c, const char *usage)
{
	char *end;
	unsigned long v;

	if (c == 'S') {
		ps->on = true;
		return 0;
	}
	if (c == 'a') {
		ps->address = optarg;
		return 0;
	}
	errno = 0;
	v = strtoul(optarg, &end, 10);
	if (errno || end == optarg || *end || v > 65535) {
		bad_usage("invalid --port '%s'", optarg, usage);
		return -1;
	}
	ps->port = v;
	ps->have_port = true;
	return 0;
}

/* -D DIR, --stream, or -D DIR with the page server. */
static int dump_where(struct cryo_dump_opts *o, const struct page_server_args *ps)
{
	if (o->stream && (o->dir || ps->on))
		return bad_usage("%s", o->dir ? "--stream writes the image to stdout: no -D" :
				 "--stream and --page-server do not go together", usage_dump);
	if (!o->stream && !o->dir)
		return bad_usage("%s", "dump needs -D DIR (or --stream)", usage_dump);
	if (!ps->on && (ps->address || ps->have_port))
		return bad_usage("%s", "--address and --port go with --page-server", usage_dump);
	if (!ps->on)
		return 0;
	if (!ps->have_port || !ps->port)
		return bad_usage("%s", "--page-server needs --port PORT", usage_dump);
	o->page_server_address = ps->address ? ps->address : "127.0.0.1";
	o->page_server_port = ps->port;
	return 0;
}

static int cmd_dump(int argc, char **argv, bool pre_dump)
{
	enum { OPT_DUMP_EXT_UNIX = 256, OPT_TCP_SKIP_IN_FLIGHT, OPT_DUMP_TCP_EST, OPT_DUMP_TCP_CLOSE,
	       OPT_DUMP_CPU_CAP, OPT_DUMP_TIMEOUT, OPT_DUMP_STREAM, OPT_PAGE_SERVER, OPT_ADDRESS,
	       OPT_PORT, OPT_PREV_IMAGES, OPT_TRACK_MEM };
	static const struct option opts[] = {
		{ "tree", required_argument, 0, 't' },
		{ "images-dir", required_argument, 0, 'D' },
		{ "leave-running", no_argument, 0, 'R' },
		{ "shell-job", no_argument, 0, 'j' },
		{ "file-locks", no_argument, 0, 'l' },
		{ "ext-unix-sk", no_argument, 0, OPT_DUMP_EXT_UNIX },
		{ "tcp-skip-in-flight", no_argument, 0, OPT_TCP_SKIP_IN_FLIGHT },
		{ "skip-in-flight", no_argument, 0, OPT_TCP_SKIP_IN_FLIGHT },
		{ "ghost-limit", required_argument, 0, 'G' },
		{ "tcp-established", no_argument, 0, OPT_DUMP_TCP_EST },
		{ "tcp-close", no_argument, 0, OPT_DUMP_TCP_CLOSE },
		{ "cpu-cap", optional_argument, 0, OPT_DUMP_CPU_CAP },
		{ "timeout", required_argument, 0, OPT_DUMP_TIMEOUT },
		{ "stream", no_argument, 0, OPT_DUMP_STREAM },
		{ "page-server", no_argument, 0, OPT_PAGE_SERVER },
		{ "address", required_argument, 0, OPT_ADDRESS },
		{ "port", required_argument, 0, OPT_PORT },
		{ "prev-images-dir", required_argument, 0, OPT_PREV_IMAGES },
		{ "track-mem", no_argument, 0, OPT_TRACK_MEM },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct cryo_dump_opts o = { .pre_dump = pre_dump };
	struct common_opts co = { 0 };
	struct page_server_args ps = { 0 };
	int c, r;

	while ((c = getopt_long(argc, argv, "t:D:Rjlv::o:W:h", with_common(opts), NULL)) != -1) {
		r = common_opt(c, &co, usage_dump);
		if (r < 0)
			return 2;
		if (r)
			continue;
		switch (c) {
		case 't':
			if (parse_pid(optarg, &o.pid))
				return bad_usage("invalid PID '%s'", optarg, usage_dump);
			break;
		case 'D':
			o.dir = optarg;
			break;
		case 'R':
			o.leave_running = true;
			break;
		case 'j':
			o.shell_job = true;
			break;
		case 'l':	/* always on */
			break;
		case OPT_DUMP_EXT_UNIX:
			o.ext_unix_sk = true;
			break;
		case OPT_TCP_SKIP_IN_FLIGHT:
			o.tcp_skip_in_flight = true;
			break;
		case OPT_DUMP_TCP_EST:
			o.tcp_established = true;
			break;
		case OPT_DUMP_TCP_CLOSE:
			o.tcp_close = true;
			break;
		case OPT_DUMP_CPU_CAP: {	/* the CPU is always recorded whole */
			bool check;

			if (cryo_parse_cpu_cap(optarg, &check))
				return bad_usage("invalid --cpu-cap '%s' (all, cpu, fpu, ins, or "
						 "none alone)", optarg, usage_dump);
			break;
		}
		case OPT_DUMP_TIMEOUT:
			if (parse_timeout(optarg, &o.timeout))
				return bad_usage("invalid --timeout '%s' (seconds, 1 to 86400)",
						 optarg, usage_dump);
			break;
		case OPT_DUMP_STREAM:
			o.stream = true;
			break;
		case OPT_PAGE_SERVER:
		case OPT_ADDRESS:
		case OPT_PORT:
			if (page_server_arg(&ps, c == OPT_PAGE_SERVER ? 'S' :
						 c == OPT_ADDRESS ? 'a' : 'p', usage_dump))
				return 2;
			break;
		case OPT_PREV_IMAGES:
			o.prev_images_dir = optarg;
			break;
		case OPT_TRACK_MEM:
			o.track_mem = true;
			break;
		case 'G':
			if (cryo_parse_size(optarg, &o.ghost_limit) || !o.ghost_limit)
				return bad_usage("invalid --ghost-limit '%s' (a size such as 1M)",
						 optarg, usage_dump);
			break;
		case 'h':
			fputs(usage_dump, stdout);
			return 0;
		default:
			return bad_usage("%s", "invalid option", usage_dump);
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind], usage_dump);
	if (!o.pid)
		return bad_usage("%s", "dump needs -t PID", usage_dump);
	if (dump_where(&o, &ps))
		return 2;
	if (need_privileges("dump") || open_log(&co) || (o.stream && stream_fd(&o.stream_fd, 1)))
		return 1;
	o.action_script = co.action_script;
	r = cryo_dump(&o);
	if (report_stats(&co))
		return 1;
	if (r)
		return fail();
	tell_status(&co);
	return 0;
}

/* --inherit-fd fd[N]:RESOURCE; N must be one of cryo's open fds. */
static int add_inherit(struct cryo_restore_opts *o, struct cryo_inherit_fd *list,
		       const char *arg)
{
	struct cryo_inherit_fd *in = &list[o->nr_inherit];

	if (o->nr_inherit == CRYO_MAX_INHERIT_FD) {
		fprintf(stderr, "cryo: error: at most %d --inherit-fd\n", CRYO_MAX_INHERIT_FD);
		return 2;
	}
	if (cryo_parse_inherit_fd(arg, in))
		return bad_usage("invalid --inherit-fd '%s' (fd[N]:RESOURCE, e.g. "
				 "fd[1]:pipe:[12345])", arg, usage_restore);
	if (fcntl(in->fd, F_GETFD) < 0) {
		fprintf(stderr, "cryo: error: --inherit-fd %s: cryo has no fd %d open\n",
			arg, in->fd);
		return 2;
	}
	o->nr_inherit++;
	o->inherit = list;
	return 0;
}

static int cmd_restore(int argc, char **argv)
{
	static struct cryo_inherit_fd inherit[CRYO_MAX_INHERIT_FD];
	enum { OPT_PIDFILE = 256, OPT_VDSO, OPT_CPU_CAP, OPT_FILE_VALIDATION, OPT_TRUST,
	       OPT_INHERIT, OPT_EXT_UNIX, OPT_TCP_EST, OPT_TCP_CLOSE, OPT_STREAM,
	       OPT_PIDNS, OPT_LAZY, OPT_LAZY_FILL };
	static const struct option opts[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "restore-detached", no_argument, 0, 'd' },
		{ "pidfile", required_argument, 0, OPT_PIDFILE },
		{ "shell-job", no_argument, 0, 'j' },
		{ "vdso", required_argument, 0, OPT_VDSO },
		{ "cpu-cap", optional_argument, 0, OPT_CPU_CAP },
		{ "file-validation", required_argument, 0, OPT_FILE_VALIDATION },
		{ "trust-image", no_argument, 0, OPT_TRUST },
		{ "inherit-fd", required_argument, 0, OPT_INHERIT },
		{ "file-locks", no_argument, 0, 'l' },
		{ "ext-unix-sk", no_argument, 0, OPT_EXT_UNIX },
		{ "tcp-established", no_argument, 0, OPT_TCP_EST },
		{ "tcp-close", no_argument, 0, OPT_TCP_CLOSE },
		{ "stream", no_argument, 0, OPT_STREAM },
		{ "pidns", no_argument, 0, OPT_PIDNS },
		{ "lazy-pages", no_argument, 0, OPT_LAZY },
		{ "lazy-fill", required_argument, 0, OPT_LAZY_FILL },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct cryo_restore_opts o = { 0 };
	struct common_opts co = { 0 };
	bool lazy_fill_given = false;
	int c, r;
	pid_t root;

	while ((c = getopt_long(argc, argv, "D:djlv::o:W:h", with_common(opts), NULL)) != -1) {
		r = common_opt(c, &co, usage_restore);
		if (r < 0)
			return 2;
		if (r)
			continue;
		switch (c) {
		case 'D':
			o.dir = optarg;
			break;
		case 'd':
			o.detach = true;
			break;
		case 'j':
			o.shell_job = true;
			break;
		case 'l':	/* always on */
			break;
		case OPT_PIDFILE:
			o.pidfile = optarg;
			break;
		case OPT_VDSO:
			if (!strcmp(optarg, "auto"))
				o.vdso = CRYO_VDSO_AUTO;
			else if (!strcmp(optarg, "remap"))
				o.vdso = CRYO_VDSO_REMAP;
			else if (!strcmp(optarg, "proxy"))
				o.vdso = CRYO_VDSO_PROXY;
			else
				return bad_usage("invalid --vdso mode '%s'", optarg, usage_restore);
			break;
		case OPT_CPU_CAP: {
			bool check;

			if (cryo_parse_cpu_cap(optarg, &check))
				return bad_usage("invalid --cpu-cap '%s' (all, cpu, fpu, ins, or "
						 "none alone)", optarg, usage_restore);
			o.ignore_cpu = !check;
			break;
		}
		case OPT_TRUST:
			o.trust_image = true;
			break;
		case OPT_EXT_UNIX:
			o.ext_unix_sk = true;
			break;
		case OPT_TCP_EST:
			o.tcp_established = true;
			break;
		case OPT_TCP_CLOSE:
			o.tcp_close = true;
			break;
		case OPT_LAZY:
			o.lazy_pages = true;
			break;
		case OPT_LAZY_FILL:
			if (!strcmp(optarg, "background"))
				o.lazy_fill = CRYO_LAZY_BACKGROUND;
			else if (!strcmp(optarg, "on-touch"))
				o.lazy_fill = CRYO_LAZY_ON_TOUCH;
			else
				return bad_usage("invalid --lazy-fill mode '%s' (background or "
						 "on-touch)", optarg, usage_restore);
			lazy_fill_given = true;
			break;
		case OPT_STREAM:
			o.stream = true;
			break;
		case OPT_PIDNS:
			o.pidns = true;
			break;
		case OPT_INHERIT:
			c = add_inherit(&o, inherit, optarg);
			if (c)
				return c;
			break;
		case OPT_FILE_VALIDATION:
			if (!strcmp(optarg, "buildid"))
				o.file_validation = CRYO_VALIDATE_BUILDID;
			else if (!strcmp(optarg, "filesize"))
				o.file_validation = CRYO_VALIDATE_FILESIZE;
			else
				return bad_usage("invalid --file-validation '%s' (buildid or "
						 "filesize)", optarg, usage_restore);
			break;
		case 'h':
			fputs(usage_restore, stdout);
			return 0;
		default:
			return bad_usage("%s", "invalid option", usage_restore);
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind], usage_restore);
	if (!o.dir == !o.stream)
		return bad_usage("%s", o.dir ? "--stream reads the image from stdin: no -D" :
				 "restore needs -D DIR (or --stream)", usage_restore);
	if (lazy_fill_given && !o.lazy_pages)
		return bad_usage("%s", "--lazy-fill needs --lazy-pages", usage_restore);
	if (need_privileges("restore") || open_log(&co) ||
	    (o.stream && stream_fd(&o.stream_fd, 0)))
		return 1;
	o.action_script = co.action_script;
	r = cryo_restore(&o, &root);
	if (report_stats(&co))
		return 1;
	if (r)
		return fail();
	tell_status(&co);
	if (o.detach)
		return 0;
	c = cryo_wait_restored(root);
	return c < 0 ? fail() : c;
}

static const char usage_page_server[] =
	"usage: cryo page-server -D DIR --port PORT [--address ADDR] [-v]\n"
	"\n"
	"Listen on TCP ADDR:PORT (default: every address) for one `cryo dump\n"
	"--page-server`, write the page files it sends into DIR, and exit once they are\n"
	"all stored (0) or the dump failed (1). Copy the dump's -D directory into DIR\n"
	"to restore from DIR. With --port 0 a free port is taken; the port listened on\n"
	"is printed on stdout, one line, once the server listens.\n"
	"  -D, --images-dir DIR  where the page files go (created 0700 if missing)\n"
	"      --port PORT       the TCP port\n"
	"      --address ADDR    the address to listen on\n"
	"  -v                    more output\n"
	"  -h, --help            this text\n";

static int cmd_page_server(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "port", required_argument, 0, 'p' },
		{ "address", required_argument, 0, 'a' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct cryo_page_server_opts o = { .port_fd = 1 };
	struct page_server_args ps = { 0 };
	int c, verbose = 0;

	while ((c = getopt_long(argc, argv, "D:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_page_server, stdout);
			return 0;
		case 'v':
			verbose++;
			break;
		case 'D':
			o.dir = optarg;
			break;
		case 'p':
		case 'a':
			if (page_server_arg(&ps, c, usage_page_server))
				return 2;
			break;
		default:
			return bad_usage("%s", "invalid option", usage_page_server);
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind], usage_page_server);
	if (!o.dir || !ps.have_port)
		return bad_usage("%s", "page-server needs -D DIR and --port PORT",
				 usage_page_server);
	o.address = ps.address;
	o.port = ps.port;
	cryo_set_verbosity(verbose);
	return cryo_page_server(&o) ? fail() : 0;
}

static int cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "all", no_argument, 0, 'a' },
		{ "feature", required_argument, 0, 'F' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *feature = NULL;
	int c, verbose = 0, ok;

	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_check, stdout);
			return 0;
		case 'v':
			verbose++;
			break;
		case 'a':	/* every probe runs anyway */
			break;
		case 'F':
			feature = optarg;
			break;
		default:
			return bad_usage("%s", "invalid option", usage_check);
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind], usage_check);
	if (need_privileges("check"))
		return 1;
	cryo_set_verbosity(verbose);
	if (!feature)
		return cryo_check(stdout) ? 1 : 0;
	ok = cryo_check_feature(feature, stdout);
	return ok < 0 ? fail() + 1 : !ok;
}

static int cmd_show(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "full", no_argument, 0, 'f' },
		{ "json", no_argument, 0, 'J' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	unsigned parts = CRYO_SHOW_SUMMARY;
	const char *dir = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "D:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_show, stdout);
			return 0;
		case 'f':
			parts = CRYO_SHOW_SUMMARY | CRYO_SHOW_JSON;
			break;
		case 'J':
			parts = CRYO_SHOW_JSON;
			break;
		case 'D':
			dir = optarg;
			break;
		default:
			return bad_usage("%s", "invalid option", usage_show);
		}
	}
	if (!dir && optind < argc)
		dir = argv[optind++];
	if (!dir || optind < argc)
		return bad_usage("%s", "show needs exactly one DIR", usage_show);
	return cryo_show_parts(dir, parts, stdout) ? fail() : 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!cmd || !strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		fputs(usage_main, cmd ? stdout : stderr);
		return cmd ? 0 : 2;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("cryo %s\n", cryo_version());
		return 0;
	}
	if (!strcmp(cmd, "dump"))
		return cmd_dump(argc - 1, argv + 1, false);
	if (!strcmp(cmd, "pre-dump"))
		return cmd_dump(argc - 1, argv + 1, true);
	if (!strcmp(cmd, "restore"))
		return cmd_restore(argc - 1, argv + 1);
	if (!strcmp(cmd, "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(cmd, "show"))
		return cmd_show(argc - 1, argv + 1);
	if (!strcmp(cmd, "page-server"))
		return cmd_page_server(argc - 1, argv + 1);
	fprintf(stderr, "cryo: unknown command '%s'\n%s", cmd, usage_main);
	return 2;
}
