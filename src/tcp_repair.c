/* TCP connections through the kernel's repair mode (TCP_REPAIR). Dump reads a
 * connection on cryo's copy of its socket without taking anything: sequence numbers,
 * both queues (MSG_PEEK on each), MSS, window scaling, SACK, timestamps and windows.
 * Restore makes a new socket into the same connection without a segment on the
 * wire; the peer's FIN (or its ACK of ours) that a closing state implies, which no
 * call can give, is a segment cryo sends the socket itself. Repair mode ends just
 * before the processes run. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <linux/tcp.h>

#include "log.h"
#include "net_lock.h"
#include "tcp_repair.h"

#ifndef TCPOPT_MAXSEG
#define TCPOPT_MAXSEG 2
#define TCPOPT_WINDOW 3
#define TCPOPT_SACK_PERM 4
#define TCPOPT_TIMESTAMP 8
#endif
#define TCP_MAX_WSCALE 14
#define MSS_MIN 8			/* the kernel's TCP_MIN_MSS */
#define MSS_MAX 65535
#define USER_MSS_MAX 32767		/* the kernel's MAX_TCP_WINDOW, TCP_MAXSEG's limit */
#define USER_MSS_MIN 88			/* TCP_MIN_MSS */
#define BUF_GROW_MAX (1 << 29)
#define READ_TRIES 5			/* readings of a connection that moved meanwhile */
#define STATE_WAIT_MS 2000		/* for the socket to take cryo's segment */

/* ---- pure ---- */

static const char *const state_names[] = {
	[TCPS_ESTABLISHED] = "ESTABLISHED", [TCPS_SYN_SENT] = "SYN_SENT",
	[TCPS_SYN_RECV] = "SYN_RECV", [TCPS_FIN_WAIT1] = "FIN_WAIT1",
	[TCPS_FIN_WAIT2] = "FIN_WAIT2", [TCPS_TIME_WAIT] = "TIME_WAIT",
	[TCPS_CLOSE] = "CLOSE", [TCPS_CLOSE_WAIT] = "CLOSE_WAIT",
	[TCPS_LAST_ACK] = "LAST_ACK", [TCPS_LISTEN] = "LISTEN", [TCPS_CLOSING] = "CLOSING",
};

const char *tcp_state_name(unsigned state)
{
	if (state < sizeof(state_names) / sizeof(state_names[0]) && state_names[state])
		return state_names[state];
	return "an unknown state";
}

bool tcp_state_connected(unsigned state)
{
	switch (state) {
	case TCPS_ESTABLISHED:
	case TCPS_SYN_SENT:
	case TCPS_FIN_WAIT1:
	case TCPS_FIN_WAIT2:
	case TCPS_CLOSE_WAIT:
	case TCPS_LAST_ACK:
	case TCPS_CLOSING:
		return true;
	}
	return false;
}

struct tcp_fins tcp_state_fins(unsigned s)
{
	struct tcp_fins f = {
		.sent = s == TCPS_FIN_WAIT1 || s == TCPS_FIN_WAIT2 || s == TCPS_LAST_ACK ||
			s == TCPS_CLOSING,
		.acked = s == TCPS_FIN_WAIT2,
		.received = s == TCPS_CLOSE_WAIT || s == TCPS_LAST_ACK || s == TCPS_CLOSING,
	};

	return f;
}

