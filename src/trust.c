/* Who an image may make a process (docs/SECURITY.md): an image owned or writable by
 * another user is refused unless trusted, and then may not give more than that user's
 * rights; files are opened with the restored process's own identity. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "trust.h"
#include "userns.h"

#define MAX_GROUPS 65536

static int owner_of(int dirfd, const char *name, uid_t *uid, mode_t *mode)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return -1;
	*uid = st.st_uid;
	*mode = st.st_mode;
	return 0;
}

int trust_image(struct trust *t, const struct img_dir *d, bool trusted)
{
	uid_t me = geteuid(), uid;
	mode_t mode;

	memset(t, 0, sizeof(*t));
	/* A stream came from whoever runs the restore: it is theirs. */
	if (d->in_memory)
		return 0;
	if (owner_of(d->dirfd, ".", &uid, &mode))
		return cr_perr("cannot stat image directory %s", d->path);
	for (size_t i = 0; i <= d->nr_files; i++) {
		const char *name = i < d->nr_files ? d->files[i].name : "inventory.img";
		uid_t f;

		if (owner_of(d->dirfd, name, &f, &mode))
			return cr_perr("cannot stat %s/%s", d->path, name);
		if (mode & (S_IWGRP | S_IWOTH))
			return cr_err("%s/%s can be written by others (mode %04o); cryo does not "
				      "restore such an image", d->path, name, mode & 07777);
		if (f == me)
			continue;
		if (uid != me && uid != f)
			return cr_err("%s: its files belong to uids %u and %u; cryo restores an image "
				      "of one owner only", d->path, uid, f);
		uid = f;
	}
	if (uid == me)
		return 0;
	if (!trusted)
		return cr_err("image %s belongs to uid %u, who could have written anything into "
			      "it; restore it as that user, or with --trust-image to give the "
			      "process at most that user's rights", d->path, uid);
	t->limited = true;
	t->owner = uid;
	return 0;
}

static bool owner_has_gid(const struct trust *t, gid_t gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	gid_t *groups;
	int n = 64;
	bool found = false;

	if (getpwuid_r(t->owner, &pw, buf, sizeof(buf), &res) || !res)
		return false;
	if (pw.pw_gid == gid)
		return true;
	groups = malloc(n * sizeof(gid_t));
	if (groups && getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0) {
		free(groups);
		groups = n > 0 && n < MAX_GROUPS ? malloc(n * sizeof(gid_t)) : NULL;
		if (groups && getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
			n = 0;
	}
	for (int i = 0; groups && i < n && !found; i++)
		found = groups[i] == gid;
	free(groups);
	return found;
}

static int check_ids(const struct trust *t, uint32_t pid, const Creds *c)
{
	const uint32_t uids[4] = { c->uid, c->euid, c->suid, c->fsuid };
	const uint32_t gids[4] = { c->gid, c->egid, c->sgid, c->fsgid };

	for (int i = 0; i < 4; i++)
		if (uids[i] != t->owner)
			return cr_err("image: process %u would run as uid %u, but the image belongs "
				      "to uid %u (--trust-image gives at most the owner's rights)",
				      pid, uids[i], t->owner);
	if (c->cap_eff || c->cap_prm || c->cap_inh || c->cap_amb)
		return cr_err("image: process %u would hold capabilities, which uid %u, the "
			      "image's owner, does not give", pid, t->owner);
	for (int i = 0; i < 4; i++)
		if (!owner_has_gid(t, gids[i]))
			return cr_err("image: process %u would run with gid %u, which its owner uid "
				      "%u is not in", pid, gids[i], t->owner);
	for (size_t i = 0; i < c->n_groups; i++)
		if (!owner_has_gid(t, c->groups[i]))
			return cr_err("image: process %u would be in group %u, which its owner uid "
				      "%u is not in", pid, c->groups[i], t->owner);
	return 0;
}

int trust_check_creds(const struct trust *t, uint32_t pid, const Creds *c)
{
	if (!c)
		return cr_err("image: process %u has no credentials record", pid);
	return t->limited ? check_ids(t, pid, c) : 0;
}

int trust_become(struct trust *t, const Creds *c)
{
	gid_t *groups = NULL;

	t->saved_ngroups = getgroups(0, NULL);
	if (t->saved_ngroups < 0 || t->saved_ngroups > MAX_GROUPS)
		return cr_perr("cannot read cryo's groups");
	t->saved_groups = malloc((t->saved_ngroups + 1) * sizeof(gid_t));
	if (!t->saved_groups || getgroups(t->saved_ngroups, t->saved_groups) < 0)
		return cr_perr("cannot read cryo's groups");
	if (c->n_groups) {
		groups = malloc(c->n_groups * sizeof(gid_t));
		if (!groups)
			return cr_err("out of memory");
		for (size_t i = 0; i < c->n_groups; i++)
			groups[i] = c->groups[i];
	}
	/* Not root: the image's groups are the caller's own (userns_check_creds). */
	if (!userns_is_root()) {
		free(groups);
		groups = NULL;
	} else if (setgroups(c->n_groups, groups)) {
		free(groups);
		return cr_perr("cannot take the restored process's groups");
	}
	free(groups);
	t->switched = true;
	setfsgid(c->fsgid);
	setfsuid(c->fsuid);
	if ((uint32_t)setfsuid(-1) != c->fsuid || (uint32_t)setfsgid(-1) != c->fsgid)
		return cr_err("cannot take the restored process's uid %u and gid %u to open its "
			      "files", c->fsuid, c->fsgid);
	return 0;
}

void trust_unbecome(struct trust *t)
{
	if (!t->switched)
		return;
	setfsuid(geteuid());
	setfsgid(getegid());
	if (userns_is_root() && setgroups(t->saved_ngroups, t->saved_groups))
		pr_warn("cannot take cryo's own groups back: %s", strerror(errno));
	free(t->saved_groups);
	t->saved_groups = NULL;
	t->switched = false;
}
