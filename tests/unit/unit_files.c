/* Unit tests of the fd table's pure parts: --inherit-fd arguments and the checks every
 * kind applies to a file table read from an image. */
#include <fcntl.h>
#include <stdlib.h>

#include "cryo.h"
#include "files.h"
#include "unit.h"

static void test_inherit(void)
{
	static const struct { const char *arg; int fd; const char *what; } good[] = {
		{ "fd[0]:pipe:[123]", 0, "pipe:[123]" },
		{ "fd[17]:pipe:[4294967296]", 17, "pipe:[4294967296]" },
		{ "fd[3]:x", 3, "x" },
	};
	static const char *const bad[] = {
		"", "fd", "fd[", "fd[]:pipe:[1]", "fd[-1]:pipe:[1]", "fd[1]pipe:[1]", "fd[1]:",
		"fd[99999999999]:pipe:[1]", "fd[1x]:pipe:[1]", "3:pipe:[1]",
		"fd[1]:0123456789012345678901234567890123456789012345678901234567890123",
	};
	struct cryo_inherit_fd in;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		unit_case();
		CHECK(!cryo_parse_inherit_fd(good[i].arg, &in), "'%s' refused: %s", good[i].arg,
		      err_text());
		CHECK(in.fd == good[i].fd && !strcmp(in.what, good[i].what),
		      "'%s' read as fd %d '%s'", good[i].arg, in.fd, in.what);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unit_case();
		CHECK(cryo_parse_inherit_fd(bad[i], &in) == -1, "'%s' accepted", bad[i]);
		CHECK(err_has("--inherit-fd"), "'%s': error '%s'", bad[i], err_text());
	}
}

/* One entry of each kind, sound; each case breaks one thing. */
struct table {
	FileTable ft;
	FileEntry e[5], *ep[5];
	PathFile path, ghost_path;
	GhostFile ghost;
	PageRun run, *runs[1];
	MemfdFile memfd;
	EpollFile epoll;
	PipeFile pipe;
	uint8_t data[16];
	uint32_t packets[2];
};

static void sound(struct table *t)
{
	memset(t, 0, sizeof(*t));
	file_table__init(&t->ft);
	for (int i = 0; i < 5; i++) {
		file_entry__init(&t->e[i]);
		t->e[i].id = i + 1;
		t->ep[i] = &t->e[i];
	}
	path_file__init(&t->path);
	t->path.path = "/etc/hostname";
	t->e[0].kind = FILE_KIND__FILE_REG;
	t->e[0].path = &t->path;
	epoll_file__init(&t->epoll);
	t->e[1].kind = FILE_KIND__FILE_EPOLL;
	t->e[1].epoll = &t->epoll;
	pipe_file__init(&t->pipe);
	t->pipe.pipe_id = 77;
	t->pipe.capacity = 4096;
	t->pipe.has_data = 1;
	t->pipe.data.data = t->data;
	t->pipe.data.len = sizeof(t->data);
	t->packets[0] = 6;
	t->packets[1] = 10;
	t->pipe.packets = t->packets;
	t->pipe.n_packets = 2;
	t->e[2].kind = FILE_KIND__FILE_PIPE;
	t->e[2].pipe = &t->pipe;
	/* A deleted file of 3 pages with data in its last two. */
	path_file__init(&t->ghost_path);
	t->ghost_path.path = "/tmp/gone";
	t->ghost_path.mode = S_IFREG | 0640;
	t->ghost_path.size = 3 * 4096 - 100;
	ghost_file__init(&t->ghost);
	t->ghost.data_file = "ghost-4.img";
	t->ghost.has_chunk_size = 1;
	t->ghost.chunk_size = 1 << 20;
	page_run__init(&t->run);
	t->run.vaddr = 4096;
	t->run.nr_pages = 2;
	t->runs[0] = &t->run;
	t->ghost.runs = t->runs;
	t->ghost.n_runs = 1;
	t->ghost_path.ghost = &t->ghost;
	t->e[3].kind = FILE_KIND__FILE_REG;
	t->e[3].path = &t->ghost_path;
	memfd_file__init(&t->memfd);
	t->memfd.name = "buffer";
	t->memfd.shmem_id = 1;
	t->memfd.seals = F_SEAL_SEAL | F_SEAL_WRITE;
	t->memfd.mode = 0777;
	t->e[4].kind = FILE_KIND__FILE_MEMFD;
	t->e[4].memfd = &t->memfd;
	t->ft.files = t->ep;
	t->ft.n_files = 5;
}

static void b_id(struct table *t) { t->e[1].id = 7; }
static void b_kind(struct table *t) { t->e[1].kind = 99; }
static void b_no_path(struct table *t) { t->e[0].path = NULL; }
static void b_relative(struct table *t) { t->path.path = "etc/hostname"; }
static void b_no_watch_list(struct table *t) { t->e[1].epoll = NULL; }
static void b_no_pipe(struct table *t) { t->e[2].pipe = NULL; }
static void b_capacity0(struct table *t) { t->pipe.capacity = 0; }
static void b_capacity_huge(struct table *t) { t->pipe.capacity = 0x80000000u; }
static void b_overfull(struct table *t) { t->pipe.capacity = 8; t->pipe.n_packets = 0; }
static void b_packets(struct table *t) { t->packets[1] = 11; }
static void b_fifo_no_path(struct table *t) { t->e[2].kind = FILE_KIND__FILE_FIFO; }
static void b_pipe_with_path(struct table *t) { t->pipe.fifo_path = "/tmp/f"; }
static void b_fifo_relative(struct table *t)
{
	t->e[2].kind = FILE_KIND__FILE_FIFO;
	t->pipe.fifo_path = "tmp/f";
}

