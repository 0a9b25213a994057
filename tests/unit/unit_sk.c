/* The pure parts of the UDP, netlink, packet and raw socket kinds: sock_diag answers
 * (whole and damaged), /proc/net/raw and igmp lines, the IP packets restore makes of
 * queued datagrams, and image entries checked (bad images). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/if_packet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/netlink_diag.h>
#include <linux/packet_diag.h>

#include "file_sk.h"
#include "unit.h"

static size_t put_attr(uint8_t *buf, size_t at, int type, const void *data, size_t len)
{
	struct nlattr a = { NLA_HDRLEN + len, type };

	memcpy(buf + at, &a, sizeof(a));
	memcpy(buf + at + NLA_HDRLEN, data, len);
	return at + NLA_ALIGN(NLA_HDRLEN + len);
}

static void test_netlink_diag(void)
{
	uint8_t buf[256] = { 0 };
	struct netlink_diag_msg m = { .ndiag_family = AF_NETLINK, .ndiag_type = SOCK_RAW,
				      .ndiag_protocol = 0, .ndiag_portid = 77, .ndiag_ino = 4242,
				      .ndiag_dst_group = 3 };
	uint32_t flags = NDIAG_FLAG_CB_RUNNING | NDIAG_FLAG_PKTINFO;
	struct nl_diag d;
	size_t len;

	unit_case();
	memcpy(buf, &m, sizeof(m));
	len = put_attr(buf, NLMSG_ALIGN(sizeof(m)), NETLINK_DIAG_FLAGS, &flags, 4);
	CHECK(!netlink_diag_parse(buf, len, &d), "a whole answer: %s", err_text());
	CHECK(d.ino == 4242 && d.portid == 77 && d.dst_group == 3 && d.has_flags &&
	      d.flags == flags, "fields: ino %u portid %u flags %x", d.ino, d.portid, d.flags);
	unit_case();
	CHECK(netlink_diag_parse(buf, 8, &d) && err_has("short"), "a short answer");
	unit_case();
	buf[NLMSG_ALIGN(sizeof(m))] = 200;	/* nla_len past the end */
	CHECK(netlink_diag_parse(buf, len, &d) && err_has("damaged"), "a damaged attribute");
	unit_case();
	m.ndiag_family = AF_INET;
	memcpy(buf, &m, sizeof(m));
	CHECK(netlink_diag_parse(buf, sizeof(m), &d) && err_has("foreign"), "another family");
}

static size_t packet_sample(uint8_t *buf)
{
	struct packet_diag_msg m = { .pdiag_family = AF_PACKET, .pdiag_type = SOCK_DGRAM,
				     .pdiag_num = 0x88b5, .pdiag_ino = 99 };
	struct packet_diag_info pi = { .pdi_index = 1, .pdi_version = TPACKET_V2,
				       .pdi_flags = PDI_RUNNING | PDI_AUXDATA };
	struct packet_diag_mclist mc = { .pdmc_index = 1, .pdmc_count = 2,
					 .pdmc_type = PACKET_MR_MULTICAST, .pdmc_alen = 6,
					 .pdmc_addr = { 1, 0, 0x5e, 1, 2, 3 } };
	size_t at = NLMSG_ALIGN(sizeof(m));

	memset(buf, 0, 512);
	memcpy(buf, &m, sizeof(m));
	at = put_attr(buf, at, PACKET_DIAG_INFO, &pi, sizeof(pi));
	return put_attr(buf, at, PACKET_DIAG_MCLIST, &mc, sizeof(mc));
}

