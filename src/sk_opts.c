/* Options every network socket kind shares (SkOpts): read with getsockopt at dump,
 * checked against what the kernel takes, set again at restore where a new socket
 * differs; and the inet address helpers (sockaddr from the image, printing, "does
 * this host have it") of the TCP, UDP and other socket kinds. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/filter.h>

#include "log.h"
#include "sk_opts.h"
#include "sys.h"
#include "util.h"

#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif
#ifndef IPV6_ADDR_PREFERENCES
#define IPV6_ADDR_PREFERENCES 72
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif
#ifndef SO_BUSY_POLL
#define SO_BUSY_POLL 46
#endif
#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif

#define BPF_INSNS_MAX 4096		/* BPF_MAXINSNS */
#define PRIO_UNPRIVILEGED 6		/* above: CAP_NET_ADMIN */

#define OPT_(n, l, o, f, a, b) SK_INT_OPT(SkOpts, n, l, o, f, a, b)
#define OPT(l, o, f, a, b) OPT_(#o, l, o, f, a, b)
#define BOOL(l, o, f) OPT_(#o, l, o, f, 0, 1)
#define L_SOCK SOL_SOCKET
#define L_IP IPPROTO_IP
#define L_IP6 IPPROTO_IPV6

static const struct sk_int_opt int_opts[] = {
	BOOL(L_SOCK, SO_REUSEADDR, reuseaddr),
	BOOL(L_SOCK, SO_REUSEPORT, reuseport),
	BOOL(L_SOCK, SO_KEEPALIVE, keepalive),
	OPT(L_SOCK, SO_MARK, mark, 0, UINT32_MAX),
	OPT(L_SOCK, SO_RCVLOWAT, rcvlowat, 0, INT_MAX),
	BOOL(L_SOCK, SO_PASSCRED, passcred),
	BOOL(L_SOCK, SO_PASSSEC, passsec),
	BOOL(L_SOCK, SO_BROADCAST, broadcast),
	BOOL(L_SOCK, SO_DONTROUTE, dontroute),
	BOOL(L_SOCK, SO_OOBINLINE, oobinline),
	BOOL(L_SOCK, SO_TIMESTAMP, timestamp),
	BOOL(L_SOCK, SO_TIMESTAMPNS, timestampns),
	BOOL(L_SOCK, SO_RXQ_OVFL, rxq_ovfl),
	OPT(L_SOCK, SO_BUSY_POLL, busy_poll, 0, INT_MAX),
	BOOL(L_SOCK, SO_SELECT_ERR_QUEUE, select_err_queue),
	BOOL(L_SOCK, SO_NOFCS, nofcs),
	BOOL(L_SOCK, SO_ZEROCOPY, zerocopy),
	OPT(L_SOCK, SO_PEEK_OFF, peek_off, -1, INT_MAX),
	OPT(L_IP, IP_TOS, ip_tos, 0, 255),
	OPT(L_IP, IP_TTL, ip_ttl, 1, 255),
	BOOL(L_IP, IP_FREEBIND, ip_freebind),
	BOOL(L_IP, IP_TRANSPARENT, ip_transparent),
	OPT(L_IP, IP_MTU_DISCOVER, ip_mtu_discover, 0, 5),
	BOOL(L_IP, IP_RECVERR, ip_recverr),
	BOOL(L_IP, IP_PKTINFO, ip_pktinfo),
	BOOL(L_IP, IP_RECVTOS, ip_recvtos),
	BOOL(L_IP, IP_RECVTTL, ip_recvttl),
	BOOL(L_IP, IP_BIND_ADDRESS_NO_PORT, ip_bind_address_no_port),
	OPT(L_IP, IP_MULTICAST_TTL, ip_multicast_ttl, 0, 255),
	BOOL(L_IP, IP_MULTICAST_LOOP, ip_multicast_loop),
	BOOL(L_IP, IP_MULTICAST_ALL, ip_multicast_all),
	BOOL(L_IP, IP_RECVORIGDSTADDR, ip_recvorigdstaddr),
	BOOL(L_IP, IP_NODEFRAG, ip_nodefrag),
	OPT(L_IP, IP_LOCAL_PORT_RANGE, ip_local_port_range, 0, UINT32_MAX),
	BOOL(L_IP6, IPV6_V6ONLY, ipv6_v6only),
	OPT(L_IP6, IPV6_TCLASS, ipv6_tclass, -1, 255),
	OPT(L_IP6, IPV6_UNICAST_HOPS, ipv6_unicast_hops, -1, 255),
	OPT(L_IP6, IPV6_MULTICAST_HOPS, ipv6_multicast_hops, -1, 255),
	BOOL(L_IP6, IPV6_MULTICAST_LOOP, ipv6_multicast_loop),
	BOOL(L_IP6, IPV6_RECVPKTINFO, ipv6_recvpktinfo),
	BOOL(L_IP6, IPV6_RECVERR, ipv6_recverr),
	BOOL(L_IP6, IPV6_FREEBIND, ipv6_freebind),
	BOOL(L_IP6, IPV6_TRANSPARENT, ipv6_transparent),
	OPT(L_IP6, IPV6_MTU_DISCOVER, ipv6_mtu_discover, 0, 5),
	BOOL(L_IP6, IPV6_RECVTCLASS, ipv6_recvtclass),
	BOOL(L_IP6, IPV6_RECVHOPLIMIT, ipv6_recvhoplimit),
	BOOL(L_IP6, IPV6_AUTOFLOWLABEL, ipv6_autoflowlabel),
	BOOL(L_IP6, IPV6_DONTFRAG, ipv6_dontfrag),
	OPT(L_IP6, IPV6_ADDR_PREFERENCES, ipv6_addr_preferences, 0, INT_MAX),
	BOOL(L_IP6, IPV6_RECVORIGDSTADDR, ipv6_recvorigdstaddr),
	/* After IP_TOS and IPV6_TCLASS, which may set the priority too. */
	OPT(L_SOCK, SO_PRIORITY, priority, INT_MIN, INT_MAX),
};

