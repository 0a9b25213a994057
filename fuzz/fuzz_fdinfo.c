/* Fuzz target: proc_parse_fdinfo on arbitrary /proc/PID/fdinfo/N text. */
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "proc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proc_fdinfo fi;

	cr_err_reset();
	if (proc_parse_fdinfo((const char *)data, size, &fi))
		return 0;
	if (fi.mnt_id < 0)
		__builtin_trap();
	return 0;
}
