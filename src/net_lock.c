/* The network lock: the tree's TCP connections (their sockets' inodes, inet_diag) have
 * every packet dropped by an nftables table while cryo holds them; a guardian process
 * owns that table and copies of the sockets in repair mode, and undoes both if cryo
 * dies; kill mode leaves a persistent table (netlock.img) that restore removes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "image.h"
#include "log.h"
#include "net_lock.h"
#include "nft_lib.h"
#include "proc.h"
#include "sys.h"
#include "tcp_repair.h"
#include "util.h"

#define NET_LOCK_MAX 65536		/* connections one lock may hold */
#define GUARD_TIMEOUT_MS 30000		/* the longest a guardian may take to answer */
#define REPLY_MAX 512
#ifndef TCP_REPAIR_OFF_NO_WP
#define TCP_REPAIR_OFF_NO_WP -1
#endif

enum { ST_ESTABLISHED = 1, ST_SYN_SENT, ST_SYN_RECV, ST_FIN_WAIT1, ST_FIN_WAIT2,
       ST_TIME_WAIT, ST_CLOSE, ST_CLOSE_WAIT, ST_LAST_ACK, ST_LISTEN, ST_CLOSING,
       ST_NEW_SYN_RECV };

/* cryo -> guardian commands; each gets one reply {int status; text}. */
enum { G_REPAIR = 'R', G_PING = 'P', G_UNLOCK = 'U', G_KILLED = 'K' };

struct guard_reply {
	int32_t status;
	char text[REPLY_MAX];
};

/* One dump at a time per cryo process: the lock of the dump in progress. */
static struct {
	bool active;
	pid_t guardian;
	int ctl;			/* cryo's end of the socketpair */
	char table[64];			/* the owner table: cryo_lock_PID */
	char keep[64];			/* the persistent one: cryo_keep_PID_TOKEN */
	struct net_tuple *conns;
	size_t nr_conns, cap_conns;
	uint32_t *inos;			/* each connection's socket inode */
	size_t cap_inos;
	dev_t netns_dev;
	ino_t netns_ino;
	int *repair;			/* cryo's own copies of the sockets in repair */
	size_t nr_repair, cap_repair;
} lk = { .ctl = -1 };

/* ---- pure ---- */

bool net_state_locked(uint8_t state)
{
	return state != ST_LISTEN && state != ST_CLOSE && state != ST_TIME_WAIT &&
	       state != ST_NEW_SYN_RECV && state >= ST_ESTABLISHED && state <= ST_CLOSING;
}

int net_diag_parse(const void *msg, size_t len, struct net_tuple *t, uint32_t *ino,
		   uint8_t *state)
{
	const struct inet_diag_msg *m = msg;
	size_t alen;

	if (len < sizeof(*m))
		return cr_err("inet_diag: a short answer (%zu bytes)", len);
	if (m->idiag_family == AF_INET)
		alen = 4;
	else if (m->idiag_family == AF_INET6)
		alen = 16;
	else
		return cr_err("inet_diag: an answer of family %u", m->idiag_family);
	memset(t, 0, sizeof(*t));
	t->family = alen == 4 ? 4 : 6;
	memcpy(t->local, m->id.idiag_src, alen);
	memcpy(t->remote, m->id.idiag_dst, alen);
	t->lport = ntohs(m->id.idiag_sport);
	t->rport = ntohs(m->id.idiag_dport);
	*ino = m->idiag_inode;
	*state = m->idiag_state;
	net_tuple_normalize(t);
	return 0;
}

static bool v4_mapped(const uint8_t *a)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return !memcmp(a, prefix, sizeof(prefix));
}

void net_tuple_normalize(struct net_tuple *t)
{
	if (t->family != 6 || !v4_mapped(t->local) || !v4_mapped(t->remote))
		return;
	t->family = 4;
	memmove(t->local, t->local + 12, 4);
	memmove(t->remote, t->remote + 12, 4);
	memset(t->local + 4, 0, 12);
	memset(t->remote + 4, 0, 12);
}

static void addr_str(int family, const uint8_t *a, char *buf, size_t len)
{
	if (!inet_ntop(family == 4 ? AF_INET : AF_INET6, a, buf, len))
		snprintf(buf, len, "?");
}