/* IP-level options apply to both inet families (v4-mapped traffic of a v6 socket);
 * any other level (IPPROTO_TCP, ...) is the caller's to choose. */
static bool level_applies(int level, int family)
{
	if (level == IPPROTO_IP)
		return family == AF_INET || family == AF_INET6;
	if (level == IPPROTO_IPV6)
		return family == AF_INET6;
	return true;
}

static int *has_of(const void *o, const struct sk_int_opt *d)
{
	return (int *)((char *)o + d->has_off);
}

/* Every value field of a table is 32 bits (int32, uint32 or protobuf_c_boolean). */
static int32_t val_of(const void *o, const struct sk_int_opt *d)
{
	int32_t v;

	memcpy(&v, (const char *)o + d->val_off, sizeof(v));
	return v;
}

/* The value as the image's field type reads it (uint32 fields may exceed INT_MAX). */
static int64_t field_value(const void *o, const struct sk_int_opt *d)
{
	return d->hi == UINT32_MAX ? (int64_t)(uint32_t)val_of(o, d) : val_of(o, d);
}

static const char *label(const char *what)
{
	return what ? what : "socket";
}

/* ---- pure: image checks ---- */

static bool ifname_ok(const char *n)
{
	size_t len = strlen(n);

	if (!len || len >= IFNAMSIZ)
		return false;
	for (size_t i = 0; i < len; i++)
		if (n[i] <= ' ' || n[i] > '~' || n[i] == '/')
			return false;
	return true;
}

int sk_int_opts_check(const void *msg, const struct sk_int_opt *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int64_t v = field_value(msg, &t[i]);

		if (*has_of(msg, &t[i]) && (v < t[i].lo || v > t[i].hi))
			return cr_err("image: socket option %s has value %lld", t[i].name,
				      (long long)v);
	}
	return 0;
}

