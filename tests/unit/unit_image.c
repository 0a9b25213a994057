/* Unit tests of the image file format (src/image.h): the header check of metadata
 * buffers, and a write/read round trip through a real image directory. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "image.h"
#include "unit.h"

struct hdr {
	uint32_t magic;
	uint16_t kind;
	uint16_t major;
	uint32_t length;
	uint32_t crc;
};

/* A well-formed metadata buffer around `payload`. */
static uint8_t *mkbuf(uint16_t kind, const void *payload, size_t plen, size_t *len)
{
	struct hdr h = { IMG_MAGIC, kind, FORMAT_MAJOR, plen, crc32c(0, payload, plen) };
	uint8_t *b = malloc(IMG_HDR_SIZE + plen);

	memcpy(b, &h, sizeof(h));
	memcpy(b + IMG_HDR_SIZE, payload, plen);
	*len = IMG_HDR_SIZE + plen;
	return b;
}

static struct hdr *H(uint8_t *b)
{
	return (struct hdr *)b;
}

static int check(const uint8_t *b, size_t len, uint16_t kind, const uint8_t **pl, size_t *pll)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	memcpy(copy, b, len);
	rc = img_check_buffer(copy, len, kind, "test.img", pl, pll);
	if (!rc)
		*pl = b + (*pl - copy);
	free(copy);
	return rc;
}

static const char payload[] = "\x08\x01\x12\x05hello\x18\x2a";

static void test_good(void)
{
	const uint8_t *pl = NULL;
	size_t pll = 0, len;
	uint8_t *b = mkbuf(IMAGE_KIND__IMG_CORE, payload, sizeof(payload) - 1, &len);

	unit_case();
	CHECK(!check(b, len, IMAGE_KIND__IMG_CORE, &pl, &pll), "good: %s", err_text());
	CHECK(pl == b + IMG_HDR_SIZE && pll == sizeof(payload) - 1, "good: payload");
	CHECK(!cr_err_set(), "good: error recorded");
	free(b);

	unit_case();
	b = mkbuf(IMAGE_KIND__IMG_SHMEM, "", 0, &len);
	CHECK(!check(b, len, IMAGE_KIND__IMG_SHMEM, &pl, &pll) && pll == 0, "empty payload: %s",
	      err_text());
	free(b);

	/* Every kind the format defines. */
	for (uint16_t k = IMAGE_KIND__IMG_INVENTORY; k <= IMAGE_KIND__IMG_SHMEM; k++) {
		unit_case();
		b = mkbuf(k, payload, sizeof(payload) - 1, &len);
		CHECK(!check(b, len, k, &pl, &pll), "kind %u: %s", k, err_text());
		free(b);
	}
}

struct bad_case {
	const char *what;
	void (*fn)(uint8_t *b, size_t *len);
	uint16_t want_kind;
	const char *err;
};

static void b_magic(uint8_t *b, size_t *len) { (void)len; H(b)->magic = 0x4f595244; }
static void b_magic_be(uint8_t *b, size_t *len)
{
	(void)len;
	H(b)->magic = __builtin_bswap32(IMG_MAGIC);
}
static void b_newer(uint8_t *b, size_t *len) { (void)len; H(b)->major = FORMAT_MAJOR + 1; }
static void b_major1(uint8_t *b, size_t *len) { (void)len; H(b)->major = 1; }
static void b_major_max(uint8_t *b, size_t *len) { (void)len; H(b)->major = 0xffff; }
static void b_major0(uint8_t *b, size_t *len) { (void)len; H(b)->major = 0; }
static void b_kind(uint8_t *b, size_t *len) { (void)len; H(b)->kind = IMAGE_KIND__IMG_PAGEMAP; }
static void b_kind_unknown(uint8_t *b, size_t *len) { (void)len; H(b)->kind = 77; }
static void b_long(uint8_t *b, size_t *len) { (void)len; H(b)->length += 1; }
static void b_short(uint8_t *b, size_t *len) { (void)len; H(b)->length -= 1; }
static void b_huge(uint8_t *b, size_t *len) { (void)len; H(b)->length = 0xffffffff; }
static void b_crc(uint8_t *b, size_t *len) { (void)len; H(b)->crc ^= 1; }
static void b_payload(uint8_t *b, size_t *len) { b[*len - 1] ^= 0x80; }
static void b_first(uint8_t *b, size_t *len) { (void)len; b[IMG_HDR_SIZE] ^= 1; }
static void b_cut(uint8_t *b, size_t *len) { (void)b; *len -= 1; }
static void b_cut_header(uint8_t *b, size_t *len) { (void)b; *len = IMG_HDR_SIZE - 1; }

