/* Fuzz target: proc_parse_status on arbitrary /proc/PID/status text. */
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "proc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proc_status st;

	cr_err_reset();
	if (proc_parse_status((const char *)data, size, &st))
		return 0;
	if (st.nr_groups < 0 || st.nr_groups > CR_GROUPS_MAX || st.tgid <= 0 ||
	    st.umask > 0777 || st.umask < -1)
		__builtin_trap();
	return 0;
}
