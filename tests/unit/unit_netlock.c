/* The pure parts of net_lock.c: inet_diag answers, v4-mapped connections, the nft
 * script, lock table names and netlock.img checks. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <linux/inet_diag.h>

#include "net_lock.h"
#include "unit.h"

static void test_diag(void)
{
	struct inet_diag_msg m = { .idiag_family = AF_INET, .idiag_state = 1,
				   .idiag_inode = 4242 };
	struct net_tuple t;
	uint32_t ino;
	uint8_t state;
	char s[128];

	unit_case();
	m.id.idiag_sport = htons(4000);
	m.id.idiag_dport = htons(39012);
	inet_pton(AF_INET, "127.0.0.1", m.id.idiag_src);
	inet_pton(AF_INET, "127.0.0.2", m.id.idiag_dst);
	CHECK(!net_diag_parse(&m, sizeof(m), &t, &ino, &state), "%s", err_text());
	CHECK(t.family == 4 && t.lport == 4000 && t.rport == 39012 && ino == 4242 && state == 1,
	      "parsed %d %u %u %u %u", t.family, t.lport, t.rport, ino, state);
	net_tuple_str(&t, s, sizeof(s));
	CHECK(!strcmp(s, "127.0.0.1:4000 -> 127.0.0.2:39012"), "%s", s);

	unit_case();
	CHECK(net_diag_parse(&m, sizeof(m) - 1, &t, &ino, &state) && err_has("short"),
	      "a short answer: %s", err_text());
	unit_case();
	m.idiag_family = AF_UNIX;
	CHECK(net_diag_parse(&m, sizeof(m), &t, &ino, &state) && err_has("family"),
	      "a foreign family: %s", err_text());

	/* An IPv6 socket's IPv4 connection: the wire sees IPv4. */
	unit_case();
	m.idiag_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:10.1.2.3", m.id.idiag_src);
	inet_pton(AF_INET6, "::ffff:10.1.2.4", m.id.idiag_dst);
	CHECK(!net_diag_parse(&m, sizeof(m), &t, &ino, &state), "%s", err_text());
	net_tuple_str(&t, s, sizeof(s));
	CHECK(t.family == 4 && !strcmp(s, "10.1.2.3:4000 -> 10.1.2.4:39012"), "mapped: %s", s);

	unit_case();
	inet_pton(AF_INET6, "::1", m.id.idiag_src);
	inet_pton(AF_INET6, "::1", m.id.idiag_dst);
	CHECK(!net_diag_parse(&m, sizeof(m), &t, &ino, &state), "%s", err_text());
	net_tuple_str(&t, s, sizeof(s));
	CHECK(t.family == 6 && !strcmp(s, "[::1]:4000 -> [::1]:39012"), "v6: %s", s);
}

static void test_states(void)
{
	unit_case();
	for (int st = 0; st <= 13; st++) {
		/* ESTABLISHED..CLOSING but TIME_WAIT (6), CLOSE (7), LISTEN (10). */
		bool want = st >= 1 && st <= 11 && st != 6 && st != 7 && st != 10;

		CHECK(net_state_locked(st) == want, "state %d", st);
	}
}

