/* ELF build-ids of mapped files: found at dump, compared at restore (buildid.c). */
#ifndef CRYO_BUILDID_H
#define CRYO_BUILDID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUILDID_MAX 64

struct buildid_note {
	uint64_t off, size;
};

/* The PT_NOTE segments of an ELF file whose first `len` bytes are `head`. Pure. */
int buildid_phdrs(const uint8_t *head, size_t len, struct buildid_note *notes, int max);
/* The GNU build-id among notes `p`: 1 with it in id, 0 if none. Pure. */
int buildid_from_notes(const uint8_t *p, size_t len, uint8_t *id, size_t *id_len);
/* The build-id of an open file: 1 if it has one. */
int buildid_of_fd(int fd, uint8_t *id, size_t *id_len);

#endif
