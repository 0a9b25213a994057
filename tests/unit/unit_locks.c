/* Unit tests of file locks' pure parts: lock lines of /proc/locks and fdinfo, what an
 * image may say of a file's and a process's locks. */
#include <fcntl.h>
#include <stdlib.h>

#include "file_locks.h"
#include "unit.h"

static void test_parse_good(void)
{
	static const struct {
		const char *line;
		int kind, pid;
		bool waiter, write, advisory;
		uint32_t maj, min;
		uint64_t ino, start, end;
	} good[] = {
		{ "1: FLOCK  ADVISORY  WRITE 1089 fe:00:10954496 0 EOF", LC_FLOCK, 1089, false,
		  true, true, 0xfe, 0, 10954496, 0, LOCK_TO_EOF },
		{ "\t2: POSIX  ADVISORY  READ 7 08:12:5 20 24", LC_POSIX, 7, false, false, true, 8,
		  0x12, 5, 20, 24 },
		{ "3: OFDLCK ADVISORY  WRITE -1 fe:00:10954498 100 EOF\n", LC_OFD, -1, false, true,
		  true, 0xfe, 0, 10954498, 100, LOCK_TO_EOF },
		{ "4: -> FLOCK  ADVISORY  WRITE 1136 fe:00:10954496 0 EOF", LC_FLOCK, 1136, true,
		  true, true, 0xfe, 0, 10954496, 0, LOCK_TO_EOF },
		{ "4:      -> POSIX  ADVISORY  WRITE 9 fe:00:1 0 9", LC_POSIX, 9, true, true, true,
		  0xfe, 0, 1, 0, 9 },
		{ "5: LEASE  ACTIVE    READ 3 fe:00:77 0 EOF", LC_LEASE, 3, false, false, false,
		  0xfe, 0, 77, 0, LOCK_TO_EOF },
		{ "6: POSIX  MANDATORY READ 3 fe:00:77 0 EOF", LC_POSIX, 3, false, false, false,
		  0xfe, 0, 77, 0, LOCK_TO_EOF },
		{ "7: FLOCK  ADVISORY  READ 0 <none>:0 0 EOF", LC_FLOCK, 0, false, false, true, 0, 0,
		  0, 0, LOCK_TO_EOF },
		{ "8: POSIX  ADVISORY  WRITE 1 fe:00:1 9223372036854775806 9223372036854775807",
		  LC_POSIX, 1, false, true, true, 0xfe, 0, 1, 9223372036854775806ULL,
		  9223372036854775807ULL },
	};
	struct proc_lock l;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		unit_case();
		CHECK(!lock_parse_line(good[i].line, strlen(good[i].line), &l), "'%s' refused: %s",
		      good[i].line, err_text());
		CHECK(l.kind == good[i].kind && l.pid == good[i].pid && l.waiter == good[i].waiter &&
		      l.write == good[i].write && l.advisory == good[i].advisory &&
		      l.dev_major == good[i].maj && l.dev_minor == good[i].min &&
		      l.ino == good[i].ino && l.start == good[i].start && l.end == good[i].end,
		      "'%s' read wrong", good[i].line);
	}
}