static uint32_t sum_words(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

uint16_t tcp_checksum(const void *saddr, const void *daddr, size_t alen, const void *seg,
		      size_t len)
{
	uint8_t tail[8] = { 0 };
	uint32_t sum;

	if (alen == 4) {		/* zero, protocol, TCP length (16 bits) */
		tail[1] = IPPROTO_TCP;
		tail[2] = len >> 8;
		tail[3] = len;
		sum = sum_words(0, tail, 4);
	} else {			/* TCP length (32 bits), three zeros, next header */
		tail[2] = len >> 8;
		tail[3] = len;
		tail[7] = IPPROTO_TCP;
		sum = sum_words(0, tail, 8);
	}
	sum = sum_words(sum_words(sum_words(sum, saddr, alen), daddr, alen), seg, len);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons(~sum & 0xffff);
}

int tcp_conn_check(const TcpConn *c)
{
	struct tcp_fins f;

	if (!c || !tcp_state_connected(c->state))
		return cr_err("image: a TCP connection in %s", c ? tcp_state_name(c->state) :
			      "no state");
	f = tcp_state_fins(c->state);
	if (c->send_queue.len > TCP_QUEUE_MAX || c->recv_queue.len > TCP_QUEUE_MAX)
		return cr_err("image: a TCP connection queues %zu and %zu bytes",
			      c->send_queue.len, c->recv_queue.len);
	if (c->unsent > c->send_queue.len || (f.acked && c->send_queue.len))
		return cr_err("image: a TCP connection's send queue is inconsistent");
	if (c->state == TCPS_SYN_SENT && (c->send_queue.len || c->recv_queue.len))
		return cr_err("image: a TCP connection being opened holds data");
	if (c->mss < MSS_MIN || c->mss > MSS_MAX)
		return cr_err("image: a TCP connection with an MSS of %u", c->mss);
	if (c->has_snd_wscale != c->has_rcv_wscale ||
	    (c->has_snd_wscale && (c->snd_wscale > TCP_MAX_WSCALE ||
				   c->rcv_wscale > TCP_MAX_WSCALE)))
		return cr_err("image: a TCP connection's window scaling is invalid");
	if (c->timestamps != c->has_timestamp)
		return cr_err("image: a TCP connection's timestamps are inconsistent");
	if (c->window && c->window->max_window < c->window->snd_wnd)
		return cr_err("image: a TCP connection's windows are inconsistent");
	return 0;
}

/* ---- socket calls ---- */

static int set_int(int sk, int opt, int v)
{
	return setsockopt(sk, IPPROTO_TCP, opt, &v, sizeof(v));
}

static int get_u32(int sk, int opt, uint32_t *v)
{
	socklen_t l = sizeof(*v);

	return getsockopt(sk, IPPROTO_TCP, opt, v, &l) || l != sizeof(*v) ? -1 : 0;
}

static int get_info(int sk, struct tcp_info *ti)
{
	socklen_t l = sizeof(*ti);

	memset(ti, 0, sizeof(*ti));
	return getsockopt(sk, IPPROTO_TCP, TCP_INFO, ti, &l);
}

/* ---- dump ---- */

static int *dumped;			/* cryo's copies of the sockets in repair mode */
static size_t nr_dumped;

static int keep_dumped(int sk)
{
	int *n = realloc(dumped, (nr_dumped + 1) * sizeof(*n));
	int fd = n ? fcntl(sk, F_DUPFD_CLOEXEC, 0) : -1;

	if (n)
		dumped = n;
	if (fd < 0)
		return cr_perr("cannot keep a copy of a TCP socket");
	dumped[nr_dumped++] = fd;
	return 0;
}

void tcp_conn_dump_finish(bool killed)
{
	for (size_t i = 0; i < nr_dumped; i++) {
		if (!killed && set_int(dumped[i], TCP_REPAIR, TCP_REPAIR_OFF_NO_WP))
			pr_warn("cannot take a TCP socket out of repair mode: %s",
				strerror(errno));
		close(dumped[i]);
	}
	free(dumped);
	dumped = NULL;
	nr_dumped = 0;
}

static void conn_name(const struct inet_diag_msg *d, char *out, size_t size)
{
	char a[INET6_ADDRSTRLEN] = "?", b[INET6_ADDRSTRLEN] = "?";
	int af = d->idiag_family;

	inet_ntop(af, d->id.idiag_src, a, sizeof(a));
	inet_ntop(af, d->id.idiag_dst, b, sizeof(b));
	snprintf(out, size, af == AF_INET6 ? "[%s]:%u -> [%s]:%u" : "%s:%u -> %s:%u", a,
		 ntohs(d->id.idiag_sport), b, ntohs(d->id.idiag_dport));
}

/* What a connection is at one instant: if two readings around the queues' are the
 * same, the queues read are the ones these numbers describe. */
struct reading {
	uint32_t state, snd_seq, rcv_seq;
	int outq, unsent, inq;
};

static int read_point(int sk, struct reading *r)
{
	struct tcp_info ti;

	memset(r, 0, sizeof(*r));
	if (get_info(sk, &ti) || set_int(sk, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ||
	    get_u32(sk, TCP_QUEUE_SEQ, &r->snd_seq) ||
	    set_int(sk, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) ||
	    get_u32(sk, TCP_QUEUE_SEQ, &r->rcv_seq) || ioctl(sk, SIOCOUTQ, &r->outq) ||
	    ioctl(sk, SIOCOUTQNSD, &r->unsent) || ioctl(sk, SIOCINQ, &r->inq))
		return -1;
	r->state = ti.tcpi_state;
	return 0;
}

/* One queue's bytes, without taking them: want bytes expected, *got what came. */
static int peek_queue(int sk, int queue, size_t want, ProtobufCBinaryData *out, size_t *got)
{
	ssize_t n = 0;

	out->data = malloc(want + 1);
	out->len = 0;
	if (!out->data || set_int(sk, TCP_REPAIR_QUEUE, queue))
		return -1;
	if (want)
		n = recv(sk, out->data, want + 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && errno != EAGAIN)
		return -1;
	*got = n < 0 ? 0 : n;
	out->len = *got > want ? want : *got;
	return 0;
}

static bool same_point(const struct reading *a, const struct reading *b)
{
	return !memcmp(a, b, sizeof(*a));
}

/* The send queue's data bytes a reading implies (the FIN not acknowledged and the
 * SYN take a sequence number each, no byte). */
static long send_bytes(const struct reading *r)
{
	struct tcp_fins f = tcp_state_fins(r->state);

	if (r->state == TCPS_SYN_SENT)
		return 0;
	return (long)r->outq - (f.sent && !f.acked);
}

static int read_queues(int sk, TcpConn *c, const char *name)
{
	for (int i = 0; i < READ_TRIES; i++) {
		struct reading a, b;
		size_t sgot, rgot;
		long sbytes;

		free(c->send_queue.data);
		free(c->recv_queue.data);
		c->send_queue.data = c->recv_queue.data = NULL;
		if (read_point(sk, &a))
			return cr_perr("TCP connection %s: cannot read its sequence numbers", name);
		sbytes = send_bytes(&a);
		if (sbytes < 0 || a.inq < 0 || a.unsent < 0 ||
		    (unsigned long)sbytes > TCP_QUEUE_MAX || (unsigned)a.inq > TCP_QUEUE_MAX)
			return cr_err("TCP connection %s: queues of %d and %d bytes (at most %u)",
				      name, a.outq, a.inq, TCP_QUEUE_MAX);
		if (peek_queue(sk, TCP_SEND_QUEUE, sbytes, &c->send_queue, &sgot) ||
		    peek_queue(sk, TCP_RECV_QUEUE, a.inq, &c->recv_queue, &rgot))
			return cr_perr("TCP connection %s: cannot read its queues", name);
		if (read_point(sk, &b))
			return cr_perr("TCP connection %s: cannot read its sequence numbers", name);
		if (!same_point(&a, &b) || sgot != (size_t)sbytes || rgot != (size_t)a.inq)
			continue;	/* the peer sent or acknowledged meanwhile */
		if (!tcp_state_connected(a.state))
			return cr_err("TCP connection %s: now in %s", name, tcp_state_name(a.state));
		c->state = a.state;
		c->snd_seq = a.snd_seq;
		c->rcv_seq = a.rcv_seq;
		/* A FIN not sent yet is the last of the unsent sequence numbers. */
		c->unsent = a.unsent - (a.unsent && tcp_state_fins(a.state).sent);
		if (c->unsent > c->send_queue.len)
			c->unsent = c->send_queue.len;
		return 0;
	}
	return cr_err("TCP connection %s: its queues kept changing while read (is traffic "
		      "locked?)", name);
}

static int read_options(int sk, TcpConn *c, const char *name)
{
	struct tcp_repair_window w;
	socklen_t l = sizeof(w);
	struct tcp_info ti;
	uint32_t v;

	if (get_info(sk, &ti) || get_u32(sk, TCP_MAXSEG, &c->mss))
		return cr_perr("TCP connection %s: cannot read its options", name);
	c->sack = ti.tcpi_options & TCPI_OPT_SACK;
	c->timestamps = ti.tcpi_options & TCPI_OPT_TIMESTAMPS;
	if (ti.tcpi_options & TCPI_OPT_WSCALE) {
		c->has_snd_wscale = c->has_rcv_wscale = true;
		c->snd_wscale = ti.tcpi_snd_wscale;
		c->rcv_wscale = ti.tcpi_rcv_wscale;
	}
	if (c->timestamps) {
		if (get_u32(sk, TCP_TIMESTAMP, &v))
			return cr_perr("TCP connection %s: cannot read its timestamp", name);
		c->has_timestamp = true;
		c->timestamp = v;
	}
	if (c->state == TCPS_SYN_SENT)
		return 0;
	if (getsockopt(sk, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &l) || l != sizeof(w))
		return cr_perr("TCP connection %s: cannot read its windows", name);
	c->window = malloc(sizeof(*c->window));
	if (!c->window)
		return cr_err("out of memory");
	tcp_window__init(c->window);
	c->window->snd_wl1 = w.snd_wl1;
	c->window->snd_wnd = w.snd_wnd;
	c->window->max_window = w.max_window;
	c->window->rcv_wnd = w.rcv_wnd;
	c->window->rcv_wup = w.rcv_wup;
	return 0;
}

int tcp_conn_dump(int sk, const struct inet_diag_msg *d, TcpConn **out)
{
	TcpConn *c = calloc(1, sizeof(*c));
	char name[128];

	conn_name(d, name, sizeof(name));
	*out = NULL;
	if (!c)
		return cr_err("out of memory");
	tcp_conn__init(c);
	if (!tcp_state_connected(d->idiag_state)) {
		cr_err("TCP connection %s: cryo cannot keep a connection in %s", name,
		       tcp_state_name(d->idiag_state));
		goto fail;
	}
	if (net_guard_repair(sk))
		goto fail;
	if (set_int(sk, TCP_REPAIR, TCP_REPAIR_ON)) {
		cr_perr("TCP connection %s: cannot enter repair mode", name);
		goto fail;
	}
	if (keep_dumped(sk) || read_queues(sk, c, name) || read_options(sk, c, name))
		goto fail;
	if (c->state == TCPS_SYN_SENT && (c->send_queue.len || c->recv_queue.len)) {
		cr_err("TCP connection %s: data sent with its SYN (TCP Fast Open)", name);
		goto fail;
	}
	if (tcp_conn_check(c)) {
		cr_err_reset();
		cr_err("TCP connection %s: its state cannot be kept (MSS %u)", name, c->mss);
		goto fail;
	}
	pr_debug("TCP connection %s: %s, %zu bytes to send (%u unsent), %zu to read", name,
		 tcp_state_name(c->state), c->send_queue.len, c->unsent, c->recv_queue.len);
	*out = c;
	return 0;
fail:
	tcp_conn_free(c);
	return -1;
}

void tcp_conn_free(TcpConn *c)
{
	if (c)
		tcp_conn__free_unpacked(c, NULL);
}

/* ---- restore ---- */

/* A segment from the peer (dst) to the socket (src), with no data and no option. */
struct segment {
	uint32_t seq, ack;
	bool fin;
	uint16_t window;
};

struct made {
	int fd;				/* cryo's copy of the socket */
	uint8_t *unsent;		/* queued as a normal send once repair mode is off */
	size_t len;
	/* A FIN never sent (it follows unsent bytes): queued after them, then (CLOSING)
	 * the peer's FIN received. */
	bool shut, fin_after;
	struct segment fin;
	struct sockaddr_storage src, dst;
};

static struct made *made;
static size_t nr_made;

static struct made *keep_made(int sk)
{
	struct made *n = realloc(made, (nr_made + 1) * sizeof(*n));
	int fd = n ? fcntl(sk, F_DUPFD_CLOEXEC, 0) : -1;

	if (n)
		made = n;
	if (fd < 0) {
		cr_perr("cannot keep a copy of a TCP socket");
		return NULL;
	}
	made[nr_made] = (struct made){ .fd = fd };
	return &made[nr_made++];
}

/* The segment size to give TCP_MAXSEG before connect(), which computes the size of
 * segments from it once: the repair options and windows set later change the clamp
 * and the largest window, not that size. As the kernel bounds it: by half the
 * largest window the peer offered (tcp_bound_to_half_wnd; else a peer with a small
 * window gets only window probes), and by what TCP_MAXSEG takes. */
static int segment_size(const TcpConn *c)
{
	uint32_t m = c->mss, w = c->window ? c->window->max_window : 0;

	if (w && m > (w > TCP_MSS_DESIRED ? w / 2 : w))
		m = w > TCP_MSS_DESIRED ? w / 2 : w;
	if (m > USER_MSS_MAX)
		m = USER_MSS_MAX;
	return m < USER_MSS_MIN ? USER_MSS_MIN : (int)m;
}

int tcp_diag_ends(int type, const struct sockaddr *src, const struct sockaddr *dst,
		  void (*cb)(const struct nlmsghdr *h, void *arg), void *arg)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} req = {
		.h = { sizeof(req), type, NLM_F_REQUEST | (type == SOCK_DESTROY ? NLM_F_ACK : 0),
		       1, 0 },
		.r = { .sdiag_family = src->sa_family, .sdiag_protocol = IPPROTO_TCP,
		       .idiag_states = ~0u,
		       .id.idiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE } },
	};
	const struct sockaddr_in6 *l6 = (const void *)src, *p6 = (const void *)dst;
	const struct sockaddr_in *l4 = (const void *)src, *p4 = (const void *)dst;
	static char buf[8192] __attribute__((aligned(8)));
	struct nlmsghdr *h = (void *)buf;
	int nl, rc = -1;
	ssize_t n;

	if (src->sa_family == AF_INET6) {
		memcpy(req.r.id.idiag_src, &l6->sin6_addr, 16);
		memcpy(req.r.id.idiag_dst, &p6->sin6_addr, 16);
		req.r.id.idiag_sport = l6->sin6_port;
		req.r.id.idiag_dport = p6->sin6_port;
	} else {
		memcpy(req.r.id.idiag_src, &l4->sin_addr, 4);
		memcpy(req.r.id.idiag_dst, &p4->sin_addr, 4);
		req.r.id.idiag_sport = l4->sin_port;
		req.r.id.idiag_dport = p4->sin_port;
	}
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return cr_perr("cannot open a sock_diag socket");
	if (send(nl, &req, sizeof(req), 0) != sizeof(req) ||
	    (n = recv(nl, buf, sizeof(buf), 0)) < 0) {
		cr_perr("cannot ask sock_diag about a TCP connection");
	} else if (!NLMSG_OK(h, (size_t)n)) {
		cr_err("sock_diag gave a short answer about a TCP connection");
	} else if (h->nlmsg_type == NLMSG_ERROR) {
		int e = ((struct nlmsgerr *)NLMSG_DATA(h))->error;

		rc = !e ? 0 : e == -ENOENT ? 1 : -1;
		if (rc < 0) {
			errno = -e;
			cr_perr("sock_diag refused a question about a TCP connection");
		}
	} else if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
		if (cb)
			cb(h, arg);
		rc = 0;
	}
	close(nl);
	return rc;
}