void net_tuple_str(const struct net_tuple *t, char *buf, size_t len)
{
	char l[INET6_ADDRSTRLEN], r[INET6_ADDRSTRLEN];

	addr_str(t->family, t->local, l, sizeof(l));
	addr_str(t->family, t->remote, r, sizeof(r));
	if (t->family == 4)
		snprintf(buf, len, "%s:%u -> %s:%u", l, t->lport, r, t->rport);
	else
		snprintf(buf, len, "[%s]:%u -> [%s]:%u", l, t->lport, r, t->rport);
}

/* The elements of one family's set: "a . p . b . q, ...". */
static size_t put_elements(char *out, const struct net_tuple *t, size_t n, int family)
{
	char l[INET6_ADDRSTRLEN], r[INET6_ADDRSTRLEN];
	size_t at = 0;
	bool first = true;

	for (size_t i = 0; i < n; i++) {
		if (t[i].family != family)
			continue;
		addr_str(family, t[i].local, l, sizeof(l));
		addr_str(family, t[i].remote, r, sizeof(r));
		at += sprintf(out + at, "%s%s . %u . %s . %u", first ? "" : ", ", l, t[i].lport, r,
			      t[i].rport);
		first = false;
	}
	return at;
}

static size_t put_set(char *out, const char *name, const char *type,
		      const struct net_tuple *t, size_t n, int family)
{
	size_t at = sprintf(out, "\tset %s {\n\t\ttype %s . inet_service . %s . inet_service\n",
			    name, type, type);
	bool any = false;

	for (size_t i = 0; i < n && !any; i++)
		any = t[i].family == family;
	if (any) {
		at += sprintf(out + at, "\t\telements = { ");
		at += put_elements(out + at, t, n, family);
		at += sprintf(out + at, " }\n");
	}
	return at + sprintf(out + at, "\t}\n");
}

char *net_lock_script(const char *table, bool owner, const struct net_tuple *t, size_t n)
{
	/* An element is at most 2 * 39 address characters, 2 * 5 port digits and 13
	 * more; the rest is under 1 KiB. */
	char *s = malloc(n * 112 + 1024 + strlen(table));
	size_t at;

	if (!s)
		return NULL;
	at = sprintf(s, "table inet %s {\n%s", table, owner ? "\tflags owner\n" : "");
	at += put_set(s + at, "c4", "ipv4_addr", t, n, 4);
	at += put_set(s + at, "c6", "ipv6_addr", t, n, 6);
	/* The lowest priority there is: before conntrack, before any other table. A
	 * connection's packets to it are matched in input, its own in output (both, for
	 * a connection over loopback whose two ends are in the tree). The segments
	 * restore sends a connection in its peer's name carry TCP_REPAIR_MARK. */
	sprintf(s + at,
		"\tchain in {\n"
		"\t\ttype filter hook input priority -2147483648; policy accept;\n"
		"\t\tmeta mark 0x%x accept\n"
		"\t\tip daddr . tcp dport . ip saddr . tcp sport @c4 counter drop\n"
		"\t\tip6 daddr . tcp dport . ip6 saddr . tcp sport @c6 counter drop\n"
		"\t}\n"
		"\tchain out {\n"
		"\t\ttype filter hook output priority -2147483648; policy accept;\n"
		"\t\tmeta mark 0x%x accept\n"
		"\t\tip saddr . tcp sport . ip daddr . tcp dport @c4 counter drop\n"
		"\t\tip6 saddr . tcp sport . ip6 daddr . tcp dport @c6 counter drop\n"
		"\t}\n"
		"}\n", TCP_REPAIR_MARK, TCP_REPAIR_MARK);
	return s;
}

