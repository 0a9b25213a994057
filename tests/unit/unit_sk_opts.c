/* sk_opts.c: image checks of SkOpts (bounds, filters, rights), inet addresses from the
 * image and as printed, and options read from one loopback socket set again on a new
 * one (no ptrace, no network beyond the sockets themselves). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/bpf.h>
#include <linux/filter.h>

#include "sk_opts.h"
#include "unit.h"

static void test_check(void)
{
	struct sock_filter insn[2] = { { 0x06, 0, 0, 0xffff } };
	SkOpts o;

	unit_case();
	sk_opts__init(&o);
	CHECK(!sk_opts_check(&o), "empty options: %s", err_text());
	CHECK(!sk_opts_check(NULL), "no options");
	o.has_ip_tos = 1;
	o.ip_tos = 256;
	CHECK(sk_opts_check(&o) && err_has("IP_TOS"), "a TOS above 255");
	o.ip_tos = 0x10;
	CHECK(!sk_opts_check(&o), "a TOS: %s", err_text());
	unit_case();
	o.has_ip_ttl = 1;
	o.ip_ttl = 0;
	CHECK(sk_opts_check(&o) && err_has("IP_TTL"), "a TTL of 0");
	o.ip_ttl = 64;
	o.has_mark = 1;
	o.mark = 0xffffffffu;
	CHECK(!sk_opts_check(&o), "a mark of all ones: %s", err_text());
	unit_case();
	o.has_reuseaddr = 1;
	o.reuseaddr = 2;
	CHECK(sk_opts_check(&o) && err_has("SO_REUSEADDR"), "a boolean of 2: %s", err_text());
	o.reuseaddr = 1;
	unit_case();
	o.has_rcvbuf = 1;
	o.rcvbuf = 0x80000000u;
	CHECK(sk_opts_check(&o) && err_has("buffer"), "a buffer past INT_MAX");
	o.rcvbuf = 65536;
	unit_case();
	o.has_linger_on = o.has_linger_secs = 1;
	o.linger_secs = -1;
	CHECK(sk_opts_check(&o) && err_has("LINGER"), "a negative linger");
	o.linger_secs = 5;
	unit_case();
	o.bindtodevice = "lo/x";
	CHECK(sk_opts_check(&o) && err_has("BINDTODEVICE"), "a device with a slash");
	o.bindtodevice = "a-name-too-long-for-it";
	CHECK(sk_opts_check(&o) && err_has("BINDTODEVICE"), "a device name too long");
	o.bindtodevice = "lo";
	CHECK(!sk_opts_check(&o), "lo: %s", err_text());
	unit_case();
	o.has_filter = 1;
	o.filter.data = (uint8_t *)insn;
	o.filter.len = 12;
	CHECK(sk_opts_check(&o) && err_has("filter of 12"), "a filter of a partial insn");
	unit_case();
	o.filter.len = 0;
	CHECK(sk_opts_check(&o) && err_has("filter of 0"), "an empty filter");
	unit_case();
	o.filter.len = 4097 * 8;
	CHECK(sk_opts_check(&o) && err_has("filter"), "a filter too long");
	unit_case();
	o.has_filter = 0;
	o.has_lock_filter = o.lock_filter = 1;
	CHECK(sk_opts_check(&o) && err_has("locked"), "a lock without filter");
	o.has_lock_filter = o.lock_filter = 0;
	unit_case();
	o.has_rcvtimeo_us = 1;
	o.rcvtimeo_us = ~0ull;
	CHECK(sk_opts_check(&o) && err_has("timeout"), "a timeout out of range");
}

static void test_rights(void)
{
	SkOpts o;

	unit_case();
	sk_opts__init(&o);
	o.has_priority = 1;
	o.priority = 6;
	CHECK(!sk_opts_check_rights(&o, true, "fd 3"), "priority 6: %s", err_text());
	o.priority = 7;
	CHECK(sk_opts_check_rights(&o, true, "fd 3") && err_has("fd 3 sets SO_PRIORITY"),
	      "priority 7 for another user: %s", err_text());
	unit_case();
	CHECK(!sk_opts_check_rights(&o, false, "fd 3"), "priority 7 for cryo's own image");
	o.priority = 0;
	o.has_mark = 1;
	o.mark = 3;
	CHECK(sk_opts_check_rights(&o, true, NULL) && err_has("SO_MARK"), "a mark");
	unit_case();
	o.mark = 0;
	o.has_ipv6_transparent = o.ipv6_transparent = 1;
	CHECK(sk_opts_check_rights(&o, true, NULL) && err_has("TRANSPARENT"), "transparent");
}

static void test_addrs(void)
{
	uint8_t v4[4] = { 127, 0, 0, 1 }, v6[16] = { [15] = 1 }, any[16] = { 0 };
	uint8_t mapped[16] = { [10] = 0xff, [11] = 0xff, 127, 0, 0, 1 };
	ProtobufCBinaryData a = { 4, v4 };
	struct sockaddr_storage ss;
	char s[80];
	socklen_t l;

	unit_case();
	CHECK(!inet_addr_from_image(AF_INET, &a, 80, "x", &ss, &l) && l == sizeof(struct sockaddr_in) &&
	      ((struct sockaddr_in *)&ss)->sin_port == htons(80), "a v4 address: %s", err_text());
	CHECK(inet_addr_from_image(AF_INET6, &a, 80, "fd 4", &ss, &l) &&
	      err_has("fd 4 has an address of family 10 and 4 bytes"), "4 bytes for v6");
	unit_case();
	CHECK(inet_addr_from_image(AF_INET, &a, 65536, "x", &ss, &l) && err_has("port 65536"),
	      "a port too big");
	unit_case();
	CHECK(inet_addr_from_image(AF_UNIX, &a, 1, "x", &ss, &l), "AF_UNIX");
	a.data = v6;
	a.len = 16;
	unit_case();
	CHECK(!inet_addr_from_image(AF_INET6, &a, 443, "x", &ss, &l) &&
	      l == sizeof(struct sockaddr_in6), "a v6 address: %s", err_text());
	inet_addr_str(AF_INET, v4, 80, s, sizeof(s));
	CHECK(!strcmp(s, "127.0.0.1:80"), "v4 printed: %s", s);
	inet_addr_str(AF_INET6, v6, 80, s, sizeof(s));
	CHECK(!strcmp(s, "[::1]:80"), "v6 printed: %s", s);
	inet_addr_str(AF_INET6, mapped, 1, s, sizeof(s));
	CHECK(!strcmp(s, "[::ffff:127.0.0.1]:1"), "v4-mapped printed: %s", s);
	inet_addr_str(AF_INET6, any, 0, s, sizeof(s));
	CHECK(!strcmp(s, "[::]:0"), "v6 any printed: %s", s);
	CHECK(inet_addr_is_any(AF_INET6, any) && inet_addr_is_any(AF_INET, any) &&
	      !inet_addr_is_any(AF_INET, v4) && !inet_addr_is_any(AF_INET6, v6), "wildcards");
	unit_case();
	CHECK(!inet_addr_local_check(AF_INET, v4, 80, "fd 4"), "127.0.0.1 is here: %s",
	      err_text());
	CHECK(!inet_addr_local_check(AF_INET6, any, 80, "fd 4"), "any is here");
	/* TEST-NET-3 (RFC 5737): no host has it. */
	v4[0] = 203, v4[1] = 0, v4[2] = 113, v4[3] = 7;
	CHECK(inet_addr_local_check(AF_INET, v4, 80, "fd 4") &&
	      err_has("fd 4 is bound to 203.0.113.7:80, an address this host does not have"),
	      "an address not here: %s", err_text());
}

