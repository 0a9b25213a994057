/* Without root (docs/USAGE.md, "Without root"): whose processes a caller who is not
 * root may dump (the kernel's ptrace rule, checked by cryo itself since file
 * capabilities would let it trace anyone), what an image may make of them at restore
 * (the caller's own credentials, nothing more), the capabilities cryo keeps, and for
 * a caller with none the user namespace a restore goes into. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "log.h"
#include "proc.h"
#include "userns.h"

#ifndef CAP_CHECKPOINT_RESTORE
#define CAP_CHECKPOINT_RESTORE 40
#endif

int userns_caller(struct userns_ids *me)
{
	uid_t s;
	gid_t gs;
	int n;

	memset(me, 0, sizeof(*me));
	if (getresuid(&me->uid, &me->euid, &s) || getresgid(&me->gid, &me->egid, &gs))
		return cr_perr("cannot read cryo's own ids");
	n = getgroups(USERNS_GROUPS_MAX, me->groups);
	if (n < 0)
		return cr_perr("cannot read cryo's groups (at most %d)", USERNS_GROUPS_MAX);
	me->nr_groups = n;
	me->root = me->uid == 0;
	return 0;
}

bool userns_is_root(void)
{
	return getuid() == 0;
}

/* The caller as it was before cryo made a user namespace, once it did. */
static struct userns_ids outside;
static bool gone_inside;

static int write_proc(const char *name, const char *text)
{
	char path[64];
	int fd, n = strlen(text);

	snprintf(path, sizeof(path), "/proc/self/%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, n) != n) {
		int rc = cr_perr("cannot write '%.*s' to %s", (int)strcspn(text, "\n"), text,
				 path);

		if (fd >= 0)
			close(fd);
		return rc;
	}
	close(fd);
	return 0;
}

/* In cryo, just after unshare(CLONE_NEWUSER | CLONE_NEWPID): the new namespace maps
 * the caller's uid and gid to themselves (so the program sees its own); setgroups
 * must be denied first for an unprivileged gid_map. */
static int write_maps(pid_t init, void *arg)
{
	const struct userns_ids *me = arg;
	char map[64];

	(void)init;
	if (write_proc("setgroups", "deny"))
		return -1;
	snprintf(map, sizeof(map), "%u %u 1\n", me->uid, me->uid);
	if (write_proc("uid_map", map))
		return -1;
	snprintf(map, sizeof(map), "%u %u 1\n", me->gid, me->gid);
	return write_proc("gid_map", map);
}

static int drop_all_caps(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	return syscall(__NR_capset, &hdr, data) ? -1 : 0;
}

bool userns_restore_needs_ns(bool pidns)
{
	return !userns_is_root() && (pidns || !userns_has_cap(CAP_CHECKPOINT_RESTORE));
}

int userns_prepare(unsigned long *flags, int (**setup)(pid_t init, void *arg), void **arg)
{
	if (userns_caller(&outside))
		return -1;
	if (outside.euid != outside.uid || outside.egid != outside.gid)
		return cr_err("cryo runs with effective ids %u:%u, not its real %u:%u; a restore "
			      "into a user namespace of its own maps the real ones", outside.euid,
			      outside.egid, outside.uid, outside.gid);
	/* What its file gave is of no use there (the namespace gives all it needs), and
	 * with it cryo is not dumpable: its /proc/self maps would be root's. */
	if (drop_all_caps() || prctl(PR_SET_DUMPABLE, 1, 0, 0, 0))
		return cr_perr("cannot give up cryo's file capabilities");
	gone_inside = true;
	pr_info("restoring into a user and PID namespace of uid %u's", outside.uid);
	*flags |= CLONE_NEWUSER;
	*setup = write_maps;
	*arg = &outside;
	return 0;
}

static bool in_groups(const struct userns_ids *me, uint32_t gid)
{
	if (gid == me->gid)
		return true;
	for (int i = 0; i < me->nr_groups; i++)
		if (me->groups[i] == gid)
			return true;
	return false;
}

/* The kernel's PTRACE_MODE_ATTACH_REALCREDS rule for a caller without capabilities:
 * the target runs with the caller's real uid and gid in all three places, holds no
 * capability the caller lacks (none: the caller's own come from cryo's file), and is
 * dumpable (its /proc directory belongs to it, not to root). Pure. */
const char *userns_dump_refusal(const struct userns_ids *me, const struct proc_status *st,
				uid_t proc_owner)
{
	if (me->root)
		return NULL;
	for (int i = 0; i < 4; i++)
		if (st->uid[i] != me->uid)
			return "runs as another user";
	for (int i = 0; i < 4; i++)
		if (st->gid[i] != me->gid)
			return "runs with another group";
	if (st->cap_prm || st->cap_eff || st->cap_amb)
		return "holds capabilities";
	if (proc_owner != me->uid)
		return "is not dumpable (set-user-ID, or it called prctl(PR_SET_DUMPABLE, 0))";
	return NULL;
}

