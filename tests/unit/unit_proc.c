/* Unit tests of the /proc parsers (src/proc.h): smaps/maps, stat, status, fdinfo,
 * epoll targets, timers, on text captured from live processes, on this process, and
 * on malformed input. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc.h"
#include "unit.h"

#include "smaps_fixture.h"

/* Parse a copy of exactly `len` bytes, so that a read past the end is a real bug. */
static int smaps(const char *txt, size_t len, struct proc_vmas *v)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	memcpy(copy, txt, len);
	rc = proc_parse_smaps(copy, len, v);
	free(copy);
	return rc;
}

struct vma_want {
	uint64_t start, end, pgoff;
	const char *perms;
	uint32_t maj, min;
	uint64_t ino;
	const char *path;
	uint64_t flags;
	uint64_t anon_kb;
};

#define F(x) VMF(x)
static const struct vma_want fixture_vmas[] = {
	{ 0x563845e8d000, 0x563845e8e000, 0x3000, "rw-p", 0xfe, 0, 10985698, "/tmp/fx/mk",
	  F(RD) | F(WR) | F(MR) | F(MW) | F(ME) | F(AC), 4 },
	{ 0x563855bf3000, 0x563855c14000, 0, "rw-p", 0, 0, 0, "[heap]",
	  F(RD) | F(WR) | F(MR) | F(MW) | F(ME) | F(AC), 4 },
	{ 0x7ff23d780000, 0x7ff23d7a6000, 0, "r--p", 0xfe, 0, 332835,
	  "/usr/lib/x86_64-linux-gnu/libc.so.6", F(RD) | F(MR) | F(MW) | F(ME), 0 },
	{ 0x7ff23d96c000, 0x7ff23d96d000, 0, "rw-s", 0xfe, 0, 10985947, "/tmp/fx/gone (deleted)",
	  F(RD) | F(WR) | F(SH) | F(MR) | F(MW) | F(ME) | F(MS), 0 },
	{ 0x7ff23d96d000, 0x7ff23d96f000, 0, "r--p", 0xfe, 0, 10985700, "/tmp/fx/my file (x).dat",
	  F(RD) | F(MR) | F(MW) | F(ME), 0 },
	{ 0x7ff23d96f000, 0x7ff23d971000, 0, "rw-p", 0, 0, 0, NULL,
	  F(RD) | F(WR) | F(MR) | F(MW) | F(ME) | F(AC), 4 },
	{ 0x7ff23d971000, 0x7ff23d975000, 0, "r--p", 0, 0, 0, "[vvar]",
	  F(RD) | F(MR) | F(PF) | F(IO) | F(DE) | F(DD), 0 },
	{ 0x7ff23d975000, 0x7ff23d977000, 0, "r--p", 0, 0, 0, "[vvar_vclock]",
	  F(RD) | F(MR) | F(PF) | F(IO) | F(DE) | F(DD), 0 },
	{ 0x7ff23d977000, 0x7ff23d979000, 0, "r-xp", 0, 0, 0, "[vdso]",
	  F(RD) | F(EX) | F(MR) | F(MW) | F(ME) | F(DE), 0 },
	{ 0x7ffe600e4000, 0x7ffe60105000, 0, "rw-p", 0, 0, 0, "[stack]",
	  F(RD) | F(WR) | F(MR) | F(MW) | F(ME) | F(GD) | F(AC), 16 },
	{ 0xffffffffff600000, 0xffffffffff601000, 0, "--xp", 0, 0, 0, "[vsyscall]", F(EX), 0 },
};
#undef F

static uint32_t perms_prot(const char *p)
{
	return (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
	       (p[2] == 'x' ? PROT_EXEC : 0);
}

static void check_vma(const struct proc_vma *v, const struct vma_want *w, size_t i,
		      bool smaps_flags)
{
	CHECK(v->start == w->start && v->end == w->end, "vma %zu: range 0x%lx-0x%lx", i,
	      (unsigned long)v->start, (unsigned long)v->end);
	CHECK(v->pgoff == w->pgoff, "vma %zu: pgoff 0x%lx", i, (unsigned long)v->pgoff);
	CHECK(v->prot == perms_prot(w->perms), "vma %zu: prot %u", i, v->prot);
	CHECK(v->shared == (w->perms[3] == 's'), "vma %zu: shared %d", i, v->shared);
	CHECK(v->dev_major == w->maj && v->dev_minor == w->min, "vma %zu: dev %x:%x", i,
	      v->dev_major, v->dev_minor);
	CHECK(v->ino == w->ino, "vma %zu: ino %lu", i, (unsigned long)v->ino);
	if (w->path)
		CHECK(v->path && !strcmp(v->path, w->path), "vma %zu: path '%s'", i,
		      v->path ? v->path : "(null)");
	else
		CHECK(!v->path, "vma %zu: path '%s' where none", i, v->path);
	CHECK(!v->unknown_flags, "vma %zu: unknown flag '%s'", i, v->unknown_flag);
	if (smaps_flags) {
		CHECK(v->vm_flags == w->flags, "vma %zu: flags 0x%lx want 0x%lx", i,
		      (unsigned long)v->vm_flags, (unsigned long)w->flags);
		CHECK(v->anon_kb == w->anon_kb, "vma %zu: anon %lu kB", i,
		      (unsigned long)v->anon_kb);
	} else {
		CHECK(!v->vm_flags, "vma %zu: flags from a maps line", i);
	}
}

static void test_smaps_fixture(void)
{
	size_t n = sizeof(fixture_vmas) / sizeof(fixture_vmas[0]);
	struct proc_vmas v;

	unit_case();
	CHECK(!smaps(smaps_fixture, strlen(smaps_fixture), &v), "fixture: %s", err_text());
	CHECK(v.nr == n, "fixture: %zu VMAs, want %zu", v.nr, n);
	for (size_t i = 0; i < v.nr && i < n; i++)
		check_vma(&v.v[i], &fixture_vmas[i], i, true);
	proc_vmas_free(&v);
	CHECK(!v.v && !v.nr, "proc_vmas_free leaves it empty");
}

/* The fixture reduced to its maps lines: the same VMAs, no flags. */
static void test_maps_fixture(void)
{
	size_t n = sizeof(fixture_vmas) / sizeof(fixture_vmas[0]), used = 0;
	char *maps = malloc(sizeof(smaps_fixture));
	const char *p = smaps_fixture;
	struct proc_vmas v;

	unit_case();
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t l = nl - p + 1;

		if (strchr("0123456789abcdef", *p) && memchr(p, '-', l)) {
			memcpy(maps + used, p, l);
			used += l;
		}
		p += l;
	}
	CHECK(!smaps(maps, used, &v), "maps: %s", err_text());
	CHECK(v.nr == n, "maps: %zu VMAs", v.nr);
	for (size_t i = 0; i < v.nr && i < n; i++)
		check_vma(&v.v[i], &fixture_vmas[i], i, false);
	proc_vmas_free(&v);
	/* Without the final newline. */
	unit_case();
	CHECK(!smaps(maps, used - 1, &v) && v.nr == n, "maps without final newline: %s",
	      err_text());
	if (v.nr == n)
		CHECK(v.v[n - 1].path && !strcmp(v.v[n - 1].path, "[vsyscall]"),
		      "last path without newline");
	proc_vmas_free(&v);
	free(maps);
}

