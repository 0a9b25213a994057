/* Small helpers every part of cryo uses: growing an array, reading a number file. */
#ifndef CRYO_UTIL_H
#define CRYO_UTIL_H

#include <stddef.h>

/* Make room for at least `need` elements of `elem` bytes in *arr (capacity *cap),
 * doubling from `first`. 0, or -1 with "out of memory" recorded. */
int cr_grow(void *arr, size_t *cap, size_t need, size_t elem, size_t first);
/* The number a one-number file holds (/proc/sys/...), or dflt if it cannot be read. */
int read_int_file(const char *path, int dflt);

#endif
