/* The program moved between kernels by `make check-xkernel`: it keeps calling the
 * vDSO (so a dump may catch it inside), and after SIGUSR1 checks time, getcpu and
 * getrandom — through pointers looked up before the move, a fresh lookup and glibc —
 * against the system calls of whatever kernel it runs on now. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "../vdso_calls.h"

static volatile sig_atomic_t go;

static void on_go(int sig)
{
	(void)sig;
	go = 1;
}

static const char *check_glibc(void)
{
	struct timespec a, v, b;

	syscall(SYS_clock_gettime, CLOCK_REALTIME, &a);
	clock_gettime(CLOCK_REALTIME, &v);
	syscall(SYS_clock_gettime, CLOCK_REALTIME, &b);
	if (ts_ns(&v) < ts_ns(&a) - 1000000 || ts_ns(&v) > ts_ns(&b) + 1000000)
		return "glibc clock_gettime disagrees with the system call";
	return NULL;
}

int main(void)
{
	struct vdso_fns cached, fresh;
	struct sigaction sa = { .sa_handler = on_go };
	struct utsname before, after;
	struct timespec ts;
	const char *why;
	long loops = 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	sigaction(SIGUSR1, &sa, NULL);
	uname(&before);
	vdso_find(&cached);
	if (!cached.clock_gettime || !cached.time || !cached.getcpu) {
		printf("FAIL: no vDSO functions\n");
		return 1;
	}
	why = vdso_check_all(&cached);
	if (why) {
		printf("FAIL before the move: %s\n", why);
		return 1;
	}
	printf("READY on %s\n", before.release);
	while (!go) {
		cached.clock_gettime(CLOCK_MONOTONIC, &ts);
		if (++loops % 100000 == 0)
			usleep(1000);
	}
	uname(&after);
	printf("now on %s (the vDSO at AT_SYSINFO_EHDR %s getrandom)\n", after.release,
	       vdso_lookup("__vdso_getrandom") ? "lists" : "does not list");
	why = vdso_check_all(&cached);
	if (!why) {
		vdso_find(&fresh);
		why = vdso_check_all(&fresh);
	}
	if (!why)
		why = check_glibc();
	if (why) {
		printf("FAIL after the move: %s\n", why);
		return 1;
	}
	printf("PASS\n");
	return 0;
}
