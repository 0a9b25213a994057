/* The pure parts of file_unix.c, unit-tested: the sock_diag answer for one Unix
 * socket, names as printed, and what restore decides from the image. */
#ifndef CRYO_FILE_UNIX_H
#define CRYO_FILE_UNIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cryo.pb-c.h"

#define UNIX_ICONS_MAX 1024

/* One socket as UNIX_DIAG describes it. */
struct unix_diag {
	uint32_t ino;
	uint8_t type, state;
	bool has_name;
	size_t name_len;		/* bytes of sun_path (abstract: leading 0) */
	char name[108];
	bool has_vfs;
	uint32_t vfs_ino;
	uint32_t peer;			/* 0: none */
	size_t nr_icons;
	uint32_t icons[UNIX_ICONS_MAX];	/* queued connections (listeners) */
	bool has_rqlen;
	uint32_t rqueue, wqueue;	/* bytes queued; listeners: connections, backlog */
	bool has_shutdown;
	uint8_t shutdown;
};

/* Parse one SOCK_DIAG_BY_FAMILY payload (struct unix_diag_msg and its attributes). */
int unix_diag_parse(const void *buf, size_t len, struct unix_diag *out);
/* A name for messages: a path as is, an abstract name as "@..." (zeros as '@'), an
 * unnamed socket as "unnamed". */
void unix_name_str(const uint8_t *name, size_t len, char *out, size_t size);
/* Do these two sockets see the same credentials (a socketpair gives both the same)? */
bool unix_same_cred(const UnixCred *a, const UnixCred *b);
/* Is the image entry sound? Pure; one error line naming the file. */
int unix_check_entry(const FileEntry *e);

#endif
