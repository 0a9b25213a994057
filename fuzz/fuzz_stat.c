/* Fuzz target: proc_parse_stat on arbitrary /proc/PID/stat text. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "proc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proc_stat st;

	cr_err_reset();
	if (proc_parse_stat((const char *)data, size, &st))
		return 0;
	/* A parsed comm is always terminated and ids are positive. */
	if (!memchr(st.comm, 0, sizeof(st.comm)) || st.pid <= 0 || st.ppid < 0 ||
	    st.pgid < 0 || st.sid < 0)
		__builtin_trap();
	return 0;
}