static const struct bad_case bad_cases[] = {
	{ "bad magic", b_magic, IMAGE_KIND__IMG_CORE, "bad magic" },
	{ "byte-swapped magic", b_magic_be, IMAGE_KIND__IMG_CORE, "bad magic" },
	{ "newer major version", b_newer, IMAGE_KIND__IMG_CORE, "newer" },
	{ "format 1 (cryo 0.1.x)", b_major1, IMAGE_KIND__IMG_CORE, "restore it with cryo 0.1.x" },
	{ "major 65535", b_major_max, IMAGE_KIND__IMG_CORE, "format 65535" },
	{ "major 0", b_major0, IMAGE_KIND__IMG_CORE, "version 0" },
	{ "wrong kind", b_kind, IMAGE_KIND__IMG_CORE,
	  "holds a page map image where a core image was expected" },
	{ "unknown kind", b_kind_unknown, IMAGE_KIND__IMG_CORE, "holds a unknown image" },
	{ "length longer than the file", b_long, IMAGE_KIND__IMG_CORE, "truncated" },
	{ "length shorter than the file", b_short, IMAGE_KIND__IMG_CORE, "padded" },
	{ "length 4 GiB", b_huge, IMAGE_KIND__IMG_CORE, "truncated" },
	{ "crc mismatch", b_crc, IMAGE_KIND__IMG_CORE, "checksum" },
	{ "payload damaged at the end", b_payload, IMAGE_KIND__IMG_CORE, "checksum" },
	{ "payload damaged at the start", b_first, IMAGE_KIND__IMG_CORE, "checksum" },
	{ "file cut", b_cut, IMAGE_KIND__IMG_CORE, "truncated" },
	{ "header cut", b_cut_header, IMAGE_KIND__IMG_CORE, "shorter than the header" },
};

static void test_bad(void)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		const uint8_t *pl = (const uint8_t *)"untouched";
		size_t pll = 12345, len;
		uint8_t *b = mkbuf(IMAGE_KIND__IMG_CORE, payload, sizeof(payload) - 1, &len);

		unit_case();
		c->fn(b, &len);
		CHECK(check(b, len, c->want_kind, &pl, &pll) == -1, "%s: accepted", c->what);
		CHECK(err_has(c->err), "%s: error '%s', want '%s'", c->what, err_text(), c->err);
		CHECK(err_has("test.img"), "%s: error does not name the file", c->what);
		CHECK(pll == 12345 && !strcmp((const char *)pl, "untouched"),
		      "%s: outputs written on failure", c->what);
		free(b);
	}
	/* Every buffer shorter than a header. */
	for (size_t len = 0; len < IMG_HDR_SIZE; len++) {
		const uint8_t *pl;
		size_t pll, full;
		uint8_t *b = mkbuf(IMAGE_KIND__IMG_CORE, "", 0, &full);

		unit_case();
		CHECK(check(b, len, IMAGE_KIND__IMG_CORE, &pl, &pll) == -1 && err_has("truncated"),
		      "%zu-byte buffer: %s", len, err_text());
		free(b);
	}
	/* Every cut of a real-sized buffer. */
	{
		uint8_t data[300];
		size_t len;
		uint8_t *b;

		for (size_t i = 0; i < sizeof(data); i++)
			data[i] = i * 7;
		b = mkbuf(IMAGE_KIND__IMG_PSTREE, data, sizeof(data), &len);
		unit_case();
		for (size_t l = 0; l < len; l++) {
			const uint8_t *pl;
			size_t pll;

			cr_err_reset();
			CHECK(check(b, l, IMAGE_KIND__IMG_PSTREE, &pl, &pll) == -1,
			      "cut at %zu accepted", l);
		}
		free(b);
	}
}

