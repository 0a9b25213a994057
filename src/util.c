/* Small helpers every part of cryo uses: growing an array, reading a number file. */
#include <stdio.h>
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

int read_int_file(const char *path, int dflt)
{
	FILE *f = fopen(path, "re");
	int v = dflt;

	if (f && fscanf(f, "%d", &v) != 1)
		v = dflt;
	if (f)
		fclose(f);
	return v;
}