static void b_ghost_dir(struct table *t) { t->ghost_path.mode = S_IFDIR | 0755; }
static void b_ghost_later(struct table *t) { t->ghost.same_as = 5; }
static void b_ghost_self(struct table *t) { t->ghost.same_as = 4; }
static void b_ghost_data(struct table *t) { t->ghost.data_file = "../x.img"; }
static void b_ghost_no_data(struct table *t) { t->ghost.data_file = NULL; }
static void b_ghost_past_end(struct table *t) { t->run.nr_pages = 3; }
static void b_ghost_unaligned(struct table *t) { t->run.vaddr = 100; }
static void b_ghost_huge_run(struct table *t) { t->run.nr_pages = 1ULL << 62; }
static void b_memfd_none(struct table *t) { t->e[4].memfd = NULL; }
static void b_memfd_no_object(struct table *t) { t->memfd.shmem_id = 0; }
static void b_memfd_seals(struct table *t) { t->memfd.seals = 0x100; }
static void b_memfd_mode(struct table *t) { t->memfd.mode = 010000; }
static void b_memfd_name(struct table *t)
{
	static char name[300];

	memset(name, 'x', sizeof(name) - 1);
	t->memfd.name = name;
}

static const struct {
	const char *what;
	void (*fn)(struct table *t);
	const char *err;
} table_cases[] = {
	{ "deleted directory", b_ghost_dir, "not a regular file" },
	{ "deleted file naming a later entry", b_ghost_later, "names a later entry" },
	{ "deleted file naming itself", b_ghost_self, "names a later entry" },
	{ "deleted file's data outside the image", b_ghost_data, "no valid data file" },
	{ "deleted file without data file", b_ghost_no_data, "no valid data file" },
	{ "deleted file's run past its end", b_ghost_past_end, "invalid data run" },
	{ "deleted file's run unaligned", b_ghost_unaligned, "invalid data run" },
	{ "deleted file's run huge", b_ghost_huge_run, "invalid data run" },
	{ "memfd without its submessage", b_memfd_none, "memfd file 5" },
	{ "memfd without contents", b_memfd_no_object, "memfd file 5" },
	{ "memfd with unknown seals", b_memfd_seals, "invalid seals" },
	{ "memfd with a file type in its mode", b_memfd_mode, "invalid seals, mode" },
	{ "memfd with a long name", b_memfd_name, "no valid name" },
	{ "id out of order", b_id, "has id 7" },
	{ "unknown kind", b_kind, "does not know (99)" },
	{ "path file without its path", b_no_path, "no absolute path" },
	{ "relative path", b_relative, "no absolute path" },
	{ "epoll without its watch list", b_no_watch_list, "no watch list" },
	{ "pipe without its submessage", b_no_pipe, "pipe file 3 is invalid" },
	{ "capacity 0", b_capacity0, "pipe file 3 is invalid" },
	{ "capacity 2 GiB", b_capacity_huge, "pipe file 3 is invalid" },
	{ "more data than capacity", b_overfull, "more than its capacity" },
	{ "packets not adding up", b_packets, "do not add up" },
	{ "FIFO without a path", b_fifo_no_path, "wrong FIFO path" },
	{ "anonymous pipe with a path", b_pipe_with_path, "wrong FIFO path" },
	{ "FIFO with a relative path", b_fifo_relative, "wrong FIFO path" },
};

static void test_table(void)
{
	struct table t;

	unit_case();
	sound(&t);
	CHECK(!files_check_table(&t.ft), "a sound table refused: %s", err_text());
	for (size_t i = 0; i < sizeof(table_cases) / sizeof(table_cases[0]); i++) {
		unit_case();
		sound(&t);
		table_cases[i].fn(&t);
		CHECK(files_check_table(&t.ft) == -1, "%s: accepted", table_cases[i].what);
		CHECK(err_has(table_cases[i].err), "%s: error '%s', want '%s'",
		      table_cases[i].what, err_text(), table_cases[i].err);
	}
}

static void test_size(void)
{
	static const struct { const char *arg; unsigned long long v; } good[] = {
		{ "0", 0 }, { "4096", 4096 }, { "1K", 1024 }, { "1M", 1 << 20 },
		{ "64m", 64ULL << 20 }, { "2G", 2ULL << 30 },
		{ "17179869183G", 17179869183ULL << 30 },
	};
	static const char *const bad[] = {
		"", "M", "-1", "1T", "1MB", " 1", "1 ", "17179869184G", "99999999999999999999",
	};
	unsigned long long v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		unit_case();
		CHECK(!cryo_parse_size(good[i].arg, &v) && v == good[i].v, "'%s': %s, %llu",
		      good[i].arg, err_text(), v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unit_case();
		CHECK(cryo_parse_size(bad[i], &v) == -1, "'%s' accepted", bad[i]);
	}
}

int main(void)
{
	test_inherit();
	test_size();
	test_table();
	return unit_done("unit_files");
}
