/* Fuzz target: unix_diag_parse on arbitrary sock_diag answers (struct unix_diag_msg
 * and its attributes), as the kernel sends them for one Unix socket. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "file_unix.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct unix_diag d;
	/* A copy of its own, aligned as the kernel's messages are. */
	uint32_t *buf = malloc(size + 4);

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	cr_err_reset();
	if (!unix_diag_parse(buf, size, &d) &&
	    (d.name_len > sizeof(d.name) || d.nr_icons > UNIX_ICONS_MAX))
		__builtin_trap();
	free(buf);
	return 0;
}
