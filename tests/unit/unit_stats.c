/* Unit tests of src/stats.c: sizes and the progress line as text, the phases and
 * processes a report names, and its JSON. */
#include <stdlib.h>
#include <unistd.h>

#include "cryo.h"
#include "stats.h"
#include "unit.h"

static void test_human(void)
{
	char b[32];

	unit_case();
	stats_human_bytes(0, b, sizeof(b));
	CHECK(!strcmp(b, "0 B"), "0: %s", b);
	stats_human_bytes(1023, b, sizeof(b));
	CHECK(!strcmp(b, "1023 B"), "1023: %s", b);
	stats_human_bytes(1536, b, sizeof(b));
	CHECK(!strcmp(b, "1.5 KiB"), "1536: %s", b);
	stats_human_bytes(3ULL << 30, b, sizeof(b));
	CHECK(!strcmp(b, "3.0 GiB"), "3G: %s", b);
	stats_human_bytes(~0ULL, b, sizeof(b));
	CHECK(strstr(b, "TiB") != NULL, "the largest unit: %s", b);
}

static void test_progress_text(void)
{
	char b[160];

	unit_case();
	stats_progress_text("writing pages", 1ULL << 30, 4ULL << 30, 2.0, b, sizeof(b));
	CHECK(!strcmp(b, "writing pages: 1.0 GiB of 4.0 GiB, 512.0 MiB/s, ETA 6 s"), "%s", b);
	stats_progress_text("writing pages", 4ULL << 30, 4ULL << 30, 2.0, b, sizeof(b));
	CHECK(!strstr(b, "ETA"), "no ETA once done: %s", b);
	stats_progress_text("reading memory", 0, 100, 0, b, sizeof(b));
	CHECK(!strstr(b, "ETA") && strstr(b, "0 B/s"), "no rate yet: %s", b);
	stats_progress_text("x", 1, 2, 1.0, b, 8);
	CHECK(strlen(b) == 7, "cut to the buffer: '%s'", b);
}

static char *report(int (*fn)(FILE *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fn(f);
	fclose(f);
	return buf;
}

static void test_report(void)
{
	char *txt, *json;

	unit_case();
	stats_start(false);
	stats_enter(PH_SEIZE);
	usleep(2000);
	stats_leave(PH_SEIZE);
	stats_enter(PH_PAGE_WRITE);
	stats_leave(PH_PAGE_WRITE);
	stats_add_proc(41, 10, 40960);
	stats_add_proc(42, 2, 8192);
	stats_finish();
	txt = report(cryo_stats_print);
	json = report(cryo_stats_json);
	if (!txt || !json) {
		CHECK(0, "open_memstream");
		return;
	}
	CHECK(txt && strstr(txt, "Dump statistics") && strstr(txt, "seize") &&
	      strstr(txt, "page_write") && !strstr(txt, "memory_scan") &&
	      strstr(txt, "process 41: 10 pages, 40960 bytes") &&
	      strstr(txt, "12 pages, 49152 bytes written"), "table: %s", txt);
	CHECK(json && strstr(json, "\"operation\": \"dump\"") && strstr(json, "\"seize\": ") &&
	      strstr(json, "{ \"pid\": 42, \"pages\": 2, \"bytes\": 8192 }") &&
	      strstr(json, "\"pages\": 12") && !strstr(json, "restore"), "json: %s", json);
	CHECK(atoll(strstr(json, "\"seize\": ") + strlen("\"seize\": ")) >= 2000,
	      "seize took 2 ms: %s", json);
	free(txt);
	free(json);
	stats_start(true);
	stats_finish();
	json = report(cryo_stats_json);
	if (!json)
		return;
	CHECK(strstr(json, "\"operation\": \"restore\"") &&
	      strstr(json, "\"processes\": []"), "an empty restore: %s", json);
	free(json);
}

/* --pidns: a restore's figures made in the namespace's init, reported by cryo. */
static void test_pack(void)
{
	size_t len;
	char *buf, *txt;

	unit_case();
	stats_start(true);
	stats_enter(PH_CREATE);
	stats_leave(PH_CREATE);
	stats_add_proc(7, 3, 12288);
	stats_finish();
	buf = stats_pack(&len);
	CHECK(buf != NULL, "stats_pack");
	if (!buf)
		return;
	stats_start(false);
	CHECK(stats_unpack(buf, len - 1) == -1, "a short buffer is refused");
	CHECK(stats_unpack(buf, len + 1) == -1, "a long buffer is refused");
	buf[4] = 0x7f;	/* nr_procs, far too many */
	CHECK(stats_unpack(buf, len) == -1, "a count beyond the buffer is refused");
	buf[4] = 1;
	CHECK(stats_unpack(buf, len) == 0, "stats_unpack");
	txt = report(cryo_stats_print);
	CHECK(txt && strstr(txt, "Restore statistics") && strstr(txt, "create") &&
	      strstr(txt, "process 7: 3 pages, 12288 bytes"), "unpacked: %s", txt);
	free(txt);
	free(buf);
}

int main(void)
{
	test_human();
	test_progress_text();
	test_report();
	test_pack();
	return unit_done("unit_stats");
}
