/* Without root (userns.c): the ownership rules for dump and restore by a user who is
 * not root, and the capabilities cryo keeps. */
#ifndef CRYO_USERNS_H
#define CRYO_USERNS_H

#include <stdbool.h>
#include <sys/types.h>

#include "cryo.pb-c.h"
#include "proc.h"

#define USERNS_GROUPS_MAX 1024

struct userns_ids {
	bool root;			/* real uid 0: none of these rules apply */
	uid_t uid, euid;		/* real and effective */
	gid_t gid, egid;
	gid_t groups[USERNS_GROUPS_MAX];
	int nr_groups;
};

int userns_caller(struct userns_ids *me);
bool userns_is_root(void);
/* Why a caller who is not root may not dump a task with this status whose /proc
 * directory belongs to proc_owner (the kernel's PTRACE_MODE_ATTACH_REALCREDS rule for
 * a caller without capabilities), or NULL if it may. Pure. */
const char *userns_dump_refusal(const struct userns_ids *me, const struct proc_status *st,
				uid_t proc_owner);
/* The same for thread tid of process pid, read from /proc: 0, or -1 with the error. */
int userns_may_dump(const struct userns_ids *me, pid_t pid, pid_t tid);
/* Why an image's credentials are more than a caller who is not root has, or NULL.
 * Pure. */
const char *userns_creds_refusal(const struct userns_ids *me, const Creds *c);
/* The same for process pid of an image, against cryo's caller: 0 or -1 said. */
int userns_check_creds(uint32_t pid, const Creds *c);
bool userns_has_cap(int cap);
/* A caller who is not root and has no CAP_CHECKPOINT_RESTORE (or asks for --pidns,
 * which needs CAP_SYS_ADMIN) restores into a user namespace of its own (uid and gid
 * mapped to themselves) and a PID namespace it owns, where it holds what restore
 * needs. */
bool userns_restore_needs_ns(bool pidns);
/* Note the caller's ids (its groups show as the overflow gid once inside) and give
 * pidns_enter the flags and the setup that writes the maps. */
int userns_prepare(unsigned long *flags, int (**setup)(pid_t init, void *arg), void **arg);
/* cryo may open /proc/PID/map_files: CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN (in the
 * first user namespace: not inside one cryo made). */
bool userns_map_files_open(void);
/* Not root: of what cryo's file gave keep CAP_CHECKPOINT_RESTORE and CAP_SYS_PTRACE
 * only, the latter in effect at restore only. */
int userns_drop_caps(bool restore);
/* Dump: CAP_SYS_PTRACE in effect (on) for a child of cryo's, or not. */
int userns_ptrace_own(bool on);

#endif
