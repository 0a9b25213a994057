/* Fuzz target: lock_parse_line and lock_to_pb on each line of arbitrary /proc/locks
 * (or fdinfo "lock:") text. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "file_locks.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *end = s + size;

	while (s < end) {
		const char *nl = memchr(s, '\n', end - s);
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
		struct proc_lock l;
		FileLock fl;

		cr_err_reset();
		if (!lock_parse_line(s, n, &l)) {
			if (l.end < l.start || l.start > INT64_MAX || l.kind < LC_FLOCK ||
			    l.kind > LC_OTHER || l.pid < -1)
				__builtin_trap();
			cr_err_reset();
			if (!lock_to_pb(&l, &fl) && fl.len && fl.start + fl.len - 1 != l.end)
				__builtin_trap();
		}
		s += n + 1;
	}
	return 0;
}