static void test_smaps_unknown_flags(void)
{
	const char *txt =
		"7ff23d96f000-7ff23d971000 rw-p 00000000 00:00 0 \n"
		"Anonymous:             8 kB\n"
		"AnonHugePages:      2048 kB\n"
		"VmFlags: rd wr mr mw me ac zz qq \n"
		"7ff23d971000-7ff23d975000 r--p 00000000 00:00 0                          [vvar]\n"
		"VmFlags: rd sl dp ss ui mt gu \n";
	struct proc_vmas v;

	unit_case();
	CHECK(!smaps(txt, strlen(txt), &v) && v.nr == 2, "unknown flags: %s", err_text());
	if (v.nr == 2) {
		CHECK(v.v[0].unknown_flags && !strcmp(v.v[0].unknown_flag, "zz"),
		      "first unknown mnemonic kept: '%s'", v.v[0].unknown_flag);
		CHECK(v.v[0].vm_flags == (VMF(RD) | VMF(WR) | VMF(MR) | VMF(MW) | VMF(ME) |
					  VMF(AC)), "known flags still parsed");
		CHECK(v.v[0].anon_kb == 8, "anon 8 kB");
		CHECK(v.v[0].anon_huge_kb == 2048 && !v.v[1].anon_huge_kb, "huge 2048 kB, 0 kB");
		CHECK(!v.v[1].unknown_flags, "recent mnemonics known");
		CHECK(v.v[1].vm_flags == (VMF(RD) | VMF(SL) | VMF(DP) | VMF(SS) | VMF(UI) |
					  VMF(MT) | VMF(GU)), "recent mnemonics 0x%lx",
		      (unsigned long)v.v[1].vm_flags);
	}
	proc_vmas_free(&v);
	unit_case();
	CHECK(vmf_name(VMF_RD) && !strcmp(vmf_name(VMF_RD), "rd"), "vmf_name(rd)");
	CHECK(vmf_name(VMF_SL) && !strcmp(vmf_name(VMF_SL), "sl"), "vmf_name(sl)");
	CHECK(!vmf_name(-1) && !vmf_name(VMF_NR_BITS), "vmf_name out of range");
}

/* This process's own smaps and maps. */
static void test_smaps_live(void)
{
	const char *files[] = { "/proc/self/smaps", "/proc/self/maps" };

	for (int f = 0; f < 2; f++) {
		struct proc_vmas v;
		size_t len;
		char *txt = proc_read_file(files[f], &len);
		int vdso = 0, stack = 0;

		unit_case();
		CHECK(txt, "read %s: %s", files[f], err_text());
		if (!txt)
			continue;
		CHECK(!proc_parse_smaps(txt, len, &v), "%s: %s", files[f], err_text());
		for (size_t i = 0; i < v.nr; i++) {
			vdso += v.v[i].path && !strcmp(v.v[i].path, "[vdso]");
			stack += v.v[i].path && !strcmp(v.v[i].path, "[stack]");
			CHECK(!f || !v.v[i].vm_flags, "maps gives no flags");
			CHECK(f || v.v[i].vm_flags, "%s: VMA %zu without VmFlags", files[f], i);
			CHECK(f || !v.v[i].unknown_flags, "%s: unknown VmFlags '%s' on this "
			      "kernel", files[f], v.v[i].unknown_flag);
		}
		CHECK(vdso == 1 && stack == 1, "%s: %d [vdso], %d [stack]", files[f], vdso, stack);
		proc_vmas_free(&v);
		free(txt);
	}
}

