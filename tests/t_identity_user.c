/* A process that gave up root: distinct real, effective and saved uids and gids,
 * supplementary groups, lowered resource limits, dumpable 1 and a parent-death signal
 * (the last two are reset by any uid change, so restore must set them after the
 * credentials), all checked from inside after restore. */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tlib.h"

static const uid_t uids[3] = { 1001, 1002, 1003 };
static const gid_t gids[3] = { 2001, 2002, 2003 };
static const gid_t groups[2] = { 3001, 3002 };

static struct rlimit nofile_before;
static volatile int usr2;

static void on_usr2(int sig)
{
	(void)sig;
	usr2++;
}

static void drop_root(void)
{
	struct rlimit rl = { 300, 3000 };

	TL_CHECK(!setrlimit(RLIMIT_NOFILE, &rl), "setrlimit: %s", strerror(errno));
	TL_CHECK(!getrlimit(RLIMIT_NOFILE, &nofile_before), "getrlimit: %s", strerror(errno));
	TL_CHECK(!setgroups(2, groups), "setgroups: %s", strerror(errno));
	TL_CHECK(!setresgid(gids[0], gids[1], gids[2]), "setresgid: %s", strerror(errno));
	TL_CHECK(!setresuid(uids[0], uids[1], uids[2]), "setresuid: %s", strerror(errno));
}

/* Set after the uid change, which cleared both. */
static void set_after_drop(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR2, &sa, NULL);
	TL_CHECK(prctl(PR_GET_DUMPABLE) == 0, "setup: the uid change left dumpable set");
	TL_CHECK(!prctl(PR_SET_DUMPABLE, 1), "PR_SET_DUMPABLE: %s", strerror(errno));
	TL_CHECK(!prctl(PR_SET_PDEATHSIG, SIGUSR2), "PR_SET_PDEATHSIG: %s", strerror(errno));
}

static void check_ids(void)
{
	uid_t r, e, s;
	gid_t rg, eg, sg, g[8];
	int n;

	TL_CHECK(!getresuid(&r, &e, &s) && r == uids[0] && e == uids[1] && s == uids[2],
		 "uids are %u/%u/%u, expected %u/%u/%u", r, e, s, uids[0], uids[1], uids[2]);
	TL_CHECK(!getresgid(&rg, &eg, &sg) && rg == gids[0] && eg == gids[1] && sg == gids[2],
		 "gids are %u/%u/%u, expected %u/%u/%u", rg, eg, sg, gids[0], gids[1], gids[2]);
	TL_CHECK(setfsuid(-1) == (int)uids[1], "fsuid is %d", setfsuid(-1));
	TL_CHECK(setfsgid(-1) == (int)gids[1], "fsgid is %d", setfsgid(-1));
	n = getgroups(8, g);
	TL_CHECK(n == 2 && g[0] == groups[0] && g[1] == groups[1],
		 "supplementary groups: %d of them, first %u", n, n > 0 ? g[0] : 0);
}

static void check_settings(void)
{
	struct rlimit rl;
	int sig = 0;

	TL_CHECK(prctl(PR_GET_DUMPABLE) == 1, "dumpable is %d, expected 1",
		 prctl(PR_GET_DUMPABLE));
	TL_CHECK(!prctl(PR_GET_PDEATHSIG, &sig) && sig == SIGUSR2,
		 "parent-death signal is %d, expected %d", sig, SIGUSR2);
	TL_CHECK(!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur == nofile_before.rlim_cur &&
		 rl.rlim_max == nofile_before.rlim_max, "RLIMIT_NOFILE is %llu/%llu",
		 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
}

int main(void)
{
	tl_init();
	drop_root();
	set_after_drop();
	tl_ready();
	tl_wait_go();
	check_ids();
	check_settings();
	tl_pass();
}
