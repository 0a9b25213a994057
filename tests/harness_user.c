/* The unprivileged pass (included by harness.c): --as-user NAME runs every test
 * program that does not need root, and the real interpreters, with the victims and
 * cryo as that user; with --caps cryo is a copy carrying file capabilities
 * (CAP_CHECKPOINT_RESTORE, CAP_SYS_PTRACE), without them a plain copy. The copies
 * live in the work directory, which the user can reach (a clone in a 'mktemp -d'
 * directory is mode 0700). Then the refusals: another user's process, and an image
 * of another user. */
#include <grp.h>
#include <pwd.h>
#include <sys/xattr.h>
#include <linux/capability.h>

static bool user_caps;		/* cryo has file capabilities */

/* How many dump cycles a program may have: one for a restore into a user namespace
 * of cryo's, whose process cryo cannot dump again from outside. */
static int user_repeats(int asked_for)
{
	return as_user && !user_caps ? 1 : asked_for;
}

static bool user_spawns_root;	/* the next spawns run as root (a victim of root's) */

static void become_user(void)
{
	if (!as_user || user_spawns_root)
		return;
	/* The log: a restored program opens it again, as the user. */
	if (fchown(1, user_uid, user_gid) ||
	    setgroups(0, NULL) || setresgid(user_gid, user_gid, user_gid) ||
	    setresuid(user_uid, user_uid, user_uid))
		_exit(125);
}

static void give_to_user(const char *path)
{
	if (as_user && chown(path, user_uid, user_gid))
		printf("    cannot give %s to uid %u: %s\n", path, user_uid, strerror(errno));
}

/* Without capabilities cryo restores into a user and PID namespace of its own: the
 * pidfile has the PID outside, its NSpid inside must be the recorded one. The
 * namespace's init, cryo's child (then adopted here), ends as the program does. */
static bool user_ns_restored(struct run *r, pid_t pid)
{
	pid_t init;

	if (!as_user || user_caps || check_pidns(pid, r->pid, &init))
		return false;
	r->pid = pid;
	r->waiter = init;
	return true;
}

/* What the test programs need root for, each with the reason. */
static const struct {
	const char *name, *why;
} user_skips[] = {
	{ "t_identity", "changes its uids and groups (setuid, setgroups)" },
	{ "t_identity_user", "becomes another user itself" },
	{ "t_raw", "raw sockets need CAP_NET_RAW" },
	{ "t_packet", "packet sockets need CAP_NET_RAW" },
	{ "t_tcp_conn", "TCP repair needs CAP_NET_ADMIN" },
	{ "t_tcp_stream", "TCP repair needs CAP_NET_ADMIN" },
	{ "t_tcp_stream_client", "TCP repair needs CAP_NET_ADMIN" },
	{ "t_memfd", "the test itself opens /proc/PID/map_files" },
	{ "t_netlink", "the test binds to multicast groups only root may join" },
	{ "t_sched", "the test sets a real-time policy (CAP_SYS_NICE)" },
	{ "t_unix", "the test sets SO_SNDBUFFORCE (CAP_NET_ADMIN)" },
	{ "t_notify", "cryo finds inotify watches by file handle (open_by_handle_at needs "
		      "CAP_DAC_READ_SEARCH)" },
	{ "t_sysv", "cryo restores System V objects with their ids under a lock in /run, "
		    "root's" },
	{ "t_ipc_harmless", "cryo restores System V objects with their ids under a lock in "
			    "/run, root's" },
	{ "t_predump", "a second pre-dump by a user does not recognise the first one's "
		       "userfaultfd tracker yet (not looked into)" },
	{ "t_udp", "cryo sends queued datagrams again through a raw socket (CAP_NET_RAW)" },
	{ "t_udp_queue", "cryo sends queued datagrams again through a raw socket "
			 "(CAP_NET_RAW)" },
};

/* And what a cryo without any capability refuses, or cannot restore in a user
 * namespace of its own. */
static const struct {
	const char *name, *why;
} nocaps_skips[] = {
	{ "t_cow", "its shared anonymous mapping is read through map_files "
		   "(CAP_CHECKPOINT_RESTORE); dump refuses it" },
	{ "t_ghost", "its deleted mapped file is read through map_files "
		     "(CAP_CHECKPOINT_RESTORE); dump refuses it" },
	{ "t_vma_kinds", "its shared anonymous mappings are read through map_files "
			 "(CAP_CHECKPOINT_RESTORE); dump refuses them" },
	{ "t_membarrier", "it sets a loginuid the user namespace does not map" },
};

static const char *user_skip(const char *name)
{
	for (size_t i = 0; i < sizeof(user_skips) / sizeof(user_skips[0]); i++)
		if (!strcmp(name, user_skips[i].name))
			return user_skips[i].why;
	for (size_t i = 0; !user_caps && i < sizeof(nocaps_skips) / sizeof(nocaps_skips[0]);
	     i++)
		if (!strcmp(name, nocaps_skips[i].name))
			return nocaps_skips[i].why;
	return NULL;
}

/* security.capability, revision 2: permitted and effective. */
static int set_file_caps(const char *path)
{
	struct vfs_cap_data cd;
	const uint64_t caps = (1ULL << CAP_SYS_PTRACE) | (1ULL << 40);	/* checkpoint_restore */

	memset(&cd, 0, sizeof(cd));
	cd.magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE;
	cd.data[0].permitted = (uint32_t)caps;
	cd.data[1].permitted = (uint32_t)(caps >> 32);
	if (setxattr(path, "security.capability", &cd, XATTR_CAPS_SZ_2, 0))
		return why("cannot set file capabilities on %s: %s", path, strerror(errno));
	return 0;
}

