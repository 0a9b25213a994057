/* Fuzz target: proc_parse_smaps on arbitrary /proc/PID/smaps (and maps) text, and
 * the consumers of its result: VMA classification and the vDSO layout. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "proc.h"
#include "vdso.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proc_vmas v;
	struct vdso_layout l;

	cr_err_reset();
	if (proc_parse_smaps((const char *)data, size, &v))
		return 0;
	for (size_t i = 0; i < v.nr; i++) {
		const char *why;
		VmaKind kind;

		if (v.v[i].start >= v.v[i].end || (i && v.v[i].start < v.v[i - 1].end))
			__builtin_trap();	/* the parser promised sorted, non-empty VMAs */
		mem_classify(&v.v[i], &kind, &why);
	}
	if (vdso_find_layout(&v, &l)) {
		uint64_t s, e;

		vdso_block(&l, &s, &e);
	}
	proc_vmas_free(&v);
	return 0;
}
