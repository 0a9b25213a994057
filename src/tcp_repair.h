/* The state of a TCP connection, dumped and made again through the kernel's repair
 * mode (TCP_REPAIR): sequence numbers, queues byte for byte, negotiated options,
 * windows, timestamps and the FINs of the closing states (tcp_repair.c). */
#ifndef CRYO_TCP_REPAIR_H
#define CRYO_TCP_REPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <linux/inet_diag.h>

#include "cryo.pb-c.h"

/* The kernel's TCP states (include/net/tcp_states.h). */
enum {
	TCPS_ESTABLISHED = 1, TCPS_SYN_SENT, TCPS_SYN_RECV, TCPS_FIN_WAIT1, TCPS_FIN_WAIT2,
	TCPS_TIME_WAIT, TCPS_CLOSE, TCPS_CLOSE_WAIT, TCPS_LAST_ACK, TCPS_LISTEN, TCPS_CLOSING,
};

/* The most bytes one queue of a connection may hold in an image. */
#define TCP_QUEUE_MAX (64u << 20)

/* SO_MARK of the segments cryo itself sends to a connection it restores (the peer's
 * FIN or ACK the kernel has no call for): the network lock lets them through. */
#define TCP_REPAIR_MARK 0xC114

/* A state with a connection tcp_conn_dump can keep (not LISTEN, CLOSE, TIME_WAIT,
 * SYN_RECV). */
bool tcp_state_connected(unsigned state);
const char *tcp_state_name(unsigned state);

/* What a state says of the FINs: ours in the sequence space (sent), acknowledged,
 * the peer's received. Pure. */
struct tcp_fins {
	bool sent, acked, received;
};
struct tcp_fins tcp_state_fins(unsigned state);

/* Dump: sk is cryo's copy of the socket (pidfd_getfd), d its inet_diag answer. The
 * socket is handed to the network lock's guardian, put in repair mode and read; it
 * stays in repair mode until tcp_conn_dump_finish (a killed process's socket then
 * closes silently). */
int tcp_conn_dump(int sk, const struct inet_diag_msg *d, TcpConn **out);
/* After the dump: killed, cryo's copies go (their sockets still in repair mode, so
 * they close without a segment); otherwise repair mode ends first, before the
 * processes run again. */
void tcp_conn_dump_finish(bool killed);
void tcp_conn_free(TcpConn *c);

/* Restore: is the image's connection sound (every field bounded)? */
int tcp_conn_check(const TcpConn *c);
/* sk: a new TCP socket of the family with its options set, not bound. It is put in
 * repair mode, bound to `src`, connected to `dst` (no SYN), given its sequence
 * numbers, options, queues, windows, timestamp and FINs, and left in repair mode. */
int tcp_conn_restore(int sk, const TcpConn *c, const struct sockaddr *src,
		     const struct sockaddr *dst, socklen_t alen);
/* Just before the restored processes run: ok, repair mode off and each connection's
 * unsent bytes queued as a normal send; not ok, cryo's copies close silently. */
int tcp_conn_restore_finish(bool ok);

struct nlmsghdr;
/* One sock_diag request about a connection, by its two ends (src local, dst the
 * peer's): type SOCK_DIAG_BY_FAMILY (cb gets the answer) or SOCK_DESTROY. 0, 1 if
 * there is no such socket, -1 on error (recorded). */
int tcp_diag_ends(int type, const struct sockaddr *src, const struct sockaddr *dst,
		  void (*cb)(const struct nlmsghdr *h, void *arg), void *arg);

/* The TCP checksum over an IPv4 or IPv6 pseudo-header (addresses of alen bytes:
 * 4 or 16) and the segment, as it goes in the header. Pure. */
uint16_t tcp_checksum(const void *saddr, const void *daddr, size_t alen, const void *seg,
		      size_t len);

#endif
