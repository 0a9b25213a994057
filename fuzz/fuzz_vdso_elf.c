/* Fuzz target: vdso_parse_elf on arbitrary bytes (a vDSO image read from an untrusted
 * image directory), then vdso_make_proxy on the same bytes, against the running vDSO
 * and against a vDSO with no functions. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "vdso.h"

static void check_syms(const struct vdso_syms *s, size_t size)
{
	if (s->nr <= 0 || s->nr > VDSO_MAX_SYMS)
		__builtin_trap();
	for (int i = 0; i < s->nr; i++)
		if (!memchr(s->sym[i].name, 0, sizeof(s->sym[i].name)) || !s->sym[i].name[0] ||
		    s->sym[i].offset >= size || s->sym[i].size > size - s->sym[i].offset)
			__builtin_trap();
}

/* The proxy differs from the old bytes only at patched entries. */
static void proxy(const uint8_t *data, size_t size, const struct vdso_syms *cur,
		  uint64_t cur_base)
{
	struct vdso_patch p[VDSO_MAX_PATCHES];
	uint8_t *out = malloc(size);
	int nr;

	cr_err_reset();
	if (!vdso_make_proxy(data, size, 0x7f0000000000, cur, cur_base, out, p, &nr)) {
		if (nr < 0 || nr > VDSO_MAX_PATCHES)
			__builtin_trap();
		for (size_t i = 0; i < size; i++) {
			int ok = out[i] == data[i];

			for (int k = 0; k < nr && !ok; k++)
				ok = i >= p[k].offset && i < p[k].offset + 14;
			if (!ok)
				__builtin_trap();
		}
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vdso_runtime rt;
	static int init;
	struct vdso_syms s, none;

	if (!init) {
		vdso_runtime(&rt);
		init = 1;
	}
	cr_err_reset();
	if (vdso_parse_elf(data, size, &s))
		return 0;
	check_syms(&s, size);
	memset(&none, 0, sizeof(none));
	proxy(data, size, &none, 0);
	if (rt.present)
		proxy(data, size, &rt.syms, rt.layout.vdso_start);
	return 0;
}