static void test_packet_diag(void)
{
	uint8_t buf[512];
	struct pk_diag *d = malloc(sizeof(*d));
	struct packet_diag_mclist mc = { .pdmc_alen = 40 };
	uint32_t fanout = 7;
	size_t len = packet_sample(buf), at;

	unit_case();
	CHECK(!packet_diag_parse(buf, len, d), "a whole answer: %s", err_text());
	CHECK(d->ino == 99 && d->protocol == 0x88b5 && d->has_info && d->ifindex == 1 &&
	      d->version == TPACKET_V2 && d->flags == (PDI_RUNNING | PDI_AUXDATA),
	      "info: proto %x ifindex %u", d->protocol, d->ifindex);
	CHECK(d->nr_mc == 1 && d->mc[0].count == 2 && d->mc[0].alen == 6 && d->mc[0].addr[5] == 3,
	      "membership");
	CHECK(!d->rx_ring && !d->tx_ring && !d->fanout, "no ring, no fanout");
	unit_case();
	at = put_attr(buf, len, PACKET_DIAG_FANOUT, &fanout, 4);
	at = put_attr(buf, at, PACKET_DIAG_RX_RING, &fanout, 4);
	CHECK(!packet_diag_parse(buf, at, d) && d->fanout && d->fanout_val == 7 && d->rx_ring,
	      "fanout and ring seen");
	unit_case();
	at = put_attr(buf, len, PACKET_DIAG_MCLIST, &mc, sizeof(mc));
	CHECK(packet_diag_parse(buf, at, d) && err_has("40 bytes"), "a membership address too long");
	unit_case();
	at = put_attr(buf, len, PACKET_DIAG_INFO, &fanout, 4);
	CHECK(packet_diag_parse(buf, at, d) && err_has("short info"), "a short info attribute");
	unit_case();
	CHECK(packet_diag_parse(buf, 4, d) && err_has("short"), "a short answer");
	free(d);
}

static void test_proc_raw(void)
{
	static const char v4[] =
		"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
		"   uid  timeout inode ref pointer drops\n"
		"  1: 0100007F:00FD 0200007F:0000 01 00000000:00000000 00:00000000 00000000"
		"     0        0 555 2 0000000000000000 0\n"
		"  2: garbage\n"
		"  3: 0100007F:00FD 00000000:0000 07 00000000:00000000 00:00000000 00000000"
		"     0        0 556 2 0000000000000000 0\n";
	static const char v6[] =
		"  sl  local_address                         remote_address                  "
		"      st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
		"  9: 00000000000000000000000001000000:003A 00000000000000000000000001000000:0000 "
		"01 00000000:00000000 00:00000000 00000000     0        0 777 2 0000000000000000 0\n";
	struct sk_inet_addr a;
	uint32_t want = htonl(0x7f000002);

	unit_case();
	CHECK(!raw_proc_peer(v4, AF_INET, 555, &a) && a.set && a.len == 4 &&
	      !memcmp(a.addr, &want, 4), "a connected raw socket's peer");
	CHECK(!raw_proc_peer(v4, AF_INET, 556, &a) && !a.set, "an unconnected one");
	CHECK(raw_proc_peer(v4, AF_INET, 557, &a) == 1, "a socket not listed");
	CHECK(!raw_proc_peer(v6, AF_INET6, 777, &a) && a.set && a.len == 16 && a.addr[15] == 1 &&
	      !a.addr[0], "an IPv6 peer (::1)");
	CHECK(raw_proc_peer(v6, AF_INET, 777, &a) == 1, "an IPv6 line read as IPv4");
}

static void test_netlink_check(void)
{
	FileEntry e = FILE_ENTRY__INIT;
	NetlinkSocket n = NETLINK_SOCKET__INIT;
	uint32_t groups[2] = { 1, 40 };

	e.id = 3;
	e.netlink = &n;
	n.type = SOCK_RAW;
	n.groups = groups;
	n.n_groups = 2;
	unit_case();
	CHECK(!netlink_check_entry(&e), "a route socket in two groups: %s", err_text());
	unit_case();
	n.protocol = 32;
	CHECK(netlink_check_entry(&e) && err_has("file 3 is invalid"), "protocol 32");
	n.protocol = 0;
	unit_case();
	n.type = SOCK_STREAM;
	CHECK(netlink_check_entry(&e) && err_has("invalid"), "a stream netlink socket");
	n.type = SOCK_DGRAM;
	unit_case();
	groups[0] = 0;
	CHECK(netlink_check_entry(&e) && err_has("group 0"), "group 0");
	groups[0] = 1;
	unit_case();
	n.has_dst_group = 1;
	n.dst_group = 33;
	CHECK(netlink_check_entry(&e) && err_has("sends to group 33"), "a peer group above 32");
	unit_case();
	e.netlink = NULL;
	CHECK(netlink_check_entry(&e) && err_has("invalid"), "no submessage");
}

