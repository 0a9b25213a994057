/* Forced vDSO proxy on this kernel: every vDSO function, called through pointers
 * looked up before the dump (as glibc caches them), through a fresh AT_SYSINFO_EHDR
 * lookup and through glibc, agrees with its system call before and after restore. */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "tlib.h"
#include "vdso_calls.h"

/* Where /proc/self/maps says [vdso] is. */
static unsigned long mapped_vdso(void)
{
	char line[512];
	unsigned long start = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]"))
			sscanf(line, "%lx", &start);
	if (f)
		fclose(f);
	return start;
}

static const char *check_glibc(void)
{
	struct timespec a, v, b;
	struct timeval tv;
	time_t t0;

	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &a);
	clock_gettime(CLOCK_MONOTONIC, &v);
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &b);
	if (ts_ns(&v) < ts_ns(&a) || ts_ns(&v) > ts_ns(&b))
		return "glibc clock_gettime disagrees with the system call";
	t0 = syscall(SYS_time, NULL);
	gettimeofday(&tv, NULL);
	if (tv.tv_sec < t0 || tv.tv_sec > t0 + 1)
		return "glibc gettimeofday disagrees with time()";
	if (time(NULL) < t0)
		return "glibc time went backwards";
	return NULL;
}

int main(void)
{
	struct vdso_fns cached, fresh;
	const char *why;

	tl_init();
	vdso_find(&cached);
	TL_CHECK(cached.clock_gettime && cached.gettimeofday && cached.time &&
		 cached.clock_getres && cached.getcpu, "the vDSO lacks a standard function");
	why = vdso_check_all(&cached);
	TL_CHECK(!why, "before the dump: %s", why);
	printf("RESTORE-ARG --vdso=proxy\n");
	tl_ready();
	tl_wait_go();
	printf("[vdso] at 0x%lx, AT_SYSINFO_EHDR 0x%lx: %s\n", mapped_vdso(),
	       getauxval(AT_SYSINFO_EHDR),
	       mapped_vdso() != getauxval(AT_SYSINFO_EHDR) ? "proxy in place" : "original vDSO");
	why = vdso_check_all(&cached);
	TL_CHECK(!why, "through cached pointers: %s", why);
	vdso_find(&fresh);
	why = vdso_check_all(&fresh);
	TL_CHECK(!why, "through a fresh lookup: %s", why);
	why = check_glibc();
	TL_CHECK(!why, "%s", why);
	tl_pass();
}
