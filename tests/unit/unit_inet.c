/* The pure parts of file_inet.c: FILE_TCP entries checked (family, state, addresses,
 * ports, backlog, options, congestion control names), and names in the allowed
 * congestion control list. */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "file_inet.h"
#include "unit.h"

static uint8_t lo4[4] = { 127, 0, 0, 1 };

/* A sound listener on 127.0.0.1:8080. */
static void listener(FileEntry *e, InetSocket *s, SkOpts *o, InetTcpOpts *t)
{
	file_entry__init(e);
	inet_socket__init(s);
	sk_opts__init(o);
	inet_tcp_opts__init(t);
	e->id = 3;
	e->kind = FILE_KIND__FILE_TCP;
	e->tcp = s;
	s->family = AF_INET;
	s->state = 10;
	s->ino = 1234;
	s->has_src_addr = s->has_src_port = s->has_backlog = 1;
	s->src_addr.data = lo4;
	s->src_addr.len = 4;
	s->src_port = 8080;
	s->backlog = 128;
	s->opts = o;
	s->tcp = t;
}

static int check(const FileEntry *e)
{
	cr_err_reset();
	return inet_check_entry(e);
}

static void test_check(void)
{
	uint8_t six[16] = { [15] = 1 };
	FileEntry e;
	InetSocket s;
	SkOpts o;
	InetTcpOpts t;

	unit_case();
	listener(&e, &s, &o, &t);
	CHECK(!check(&e), "a listener: %s", err_text());
	s.family = AF_UNIX;
	CHECK(check(&e) && err_has("file 3 is invalid"), "AF_UNIX");
	s.family = AF_INET6;
	CHECK(check(&e) && err_has("TCP socket file 3 has an address of family 10 and 4 bytes"),
	      "4 bytes for AF_INET6: %s", err_text());
	s.src_addr.data = six;
	s.src_addr.len = 16;
	CHECK(!check(&e), "a v6 listener: %s", err_text());
	s.family = AF_INET;
	s.src_addr.data = lo4;
	s.src_addr.len = 4;
	unit_case();
	s.src_port = 70000;
	CHECK(check(&e) && err_has("port 70000"), "port 70000: %s", err_text());
	s.src_port = 0;
	CHECK(check(&e) && err_has("without a port"), "listening on port 0");
	s.src_port = 8080;
	unit_case();
	s.state = 1;
	CHECK(check(&e) && err_has("bad addresses"), "a connection without a peer");
	s.has_backlog = 0;
	s.has_dst_addr = s.has_dst_port = 1;
	s.dst_addr.data = lo4;
	s.dst_addr.len = 4;
	s.dst_port = 40000;
	CHECK(!check(&e), "a connection dumped with --tcp-close: %s", err_text());
	s.dst_port = 0;
	CHECK(check(&e) && err_has("bad addresses"), "a connection to port 0");
	s.dst_port = 40000;
	{
		TcpConn c;

		tcp_conn__init(&c);
		c.state = 8;
		c.mss = 1460;
		s.conn = &c;
		CHECK(check(&e) && err_has("inconsistent"), "a TcpConn of another state");
		c.state = 1;
		CHECK(!check(&e), "a connection with its state: %s", err_text());
		c.unsent = 5;
		CHECK(check(&e) && err_has("send queue"), "its state is checked too");
		s.conn = NULL;
	}
	s.state = 12;
	CHECK(check(&e) && err_has("state 12"), "state 12");
	s.has_dst_addr = s.has_dst_port = 0;
	s.has_backlog = 1;
	s.state = 7;
	CHECK(check(&e) && err_has("does not listen"), "a closed socket with a backlog");
	s.has_backlog = 0;
	CHECK(!check(&e), "a bound socket: %s", err_text());
	s.has_src_addr = s.has_src_port = 0;
	CHECK(!check(&e), "an unbound socket: %s", err_text());
	s.has_src_port = 1;
	CHECK(check(&e) && err_has("bad local address"), "a port without an address");
	s.has_src_addr = 1;
	unit_case();
	s.has_dst_addr = 1;
	CHECK(check(&e) && err_has("not connected"), "a peer on a closed socket");
	s.has_dst_addr = 0;
	s.state = 10;
	s.has_backlog = 1;
	s.backlog = 70000;
	CHECK(check(&e) && err_has("backlog of 70000"), "a huge backlog");
	s.backlog = 5;
	unit_case();
	o.has_ip_ttl = 1;
	o.ip_ttl = 300;
	CHECK(check(&e) && err_has("IP_TTL"), "a bad TTL");
	o.ip_ttl = 64;
	t.has_keepcnt = 1;
	t.keepcnt = 0;
	CHECK(check(&e) && err_has("TCP_KEEPCNT"), "a keepalive count of 0");
	t.keepcnt = 9;
	unit_case();
	t.has_save_syn = 1;
	t.save_syn = 3;
	CHECK(check(&e) && err_has("TCP_SAVE_SYN"), "save_syn 3");
	t.save_syn = 1;
	t.congestion = "bbr";
	CHECK(!check(&e), "bbr: %s", err_text());
	t.congestion = "../x";
	CHECK(check(&e) && err_has("congestion"), "a path as congestion control");
	t.congestion = "";
	CHECK(check(&e) && err_has("congestion"), "an empty name");
	unit_case();
	e.tcp = NULL;
	CHECK(check(&e) && err_has("invalid"), "no InetSocket");
}

static void test_cc(void)
{
	unit_case();
	CHECK(inet_cc_name_ok("cubic") && inet_cc_name_ok("dctcp") && inet_cc_name_ok("h_tcp"),
	      "usual names");
	CHECK(!inet_cc_name_ok("a-name-of-sixteen") && !inet_cc_name_ok("a b"), "bad names");
	CHECK(inet_cc_in_list("reno cubic\n", "cubic") && inet_cc_in_list("reno cubic", "reno"),
	      "in the list");
	CHECK(!inet_cc_in_list("reno cubic\n", "cub") && !inet_cc_in_list("", "reno") &&
	      !inet_cc_in_list("renox", "reno"), "not in the list");
}

int main(void)
{
	test_check();
	test_cc();
	return unit_done("unit_inet");
}
