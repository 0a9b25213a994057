/* The pure parts of file_inet.c (TCP sockets), unit-tested: image checks and the
 * decisions dump makes from a socket's state. */
#ifndef CRYO_FILE_INET_H
#define CRYO_FILE_INET_H

#include <stdbool.h>
#include <stdint.h>

#include "cryo.pb-c.h"

/* Is the FILE_TCP entry sound (family, state, addresses, ports, options)? */
int inet_check_entry(const FileEntry *e);
/* A congestion control name as the kernel could have it (TCP_CA_NAME_MAX). */
bool inet_cc_name_ok(const char *name);
/* Is `name` in a list of names apart by spaces (tcp_allowed_congestion_control)? */
bool inet_cc_in_list(const char *list, const char *name);

#endif
