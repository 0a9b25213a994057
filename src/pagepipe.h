/* Page data from a stopped task to the page file through a pipe (vmsplice in the
 * task, splice in cryo): one copy instead of two. */
#ifndef CRYO_PAGEPIPE_H
#define CRYO_PAGEPIPE_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "ptrace.h"

struct page_range {
	uint64_t start, len;
};

/* Append the contents of `ranges` (readable memory of the task under remote control
 * `r`) to w, in order. 0 or -1 (recorded). */
int pagepipe_dump(struct remote *r, struct raw_writer *w, const struct page_range *ranges,
		  size_t nr);

#endif
