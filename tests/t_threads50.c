/* 50 threads, each with its own TLS value, x87/SSE/AVX/AVX-512 register values held
 * across a blocking futex wait (loaded and stored by one asm block around the raw
 * syscall), blocked signal mask, name and TID, all verified by each thread itself. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tlib.h"

#define NR_THREADS 50

/* Vector levels: which registers the asm block loads and stores. */
enum { VL_SSE, VL_AVX, VL_AVX512 };

/* The registers one thread holds across its wait. */
struct vset {
	uint8_t xmm2[16];
	uint8_t xmm7[16];
	uint8_t ymm9[32];
	uint8_t ymm14[32];
	uint8_t zmm5[64];
	uint8_t zmm17[64];
	uint8_t zmm30[64];
	uint64_t k1;
	uint64_t k6;
	double st0;
	double st1;
	uint32_t mxcsr;
	uint16_t fcw;
} __attribute__((aligned(64)));

struct worker {
	int idx;
	pthread_t thread;
	struct vset in, out;
	pid_t tid;
	long waits;		/* futex calls the asm block made */
	char err[256];
};

static struct worker workers[NR_THREADS];
static atomic_int nr_waiting;
static uint32_t release_word;
static int vlevel;
static __thread uint64_t tls_value;
static __thread char tls_tag[24];

static int vector_level(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
		return VL_AVX512;
	if (__builtin_cpu_supports("avx"))
		return VL_AVX;
	return VL_SSE;
}

/* Load in, wait on the futex until release_word is set, store into out. The
 * vector registers above the level are skipped (never executed). */
__attribute__((target("avx512f,avx512bw"), noinline))
static long hold_registers(struct vset *in, struct vset *out, int level)
{
	uint32_t saved_mxcsr;
	uint16_t saved_fcw;
	long waits = 0;

	asm volatile(
		"stmxcsr %[smx]\n\t"
		"fnstcw %[sfcw]\n\t"
		"ldmxcsr %c[omx](%[in])\n\t"
		"fldcw %c[ofcw](%[in])\n\t"
		"fldl %c[ost1](%[in])\n\t"
		"fldl %c[ost0](%[in])\n\t"
		"movdqu %c[ox2](%[in]), %%xmm2\n\t"
		"movdqu %c[ox7](%[in]), %%xmm7\n\t"
		"cmpl $1, %[lvl]\n\t"
		"jb 2f\n\t"
		"vmovdqu %c[oy9](%[in]), %%ymm9\n\t"
		"vmovdqu %c[oy14](%[in]), %%ymm14\n\t"
		"cmpl $2, %[lvl]\n\t"
		"jb 2f\n\t"
		"vmovdqu64 %c[oz5](%[in]), %%zmm5\n\t"
		"vmovdqu64 %c[oz17](%[in]), %%zmm17\n\t"
		"vmovdqu64 %c[oz30](%[in]), %%zmm30\n\t"
		"kmovq %c[ok1](%[in]), %%k1\n\t"
		"kmovq %c[ok6](%[in]), %%k6\n\t"
		"2:\n\t"
		"cmpl $0, (%[word])\n\t"
		"jne 3f\n\t"
		"movl %[nr], %%eax\n\t"
		"movq %[word], %%rdi\n\t"
		"movl %[op], %%esi\n\t"
		"xorl %%edx, %%edx\n\t"
		"xorl %%r10d, %%r10d\n\t"
		"syscall\n\t"
		"incq %[waits]\n\t"
		"jmp 2b\n\t"
		"3:\n\t"
		"movdqu %%xmm2, %c[ox2](%[out])\n\t"
		"movdqu %%xmm7, %c[ox7](%[out])\n\t"
		"cmpl $1, %[lvl]\n\t"
		"jb 4f\n\t"
		"vmovdqu %%ymm9, %c[oy9](%[out])\n\t"
		"vmovdqu %%ymm14, %c[oy14](%[out])\n\t"
		"cmpl $2, %[lvl]\n\t"
		"jb 4f\n\t"
		"vmovdqu64 %%zmm5, %c[oz5](%[out])\n\t"
		"vmovdqu64 %%zmm17, %c[oz17](%[out])\n\t"
		"vmovdqu64 %%zmm30, %c[oz30](%[out])\n\t"
		"kmovq %%k1, %c[ok1](%[out])\n\t"
		"kmovq %%k6, %c[ok6](%[out])\n\t"
		"4:\n\t"
		"fstpl %c[ost0](%[out])\n\t"
		"fstpl %c[ost1](%[out])\n\t"
		"fnstcw %c[ofcw](%[out])\n\t"
		"stmxcsr %c[omx](%[out])\n\t"
		"fldcw %[sfcw]\n\t"
		"ldmxcsr %[smx]\n\t"
		: [waits] "+m" (waits), [smx] "=m" (saved_mxcsr), [sfcw] "=m" (saved_fcw)
		: [in] "r" (in), [out] "r" (out), [lvl] "r" (level),
		  [word] "r" (&release_word), [nr] "i" (SYS_futex), [op] "i" (FUTEX_WAIT_PRIVATE),
		  [ox2] "i" (offsetof(struct vset, xmm2)), [ox7] "i" (offsetof(struct vset, xmm7)),
		  [oy9] "i" (offsetof(struct vset, ymm9)), [oy14] "i" (offsetof(struct vset, ymm14)),
		  [oz5] "i" (offsetof(struct vset, zmm5)), [oz17] "i" (offsetof(struct vset, zmm17)),
		  [oz30] "i" (offsetof(struct vset, zmm30)), [ok1] "i" (offsetof(struct vset, k1)),
		  [ok6] "i" (offsetof(struct vset, k6)), [ost0] "i" (offsetof(struct vset, st0)),
		  [ost1] "i" (offsetof(struct vset, st1)), [omx] "i" (offsetof(struct vset, mxcsr)),
		  [ofcw] "i" (offsetof(struct vset, fcw))
		: "rax", "rcx", "rdx", "rsi", "rdi", "r10", "r11", "memory", "cc",
		  "xmm2", "xmm5", "xmm7", "xmm9", "xmm14", "xmm17", "xmm30", "k1", "k6",
		  "st", "st(1)");
	return waits;
}