static void test_parse_bad(void)
{
	static const char *const bad[] = {
		"", "1:", "1: FLOCK", "1: FLOCK  ADVISORY  WRITE 1089 fe:00:10954496 0",
		"1: FLOCK  ADVISORY  WRITE 1089 fe:00:10954496 0 EOF extra",
		"1: BLOCK  ADVISORY  WRITE 1089 fe:00:1 0 EOF",
		"1: FLOCK  ADVISORY  WRIT 1089 fe:00:1 0 EOF",
		"1: FLOCK  ADVISORY  WRITE x fe:00:1 0 EOF",
		"1: FLOCK  ADVISORY  WRITE -2 fe:00:1 0 EOF",
		"1: FLOCK  ADVISORY  WRITE 1 fe:00 0 EOF",
		"1: FLOCK  ADVISORY  WRITE 1 fe:-1:1 0 EOF",
		"1: FLOCK  ADVISORY  WRITE 1 fg:00:1 0 EOF",
		"1: FLOCK  ADVISORY  WRITE 1 fe:00:1x 0 EOF",
		"1: FLOCK  ADVISORY  WRITE 1 fe:00:1 -1 EOF",
		"1: POSIX  ADVISORY  WRITE 1 fe:00:1 10 9",
		"1: POSIX  ADVISORY  WRITE 1 fe:00:1 0 9223372036854775808",
		"1: POSIX  ADVISORY  WRITE 1 100000000:00:1 0 EOF",
		"x: POSIX  ADVISORY  WRITE 1 fe:00:1 0 EOF",
		"1 POSIX  ADVISORY  WRITE 1 fe:00:1 0 EOF",
		"1: -> -> POSIX  ADVISORY  WRITE 1 fe:00:1 0 EOF",
		"1: POSIX ADVISORY WRITE 1 fe:00:1 0 EOF 1 2 3 4 5",
	};
	char longline[400];
	struct proc_lock l;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unit_case();
		CHECK(lock_parse_line(bad[i], strlen(bad[i]), &l) == -1, "'%s' accepted", bad[i]);
	}
	unit_case();
	memset(longline, ' ', sizeof(longline));
	CHECK(lock_parse_line(longline, sizeof(longline), &l) == -1, "a long line accepted");
	unit_case();
	CHECK(lock_parse_line("1: FLOCK\0 ADVISORY WRITE 1 fe:00:1 0 EOF", 40, &l) == -1,
	      "a line with a NUL accepted");
}

static void test_to_pb(void)
{
	struct proc_lock l;
	FileLock fl;

	unit_case();
	lock_parse_line("1: POSIX  ADVISORY  WRITE 7 08:12:5 20 24", 41, &l);
	CHECK(!lock_to_pb(&l, &fl) && fl.kind == FILE_LOCK_KIND__LOCK_POSIX && fl.write &&
	      fl.start == 20 && fl.len == 5, "POSIX [20, 24] read wrong");
	unit_case();
	lock_parse_line("1: OFDLCK ADVISORY  READ -1 08:12:5 100 EOF", 43, &l);
	CHECK(!lock_to_pb(&l, &fl) && fl.kind == FILE_LOCK_KIND__LOCK_OFD && !fl.write &&
	      fl.start == 100 && fl.len == 0, "OFD [100, EOF] read wrong");
	unit_case();
	lock_parse_line("1: LEASE  ACTIVE    READ 3 fe:00:77 0 EOF", 40, &l);
	CHECK(lock_to_pb(&l, &fl) == -1, "a lease taken");
	unit_case();
	lock_parse_line("1: FLOCK  ADVISORY  WRITE 3 fe:00:77 0 EOF", 41, &l);
	l.start = 1;
	CHECK(lock_to_pb(&l, &fl) == -1, "a flock with a range taken");
}

/* A regular file opened read-write with a flock and an OFD lock; a process holding
 * POSIX locks through its fd 3 of it. */
struct image {
	FileTable ft;
	FileEntry e, *ep;
	PathFile path;
	FileLock fl[2], *flp[2], pl[2], *plp[2];
	Core core;
	Fd fd, *fdp;
};

static void sound(struct image *m)
{
	memset(m, 0, sizeof(*m));
	file_table__init(&m->ft);
	file_entry__init(&m->e);
	path_file__init(&m->path);
	m->path.path = "/tmp/x";
	m->e.id = 1;
	m->e.kind = FILE_KIND__FILE_REG;
	m->e.flags = O_RDWR;
	m->e.path = &m->path;
	m->ep = &m->e;
	m->ft.files = &m->ep;
	m->ft.n_files = 1;
	for (int i = 0; i < 2; i++) {
		file_lock__init(&m->fl[i]);
		file_lock__init(&m->pl[i]);
		m->flp[i] = &m->fl[i];
		m->plp[i] = &m->pl[i];
		m->pl[i].kind = FILE_LOCK_KIND__LOCK_POSIX;
		m->pl[i].has_fd = 1;
		m->pl[i].fd = 3;
	}
	m->fl[0].kind = FILE_LOCK_KIND__LOCK_FLOCK;
	m->fl[0].write = 1;
	m->fl[1].kind = FILE_LOCK_KIND__LOCK_OFD;
	m->fl[1].start = 10;
	m->fl[1].len = 5;
	m->e.locks = m->flp;
	m->e.n_locks = 2;
	m->pl[0].write = 1;
	m->pl[0].len = 10;
	m->pl[1].start = 20;
	core__init(&m->core);
	fd__init(&m->fd);
	m->fd.fd = 3;
	m->fd.file_id = 1;
	m->fdp = &m->fd;
	m->core.pid = 42;
	m->core.fds = &m->fdp;
	m->core.n_fds = 1;
	m->core.posix_locks = m->plp;
	m->core.n_posix_locks = 2;
}

