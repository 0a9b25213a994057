/* Unit tests of the syscall restart decision (src/restart.h): every ERESTART code, a
 * completed syscall, a thread outside any syscall; the registers handed back exactly. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>

#include "restart.h"
#include "unit.h"

#define NO_SYSCALL ((unsigned long long)-1)

/* A thread stopped after `nr` returned (or was interrupted with) `ret`. */
static struct user_regs_struct regs(long long orig_rax, long long ret, unsigned long long rip)
{
	struct user_regs_struct r;

	memset(&r, 0, sizeof(r));
	r.orig_rax = orig_rax;
	r.rax = ret;
	r.rip = rip;
	r.rdi = 0x1111;
	r.rsi = 0x2222;
	r.rdx = 0x3333;
	r.r10 = 0x4444;
	r.r8 = 0x5555;
	r.r9 = 0x6666;
	r.rcx = rip;		/* syscall clobbers rcx with the return address */
	r.r11 = 0x246;
	r.rsp = 0x7ffc00001000;
	r.eflags = 0x246;
	r.cs = 0x33;
	r.ss = 0x2b;
	r.fs_base = 0x7f0000001000;
	return r;
}

/* Everything but rax, rip and orig_rax must come back unchanged. */
static int same_others(const struct user_regs_struct *a, const struct user_regs_struct *b)
{
	struct user_regs_struct x = *a, y = *b;

	x.rax = y.rax = 0;
	x.rip = y.rip = 0;
	x.orig_rax = y.orig_rax = 0;
	return !memcmp(&x, &y, sizeof(x));
}

struct restart_case {
	const char *what;
	long long orig_rax, rax;
	enum restart_action action;
	unsigned long long out_rax;
	int rip_delta;
};

static const struct restart_case cases[] = {
	{ "ERESTARTSYS in read", SYS_read, -CR_ERESTARTSYS, RESTART_REISSUE,
	  (unsigned long long)-CR_ERESTARTSYS, 0 },
	{ "ERESTARTNOINTR in wait4", SYS_wait4, -CR_ERESTARTNOINTR, RESTART_REISSUE,
	  (unsigned long long)-CR_ERESTARTNOINTR, 0 },
	{ "ERESTARTNOHAND in pause", SYS_pause, -CR_ERESTARTNOHAND, RESTART_REISSUE,
	  (unsigned long long)-CR_ERESTARTNOHAND, 0 },
	{ "ERESTARTNOHAND in select", SYS_select, -CR_ERESTARTNOHAND, RESTART_REISSUE,
	  (unsigned long long)-CR_ERESTARTNOHAND, 0 },
	{ "ERESTART_RESTARTBLOCK in restart_syscall", SYS_restart_syscall,
	  -CR_ERESTART_RESTARTBLOCK, RESTART_EINTR, (unsigned long long)-EINTR, 0 },
	{ "ERESTART_RESTARTBLOCK in an unknown call", SYS_getpid, -CR_ERESTART_RESTARTBLOCK,
	  RESTART_EINTR, (unsigned long long)-EINTR, 0 },
	{ "ERESTART_RESTARTBLOCK in futex", SYS_futex, -CR_ERESTART_RESTARTBLOCK,
	  RESTART_REISSUE, (unsigned long long)-CR_ERESTARTNOHAND, 0 },
	{ "ERESTART_RESTARTBLOCK in poll", SYS_poll, -CR_ERESTART_RESTARTBLOCK,
	  RESTART_REISSUE, (unsigned long long)-CR_ERESTARTNOHAND, 0 },
	{ "ERESTARTSYS in syscall 0", 0, -CR_ERESTARTSYS, RESTART_REISSUE,
	  (unsigned long long)-CR_ERESTARTSYS, 0 },
	{ "completed read", SYS_read, 42, RESTART_NONE, 42, 0 },
	{ "completed with 0", SYS_write, 0, RESTART_NONE, 0, 0 },
	{ "completed with -EINTR", SYS_read, -EINTR, RESTART_NONE, (unsigned long long)-EINTR,
	  0 },
	{ "completed with -EAGAIN", SYS_read, -EAGAIN, RESTART_NONE,
	  (unsigned long long)-EAGAIN, 0 },
	{ "completed with -515 (ENOIOCTLCMD, no restart code)", SYS_ioctl, -515, RESTART_NONE,
	  (unsigned long long)-515, 0 },
	{ "completed with -517", SYS_read, -517, RESTART_NONE, (unsigned long long)-517, 0 },
	{ "completed with -511", SYS_read, -511, RESTART_NONE, (unsigned long long)-511, 0 },
	{ "completed with +512", SYS_read, 512, RESTART_NONE, 512, 0 },
	{ "completed mmap address", SYS_mmap, 0x7f0012345000LL, RESTART_NONE, 0x7f0012345000ULL,
	  0 },
	{ "not in a syscall", -1, 0x1234, RESTART_NONE, 0x1234, 0 },
	{ "not in a syscall, rax looks like ERESTARTSYS", -1, -CR_ERESTARTSYS, RESTART_NONE,
	  (unsigned long long)-CR_ERESTARTSYS, 0 },
	{ "not in a syscall, rax looks like RESTARTBLOCK", -1, -CR_ERESTART_RESTARTBLOCK,
	  RESTART_NONE, (unsigned long long)-CR_ERESTART_RESTARTBLOCK, 0 },
	{ "negative orig_rax other than -1", -2, -CR_ERESTARTSYS, RESTART_NONE,
	  (unsigned long long)-CR_ERESTARTSYS, 0 },
};

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct restart_case *c = &cases[i];
		const unsigned long long rip = 0x401000 + 0x1000 * i;
		struct user_regs_struct in = regs(c->orig_rax, c->rax, rip), out;
		enum restart_action a;

		unit_case();
		memset(&out, 0xa5, sizeof(out));
		a = restart_decide(&in, &out);
		CHECK(a == c->action, "%s: action %s, want %s", c->what, restart_action_name(a),
		      restart_action_name(c->action));
		CHECK(out.rax == c->out_rax, "%s: rax 0x%llx, want 0x%llx", c->what, out.rax,
		      c->out_rax);
		CHECK(out.rip == rip + c->rip_delta, "%s: rip 0x%llx, want 0x%llx", c->what,
		      out.rip, rip + c->rip_delta);
		/* Re-issued calls are handed back interrupted, for the kernel to restart. */
		CHECK(out.orig_rax == (a == RESTART_REISSUE ? (unsigned long long)c->orig_rax :
				       NO_SYSCALL), "%s: orig_rax 0x%llx", c->what, out.orig_rax);
		CHECK(same_others(&in, &out), "%s: other registers changed", c->what);
		CHECK(in.orig_rax == (unsigned long long)c->orig_rax &&
		      in.rax == (unsigned long long)c->rax && in.rip == rip,
		      "%s: input modified", c->what);
	}
}