/* Thread-specific register values: nothing two threads share. */
static void fill_vset(struct vset *v, int idx)
{
	static const uint16_t pc[3] = { 0, 2, 3 };

	memset(v, 0, sizeof(*v));
	tl_fill(v->xmm2, sizeof(v->xmm2), 0x1000 + idx);
	tl_fill(v->xmm7, sizeof(v->xmm7), 0x2000 + idx);
	tl_fill(v->ymm9, sizeof(v->ymm9), 0x3000 + idx);
	tl_fill(v->ymm14, sizeof(v->ymm14), 0x4000 + idx);
	tl_fill(v->zmm5, sizeof(v->zmm5), 0x5000 + idx);
	tl_fill(v->zmm17, sizeof(v->zmm17), 0x6000 + idx);
	tl_fill(v->zmm30, sizeof(v->zmm30), 0x7000 + idx);
	v->k1 = 0x1234567800000000ULL ^ (uint64_t)(idx + 1) * 0x9e3779b97f4a7c15ULL;
	v->k6 = ~v->k1 ^ ((uint64_t)idx << 8);
	v->st0 = 1.0 / (idx + 3);
	v->st1 = -1e300 * (idx + 1);
	/* Rounding mode and flush-to-zero differ per thread; all exceptions masked. */
	v->mxcsr = 0x1f80 | ((idx & 3) << 13) | ((idx & 4) << 13);
	/* Precision and rounding control differ per thread; all exceptions masked. */
	v->fcw = 0x007f | (pc[idx % 3] << 8) | ((idx / 3 % 4) << 10);
}

