/* Unit tests of the image stream (src/stream.h): a stream written into a memfd and
 * read back; cut, flipped and malformed streams refused with the right line; and an
 * image written as a stream read back as an in-memory image directory. */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crc32c.h"
#include "image.h"
#include "page_server.h"
#include "stream.h"
#include "unit.h"

struct got {
	char names[4][64];
	size_t sizes[4];
	int nr, open_now;
	uint32_t sum;
};

static void *g_open(void *arg, const char *name)
{
	struct got *g = arg;

	if (g->nr == 4)
		return NULL;
	snprintf(g->names[g->nr], sizeof(g->names[0]), "%s", name);
	g->open_now = 1;
	return &g->sizes[g->nr++];
}

static int g_write(void *arg, void *file, const void *buf, size_t len)
{
	struct got *g = arg;

	*(size_t *)file += len;
	g->sum = crc32c(g->sum, buf, len);
	return 0;
}

static int g_close(void *arg, void *file, uint64_t size, uint32_t crc)
{
	(void)crc;
	((struct got *)arg)->open_now = 0;
	return *(size_t *)file == size ? 0 : -1;
}

static void g_drop(void *arg, void *file)
{
	(void)file;
	((struct got *)arg)->open_now = 0;
}

static uint8_t *big;
#define BIG (STREAM_MAX_DATA * 2 + 4321)

/* A stream of two files (one of several data records), in a memfd. */
static int make_stream(bool with_end)
{
	struct stream_out s;
	int fd = memfd_create("unit-stream", 0);

	if (stream_out_start(&s, fd, false, "unit") || stream_file_begin(&s, "a.img") ||
	    stream_file_data(&s, "hello", 5) || stream_file_end(&s, 5, 0) ||
	    stream_file_begin(&s, "pages-1.img") || stream_file_data(&s, big, BIG) ||
	    stream_file_end(&s, BIG, 7) || (with_end && stream_finish(&s)))
		return -1;
	return fd;
}

static int receive(int fd, struct got *g)
{
	const struct stream_sink sink = { g, g_open, g_write, g_close, g_drop };

	memset(g, 0, sizeof(*g));
	lseek(fd, 0, SEEK_SET);
	cr_err_reset();
	return stream_receive(fd, "unit", &sink, true);
}

/* fd's bytes cut to len, byte `flip` changed (-1: none), in a new memfd. */
static int variant(int fd, off_t len, off_t flip)
{
	int v = memfd_create("unit-variant", 0);
	uint8_t *buf = malloc(len + 1);

	if (pread(fd, buf, len, 0) != len)
		return -1;
	if (flip >= 0)
		buf[flip] ^= 1;
	if (write(v, buf, len) != len)
		return -1;
	free(buf);
	return v;
}

static void test_roundtrip(void)
{
	struct got g;
	int fd;

	unit_case();
	fd = make_stream(true);
	CHECK(fd >= 0, "stream written");
	CHECK(!receive(fd, &g), "read back: %s", err_text());
	CHECK(g.nr == 2 && !strcmp(g.names[0], "a.img") && !strcmp(g.names[1], "pages-1.img"),
	      "the files in order");
	CHECK(g.sizes[0] == 5 && g.sizes[1] == BIG, "their sizes");
	CHECK(g.sum == crc32c(crc32c(0, "hello", 5), big, BIG), "their bytes");
	close(fd);
}

static void test_damage(void)
{
	int fd = make_stream(true);
	off_t size = lseek(fd, 0, SEEK_END);
	const struct { off_t len, flip; const char *needle; } cases[] = {
		{ 0, -1, "truncated after 0 bytes" },
		{ 15, -1, "truncated after 15 bytes" },
		{ 16, -1, "truncated after 16 bytes" },
		{ size / 2, -1, "truncated" },
		{ size - 1, -1, "truncated" },
		{ size, 0, "bad magic" },
		{ size, 9, "stream header is damaged" },
		{ size, 17, "record header at byte 16 is damaged" },
		{ size, 33, "checksum mismatch in the record at byte 16" },
		{ size, size / 2, "checksum mismatch in the record" },
		{ size, size - 3, "checksum mismatch in the record" },
	};
	struct got g;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int v = variant(fd, cases[i].len, cases[i].flip);

		unit_case();
		CHECK(receive(v, &g) && err_has(cases[i].needle), "cut %lld flip %lld: %s",
		      (long long)cases[i].len, (long long)cases[i].flip, err_text());
		CHECK(!g.open_now, "the unfinished file dropped");
		close(v);
	}
	close(fd);
}