static void b_two_flocks(struct image *m) { m->fl[1] = m->fl[0]; }
static void b_flock_range(struct image *m) { m->fl[0].len = 1; }
static void b_posix_in_file(struct image *m) { m->fl[1].kind = FILE_LOCK_KIND__LOCK_POSIX; }
static void b_kind(struct image *m) { m->fl[1].kind = 9; }
static void b_overflow(struct image *m) { m->fl[1].start = INT64_MAX; }
static void b_read_only(struct image *m) { m->e.flags = O_RDONLY; m->fl[1].write = 1; }
static void b_write_only(struct image *m) { m->e.flags = O_WRONLY; }
static void b_pipe(struct image *m) { m->e.kind = FILE_KIND__FILE_PIPE; }
static void b_own_proc(struct image *m) { m->path.in_own_proc = 1; }
static void b_fd_in_file(struct image *m) { m->fl[1].has_fd = 1; }
static void b_no_fd(struct image *m) { m->pl[1].has_fd = 0; }
static void b_other_fd(struct image *m) { m->pl[1].fd = 4; }
static void b_ofd_in_core(struct image *m) { m->pl[0].kind = FILE_LOCK_KIND__LOCK_OFD; }
static void b_huge_len(struct image *m) { m->pl[0].len = UINT64_MAX; }
static void b_dir(struct image *m) { m->e.kind = FILE_KIND__FILE_DIR; m->e.n_locks = 1; }

static const struct {
	const char *what;
	void (*fn)(struct image *m);
	bool core;		/* broken for locks_check_core, else for locks_check_entry */
	const char *err;
} image_cases[] = {
	{ "two flock locks", b_two_flocks, false, "bad flock lock" },
	{ "flock with a range", b_flock_range, false, "bad flock lock" },
	{ "POSIX lock in a file", b_posix_in_file, false, "bad lock (kind 2)" },
	{ "unknown kind", b_kind, false, "bad lock (kind 9)" },
	{ "range past the largest offset", b_overflow, false, "bad lock" },
	{ "OFD write lock, read-only", b_read_only, false, "open mode cannot take" },
	{ "OFD read lock, write-only", b_write_only, false, "open mode cannot take" },
	{ "locks on a pipe", b_pipe, false, "not a regular file" },
	{ "locks under its /proc", b_own_proc, false, "/proc" },
	{ "fd in a file's lock", b_fd_in_file, false, "naming an fd" },
	{ "POSIX lock without an fd", b_no_fd, true, "no regular file of it" },
	{ "POSIX lock through an fd it lacks", b_other_fd, true, "fd 4" },
	{ "OFD lock in a process", b_ofd_in_core, true, "bad POSIX lock" },
	{ "POSIX length beyond any offset", b_huge_len, true, "bad POSIX lock" },
	{ "POSIX read lock, write-only", b_write_only, true, "not open for it" },
	{ "POSIX lock through a directory", b_dir, true, "no regular file" },
};

static void test_image(void)
{
	struct image m;

	unit_case();
	sound(&m);
	CHECK(!locks_check_entry(&m.e) && !locks_check_core(&m.core, &m.ft),
	      "sound locks refused: %s", err_text());
	unit_case();
	sound(&m);
	b_dir(&m);
	CHECK(!locks_check_entry(&m.e), "a flock on a directory refused: %s", err_text());
	for (size_t i = 0; i < sizeof(image_cases) / sizeof(image_cases[0]); i++) {
		int rc;

		unit_case();
		sound(&m);
		image_cases[i].fn(&m);
		rc = image_cases[i].core ? locks_check_core(&m.core, &m.ft) :
					   locks_check_entry(&m.e);
		CHECK(rc == -1, "%s: accepted", image_cases[i].what);
		CHECK(err_has(image_cases[i].err), "%s: error '%s', want '%s'",
		      image_cases[i].what, err_text(), image_cases[i].err);
	}
}

int main(void)
{
	test_parse_good();
	test_parse_bad();
	test_to_pb();
	test_image();
	return unit_done("unit_locks");
}
