/* The stream case: a process of N touched bytes moved through a pipe (`cryo dump
 * --stream | cryo restore --stream -d`), timed from the dump's start to the restore's
 * exit, against a dump into an image directory and a restore from it, timed the same
 * way, in the same run (the two alternate). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define MOVE_TIMEOUT 600.0

static int file_move(pid_t pid, double *secs, char *err, size_t len)
{
	char img[512], pidbuf[16];
	const char *dump[] = { cfg.cryo, "dump", "-t", pidbuf, "-D", img, NULL };
	const char *restore[] = { cfg.cryo, "restore", "-D", img, "-d", NULL };
	double t0, t;
	int rc;

	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	snprintf(img, sizeof(img), "%s/img", cfg.dir);
	rm_tree(img);
	t0 = now();
	rc = run_cryo(dump, &t, err, len);
	if (!rc && wait_gone(pid, 30))
		rc = (snprintf(err, len, "dumped PID %d did not go away", pid), -1);
	if (!rc)
		rc = run_cryo(restore, &t, err, len);
	*secs = now() - t0;
	rm_tree(img);
	return rc;
}

static int exited_ok(pid_t pid, const char *what, char *err, size_t len)
{
	int st;

	if (wait_child(pid, MOVE_TIMEOUT, &st))
		return snprintf(err, len, "%s did not finish", what), -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return snprintf(err, len, "%s failed (status 0x%x; see cryo.log)", what, st), -1;
	return 0;
}

/* The restore reads to the end of the stream, which comes when the dump exits: by
 * then the target is killed, and reaped here at once (its PID is free). */
static int stream_move(pid_t pid, double *secs, char *err, size_t len)
{
	char pidbuf[16];
	char *dump_argv[] = { (char *)cfg.cryo, "dump", "-t", pidbuf, "--stream", NULL };
	char *restore_argv[] = { (char *)cfg.cryo, "restore", "--stream", "-d", NULL };
	pid_t dump = -1, restore = -1;
	double t0 = now();
	int p[2], rc = 0;

	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	if (pipe2(p, O_CLOEXEC))
		return snprintf(err, len, "pipe: %s", strerror(errno)), -1;
	if (spawn_piped(dump_argv, -1, p[1], &dump) ||
	    spawn_piped(restore_argv, p[0], -1, &restore))
		rc = (snprintf(err, len, "cannot run cryo: %s", strerror(errno)), -1);
	close(p[0]);
	close(p[1]);
	if (dump > 0 && exited_ok(dump, "cryo dump --stream", err, len))
		rc = -1;
	if (!rc && wait_gone(pid, 30))
		rc = (snprintf(err, len, "dumped PID %d did not go away", pid), -1);
	if (restore > 0 && rc)
		kill_and_reap(restore);
	else if (restore > 0 && exited_ok(restore, "cryo restore --stream", err, len))
		rc = -1;
	*secs = now() - t0;
	return rc;
}

/* One move of a fresh target; its time into s (unless s is NULL: a warm-up). */
static int one_move(char *const argv[], bool stream, struct samples *s, char *err,
		    size_t len)
{
	pid_t pid = spawn_target(argv[0], argv, err, len);
	double t;
	int rc;

	if (pid < 0)
		return -1;
	rc = stream ? stream_move(pid, &t, err, len) : file_move(pid, &t, err, len);
	if (!rc)
		rc = check_alive(pid, "target-static", err, len) ||
		     verify_and_reap(pid, 300, err, len) ? -1 : 0;
	if (rc)
		kill_and_reap(pid);
	else if (s)
		samples_add(s, t);
	reap_strays();
	return rc;
}

int case_stream(struct results *r, const char *group, size_t size)
{
	char bin[512], bytes_arg[32], name[80], err[256] = "";
	char *argv[] = { bin, "mem", bytes_arg, "1", NULL };
	struct limit *files;
	struct row *row;
	int rc = 0;

	snprintf(bin, sizeof(bin), "%s/target-static", cfg.targets);
	snprintf(bytes_arg, sizeof(bytes_arg), "%zu", size);
	snprintf(name, sizeof(name), "cryo dump -D + restore -D -d, %.0f MiB (files)",
		 size / MiB);
	files = limit_new(r, name);
	row = row_new(r, group, "dump --stream | restore");
	if (!files || !row)
		return -1;
	for (int i = 0; i < cfg.warmup && !interrupted && !rc; i++)
		rc = one_move(argv, false, NULL, err, sizeof(err)) ||
		     one_move(argv, true, NULL, err, sizeof(err));
	for (int i = 0; i < cfg.runs && !interrupted && !rc; i++)
		rc = one_move(argv, false, &files->s, err, sizeof(err)) ||
		     one_move(argv, true, &row->s, err, sizeof(err));
	str_copy(row->limit_name, sizeof(row->limit_name), files->name);
	row->lim = files;
	if (row->s.n)
		snprintf(row->note, sizeof(row->note), "%.2f GB/s through the pipe",
			 size / samples_median(&row->s) / 1e9);
	if (rc)
		str_copy(row->error, sizeof(row->error), err);
	return rc;
}