static void test_script(void)
{
	struct net_tuple t[3] = { { .family = 4, .lport = 1, .rport = 2 },
				  { .family = 6, .lport = 3, .rport = 4 },
				  { .family = 4, .lport = 5, .rport = 65535 } };
	char *s;

	unit_case();
	inet_pton(AF_INET, "127.0.0.1", t[0].local);
	inet_pton(AF_INET, "127.0.0.1", t[0].remote);
	inet_pton(AF_INET6, "fe80::1", t[1].local);
	inet_pton(AF_INET6, "::1", t[1].remote);
	inet_pton(AF_INET, "10.0.0.1", t[2].local);
	inet_pton(AF_INET, "10.0.0.2", t[2].remote);
	s = net_lock_script("cryo_lock_7", true, t, 3);
	if (!s)
		s = strdup("(none)");
	CHECK(strstr(s, "table inet cryo_lock_7 {\n\tflags owner\n"), "owner: %s", s);
	CHECK(strstr(s, "elements = { 127.0.0.1 . 1 . 127.0.0.1 . 2, "
			     "10.0.0.1 . 5 . 10.0.0.2 . 65535 }"), "v4 set: %s", s);
	CHECK(strstr(s, "elements = { fe80::1 . 3 . ::1 . 4 }"), "v6 set: %s", s);
	CHECK(strstr(s, "hook input priority -2147483648") &&
	      strstr(s, "hook output priority -2147483648"), "hooks: %s", s);
	/* Input matches the connection's packets to it: its local end is the
	 * destination. */
	CHECK(strstr(s, "ip daddr . tcp dport . ip saddr . tcp sport @c4 counter drop") &&
	      strstr(s, "ip saddr . tcp sport . ip daddr . tcp dport @c4 counter drop"),
	      "rules: %s", s);
	CHECK(strstr(s, "hook input priority -2147483648; policy accept;\n\t\tmeta mark 0xc114 "
			"accept\n"), "restore's own segments pass: %s", s);
	free(s);

	unit_case();
	s = net_lock_script("cryo_keep_7_0123456789abcdef", false, t, 1);
	if (!s)
		s = strdup("(none)");
	CHECK(!strstr(s, "flags") && !strstr(s, "fe80"), "keep table: %s", s);
	/* An empty set has no elements line (nft refuses "elements = { }"). */
	CHECK(strstr(s, "\tset c6 {\n\t\ttype ipv6_addr . inet_service . ipv6_addr . "
			     "inet_service\n\t}\n"), "empty set: %s", s);
	free(s);
}

static void test_names(void)
{
	unit_case();
	CHECK(net_lock_name_ok("cryo_keep_42_0123456789abcdef", 42), "a good name");
	CHECK(!net_lock_name_ok("cryo_keep_43_0123456789abcdef", 42), "another PID");
	CHECK(!net_lock_name_ok("cryo_keep_42_0123456789abcde", 42), "short token");
	CHECK(!net_lock_name_ok("cryo_keep_42_0123456789abcdef0", 42), "long token");
	CHECK(!net_lock_name_ok("cryo_keep_42_0123456789ABCDEF", 42), "upper case");
	CHECK(!net_lock_name_ok("cryo_keep_42_0123456789abcde;", 42), "punctuation");
	CHECK(!net_lock_name_ok("filter", 42), "someone else's table");
	CHECK(!net_lock_name_ok("cryo_lock_42", 42), "the owner table");
	CHECK(!net_lock_name_ok("cryo_keep_0_0123456789abcdef", 0), "PID 0");
}

static void test_image(void)
{
	uint8_t a4[4] = { 127, 0, 0, 1 }, a16[16] = { 0 };
	NetLockConn c = NET_LOCK_CONN__INIT, *cp = &c;
	NetLock nl = NET_LOCK__INIT;

	c.family = 4;
	c.local.data = a4;
	c.local.len = 4;
	c.remote.data = a4;
	c.remote.len = 4;
	c.local_port = 80;
	c.remote_port = 5000;
	nl.table = "cryo_keep_9_00000000deadbeef";
	nl.n_conns = 1;
	nl.conns = &cp;
	unit_case();
	CHECK(!net_lock_check(&nl, 9), "a sound lock: %s", err_text());
	unit_case();
	CHECK(net_lock_check(&nl, 10) && err_has("not cryo's"), "another root: %s", err_text());
	unit_case();
	nl.table = "filter";
	CHECK(net_lock_check(&nl, 9) && err_has("not cryo's"), "a foreign table: %s",
	      err_text());
	nl.table = "cryo_keep_9_00000000deadbeef";
	unit_case();
	c.family = 6;
	CHECK(net_lock_check(&nl, 9) && err_has("malformed"), "family and length: %s",
	      err_text());
	unit_case();
	c.local.data = a16;
	c.local.len = 16;
	c.remote.data = a16;
	c.remote.len = 16;
	CHECK(!net_lock_check(&nl, 9), "v6: %s", err_text());
	unit_case();
	c.remote_port = 65536;
	CHECK(net_lock_check(&nl, 9) && err_has("malformed"), "port: %s", err_text());
	unit_case();
	c.remote_port = 1;
	c.family = 5;
	CHECK(net_lock_check(&nl, 9) && err_has("malformed"), "family 5: %s", err_text());
	unit_case();
	nl.n_conns = 0;
	CHECK(net_lock_check(&nl, 9) && err_has("0 connections"), "empty: %s", err_text());
}

int main(void)
{
	test_diag();
	test_states();
	test_script();
	test_names();
	test_image();
	return unit_done("unit_netlock");
}