static void test_smaps_malformed(void)
{
	static const char *const bad[] = {
		"zzzz-1000 r--p 00000000 00:00 0\n",
		"2000-1000 r--p 00000000 00:00 0\n",			/* end before start */
		"1000-1000 r--p 00000000 00:00 0\n",			/* empty */
		"1001-2000 r--p 00000000 00:00 0\n",			/* unaligned */
		"1000-2001 r--p 00000000 00:00 0\n",
		"1000-2000 rw\n",					/* truncated perms */
		"1000-2000 r--p",
		"1000-2000 r--x 00000000 00:00 0\n",			/* bad share bit */
		"1000-2000 q--p 00000000 00:00 0\n",
		"1000-2000 r--p 00000000 00:00\n",			/* no inode */
		"1000-2000 r--p 00000000 0000 0\n",
		"1000-2000 r--p zz 00:00 0\n",
		"1000-2000 r--p 0 100000000:00 0\n",			/* major > 32 bits */
		"1000-2000 r--p 0 00:00 0x\n",
		"1000-2000 r--p 0 00:00 99999999999999999999999\n",	/* inode overflow */
		"1000-2000 r--p 0 00:00 0 /a\0b\n",			/* NUL in the path */
		"10000000000000000-10000000001000000 r--p 0 00:00 0\n",	/* start overflow */
		"1000-",
		"-\n",
		"Size: 4 kB\n1000-2000 r--p 0 00:00 0\n",		/* field before VMA */
		"1000-3000 r--p 0 00:00 0\n2000-4000 r--p 0 00:00 0\n",	/* overlap */
		"3000-4000 r--p 0 00:00 0\n1000-2000 r--p 0 00:00 0\n",	/* unsorted */
		"1000-2000 r--p 0 00:00 0\nVmFlags: rd wrx\n",
		"1000-2000 r--p 0 00:00 0\nVmFlags: r\n",
		"1000-2000 r--p 0 00:00 0\nAnonymous: kB\n",
		"1000-2000 r--p 0 00:00 0\nAnonymous: 99999999999999999999999 kB\n",
		"1000-2000 r--p 0 00:00 0\nAnonHugePages: x kB\n",
	};
	static const size_t badlen[] = { [15] = 30 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = i < sizeof(badlen) / sizeof(badlen[0]) && badlen[i] ? badlen[i] :
			     strlen(bad[i]);
		struct proc_vmas v;

		unit_case();
		CHECK(smaps(bad[i], len, &v) == -1, "malformed smaps %zu accepted", i);
		CHECK(cr_err_set(), "malformed smaps %zu: no error recorded", i);
		CHECK(!v.v && !v.nr, "malformed smaps %zu: result not emptied", i);
	}
	/* The error names the line. */
	{
		const char *txt = "1000-2000 r--p 0 00:00 0\nRss: 4 kB\n3000-2000 r--p 0 00:00 0\n";
		struct proc_vmas v;

		unit_case();
		CHECK(smaps(txt, strlen(txt), &v) == -1 && err_has("line 3"),
		      "error names line 3: %s", err_text());
	}
	/* Every prefix of the fixture parses or fails cleanly. */
	unit_case();
	for (size_t l = 0; l < strlen(smaps_fixture); l += 7) {
		struct proc_vmas v;

		cr_err_reset();
		if (!smaps(smaps_fixture, l, &v))
			proc_vmas_free(&v);
	}
	/* Lenient cases: blank lines and trailing spaces are fine, no VMAs is fine. */
	{
		const char *txt = "\n1000-2000 r--p 0 00:00 0   \n\n";
		struct proc_vmas v;

		unit_case();
		CHECK(!smaps(txt, strlen(txt), &v) && v.nr == 1 && !v.v[0].path,
		      "blank lines: %s", err_text());
		proc_vmas_free(&v);
		unit_case();
		CHECK(!smaps("", 0, &v) && v.nr == 0, "empty input");
		proc_vmas_free(&v);
	}
}

/* ---- stat ---- */

static const char stat_real[] =
	"10991 (cat) R 10980 10980 8021 0 -1 4194304 101 0 0 0 0 0 0 0 20 0 1 0 465559 "
	"3133440 384 18446744073709551615 94820477263872 94820477283753 140724083475264 0 0 "
	"0 0 0 0 0 0 0 17 1 0 0 0 0 0 94820477299760 94820477301376 94820565225472 "
	"140724083481218 140724083481238 140724083481238 140724083482603 0\n";

/* stat_real with its comm replaced, and field 18-19 (priority, nice) set. */
static char *stat_with(const char *comm, const char *prio_nice)
{
	const char *head = strchr(stat_real, ' ');
	const char *rest = strchr(stat_real, ')') + 1;
	const char *p18 = " 20 0 1 0 465559";
	char *out = malloc(1024);
	const char *at = strstr(rest, p18);

	snprintf(out, 1024, "%.*s (%s)%.*s %s%s", (int)(head - stat_real), stat_real, comm,
		 (int)(at - rest), rest, prio_nice, at + 5);
	return out;
}

static int stat_parse(const char *txt, struct proc_stat *st)
{
	size_t len = strlen(txt);
	char *copy = malloc(len ? len : 1);
	int rc;

	memcpy(copy, txt, len);
	rc = proc_parse_stat(copy, len, st);
	free(copy);
	return rc;
}

static void test_stat_real(void)
{
	struct proc_stat st;

	unit_case();
	CHECK(!stat_parse(stat_real, &st), "real stat: %s", err_text());
	CHECK(st.pid == 10991 && !strcmp(st.comm, "cat") && st.state == 'R',
	      "pid %d comm '%s' state %c", st.pid, st.comm, st.state);
	CHECK(st.ppid == 10980 && st.pgid == 10980 && st.sid == 8021, "ids %d %d %d", st.ppid,
	      st.pgid, st.sid);
	CHECK(st.tty_nr == 0 && st.tpgid == -1, "no terminal: tty_nr %u tpgid %d", st.tty_nr,
	      st.tpgid);
	CHECK(st.flags == 4194304 && st.num_threads == 1, "flags/threads");
	CHECK(st.start_code == 94820477263872ULL && st.end_code == 94820477283753ULL &&
	      st.start_stack == 140724083475264ULL, "code/stack");
	CHECK(st.exit_signal == 17, "exit_signal %d", st.exit_signal);
	CHECK(st.start_data == 94820477299760ULL && st.end_data == 94820477301376ULL &&
	      st.start_brk == 94820565225472ULL, "data/brk");
	CHECK(st.arg_start == 140724083481218ULL && st.arg_end == 140724083481238ULL &&
	      st.env_start == 140724083481238ULL && st.env_end == 140724083482603ULL,
	      "args/env");
	/* Without the newline, and with fields beyond 52. */
	unit_case();
	{
		char *t = strdup(stat_real);

		t[strlen(t) - 1] = 0;
		CHECK(!stat_parse(t, &st) && st.env_end == 140724083482603ULL, "no newline: %s",
		      err_text());
		free(t);
		t = malloc(sizeof(stat_real) + 64);
		snprintf(t, sizeof(stat_real) + 64, "%.*s 1 2 3 4 5 6 7 8 9 10 11 12 13 14\n",
			 (int)strlen(stat_real) - 1, stat_real);
		unit_case();
		CHECK(!stat_parse(t, &st) && st.env_end == 140724083482603ULL, "66 fields: %s",
		      err_text());
		free(t);
	}
}

static void test_stat_comm(void)
{
	static const char *const comms[] = {
		"a b c", "x) R 5 (", ")", "((", "a)(b) c)", "", "     ", "0123456789abcde",
	};

	for (size_t i = 0; i < sizeof(comms) / sizeof(comms[0]); i++) {
		char *t = stat_with(comms[i], "-100 -20");
		struct proc_stat st;

		unit_case();
		CHECK(!stat_parse(t, &st), "comm '%s': %s", comms[i], err_text());
		CHECK(!strcmp(st.comm, comms[i]), "comm '%s' parsed as '%s'", comms[i], st.comm);
		CHECK(st.state == 'R' && st.ppid == 10980 && st.num_threads == 1 &&
		      st.exit_signal == 17 && st.env_end == 140724083482603ULL,
		      "comm '%s': fields after it", comms[i]);
		free(t);
	}
	/* A comm longer than the struct holds is cut, not overflowed. */
	{
		char longc[200];
		char *t;
		struct proc_stat st;

		memset(longc, 'q', sizeof(longc) - 1);
		longc[sizeof(longc) - 1] = 0;
		t = stat_with(longc, "20 0");
		unit_case();
		CHECK(!stat_parse(t, &st) && strlen(st.comm) == sizeof(st.comm) - 1,
		      "long comm: %s", err_text());
		free(t);
	}
}