bool net_lock_name_ok(const char *name, pid_t pid)
{
	char want[32];
	size_t n = (size_t)snprintf(want, sizeof(want), "cryo_keep_%d_", pid);

	if (pid <= 0 || strncmp(name, want, n) || strlen(name) != n + 16)
		return false;
	for (const char *c = name + n; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
			return false;
	return true;
}

int net_lock_check(const NetLock *nl, pid_t root)
{
	if (!nl->table || !net_lock_name_ok(nl->table, root))
		return cr_err("image: netlock.img names a table that is not cryo's lock of "
			      "process %d", root);
	if (nl->n_conns == 0 || nl->n_conns > NET_LOCK_MAX)
		return cr_err("image: netlock.img holds %zu connections", nl->n_conns);
	for (size_t i = 0; i < nl->n_conns; i++) {
		const NetLockConn *c = nl->conns[i];
		size_t alen = c->family == 4 ? 4 : c->family == 6 ? 16 : 0;

		if (!alen || c->local.len != alen || c->remote.len != alen ||
		    c->local_port > 65535 || c->remote_port > 65535)
			return cr_err("image: netlock.img: connection %zu is malformed", i);
	}
	return 0;
}

/* ---- finding the connections ---- */

struct inodes {
	uint32_t *v;
	size_t n, cap;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The inodes of every socket the process holds. */
static int proc_sockets(pid_t pid, struct inodes *in)
{
	char path[64], link[64];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return cr_perr("cannot list %s", path);
	while ((de = readdir(d))) {
		unsigned long ino;
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (sscanf(link, "socket:[%lu]", &ino) != 1)
			continue;
		if (cr_grow(&in->v, &in->cap, in->n + 1, sizeof(*in->v), 64)) {
			rc = -1;
			break;
		}
		in->v[in->n++] = (uint32_t)ino;
	}
	closedir(d);
	return rc;
}

static int add_conn(const struct net_tuple *t, uint32_t ino)
{
	if (lk.nr_conns >= NET_LOCK_MAX)
		return cr_err("the tree has more than %d TCP connections", NET_LOCK_MAX);
	if (cr_grow(&lk.conns, &lk.cap_conns, lk.nr_conns + 1, sizeof(*lk.conns), 64) ||
	    cr_grow(&lk.inos, &lk.cap_inos, lk.nr_conns + 1, sizeof(*lk.inos), 64))
		return -1;
	lk.inos[lk.nr_conns] = ino;
	lk.conns[lk.nr_conns++] = *t;
	return 0;
}

/* One answer of inet_diag: its connection, if it is one of the tree's. */
static int diag_one(const struct nlmsghdr *h, const struct inodes *in)
{
	struct net_tuple t;
	uint32_t ino;
	uint8_t state;

	if (net_diag_parse(NLMSG_DATA(h), h->nlmsg_len - NLMSG_HDRLEN, &t, &ino, &state))
		return -1;
	if (!net_state_locked(state) || !ino ||
	    !bsearch(&ino, in->v, in->n, sizeof(*in->v), cmp_u32))
		return 0;
	return add_conn(&t, ino);
}

/* Every TCP socket of a family in a locked state, from inet_diag. */
static int diag_family(int family, const struct inodes *in)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.r = { .sdiag_family = family, .sdiag_protocol = IPPROTO_TCP,
		       .idiag_states = ~0u },
	};
	size_t bufsz = 64 << 10;
	char *buf = malloc(bufsz);
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), rc = -1;

	if (!buf || fd < 0) {
		cr_perr("cannot open an inet_diag socket");
		goto out;
	}
	if (send(fd, &req, sizeof(req), 0) != sizeof(req)) {
		cr_perr("cannot ask inet_diag");
		goto out;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, bufsz, 0);
		struct nlmsghdr *h;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			cr_perr("cannot read inet_diag's answer");
			goto out;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				/* A failed dump ends with a negative code. */
				if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) &&
				    *(const int *)NLMSG_DATA(h) < 0) {
					cr_err("inet_diag cannot list TCP sockets");
					goto out;
				}
				rc = 0;
				goto out;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				cr_err("inet_diag refused to list TCP sockets");
				goto out;
			}
			if (diag_one(h, in))
				goto out;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

static int find_conns(struct dump_ctx *ctx)
{
	struct inodes in = { 0 };
	int rc = -1;

	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (!ctx->procs[i]->zombie && proc_sockets(ctx->procs[i]->pid, &in))
			goto out;
	if (!in.n) {
		rc = 0;
		goto out;
	}
	qsort(in.v, in.n, sizeof(*in.v), cmp_u32);
	rc = diag_family(AF_INET, &in) || diag_family(AF_INET6, &in) ? -1 : 0;
out:
	free(in.v);
	return rc;
}

/* ---- the guardian ---- */

