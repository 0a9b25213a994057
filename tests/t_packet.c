/* Packet sockets on lo: a SOCK_DGRAM socket of a local experimental ethertype bound to
 * lo with TPACKET_V2, PACKET_AUXDATA, PACKET_ORIGDEV, a link-layer multicast
 * membership, a receive buffer and a classic BPF filter that takes only frames
 * starting with this run's token (other runs of the test may send frames of the same
 * type on lo meanwhile); a SOCK_RAW socket of protocol 0 (it receives nothing) and
 * O_NONBLOCK. A peer outside the tree exchanges frames with it before the dump and
 * after restore. After restore the program checks from inside the protocol,
 * interface, options, membership and filter, then sends a frame the peer must answer.
 * With an argument, a state the dump must refuse: "ring" (a PACKET_RX_RING), "fanout"
 * (a PACKET_FANOUT group), "queued" (a frame captured, not read). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/if_packet.h>

#include "tlib.h"

#define PROTO 0x88b5		/* IEEE 802 local experimental ethertype 1 */
#define RCVBUF 200000

static int dg, raw, lo;
static uint32_t my_token, peer_token;
static uint8_t mc_addr[6] = { 0x01, 0x00, 0x5e };	/* then this run's PID */

struct frame {
	uint32_t token;			/* whose frame it is (network order) */
	char text[28];
};

static int pk_sock(int type, int proto)
{
	int fd = socket(AF_PACKET, type, htons(proto));

	TL_CHECK(fd >= 0, "socket(AF_PACKET): %s", strerror(errno));
	return fd;
}

/* Only frames starting with `token`. */
static void filter_on(int fd, uint32_t token)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, token, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { 4, code };

	TL_CHECK(!setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)),
		 "SO_ATTACH_FILTER: %s", strerror(errno));
}

static void bind_lo(int fd)
{
	struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(PROTO),
				 .sll_ifindex = lo };

	TL_CHECK(!bind(fd, (struct sockaddr *)&a, sizeof(a)), "bind to lo: %s", strerror(errno));
}

static void send_frame(int fd, uint32_t token, const char *text)
{
	struct frame f = { htonl(token), "" };
	struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(PROTO),
				 .sll_ifindex = lo, .sll_halen = 6 };

	strncpy(f.text, text, sizeof(f.text) - 1);
	TL_CHECK(sendto(fd, &f, sizeof(f), 0, (struct sockaddr *)&a, sizeof(a)) == sizeof(f),
		 "sending a frame: %s", strerror(errno));
}

static void recv_frame(int fd, uint32_t token, const char *text)
{
	struct frame f;
	ssize_t n = recv(fd, &f, sizeof(f), 0);

	TL_CHECK(n >= (ssize_t)sizeof(f), "receiving '%s': %zd: %s", text, n, strerror(errno));
	TL_CHECK(ntohl(f.token) == token && !strncmp(f.text, text, sizeof(f.text)),
		 "got frame %08x '%.28s', not %08x '%s'", ntohl(f.token), f.text, token, text);
}

/* Users of this run's multicast address on lo (/proc/net/dev_mcast), 0 if none. */
static int mc_users(void)
{
	char want[16], line[256], name[32], addr[64];
	FILE *f = fopen("/proc/net/dev_mcast", "r");
	int idx, users, g, n = 0;

	TL_CHECK(f, "/proc/net/dev_mcast: %s", strerror(errno));
	snprintf(want, sizeof(want), "%02x%02x%02x%02x%02x%02x", mc_addr[0], mc_addr[1],
		 mc_addr[2], mc_addr[3], mc_addr[4], mc_addr[5]);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%d %31s %d %d %63s", &idx, name, &users, &g, addr) == 5 &&
		    idx == lo && !strcmp(addr, want))
			n = users;
	fclose(f);
	return n;
}

static int opt(int fd, int level, int o)
{
	int v = -7;
	socklen_t l = sizeof(v);

	TL_CHECK(!getsockopt(fd, level, o, &v, &l), "getsockopt %d: %s", o, strerror(errno));
	return v;
}

/* Outside the tree, forked before its sockets: answers one frame before the dump
 * and one after restore. */
static void peer(int up)
{
	int fd = pk_sock(SOCK_DGRAM, PROTO);

	filter_on(fd, peer_token);
	bind_lo(fd);
	tl_outside_up(up);
	recv_frame(fd, peer_token, "before");
	send_frame(fd, my_token, "answer 1");
	recv_frame(fd, peer_token, "after");
	send_frame(fd, my_token, "answer 2");
	_exit(0);
}

static void setup(void)
{
	struct packet_mreq mr = { .mr_type = PACKET_MR_MULTICAST, .mr_alen = 6 };
	int v2 = TPACKET_V2, one = 1, rcv = RCVBUF / 2;

	dg = pk_sock(SOCK_DGRAM, 0);
	TL_CHECK(!setsockopt(dg, SOL_PACKET, PACKET_VERSION, &v2, sizeof(v2)), "PACKET_VERSION");
	TL_CHECK(!setsockopt(dg, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)), "AUXDATA");
	TL_CHECK(!setsockopt(dg, SOL_PACKET, PACKET_ORIGDEV, &one, sizeof(one)), "ORIGDEV");
	TL_CHECK(!setsockopt(dg, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)), "SO_RCVBUF");
	mr.mr_ifindex = lo;
	memcpy(mr.mr_address, mc_addr, 6);
	TL_CHECK(!setsockopt(dg, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)),
		 "PACKET_ADD_MEMBERSHIP: %s", strerror(errno));
	filter_on(dg, my_token);
	bind_lo(dg);
	send_frame(dg, peer_token, "before");
	recv_frame(dg, my_token, "answer 1");
	raw = pk_sock(SOCK_RAW, 0);
	TL_CHECK(!fcntl(raw, F_SETFL, O_NONBLOCK), "O_NONBLOCK");
}