/* Our own stat, with a name full of spaces and parentheses. */
static void test_stat_live(void)
{
	char old[17] = "";
	struct proc_stat st;
	size_t len;
	char *txt;

	unit_case();
	prctl(PR_GET_NAME, old);
	prctl(PR_SET_NAME, "a) b (c) d)");
	txt = proc_read_file("/proc/self/stat", &len);
	CHECK(txt && !proc_parse_stat(txt, len, &st), "live stat: %s", err_text());
	CHECK(st.pid == getpid() && st.ppid == getppid() && st.pgid == getpgrp() &&
	      st.sid == getsid(0), "live stat ids");
	CHECK(!strcmp(st.comm, "a) b (c) d)"), "live comm '%s'", st.comm);
	CHECK(st.state == 'R' && st.num_threads == 1, "live state %c", st.state);
	CHECK(st.start_code < st.end_code && st.arg_start < st.arg_end &&
	      st.env_start <= st.env_end, "live addresses");
	prctl(PR_SET_NAME, old);
	free(txt);
}

static void test_stat_malformed(void)
{
	static const char *const bad[] = {
		"", "1", "abc", "123 cat) R 1 2 3", "123 (cat R 1 2 3", ") 123 (", "123(cat) R",
		" 123 (cat) R", "0 (cat) R", "2147483648 (cat) R", "123 (cat)", "123 (cat)R 1",
		"123 (cat) ", "123 (cat) R 1 2 3 4 5",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct proc_stat st;

		unit_case();
		CHECK(stat_parse(bad[i], &st) == -1 && cr_err_set(), "bad stat '%s' accepted",
		      bad[i]);
	}
	/* Field damage in the real line. */
	{
		static const char *const repl[][2] = {
			{ " 10980 10980 ", " 10980x 10980 " },
			{ " 10980 10980 ", " - 10980 " },
			{ " 10980 10980 ", " -1 10980 " },		/* negative ppid */
			{ " 10980 10980 ", " 10980 2147483648 " },	/* pgid too large */
			{ " 8021 ", " 99999999999999999999999 " },	/* overflow */
			{ " 8021 ", " 18446744073709551616 " },
			{ " 8021 ", " -9223372036854775809 " },
			{ " 140724083482603 0\n", "\n" },		/* 50 fields */
			{ " 17 1 ", " 17 \n 1 " },			/* cut by a newline */
			{ " 17 1 ", " 17 1. " },
		};

		for (size_t i = 0; i < sizeof(repl) / sizeof(repl[0]); i++) {
			char t[1024];
			const char *at = strstr(stat_real, repl[i][0]);
			struct proc_stat st;

			snprintf(t, sizeof(t), "%.*s%s%s", (int)(at - stat_real), stat_real,
				 repl[i][1], at + strlen(repl[i][0]));
			unit_case();
			CHECK(stat_parse(t, &st) == -1, "damaged stat %zu accepted", i);
		}
	}
	/* Huge and negative values where the kernel puts them. */
	{
		char *t = stat_with("cat", "-2 -20");
		struct proc_stat st;

		unit_case();
		CHECK(!stat_parse(t, &st) && st.exit_signal == 17, "negative prio: %s",
		      err_text());
		free(t);
	}
	/* Every prefix fails or parses without reading past it. */
	unit_case();
	for (size_t l = 0; l < sizeof(stat_real); l++) {
		char *copy = malloc(l ? l : 1);
		struct proc_stat st;

		memcpy(copy, stat_real, l);
		CHECK(proc_parse_stat(copy, l, &st) == (l >= sizeof(stat_real) - 2 ? 0 : -1),
		      "stat prefix of %zu bytes", l);
		free(copy);
	}
}

/* ---- status ---- */

static const char status_real[] =
	"Name:\tcat\n"
	"Umask:\t0022\n"
	"State:\tR (running)\n"
	"Tgid:\t10413\n"
	"Ngid:\t0\n"
	"Pid:\t10413\n"
	"PPid:\t10410\n"
	"TracerPid:\t0\n"
	"Uid:\t0\t0\t0\t0\n"
	"Gid:\t0\t0\t0\t0\n"
	"FDSize:\t256\n"
	"Groups:\t \n"
	"NStgid:\t10413\n"
	"NSpid:\t10413\n"
	"NSpgid:\t10410\n"
	"NSsid:\t8021\n"
	"Kthread:\t0\n"
	"VmPeak:\t    3060 kB\n"
	"VmSize:\t    3060 kB\n"
	"VmLck:\t       0 kB\n"
	"VmPin:\t       0 kB\n"
	"VmHWM:\t    1672 kB\n"
	"VmRSS:\t    1672 kB\n"
	"RssAnon:\t     112 kB\n"
	"RssFile:\t    1560 kB\n"
	"RssShmem:\t       0 kB\n"
	"VmData:\t     360 kB\n"
	"VmStk:\t     132 kB\n"
	"VmExe:\t      20 kB\n"
	"VmLib:\t    1528 kB\n"
	"VmPTE:\t      44 kB\n"
	"VmSwap:\t       0 kB\n"
	"HugetlbPages:\t       0 kB\n"
	"CoreDumping:\t0\n"
	"THP_enabled:\t1\n"
	"untag_mask:\t0xffffffffffffffff\n"
	"Threads:\t1\n"
	"SigQ:\t0/96365\n"
	"SigPnd:\t0000000000000000\n"
	"ShdPnd:\t0000000000000000\n"
	"SigBlk:\t0000000000000000\n"
	"SigIgn:\t0000000000000000\n"
	"SigCgt:\t0000000000000000\n"
	"CapInh:\t0000000000000000\n"
	"CapPrm:\t000001fffeffffff\n"
	"CapEff:\t000001fffeffffff\n"
	"CapBnd:\t000001fffeffffff\n"
	"CapAmb:\t0000000000000000\n"
	"NoNewPrivs:\t0\n"
	"Seccomp:\t0\n"
	"Seccomp_filters:\t0\n"
	"Speculation_Store_Bypass:\tvulnerable\n"
	"SpeculationIndirectBranch:\talways enabled\n"
	"Cpus_allowed:\t3\n"
	"Cpus_allowed_list:\t0-1\n"
	"Mems_allowed:\t00000000,00000001\n"
	"Mems_allowed_list:\t0\n"
	"voluntary_ctxt_switches:\t0\n"
	"nonvoluntary_ctxt_switches:\t1\n";