static void answer_ino(const struct nlmsghdr *h, void *arg)
{
	*(uint32_t *)arg = ((const struct inet_diag_msg *)NLMSG_DATA(h))->idiag_inode;
}

/* What a dump or restore killed at the wrong moment can leave on the connection's
 * ends: a socket no fd holds (closed out of repair mode, it lingers to send its
 * FIN) or in TIME_WAIT. The network lock drops all it sends; it goes (sock_diag
 * destroys it), or 0 if something else holds the ends. */
static bool clear_leftover(const struct sockaddr *src, const struct sockaddr *dst)
{
	uint32_t ino = 1;

	if (tcp_diag_ends(SOCK_DIAG_BY_FAMILY, src, dst, answer_ino, &ino) || ino) {
		cr_err_reset();
		return false;
	}
	pr_info("a TCP socket no process holds had the connection's ends: destroyed");
	return tcp_diag_ends(SOCK_DESTROY, src, dst, NULL, NULL) == 0;
}

static int queue_seq(int sk, int queue, uint32_t seq)
{
	if (set_int(sk, TCP_REPAIR_QUEUE, queue) || set_int(sk, TCP_QUEUE_SEQ, (int)seq))
		return cr_perr("cannot set a TCP connection's sequence numbers");
	return 0;
}

