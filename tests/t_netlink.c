/* Netlink sockets: a NETLINK_ROUTE socket bound to a port id of its own with groups
 * (two in the bind mask, one above 32 joined by NETLINK_ADD_MEMBERSHIP), options
 * (NETLINK_EXT_ACK, NETLINK_NO_ENOBUFS, a receive buffer, O_NONBLOCK); a route socket
 * the kernel bound when it first sent; one never bound; a sock_diag socket; and a
 * NETLINK_USERSOCK socket in group 5 that exchanges messages with a peer outside the
 * tree. After restore the program checks port ids, groups and options from inside,
 * queries the routing layer (the list of links holds lo) on both route sockets, and the
 * peer checks from outside that messages come from the same port id, answers to it,
 * and sends to group 5. With an argument, a state the dump must refuse: "queued" (a
 * message waiting on the USERSOCK socket). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "tlib.h"

/* Groups whose notifications this host does not make (DCB, MPLS routes, MCTP
 * addresses): nothing gets queued on the socket while it is dumped. */
#define GROUP_A 23
#define GROUP_B 27
#define GROUP_HIGH 34		/* above 32, joined by setsockopt */
#define USER_GROUP 5
#define RCVBUF 123456

static int route, autob, unbound, diag, user;
static uint32_t route_id, autob_id, user_id, peer_id;

static int nl_sock(int proto)
{
	int fd = socket(AF_NETLINK, SOCK_RAW, proto);

	TL_CHECK(fd >= 0, "socket(AF_NETLINK, %d): %s", proto, strerror(errno));
	return fd;
}

static uint32_t port_of(int fd)
{
	struct sockaddr_nl a;
	socklen_t l = sizeof(a);

	TL_CHECK(!getsockname(fd, (struct sockaddr *)&a, &l), "getsockname: %s", strerror(errno));
	return a.nl_pid;
}

static void send_to(int fd, uint32_t port, uint32_t groups, const char *text)
{
	struct {
		struct nlmsghdr h;
		char text[32];
	} m = { { sizeof(m), NLMSG_MIN_TYPE, 0, 1, 0 }, "" };
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = port, .nl_groups = groups };

	strncpy(m.text, text, sizeof(m.text) - 1);
	TL_CHECK(sendto(fd, &m, sizeof(m), 0, (struct sockaddr *)&a, sizeof(a)) == sizeof(m),
		 "sendto port %u: %s", port, strerror(errno));
}

/* One message: its text and sender's port id. */
static void recv_from(int fd, const char *want, uint32_t from, uint32_t group)
{
	struct {
		struct nlmsghdr h;
		char text[32];
	} m;
	struct sockaddr_nl a;
	socklen_t l = sizeof(a);
	ssize_t n = recvfrom(fd, &m, sizeof(m), 0, (struct sockaddr *)&a, &l);

	TL_CHECK(n == sizeof(m), "recv of '%s': %zd: %s", want, n, strerror(errno));
	TL_CHECK(!strncmp(m.text, want, sizeof(m.text)), "got '%.32s', not '%s'", m.text, want);
	TL_CHECK(a.nl_pid == from, "'%s' came from port %u, not %u", want, a.nl_pid, from);
	TL_CHECK(a.nl_groups == group, "'%s' came to groups 0x%x, not 0x%x", want, a.nl_groups,
		 group);
}

/* An RTM_GETLINK dump: true if it lists lo (every answer read to the end). */
static bool lists_lo(int fd)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = { { sizeof(req), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 7, 0 }, { 0 } };
	static char buf[65536] __attribute__((aligned(8)));
	bool lo = false;

	TL_CHECK(send(fd, &req, sizeof(req), 0) == sizeof(req), "RTM_GETLINK: %s",
		 strerror(errno));
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		TL_CHECK(n > 0, "reading the link list: %s", strerror(errno));
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			struct rtattr *a;
			int len;

			if (h->nlmsg_type == NLMSG_DONE)
				return lo;
			TL_CHECK(h->nlmsg_type == RTM_NEWLINK, "answer type %u", h->nlmsg_type);
			TL_CHECK(h->nlmsg_seq == 7, "answer to sequence %u", h->nlmsg_seq);
			a = IFLA_RTA(NLMSG_DATA(h));
			len = IFLA_PAYLOAD(h);
			for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
				if (a->rta_type == IFLA_IFNAME && !strcmp(RTA_DATA(a), "lo"))
					lo = true;
		}
	}
}

static int opt(int fd, int level, int o)
{
	int v = -7;
	socklen_t l = sizeof(v);

	TL_CHECK(!getsockopt(fd, level, o, &v, &l), "getsockopt %d: %s", o, strerror(errno));
	return v;
}

static void setup_route(void)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK,
				 .nl_groups = (1 << (GROUP_A - 1)) |
					      (1 << (GROUP_B - 1)) };
	int one = 1, g = GROUP_HIGH, rcv = RCVBUF / 2;

	route = nl_sock(NETLINK_ROUTE);
	route_id = 0x40000000u | getpid();
	a.nl_pid = route_id;
	TL_CHECK(!bind(route, (struct sockaddr *)&a, sizeof(a)), "bind: %s", strerror(errno));
	TL_CHECK(!setsockopt(route, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)),
		 "NETLINK_ADD_MEMBERSHIP: %s", strerror(errno));
	TL_CHECK(!setsockopt(route, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one)), "EXT_ACK");
	TL_CHECK(!setsockopt(route, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one)),
		 "NO_ENOBUFS");
	TL_CHECK(!setsockopt(route, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)), "SO_RCVBUF");
	TL_CHECK(lists_lo(route), "no lo before the dump");
	autob = nl_sock(NETLINK_ROUTE);
	TL_CHECK(lists_lo(autob), "no lo before the dump (second socket)");
	autob_id = port_of(autob);
	TL_CHECK(autob_id, "the kernel bound no port id");
	unbound = nl_sock(NETLINK_ROUTE);
	diag = nl_sock(NETLINK_SOCK_DIAG);
	TL_CHECK(!fcntl(diag, F_SETFL, O_NONBLOCK), "O_NONBLOCK");
}