static int status_parse(const char *txt, size_t len, struct proc_status *st)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	memcpy(copy, txt, len);
	rc = proc_parse_status(copy, len, st);
	free(copy);
	return rc;
}

/* status_real with the line starting with `key` replaced by `line` (or removed). */
static char *status_with(const char *key, const char *line)
{
	const char *at = strstr(status_real, key);
	const char *eol = strchr(at, '\n') + 1;
	char *out = malloc(sizeof(status_real) + 4096);

	sprintf(out, "%.*s%s%s", (int)(at - status_real), status_real, line ? line : "", eol);
	return out;
}

static void test_status(void)
{
	struct proc_status st;

	unit_case();
	CHECK(!status_parse(status_real, strlen(status_real), &st), "real status: %s",
	      err_text());
	CHECK(st.tgid == 10413 && st.ppid == 10410 && st.tracer_pid == 0 && st.state == 'R',
	      "ids/state");
	CHECK(st.umask == 022 && st.kthread == 0 && st.threads == 1 && st.nspid_levels == 1,
	      "umask %o kthread %d threads %d levels %d", st.umask, st.kthread, st.threads,
	      st.nspid_levels);
	CHECK(!st.uid[0] && !st.uid[3] && !st.gid[1] && st.nr_groups == 0, "creds");
	CHECK(st.cap_prm == 0x1fffeffffffULL && st.cap_eff == 0x1fffeffffffULL &&
	      st.cap_bnd == 0x1fffeffffffULL && !st.cap_amb && !st.cap_inh, "caps");
	CHECK(!st.no_new_privs && !st.seccomp, "nnp/seccomp");

	{
		char *t = status_with("Groups:", "Groups:\t4 24 27 30 46 100 118 4294967295 \n");
		char *u;

		unit_case();
		CHECK(!status_parse(t, strlen(t), &st) && st.nr_groups == 8 &&
		      st.groups[0] == 4 && st.groups[7] == 4294967295u, "groups: %s",
		      err_text());
		free(t);
		t = status_with("NSpid:", "NSpid:\t10413\t7\t1\n");
		unit_case();
		CHECK(!status_parse(t, strlen(t), &st) && st.nspid_levels == 3, "nspid levels %d",
		      st.nspid_levels);
		u = t;
		t = status_with("Uid:", "Uid:\t1000\t1001\t1002\t1003\n");
		free(u);
		unit_case();
		CHECK(!status_parse(t, strlen(t), &st) && st.uid[0] == 1000 && st.uid[1] == 1001 &&
		      st.uid[2] == 1002 && st.uid[3] == 1003, "uids");
		free(t);
		t = status_with("SigBlk:", "SigBlk:\tfffffffe7ffbfeff\n");
		unit_case();
		CHECK(!status_parse(t, strlen(t), &st) && st.sig_blk == 0xfffffffe7ffbfeffULL,
		      "sigblk");
		free(t);
		t = status_with("Umask:", NULL);
		unit_case();
		CHECK(!status_parse(t, strlen(t), &st) && st.umask == -1, "no Umask: -1");
		free(t);
		t = status_with("Kthread:", NULL);
		unit_case();
		CHECK(!status_parse(t, strlen(t), &st) && st.kthread == -1, "no Kthread: -1");
		free(t);
		t = status_with("Groups:", "Groups:\n");
		unit_case();
		CHECK(!status_parse(t, strlen(t), &st) && st.nr_groups == 0, "empty Groups");
		free(t);
	}
	/* This process. */
	{
		size_t len;
		char *txt = proc_read_file("/proc/self/status", &len);

		unit_case();
		CHECK(txt && !proc_parse_status(txt, len, &st), "live status: %s", err_text());
		CHECK(st.tgid == getpid() && st.ppid == getppid() && st.threads == 1 &&
		      st.uid[0] == getuid() && st.gid[0] == getgid(), "live status ids");
		CHECK(st.kthread == 0 || st.kthread == -1, "live kthread %d", st.kthread);
		free(txt);
	}
}

static void test_status_malformed(void)
{
	static const char *const repl[][2] = {
		{ "Tgid:", NULL },				/* no Tgid */
		{ "Tgid:", "Tgid:\t-5\n" },
		{ "Tgid:", "Tgid:\tabc\n" },
		{ "Tgid:", "Tgid:\t2147483648\n" },
		{ "Tgid:", "Tgid 5\n" },			/* no colon */
		{ "Uid:", "Uid:\t0\t0\t0\n" },
		{ "Uid:", "Uid:\t0\t0\t0\t4294967296\n" },
		{ "Gid:", "Gid:\t-1\t0\t0\t0\n" },
		{ "State:", "State:\n" },
		{ "State:", "State:\t\t\n" },
		{ "Umask:", "Umask:\t1000\n" },
		{ "Umask:", "Umask:\t9\n" },
		{ "SigBlk:", "SigBlk:\tzz\n" },
		{ "CapEff:", "CapEff:\t1ffffffffffffffff\n" },
		{ "Groups:", "Groups:\t1 2 x\n" },
		{ "Groups:", "Groups:\t4294967296\n" },
		{ "NSpid:", "NSpid:\t1 -\n" },
		{ "Threads:", "Threads:\n" },
		{ "Seccomp:", "Seccomp:\t-1\n" },
		{ "VmPeak:", "\n" },				/* an empty line */
	};

	for (size_t i = 0; i < sizeof(repl) / sizeof(repl[0]); i++) {
		char *t = status_with(repl[i][0], repl[i][1]);
		struct proc_status st;

		unit_case();
		CHECK(status_parse(t, strlen(t), &st) == -1 && cr_err_set(),
		      "bad status %zu ('%s') accepted", i, repl[i][1] ? repl[i][1] : "removed");
		free(t);
	}
	/* More groups than the struct holds. */
	{
		char line[8192] = "Groups:\t";
		char *t;
		struct proc_status st;

		for (int g = 0; g <= CR_GROUPS_MAX; g++)
			sprintf(line + strlen(line), "%d ", g);
		strcat(line, "\n");
		t = status_with("Groups:", line);
		unit_case();
		CHECK(status_parse(t, strlen(t), &st) == -1, "257 groups accepted");
		free(t);
	}
	/* Every prefix fails or parses without reading past it. */
	unit_case();
	for (size_t l = 0; l < sizeof(status_real); l += 3) {
		struct proc_status st;

		cr_err_reset();
		status_parse(status_real, l, &st);
	}
	unit_case();
	{
		struct proc_status st;

		CHECK(status_parse("", 0, &st) == -1, "empty status accepted");
	}
}