static int set_options(int sk, const TcpConn *c)
{
	struct tcp_repair_opt o[4];
	int n = 0;

	o[n++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, c->mss };
	if (c->sack)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERM, 0 };
	if (c->has_snd_wscale)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_WINDOW,
						  c->snd_wscale | c->rcv_wscale << 16 };
	if (c->timestamps)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_OPTIONS, o, n * sizeof(o[0])))
		return cr_perr("cannot set a TCP connection's options");
	if (c->has_timestamp && set_int(sk, TCP_TIMESTAMP, (int)c->timestamp))
		return cr_perr("cannot set a TCP connection's timestamp");
	return 0;
}

/* Room for `len` more bytes in a buffer the kernel would not grow alone. */
/* Room for `len` more bytes in a buffer the kernel would not grow alone: each call
 * at least doubles it (what is queued counts with its overhead); -1 past 512 MiB. */
static int grow_buffer(int sk, int force_opt, int opt, size_t len)
{
	int cur = 0, want;
	socklen_t l = sizeof(cur);

	if (getsockopt(sk, SOL_SOCKET, opt, &cur, &l) || cur > BUF_GROW_MAX ||
	    len > BUF_GROW_MAX)
		return -1;
	want = cur + 2 * (int)len;	/* the kernel doubles it */
	pr_info("a TCP queue of %zu bytes: socket buffer %d raised", len, cur);
	return setsockopt(sk, SOL_SOCKET, force_opt, &want, sizeof(want));
}