int userns_may_dump(const struct userns_ids *me, pid_t pid, pid_t tid)
{
	struct proc_status st;
	struct stat pst;
	const char *why;
	char path[64];
	size_t len;
	char *txt;

	if (me->root)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	txt = proc_read_file(path, &len);
	if (!txt)
		return -1;
	if (proc_parse_status(txt, len, &st)) {
		free(txt);
		return -1;
	}
	free(txt);
	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (stat(path, &pst))
		return cr_perr("cannot stat %s", path);
	why = userns_dump_refusal(me, &st, pst.st_uid);
	if (!why)
		return 0;
	if (tid != pid)
		return cr_err("thread %d of process %d %s; cryo run by uid %u dumps only that "
			      "user's own processes", tid, pid, why, me->uid);
	return cr_err("process %d %s; cryo run by uid %u dumps only that user's own "
		      "processes", pid, why, me->uid);
}

/* An image restored by a caller who is not root: every id is the caller's (its
 * groups too, which it cannot change), no capability, no securebit. Pure. */
const char *userns_creds_refusal(const struct userns_ids *me, const Creds *c)
{
	const uint32_t uids[4] = { c->uid, c->euid, c->suid, c->fsuid };
	const uint32_t gids[4] = { c->gid, c->egid, c->sgid, c->fsgid };

	if (me->root)
		return NULL;
	for (int i = 0; i < 4; i++)
		if (uids[i] != me->uid)
			return "would run as another user";
	for (int i = 0; i < 4; i++)
		if (gids[i] != me->gid)
			return "would run with another group";
	if (c->cap_eff || c->cap_prm || c->cap_inh || c->cap_amb)
		return "would hold capabilities";
	if (c->securebits)
		return "would have securebits set";
	if (c->n_groups != (size_t)me->nr_groups)
		return "would be in other supplementary groups";
	for (size_t i = 0; i < c->n_groups; i++)
		if (!in_groups(me, c->groups[i]))
			return "would be in other supplementary groups";
	return NULL;
}

int userns_check_creds(uint32_t pid, const Creds *c)
{
	struct userns_ids me;
	const char *why;

	if (userns_is_root())
		return 0;
	if (!c)
		return cr_err("image: process %u has no credentials record", pid);
	if (gone_inside)
		me = outside;
	else if (userns_caller(&me))
		return -1;
	why = userns_creds_refusal(&me, c);
	if (!why)
		return 0;
	return cr_err("image: process %u %s (uid %u, gid %u); cryo run by uid %u restores "
		      "only processes with that user's own credentials and groups", pid, why,
		      c->uid, c->gid, me.uid);
}

bool userns_has_cap(int cap)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(__NR_capget, &hdr, data))
		return false;
	return data[cap / 32].effective & (1u << (cap % 32));
}

bool userns_map_files_open(void)
{
	return userns_has_cap(CAP_CHECKPOINT_RESTORE) || userns_has_cap(CAP_SYS_ADMIN);
}

/* Keep of cryo's capabilities those in `permitted`, with `effective` of them in
 * effect. */
static int set_caps(uint64_t permitted, uint64_t effective)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(__NR_capget, &hdr, data))
		return cr_perr("capget");
	for (int w = 0; w < 2; w++) {
		data[w].permitted &= (uint32_t)(permitted >> (32 * w));
		data[w].effective = data[w].permitted & (uint32_t)(effective >> (32 * w));
		data[w].inheritable = 0;
	}
	if (syscall(__NR_capset, &hdr, data))
		return cr_perr("cannot drop capabilities");
	return 0;
}

#define CR_CAP (1ULL << CAP_CHECKPOINT_RESTORE)
#define PTRACE_CAP (1ULL << CAP_SYS_PTRACE)

/* With file capabilities keep CAP_CHECKPOINT_RESTORE (map_files, set_tid,
 * PR_SET_MM_MAP) and CAP_SYS_PTRACE, drop anything else the file gave. At restore
 * CAP_SYS_PTRACE is in effect: the tasks cryo forks are not dumpable. At dump it is
 * not, so that the kernel itself applies the ptrace rule at the seize too (a process
 * that became another user's since userns_may_dump is not even stopped); it is raised
 * only for cryo's own children (userns_ptrace_own). */
int userns_drop_caps(bool restore)
{
	if (userns_is_root())
		return 0;
	return set_caps(CR_CAP | PTRACE_CAP, restore ? CR_CAP | PTRACE_CAP : CR_CAP);
}

int userns_ptrace_own(bool on)
{
	if (userns_is_root())
		return 0;
	return set_caps(~0ULL, on ? CR_CAP | PTRACE_CAP : CR_CAP);
}