/* cryo and the test programs copied where the user can run them. */
static int user_copies(bool caps)
{
	static char bin[300], cryo[400];
	char **names = NULL;
	int n = list_dir(tests_dir, "t_", &names), rc = 0;

	snprintf(bin, sizeof(bin), "%s/bin", work);
	if (mkdir(bin, 0755) && errno != EEXIST)
		return why("mkdir %s: %s", bin, strerror(errno));
	snprintf(cryo, sizeof(cryo), "%s/cryo", bin);
	if (copy_file(cryo_bin, cryo, 0755) || (caps && set_file_caps(cryo)))
		rc = -1;
	for (int i = 0; i < n; i++) {
		char from[700], to[700];

		snprintf(from, sizeof(from), "%s/%s", tests_dir, names[i]);
		snprintf(to, sizeof(to), "%s/%s", bin, names[i]);
		if (!rc && copy_file(from, to, 0755))
			rc = -1;
		free(names[i]);
	}
	free(names);
	cryo_bin = cryo;
	tests_dir = bin;
	return rc;
}

/* The real interpreters' scripts, where the user can read them. */
static void user_real_copy(void)
{
	static char real[300];

	if (!real_dir)
		return;
	snprintf(real, sizeof(real), "%s/real", work);
	if (copy_dir(real_dir, real) || chmod(real, 0755)) {
		printf("    cannot copy %s for the user: %s\n", real_dir, reason);
		return;
	}
	real_dir = real;
}

/* ---- refusals ---- */

/* A process of root's, dumped by the user: refused, and left as it was. */
static int user_refused_other(struct run *r)
{
	char needle[160];
	int rc;

	user_spawns_root = true;
	rc = start_victim(r, "user-dump-root-process", NULL);
	user_spawns_root = false;
	if (rc)
		return -1;
	snprintf(needle, sizeof(needle), "process %d runs as another user; cryo run by uid %u "
		 "dumps only that user's own processes", r->pid, user_uid);
	return dump_victim(r, r->img, needle);
}

static int give_tree(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return chown(path, user_uid, user_gid);
}

/* An image of a process of root's, dumped by root, then handed to the user (as if the
 * user had written it): its files are the user's, but the process it describes would
 * run as root. Refused before anything is made. */
static int user_refused_image(struct run *r)
{
	char pid[16], needle[200];
	int rc;

	user_spawns_root = true;
	rc = start_victim(r, "user-restore-root-image", NULL);
	snprintf(pid, sizeof(pid), "%d", r->pid);
	if (!rc)
		rc = run_cryo(r->cryo_log, "dump", "-t", pid, "-D", r->img, "-R", NULL) ?
		     why("root's dump failed") : 0;
	user_spawns_root = false;
	if (rc)
		return -1;
	if (nftw(r->img, give_tree, 16, FTW_PHYS))
		return why("cannot give the image to uid %u", user_uid);
	snprintf(needle, sizeof(needle), "image: process %d would run as another user (uid 0, "
		 "gid 0); cryo run by uid %u restores only", r->pid, user_uid);
	rc = expect_error(r, run_cryo(r->cryo_log, "restore", "-D", r->img, "-d", NULL), needle);
	return rc ? rc : victim_unharmed(r);
}

/* Without capabilities: a shared anonymous mapping has no path to read it by; dump
 * names it and what it would need. */
static int user_refused_shared(struct run *r)
{
	if (start_prog_victim(r, "user-dump-shared-memory", "t_vma_kinds", NULL))
		return -1;
	return dump_victim(r, r->img, "which needs CAP_CHECKPOINT_RESTORE; dump it as root or "
			   "with cryo's file capabilities (make install-caps)");
}

static void run_user_refusals(void)
{
	static const struct bad_case cases[] = {
		{ "user-dump-root-process", user_refused_other },
		{ "user-restore-root-image", user_refused_image },
	};
	static const struct bad_case nocaps[] = {
		{ "user-dump-shared-memory", user_refused_shared },
	};

	run_cases(cases, CR_LEN(cases));
	if (!user_caps)
		run_cases(nocaps, CR_LEN(nocaps));
}

static int run_as_user(const char *user, bool caps)
{
	struct passwd *pw = getpwnam(user);

	if (!pw) {
		fprintf(stderr, "harness: --as-user %s: no such user\n", user);
		return 2;
	}
	user_uid = pw->pw_uid;
	user_gid = pw->pw_gid;
	if (!user_uid) {
		fprintf(stderr, "harness: --as-user %s: that is root\n", user);
		return 2;
	}
	if (chmod(work, 0755) || user_copies(caps)) {
		printf("FAIL setup: %s\n", reason);
		return 1;
	}
	user_real_copy();
	/* Every path is now in the work directory: the programs start there, a cwd the
	 * user can reach (the clone's may sit under a directory closed to others). */
	if (chdir(work)) {
		printf("FAIL setup: cannot enter %s: %s\n", work, strerror(errno));
		return 1;
	}
	as_user = true;
	user_caps = caps;
	/* A process restored into a user namespace cryo made cannot be dumped again
	 * from outside it: one cycle each (user_repeats). */
	if (!caps)
		modes_enabled = (1 << MODE_KILL) | (1 << MODE_LEAVE) | (1 << MODE_PIDNS);
	/* With capabilities, restore --pidns goes through a user namespace all the same,
	 * with its limits (no map_files, the loginuid): the pass without runs it. */
	else
		modes_enabled &= ~(1u << MODE_PIDNS);
	give_to_user(work);
	printf("as uid %u (%s), cryo %s file capabilities\n", user_uid, user,
	       caps ? "with" : "without");
	run_test_programs();
	run_real_programs();
	run_user_refusals();
	reap_orphans();
	if (!failed)
		remove_tree(work);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