/* A queue goes back in pieces of this much: each is one allocation of the kernel's. */
#define QUEUE_CHUNK (64 << 10)
#define QUEUE_NOBUFS_TRIES 1000

/* Bytes into a queue in repair mode: the receive queue as if received, the send
 * queue as if sent and not acknowledged. */
static int write_queue(int sk, int queue, const uint8_t *data, size_t len)
{
	size_t done = 0;
	int busy = 0;

	if (!len)
		return 0;
	if (set_int(sk, TCP_REPAIR_QUEUE, queue))
		return cr_perr("cannot select a TCP queue");
	while (done < len) {
		size_t chunk = len - done < QUEUE_CHUNK ? len - done : QUEUE_CHUNK;
		ssize_t n = send(sk, data + done, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			done += n;
			busy = 0;
			continue;
		}
		/* The kernel could not allocate the buffer (ENOBUFS): memory is short
		 * for a moment, not the socket's room. */
		if (n < 0 && errno == ENOBUFS && busy++ < QUEUE_NOBUFS_TRIES) {
			usleep(1000);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == ENOMEM)) {
			if (!grow_buffer(sk, queue == TCP_RECV_QUEUE ? SO_RCVBUFFORCE :
					 SO_SNDBUFFORCE, queue == TCP_RECV_QUEUE ? SO_RCVBUF :
					 SO_SNDBUF, len - done))
				continue;
		}
		return cr_perr("cannot put %zu bytes back in a TCP %s queue", len,
			       queue == TCP_RECV_QUEUE ? "receive" : "send");
	}
	return 0;
}