int sk_opts_check(const SkOpts *o)
{
	if (!o)
		return 0;
	if (sk_int_opts_check(o, int_opts, CR_ARRAY_SIZE(int_opts)))
		return -1;
	if ((o->has_rcvbuf && o->rcvbuf > INT_MAX) || (o->has_sndbuf && o->sndbuf > INT_MAX))
		return cr_err("image: socket buffer of %u bytes",
			      o->has_rcvbuf && o->rcvbuf > INT_MAX ? o->rcvbuf : o->sndbuf);
	if (o->has_linger_secs && o->linger_secs < 0)
		return cr_err("image: SO_LINGER of %d seconds", o->linger_secs);
	if ((o->has_rcvtimeo_us && o->rcvtimeo_us > (uint64_t)INT_MAX * 1000000) ||
	    (o->has_sndtimeo_us && o->sndtimeo_us > (uint64_t)INT_MAX * 1000000))
		return cr_err("image: a socket timeout out of range");
	if (o->bindtodevice && o->bindtodevice[0] && !ifname_ok(o->bindtodevice))
		return cr_err("image: SO_BINDTODEVICE names no possible interface");
	if (o->has_filter && (!o->filter.len || o->filter.len % sizeof(struct sock_filter) ||
			      o->filter.len / sizeof(struct sock_filter) > BPF_INSNS_MAX))
		return cr_err("image: a socket filter of %zu bytes", o->filter.len);
	if (o->has_lock_filter && o->lock_filter && !o->has_filter)
		return cr_err("image: a socket filter locked but absent");
	return 0;
}

/* The option needing CAP_NET_ADMIN or CAP_NET_RAW that the image sets, or NULL. */
static const char *privileged_opt(const SkOpts *o)
{
	if (o->has_mark && o->mark)
		return "SO_MARK";
	if (o->has_priority && (o->priority < 0 || o->priority > PRIO_UNPRIVILEGED))
		return "SO_PRIORITY above 6";
	if (o->bindtodevice && o->bindtodevice[0])
		return "SO_BINDTODEVICE";
	if ((o->has_ip_transparent && o->ip_transparent) ||
	    (o->has_ipv6_transparent && o->ipv6_transparent))
		return "IP_TRANSPARENT";
	if (o->has_busy_poll && o->busy_poll)
		return "SO_BUSY_POLL";
	return NULL;
}

int sk_opts_check_rights(const SkOpts *o, bool limited, const char *what)
{
	const char *p = o && limited ? privileged_opt(o) : NULL;

	if (p)
		return cr_err("%s sets %s, which needs rights the image's owner may not have",
			      label(what), p);
	return 0;
}

/* ---- dump ---- */

bool sk_opt_kernel_only(int level, int opt, int type)
{
	return type == SOCK_STREAM && level == IPPROTO_IP && opt == IP_MULTICAST_TTL;
}

static int sock_type(int sk)
{
	socklen_t l = sizeof(int);
	int type = 0;

	if (getsockopt(sk, SOL_SOCKET, SO_TYPE, &type, &l))
		return 0;
	return type;
}

/* Not an option of this socket: ENOPROTOOPT, EOPNOTSUPP, EINVAL. */
static bool not_here(int err)
{
	return err == ENOPROTOOPT || err == EOPNOTSUPP || err == EINVAL;
}

int sk_int_opts_dump(int sk, int family, const struct sk_int_opt *t, size_t n, void *msg,
		     const char *what)
{
	int type = sock_type(sk);

	for (size_t i = 0; i < n; i++) {
		const struct sk_int_opt *d = &t[i];
		socklen_t l = sizeof(int);
		int v = 0;

		if (!level_applies(d->level, family) || sk_opt_kernel_only(d->level, d->opt, type))
			continue;
		if (getsockopt(sk, d->level, d->opt, &v, &l)) {
			if (not_here(errno))
				continue;
			return cr_perr("%s: cannot read %s", label(what), d->name);
		}
		if (d->hi == 1)
			v = !!v;
		*has_of(msg, d) = 1;
		memcpy((char *)msg + d->val_off, &v, sizeof(v));
	}
	return 0;
}