/* Write messages into a real directory and read them back through the inventory. */
static void test_roundtrip(void)
{
	char dir[] = "/tmp/cryo-unit-image-XXXXXX";
	struct img_dir d;
	ProcessEntry pe = PROCESS_ENTRY__INIT, *pes[1] = { &pe };
	PsTree t = PS_TREE__INIT, *back;
	Inventory inv = INVENTORY__INIT, *iback;
	CpuInfo cpu = CPU_INFO__INIT;
	uint32_t tids[2] = { 100, 101 };

	unit_case();
	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp");
		return;
	}
	pe.pid = 100;
	pe.ppid = 1;
	pe.pgid = 100;
	pe.sid = 100;
	pe.n_tids = 2;
	pe.tids = tids;
	t.n_procs = 1;
	t.procs = pes;
	CHECK(!img_dir_create(&d, dir), "create: %s", err_text());
	CHECK(!img_write_msg(&d, "pstree.img", IMAGE_KIND__IMG_PSTREE, &t.base), "write: %s",
	      err_text());
	cpu.vendor = "GenuineIntel";
	cpu.model = "test";
	inv.format_major = FORMAT_MAJOR;
	inv.cryo_version = "test";
	inv.kernel_release = "test";
	inv.cpu = &cpu;
	inv.root_pid = 100;
	inv.page_size = 4096;
	CHECK(!img_write_inventory(&d, &inv), "inventory: %s", err_text());
	img_dir_close(&d, true);

	unit_case();
	CHECK(!img_dir_open(&d, dir), "open: %s", err_text());
	iback = img_read_inventory(&d);
	CHECK(iback && iback->root_pid == 100 && iback->n_files == 1, "read inventory: %s",
	      err_text());
	back = img_read_msg(&d, "pstree.img", IMAGE_KIND__IMG_PSTREE, &ps_tree__descriptor);
	CHECK(back && back->n_procs == 1 && back->procs[0]->pid == 100 &&
	      back->procs[0]->n_tids == 2 && back->procs[0]->tids[1] == 101, "read pstree: %s",
	      err_text());
	if (back)
		ps_tree__free_unpacked(back, NULL);

	/* The wrong kind, and a file the inventory does not list. */
	unit_case();
	CHECK(!img_read_msg(&d, "pstree.img", IMAGE_KIND__IMG_CORE, &core__descriptor) &&
	      err_has("holds a process tree image where a core image"), "wrong kind: %s",
	      err_text());
	unit_case();
	CHECK(!img_read_msg(&d, "core-1.img", IMAGE_KIND__IMG_CORE, &core__descriptor) &&
	      err_has("not listed"), "unlisted: %s", err_text());
	if (iback)
		inventory__free_unpacked(iback, NULL);
	img_dir_close(&d, true);

	/* Damage the file on disk: the header check must catch it. */
	unit_case();
	{
		char path[256];
		int fd;
		uint8_t byte;

		snprintf(path, sizeof(path), "%s/pstree.img", dir);
		fd = open(path, O_RDWR);
		CHECK(pread(fd, &byte, 1, IMG_HDR_SIZE + 2) == 1, "read back a byte");
		byte ^= 0xff;
		CHECK(pwrite(fd, &byte, 1, IMG_HDR_SIZE + 2) == 1, "damage a byte");
		close(fd);
		CHECK(!img_dir_open(&d, dir), "reopen");
		iback = img_read_inventory(&d);
		back = img_read_msg(&d, "pstree.img", IMAGE_KIND__IMG_PSTREE, &ps_tree__descriptor);
		CHECK(!back && err_has("checksum"), "damaged file: %s", err_text());
		if (iback)
			inventory__free_unpacked(iback, NULL);
		img_dir_close(&d, true);
		unlink(path);
		snprintf(path, sizeof(path), "%s/inventory.img", dir);
		unlink(path);
		rmdir(dir);
	}
}

int main(void)
{
	test_good();
	test_bad();
	test_roundtrip();
	return unit_done("unit_image");
}
