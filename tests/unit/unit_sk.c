/* The pure parts of the netlink, packet and raw socket kinds: sock_diag answers (whole
 * and damaged), /proc/net/raw lines, and image entries checked (bad images). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/if_packet.h>
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

int main(void)
{
	test_netlink_diag();
	test_packet_diag();
	test_proc_raw();
	test_netlink_check();
	test_packet_check();
	test_raw_check();
	return unit_done("unit_sk");
}