/* Records after the end: an abort (the dump failed late) or anything else. */
static void test_after_end(void)
{
	struct stream_out s;
	struct got g;
	int fd = make_stream(true);

	unit_case();
	memset(&s, 0, sizeof(s));
	s.fd = fd;
	snprintf(s.what, sizeof(s.what), "unit");
	stream_abort(&s, "process 5: cannot write its memory\n");
	CHECK(receive(fd, &g) && err_has("unit: the dump failed: process 5: cannot write its "
					  "memory\\x0a"), "abort after the end: %s", err_text());
	close(fd);

	unit_case();
	fd = make_stream(true);
	s.fd = fd;
	stream_file_begin(&s, "late.img");
	CHECK(receive(fd, &g) && err_has("data after the image's end"), "more: %s", err_text());
	close(fd);

	unit_case();
	fd = make_stream(false);
	s.fd = fd;
	stream_abort(&s, "refused");
	CHECK(receive(fd, &g) && err_has("the dump failed: refused"), "abort: %s", err_text());
	close(fd);
}

static void test_malformed(void)
{
	uint8_t hdr[STREAM_HDR_SIZE], rec[STREAM_HDR_SIZE];
	struct got g;
	uint32_t type, len, crc;
	int fd;

	unit_case();
	stream_make_record(rec, 99, "", 0);
	CHECK(stream_check_record(rec, "u", 0, &type, &len, &crc) && err_has("unknown record"),
	      "unknown type: %s", err_text());
	unit_case();
	stream_make_record(rec, STREAM_FILE, "", 0);
	memset(rec + 4, 0xff, 4);
	stream_make_record(rec, STREAM_FILE, "", 0);
	{
		uint32_t big_len = STREAM_MAX_MSG + 1;

		memcpy(rec + 4, &big_len, 4);
		memcpy(rec + 12, &(uint32_t){ crc32c(0, rec, 12) }, 4);
	}
	CHECK(stream_check_record(rec, "u", 0, &type, &len, &crc) && err_has("too long"),
	      "long name record: %s", err_text());

	/* Data before any file; a name with a slash. */
	for (int i = 0; i < 2; i++) {
		const char *payload = i ? "../x" : "data";

		unit_case();
		fd = memfd_create("unit-bad", 0);
		stream_make_start(hdr);
		stream_make_record(rec, i ? STREAM_FILE : STREAM_DATA, payload, 4);
		CHECK(write(fd, hdr, 16) == 16 && write(fd, rec, 16) == 16 &&
		      write(fd, payload, 4) == 4, "written");
		CHECK(receive(fd, &g) && err_has(i ? "invalid name" : "data outside any file"),
		      "malformed %d: %s", i, err_text());
		close(fd);
	}
}

/* An image written as a stream is read back as an in-memory directory. */
static void test_img_dir(void)
{
	struct stream_out s;
	struct img_dir d;
	struct raw_writer w;
	Inventory inv = INVENTORY__INIT, *back;
	CpuInfo cpu = CPU_INFO__INIT;
	int fd = memfd_create("unit-img", 0), pf;

	unit_case();
	inv.format_major = FORMAT_MAJOR;
	inv.cryo_version = inv.kernel_release = "unit";
	inv.cpu = &cpu;
	CHECK(!stream_out_start(&s, fd, false, "unit") && !img_dir_stream(&d, &s), "start");
	CHECK(!raw_open(&w, &d, "pages-9.img") && !raw_write(&w, big, BIG) && !raw_close(&w),
	      "raw file: %s", err_text());
	CHECK(!img_write_inventory(&d, &inv), "inventory: %s", err_text());
	raw_free(&w);
	img_dir_close(&d, true);
	lseek(fd, 0, SEEK_SET);
	CHECK(!img_dir_open_stream(&d, fd, "unit"), "read back: %s", err_text());
	back = img_read_inventory(&d);
	CHECK(back && back->n_files == 1, "inventory read: %s", err_text());
	pf = img_open_raw(&d, "pages-9.img", BIG);
	CHECK(pf >= 0, "page file: %s", err_text());
	if (pf >= 0) {
		uint8_t b[100];

		CHECK(pread(pf, b, sizeof(b), STREAM_MAX_DATA) == sizeof(b) &&
		      !memcmp(b, big + STREAM_MAX_DATA, sizeof(b)), "its bytes");
		CHECK(write(pf, b, 1) < 0, "read only");
		close(pf);
	}
	if (back)
		inventory__free_unpacked(back, NULL);
	img_dir_close(&d, true);
	close(fd);
}

static void test_page_server_names(void)
{
	static const char *const good[] = { "pages-1.img", "pages-4194304.img", "shmem-0.img",
					    "ghost-12.img", "sysvshm-98307.img" };
	static const char *const bad[] = { "inventory.img", "core-1.img", "pages-.img",
					   "pages-1.img.tmp", "pages-1", "pages--1.img",
					   "pages-1x.img", "files.img", "pages-12345678901.img",
					   "" };

	unit_case();
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(page_server_name_ok(good[i]), "%s accepted", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(!page_server_name_ok(bad[i]), "'%s' refused", bad[i]);
}

int main(void)
{
	big = malloc(BIG);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	test_roundtrip();
	test_damage();
	test_after_end();
	test_malformed();
	test_img_dir();
	test_page_server_names();
	free(big);
	return unit_done("unit_stream");
}