struct guard {
	int ctl, sigfd, rootfd;
	pid_t root;
	struct nft_ctx *nft;
	const char *lock_script, *keep_script;
	int *socks;
	size_t nr, cap;
};

static int guard_nft(struct guard *g, const char *cmd, struct guard_reply *r)
{
	int rc = nftl_run(g->nft, cmd);

	if (rc && r) {
		const char *e = nftl_error(g->nft);

		snprintf(r->text, sizeof(r->text), "%.*s", (int)strcspn(e, "\n"), e);
	}
	return rc ? -1 : 0;
}

static void repair_off(int sk)
{
	int v = TCP_REPAIR_OFF_NO_WP;

	if (setsockopt(sk, SOL_TCP, TCP_REPAIR, &v, sizeof(v)) && errno == EINVAL) {
		v = 0;
		setsockopt(sk, SOL_TCP, TCP_REPAIR, &v, sizeof(v));
	}
}

/* The tree lives on: every socket out of repair, the lock gone. */
static void guard_undo(struct guard *g)
{
	char cmd[96];

	for (size_t i = 0; i < g->nr; i++)
		repair_off(g->socks[i]);
	snprintf(cmd, sizeof(cmd), "delete table inet %s\n", lk.table);
	guard_nft(g, cmd, NULL);
}

/* The tree was killed: the persistent table takes over; the sockets, still in repair,
 * close without a word to their peers. */
static int guard_keep(struct guard *g, struct guard_reply *r)
{
	int rc = guard_nft(g, g->keep_script, r);

	for (size_t i = 0; i < g->nr; i++)
		close(g->socks[i]);
	g->nr = 0;
	return rc;
}

/* Is the root gone, or going (the dump's SIGKILL pending)? */
static bool guard_tree_killed(struct guard *g)
{
	struct pollfd p = { .fd = g->rootfd, .events = POLLIN };
	struct proc_status st;
	size_t len;
	char *txt;
	bool dying;

	if (poll(&p, 1, 0) == 1)
		return true;
	txt = proc_read_pid_file(g->root, "status", &len);
	if (!txt)
		return true;
	dying = !proc_parse_status(txt, len, &st) &&
		(((st.sig_pnd | st.shd_pnd) & (1ULL << (SIGKILL - 1))) || st.state == 'Z' ||
		 st.state == 'X');
	free(txt);
	return dying;
}

static int guard_take_fd(struct guard *g, struct msghdr *mh)
{
	struct cmsghdr *c = CMSG_FIRSTHDR(mh);
	int fd;

	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	if (cr_grow(&g->socks, &g->cap, g->nr + 1, sizeof(*g->socks), 64)) {
		close(fd);
		return -1;
	}
	g->socks[g->nr++] = fd;
	return 0;
}

static void guard_reply(struct guard *g, struct guard_reply *r, int status)
{
	r->status = status;
	send(g->ctl, r, sizeof(*r), MSG_NOSIGNAL);
}

/* One command; 1 when the guardian's work is over. -1: cryo is gone. */
static int guard_command(struct guard *g)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct guard_reply r = { 0 };
	char cmd = 0;
	struct iovec iov = { &cmd, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
			     .msg_controllen = sizeof(cbuf.buf) };
	ssize_t n = recvmsg(g->ctl, &mh, MSG_CMSG_CLOEXEC);

	if (n < 0 && errno == EINTR)
		return 0;
	if (n <= 0)
		return -1;
	switch (cmd) {
	case G_REPAIR:
		guard_reply(g, &r, guard_take_fd(g, &mh));
		return 0;
	case G_PING:
		guard_reply(g, &r, 0);
		return 0;
	case G_UNLOCK:
		guard_undo(g);
		guard_reply(g, &r, 0);
		return 1;
	case G_KILLED:
		guard_reply(g, &r, guard_keep(g, &r));
		return 1;
	}
	return -1;
}

static void guard_loop(struct guard *g)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = g->ctl, .events = POLLIN },
				       { .fd = g->sigfd, .events = POLLIN } };
		int rc;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;		/* SIGHUP: cryo died */
		if (!p[0].revents)
			continue;
		rc = guard_command(g);
		if (rc > 0)
			return;
		if (rc < 0)
			break;
	}
	/* cryo is gone: did it kill the tree first? */
	if (guard_tree_killed(g))
		guard_keep(g, NULL);
	else
		guard_undo(g);
}

