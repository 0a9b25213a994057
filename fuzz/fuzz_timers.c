/* Fuzz target: proc_parse_timers on arbitrary /proc/PID/timers text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "log.h"
#include "proc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proc_timer *t = NULL;
	size_t nr;

	cr_err_reset();
	if (proc_parse_timers((const char *)data, size, &t, &nr))
		return 0;
	for (size_t i = 0; i < nr; i++)
		if (t[i].id < 0 || t[i].signo < 0 || t[i].signo > 64 || t[i].notify_pid < 0)
			__builtin_trap();
	free(t);
	return 0;
}
