/* Small helpers every part of cryo uses: growing an array. */
#include <stdlib.h>

#include "log.h"
#include "util.h"

int cr_grow(void *arr, size_t *cap, size_t need, size_t elem, size_t first)
{
	void **p = arr;
	size_t n = *cap ? *cap : first;
	void *m;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	m = realloc(*p, n * elem);
	if (!m)
		return cr_err("out of memory");
	*p = m;
	*cap = n;
	return 0;
}