/* fds: 0 the control socket, 1 a pidfd of the root, 2 /dev/null, nothing else. */
static int guard_fds(int ctl, int rootfd)
{
	int a = fcntl(ctl, F_DUPFD_CLOEXEC, 3), b = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (a < 0 || b < 0 || null < 0 || dup2(a, 0) < 0 || dup2(b, 1) < 0 || dup2(null, 2) < 0)
		return -1;
	return syscall(SYS_close_range, 3, ~0U, 0) ? -1 : 0;
}

static void __attribute__((noreturn))
guardian(pid_t cryo, int ctl, int rootfd, pid_t root, const char *lock_script,
	 const char *keep_script)
{
	struct guard g = { .ctl = 0, .rootfd = 1, .root = root, .lock_script = lock_script,
			   .keep_script = keep_script };
	struct guard_reply r = { 0 };
	sigset_t all, hup;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	/* Out of cryo's session and group: what kills them does not reach the guardian,
	 * which outlives cryo just long enough to undo what cryo did. */
	setsid();
	if (prctl(PR_SET_PDEATHSIG, SIGHUP) || getppid() != cryo || guard_fds(ctl, rootfd))
		_exit(1);
	g.sigfd = signalfd(-1, &hup, SFD_CLOEXEC);
	g.nft = nftl_open();
	if (g.sigfd < 0 || !g.nft) {
		snprintf(r.text, sizeof(r.text), "cannot start libnftables");
		guard_reply(&g, &r, -1);
		_exit(1);
	}
	if (guard_nft(&g, lock_script, &r)) {
		guard_reply(&g, &r, -1);
		_exit(1);
	}
	guard_reply(&g, &r, 0);
	guard_loop(&g);
	/* Exiting closes the netlink socket: the kernel drops the owner table with it. */
	_exit(0);
}

/* ---- cryo's side ---- */

static int guard_wait_reply(struct guard_reply *r)
{
	struct pollfd p = { .fd = lk.ctl, .events = POLLIN };
	ssize_t n;

	while ((n = poll(&p, 1, GUARD_TIMEOUT_MS)) < 0 && errno == EINTR)
		;
	if (n == 0)
		return cr_err("the network lock's guardian (process %d) does not answer",
			      lk.guardian);
	n = recv(lk.ctl, r, sizeof(*r), 0);
	if (n != (ssize_t)sizeof(*r))
		return cr_err("the network lock's guardian (process %d) died", lk.guardian);
	r->text[sizeof(r->text) - 1] = 0;
	return 0;
}

/* Send a command (with fd, unless -1) and wait for the answer. */
static int guard_call(char cmd, int fd, struct guard_reply *r)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { &cmd, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	}
	if (sendmsg(lk.ctl, &mh, MSG_NOSIGNAL) != 1)
		return cr_err("the network lock's guardian (process %d) is gone", lk.guardian);
	return guard_wait_reply(r);
}

static void lock_reset(void)
{
	int st;

	if (lk.ctl >= 0)
		close(lk.ctl);
	if (lk.guardian > 0)
		while (waitpid(lk.guardian, &st, 0) < 0 && errno == EINTR)
			;
	for (size_t i = 0; i < lk.nr_repair; i++)
		close(lk.repair[i]);
	free(lk.repair);
	free(lk.conns);
	free(lk.inos);
	memset(&lk, 0, sizeof(lk));
	lk.ctl = -1;
}

static int lock_names(pid_t root)
{
	uint8_t tok[8];

	if (getrandom(tok, sizeof(tok), 0) != sizeof(tok))
		return cr_perr("getrandom");
	snprintf(lk.table, sizeof(lk.table), "cryo_lock_%d", root);
	snprintf(lk.keep, sizeof(lk.keep), "cryo_keep_%d_", root);
	for (size_t i = 0; i < sizeof(tok); i++)
		sprintf(lk.keep + strlen(lk.keep), "%02x", tok[i]);
	return 0;
}

static int own_netns(void)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st))
		return cr_perr("cannot read /proc/self/ns/net");
	lk.netns_dev = st.st_dev;
	lk.netns_ino = st.st_ino;
	return 0;
}