static int get_int(int sk, int opt, int *v, const char *what, const char *name)
{
	socklen_t l = sizeof(*v);

	if (getsockopt(sk, SOL_SOCKET, opt, v, &l))
		return cr_perr("%s: cannot read %s", label(what), name);
	return 0;
}

static int get_timeo(int sk, int opt, uint64_t *us, const char *what)
{
	struct timeval tv;
	socklen_t l = sizeof(tv);

	if (getsockopt(sk, SOL_SOCKET, opt, &tv, &l))
		return cr_perr("%s: cannot read a socket timeout", label(what));
	*us = (uint64_t)tv.tv_sec * 1000000 + tv.tv_usec;
	return 0;
}

static int dump_special(int sk, SkOpts *o, const char *what)
{
	struct linger lg;
	socklen_t l = sizeof(lg);
	char dev[IFNAMSIZ + 1] = "";
	int v;

	if (get_int(sk, SO_RCVBUF, &v, what, "SO_RCVBUF"))
		return -1;
	o->has_rcvbuf = 1;
	o->rcvbuf = v;
	if (get_int(sk, SO_SNDBUF, &v, what, "SO_SNDBUF"))
		return -1;
	o->has_sndbuf = 1;
	o->sndbuf = v;
	if (get_timeo(sk, SO_RCVTIMEO, &o->rcvtimeo_us, what) ||
	    get_timeo(sk, SO_SNDTIMEO, &o->sndtimeo_us, what))
		return -1;
	o->has_rcvtimeo_us = o->has_sndtimeo_us = 1;
	if (getsockopt(sk, SOL_SOCKET, SO_LINGER, &lg, &l))
		return cr_perr("%s: cannot read SO_LINGER", label(what));
	o->has_linger_on = o->has_linger_secs = 1;
	o->linger_on = !!lg.l_onoff;
	o->linger_secs = lg.l_linger;
	l = sizeof(dev) - 1;
	if (getsockopt(sk, SOL_SOCKET, SO_BINDTODEVICE, dev, &l) && !not_here(errno))
		return cr_perr("%s: cannot read SO_BINDTODEVICE", label(what));
	dev[l < sizeof(dev) ? l : sizeof(dev) - 1] = 0;
	if (dev[0]) {
		o->bindtodevice = strdup(dev);
		if (!o->bindtodevice)
			return cr_err("out of memory");
	}
	return 0;
}

static int ebpf_refusal(const char *what)
{
	return cr_err("%s has an eBPF socket filter (SO_ATTACH_BPF); cryo restores only "
		      "classic BPF filters", label(what));
}

/* A classic filter as SO_GET_FILTER gives it; an eBPF one (SO_ATTACH_BPF) has no
 * classic form to read: the kernel answers EACCES, and dump refuses it. */
static int dump_filter(int sk, SkOpts *o, const char *what)
{
	socklen_t n = 0;
	int locked = 0;

	if (getsockopt(sk, SOL_SOCKET, SO_GET_FILTER, NULL, &n)) {
		if (errno == EACCES)
			return ebpf_refusal(what);
		return not_here(errno) ? 0 : cr_perr("%s: cannot read its socket filter",
						     label(what));
	}
	if (!n)
		return 0;
	if (n > BPF_INSNS_MAX)
		return cr_err("%s has a socket filter of %u instructions", label(what), n);
	o->filter.data = calloc(n, sizeof(struct sock_filter));
	if (!o->filter.data)
		return cr_err("out of memory");
	if (getsockopt(sk, SOL_SOCKET, SO_GET_FILTER, o->filter.data, &n)) {
		if (errno == EACCES)
			return ebpf_refusal(what);
		return cr_perr("%s: cannot read its socket filter", label(what));
	}
	o->has_filter = 1;
	o->filter.len = (size_t)n * sizeof(struct sock_filter);
	if (get_int(sk, SO_LOCK_FILTER, &locked, what, "SO_LOCK_FILTER"))
		return -1;
	o->has_lock_filter = 1;
	o->lock_filter = !!locked;
	return 0;
}