static int get(int sk, int lvl, int opt)
{
	int v = -12345;
	socklen_t l = sizeof(v);

	getsockopt(sk, lvl, opt, &v, &l);
	return v;
}

static void set(int sk, int lvl, int opt, int v)
{
	if (setsockopt(sk, lvl, opt, &v, sizeof(v)))
		printf("cannot set option %d/%d: %s\n", lvl, opt, strerror(errno));
}

/* Non-default options on one socket, dumped, restored on a new one, read back. */
static void test_roundtrip(int family)
{
	struct sock_filter insn[2] = { { 0x06, 0, 0, 0x40000 }, { 0x06, 0, 0, 0 } };
	struct sock_fprog prog = { 2, insn };
	struct linger lg = { 1, 7 }, lg2;
	struct timeval tv = { 2, 500000 }, tv2;
	int a = socket(family, SOCK_STREAM, 0), b = socket(family, SOCK_STREAM, 0), n;
	SkOpts *o = NULL;
	socklen_t l;

	unit_case();
	set(a, SOL_SOCKET, SO_REUSEADDR, 1);
	set(a, SOL_SOCKET, SO_KEEPALIVE, 1);
	set(a, SOL_SOCKET, SO_RCVBUF, 50000);
	set(a, SOL_SOCKET, SO_MARK, 77);
	set(a, SOL_SOCKET, SO_RCVLOWAT, 9);
	set(a, SOL_SOCKET, SO_OOBINLINE, 1);
	setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(a, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
	set(a, IPPROTO_IP, IP_TOS, 0x20);
	set(a, IPPROTO_IP, IP_TTL, 33);
	set(a, IPPROTO_IP, IP_FREEBIND, 1);
	set(a, SOL_SOCKET, SO_PRIORITY, 5);	/* after IP_TOS, which sets it too */
	if (family == AF_INET6) {
		set(a, IPPROTO_IPV6, IPV6_V6ONLY, 1);
		set(a, IPPROTO_IPV6, IPV6_TCLASS, 0x28);
		set(a, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 17);
	}
	CHECK(!sk_opts_dump_for(a, family, "socket a", &o) && o, "dump: %s", err_text());
	if (!o)
		goto out;
	CHECK(o->has_filter && o->filter.len == 16, "the filter dumped");
	CHECK(!sk_opts_check(o), "the dump is sound: %s", err_text());
	CHECK(!sk_opts_restore_for(b, family, o, false, "socket b"), "restore: %s", err_text());
	CHECK(get(b, SOL_SOCKET, SO_REUSEADDR) == 1 && get(b, SOL_SOCKET, SO_KEEPALIVE) == 1,
	      "reuseaddr, keepalive");
	CHECK(get(b, SOL_SOCKET, SO_RCVBUF) == get(a, SOL_SOCKET, SO_RCVBUF), "rcvbuf %d %d",
	      get(b, SOL_SOCKET, SO_RCVBUF), get(a, SOL_SOCKET, SO_RCVBUF));
	CHECK(get(b, SOL_SOCKET, SO_SNDBUF) == get(a, SOL_SOCKET, SO_SNDBUF), "sndbuf");
	CHECK(get(b, SOL_SOCKET, SO_PRIORITY) == 5 && get(b, SOL_SOCKET, SO_MARK) == 77 &&
	      get(b, SOL_SOCKET, SO_RCVLOWAT) == 9 && get(b, SOL_SOCKET, SO_OOBINLINE) == 1,
	      "priority %d, mark, rcvlowat, oobinline", get(b, SOL_SOCKET, SO_PRIORITY));
	l = sizeof(lg2);
	CHECK(!getsockopt(b, SOL_SOCKET, SO_LINGER, &lg2, &l) && lg2.l_onoff && lg2.l_linger == 7,
	      "linger");
	l = sizeof(tv2);
	CHECK(!getsockopt(b, SOL_SOCKET, SO_RCVTIMEO, &tv2, &l) && tv2.tv_sec == 2 &&
	      tv2.tv_usec == 500000, "rcvtimeo");
	l = 0;
	n = getsockopt(b, SOL_SOCKET, SO_GET_FILTER, NULL, &l);
	CHECK(!n && l == 2, "the filter restored (%u insns)", l);
	CHECK(get(b, IPPROTO_IP, IP_TOS) == 0x20 && get(b, IPPROTO_IP, IP_TTL) == 33 &&
	      get(b, IPPROTO_IP, IP_FREEBIND) == 1, "tos %d, ttl, freebind",
	      get(b, IPPROTO_IP, IP_TOS));
	if (family == AF_INET6)
		CHECK(get(b, IPPROTO_IPV6, IPV6_V6ONLY) == 1 &&
		      get(b, IPPROTO_IPV6, IPV6_TCLASS) == 0x28 &&
		      get(b, IPPROTO_IPV6, IPV6_UNICAST_HOPS) == 17, "v6only, tclass, hops");
	unit_case();
	o->has_mark = 1;
	CHECK(sk_opts_restore_for(b, family, o, true, "socket b") && err_has("SO_MARK"),
	      "another user's image with a mark");
out:
	sk_opts_free(o);
	close(a);
	close(b);
}

/* An eBPF filter (return 0) attached with SO_ATTACH_BPF: refused at dump. */
static void test_ebpf(void)
{
	struct bpf_insn prog[2] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr a;
	int sk = socket(AF_INET, SOCK_STREAM, 0), pfd;
	SkOpts *o = NULL;

	unit_case();
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	a.insns = (unsigned long)prog;
	a.insn_cnt = 2;
	a.license = (unsigned long)"GPL";
	pfd = syscall(__NR_bpf, BPF_PROG_LOAD, &a, sizeof(a));
	CHECK(pfd >= 0 && !setsockopt(sk, SOL_SOCKET, SO_ATTACH_BPF, &pfd, sizeof(pfd)),
	      "cannot attach an eBPF filter: %s", strerror(errno));
	CHECK(sk_opts_dump_for(sk, AF_INET, "fd 7", &o) && !o &&
	      err_has("fd 7 has an eBPF socket filter (SO_ATTACH_BPF)"), "eBPF: %s", err_text());
	if (pfd >= 0)
		close(pfd);
	close(sk);
}

/* An accepted IPv4 connection: the kernel gave it the SYN's TTL as IP_MULTICAST_TTL,
 * which no stream socket may be set to; it is not dumped, and the rest goes on a new
 * socket. */
static void test_accepted(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0), a = -1;
	int b = socket(AF_INET, SOCK_STREAM, 0);
	SkOpts *o = NULL;

	unit_case();
	CHECK(sk_opt_kernel_only(IPPROTO_IP, IP_MULTICAST_TTL, SOCK_STREAM) &&
	      !sk_opt_kernel_only(IPPROTO_IP, IP_MULTICAST_TTL, SOCK_DGRAM) &&
	      !sk_opt_kernel_only(IPPROTO_IP, IP_TTL, SOCK_STREAM), "which options");
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sa, &len) ||
	    connect(c, (struct sockaddr *)&sa, sizeof(sa)) || (a = accept(l, NULL, NULL)) < 0) {
		CHECK(0, "no loopback connection: %s", strerror(errno));
		goto out;
	}
	unit_case();
	CHECK(get(a, IPPROTO_IP, IP_MULTICAST_TTL) > 1, "the kernel's multicast TTL (%d)",
	      get(a, IPPROTO_IP, IP_MULTICAST_TTL));
	CHECK(!sk_opts_dump_for(a, AF_INET, "accepted", &o) && o, "dump: %s", err_text());
	if (!o)
		goto out;
	CHECK(!o->has_ip_multicast_ttl, "IP_MULTICAST_TTL left out");
	o->has_ip_multicast_ttl = 1;
	o->ip_multicast_ttl = 64;
	CHECK(!sk_opts_restore_for(b, AF_INET, o, false, "new"), "restore: %s", err_text());
out:
	sk_opts_free(o);
	close(l);
	close(c);
	close(b);
	if (a >= 0)
		close(a);
}

int main(void)
{
	test_accepted();
	test_ebpf();
	test_check();
	test_rights();
	test_addrs();
	test_roundtrip(AF_INET);
	test_roundtrip(AF_INET6);
	return unit_done("unit_sk_opts");
}
