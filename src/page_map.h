/* A page file's checked chunks read in place, through a read-only mapping of the
 * whole file (the background and eager fills: one copy less than pread). */
#ifndef CRYO_PAGE_MAP_H
#define CRYO_PAGE_MAP_H

#include <sys/types.h>

#include "task.h"

/* Map src's file (src->map); nothing to do if it is mapped or empty. */
int page_map_open(struct page_src *src);
void page_map_close(struct page_src *src);
/* Chunk k of src, in place and checked (*data): its length, or -1 if it is damaged,
 * cut short or unreadable. A file cut short while this reads it is such an error,
 * not a SIGBUS (the read runs under a guard of its thread's). */
ssize_t page_map_chunk(const struct page_src *src, uint64_t k, const uint8_t **data);

#endif
