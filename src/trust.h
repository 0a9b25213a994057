/* The trust model of restore (trust.c, docs/SECURITY.md). */
#ifndef CRYO_TRUST_H
#define CRYO_TRUST_H

#include <stdbool.h>
#include <sys/types.h>

#include "cryo.pb-c.h"
#include "image.h"

struct trust {
	bool limited;			/* the image belongs to `owner`, trusted for that much */
	uid_t owner;
	bool switched;			/* cryo opens files as the restored process */
	gid_t *saved_groups;
	int saved_ngroups;
};

/* Check who owns the image directory and its files (after the inventory is read).
 * Owned by another user (or writable by others): refused, unless `trusted`, which
 * limits the restore to that user's rights. */
int trust_image(struct trust *t, const struct img_dir *d, bool trusted);
/* The credentials the image asks for must exist and stay within those rights. */
int trust_check_creds(const struct trust *t, uint32_t pid, const Creds *c);
/* Open files as the restored process would (fsuid, fsgid, groups), then go back. */
int trust_become(struct trust *t, const Creds *c);
void trust_unbecome(struct trust *t);

#endif
