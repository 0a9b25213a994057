/* Timed waits in progress at dump, one per thread: usleep, nanosleep with rem,
 * clock_nanosleep TIMER_ABSTIME, sem_timedwait, pthread_cond_timedwait, select, poll,
 * epoll_wait and a relative FUTEX_WAIT. Each must wake at or after its deadline,
 * never early and never with EINTR; the test prints how late each woke. */
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tlib.h"

#define WAIT_NS 1500000000LL

enum kind { K_USLEEP, K_NANOSLEEP, K_CLOCK_ABS, K_SEM, K_COND, K_SELECT, K_POLL, K_EPOLL,
	    K_FUTEX, NR_KINDS };
static const char *const names[] = { "usleep", "nanosleep(rem)", "clock_nanosleep(ABS)",
				     "sem_timedwait", "pthread_cond_timedwait", "select",
				     "poll", "epoll_wait", "futex(FUTEX_WAIT, timeout)" };

struct sleeper {
	enum kind kind;
	pthread_t thread;
	long long lateness_ns;		/* wake time minus deadline */
	int ret, err;
	const char *note;
};

static atomic_int started;
static sem_t sem;
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;
static uint32_t futex_word;

static long long now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct timespec abs_ts(clockid_t clk, long long add)
{
	long long t = now_ns(clk) + add;
	struct timespec ts = { t / 1000000000LL, t % 1000000000LL };

	return ts;
}

/* Run one timed wait; returns the deadline on CLOCK_MONOTONIC. */
static long long do_wait(struct sleeper *s)
{
	long long deadline = now_ns(CLOCK_MONOTONIC) + WAIT_NS;
	struct timespec rel = { WAIT_NS / 1000000000LL, WAIT_NS % 1000000000LL }, rem, ts;
	struct timeval tv = { WAIT_NS / 1000000000LL, (WAIT_NS % 1000000000LL) / 1000 };
	struct epoll_event ev;
	int ep;

	atomic_fetch_add(&started, 1);
	switch (s->kind) {
	case K_USLEEP:
		s->ret = usleep(WAIT_NS / 1000);
		break;
	case K_NANOSLEEP:
		s->ret = nanosleep(&rel, &rem);
		break;
	case K_CLOCK_ABS:
		ts = abs_ts(CLOCK_MONOTONIC, WAIT_NS);
		s->ret = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		if (s->ret) {
			errno = s->ret;
			s->ret = -1;
		}
		break;
	case K_SEM:
		ts = abs_ts(CLOCK_REALTIME, WAIT_NS);
		s->ret = sem_timedwait(&sem, &ts);
		if (s->ret && errno == ETIMEDOUT)
			s->ret = 0;
		break;
	case K_COND:
		ts = abs_ts(CLOCK_MONOTONIC, WAIT_NS);
		pthread_mutex_lock(&mutex);
		s->ret = pthread_cond_timedwait(&cond, &mutex, &ts);
		pthread_mutex_unlock(&mutex);
		if (s->ret == ETIMEDOUT)
			s->ret = 0;
		else if (s->ret) {
			errno = s->ret;
			s->ret = -1;
		}
		break;
	case K_SELECT:
		s->ret = select(0, NULL, NULL, NULL, &tv);
		break;
	case K_POLL:
		s->ret = poll(NULL, 0, WAIT_NS / 1000000);
		break;
	case K_EPOLL:
		ep = epoll_create1(0);
		s->ret = epoll_wait(ep, &ev, 1, WAIT_NS / 1000000);
		close(ep);
		break;
	case K_FUTEX:
		s->ret = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0);
		if (s->ret && errno == ETIMEDOUT)
			s->ret = 0;
		break;
	default:
		break;
	}
	s->err = s->ret ? errno : 0;
	return deadline;
}

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	sigset_t usr1;
	long long deadline;

	/* The go signal is the main thread's. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	deadline = do_wait(s);
	s->lateness_ns = now_ns(CLOCK_MONOTONIC) - deadline;
	return NULL;
}

int main(void)
{
	struct sleeper s[NR_KINDS];
	pthread_condattr_t ca;
	int bad = 0;

	tl_init();
	sem_init(&sem, 0, 0);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cond, &ca);
	memset(s, 0, sizeof(s));
	for (int k = 0; k < NR_KINDS; k++) {
		s[k].kind = k;
		pthread_create(&s[k].thread, NULL, sleeper_main, &s[k]);
	}
	while (atomic_load(&started) < NR_KINDS)
		usleep(1000);
	usleep(50000);	/* let every thread enter its call */
	tl_ready();
	tl_wait_go();
	for (int k = 0; k < NR_KINDS; k++) {
		pthread_join(s[k].thread, NULL);
		printf("%-28s woke %+8.3f ms after its deadline%s%s\n", names[k],
		       s[k].lateness_ns / 1e6, s[k].ret ? ", error: " : "",
		       s[k].ret ? strerror(s[k].err) : "");
		if (s[k].ret || s[k].lateness_ns < 0)
			bad++;
	}
	TL_CHECK(!bad, "%d timed waits returned an error or woke early", bad);
	tl_pass();
}
