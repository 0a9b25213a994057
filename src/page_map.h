/* Page files used in place through a mapping of the whole file: the fills check
 * and copy chunks from one (one copy less than pread), the dump writes into one. */
#ifndef CRYO_PAGE_MAP_H
#define CRYO_PAGE_MAP_H

#include <sys/types.h>

#include "task.h"

/* The length of chunk k of src (the last may be short), or -1 if the file has no
 * such chunk or its chunks are not of IMG_CHUNK_SIZE. */
ssize_t page_chunk_len(const struct page_src *src, uint64_t k);
/* Map src's file (src->map); nothing to do if it is mapped or empty. */
int page_map_open(struct page_src *src);
void page_map_close(struct page_src *src);
/* Chunk k of src, in place and checked (*data): its length, or -1 if it is damaged,
 * cut short or unreadable. A file cut short while this reads it is such an error,
 * not a SIGBUS (the read runs under a guard of its thread's). */
ssize_t page_map_chunk(const struct page_src *src, uint64_t k, const uint8_t **data);
/* The crc32c of len mapped file bytes at `at` (*crc): 0, or -1 if reading them raised
 * SIGBUS (the file cut short meanwhile). */
int page_map_crc(const uint8_t *at, size_t len, uint32_t *crc);

#endif