/* ---- fdinfo ---- */

static int fdinfo_parse(const char *txt, struct proc_fdinfo *fi)
{
	size_t len = strlen(txt);
	char *copy = malloc(len ? len : 1);
	int rc;

	memcpy(copy, txt, len);
	rc = proc_parse_fdinfo(copy, len, fi);
	free(copy);
	return rc;
}

static void test_fdinfo(void)
{
	static const struct {
		const char *txt;
		uint64_t pos;
		uint32_t flags;
		int mnt_id;
		uint64_t ino;
	} good[] = {
		{ "pos:\t100\nflags:\t02100000\nmnt_id:\t27\nino:\t861\n", 100, 02100000, 27, 861 },
		{ "pos:\t0\nflags:\t0102001\nmnt_id:\t27\nino:\t10985999\n", 0, 0102001, 27,
		  10985999 },
		{ "pos:\t0\nflags:\t04002\nmnt_id:\t17\nino:\t1038\neventfd-count:                5\n"
		  "eventfd-id: 1\neventfd-semaphore: 0\n", 0, 04002, 17, 1038 },
		{ "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\ntfd:        5 events:       19 "
		  "data:                0  pos:0 ino:40e sdev:10\n", 0, 02, 17, 1038 },
		{ "pos:\t0\nflags:\t00\nmnt_id:\t17\nino:\t1038\ninotify wd:1 ino:3c51a "
		  "sdev:fe00000 mask:100 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 "
		  "f_handle:1ac5030000000000\n", 0, 0, 17, 1038 },
		{ "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\nsigmask:\t0000000000000200\n", 0,
		  02, 17, 1038 },
		{ "pos:\t18446744073709551615\nflags:\t037777777777", UINT64_MAX, 0xffffffffu, 0,
		  0 },
		{ "flags: 1\npos: 2\n", 2, 1, 0, 0 },
	};
	static const char *const bad[] = {
		"", "\n", "flags:\t02\n", "pos:\t0\n", "pos:\t\nflags:\t02\n", "pos:\tx\nflags:\t0\n",
		"pos:\t0\nflags:\t9\n", "pos:\t0\nflags:\t040000000000\n",
		"pos:\t18446744073709551616\nflags:\t0\n", "pos:\t0\nflags:\t0\nmnt_id:\t2147483648\n",
		"pos:\t0\nflags:\t0\nmnt_id:\t-1\n", "pos:\t0\nflags:\t0\nino:\tabc\n",
		"pos:\nflags:\n",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct proc_fdinfo fi;

		unit_case();
		CHECK(!fdinfo_parse(good[i].txt, &fi), "fdinfo %zu: %s", i, err_text());
		CHECK(fi.pos == good[i].pos && fi.flags == good[i].flags &&
		      fi.mnt_id == good[i].mnt_id && fi.ino == good[i].ino,
		      "fdinfo %zu: pos %lu flags %o mnt %d ino %lu", i, (unsigned long)fi.pos,
		      fi.flags, fi.mnt_id, (unsigned long)fi.ino);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct proc_fdinfo fi;

		unit_case();
		CHECK(fdinfo_parse(bad[i], &fi) == -1 && cr_err_set(), "bad fdinfo %zu accepted",
		      i);
	}
	/* A live file at a known position. */
	{
		int fd = open("/proc/self/exe", O_RDONLY);
		struct proc_fdinfo fi;
		struct stat st;
		char name[64];
		size_t len;
		char *txt;

		unit_case();
		lseek(fd, 12345, SEEK_SET);
		fstat(fd, &st);
		snprintf(name, sizeof(name), "/proc/self/fdinfo/%d", fd);
		txt = proc_read_file(name, &len);
		CHECK(txt && !proc_parse_fdinfo(txt, len, &fi), "live fdinfo: %s", err_text());
		CHECK(fi.pos == 12345 && (fi.flags & O_ACCMODE) == O_RDONLY && fi.ino == st.st_ino &&
		      fi.mnt_id > 0, "live fdinfo values");
		free(txt);
		close(fd);
	}
}

/* ---- epoll targets ---- */

static void test_epoll(void)
{
	/* Captured from an epoll fd with two eventfds (EPOLLET, EPOLLONESHOT) on it. */
	static const char real[] =
		"pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\n"
		"tfd:        3 events: 80000019 data: ffffffffffffffff  pos:0 ino:40e sdev:10\n"
		"tfd:        4 events: 4000001c data:             1234  pos:0 ino:40e sdev:10\n";
	static const char *const bad[] = {
		"tfd:\n",
		"tfd: x events: 19 data: 0\n",
		"tfd: 2147483648 events: 19 data: 0\n",
		"tfd: 3 event: 19 data: 0\n",
		"tfd: 3 events: 100000000 data: 0\n",
		"tfd: 3 events: 19 dat: 0\n",
		"tfd: 3 events: 19 data:\n",
		"tfd: 3 events: 19 data: 10000000000000000\n",
		"tfd: 3 events: 19",
	};
	struct proc_epoll_target *t;
	size_t nr;
	char *copy;

	unit_case();
	copy = malloc(sizeof(real) - 1);
	memcpy(copy, real, sizeof(real) - 1);
	CHECK(!proc_parse_epoll(copy, sizeof(real) - 1, &t, &nr) && nr == 2, "real epoll: %s",
	      err_text());
	if (nr == 2) {
		CHECK(t[0].tfd == 3 && t[0].events == 0x80000019 && t[0].data == UINT64_MAX,
		      "epoll target 0");
		CHECK(t[1].tfd == 4 && t[1].events == 0x4000001c && t[1].data == 0x1234,
		      "epoll target 1");
	}
	free(t);
	/* Every prefix, without reading past it. */
	for (size_t l = 0; l < sizeof(real) - 1; l++) {
		cr_err_reset();
		if (!proc_parse_epoll(copy, l, &t, &nr))
			free(t);
	}
	free(copy);

	unit_case();
	CHECK(!proc_parse_epoll("pos:\t0\nflags:\t02\n", 17, &t, &nr) && nr == 0 && !t,
	      "epoll without targets");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unit_case();
		CHECK(proc_parse_epoll(bad[i], strlen(bad[i]), &t, &nr) == -1 && nr == 0,
		      "bad epoll line %zu accepted", i);
	}
}