static int set_window(int sk, const TcpConn *c, uint32_t rcv_nxt)
{
	struct tcp_repair_window w = {
		.snd_wl1 = c->window->snd_wl1, .snd_wnd = c->window->snd_wnd,
		.max_window = c->window->max_window, .rcv_wnd = c->window->rcv_wnd,
		.rcv_wup = c->window->rcv_wup,
	};

	/* Before the peer's FIN comes back: the same right edge from one earlier. */
	if ((int32_t)(w.rcv_wup - rcv_nxt) > 0) {
		w.rcv_wnd += w.rcv_wup - rcv_nxt;
		w.rcv_wup = rcv_nxt;
	}
	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)))
		return cr_perr("cannot set a TCP connection's windows");
	return 0;
}

static size_t build_tcp(uint8_t *p, const struct segment *s, uint16_t sport, uint16_t dport)
{
	struct tcphdr *th = (struct tcphdr *)p;

	memset(th, 0, sizeof(*th));
	th->source = sport;
	th->dest = dport;
	th->seq = htonl(s->seq);
	th->ack_seq = htonl(s->ack);
	th->doff = sizeof(*th) / 4;
	th->ack = 1;
	th->fin = s->fin;
	th->window = htons(s->window);
	return sizeof(*th);
}

static bool v4_mapped(const struct sockaddr_in6 *a)
{
	return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr);
}

/* A whole IP packet, header included (IPPROTO_RAW), marked for the network lock. */
static int send_raw(int family, const void *pkt, size_t len, const void *to, socklen_t tl)
{
	int mark = TCP_REPAIR_MARK, rc = 0;
	int fd = socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) ||
	    sendto(fd, pkt, len, 0, to, tl) != (ssize_t)len)
		rc = cr_perr("cannot send a TCP connection its peer's segment");
	if (fd >= 0)
		close(fd);
	return rc;
}

static int send_v4(const struct segment *s, const struct in_addr *from, uint16_t fport,
		   const struct in_addr *to, uint16_t tport)
{
	uint8_t pkt[64] = { 0 };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = *to };
	size_t tl = build_tcp(pkt + 20, s, fport, tport);
	uint16_t ck = tcp_checksum(from, to, 4, pkt + 20, tl);

	memcpy(pkt + 20 + 16, &ck, 2);
	pkt[0] = 0x45;
	pkt[2] = (20 + tl) >> 8;
	pkt[3] = 20 + tl;
	pkt[8] = 64;
	pkt[9] = IPPROTO_TCP;
	memcpy(pkt + 12, from, 4);
	memcpy(pkt + 16, to, 4);
	return send_raw(AF_INET, pkt, 20 + tl, &sa, sizeof(sa));
}

static int send_v6(const struct segment *s, const struct in6_addr *from, uint16_t fport,
		   const struct in6_addr *to, uint16_t tport)
{
	uint8_t pkt[80] = { 0 };
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = *to };
	size_t tl = build_tcp(pkt + 40, s, fport, tport);
	uint16_t ck = tcp_checksum(from, to, 16, pkt + 40, tl);

	memcpy(pkt + 40 + 16, &ck, 2);
	pkt[0] = 0x60;
	pkt[4] = tl >> 8;
	pkt[5] = tl;
	pkt[6] = IPPROTO_TCP;
	pkt[7] = 64;
	memcpy(pkt + 8, from, 16);
	memcpy(pkt + 24, to, 16);
	return send_raw(AF_INET6, pkt, 40 + tl, &sa, sizeof(sa));
}

