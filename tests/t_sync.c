/* Threads blocked at dump time in pthread_mutex_lock, pthread_cond_wait, pthread_join,
 * sem_wait, a robust process-shared mutex in a /dev/shm file and a PI mutex; each
 * must wake only after the go signal releases what it waits for, with the result it
 * would have had without the dump (EOWNERDEAD for the robust mutex's waiter). */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tlib.h"

#define JOINEE_RESULT ((void *)0x5eedUL)

struct role {
	const char *what;
	void *(*fn)(void *);
	pthread_t thread;
	pid_t tid;
	int ret;		/* what the blocking call returned */
	int early;		/* it returned before the go signal released it */
	int returned;
	char err[160];
};

/* The shared file's contents. */
struct shared {
	pthread_mutex_t robust;
};

static uint32_t release_word;	/* set once, after the go signal */
static atomic_int nr_held;
static pthread_mutex_t plain = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t pi;
static pthread_mutex_t cond_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int cond_flag;
static sem_t sem;
static struct shared *shm;
static char shm_path[64];

static int released(void)
{
	return __atomic_load_n(&release_word, __ATOMIC_SEQ_CST);
}

static void wait_release(void)
{
	while (!released())
		syscall(SYS_futex, &release_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

static void release_all(void)
{
	__atomic_store_n(&release_word, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &release_word, FUTEX_WAKE_PRIVATE, 1 << 30, NULL, NULL, 0);
}

static void start(struct role *r)
{
	r->tid = syscall(SYS_gettid);
}

static void returned(struct role *r, int ret)
{
	r->ret = ret;
	r->early = !released();
	r->returned = 1;
}

/* ---- holders: take something, keep it until released ---- */

static void *hold_plain(void *arg)
{
	start(arg);
	pthread_mutex_lock(&plain);
	atomic_fetch_add(&nr_held, 1);
	wait_release();
	pthread_mutex_unlock(&plain);
	return NULL;
}

/* Ends without unlocking: the kernel marks the mutex OWNER_DIED now, not at dump. */
static void *hold_robust(void *arg)
{
	struct role *r = arg;

	start(r);
	r->ret = pthread_mutex_lock(&shm->robust);
	atomic_fetch_add(&nr_held, 1);
	wait_release();
	return NULL;
}

static void *hold_pi(void *arg)
{
	start(arg);
	pthread_mutex_lock(&pi);
	atomic_fetch_add(&nr_held, 1);
	wait_release();
	pthread_mutex_unlock(&pi);
	return NULL;
}

static void *joinee(void *arg)
{
	start(arg);
	atomic_fetch_add(&nr_held, 1);
	wait_release();
	return JOINEE_RESULT;
}

enum { R_HOLD_PLAIN, R_HOLD_ROBUST, R_HOLD_PI, R_JOINEE, NR_HOLDERS,
       R_PLAIN = NR_HOLDERS, R_COND, R_JOIN, R_SEM, R_ROBUST, R_PI, NR_ROLES };

static struct role roles[NR_ROLES];

/* ---- waiters: blocked at dump time ---- */

static void *wait_plain(void *arg)
{
	struct role *r = arg;

	start(r);
	returned(r, pthread_mutex_lock(&plain));
	if (!r->ret)
		pthread_mutex_unlock(&plain);
	return NULL;
}

static void *wait_cond(void *arg)
{
	struct role *r = arg;
	int ret = 0, early = 0;

	start(r);
	pthread_mutex_lock(&cond_mutex);
	while (!cond_flag && !ret) {
		ret = pthread_cond_wait(&cond, &cond_mutex);
		early |= !released();
	}
	pthread_mutex_unlock(&cond_mutex);
	returned(r, ret);
	r->early |= early;
	return NULL;
}

static void *wait_join(void *arg)
{
	struct role *r = arg;
	void *res = NULL;

	start(r);
	returned(r, pthread_join(roles[R_JOINEE].thread, &res));
	if (!r->ret && res != JOINEE_RESULT)
		snprintf(r->err, sizeof(r->err), "the joined thread's result is %p, not %p", res,
			 JOINEE_RESULT);
	return NULL;
}

static void *wait_sem(void *arg)
{
	struct role *r = arg;
	int val = -1;

	start(r);
	returned(r, sem_wait(&sem) ? errno : 0);
	sem_getvalue(&sem, &val);
	if (!r->ret && val != 0)
		snprintf(r->err, sizeof(r->err), "semaphore value %d after the wait", val);
	return NULL;
}

static void *wait_robust(void *arg)
{
	struct role *r = arg;

	start(r);
	returned(r, pthread_mutex_lock(&shm->robust));
	if (r->ret == EOWNERDEAD) {
		if (pthread_mutex_consistent(&shm->robust))
			snprintf(r->err, sizeof(r->err), "pthread_mutex_consistent failed");
		pthread_mutex_unlock(&shm->robust);
	} else if (!r->ret) {
		snprintf(r->err, sizeof(r->err), "got the mutex without EOWNERDEAD");
		pthread_mutex_unlock(&shm->robust);
	}
	return NULL;
}

static void *wait_pi(void *arg)
{
	struct role *r = arg;
	uint32_t word;

	start(r);
	returned(r, pthread_mutex_lock(&pi));
	if (r->ret)
		return NULL;
	word = *(volatile uint32_t *)&pi;	/* __data.__lock */
	if ((word & FUTEX_TID_MASK) != (uint32_t)r->tid)
		snprintf(r->err, sizeof(r->err), "PI mutex word %#x after lock, owner is not %d",
			 word, r->tid);
	pthread_mutex_unlock(&pi);
	return NULL;
}

static struct role roles[NR_ROLES] = {
	[R_HOLD_PLAIN] = { "mutex holder", hold_plain },
	[R_HOLD_ROBUST] = { "robust mutex holder", hold_robust },
	[R_HOLD_PI] = { "PI mutex holder", hold_pi },
	[R_JOINEE] = { "joined thread", joinee },
	[R_PLAIN] = { "pthread_mutex_lock", wait_plain },
	[R_COND] = { "pthread_cond_wait", wait_cond },
	[R_JOIN] = { "pthread_join", wait_join },
	[R_SEM] = { "sem_wait", wait_sem },
	[R_ROBUST] = { "robust pthread_mutex_lock", wait_robust },
	[R_PI] = { "PI pthread_mutex_lock", wait_pi },
};

/* ---- setup ---- */

static void remove_shm(void)
{
	unlink(shm_path);
}

static void setup_robust(void)
{
	pthread_mutexattr_t ma;
	int fd;

	/* A name of its own: a killed run leaves its file behind, and a PID comes round
	 * again (another user's file of that name cannot be opened). */
	snprintf(shm_path, sizeof(shm_path), "/dev/shm/cryo-t_sync-%d-XXXXXX", getpid());
	fd = mkostemp(shm_path, O_CLOEXEC);
	TL_CHECK(fd >= 0, "cannot create %s", shm_path);
	atexit(remove_shm);
	TL_CHECK(!ftruncate(fd, 4096), "ftruncate %s", shm_path);
	shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	TL_CHECK(shm != MAP_FAILED, "mmap %s", shm_path);
	close(fd);
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	TL_CHECK(!pthread_mutex_init(&shm->robust, &ma), "robust mutex init");
	pthread_mutexattr_destroy(&ma);
}

static void setup(void)
{
	pthread_mutexattr_t ma;

	setup_robust();
	pthread_mutexattr_init(&ma);
	TL_CHECK(!pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT), "PI attribute");
	TL_CHECK(!pthread_mutex_init(&pi, &ma), "PI mutex init");
	pthread_mutexattr_destroy(&ma);
	sem_init(&sem, 0, 0);
}

static void spawn(int from, int to)
{
	for (int i = from; i < to; i++)
		TL_CHECK(!pthread_create(&roles[i].thread, NULL, roles[i].fn, &roles[i]),
			 "pthread_create (%s)", roles[i].what);
}

/* Every thread is in its futex call (holders in their wait for the release). */
static int all_in_futex(void)
{
	char path[64], buf[64];
	int n = 0;
	FILE *f;

	for (int i = 0; i < NR_ROLES; i++) {
		if (!roles[i].tid)
			return 0;
		snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", roles[i].tid);
		f = fopen(path, "r");
		if (f && fgets(buf, sizeof(buf), f) && atoi(buf) == SYS_futex)
			n++;
		if (f)
			fclose(f);
	}
	return n == NR_ROLES;
}

static void start_threads(void)
{
	double end = tl_now() + 20;
	sigset_t usr1;

	/* Threads inherit a mask blocking SIGUSR1: the go signal is the main thread's.
	 * It stays blocked in the main thread too: tl_wait_go's sigsuspend unblocks it
	 * atomically, so a go signal sent while the thread is not yet inside sigsuspend
	 * (just restored, waiting for a CPU) is not lost. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	spawn(0, NR_HOLDERS);
	while (atomic_load(&nr_held) < NR_HOLDERS) {
		TL_CHECK(tl_now() < end, "the holders did not take their locks");
		usleep(1000);
	}
	TL_CHECK(!roles[R_HOLD_ROBUST].ret, "robust mutex lock: %s",
		 strerror(roles[R_HOLD_ROBUST].ret));
	spawn(NR_HOLDERS, NR_ROLES);
	while (!all_in_futex()) {
		TL_CHECK(tl_now() < end, "the threads did not all block");
		usleep(2000);
	}
}

/* ---- after the go signal ---- */

/* Before anything is released: nobody woke, the robust mutex still belongs to its
 * live holder. */
static void check_before_release(void)
{
	uint32_t word = *(volatile uint32_t *)&shm->robust;	/* __data.__lock */

	for (int i = NR_HOLDERS; i < NR_ROLES; i++)
		TL_CHECK(!roles[i].returned, "%s returned %d (%s) before the go signal",
			 roles[i].what, roles[i].ret, strerror(roles[i].ret));
	TL_CHECK(!(word & FUTEX_OWNER_DIED), "robust mutex word %#x: marked OWNER_DIED "
		 "before its owner ended", word);
	TL_CHECK((word & FUTEX_TID_MASK) == (uint32_t)roles[R_HOLD_ROBUST].tid,
		 "robust mutex word %#x: owner is not thread %d", word,
		 roles[R_HOLD_ROBUST].tid);
	word = *(volatile uint32_t *)&pi;
	TL_CHECK((word & FUTEX_TID_MASK) == (uint32_t)roles[R_HOLD_PI].tid,
		 "PI mutex word %#x: owner is not thread %d", word, roles[R_HOLD_PI].tid);
}

static void release(void)
{
	release_all();
	pthread_mutex_lock(&cond_mutex);
	cond_flag = 1;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&cond_mutex);
	sem_post(&sem);
}

static int expected_ret(int i)
{
	return i == R_ROBUST ? EOWNERDEAD : 0;
}

static int join_all(void)
{
	struct timespec deadline;
	int bad = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 30;
	for (int i = 0; i < NR_ROLES; i++) {
		struct role *r = &roles[i];
		int rc;

		if (i == R_JOINEE)
			continue;	/* the pthread_join waiter joins it */
		rc = pthread_timedjoin_np(r->thread, NULL, &deadline);
		if (rc) {
			printf("%s (thread %d): still blocked 30 s after the release\n", r->what,
			       r->tid);
			bad++;
			continue;
		}
		if (i < NR_HOLDERS)
			continue;
		if (r->early || r->ret != expected_ret(i) || r->err[0]) {
			printf("%s (thread %d): returned %d (%s)%s, expected %s%s%s\n", r->what,
			       r->tid, r->ret, strerror(r->ret),
			       r->early ? " before the go signal" : "",
			       strerror(expected_ret(i)), r->err[0] ? "; " : "", r->err);
			bad++;
		}
	}
	return bad;
}

int main(void)
{
	int bad;

	tl_init();
	setup();
	start_threads();
	tl_ready();
	tl_wait_go();
	check_before_release();
	release();
	bad = join_all();
	TL_CHECK(!bad, "%d blocked calls ended wrongly", bad);
	tl_pass();
}
