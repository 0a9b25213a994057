/* The page server (cryo page-server) and the dump's connection to it. */
#ifndef CRYO_PAGE_SERVER_H
#define CRYO_PAGE_SERVER_H

#include "stream.h"

/* dump --page-server: connect to address:port and start the stream there. */
int page_server_connect(struct stream_out *out, const char *address, unsigned port);
/* A name the page server accepts: a raw file's (pages-N.img, shmem-N.img, ghost-N.img,
 * sysvshm-N.img), never metadata or the inventory (pure). */
bool page_server_name_ok(const char *name);

#endif