static int start_guardian(pid_t root, const char *lock_script, const char *keep_script)
{
	struct guard_reply r;
	int sp[2], rootfd;
	pid_t cryo = getpid();

	if (nftl_load())	/* before the fork: the guardian only calls it */
		return -1;
	rootfd = sys_pidfd_open(root, 0);
	if (rootfd < 0)
		return cr_perr("cannot open a pidfd of process %d", root);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp)) {
		close(rootfd);
		return cr_perr("socketpair");
	}
	lk.guardian = fork();
	if (lk.guardian == 0)
		guardian(cryo, sp[1], rootfd, root, lock_script, keep_script);
	close(sp[1]);
	close(rootfd);
	lk.ctl = sp[0];
	if (lk.guardian < 0)
		return cr_perr("cannot start the network lock's guardian");
	if (guard_wait_reply(&r))
		return -1;
	if (r.status)
		return cr_err("cannot lock the connections' traffic with nftables: %s",
			      r.text[0] ? r.text : "the guardian failed");
	return 0;
}

int net_lock_dump(struct dump_ctx *ctx)
{
	char *lock_script = NULL, *keep_script = NULL;
	pid_t root = ctx->procs[0]->pid;
	int rc = -1;

	if (!ctx->tcp_established)
		return 0;
	if (lk.active)
		return cr_err("a network lock is already held");
	if (find_conns(ctx))
		goto out;
	if (!lk.nr_conns) {
		rc = 0;
		goto out;
	}
	if (own_netns() || lock_names(root))
		goto out;
	lock_script = net_lock_script(lk.table, true, lk.conns, lk.nr_conns);
	keep_script = net_lock_script(lk.keep, false, lk.conns, lk.nr_conns);
	if (!lock_script || !keep_script) {
		cr_err("out of memory");
		goto out;
	}
	if (start_guardian(root, lock_script, keep_script))
		goto out;
	lk.active = true;
	pr_info("%zu TCP connection%s locked (nftables table inet %s, guardian %d)",
		lk.nr_conns, lk.nr_conns > 1 ? "s" : "", lk.table, lk.guardian);
	rc = 0;
out:
	free(lock_script);
	free(keep_script);
	if (!lk.active)
		lock_reset();
	return rc;
}

/* The locked connection whose socket is sk's, found by its inode. */
static int tuple_by_inode(int sk, struct net_tuple *t)
{
	struct stat st;

	if (fstat(sk, &st))
		return cr_perr("a socket about to enter repair mode cannot be read");
	for (size_t i = 0; i < lk.nr_conns; i++)
		if (lk.inos[i] == st.st_ino) {
			*t = lk.conns[i];
			return 0;
		}
	return cr_err("a socket about to enter repair mode has no connection the network "
		      "lock holds");
}

/* The connection of a socket of cryo's, as the lock names it. */
static int sock_tuple(int sk, struct net_tuple *t)
{
	struct sockaddr_storage l, r;
	socklen_t ll = sizeof(l), rl = sizeof(r);

	memset(t, 0, sizeof(*t));
	if (getsockname(sk, (struct sockaddr *)&l, &ll))
		return cr_perr("a socket about to enter repair mode has no address");
	if (getpeername(sk, (struct sockaddr *)&r, &rl))	/* SYN_SENT: no peer name */
		return tuple_by_inode(sk, t);
	if (l.ss_family == AF_INET && r.ss_family == AF_INET) {
		const struct sockaddr_in *a = (void *)&l, *b = (void *)&r;

		t->family = 4;
		memcpy(t->local, &a->sin_addr, 4);
		memcpy(t->remote, &b->sin_addr, 4);
		t->lport = ntohs(a->sin_port);
		t->rport = ntohs(b->sin_port);
	} else if (l.ss_family == AF_INET6 && r.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (void *)&l, *b = (void *)&r;

		t->family = 6;
		memcpy(t->local, &a->sin6_addr, 16);
		memcpy(t->remote, &b->sin6_addr, 16);
		t->lport = ntohs(a->sin6_port);
		t->rport = ntohs(b->sin6_port);
	} else {
		return cr_err("a socket about to enter repair mode is not an inet one");
	}
	net_tuple_normalize(t);
	return 0;
}