/* ---- timers ---- */

/* /proc/PID/timers of a process with three timers, captured live. */
static const char timers_real[] =
	"ID: 2\n"
	"signal: 36/00000000deadbeef\n"
	"notify: signal/tid.25455\n"
	"ClockID: -6\n"
	"ID: 1\n"
	"signal: 10/00000000deadbeef\n"
	"notify: none/pid.25455\n"
	"ClockID: 0\n"
	"ID: 0\n"
	"signal: 10/00000000deadbeef\n"
	"notify: signal/pid.25455\n"
	"ClockID: 1\n";

static int timers_parse(const char *txt, size_t len, struct proc_timer **t, size_t *nr)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	memcpy(copy, txt, len);
	rc = proc_parse_timers(copy, len, t, nr);
	free(copy);
	return rc;
}

static void test_timers(void)
{
	struct proc_timer *t = NULL;
	size_t nr = 99;

	unit_case();
	CHECK(!timers_parse(timers_real, strlen(timers_real), &t, &nr) && nr == 3,
	      "real timers: %s", err_text());
	if (nr == 3) {
		CHECK(t[0].id == 2 && t[0].signo == 36 && t[0].sigev_value == 0xdeadbeef &&
		      t[0].notify == (0 | 4) && t[0].notify_pid == 25455 && t[0].clock_id == -6,
		      "timer 2");
		CHECK(t[1].id == 1 && t[1].signo == 10 && t[1].notify == 1 && t[1].clock_id == 0,
		      "timer 1");
		CHECK(t[2].id == 0 && t[2].notify == 0 && t[2].clock_id == 1, "timer 0");
	}
	free(t);
	unit_case();
	t = NULL;
	CHECK(!timers_parse("", 0, &t, &nr) && nr == 0, "no timers: %s", err_text());
	free(t);
	unit_case();
	t = NULL;
	{
		const char *th = "ID: 7\nsignal: 0/0000000000000000\nnotify: thread/pid.42\n"
				 "ClockID: 0\n";

		CHECK(!timers_parse(th, strlen(th), &t, &nr) && nr == 1 && t[0].notify == 2 &&
		      t[0].notify_pid == 42 && t[0].id == 7, "SIGEV_THREAD timer: %s", err_text());
	}
	free(t);
	unit_case();
	t = NULL;
	CHECK(!timers_parse(timers_real, strlen(timers_real) - 1, &t, &nr) && nr == 3,
	      "no final newline: %s", err_text());
	free(t);

	{
		static const char *const bad[] = {
			"ID: 1\n",						/* incomplete */
			"signal: 10/0\n",					/* before ID */
			"ID: 1\nsignal: 10/0\nnotify: signal/pid.1\n",
			"ID: 1\nsignal: 10/0\nnotify: signal/pid.1\nClockID: 0\nID: 2\n",
			"ID: -1\nsignal: 10/0\nnotify: signal/pid.1\nClockID: 0\n",
			"ID: 2147483648\nsignal: 10/0\nnotify: signal/pid.1\nClockID: 0\n",
			"ID: 1\nsignal: 65/0\nnotify: signal/pid.1\nClockID: 0\n",
			"ID: 1\nsignal: 10\nnotify: signal/pid.1\nClockID: 0\n",
			"ID: 1\nsignal: 10/zz\nnotify: signal/pid.1\nClockID: 0\n",
			"ID: 1\nsignal: 10/0\nnotify: bogus/pid.1\nClockID: 0\n",
			"ID: 1\nsignal: 10/0\nnotify: signal/\nClockID: 0\n",
			"ID: 1\nsignal: 10/0\nnotify: signal/xid.1\nClockID: 0\n",
			"ID: 1\nsignal: 10/0\nnotify: signal/pid.\nClockID: 0\n",
			"ID: 1\nsignal: 10/0\nnotify: signal/pid.2147483648\nClockID: 0\n",
			"ID: 1\nsignal: 10/0\nnotify: signal/pid.1\nClockID: x\n",
			"ID: 1\nsignal: 10/0\nnotify: signal/pid.1\nClockID: 2147483648\n",
			"ID: 1\nsignal: 10/0\nnotify: signal/pid.1\nClockID: 0\nExtra: 1\n",
			"ID: 1\nsignal: 10/0\nnotify: signal/pid.1\nClockID: 0\n\n",
			"ID:1\nsignal: 10/0\nnotify: signal/pid.1\nClockID: 0\n",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			unit_case();
			t = NULL;
			CHECK(timers_parse(bad[i], strlen(bad[i]), &t, &nr) == -1 && nr == 0 &&
			      cr_err_set(), "bad timers %zu accepted", i);
		}
	}
	/* Every prefix fails or parses without reading past it. */
	unit_case();
	for (size_t l = 0; l <= strlen(timers_real); l++) {
		t = NULL;
		cr_err_reset();
		if (!timers_parse(timers_real, l, &t, &nr))
			free(t);
	}
}

