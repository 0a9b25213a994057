/* Unit tests of what keeps a restore within its image owner's rights and its errors on
 * one line: the credential limits of a trusted image (trust.c), ELF build-id parsing
 * (buildid.c), the escaping of error lines (log.c), and whose processes and images a
 * user who is not root may dump and restore (userns.c). */
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "buildid.h"
#include "trust.h"
#include "unit.h"
#include "userns.h"

static Creds user_creds(uint32_t uid, uint32_t gid)
{
	Creds c = CREDS__INIT;

	c.uid = c.euid = c.suid = c.fsuid = uid;
	c.gid = c.egid = c.sgid = c.fsgid = gid;
	return c;
}

static void test_creds(void)
{
	struct trust open = { 0 }, limited = { .limited = true, .owner = 65534 };
	Creds c = user_creds(65534, 65534), root = user_creds(0, 0);
	uint32_t groups[1] = { 0 };

	unit_case();
	CHECK(trust_check_creds(&open, 7, NULL) && err_has("no credentials record"),
	      "a missing record is an error: %s", err_text());
	unit_case();
	CHECK(!trust_check_creds(&open, 7, &root), "cryo's own image: any credentials");
	CHECK(!trust_check_creds(&limited, 7, &c), "the owner's own identity: %s", err_text());
	unit_case();
	CHECK(trust_check_creds(&limited, 7, &root) && err_has("would run as uid 0"),
	      "root from a user's image: %s", err_text());
	unit_case();
	c.suid = 0;
	CHECK(trust_check_creds(&limited, 7, &c) && err_has("uid 0"), "a saved uid of 0");
	c.suid = 65534;
	unit_case();
	c.cap_prm = 1ULL << 21;
	CHECK(trust_check_creds(&limited, 7, &c) && err_has("capabilities"), "capabilities");
	c.cap_prm = 0;
	unit_case();
	c.n_groups = 1;
	c.groups = groups;
	CHECK(trust_check_creds(&limited, 7, &c) && err_has("group 0"),
	      "a group the owner is not in: %s", err_text());
	unit_case();
	c.n_groups = 0;
	c.egid = 0;
	CHECK(trust_check_creds(&limited, 7, &c) && err_has("gid 0"), "gid 0: %s", err_text());
}

static void test_buildid(void)
{
	uint8_t note[64] = { 4, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 'G', 'N', 'U', 0,
			     1, 2, 3, 4, 5, 6, 7, 8 };
	uint8_t id[BUILDID_MAX];
	size_t len = 0;
	int fd = open("/proc/self/exe", O_RDONLY);

	unit_case();
	CHECK(buildid_from_notes(note, 24, id, &len) && len == 8 && id[7] == 8, "one note");
	CHECK(!buildid_from_notes(note, 20, id, &len), "a truncated note");
	note[4] = 0xff;
	CHECK(!buildid_from_notes(note, 24, id, &len), "a descriptor past the end");
	note[4] = 8;
	note[8] = 1;
	CHECK(!buildid_from_notes(note, 24, id, &len), "another note type");
	unit_case();
	len = 0;
	CHECK(fd >= 0 && buildid_of_fd(fd, id, &len) && len >= 16, "this test's own (%zu)", len);
	if (fd >= 0)
		close(fd);
	fd = open("/proc/self/status", O_RDONLY);
	CHECK(fd >= 0 && !buildid_of_fd(fd, id, &len), "not an ELF file");
	if (fd >= 0)
		close(fd);
}

static void test_escape(void)
{
	char out[64];

	unit_case();
	cr_escape_line("a\nb\tc\x7f", out, sizeof(out));
	CHECK(!strcmp(out, "a\\x0ab\\x09c\\x7f"), "control characters: %s", out);
	cr_escape_line("/tmp/\xc3\xa9t\xc3\xa9", out, sizeof(out));
	CHECK(!strcmp(out, "/tmp/\xc3\xa9t\xc3\xa9"), "UTF-8 stays as it is");
	cr_escape_line("\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n", out, 16);
	CHECK(strlen(out) < 16 && !strchr(out, '\n'), "truncated, still one line");
	unit_case();
	cr_err("file %s", "x\ny");
	CHECK(err_has("x\\x0ay") && !strchr(cr_last_error(), '\n'), "errors are one line");
}

