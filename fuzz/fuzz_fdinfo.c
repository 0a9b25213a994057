/* Fuzz target: the fdinfo parsers (plain, eventfd, timerfd, pidfd, inotify, epoll,
 * message queue status) and the mountinfo lookup on arbitrary /proc text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "log.h"
#include "proc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proc_inotify_watch *w;
	struct proc_epoll_target *t;
	char mnt[256];
	int pid;
	struct proc_timerfd tf;
	struct proc_mq_status mq;
	struct proc_fdinfo fi;
	uint64_t v;
	size_t nr;

	cr_err_reset();
	proc_fdinfo_number((const char *)data, size, "eventfd-count", 16, &v);
	cr_err_reset();
	if (!proc_parse_timerfd((const char *)data, size, &tf) &&
	    (tf.clockid < 0 || tf.clockid > 64 || tf.flags > 0xffff))
		__builtin_trap();
	cr_err_reset();
	if (!proc_parse_mq_status((const char *)data, size, &mq) && mq.qsize > INT64_MAX)
		__builtin_trap();
	cr_err_reset();
	if (!proc_parse_fdinfo((const char *)data, size, &fi) && fi.mnt_id < 0)
		__builtin_trap();
	cr_err_reset();
	if (!proc_parse_pidfd((const char *)data, size, &pid) && pid < -1)
		__builtin_trap();
	cr_err_reset();
	if (proc_mount_of_dev((const char *)data, size, 254, 0, mnt, sizeof(mnt)) == 1 &&
	    mnt[0] != '/')
		__builtin_trap();
	cr_err_reset();
	if (!proc_parse_inotify((const char *)data, size, &w, &nr)) {
		for (size_t i = 0; i < nr; i++)
			if (w[i].wd <= 0 || w[i].handle_bytes > sizeof(w[i].handle))
				__builtin_trap();
		free(w);
	}
	cr_err_reset();
	if (proc_parse_epoll((const char *)data, size, &t, &nr))
		return 0;
	for (size_t i = 0; i < nr; i++)
		if (t[i].tfd < 0)
			__builtin_trap();
	free(t);
	return 0;
}
