/* The pure parts of file_unix.c: sock_diag answers (whole, damaged), names as
 * printed, credentials compared, image entries checked. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/unix_diag.h>

#include "file_unix.h"
#include "unit.h"

static size_t put_attr(uint8_t *buf, size_t at, int type, const void *data, size_t len)
{
	struct nlattr a = { NLA_HDRLEN + len, type };

	memcpy(buf + at, &a, sizeof(a));
	memcpy(buf + at + NLA_HDRLEN, data, len);
	return at + NLA_ALIGN(NLA_HDRLEN + len);
}

/* A listener with an abstract name, three queued connections, shut down for sending. */
static size_t sample(uint8_t *buf)
{
	struct unix_diag_msg m = { .udiag_family = AF_UNIX, .udiag_type = SOCK_STREAM,
				   .udiag_state = 10, .udiag_ino = 4242 };
	struct unix_diag_rqlen rq = { 3, 8 };
	struct unix_diag_vfs vfs = { 77, 5 };
	uint32_t icons[3] = { 11, 12, 13 }, peer = 99;
	uint8_t shut = 2;
	size_t at = NLMSG_ALIGN(sizeof(m));

	memset(buf, 0, 512);
	memcpy(buf, &m, sizeof(m));
	at = put_attr(buf, at, UNIX_DIAG_NAME, "\0sock", 5);
	at = put_attr(buf, at, UNIX_DIAG_VFS, &vfs, sizeof(vfs));
	at = put_attr(buf, at, UNIX_DIAG_PEER, &peer, 4);
	at = put_attr(buf, at, UNIX_DIAG_ICONS, icons, sizeof(icons));
	at = put_attr(buf, at, UNIX_DIAG_RQLEN, &rq, sizeof(rq));
	return put_attr(buf, at, UNIX_DIAG_SHUTDOWN, &shut, 1);
}

static void test_diag(void)
{
	static struct unix_diag d;
	uint8_t buf[512];
	size_t len = sample(buf);

	unit_case();
	CHECK(!unix_diag_parse(buf, len, &d), "a whole answer: %s", err_text());
	CHECK(d.ino == 4242 && d.type == SOCK_STREAM && d.state == 10, "header");
	CHECK(d.has_name && d.name_len == 5 && !memcmp(d.name, "\0sock", 5), "name");
	CHECK(d.has_vfs && d.vfs_ino == 77 && d.peer == 99, "vfs and peer");
	CHECK(d.nr_icons == 3 && d.icons[2] == 13, "icons: %zu", d.nr_icons);
	CHECK(d.has_rqlen && d.rqueue == 3 && d.wqueue == 8, "queue lengths");
	CHECK(d.has_shutdown && d.shutdown == 2, "shutdown");

	unit_case();
	CHECK(unix_diag_parse(buf, 10, &d) && err_has("short"), "a short answer");
	unit_case();
	buf[0] = AF_INET;
	CHECK(unix_diag_parse(buf, len, &d) && err_has("foreign"), "another family");
	buf[0] = AF_UNIX;
	unit_case();
	CHECK(!unix_diag_parse(buf, len - 8, &d) && !d.has_shutdown, "an answer without "
	      "its last attribute");
	unit_case();
	((struct nlattr *)(buf + NLMSG_ALIGN(sizeof(struct unix_diag_msg))))->nla_len = 400;
	CHECK(unix_diag_parse(buf, len, &d) && err_has("damaged"), "an attribute past the end");
	unit_case();
	((struct nlattr *)(buf + NLMSG_ALIGN(sizeof(struct unix_diag_msg))))->nla_len = 2;
	CHECK(unix_diag_parse(buf, len, &d) && err_has("damaged"), "an attribute too short");
}

static void test_diag_bounds(void)
{
	struct unix_diag_msg m = { .udiag_family = AF_UNIX };
	static uint8_t buf[8192];
	static struct unix_diag d;
	size_t at = NLMSG_ALIGN(sizeof(m));
	uint8_t big[200] = { 0 };

	memcpy(buf, &m, sizeof(m));
	unit_case();
	CHECK(unix_diag_parse(buf, put_attr(buf, at, UNIX_DIAG_NAME, big, 109), &d) &&
	      err_has("name of 109"), "a name longer than sun_path");
	unit_case();
	CHECK(unix_diag_parse(buf, put_attr(buf, at, UNIX_DIAG_ICONS, big, 6), &d) &&
	      err_has("queued connections"), "icons not of whole inodes");
	unit_case();
	CHECK(unix_diag_parse(buf, put_attr(buf, at, UNIX_DIAG_ICONS, buf, 4100), &d),
	      "more queued connections than cryo takes");
	unit_case();
	CHECK(unix_diag_parse(buf, put_attr(buf, at, UNIX_DIAG_RQLEN, big, 4), &d) &&
	      err_has("short queue"), "a short queue attribute");
}