static void test_packet_check(void)
{
	FileEntry e = FILE_ENTRY__INIT;
	PacketSocket k = PACKET_SOCKET__INIT;
	PacketMembership m = PACKET_MEMBERSHIP__INIT, *ms[1] = { &m };
	uint8_t addr[6] = { 1 };

	e.id = 4;
	e.packet = &k;
	k.type = SOCK_DGRAM;
	k.protocol = 0x88b5;
	k.has_ifindex = 1;
	k.ifindex = 1;
	k.ifname = "lo";
	m.ifindex = 1;
	m.ifname = "lo";
	m.count = 1;
	m.has_addr = 1;
	m.addr.data = addr;
	m.addr.len = 6;
	k.memberships = ms;
	k.n_memberships = 1;
	unit_case();
	CHECK(!packet_check_entry(&e), "a bound packet socket: %s", err_text());
	unit_case();
	k.protocol = 0x10000;
	CHECK(packet_check_entry(&e) && err_has("invalid"), "a protocol of 17 bits");
	k.protocol = 3;
	unit_case();
	k.ifname = "../x";
	CHECK(packet_check_entry(&e) && err_has("bad interface"), "a name with a slash");
	k.ifname = NULL;
	unit_case();
	CHECK(packet_check_entry(&e) && err_has("bad interface"), "an index without a name");
	k.ifname = "lo";
	unit_case();
	k.version = 9;
	CHECK(packet_check_entry(&e) && err_has("bad options"), "TPACKET version 9");
	k.version = TPACKET_V3;
	unit_case();
	m.addr.len = 33;
	CHECK(packet_check_entry(&e) && err_has("bad membership"), "a 33-byte address");
	m.addr.len = 6;
	unit_case();
	m.count = 0;
	CHECK(packet_check_entry(&e) && err_has("bad membership"), "a membership added 0 times");
}

static void test_raw_check(void)
{
	FileEntry e = FILE_ENTRY__INIT;
	RawSocket r = RAW_SOCKET__INIT;
	uint8_t a4[4] = { 127, 0, 0, 1 }, f6[32] = { 0 };

	e.id = 5;
	e.raw = &r;
	r.family = AF_INET;
	r.type = SOCK_DGRAM;
	r.protocol = IPPROTO_ICMP;
	r.has_addr = 1;
	r.addr.data = a4;
	r.addr.len = 4;
	r.has_port = 1;
	r.port = 7;
	unit_case();
	CHECK(!raw_check_entry(&e), "a bound ping socket: %s", err_text());
	unit_case();
	r.protocol = IPPROTO_UDP;
	CHECK(raw_check_entry(&e) && err_has("invalid"), "a UDP socket as a ping socket");
	r.type = SOCK_RAW;
	unit_case();
	CHECK(raw_check_entry(&e) && err_has("bad address"), "a raw socket with a port");
	r.has_port = 0;
	unit_case();
	r.addr.len = 16;
	CHECK(raw_check_entry(&e) && err_has("bad address"), "16 bytes of IPv4 address");
	r.addr.len = 4;
	unit_case();
	r.has_icmp_filter = 1;
	CHECK(raw_check_entry(&e) && err_has("ICMP filter"), "ICMP_FILTER on a UDP raw socket");
	r.protocol = IPPROTO_ICMP;
	CHECK(!raw_check_entry(&e), "ICMP_FILTER on an ICMP raw socket: %s", err_text());
	unit_case();
	r.has_icmp6_filter = 1;
	r.icmp6_filter.data = f6;
	r.icmp6_filter.len = 32;
	CHECK(raw_check_entry(&e) && err_has("ICMP filter"), "ICMP6_FILTER on an IPv4 socket");
	r.has_icmp6_filter = 0;
	unit_case();
	r.has_checksum = 1;
	r.checksum = 2;
	CHECK(raw_check_entry(&e) && err_has("IPV6_CHECKSUM"), "IPV6_CHECKSUM on IPv4");
	r.has_checksum = 0;
	unit_case();
	r.family = AF_UNIX;
	CHECK(raw_check_entry(&e) && err_has("invalid"), "another family");
	unit_case();
	r.family = AF_INET;
	r.protocol = 0;
	CHECK(raw_check_entry(&e) && err_has("invalid"), "a raw socket of protocol 0");
}