static int send_segment(const struct segment *s, const struct sockaddr *src,
			const struct sockaddr *dst)
{
	const struct sockaddr_in6 *l6 = (const void *)src, *p6 = (const void *)dst;
	const struct sockaddr_in *l4 = (const void *)src, *p4 = (const void *)dst;
	struct in_addr from, to;

	if (src->sa_family == AF_INET)
		return send_v4(s, &p4->sin_addr, p4->sin_port, &l4->sin_addr, l4->sin_port);
	if (!v4_mapped(l6) || !v4_mapped(p6))
		return send_v6(s, &p6->sin6_addr, p6->sin6_port, &l6->sin6_addr, l6->sin6_port);
	memcpy(&from, p6->sin6_addr.s6_addr + 12, 4);
	memcpy(&to, l6->sin6_addr.s6_addr + 12, 4);
	return send_v4(s, &from, p6->sin6_port, &to, l6->sin6_port);
}

/* Wait (bounded) for the socket to have taken cryo's segment. */
static int wait_state(int sk, unsigned want)
{
	struct timespec ms = { 0, 1000000 };
	struct tcp_info ti;

	for (int i = 0; i < STATE_WAIT_MS; i++) {
		if (get_info(sk, &ti))
			return cr_perr("cannot read a TCP connection's state");
		if (ti.tcpi_state == want)
			return 0;
		nanosleep(&ms, NULL);
	}
	return cr_err("a restored TCP connection stays in %s, not %s",
		      tcp_state_name(ti.tcpi_state), tcp_state_name(want));
}

static int shut_wr(int sk, unsigned want)
{
	if (set_int(sk, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) || shutdown(sk, SHUT_WR))
		return cr_perr("cannot queue a TCP connection's FIN");
	return wait_state(sk, want);
}

static uint16_t peer_window(const TcpConn *c)
{
	uint32_t w = c->window ? c->window->snd_wnd : 65535;

	w >>= c->has_snd_wscale ? c->snd_wscale : 0;
	return w > 65535 ? 65535 : w;
}

/* The FINs of a closing state, in the order that leads to it: ours queued (in
 * repair mode: counted as sent, not transmitted), the peer's received from a
 * segment cryo sends, ours acknowledged the same way. Our FIN behind unsent bytes
 * was never sent: it is queued after them, with repair mode off (m->shut), and the
 * peer's FIN of CLOSING follows it. */
static int restore_fins(int sk, const TcpConn *c, struct made *m, uint32_t rcv_end,
			uint32_t snd_una)
{
	const struct sockaddr *src = (void *)&m->src, *dst = (void *)&m->dst;
	struct tcp_fins f = tcp_state_fins(c->state);
	struct segment fin = { rcv_end, snd_una, true, peer_window(c) };
	struct segment ack = { rcv_end, c->snd_seq, false, peer_window(c) };
	bool later = f.sent && c->unsent;

	m->shut = later;
	switch (c->state) {
	case TCPS_FIN_WAIT1:
		return later ? 0 : shut_wr(sk, TCPS_FIN_WAIT1);
	case TCPS_FIN_WAIT2:
		return shut_wr(sk, TCPS_FIN_WAIT1) || send_segment(&ack, src, dst) ||
		       wait_state(sk, TCPS_FIN_WAIT2);
	case TCPS_CLOSING:
		if (later) {
			m->fin_after = true;
			m->fin = fin;
			return 0;
		}
		return shut_wr(sk, TCPS_FIN_WAIT1) || send_segment(&fin, src, dst) ||
		       wait_state(sk, TCPS_CLOSING);
	case TCPS_CLOSE_WAIT:
	case TCPS_LAST_ACK:
		if (send_segment(&fin, src, dst) || wait_state(sk, TCPS_CLOSE_WAIT))
			return -1;
		return f.sent && !later ? shut_wr(sk, TCPS_LAST_ACK) : 0;
	}
	return 0;
}

