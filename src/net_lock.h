/* The network lock (net_lock.c): while cryo holds a tree's TCP connections, no packet
 * of theirs moves, and a guardian process undoes the lock and repair mode if cryo dies.
 * docs/ARCHITECTURE.md ("The network lock") explains the order of the steps. */
#ifndef CRYO_NET_LOCK_H
#define CRYO_NET_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "task.h"

/* One connection: its local and remote ends, family 4 or 6 (an IPv6 socket's
 * v4-mapped connection is 4: the packets on the wire are IPv4), ports host order. */
struct net_tuple {
	int family;
	uint8_t local[16], remote[16];
	uint16_t lport, rport;
};

/* ---- dump ---- */

/* With ctx->tcp_established: finds every TCP connection of the tree (its sockets'
 * inodes, inet_diag), starts the guardian and has it drop their packets both ways
 * (nftables table inet cryo_lock_PID, owned by the guardian's netlink socket). Before
 * any fd is dumped; nothing if the tree has no connection. */
int net_lock_dump(struct dump_ctx *ctx);
/* sk (cryo's copy of a locked connection's socket) is about to enter TCP_REPAIR: the
 * guardian gets a copy first, to turn repair off if cryo dies. Refuses a socket
 * whose connection is not under the lock. */
int net_guard_repair(int sk);
/* Kill mode: the guardian is alive and holds the lock; netlock.img names the table
 * that will keep it after the tree is killed. Before the inventory. */
int net_lock_write_image(struct dump_ctx *ctx);
/* The end of the lock. !killed (leave-running or a failed dump; before the tree
 * runs again): repair off, lock gone. killed (after the tree was killed): the lock is
 * made persistent (the table of netlock.img) and the guardian exits, closing its
 * copies of the sockets still in repair mode (silently). Nothing without a lock. */
int net_lock_dump_finish(struct dump_ctx *ctx, bool killed);

/* ---- restore ---- */

/* netlock.img, if the image has one, read and checked into ctx->netlock. */
int net_lock_load(struct restore_ctx *ctx);
/* The restored tree runs (its connections out of repair): the lock table goes. A
 * failure to remove it is a warning naming the command that does. */
int net_unlock_restore(struct restore_ctx *ctx);
/* A failed restore keeps the lock (the restore can be tried again): say so. */
void net_lock_restore_failed(struct restore_ctx *ctx);
void net_lock_free(struct restore_ctx *ctx);

/* ---- cryo check ---- */

/* In a network namespace of its own: can cryo make an nftables table owned by its
 * netlink socket, and does the kernel drop it when that socket closes? 1 yes, 0 no. */
int net_lock_probe(void);
/* TCP_REPAIR on a socket, in a network namespace of its own. 1 yes, 0 no. */
int net_repair_probe(void);

/* ---- pure, unit-tested ---- */

/* One inet_diag_msg (and its attributes) of len bytes: its connection, inode and
 * state. -1 on a short or foreign message. */
int net_diag_parse(const void *msg, size_t len, struct net_tuple *t, uint32_t *ino,
		   uint8_t *state);
/* An IPv6 tuple whose both ends are v4-mapped becomes family 4. */
void net_tuple_normalize(struct net_tuple *t);
/* Is a TCP state (TCP_ESTABLISHED...) one of a connection the lock holds? */
bool net_state_locked(uint8_t state);
/* "127.0.0.1:4000 -> 127.0.0.1:39012", "[::1]:80 -> [::1]:5000". */
void net_tuple_str(const struct net_tuple *t, char *buf, size_t len);
/* The nft script making table inet `table` that drops, in input and output before
 * any other hook, every packet of the n connections; owner: flags owner. Malloc'd. */
char *net_lock_script(const char *table, bool owner, const struct net_tuple *t, size_t n);
/* cryo_keep_PID_TOKEN with PID the given one and TOKEN 16 lowercase hex digits? */
bool net_lock_name_ok(const char *name, pid_t pid);
/* A NetLock message from an image (root: the image's root PID): sound? */
int net_lock_check(const NetLock *nl, pid_t root);

#endif