static void test_udp_diag(void)
{
	uint8_t buf[256] = { 0 };
	struct inet_diag_msg m = { .idiag_family = AF_INET, .idiag_inode = 31337,
				   .idiag_rqueue = 640, .idiag_wqueue = 8,
				   .id = { .idiag_sport = htons(5353) } };
	uint8_t shut = 2;
	struct udp_diag d;
	size_t len;

	unit_case();
	memcpy(buf, &m, sizeof(m));
	len = put_attr(buf, NLMSG_ALIGN(sizeof(m)), INET_DIAG_SHUTDOWN, &shut, 1);
	CHECK(!udp_diag_parse(buf, len, &d) && d.ino == 31337 && d.rqueue == 640 &&
	      d.wqueue == 8 && d.sport == 5353 && d.has_shutdown && d.shutdown == 2, "a whole answer: %s", err_text());
	unit_case();
	buf[NLMSG_ALIGN(sizeof(m))] = 0xff;
	CHECK(udp_diag_parse(buf, len, &d) && err_has("damaged"), "a damaged attribute");
	unit_case();
	CHECK(udp_diag_parse(buf, 10, &d) && err_has("short"), "a short answer");
}

static void test_igmp(void)
{
	static const char v4[] =
		"Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"
		"1\tlo        :     2      V3\n"
		"\t\t\t\t9A35C1EF     1 0:00000000\t\t0\n"
		"\t\t\t\t010000E0     1 0:00000000\t\t0\n"
		"4\teth0      :     1      V3\n"
		"\t\t\t\t010000E0     1 0:00000000\t\t0\n";
	static const char v6[] =
		"1    lo              ff020000000000000000000000000001     1 0000000C 0\n"
		"2    eth0            ff0200000000000000000001ff000001     1 00000004 0\n";
	struct udp_group g[8];

	unit_case();
	CHECK(udp_igmp_groups(v4, AF_INET, g, 8) == 3, "three IPv4 groups");
	CHECK(g[0].ifindex == 1 && g[0].len == 4 && g[0].addr[0] == 239 && g[0].addr[1] == 193 &&
	      g[0].addr[3] == 154, "239.193.53.154 on lo");
	CHECK(g[2].ifindex == 4 && g[2].addr[0] == 224 && g[2].addr[3] == 1, "224.0.0.1 on eth0");
	CHECK(udp_igmp_groups(v4, AF_INET, g, 1) == 1, "at most the room given");
	CHECK(udp_igmp_groups(v6, AF_INET6, g, 8) == 2 && g[1].ifindex == 2 && g[1].len == 16 &&
	      g[1].addr[0] == 0xff && g[1].addr[11] == 1 && g[1].addr[12] == 0xff,
	      "IPv6 groups");
	CHECK(udp_igmp_groups("garbage\n\tzz\n", AF_INET, g, 8) == 0, "garbage");
}