/* A SYN not answered yet: sent again, with the same initial sequence number. */
static int restore_syn_sent(int sk, const TcpConn *c, const struct sockaddr *dst,
			    socklen_t alen)
{
	int fl = fcntl(sk, F_GETFL);

	if (queue_seq(sk, TCP_SEND_QUEUE, c->snd_seq - 1))
		return -1;
	if (set_int(sk, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP) || fl < 0 ||
	    fcntl(sk, F_SETFL, fl | O_NONBLOCK))
		return cr_perr("cannot prepare a TCP connection's SYN");
	if (connect(sk, dst, alen) && errno != EINPROGRESS)
		return cr_perr("cannot send a TCP connection's SYN again");
	if (fcntl(sk, F_SETFL, fl))
		return cr_perr("cannot restore a TCP socket's flags");
	return 0;
}

int tcp_conn_restore(int sk, const TcpConn *c, const struct sockaddr *src,
		     const struct sockaddr *dst, socklen_t alen)
{
	struct tcp_fins f;
	uint32_t rcv_end, snd_start;
	struct made *m;
	size_t in_repair;

	if (tcp_conn_check(c))
		return -1;
	f = tcp_state_fins(c->state);
	rcv_end = c->rcv_seq - f.received;
	snd_start = c->snd_seq - f.sent - c->send_queue.len;
	if (alen > sizeof(struct sockaddr_storage))
		return cr_err("a TCP connection's address is too long");
	if (set_int(sk, TCP_REPAIR, TCP_REPAIR_ON))
		return cr_perr("cannot put a new TCP socket in repair mode");
	if (bind(sk, src, alen))
		return cr_perr("cannot bind a TCP connection's socket again");
	if (c->state == TCPS_SYN_SENT)
		return restore_syn_sent(sk, c, dst, alen);
	m = keep_made(sk);
	if (!m || queue_seq(sk, TCP_RECV_QUEUE, rcv_end - c->recv_queue.len) ||
	    queue_seq(sk, TCP_SEND_QUEUE, snd_start))
		return -1;
	memcpy(&m->src, src, alen);
	memcpy(&m->dst, dst, alen);
	if (setsockopt(sk, IPPROTO_TCP, TCP_MAXSEG, &(int){ segment_size(c) }, sizeof(int)))
		return cr_perr("cannot set a TCP connection's MSS");
	if (connect(sk, dst, alen) &&
	    (errno != EADDRNOTAVAIL || !clear_leftover(src, dst) || connect(sk, dst, alen)))
		return cr_perr("cannot connect a TCP socket in repair mode");
	/* What was sent goes in repair mode (as sent); the rest once it is off. */
	in_repair = c->send_queue.len - c->unsent;
	if (set_options(sk, c) || write_queue(sk, TCP_RECV_QUEUE, c->recv_queue.data,
					      c->recv_queue.len) ||
	    write_queue(sk, TCP_SEND_QUEUE, c->send_queue.data, in_repair))
		return -1;
	if (c->window && set_window(sk, c, rcv_end))
		return -1;
	if (in_repair < c->send_queue.len) {
		m->len = c->send_queue.len - in_repair;
		m->unsent = malloc(m->len);
		if (!m->unsent)
			return cr_err("out of memory");
		memcpy(m->unsent, c->send_queue.data + in_repair, m->len);
	}
	return restore_fins(sk, c, m, rcv_end, f.acked ? c->snd_seq : snd_start);
}

static int send_unsent(const struct made *m)
{
	size_t done = 0;

	while (done < m->len) {
		ssize_t n = send(m->fd, m->unsent + done, m->len - done,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			done += n;
			continue;
		}
		if (n < 0 && errno == EAGAIN) {
			if (!grow_buffer(m->fd, SO_SNDBUFFORCE, SO_SNDBUF, m->len - done))
				continue;
		}
		return cr_perr("cannot queue %zu unsent bytes of a TCP connection",
			       m->len - done);
	}
	return 0;
}

int tcp_conn_restore_finish(bool ok)
{
	int rc = 0;

	for (size_t i = 0; i < nr_made; i++) {
		struct made *m = &made[i];

		if (ok && !rc && set_int(m->fd, TCP_REPAIR, TCP_REPAIR_OFF))
			rc = cr_perr("cannot take a TCP connection out of repair mode");
		if (ok && !rc && m->len && send_unsent(m))
			rc = -1;
		if (ok && !rc && m->shut && shutdown(m->fd, SHUT_WR))
			rc = cr_perr("cannot queue a TCP connection's FIN");
		if (ok && !rc && m->fin_after &&
		    (send_segment(&m->fin, (void *)&m->src, (void *)&m->dst) ||
		     wait_state(m->fd, TCPS_CLOSING)))
			rc = -1;
		close(m->fd);
		free(m->unsent);
	}
	free(made);
	made = NULL;
	nr_made = 0;
	return rc;
}
