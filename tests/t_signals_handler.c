/* Signals: a process dumped while inside a signal handler running on its alternate
 * stack. After restore the handler still runs there, with its mask and siginfo;
 * once it returns, sigreturn puts back the mask and stack state of before. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tlib.h"

#define PAYLOAD 55

static char altstack[64 << 10] __attribute__((aligned(16)));
static volatile int handler_done;
static pid_t me;

static uint64_t bit(int sig)
{
	return 1ULL << (sig - 1);
}

static uint64_t raw_mask(void)
{
	uint64_t m = 0;

	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, sizeof(m));
	return m;
}

static int on_altstack(const void *p)
{
	return (uintptr_t)p - (uintptr_t)altstack < sizeof(altstack);
}

/* Everything the handler sees about itself, before and after the dump. */
static void check_inside(const char *when, const siginfo_t *si, const void *local)
{
	uint64_t want = bit(SIGQUIT) | bit(SIGINT) | bit(SIGUSR2);
	stack_t ss;

	TL_CHECK(on_altstack(local), "%s: the handler does not run on the altstack", when);
	TL_CHECK(!sigaltstack(NULL, &ss), "sigaltstack: %s", strerror(errno));
	TL_CHECK(ss.ss_sp == altstack && ss.ss_size == sizeof(altstack) &&
		 ss.ss_flags == SS_ONSTACK, "%s: sigaltstack %p+%zu flags 0x%x, expected %p+%zu "
		 "SS_ONSTACK", when, ss.ss_sp, ss.ss_size, ss.ss_flags, (void *)altstack,
		 sizeof(altstack));
	TL_CHECK(raw_mask() == want, "%s: mask in the handler 0x%llx, expected 0x%llx", when,
		 (unsigned long long)raw_mask(), (unsigned long long)want);
	TL_CHECK(si->si_signo == SIGUSR2 && si->si_code == SI_QUEUE && si->si_pid == me &&
		 si->si_value.sival_int == PAYLOAD, "%s: siginfo signo %d code %d pid %d value %d",
		 when, si->si_signo, si->si_code, si->si_pid, si->si_value.sival_int);
}

static void on_usr2(int sig, siginfo_t *si, void *uc)
{
	char local;

	(void)sig;
	(void)uc;
	check_inside("before the dump", si, &local);
	tl_ready();
	tl_wait_go();
	check_inside("after the restore", si, &local);
	handler_done = 1;
}

int main(void)
{
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	struct sigaction sa;
	sigset_t quit;

	tl_init();
	me = getpid();
	TL_CHECK(!sigaltstack(&ss, NULL), "sigaltstack: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_usr2;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	TL_CHECK(!sigaction(SIGUSR2, &sa, NULL), "sigaction");
	sigemptyset(&quit);
	sigaddset(&quit, SIGQUIT);
	TL_CHECK(!sigprocmask(SIG_SETMASK, &quit, NULL), "sigprocmask");
	/* Delivered at once: the whole wait happens inside the handler. */
	TL_CHECK(!sigqueue(me, SIGUSR2, (union sigval){ .sival_int = PAYLOAD }), "sigqueue");
	TL_CHECK(handler_done, "the handler did not finish");
	TL_CHECK(raw_mask() == bit(SIGQUIT), "mask after the handler 0x%llx, expected 0x%llx",
		 (unsigned long long)raw_mask(), (unsigned long long)bit(SIGQUIT));
	TL_CHECK(!sigaltstack(NULL, &ss), "sigaltstack");
	TL_CHECK(ss.ss_sp == altstack && ss.ss_size == sizeof(altstack) && ss.ss_flags == 0,
		 "sigaltstack after the handler %p+%zu flags 0x%x", ss.ss_sp, ss.ss_size,
		 ss.ss_flags);
	tl_pass();
}