/* A decision applied to its own result decides the same: an interrupted call stays
 * an interrupted call, a completed one stays completed. */
static void test_idempotent(void)
{
	struct user_regs_struct in = regs(SYS_read, -CR_ERESTARTNOINTR, 0x402002), once, twice;

	unit_case();
	restart_decide(&in, &once);
	CHECK(restart_decide(&once, &twice) == RESTART_REISSUE, "second decision: re-issue");
	CHECK(!memcmp(&once, &twice, sizeof(once)), "second decision changed registers");
	in = regs(SYS_nanosleep, -CR_ERESTART_RESTARTBLOCK, 0x402002);
	restart_decide(&in, &once);
	CHECK(restart_decide(&once, &twice) == RESTART_REISSUE, "nanosleep: re-issue again");
	CHECK(!memcmp(&once, &twice, sizeof(once)), "nanosleep: second decision changed it");
}

static void test_names(void)
{
	unit_case();
	CHECK(!strcmp(restart_action_name(RESTART_NONE), "none"), "name none");
	CHECK(!strcmp(restart_action_name(RESTART_REISSUE), "re-issue"), "name re-issue");
	CHECK(!strcmp(restart_action_name(RESTART_EINTR), "-EINTR"), "name -EINTR");
	CHECK(!strcmp(restart_action_name((enum restart_action)42), "?"), "name unknown");
}

/* Relative sleeps with a rem pointer continue with the remaining time the kernel
 * wrote there: the request argument is pointed at rem. */
static void test_sleep_rem(void)
{
	struct user_regs_struct in, out;
	enum restart_action a;

	unit_case();
	in = regs(SYS_nanosleep, -CR_ERESTART_RESTARTBLOCK, 0x403002);
	a = restart_decide(&in, &out);
	CHECK(a == RESTART_REISSUE_REM, "nanosleep with rem: %s", restart_action_name(a));
	CHECK(out.rdi == in.rsi && out.rsi == in.rsi, "nanosleep: req must become rem");
	CHECK(out.rax == (unsigned long long)-CR_ERESTARTNOHAND && out.rip == 0x403002 &&
	      out.orig_rax == SYS_nanosleep, "nanosleep: handed back interrupted (NOHAND)");

	unit_case();
	in = regs(SYS_nanosleep, -CR_ERESTART_RESTARTBLOCK, 0x403002);
	in.rsi = 0;
	a = restart_decide(&in, &out);
	CHECK(a == RESTART_REISSUE, "nanosleep without rem: %s", restart_action_name(a));
	CHECK(out.rdi == in.rdi, "nanosleep without rem keeps its request");

	unit_case();
	in = regs(SYS_clock_nanosleep, -CR_ERESTART_RESTARTBLOCK, 0x403002);
	in.rsi = 0;
	a = restart_decide(&in, &out);
	CHECK(a == RESTART_REISSUE_REM, "clock_nanosleep with rem: %s", restart_action_name(a));
	CHECK(out.rdx == in.r10 && out.rdi == in.rdi && out.rsi == 0,
	      "clock_nanosleep: req (rdx) must become rem (r10)");

	unit_case();
	in = regs(SYS_clock_nanosleep, -CR_ERESTART_RESTARTBLOCK, 0x403002);
	in.rsi = TIMER_ABSTIME;
	a = restart_decide(&in, &out);
	CHECK(a == RESTART_REISSUE && out.rdx == in.rdx, "clock_nanosleep ABSTIME: same call");

	unit_case();
	in = regs(SYS_clock_nanosleep, -CR_ERESTART_RESTARTBLOCK, 0x403002);
	in.rsi = 0;
	in.r10 = 0;
	a = restart_decide(&in, &out);
	CHECK(a == RESTART_REISSUE && out.rdx == in.rdx, "clock_nanosleep without rem");
}