static void check_route(void)
{
	uint32_t groups[4] = { 0 };
	socklen_t l = sizeof(groups);

	TL_CHECK(port_of(route) == route_id, "route socket: port id %u, not %u", port_of(route),
		 route_id);
	TL_CHECK(!getsockopt(route, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &l),
		 "NETLINK_LIST_MEMBERSHIPS: %s", strerror(errno));
	TL_CHECK(groups[0] == ((1u << (GROUP_A - 1)) | (1u << (GROUP_B - 1))) &&
		 groups[1] == 1u << (GROUP_HIGH - 33), "groups 0x%x 0x%x", groups[0], groups[1]);
	TL_CHECK(opt(route, SOL_NETLINK, NETLINK_EXT_ACK) == 1, "NETLINK_EXT_ACK lost");
	TL_CHECK(opt(route, SOL_NETLINK, NETLINK_NO_ENOBUFS) == 1, "NETLINK_NO_ENOBUFS lost");
	TL_CHECK(opt(route, SOL_NETLINK, NETLINK_PKTINFO) == 0, "NETLINK_PKTINFO appeared");
	TL_CHECK(opt(route, SOL_SOCKET, SO_RCVBUF) == RCVBUF - RCVBUF % 2, "SO_RCVBUF %d",
		 opt(route, SOL_SOCKET, SO_RCVBUF));
	TL_CHECK(lists_lo(route), "route socket: no lo after restore");
	TL_CHECK(port_of(autob) == autob_id, "second route socket: port id %u, not %u",
		 port_of(autob), autob_id);
	TL_CHECK(lists_lo(autob), "second route socket: no lo after restore");
	TL_CHECK(port_of(unbound) == 0, "the unbound socket has port id %u", port_of(unbound));
	TL_CHECK(opt(diag, SOL_SOCKET, SO_PROTOCOL) == NETLINK_SOCK_DIAG, "sock_diag socket: "
		 "protocol %d", opt(diag, SOL_SOCKET, SO_PROTOCOL));
	TL_CHECK(fcntl(diag, F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
	TL_CHECK(fcntl(route, F_GETFL) & O_NONBLOCK ? 0 : 1, "O_NONBLOCK appeared");
}

/* The peer, outside the tree (the harness adopts it), made first so that it holds
 * none of the tree's sockets: it learns the tree's port id from the first message,
 * then after restore checks the second comes from it too, answers, and sends to the
 * group. */
static void peer(int up)
{
	int fd = nl_sock(NETLINK_USERSOCK);
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = peer_id };
	struct {
		struct nlmsghdr h;
		char text[32];
	} m;
	socklen_t l = sizeof(a);

	TL_CHECK(!bind(fd, (struct sockaddr *)&a, sizeof(a)), "peer bind: %s", strerror(errno));
	tl_outside_up(up);
	TL_CHECK(recvfrom(fd, &m, sizeof(m), 0, (struct sockaddr *)&a, &l) == sizeof(m),
		 "peer: hello");
	user_id = a.nl_pid;
	send_to(fd, user_id, 0, "welcome");
	recv_from(fd, "after", user_id, 0);
	send_to(fd, user_id, 0, "answer");
	/* A send to a group is also one to the port id given (usersock has no kernel
	 * socket at 0): the peer's own, which the broadcast leaves out. */
	send_to(fd, peer_id, 1 << (USER_GROUP - 1), "to all");
	_exit(0);
}

static void setup_user(void)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = 1 << (USER_GROUP - 1) };

	user = nl_sock(NETLINK_USERSOCK);
	TL_CHECK(!bind(user, (struct sockaddr *)&a, sizeof(a)), "bind: %s", strerror(errno));
	user_id = port_of(user);
	send_to(user, peer_id, 0, "hello");
	recv_from(user, "welcome", peer_id, 0);
}

static void check_user(void)
{
	TL_CHECK(port_of(user) == user_id, "usersock: port id %u, not %u", port_of(user), user_id);
	send_to(user, peer_id, 0, "after");
	recv_from(user, "answer", peer_id, 0);
	recv_from(user, "to all", peer_id, 1 << (USER_GROUP - 1));
}

int main(int argc, char **argv)
{
	const char *bad = argc > 2 ? argv[2] : NULL;

	tl_init();
	peer_id = 0x20000000u | getpid();	/* the peer binds there */
	tl_outside(peer);
	setup_route();
	setup_user();
	if (bad && !strcmp(bad, "queued")) {
		int other = nl_sock(NETLINK_USERSOCK);

		send_to(other, user_id, 0, "unread");
		close(other);
	}
	tl_ready();
	tl_wait_go();
	if (bad) {
		char buf[64];

		TL_CHECK(recv(user, buf, sizeof(buf), MSG_DONTWAIT) > 0, "the queued message is "
			 "gone");
		send_to(user, peer_id, 0, "after");
		tl_pass();
	}
	check_route();
	check_user();
	tl_pass();
}
