/* rseq across many dumps: two threads increment per-CPU counters in an assembly
 * critical section that spins before its commit, so a freeze nearly always catches
 * them inside it. cryo must resume them at the abort handler; the counters must add
 * up to the commits exactly, and each thread must still be registered. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tlib.h"

#define MAX_CPUS 256
#define NR_THREADS 2
#define SPIN 20000
#define REPEAT 15

struct slot {
	uint64_t count;
	char pad[56];
};

static struct slot counters[MAX_CPUS] __attribute__((aligned(64)));
static atomic_int stop;
static uint64_t commits[NR_THREADS], aborts[NR_THREADS];

static struct rseq *my_rseq(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

/* One increment of counters[cpu]; 0 when committed, 1 when aborted. The critical
 * section is [1, 2): read the CPU, load, spin, store. */
static int percpu_inc(struct rseq *rs, long spin)
{
	int aborted = 0;

	__asm__ volatile(
		"leaq 3f(%%rip), %%rax\n\t"
		"movq %%rax, 8(%[rs])\n\t"
		"1:\n\t"
		"movl 4(%[rs]), %%eax\n\t"
		"andl $255, %%eax\n\t"
		"shlq $6, %%rax\n\t"
		"addq %[ctr], %%rax\n\t"
		"movq (%%rax), %%rdx\n\t"
		"incq %%rdx\n\t"
		"movq %[spin], %%rcx\n\t"
		"5: decq %%rcx\n\t"
		"jnz 5b\n\t"
		"movq %%rdx, (%%rax)\n\t"
		"2:\n\t"
		".pushsection .data.rseq_cs, \"aw\"\n\t"
		".balign 32\n\t"
		"3: .long 0, 0\n\t"
		".quad 1b, 2b - 1b, 4f\n\t"
		".popsection\n\t"
		".pushsection .text.rseq_abort, \"ax\"\n\t"
		".long 0x53053053\n\t"
		"4: movl $1, %[aborted]\n\t"
		"jmp 2b\n\t"
		".popsection\n\t"
		: [aborted] "+r"(aborted)
		: [rs] "r"(rs), [ctr] "r"(counters), [spin] "r"(spin)
		: "rax", "rcx", "rdx", "memory", "cc");
	return aborted;
}

static void *worker(void *arg)
{
	long id = (long)arg;
	struct rseq *rs = my_rseq();
	sigset_t usr1;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	while (!atomic_load(&stop)) {
		if (percpu_inc(rs, SPIN))
			aborts[id]++;
		else
			commits[id]++;
	}
	/* Still registered: registering again with the same area says EBUSY. */
	if (syscall(SYS_rseq, rs, __rseq_size > 32 ? __rseq_size : 32, 0, RSEQ_SIG) != -1 ||
	    errno != EBUSY)
		return (void *)1;
	return NULL;
}

int main(void)
{
	pthread_t th[NR_THREADS];
	uint64_t total = 0, sum = 0, nabort = 0;
	int unregistered = 0;

	tl_init();
	if (!__rseq_size)
		tl_fail("glibc did not register rseq (GLIBC_TUNABLES glibc.pthread.rseq=0?)");
	printf("REPEAT-DUMPS %d\n", REPEAT);
	for (long i = 0; i < NR_THREADS; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	usleep(100000);
	tl_ready();
	tl_wait_go();
	usleep(200000);
	atomic_store(&stop, 1);
	for (int i = 0; i < NR_THREADS; i++) {
		void *rc;

		pthread_join(th[i], &rc);
		unregistered += rc != NULL;
		total += commits[i];
		nabort += aborts[i];
	}
	for (int c = 0; c < MAX_CPUS; c++)
		sum += counters[c].count;
	printf("commits %llu, per-CPU sum %llu, aborts %llu\n", (unsigned long long)total,
	       (unsigned long long)sum, (unsigned long long)nabort);
	TL_CHECK(!unregistered, "%d threads lost their rseq registration", unregistered);
	TL_CHECK(sum == total, "per-CPU counters (%llu) do not match the commits (%llu)",
		 (unsigned long long)sum, (unsigned long long)total);
	TL_CHECK(total > 0, "no commit at all");
	tl_pass();
}