static void test_eintr_from_freeze(void)
{
	struct user_regs_struct in;

	unit_case();
	in = regs(SYS_epoll_wait, -EINTR, 0x404002);
	CHECK(restart_eintr_from_freeze(&in, false), "epoll_wait EINTR with no signal");
	CHECK(!restart_eintr_from_freeze(&in, true), "epoll_wait EINTR with a signal pending");
	in = regs(SYS_rt_sigtimedwait, -EINTR, 0x404002);
	CHECK(restart_eintr_from_freeze(&in, false), "rt_sigtimedwait EINTR");
	in = regs(SYS_read, -EINTR, 0x404002);
	CHECK(!restart_eintr_from_freeze(&in, false), "read EINTR is the program's");
	in = regs(SYS_epoll_wait, 0, 0x404002);
	CHECK(!restart_eintr_from_freeze(&in, false), "epoll_wait that returned 0");
	in = regs(-1, -EINTR, 0x404002);
	CHECK(!restart_eintr_from_freeze(&in, false), "not in a syscall");
	CHECK(restart_swaps_sigmask(SYS_rt_sigsuspend) && restart_swaps_sigmask(SYS_ppoll) &&
	      restart_swaps_sigmask(SYS_pselect6) && restart_swaps_sigmask(SYS_epoll_pwait) &&
	      !restart_swaps_sigmask(SYS_epoll_wait) && !restart_swaps_sigmask(SYS_poll),
	      "mask-swapping calls");
}

/* A live thread going home without the kernel's help: the two register sets. */
static void test_live_variants(void)
{
	struct user_regs_struct in, rs, ei;

	unit_case();
	in = regs(SYS_read, -CR_ERESTARTSYS, 0x401002);
	CHECK(restart_live_variants(&in, &rs, &ei) == 1 && rs.rip == 0x401000 &&
	      rs.rax == SYS_read && ei.rip == 0x401002 && ei.rax == (unsigned long long)-EINTR &&
	      rs.orig_rax == NO_SYSCALL && rs.rdi == in.rdi, "ERESTARTSYS: SA_RESTART decides");
	in = regs(SYS_pause, -CR_ERESTARTNOHAND, 0x401002);
	CHECK(restart_live_variants(&in, &rs, &ei) == 2 && rs.rax == SYS_pause,
	      "ERESTARTNOHAND: any handler interrupts");
	in = regs(SYS_nanosleep, -CR_ERESTART_RESTARTBLOCK, 0x401002);
	CHECK(restart_live_variants(&in, &rs, &ei) == 2 && rs.rax == SYS_restart_syscall &&
	      rs.rip == 0x401000, "RESTARTBLOCK: restart_syscall keeps the remaining time");
	in = regs(SYS_futex, -CR_ERESTARTNOINTR, 0x401002);
	CHECK(restart_live_variants(&in, &rs, &ei) == 0 && rs.rax == SYS_futex &&
	      rs.rip == 0x401000, "ERESTARTNOINTR always restarts");
	in = regs(SYS_getpid, 1234, 0x401002);
	CHECK(restart_live_variants(&in, &rs, &ei) == 0 && rs.rip == 0x401002 && rs.rax == 1234,
	      "a completed call stays completed");
	in = regs(-1, 77, 0x401005);
	CHECK(restart_live_variants(&in, &rs, &ei) == 0 && same_others(&in, &rs) &&
	      rs.rax == 77 && rs.rip == 0x401005, "outside any call: as it was");
}

int main(void)
{
	test_cases();
	test_live_variants();
	test_sleep_rem();
	test_eintr_from_freeze();
	test_idempotent();
	test_names();
	return unit_done("unit_restart");
}