static int compare_vset(struct worker *w)
{
	const struct vset *a = &w->in, *b = &w->out;
	char *e = w->err;
	size_t n = sizeof(w->err);

#define CMP(f) \
	if (memcmp(&a->f, &b->f, sizeof(a->f))) \
		return snprintf(e, n, "register %s changed", #f)
	CMP(xmm2);
	CMP(xmm7);
	CMP(st0);
	CMP(st1);
	CMP(mxcsr);
	if ((a->fcw & 0x0f3f) != (b->fcw & 0x0f3f))
		return snprintf(e, n, "x87 control word %#x became %#x", a->fcw, b->fcw);
	if (vlevel >= VL_AVX) {
		CMP(ymm9);
		CMP(ymm14);
	}
	if (vlevel >= VL_AVX512) {
		CMP(zmm5);
		CMP(zmm17);
		CMP(zmm30);
		CMP(k1);
		CMP(k6);
	}
#undef CMP
	return 0;
}

/* SIGUSR1 (the main thread's) plus a set that differs between any two threads. */
static void thread_mask(int idx, sigset_t *set)
{
	static const int pool[] = { SIGHUP, SIGUSR2, SIGPIPE, SIGALRM, SIGWINCH, SIGCHLD };

	sigemptyset(set);
	sigaddset(set, SIGUSR1);
	for (int b = 0; b < 6; b++)
		if (idx & (1 << b))
			sigaddset(set, pool[b]);
	sigaddset(set, SIGRTMIN + 2 + idx % 25);
}

static int check_mask(struct worker *w)
{
	sigset_t want, have;

	thread_mask(w->idx, &want);
	if (pthread_sigmask(SIG_BLOCK, NULL, &have))
		return snprintf(w->err, sizeof(w->err), "pthread_sigmask failed");
	for (int sig = 1; sig <= SIGRTMAX; sig++) {
		if (sig > 31 && sig < SIGRTMIN)
			continue;	/* glibc's own signals */
		if (sigismember(&want, sig) != sigismember(&have, sig))
			return snprintf(w->err, sizeof(w->err), "signal %d is %s blocked", sig,
					sigismember(&have, sig) ? "now" : "no longer");
	}
	return 0;
}

static int check_identity(struct worker *w)
{
	char want[16], have[16] = "";

	if (syscall(SYS_gettid) != w->tid)
		return snprintf(w->err, sizeof(w->err), "TID %d became %ld", w->tid,
				syscall(SYS_gettid));
	if (tls_value != 0xc0ffee0000000000ULL + w->idx * 0x10001ULL)
		return snprintf(w->err, sizeof(w->err), "TLS value is %#llx",
				(unsigned long long)tls_value);
	snprintf(want, sizeof(want), "tag-%d", w->idx);
	if (strcmp(tls_tag, want))
		return snprintf(w->err, sizeof(w->err), "TLS string is '%.20s'", tls_tag);
	snprintf(want, sizeof(want), "t50-w%02d", w->idx);
	pthread_getname_np(pthread_self(), have, sizeof(have));
	if (strcmp(want, have))
		return snprintf(w->err, sizeof(w->err), "name is '%s', expected '%s'", have, want);
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[16];
	sigset_t set;

	thread_mask(w->idx, &set);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	snprintf(name, sizeof(name), "t50-w%02d", w->idx);
	pthread_setname_np(pthread_self(), name);
	tls_value = 0xc0ffee0000000000ULL + w->idx * 0x10001ULL;
	snprintf(tls_tag, sizeof(tls_tag), "tag-%d", w->idx);
	w->tid = syscall(SYS_gettid);
	fill_vset(&w->in, w->idx);
	atomic_fetch_add(&nr_waiting, 1);
	w->waits = hold_registers(&w->in, &w->out, vlevel);
	if (!compare_vset(w) && !check_identity(w))
		check_mask(w);
	return NULL;
}

static int futex_waiters_settled(void)
{
	char path[64], buf[64];
	FILE *f;
	int n = 0;

	for (int i = 0; i < NR_THREADS; i++) {
		snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", workers[i].tid);
		f = fopen(path, "r");
		if (f && fgets(buf, sizeof(buf), f) && atoi(buf) == SYS_futex)
			n++;
		if (f)
			fclose(f);
	}
	return n == NR_THREADS;
}

int main(void)
{
	sigset_t usr1;
	int bad = 0;
	double end;

	tl_init();
	vlevel = vector_level();
	printf("vector level: %s\n", vlevel == VL_AVX512 ? "AVX-512" : vlevel == VL_AVX ? "AVX" :
	       "SSE");
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	/* SIGUSR1 stays blocked in the main thread too: tl_wait_go's sigsuspend
	 * unblocks it atomically, so a go signal sent while the thread is not yet
	 * inside sigsuspend (just restored, waiting for a CPU) is not lost. */
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	for (int i = 0; i < NR_THREADS; i++) {
		workers[i].idx = i;
		if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]))
			tl_fail("pthread_create %d", i);
	}
	end = tl_now() + 20;
	while (atomic_load(&nr_waiting) < NR_THREADS || !futex_waiters_settled()) {
		TL_CHECK(tl_now() < end, "the threads did not all reach their futex wait");
		usleep(2000);
	}
	tl_ready();
	tl_wait_go();
	for (int i = 0; i < NR_THREADS; i++)
		TL_CHECK(!workers[i].err[0] && workers[i].out.mxcsr == 0,
			 "thread %d left its wait before the go signal", i);
	__atomic_store_n(&release_word, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &release_word, FUTEX_WAKE_PRIVATE, NR_THREADS, NULL, NULL, 0);
	for (int i = 0; i < NR_THREADS; i++) {
		pthread_join(workers[i].thread, NULL);
		if (workers[i].err[0]) {
			printf("thread %d (tid %d): %s\n", i, workers[i].tid, workers[i].err);
			bad++;
		}
	}
	TL_CHECK(syscall(SYS_gettid) == getpid(), "main thread's TID changed");
	TL_CHECK(!bad, "%d of %d threads found their state changed", bad, NR_THREADS);
	tl_pass();
}
