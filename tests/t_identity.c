/* Process identity and process-wide settings: PID, session and group leadership, the
 * name, resource limits, interval timers, personality, timer slack, dumpable, THP
 * disable and child subreaper, checked from inside after restore. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "tlib.h"

#define NAME "cryo-ident-nm"
#define SLACK_NS 123457UL
#define PERSONA (ADDR_NO_RANDOMIZE | UNAME26)
#define SEC_NS 1000000000LL
/* Looser than any run of the harness, much tighter than a unit error. */
#define TIMER_MAX_DRIFT_NS (600 * SEC_NS)
/* Setting a CPU-time itimer adds one scheduler tick (at most 10 ms) to its value, and
 * a restore sets it again: allow a tick for each of up to three restores. */
#define CPU_TIMER_TICK_NS (30 * 1000000LL)

static const int limits[] = { RLIMIT_NOFILE, RLIMIT_STACK, RLIMIT_CORE };

static const struct {
	int which;
	struct itimerval set;
} timers[] = {
	{ ITIMER_REAL, { { 777, 123456 }, { 900, 0 } } },
	{ ITIMER_VIRTUAL, { { 555, 5000 }, { 600, 250000 } } },
};

static volatile int alarms;
static struct rlimit rl_before[RLIM_NLIMITS];
static struct itimerval it_before[2];

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static long long tv_ns(const struct timeval *tv)
{
	return tv->tv_sec * SEC_NS + tv->tv_usec * 1000LL;
}

/* Lower soft limits (and NOFILE's hard limit) to values no default has. */
static void lower_limits(void)
{
	static const rlim_t soft[] = { 321, 5UL << 20 | 12288, 1UL << 20 };

	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		struct rlimit rl;

		TL_CHECK(!getrlimit(limits[i], &rl), "getrlimit: %s", strerror(errno));
		rl.rlim_cur = soft[i] < rl.rlim_max ? soft[i] : rl.rlim_max;
		if (limits[i] == RLIMIT_NOFILE && rl.rlim_max > 4321)
			rl.rlim_max = 4321;
		TL_CHECK(!setrlimit(limits[i], &rl), "setrlimit %d: %s", limits[i], strerror(errno));
	}
	for (int r = 0; r < RLIM_NLIMITS; r++)
		TL_CHECK(!getrlimit(r, &rl_before[r]), "getrlimit %d: %s", r, strerror(errno));
}

static void arm_timers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGVTALRM, &sa, NULL);
	for (int i = 0; i < 2; i++)
		TL_CHECK(!setitimer(timers[i].which, &timers[i].set, NULL), "setitimer: %s",
			 strerror(errno));
}

static void set_prctls(void)
{
	TL_CHECK(!prctl(PR_SET_NAME, NAME), "PR_SET_NAME: %s", strerror(errno));
	TL_CHECK(!prctl(PR_SET_TIMERSLACK, SLACK_NS), "PR_SET_TIMERSLACK: %s", strerror(errno));
	TL_CHECK(!prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), "PR_SET_THP_DISABLE: %s",
		 strerror(errno));
	TL_CHECK(!prctl(PR_SET_CHILD_SUBREAPER, 1), "PR_SET_CHILD_SUBREAPER: %s",
		 strerror(errno));
	TL_CHECK(!prctl(PR_SET_DUMPABLE, 0), "PR_SET_DUMPABLE: %s", strerror(errno));
	TL_CHECK(personality(PERSONA) >= 0, "personality: %s", strerror(errno));
	TL_CHECK(personality(0xffffffff) == PERSONA, "personality did not take");
}

/* ---- checks after restore ---- */

static void check_ids(pid_t pid)
{
	TL_CHECK(getpid() == pid, "PID changed from %d to %d", pid, getpid());
	TL_CHECK(syscall(SYS_gettid) == pid, "the main thread's TID is %ld, not %d",
		 (long)syscall(SYS_gettid), pid);
	TL_CHECK(getsid(0) == pid, "session is %d, expected %d", getsid(0), pid);
	TL_CHECK(getpgrp() == pid, "process group is %d, expected %d", getpgrp(), pid);
}