int sk_opts_dump_for(int sk, int family, const char *what, SkOpts **out)
{
	SkOpts *o = calloc(1, sizeof(*o));

	*out = NULL;
	if (!o)
		return cr_err("out of memory");
	sk_opts__init(o);
	if (sk_int_opts_dump(sk, family, int_opts, CR_ARRAY_SIZE(int_opts), o, what) || dump_special(sk, o, what) ||
	    dump_filter(sk, o, what)) {
		sk_opts_free(o);
		return -1;
	}
	*out = o;
	return 0;
}

int sk_opts_dump(int sk, int family, SkOpts **out)
{
	return sk_opts_dump_for(sk, family, NULL, out);
}

void sk_opts_free(SkOpts *o)
{
	if (!o)
		return;
	free(o->bindtodevice);
	free(o->filter.data);
	free(o);
}

/* ---- restore ---- */

int sk_int_opts_restore(int sk, int family, const struct sk_int_opt *t, size_t n,
			const void *msg, const char *what)
{
	int type = sock_type(sk);

	for (size_t i = 0; i < n; i++) {
		const struct sk_int_opt *d = &t[i];
		int want = val_of(msg, d), now = 0, lvl = d->level;
		socklen_t l = sizeof(now);

		if (!*has_of(msg, d) || !level_applies(d->level, family) ||
		    sk_opt_kernel_only(d->level, d->opt, type))
			continue;
		if (getsockopt(sk, lvl, d->opt, &now, &l)) {
			if (not_here(errno))
				return cr_err("%s: this kernel has no %s", label(what), d->name);
			return cr_perr("%s: cannot read %s", label(what), d->name);
		}
		if ((d->hi == 1 ? !!now : now) == want)
			continue;
		if (setsockopt(sk, lvl, d->opt, &want, sizeof(want)))
			return cr_perr("%s: cannot set %s to %d", label(what), d->name, want);
	}
	return 0;
}

/* A buffer size as read (the kernel doubles what is set): set half, forced past
 * the system's limit when that is allowed. */
static int restore_buf(int sk, int opt, int force, uint32_t want, bool limited,
		       const char *what)
{
	int now = 0, half = want / 2;
	socklen_t l = sizeof(now);

	if (getsockopt(sk, SOL_SOCKET, opt, &now, &l))
		return cr_perr("%s: cannot read a buffer size", label(what));
	if ((uint32_t)now == want)
		return 0;
	if (setsockopt(sk, SOL_SOCKET, opt, &half, sizeof(half)))
		return cr_perr("%s: cannot set a buffer of %u bytes", label(what), want);
	l = sizeof(now);
	if (!getsockopt(sk, SOL_SOCKET, opt, &now, &l) && (uint32_t)now == want)
		return 0;
	if (limited || setsockopt(sk, SOL_SOCKET, force, &half, sizeof(half)))
		return cr_err("%s: a buffer of %u bytes is more than this system allows",
			      label(what), want);
	return 0;
}

static int set_timeo(int sk, int opt, uint64_t us, const char *what)
{
	struct timeval tv = { (time_t)(us / 1000000), (suseconds_t)(us % 1000000) };

	if (setsockopt(sk, SOL_SOCKET, opt, &tv, sizeof(tv)))
		return cr_perr("%s: cannot set a socket timeout", label(what));
	return 0;
}

static int restore_special(int sk, const SkOpts *o, bool limited, const char *what)
{
	struct linger lg = { o->linger_on, o->linger_secs };

	if (o->has_rcvbuf && restore_buf(sk, SO_RCVBUF, SO_RCVBUFFORCE, o->rcvbuf, limited, what))
		return -1;
	if (o->has_sndbuf && restore_buf(sk, SO_SNDBUF, SO_SNDBUFFORCE, o->sndbuf, limited, what))
		return -1;
	if (o->has_rcvtimeo_us && o->rcvtimeo_us && set_timeo(sk, SO_RCVTIMEO, o->rcvtimeo_us, what))
		return -1;
	if (o->has_sndtimeo_us && o->sndtimeo_us && set_timeo(sk, SO_SNDTIMEO, o->sndtimeo_us, what))
		return -1;
	if (o->has_linger_on && o->linger_on &&
	    setsockopt(sk, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)))
		return cr_perr("%s: cannot set SO_LINGER", label(what));
	if (!o->bindtodevice || !o->bindtodevice[0])
		return 0;
	if (!if_nametoindex(o->bindtodevice))
		return cr_err("%s is bound to device %s (SO_BINDTODEVICE), which this host "
			      "does not have", label(what), o->bindtodevice);
	if (setsockopt(sk, SOL_SOCKET, SO_BINDTODEVICE, o->bindtodevice,
		       strlen(o->bindtodevice)))
		return cr_perr("%s: cannot bind to device %s", label(what), o->bindtodevice);
	return 0;
}

