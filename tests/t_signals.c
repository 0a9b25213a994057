/* Signals across dump and restore: actions (handlers, SA_* flags, masks, SIG_IGN,
 * SIG_DFL), the sigaltstack, the blocked mask, and pending signals on both queues
 * (standard ones sent twice, real-time ones queued with payloads), delivered after
 * restore exactly as often and in the order they were queued. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tlib.h"

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

#define MAX_EVENTS 64
#define NO_INFO 0x7fffffff	/* code of an event from a handler without SA_SIGINFO */

struct event {
	int sig, code, pid, uid, value;
	uint64_t mask;		/* blocked in the handler */
	int on_altstack;
};

struct kaction {		/* the kernel's struct sigaction */
	uint64_t handler, flags, restorer, mask;
};

struct action {
	int sig;
	void (*handler)(int);	/* or, with SA_SIGINFO: */
	void (*info)(int, siginfo_t *, void *);
	int flags;
	uint64_t mask;
};

static struct event events[MAX_EVENTS];
static volatile int nr_events;
static char altstack[64 << 10] __attribute__((aligned(16)));
static struct kaction before[65];
static struct action actions[16];
static int nr_actions;
static uint64_t blocked;
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

static void set_mask(int how, uint64_t m)
{
	TL_CHECK(!syscall(SYS_rt_sigprocmask, how, &m, NULL, sizeof(m)), "rt_sigprocmask: %s",
		 strerror(errno));
}

static struct event *record(int sig)
{
	char here;
	struct event *e;

	if (nr_events >= MAX_EVENTS)
		return NULL;
	e = &events[nr_events++];
	memset(e, 0, sizeof(*e));
	e->sig = sig;
	e->code = NO_INFO;
	e->mask = raw_mask();
	e->on_altstack = (uintptr_t)&here - (uintptr_t)altstack < sizeof(altstack);
	return e;
}

static void on_plain(int sig)
{
	record(sig);
}

static void on_info(int sig, siginfo_t *si, void *uc)
{
	struct event *e = record(sig);

	(void)uc;
	if (!e)
		return;
	e->code = si->si_code;
	e->pid = si->si_pid;
	e->uid = si->si_uid;
	e->value = si->si_value.sival_int;
}

/* Set and remember an action; with SA_SIGINFO the handler is on_info. */
static void add_action(int sig, void (*handler)(int), int flags, uint64_t mask)
{
	struct action *a = &actions[nr_actions++];
	struct sigaction sa;

	a->sig = sig;
	a->handler = handler;
	a->flags = flags;
	a->mask = mask;
	memset(&sa, 0, sizeof(sa));
	if (flags & SA_SIGINFO) {
		a->handler = NULL;
		a->info = on_info;
		sa.sa_sigaction = on_info;
	} else {
		sa.sa_handler = handler;
	}
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	for (int s = 1; s <= 64; s++)
		if (mask & bit(s))
			sigaddset(&sa.sa_mask, s);
	TL_CHECK(!sigaction(sig, &sa, NULL), "sigaction(%d): %s", sig, strerror(errno));
}

static void set_actions(void)
{
	add_action(SIGUSR2, NULL, SA_SIGINFO | SA_RESTART, bit(SIGINT) | bit(SIGRTMIN + 2));
	add_action(SIGINT, NULL, SA_SIGINFO, bit(SIGQUIT));
	add_action(SIGHUP, on_plain, SA_NODEFER | SA_RESETHAND, 0);
	add_action(SIGALRM, NULL, SA_SIGINFO | SA_ONSTACK, bit(SIGTERM));
	add_action(SIGCHLD, NULL, SA_SIGINFO | SA_NOCLDSTOP | SA_NOCLDWAIT, 0);
	add_action(SIGPIPE, SIG_IGN, 0, 0);
	add_action(SIGWINCH, SIG_IGN, SA_RESTART, bit(SIGUSR2));
	add_action(SIGTERM, SIG_DFL, SA_RESTART | SA_NODEFER, bit(SIGHUP) | bit(SIGRTMAX));
	add_action(SIGRTMIN + 1, NULL, SA_SIGINFO | SA_RESTART, bit(SIGRTMAX - 1));
	add_action(SIGRTMIN + 4, NULL, SA_SIGINFO, 0);
}

static void set_altstack(void)
{
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack),
		       .ss_flags = (int)SS_AUTODISARM };

	TL_CHECK(!sigaltstack(&ss, NULL), "sigaltstack: %s", strerror(errno));
}

static void get_kaction(int sig, struct kaction *ka)
{
	memset(ka, 0, sizeof(*ka));
	TL_CHECK(!syscall(SYS_rt_sigaction, sig, NULL, ka, 8), "rt_sigaction(%d): %s", sig,
		 strerror(errno));
}

