/* Fuzz target: vdso_parse_elf on arbitrary bytes (a vDSO image read from an untrusted
 * image directory). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "vdso.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vdso_syms s;

	cr_err_reset();
	if (vdso_parse_elf(data, size, &s))
		return 0;
	if (s.nr <= 0 || s.nr > VDSO_MAX_SYMS)
		__builtin_trap();
	for (int i = 0; i < s.nr; i++)
		if (!memchr(s.sym[i].name, 0, sizeof(s.sym[i].name)) || !s.sym[i].name[0] ||
		    s.sym[i].offset >= size || s.sym[i].size > size - s.sym[i].offset)
			__builtin_trap();
	return 0;
}