static void check(void)
{
	struct sockaddr_ll a;
	socklen_t l = sizeof(a);
	struct packet_mreq mr = { .mr_ifindex = lo, .mr_type = PACKET_MR_MULTICAST, .mr_alen = 6 };
	char c;

	TL_CHECK(!getsockname(dg, (struct sockaddr *)&a, &l), "getsockname: %s", strerror(errno));
	TL_CHECK(a.sll_ifindex == lo && ntohs(a.sll_protocol) == PROTO, "bound to ifindex %d "
		 "protocol 0x%x", a.sll_ifindex, ntohs(a.sll_protocol));
	TL_CHECK(opt(dg, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM, "type %d", opt(dg, SOL_SOCKET, SO_TYPE));
	TL_CHECK(opt(dg, SOL_PACKET, PACKET_VERSION) == TPACKET_V2, "PACKET_VERSION %d",
		 opt(dg, SOL_PACKET, PACKET_VERSION));
	TL_CHECK(opt(dg, SOL_PACKET, PACKET_AUXDATA) == 1, "PACKET_AUXDATA lost");
	TL_CHECK(opt(dg, SOL_PACKET, PACKET_ORIGDEV) == 1, "PACKET_ORIGDEV lost");
	TL_CHECK(opt(dg, SOL_PACKET, PACKET_LOSS) == 0, "PACKET_LOSS appeared");
	TL_CHECK(opt(dg, SOL_SOCKET, SO_RCVBUF) == RCVBUF, "SO_RCVBUF %d",
		 opt(dg, SOL_SOCKET, SO_RCVBUF));
	l = 0;
	TL_CHECK(!getsockopt(dg, SOL_SOCKET, SO_GET_FILTER, NULL, &l) && l == 4,
		 "the filter has %u instructions", l);
	/* The membership is there once: dropping it leaves lo without the address. */
	TL_CHECK(mc_users() == 1, "lo has %d users of the multicast address", mc_users());
	memcpy(mr.mr_address, mc_addr, 6);
	TL_CHECK(!setsockopt(dg, SOL_PACKET, PACKET_DROP_MEMBERSHIP, &mr, sizeof(mr)),
		 "PACKET_DROP_MEMBERSHIP: %s", strerror(errno));
	TL_CHECK(mc_users() == 0, "the membership was there more than once");
	send_frame(dg, peer_token, "after");
	recv_frame(dg, my_token, "answer 2");
	l = sizeof(a);
	TL_CHECK(!getsockname(raw, (struct sockaddr *)&a, &l) && !a.sll_protocol &&
		 !a.sll_ifindex, "the raw socket is bound");
	TL_CHECK(opt(raw, SOL_SOCKET, SO_TYPE) == SOCK_RAW, "raw: type");
	TL_CHECK(fcntl(raw, F_GETFL) & O_NONBLOCK, "raw: O_NONBLOCK lost");
	TL_CHECK(recv(raw, &c, 1, 0) < 0 && errno == EAGAIN, "raw: it received something");
}

static void bad_state(const char *what)
{
	int fd = pk_sock(SOCK_RAW, PROTO);

	if (!strcmp(what, "ring")) {
		struct tpacket_req req = { 4096, 4, 2048, 8 };

		TL_CHECK(!setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)),
			 "PACKET_RX_RING: %s", strerror(errno));
		TL_CHECK(mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) !=
			 MAP_FAILED, "mmap of the ring: %s", strerror(errno));
	} else if (!strcmp(what, "fanout")) {
		int f = (getpid() & 0xffff) | (PACKET_FANOUT_HASH << 16);

		bind_lo(fd);
		TL_CHECK(!setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &f, sizeof(f)),
			 "PACKET_FANOUT: %s", strerror(errno));
	} else {
		close(fd);
		send_frame(dg, my_token, "queued");
	}
}

int main(int argc, char **argv)
{
	const char *bad = argc > 2 ? argv[2] : NULL;

	tl_init();
	lo = if_nametoindex("lo");
	TL_CHECK(lo > 0, "no lo");
	my_token = 0x50000000u ^ (uint32_t)getpid();
	peer_token = 0x70000000u ^ (uint32_t)getpid();
	mc_addr[3] = (getpid() >> 16) & 0x7f;
	mc_addr[4] = getpid() >> 8;
	mc_addr[5] = getpid();
	tl_outside(peer);
	setup();
	if (bad)
		bad_state(bad);
	tl_ready();
	tl_wait_go();
	if (bad && !strcmp(bad, "queued"))
		recv_frame(dg, my_token, "queued");
	check();
	tl_pass();
}