/* The kernel's ptrace rule as cryo applies it for a caller who is not root. */
static void test_user_dump(void)
{
	struct userns_ids me = { .uid = 1000, .euid = 1000, .gid = 100, .egid = 100 };
	struct userns_ids root = { .root = true };
	struct proc_status st;

	memset(&st, 0, sizeof(st));
	for (int i = 0; i < 4; i++)
		st.uid[i] = 1000, st.gid[i] = 100;
	unit_case();
	CHECK(!userns_dump_refusal(&me, &st, 1000), "the caller's own process");
	CHECK(!userns_dump_refusal(&root, &st, 0), "root dumps anything");
	unit_case();
	st.uid[2] = 0;	/* saved uid: a set-user-ID program that dropped privileges */
	CHECK(userns_dump_refusal(&me, &st, 1000) &&
	      strstr(userns_dump_refusal(&me, &st, 1000), "another user"), "a saved uid of 0");
	st.uid[2] = 1000;
	st.uid[3] = 1001;
	CHECK(userns_dump_refusal(&me, &st, 1000), "another fs uid");
	st.uid[3] = 1000;
	unit_case();
	st.gid[1] = 0;
	CHECK(userns_dump_refusal(&me, &st, 1000) &&
	      strstr(userns_dump_refusal(&me, &st, 1000), "group"), "another effective gid");
	st.gid[1] = 100;
	unit_case();
	st.cap_prm = 1ULL << 12;
	CHECK(userns_dump_refusal(&me, &st, 1000) &&
	      strstr(userns_dump_refusal(&me, &st, 1000), "capabilities"),
	      "a permitted capability");
	st.cap_prm = 0;
	st.cap_amb = 1;
	CHECK(userns_dump_refusal(&me, &st, 1000), "an ambient capability");
	st.cap_amb = 0;
	unit_case();
	CHECK(userns_dump_refusal(&me, &st, 0) &&
	      strstr(userns_dump_refusal(&me, &st, 0), "not dumpable"),
	      "/proc/PID belongs to root: not dumpable");
}

/* An image restored by a caller who is not root: the caller's credentials only. */
static void test_user_creds(void)
{
	struct userns_ids me = { .uid = 1000, .euid = 1000, .gid = 100, .egid = 100,
				 .groups = { 100, 27 }, .nr_groups = 2 };
	Creds c = user_creds(1000, 100), root = user_creds(0, 0);
	uint32_t groups[2] = { 27, 100 }, other[2] = { 27, 0 };

	c.groups = groups;
	c.n_groups = 2;
	unit_case();
	CHECK(!userns_creds_refusal(&me, &c), "the caller's own credentials and groups");
	CHECK(userns_creds_refusal(&me, &root), "root's credentials");
	unit_case();
	c.fsuid = 0;
	CHECK(userns_creds_refusal(&me, &c), "an fs uid of 0");
	c.fsuid = 1000;
	c.sgid = 0;
	CHECK(userns_creds_refusal(&me, &c), "a saved gid of 0");
	c.sgid = 100;
	unit_case();
	c.cap_inh = 1;
	CHECK(userns_creds_refusal(&me, &c), "an inheritable capability");
	c.cap_inh = 0;
	c.securebits = 1;
	CHECK(userns_creds_refusal(&me, &c), "securebits");
	c.securebits = 0;
	unit_case();
	c.groups = other;
	CHECK(userns_creds_refusal(&me, &c) &&
	      strstr(userns_creds_refusal(&me, &c), "supplementary"), "a group of root's");
	c.groups = groups;
	c.n_groups = 1;
	CHECK(userns_creds_refusal(&me, &c), "fewer groups than the caller has");
}

int main(void)
{
	test_creds();
	test_user_dump();
	test_user_creds();
	test_buildid();
	test_escape();
	return unit_done("unit_security");
}