static int restore_filter(int sk, const SkOpts *o, const char *what)
{
	struct sock_fprog prog = {
		.len = o->filter.len / sizeof(struct sock_filter),
		.filter = (struct sock_filter *)o->filter.data,
	};
	int one = 1;

	if (!o->has_filter)
		return 0;
	if (setsockopt(sk, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
		return cr_perr("%s: the kernel refuses its socket filter", label(what));
	if (o->has_lock_filter && o->lock_filter &&
	    setsockopt(sk, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof(one)))
		return cr_perr("%s: cannot lock its socket filter", label(what));
	return 0;
}

int sk_opts_restore_for(int sk, int family, const SkOpts *o, bool limited, const char *what)
{
	if (!o)
		return 0;
	if (sk_opts_check(o) || sk_opts_check_rights(o, limited, what))
		return -1;
	if (sk_int_opts_restore(sk, family, int_opts, CR_ARRAY_SIZE(int_opts), o, what) || restore_special(sk, o, limited, what))
		return -1;
	return restore_filter(sk, o, what);
}

int sk_opts_restore(int sk, int family, const SkOpts *o)
{
	return sk_opts_restore_for(sk, family, o, false, NULL);
}

/* ---- inet addresses ---- */

int inet_addr_from_image(uint32_t family, const ProtobufCBinaryData *addr, uint32_t port,
			 const char *what, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (port > 65535)
		return cr_err("image: %s has port %u", label(what), port);
	if (family == AF_INET && addr->len == 4) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;

		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		memcpy(&s->sin_addr, addr->data, 4);
		*len = sizeof(*s);
		return 0;
	}
	if (family == AF_INET6 && addr->len == 16) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

		s->sin6_family = AF_INET6;
		s->sin6_port = htons(port);
		memcpy(&s->sin6_addr, addr->data, 16);
		*len = sizeof(*s);
		return 0;
	}
	return cr_err("image: %s has an address of family %u and %zu bytes", label(what),
		      family, addr->len);
}

void inet_addr_str(int family, const void *addr, uint32_t port, char *out, size_t size)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if ((family != AF_INET && family != AF_INET6) || !inet_ntop(family, addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(out, size, family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
}

bool inet_addr_is_any(int family, const void *addr)
{
	static const uint8_t zero[16];

	return !memcmp(addr, zero, family == AF_INET6 ? 16 : 4);
}

int inet_addr_local_check(int family, const void *addr, uint32_t port, const char *what)
{
	struct sockaddr_storage ss = { 0 };
	ProtobufCBinaryData a = { family == AF_INET6 ? 16 : 4, (uint8_t *)addr };
	char str[80];
	socklen_t len;
	int sk, rc = 0;

	if (inet_addr_is_any(family, addr))
		return 0;
	if (inet_addr_from_image(family, &a, 0, what, &ss, &len))
		return -1;
	sk = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return cr_perr("cannot make a socket to test an address");
	if (bind(sk, (struct sockaddr *)&ss, len)) {
		inet_addr_str(family, addr, port, str, sizeof(str));
		if (errno == EADDRNOTAVAIL)
			rc = cr_err("%s is bound to %s, an address this host does not have",
				    label(what), str);
		else
			rc = cr_perr("%s is bound to %s, which cannot be tested", label(what),
				     str);
	}
	close(sk);
	return rc;
}