static void check_name(void)
{
	char name[17] = "", comm[32] = "";
	FILE *f;

	TL_CHECK(!prctl(PR_GET_NAME, name), "PR_GET_NAME: %s", strerror(errno));
	TL_CHECK(!strcmp(name, NAME), "name is '%s', expected '%s'", name, NAME);
	f = fopen("/proc/self/comm", "r");
	TL_CHECK(f && fgets(comm, sizeof(comm), f), "read /proc/self/comm");
	fclose(f);
	TL_CHECK(!strcmp(comm, NAME "\n"), "/proc/self/comm is '%s'", comm);
}

static void check_limits(void)
{
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		struct rlimit rl;

		TL_CHECK(!getrlimit(r, &rl), "getrlimit %d: %s", r, strerror(errno));
		TL_CHECK(rl.rlim_cur == rl_before[r].rlim_cur && rl.rlim_max == rl_before[r].rlim_max,
			 "resource limit %d is %llu/%llu, expected %llu/%llu", r,
			 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
			 (unsigned long long)rl_before[r].rlim_cur,
			 (unsigned long long)rl_before[r].rlim_max);
	}
}

static void check_timers(void)
{
	struct itimerval it;

	TL_CHECK(!alarms, "%d interval timer signals arrived; the timers are far off", alarms);
	for (int i = 0; i < 2; i++) {
		long long v, v0 = tv_ns(&it_before[i].it_value);

		TL_CHECK(!getitimer(timers[i].which, &it), "getitimer: %s", strerror(errno));
		TL_CHECK(tv_ns(&it.it_interval) == tv_ns(&timers[i].set.it_interval),
			 "itimer %d has interval %lld ns, expected %lld", timers[i].which,
			 tv_ns(&it.it_interval), tv_ns(&timers[i].set.it_interval));
		v = tv_ns(&it.it_value);
		TL_CHECK(v > 0, "itimer %d is no longer armed", timers[i].which);
		if (timers[i].which != ITIMER_REAL)
			v0 += CPU_TIMER_TICK_NS;
		TL_CHECK(v <= v0 && v > v0 - TIMER_MAX_DRIFT_NS,
			 "itimer %d has %lld ns left; it had %lld before the dump", timers[i].which,
			 v, v0);
	}
	TL_CHECK(!getitimer(ITIMER_PROF, &it) && !it.it_value.tv_sec && !it.it_value.tv_usec,
		 "ITIMER_PROF is armed but never was");
}

static void check_prctls(void)
{
	struct utsname u;
	int v = 0;

	TL_CHECK(prctl(PR_GET_TIMERSLACK) == (int)SLACK_NS, "timer slack is %d, expected %lu",
		 prctl(PR_GET_TIMERSLACK), SLACK_NS);
	TL_CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "THP disable is %d",
		 prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
	TL_CHECK(!prctl(PR_GET_CHILD_SUBREAPER, &v) && v == 1, "child subreaper is %d", v);
	TL_CHECK(prctl(PR_GET_DUMPABLE) == 0, "dumpable is %d, expected 0",
		 prctl(PR_GET_DUMPABLE));
	TL_CHECK(personality(0xffffffff) == PERSONA, "personality is 0x%x, expected 0x%x",
		 personality(0xffffffff), PERSONA);
	TL_CHECK(!uname(&u) && !strncmp(u.release, "2.6.", 4),
		 "UNAME26 has no effect: release %s", u.release);
}

int main(void)
{
	pid_t pid = getpid();

	tl_init();
	lower_limits();
	arm_timers();
	set_prctls();
	for (int i = 0; i < 2; i++)
		TL_CHECK(!getitimer(timers[i].which, &it_before[i]), "getitimer: %s",
			 strerror(errno));
	tl_ready();
	tl_wait_go();
	check_ids(pid);
	check_name();
	check_limits();
	check_timers();
	check_prctls();
	tl_pass();
}