static void test_names(void)
{
	char out[128];

	unit_case();
	unix_name_str((const uint8_t *)"/run/x.sock", 11, out, sizeof(out));
	CHECK(!strcmp(out, "/run/x.sock"), "a path: %s", out);
	unix_name_str((const uint8_t *)"\0abc\0d", 6, out, sizeof(out));
	CHECK(!strcmp(out, "@abc@d"), "an abstract name: %s", out);
	unix_name_str(NULL, 0, out, sizeof(out));
	CHECK(!strcmp(out, "unnamed"), "no name: %s", out);
	unix_name_str((const uint8_t *)"\0a\nb", 4, out, sizeof(out));
	CHECK(!strcmp(out, "@a?b"), "an unprintable byte: %s", out);
	unix_name_str((const uint8_t *)"/abcdef", 7, out, 4);
	CHECK(!strcmp(out, "/ab"), "a short buffer: %s", out);
}

static void test_creds(void)
{
	UnixCred a = UNIX_CRED__INIT, b = UNIX_CRED__INIT;

	unit_case();
	a.pid = b.pid = 10;
	CHECK(unix_same_cred(&a, &b) && unix_same_cred(NULL, NULL), "the same");
	b.gid = 5;
	CHECK(!unix_same_cred(&a, &b) && !unix_same_cred(&a, NULL), "different");
}

static int check(UnixFile *u)
{
	FileEntry e = FILE_ENTRY__INIT;

	e.id = 3;
	e.kind = FILE_KIND__FILE_UNIX;
	e.unix_sk = u;
	unit_case();
	return unix_check_entry(&e);
}

static void test_check(void)
{
	UnixFile u = UNIX_FILE__INIT;
	UnixMessage m = UNIX_MESSAGE__INIT, *q[1] = { &m };
	UnixIncoming in = UNIX_INCOMING__INIT, *ins[1] = { &in };

	u.type = SOCK_STREAM;
	u.state = 1;
	CHECK(!check(&u), "a connected stream socket: %s", err_text());
	CHECK(check(NULL) && err_has("socket file 3 is invalid"), "no submessage");
	u.type = 4;
	CHECK(check(&u) && err_has("invalid"), "a raw socket");
	u.type = SOCK_DGRAM;
	u.state = 2;
	CHECK(check(&u) && err_has("state 2"), "a state cryo does not make");
	u.state = 10;
	CHECK(check(&u) && err_has("listener"), "a listening datagram socket");
	u.type = SOCK_SEQPACKET;
	CHECK(check(&u) && err_has("listener"), "a listener without a name");
	u.has_name = 1;
	u.name.data = (uint8_t *)"/a.sock";
	u.name.len = 7;
	CHECK(!check(&u), "a seqpacket listener: %s", err_text());
	u.name.data = (uint8_t *)"a.sock";
	u.name.len = 6;
	CHECK(check(&u) && err_has("bad path"), "a relative path");
	u.name.data = (uint8_t *)"/a\0b";
	u.name.len = 4;
	CHECK(check(&u) && err_has("bad path"), "a path with a zero inside");
	u.name.len = 108;
	CHECK(check(&u) && err_has("108 bytes"), "a name too long");
	u.name.data = (uint8_t *)"\0abstract";
	u.name.len = 9;
	u.n_queue = 1;
	u.queue = q;
	CHECK(check(&u) && err_has("listener"), "a listener with a queue");
	u.state = 1;
	m.data.len = (8u << 20) + 1;
	CHECK(check(&u) && err_has("queued message"), "a message too long");
	m.data.len = 10;
	m.has_source = 1;
	m.source.len = 200;
	CHECK(check(&u) && err_has("queued message"), "a source too long");
	m.has_source = 0;
	CHECK(!check(&u), "a seqpacket socket with a message: %s", err_text());
	u.n_incoming = 1;
	u.incoming = ins;
	CHECK(check(&u) && err_has("does not listen"), "connections on a connected socket");
	u.n_incoming = 0;
	u.has_shutdown = 1;
	u.shutdown = 4;
	CHECK(check(&u) && err_has("invalid"), "unknown shutdown bits");
	u.shutdown = 3;
	u.has_external_peer = 1;
	CHECK(check(&u) && err_has("external peer"), "an empty external peer");
}

int main(void)
{
	test_diag();
	test_diag_bounds();
	test_names();
	test_creds();
	test_check();
	return unit_done("unit_unix");
}