static bool conn_locked(const struct net_tuple *t)
{
	for (size_t i = 0; i < lk.nr_conns; i++) {
		const struct net_tuple *c = &lk.conns[i];

		if (c->family == t->family && c->lport == t->lport && c->rport == t->rport &&
		    !memcmp(c->local, t->local, 16) && !memcmp(c->remote, t->remote, 16))
			return true;
	}
	return false;
}

/* Is the socket in the network namespace the lock is in? */
static bool same_netns(int sk)
{
	int ns = ioctl(sk, SIOCGSKNS);
	struct stat st;
	bool same;

	if (ns < 0)
		return false;
	same = !fstat(ns, &st) && st.st_dev == lk.netns_dev && st.st_ino == lk.netns_ino;
	close(ns);
	return same;
}

int net_guard_repair(int sk)
{
	struct guard_reply r;
	struct net_tuple t;
	socklen_t ml = sizeof(int);
	char what[128];
	int copy, mark = 0;

	if (sock_tuple(sk, &t))
		return -1;
	net_tuple_str(&t, what, sizeof(what));
	if (!lk.active || !conn_locked(&t) || !same_netns(sk))
		return cr_err("TCP connection %s is not under the network lock: it cannot "
			      "enter repair mode", what);
	if (!getsockopt(sk, SOL_SOCKET, SO_MARK, &mark, &ml) && mark == TCP_REPAIR_MARK)
		return cr_err("TCP connection %s has SO_MARK 0x%x, the mark the network lock "
			      "lets through: it cannot be locked", what, mark);
	if (cr_grow(&lk.repair, &lk.cap_repair, lk.nr_repair + 1, sizeof(*lk.repair), 64))
		return -1;
	copy = fcntl(sk, F_DUPFD_CLOEXEC, 3);
	if (copy < 0)
		return cr_perr("cannot keep a copy of the socket of %s", what);
	lk.repair[lk.nr_repair++] = copy;
	if (guard_call(G_REPAIR, sk, &r))
		return -1;
	if (r.status)
		return cr_err("the network lock's guardian cannot hold the socket of %s", what);
	return 0;
}

int net_lock_write_image(struct dump_ctx *ctx)
{
	NetLock nl = NET_LOCK__INIT;
	NetLockConn *cs, **ptrs;
	struct guard_reply r;
	int rc;

	if (!lk.active || ctx->leave_running)
		return 0;
	if (guard_call(G_PING, -1, &r))
		return -1;
	cs = calloc(lk.nr_conns, sizeof(*cs));
	ptrs = calloc(lk.nr_conns, sizeof(*ptrs));
	if (!cs || !ptrs) {
		free(cs);
		free(ptrs);
		return cr_err("out of memory");
	}
	for (size_t i = 0; i < lk.nr_conns; i++) {
		const struct net_tuple *t = &lk.conns[i];
		size_t alen = t->family == 4 ? 4 : 16;

		net_lock_conn__init(&cs[i]);
		cs[i].family = t->family;
		cs[i].local.data = (uint8_t *)t->local;
		cs[i].local.len = alen;
		cs[i].local_port = t->lport;
		cs[i].remote.data = (uint8_t *)t->remote;
		cs[i].remote.len = alen;
		cs[i].remote_port = t->rport;
		ptrs[i] = &cs[i];
	}
	nl.table = lk.keep;
	nl.n_conns = lk.nr_conns;
	nl.conns = ptrs;
	rc = img_write_msg(&ctx->dir, "netlock.img", IMAGE_KIND__IMG_NETLOCK, &nl.base);
	free(cs);
	free(ptrs);
	return rc;
}

static int finish_running(void)
{
	struct guard_reply r;
	int rc = guard_call(G_UNLOCK, -1, &r);

	/* Whatever became of the guardian: its table went with it, and cryo's own copies
	 * turn repair off before the tree runs again. */
	for (size_t i = 0; i < lk.nr_repair; i++)
		repair_off(lk.repair[i]);
	if (!rc)
		pr_info("TCP connections unlocked");
	return rc;
}

static void finish_killed(void)
{
	struct guard_reply r;

	if (guard_call(G_KILLED, -1, &r) || r.status) {
		pr_warn("the connections of the dump are not locked any more (%s): their "
			"peers may reset them before the restore",
			r.status ? r.text : cr_last_error());
		return;
	}
	pr_info("TCP connections stay locked until the restore (nftables table inet %s)",
		lk.keep);
}

