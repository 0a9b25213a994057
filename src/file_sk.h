/* The pure parts of the datagram-like socket kinds (file_netlink.c, file_packet.c,
 * file_raw.c, file_udp.c): their sock_diag answers and the checks of their image
 * entries, unit-tested without sockets of their own. */
#ifndef CRYO_FILE_SK_H
#define CRYO_FILE_SK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cryo.pb-c.h"

struct fd_probe;

/* One netlink socket as NETLINK_DIAG describes it. */
struct nl_diag {
	uint32_t ino, portid, dst_portid, dst_group;
	uint8_t protocol, type;
	bool has_flags;
	uint32_t flags;			/* NDIAG_FLAG_* */
};
int netlink_diag_parse(const void *buf, size_t len, struct nl_diag *out);
/* "route", "sock_diag", ... or "protocol N" (into buf). */
const char *netlink_proto_name(unsigned protocol, char *buf, size_t len);
int netlink_check_entry(const FileEntry *e);

/* One packet socket as PACKET_DIAG describes it. */
#define PACKET_MC_MAX 64
struct pk_diag {
	uint32_t ino;
	uint8_t type;
	uint16_t protocol;		/* host order */
	bool has_info;
	uint32_t ifindex, version, reserve, copy_thresh, tstamp, flags;	/* PDI_* */
	size_t nr_mc;
	struct pk_mc {
		uint32_t ifindex, count;
		uint16_t type, alen;
		uint8_t addr[32];
	} mc[PACKET_MC_MAX];
	bool rx_ring, tx_ring, fanout;
	uint32_t fanout_val;
};
int packet_diag_parse(const void *buf, size_t len, struct pk_diag *out);
int packet_check_entry(const FileEntry *e);

int raw_check_entry(const FileEntry *e);
struct sk_inet_addr;
/* The remote address of socket `ino` in /proc/net/raw (raw6, icmp, icmp6) text: 0,
 * or 1 if it is not there (damaged lines are skipped). */
int raw_proc_peer(const char *text, int family, uint64_t ino, struct sk_inet_addr *peer);

/* One UDP socket as udp_diag describes it. */
struct udp_diag {
	uint64_t ino;
	uint16_t sport;			/* host order */
	uint32_t rqueue, wqueue;
	bool has_shutdown;
	uint8_t shutdown;
};
int udp_diag_parse(const void *buf, size_t len, struct udp_diag *out);
/* A multicast group joined on an interface, as /proc/net/igmp or igmp6 lists it. */
struct udp_group {
	uint32_t ifindex;
	size_t len;			/* 4 or 16 */
	uint8_t addr[16];
};
/* The groups of /proc/net/igmp (AF_INET) or igmp6 text, at most max: how many. */
size_t udp_igmp_groups(const char *text, int family, struct udp_group *out, size_t max);
/* A UDP or UDP-lite datagram as a whole IP packet, checksummed (IP_HDRINCL). */
struct udp_pkt {
	int family, protocol;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	const uint8_t *data;
	size_t len;
};
/* Its length in out, or 0 if it does not fit. */
size_t udp_make_packet(const struct udp_pkt *p, uint8_t *out, size_t size);
int udp_check_entry(const FileEntry *e);

/* Shared by these kinds (file_netlink.c), not pure. */
/* A sock_diag dump request: cb gets each answer's payload until one returns non-zero. */
int sk_diag_dump(const void *req, size_t len,
		 int (*cb)(const void *msg, size_t len, void *arg), void *arg);
/* "process P: fd N is a WHAT: WHY" */
int sk_refuse(const struct fd_probe *pr, const char *what, const char *why);
/* The last checks of a dump (fd: cryo's copy): refused if a process outside the tree
 * holds the socket too (the restored one would not be theirs), or if ITEMS are
 * queued on it ("ITEMS are queued on it, not read yet (...); WHY"; NULL: not asked). */
int sk_dump_last(const struct fd_probe *pr, int fd, const char *what, const char *items,
		 const char *why);
int sk_int(int fd, int level, int opt, int *v);
int sk_set_int(int fd, int level, int opt, int v);
/* A socket made for restore, ready: its O_NONBLOCK as in the image's open flags; fd,
 * or -1 (and it is closed). */
int sk_open_done(int fd, uint32_t flags);
/* SO_DOMAIN, SO_TYPE, SO_PROTOCOL. */
int sk_ids(int fd, uint32_t *family, uint32_t *type, uint32_t *protocol);

/* An inet socket's own or peer address (file_raw.c). */
struct sk_inet_addr {
	bool set;			/* not the wildcard, or a port */
	size_t len;			/* 4 or 16 */
	uint8_t addr[16];
	uint32_t port, scope_id;
};
/* IP_FREEBIND or IP_TRANSPARENT (either family): it may be bound to an address this
 * host does not have. */
bool sk_binds_anywhere(const SkOpts *o);
/* getsockname (or getpeername: not connected gives set = false): -1 on error. */
int sk_inet_name(int fd, bool peer, int family, struct sk_inet_addr *out);
/* Its bytes into an image field. */
int sk_inet_keep(const struct sk_inet_addr *a, ProtobufCBinaryData *b, protobuf_c_boolean *has);
/* bind (or connect) to an image's address (none: the wildcard) and port; a bind to an
 * address in use fails naming it. */
int sk_inet_bind(int fd, uint32_t family, const ProtobufCBinaryData *addr, uint32_t port,
		 bool peer, const char *what);
/* Bytes queued for reading (SO_MEMINFO's receive allocation), -1 if unknown. */
long sk_rqueue(int fd);

#endif