static void test_event_fdinfo(void)
{
	static const char eventfd[] = "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\n"
				      "eventfd-count:                5\neventfd-id: 1\n"
				      "eventfd-semaphore: 1\n";
	static const char timer[] = "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\n"
				    "clockid: 0\nticks: 3\nsettime flags: 03\n"
				    "it_value: (3599, 28924985)\nit_interval: (1, 500)\n";
	struct proc_timerfd t;
	uint64_t v = 0;

	unit_case();
	CHECK(proc_fdinfo_number(eventfd, sizeof(eventfd) - 1, "eventfd-count", 16, &v) == 1 &&
	      v == 5, "eventfd count %llu", (unsigned long long)v);
	CHECK(proc_fdinfo_number(eventfd, sizeof(eventfd) - 1, "eventfd-semaphore", 10, &v) == 1 &&
	      v == 1, "eventfd semaphore");
	CHECK(proc_fdinfo_number(eventfd, sizeof(eventfd) - 1, "sigmask", 16, &v) == 0,
	      "a line that is not there");
	CHECK(proc_fdinfo_number("eventfd-count: zz\n", 18, "eventfd-count", 16, &v) == -1,
	      "a malformed count");
	CHECK(proc_fdinfo_number("sigmask:\t0000000000000800\n", 26, "sigmask", 16, &v) == 1 &&
	      v == 0x800, "sigmask 0x%llx", (unsigned long long)v);
	unit_case();
	CHECK(!proc_parse_timerfd(timer, sizeof(timer) - 1, &t), "timerfd: %s", err_text());
	CHECK(t.clockid == 0 && t.ticks == 3 && t.flags == 3 &&
	      t.value_ns == 3599028924985ULL && t.interval_ns == 1000000500ULL,
	      "timerfd fields: %d %llu %u %llu %llu", t.clockid, (unsigned long long)t.ticks,
	      t.flags, (unsigned long long)t.value_ns, (unsigned long long)t.interval_ns);
	unit_case();
	CHECK(proc_parse_timerfd(timer, 60, &t) == -1 && err_has("fields missing"),
	      "a cut timerfd fdinfo: %s", err_text());
	unit_case();
	CHECK(proc_parse_timerfd("clockid: 0\nticks: 0\nsettime flags: 0\n"
				 "it_value: (1, 1000000000)\nit_interval: (0, 0)\n", 79, &t) == -1,
	      "nanoseconds out of range accepted");
}

static void test_pidfd_inotify_fdinfo(void)
{
	static const char inotify[] =
		"pos:\t0\nflags:\t04000\nmnt_id:\t17\nino:\t1038\n"
		"inotify wd:4 ino:a82583 sdev:fe00000 mask:4 ignored_mask:0 fhandle-bytes:8 "
		"fhandle-type:1 f_handle:8325a8003ed636dd\n"
		"inotify wd:1 ino:3c51a sdev:fe00001 mask:80000300 ignored_mask:0 "
		"fhandle-bytes:8 fhandle-type:1 f_handle:1ac5030000000000\n";
	static const char mounts[] =
		"22 1 254:0 /srv /srv rw - ext4 /dev/vda rw\n"
		"23 1 254:0 / /mnt/with\\040space rw - ext4 /dev/vda rw\n"
		"24 1 0:5 / /dev rw - devtmpfs udev rw\n";
	struct proc_inotify_watch *w;
	char mnt[64];
	size_t nr;
	int pid = 0;

	unit_case();
	CHECK(!proc_parse_pidfd("pos:\t0\nPid:\t324\nNSpid:\t324\n", 29, &pid) && pid == 324,
	      "pidfd pid %d: %s", pid, err_text());
	CHECK(!proc_parse_pidfd("Pid:\t-1\nNSpid:\t-1\n", 18, &pid) && pid == -1,
	      "a reaped process's pidfd: %d", pid);
	CHECK(proc_parse_pidfd("Pid:\t-7\n", 8, &pid) == -1, "pid -7 accepted");
	CHECK(proc_parse_pidfd("Pid:\t12x\n", 9, &pid) == -1, "a malformed pid accepted");
	unit_case();
	CHECK(proc_parse_pidfd("pos:\t0\n", 7, &pid) == -1 && err_has("no 'Pid'"),
	      "no Pid line: %s", err_text());
	unit_case();
	CHECK(!proc_parse_inotify(inotify, sizeof(inotify) - 1, &w, &nr) && nr == 2,
	      "inotify: %s", err_text());
	CHECK(w[0].wd == 4 && w[0].ino == 0xa82583 && w[0].sdev == 0xfe00000 && w[0].mask == 4 &&
	      w[0].handle_type == 1 && w[0].handle_bytes == 8 && w[0].handle[0] == 0x83 &&
	      w[0].handle[7] == 0xdd, "first watch");
	CHECK(w[1].wd == 1 && w[1].mask == 0x80000300 && w[1].sdev == 0xfe00001, "second watch");
	free(w);
	CHECK(proc_parse_inotify("inotify wd:1 ino:1 sdev:0 mask:2 ignored_mask:0 "
				 "fhandle-bytes:8 fhandle-type:1 f_handle:1ac5\n", 89, &w, &nr) == -1,
	      "a cut handle accepted");
	CHECK(proc_parse_inotify("inotify wd:1 ino:1 sdev:0 mask:2 ignored_mask:0 "
				 "fhandle-bytes:ff fhandle-type:1 f_handle:00\n", 88, &w, &nr) == -1,
	      "a handle longer than the buffer accepted");
	CHECK(proc_parse_inotify("inotify wd:0 ino:1 sdev:0 mask:2\n", 32, &w, &nr) == -1,
	      "wd 0 accepted");
	unit_case();
	CHECK(proc_mount_of_dev(mounts, sizeof(mounts) - 1, 254, 0, mnt, sizeof(mnt)) == 1 &&
	      !strcmp(mnt, "/mnt/with space"), "mount of 254:0: %s", mnt);
	CHECK(proc_mount_of_dev(mounts, sizeof(mounts) - 1, 0, 5, mnt, sizeof(mnt)) == 1 &&
	      !strcmp(mnt, "/dev"), "mount of 0:5: %s", mnt);
	CHECK(proc_mount_of_dev(mounts, sizeof(mounts) - 1, 8, 1, mnt, sizeof(mnt)) == 0,
	      "a device with no mount");
	CHECK(proc_mount_of_dev("22 1 254:0\n", 11, 254, 0, mnt, sizeof(mnt)) == -1,
	      "a cut mountinfo line accepted");
	CHECK(proc_mount_of_dev(mounts, sizeof(mounts) - 1, 254, 0, mnt, 8) == -1,
	      "a mount point longer than the buffer accepted");
}

int main(void)
{
	test_event_fdinfo();
	test_pidfd_inotify_fdinfo();
	test_smaps_fixture();
	test_maps_fixture();
	test_smaps_unknown_flags();
	test_smaps_live();
	test_smaps_malformed();
	test_stat_real();
	test_stat_comm();
	test_stat_live();
	test_stat_malformed();
	test_status();
	test_status_malformed();
	test_fdinfo();
	test_epoll();
	test_timers();
	return unit_done("unit_proc");
}