int net_lock_dump_finish(struct dump_ctx *ctx, bool killed)
{
	int rc = 0;

	(void)ctx;
	if (!lk.active)
		return 0;
	if (killed)
		finish_killed();
	else
		rc = finish_running();
	lock_reset();
	return rc;
}

/* ---- restore ---- */

/* Restore's libnftables context, made with the images: once the tree runs, the
 * unlock is one command (the shortest time a dying cryo could leave it locked). */
static struct nft_ctx *unlock_nft;

int net_lock_load(struct restore_ctx *ctx)
{
	NetLock *nl = NULL;
	char cmd[128];

	for (size_t i = 0; i < ctx->dir.nr_files && !nl; i++) {
		if (strcmp(ctx->dir.files[i].name, "netlock.img"))
			continue;
		nl = img_read_msg(&ctx->dir, "netlock.img", IMAGE_KIND__IMG_NETLOCK,
				  &net_lock__descriptor);
		if (!nl)
			return -1;
	}
	if (!nl)
		return 0;
	ctx->netlock = nl;
	if (net_lock_check(nl, (pid_t)ctx->inv->root_pid))
		return -1;
	unlock_nft = nftl_open();
	if (!unlock_nft)
		return cr_err("cannot start libnftables to unlock the image's connections");
	snprintf(cmd, sizeof(cmd), "list table inet %s\n", nl->table);
	if (nftl_run(unlock_nft, cmd))
		pr_warn("the network lock of the image (table inet %s) is gone: the "
			"connections' peers may have reset them", nl->table);
	return 0;
}

int net_unlock_restore(struct restore_ctx *ctx)
{
	const NetLock *nl = ctx->netlock;
	const char *e;
	char cmd[128];

	if (!nl)
		return 0;
	if (!unlock_nft)
		unlock_nft = nftl_open();
	snprintf(cmd, sizeof(cmd), "delete table inet %s\n", nl->table);
	if (unlock_nft && !nftl_run(unlock_nft, cmd)) {
		pr_info("TCP connections unlocked (nftables table inet %s removed)", nl->table);
		return 0;
	}
	e = unlock_nft ? nftl_error(unlock_nft) : "no libnftables";
	pr_warn("cannot remove the network lock (%.*s): `nft delete table inet %s` removes it",
		(int)strcspn(e, "\n"), e, nl->table);
	return 0;
}

void net_lock_restore_failed(struct restore_ctx *ctx)
{
	const NetLock *nl = ctx->netlock;

	if (nl)
		pr_warn("the connections stay locked for another restore: `nft delete table "
			"inet %s` unlocks them", nl->table);
}

void net_lock_free(struct restore_ctx *ctx)
{
	nftl_close(unlock_nft);
	unlock_nft = NULL;
	if (ctx->netlock)
		protobuf_c_message_free_unpacked(ctx->netlock, NULL);
	ctx->netlock = NULL;
}

/* ---- cryo check ---- */

/* fn in a child of its own network namespace: its exit code 1 (yes) or 0. */
static int in_own_netns(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(!unshare(CLONE_NEWNET) && fn() == 1 ? 1 : 0);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 1;
}

static int owner_table_probe(void)
{
	struct nft_ctx *a = nftl_open(), *b;
	int ok;

	if (!a || nftl_run(a, "table inet cryo_probe { flags owner; }\n"))
		return 0;
	nftl_close(a);
	b = nftl_open();
	ok = b && nftl_run(b, "list table inet cryo_probe\n") != 0;
	nftl_close(b);
	return ok;
}

int net_lock_probe(void)
{
	if (nftl_load()) {	/* before the fork; missing, the answer is no */
		cr_err_reset();
		return 0;
	}
	return in_own_netns(owner_table_probe);
}

static int repair_probe(void)
{
	int sk = socket(AF_INET, SOCK_STREAM, 0), on = 1, ok;

	if (sk < 0)
		return 0;
	ok = !setsockopt(sk, SOL_TCP, TCP_REPAIR, &on, sizeof(on));
	close(sk);
	return ok;
}

int net_repair_probe(void)
{
	return in_own_netns(repair_probe);
}
