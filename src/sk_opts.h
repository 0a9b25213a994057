/* Socket options every kind of network socket shares (SkOpts: SOL_SOCKET, IP and IPv6
 * levels) and the inet address helpers of the socket kinds (sk_opts.c). */
#ifndef CRYO_SK_OPTS_H
#define CRYO_SK_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cryo.pb-c.h"

/* Every option of sk `family`'s levels into a new *out (sk: cryo's copy of the fd).
 * `what` names the socket in errors ("process 12: fd 4 (TCP socket 127.0.0.1:80)");
 * NULL: "socket". A classic BPF filter is kept; an eBPF one is refused. */
int sk_opts_dump(int sk, int family, SkOpts **out);
int sk_opts_dump_for(int sk, int family, const char *what, SkOpts **out);
/* Image sanity: every value within what the kernel takes. */
int sk_opts_check(const SkOpts *o);
/* `limited` (an image of another user, trust.h): options needing CAP_NET_ADMIN or
 * CAP_NET_RAW (SO_MARK, SO_PRIORITY above 6, SO_BINDTODEVICE, IP_TRANSPARENT,
 * SO_BUSY_POLL) are refused, buffers are never forced past the system's limits. */
int sk_opts_check_rights(const SkOpts *o, bool limited, const char *what);
/* Set on a new socket (before bind: v6only, freebind, bindtodevice act on bind)
 * every option whose value it does not have yet. */
int sk_opts_restore(int sk, int family, const SkOpts *o);
int sk_opts_restore_for(int sk, int family, const SkOpts *o, bool limited, const char *what);
void sk_opts_free(SkOpts *o);

/* ---- tables of int options, for the kinds' own levels (IPPROTO_TCP, ...) ---- */

/* One option that is a plain int (or boolean, hi 1) in getsockopt and a 32-bit
 * optional field (has_F, F) of a message in the image. */
struct sk_int_opt {
	const char *name;
	int level, opt;
	size_t has_off, val_off;
	int64_t lo, hi;			/* what the image may hold (hi UINT32_MAX: uint32) */
};

#define SK_INT_OPT(Msg, n, l, o, f, a, b) \
	{ n, l, o, offsetof(Msg, has_##f), offsetof(Msg, f), a, b }

/* An option the kernel gives a socket of this type but never lets be set on it, so
 * not one the program chose: left out of images, skipped at restore. A TCP
 * connection accepted over IPv4 has its SYN's TTL as IP_MULTICAST_TTL, which cannot
 * be set on a stream socket (EINVAL). */
bool sk_opt_kernel_only(int level, int opt, int type);

/* Read each of t[n] into msg (an option the socket does not have stays absent);
 * IPPROTO_IP options only for inet families, IPPROTO_IPV6 only for AF_INET6. */
int sk_int_opts_dump(int sk, int family, const struct sk_int_opt *t, size_t n, void *msg,
		     const char *what);
int sk_int_opts_check(const void *msg, const struct sk_int_opt *t, size_t n);
/* Set each one present whose value the socket does not have yet. */
int sk_int_opts_restore(int sk, int family, const struct sk_int_opt *t, size_t n,
			const void *msg, const char *what);

/* ---- inet addresses (pure, unit-tested) ---- */

/* An image's address (4 or 16 bytes, network order) and port as a sockaddr: -1 with
 * an error naming `what` if the family, length or port is not sound. */
int inet_addr_from_image(uint32_t family, const ProtobufCBinaryData *addr, uint32_t port,
			 const char *what, struct sockaddr_storage *ss, socklen_t *len);
/* "127.0.0.1:80", "[::1]:80", "0.0.0.0:80", "[::ffff:127.0.0.1]:80". */
void inet_addr_str(int family, const void *addr, uint32_t port, char *out, size_t size);
/* Is it the wildcard address (0.0.0.0, ::)? */
bool inet_addr_is_any(int family, const void *addr);

/* Does this host have the address (a bind test, port 0, on a throwaway socket)?
 * 0 if it does (or is a wildcard), -1 with "WHAT is bound to A:P, an address this host
 * does not have". */
int inet_addr_local_check(int family, const void *addr, uint32_t port, const char *what);

#endif