static void snapshot_actions(void)
{
	for (int sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			get_kaction(sig, &before[sig]);
}

/* Pending before the dump: each standard signal once, each real-time one per send. */
static void queue_signals(void)
{
	struct itimerval once = { .it_value = { 0, 1000 } };
	struct timespec ms = { 0, 1000000 };
	sigset_t pending;

	TL_CHECK(!sigqueue(me, SIGUSR2, (union sigval){ .sival_int = 77 }), "sigqueue");
	TL_CHECK(!kill(me, SIGUSR2), "kill");
	TL_CHECK(!raise(SIGINT) && !raise(SIGINT), "raise");
	for (int i = 1; i <= 3; i++) {
		TL_CHECK(!sigqueue(me, SIGRTMIN + 1, (union sigval){ .sival_int = 100 + i }),
			 "sigqueue: %s", strerror(errno));
		TL_CHECK(!pthread_sigqueue(pthread_self(), SIGRTMIN + 4,
					   (union sigval){ .sival_int = 200 + i }),
			 "pthread_sigqueue");
	}
	/* The thread's own queue is taken before the process's. */
	TL_CHECK(!pthread_sigqueue(pthread_self(), SIGRTMIN + 1, (union sigval){ .sival_int = 104 }),
		 "pthread_sigqueue");
	/* A signal from the kernel: an expired one-shot timer. */
	TL_CHECK(!setitimer(ITIMER_REAL, &once, NULL), "setitimer");
	for (int i = 0; i < 5000; i++) {
		sigpending(&pending);
		if (sigismember(&pending, SIGALRM))
			break;
		nanosleep(&ms, NULL);
	}
	TL_CHECK(sigismember(&pending, SIGALRM), "SIGALRM from the timer never came");
}

static void check_actions(void)
{
	for (int sig = 1; sig <= 64; sig++) {
		struct kaction now;

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		get_kaction(sig, &now);
		TL_CHECK(now.handler == before[sig].handler, "signal %d: handler 0x%llx, was 0x%llx",
			 sig, (unsigned long long)now.handler,
			 (unsigned long long)before[sig].handler);
		TL_CHECK(now.flags == before[sig].flags, "signal %d: flags 0x%llx, were 0x%llx", sig,
			 (unsigned long long)now.flags, (unsigned long long)before[sig].flags);
		TL_CHECK(now.restorer == before[sig].restorer,
			 "signal %d: restorer 0x%llx, was 0x%llx", sig,
			 (unsigned long long)now.restorer, (unsigned long long)before[sig].restorer);
		TL_CHECK(now.mask == before[sig].mask, "signal %d: mask 0x%llx, was 0x%llx", sig,
			 (unsigned long long)now.mask, (unsigned long long)before[sig].mask);
	}
	/* And what the program set, as sigaction() reports it. */
	for (int i = 0; i < nr_actions; i++) {
		const struct action *a = &actions[i];
		struct sigaction sa;

		TL_CHECK(!sigaction(a->sig, NULL, &sa), "sigaction(%d)", a->sig);
		if (a->info)
			TL_CHECK(sa.sa_sigaction == a->info, "signal %d: handler changed", a->sig);
		else
			TL_CHECK(sa.sa_handler == a->handler, "signal %d: handler changed", a->sig);
		TL_CHECK((sa.sa_flags & ~SA_RESTORER) == a->flags, "signal %d: flags 0x%x, set 0x%x",
			 a->sig, sa.sa_flags & ~SA_RESTORER, a->flags);
		for (int s = 1; s <= 64; s++)
			TL_CHECK(sigismember(&sa.sa_mask, s) == !!(a->mask & bit(s)),
				 "signal %d: signal %d %s its mask", a->sig, s,
				 sigismember(&sa.sa_mask, s) ? "is in" : "is not in");
	}
}

static void check_altstack(void)
{
	stack_t ss;

	TL_CHECK(!sigaltstack(NULL, &ss), "sigaltstack: %s", strerror(errno));
	TL_CHECK(ss.ss_sp == altstack && ss.ss_size == sizeof(altstack),
		 "sigaltstack is %p+%zu, was %p+%zu", ss.ss_sp, ss.ss_size, (void *)altstack,
		 sizeof(altstack));
	TL_CHECK((unsigned)ss.ss_flags == SS_AUTODISARM, "sigaltstack flags 0x%x, set 0x%x",
		 ss.ss_flags, SS_AUTODISARM);
}

static void check_pending_set(uint64_t want)
{
	sigset_t set;

	TL_CHECK(!sigpending(&set), "sigpending");
	for (int s = 1; s <= 64; s++)
		TL_CHECK(sigismember(&set, s) == !!(want & bit(s)), "signal %d is %spending", s,
			 sigismember(&set, s) ? "" : "not ");
}

/* Check event i: signal, code (NO_INFO: handler without siginfo), payload, mask. */
static void check_event(int i, int sig, int code, int value, uint64_t mask)
{
	const struct event *e = &events[i];

	TL_CHECK(i < nr_events, "signal %d: only %d deliveries", sig, nr_events);
	TL_CHECK(e->sig == sig, "delivery %d: signal %d, expected %d", i, e->sig, sig);
	TL_CHECK(e->code == code, "signal %d delivery %d: si_code %d, expected %d", sig, i, e->code,
		 code);
	TL_CHECK(e->mask == mask, "signal %d delivery %d: mask in the handler 0x%llx, expected "
		 "0x%llx", sig, i, (unsigned long long)e->mask, (unsigned long long)mask);
	if (code == NO_INFO || code == SI_KERNEL)
		return;
	TL_CHECK(e->pid == me && e->uid == (int)getuid(), "signal %d delivery %d: from pid %d uid "
		 "%d, expected %d %d", sig, i, e->pid, e->uid, me, (int)getuid());
	if (code == SI_QUEUE)
		TL_CHECK(e->value == value, "signal %d delivery %d: value %d, expected %d", sig, i,
			 e->value, value);
}

/* Unblock one signal, let its pending instances run, block it again. */
static void deliver(int sig, int times)
{
	nr_events = 0;
	set_mask(SIG_UNBLOCK, bit(sig));
	set_mask(SIG_BLOCK, bit(sig));
	TL_CHECK(nr_events == times, "signal %d delivered %d times, expected %d", sig, nr_events,
		 times);
}

static void check_pending(void)
{
	deliver(SIGINT, 1);
	check_event(0, SIGINT, SI_TKILL, 0, blocked | bit(SIGQUIT));
	deliver(SIGUSR2, 1);
	check_event(0, SIGUSR2, SI_QUEUE, 77, blocked | bit(SIGINT) | bit(SIGRTMIN + 2));
	deliver(SIGALRM, 1);
	check_event(0, SIGALRM, SI_KERNEL, 0, blocked | bit(SIGTERM));
	TL_CHECK(events[0].on_altstack, "the SA_ONSTACK handler did not run on the altstack");
	deliver(SIGRTMIN + 1, 4);
	check_event(0, SIGRTMIN + 1, SI_QUEUE, 104, blocked | bit(SIGRTMAX - 1));
	for (int i = 1; i <= 3; i++)
		check_event(i, SIGRTMIN + 1, SI_QUEUE, 100 + i, blocked | bit(SIGRTMAX - 1));
	deliver(SIGRTMIN + 4, 3);
	for (int i = 0; i < 3; i++)
		check_event(i, SIGRTMIN + 4, SI_QUEUE, 201 + i, blocked);
	check_pending_set(0);
}

/* The handlers still work: send fresh signals. */
static void check_raise(void)
{
	struct sigaction sa;

	nr_events = 0;
	raise(SIGHUP);		/* SA_NODEFER: not blocked in its handler */
	TL_CHECK(nr_events == 1, "SIGHUP ran its handler %d times", nr_events);
	check_event(0, SIGHUP, NO_INFO, 0, blocked);
	TL_CHECK(!sigaction(SIGHUP, NULL, &sa) && sa.sa_handler == SIG_DFL,
		 "SA_RESETHAND did not reset the SIGHUP handler");
	nr_events = 0;
	raise(SIGCHLD);
	TL_CHECK(nr_events == 1, "SIGCHLD ran its handler %d times", nr_events);
	check_event(0, SIGCHLD, SI_TKILL, 0, blocked | bit(SIGCHLD));
	nr_events = 0;
	raise(SIGPIPE);		/* ignored */
	raise(SIGWINCH);
	TL_CHECK(nr_events == 0, "an ignored signal ran a handler");
	nr_events = 0;
	set_mask(SIG_UNBLOCK, bit(SIGRTMIN + 4));
	TL_CHECK(!sigqueue(me, SIGRTMIN + 4, (union sigval){ .sival_int = 999 }), "sigqueue");
	set_mask(SIG_BLOCK, bit(SIGRTMIN + 4));
	TL_CHECK(nr_events == 1, "SIGRTMIN+4 ran its handler %d times", nr_events);
	check_event(0, SIGRTMIN + 4, SI_QUEUE, 999, blocked);
}

int main(void)
{
	uint64_t pending = bit(SIGINT) | bit(SIGUSR2) | bit(SIGALRM) | bit(SIGRTMIN + 1) |
			   bit(SIGRTMIN + 4);
	tl_init();
	me = getpid();
	blocked = pending | bit(SIGQUIT) | bit(SIGTTOU) | bit(SIGRTMAX);
	set_actions();
	set_altstack();
	set_mask(SIG_SETMASK, blocked);
	queue_signals();
	check_pending_set(pending);
	snapshot_actions();
	tl_ready();
	tl_wait_go();		/* unblocks nothing but SIGUSR1 */
	TL_CHECK(raw_mask() == blocked, "blocked mask 0x%llx, was 0x%llx",
		 (unsigned long long)raw_mask(), (unsigned long long)blocked);
	check_actions();
	check_altstack();
	check_pending_set(pending);
	check_pending();
	check_raise();
	TL_CHECK(raw_mask() == blocked, "blocked mask 0x%llx at the end, expected 0x%llx",
		 (unsigned long long)raw_mask(), (unsigned long long)blocked);
	tl_pass();
}