/* The ones' complement sum of a UDP packet with its pseudo header is all ones. */
static void test_udp_packet(void)
{
	uint8_t out[128], pseudo[40] = { 0 };
	struct udp_pkt p = { .family = AF_INET, .protocol = IPPROTO_UDP, .sport = 1000,
			     .dport = 2000, .data = (const uint8_t *)"hello", .len = 5 };
	uint32_t sum = 0;
	size_t n;

	p.src[0] = p.dst[0] = 127;
	p.src[3] = 2;
	p.dst[3] = 1;
	unit_case();
	n = udp_make_packet(&p, out, sizeof(out));
	CHECK(n == 20 + 8 + 5 && out[0] == 0x45 && out[9] == IPPROTO_UDP && out[12] == 127 &&
	      out[15] == 2 && out[19] == 1, "an IPv4 header");
	CHECK(out[20] == 1000 >> 8 && out[23] == (2000 & 0xff) && out[25] == 13, "a UDP header");
	memcpy(pseudo, out + 12, 8);
	pseudo[9] = IPPROTO_UDP;
	pseudo[11] = 13;
	for (int i = 0; i < 12; i += 2)
		sum += pseudo[i] << 8 | pseudo[i + 1];
	for (size_t i = 20; i < n; i += 2)
		sum += out[i] << 8 | (i + 1 < n ? out[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	CHECK(sum == 0xffff, "the checksum adds up (0x%x)", sum);
	unit_case();
	p.family = AF_INET6;
	p.protocol = IPPROTO_UDPLITE;
	n = udp_make_packet(&p, out, sizeof(out));
	CHECK(n == 40 + 8 + 5 && out[0] >> 4 == 6 && out[6] == IPPROTO_UDPLITE && !out[44] &&
	      !out[45], "a UDP-lite packet over IPv6, covered whole");
	CHECK(!udp_make_packet(&p, out, 50), "no room");
}

static void test_udp_check(void)
{
	FileEntry e = FILE_ENTRY__INIT;
	UdpSocket u = UDP_SOCKET__INIT;
	UdpDatagram d = UDP_DATAGRAM__INIT, *q[1] = { &d };
	UdpMembership m = UDP_MEMBERSHIP__INIT, *ms[1] = { &m };
	uint8_t a4[4] = { 127, 0, 0, 1 }, g4[4] = { 239, 1, 2, 3 };

	e.id = 6;
	e.udp = &u;
	u.family = AF_INET;
	u.protocol = IPPROTO_UDP;
	u.has_addr = u.has_port = 1;
	u.addr.data = a4;
	u.addr.len = 4;
	u.port = 5353;
	d.data.data = a4;
	d.data.len = 4;
	d.from.data = a4;
	d.from.len = 4;
	d.from_port = 9;
	u.queue = q;
	u.n_queue = 1;
	m.ifindex = 1;
	m.ifname = "lo";
	m.group.data = g4;
	m.group.len = 4;
	u.memberships = ms;
	u.n_memberships = 1;
	unit_case();
	CHECK(!udp_check_entry(&e), "a bound socket with a datagram and a group: %s", err_text());
	unit_case();
	u.protocol = IPPROTO_TCP;
	CHECK(udp_check_entry(&e) && err_has("invalid"), "a TCP protocol");
	u.protocol = IPPROTO_UDPLITE;
	unit_case();
	u.addr.len = 16;
	CHECK(udp_check_entry(&e) && err_has("bad address"), "16 bytes of IPv4 address");
	u.addr.len = 4;
	unit_case();
	u.port = 70000;
	CHECK(udp_check_entry(&e) && err_has("bad address"), "port 70000");
	u.port = 5353;
	unit_case();
	u.has_addr_by_connect = u.addr_by_connect = 1;
	CHECK(udp_check_entry(&e) && err_has("bad address"), "an address by connect, no peer");
	u.addr_by_connect = 0;
	unit_case();
	u.has_shutdown = 1;
	u.shutdown = 4;
	CHECK(udp_check_entry(&e) && err_has("shutdown bits"), "shutdown bit 2");
	u.shutdown = 3;
	unit_case();
	d.from.len = 16;
	CHECK(udp_check_entry(&e) && err_has("bad queued datagram"), "an IPv6 source on IPv4");
	d.from.len = 4;
	unit_case();
	u.port = 0;
	CHECK(udp_check_entry(&e) && err_has("queues"), "a queue without a port");
	u.port = 5353;
	unit_case();
	m.include = 1;
	CHECK(udp_check_entry(&e) && err_has("bad membership"), "include mode, no source");
	m.include = 0;
	unit_case();
	m.ifname = "";
	CHECK(udp_check_entry(&e) && err_has("bad membership"), "no interface name");
	m.ifname = "lo";
	unit_case();
	u.family = AF_INET6;
	CHECK(udp_check_entry(&e) && err_has("bad address"), "an IPv4 address on IPv6");
}

int main(void)
{
	test_netlink_diag();
	test_packet_diag();
	test_proc_raw();
	test_netlink_check();
	test_packet_check();
	test_raw_check();
	test_udp_diag();
	test_igmp();
	test_udp_packet();
	test_udp_check();
	return unit_done("unit_sk");
}
