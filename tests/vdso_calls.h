/* Test helper: find the vDSO's functions through AT_SYSINFO_EHDR (as a program
 * without glibc's help would) and check each against its system call. */
#ifndef VDSO_CALLS_H
#define VDSO_CALLS_H

#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct vdso_fns {
	int (*clock_gettime)(clockid_t, struct timespec *);
	int (*gettimeofday)(struct timeval *, void *);
	time_t (*time)(time_t *);
	int (*clock_getres)(clockid_t, struct timespec *);
	long (*getcpu)(unsigned *, unsigned *, void *);
	ssize_t (*getrandom)(void *, size_t, unsigned, void *, size_t);
};

static inline void *vdso_lookup(const char *name)
{
	const uint8_t *base = (const uint8_t *)getauxval(AT_SYSINFO_EHDR);
	const Elf64_Ehdr *eh = (const void *)base;

	if (!base)
		return NULL;
	for (int i = 0; i < eh->e_shnum; i++) {
		const Elf64_Shdr *sh = (const void *)(base + eh->e_shoff + i * sizeof(*sh));
		const Elf64_Shdr *strs;

		if (sh->sh_type != SHT_DYNSYM)
			continue;
		strs = (const void *)(base + eh->e_shoff + sh->sh_link * sizeof(*sh));
		for (size_t k = 0; k < sh->sh_size / sizeof(Elf64_Sym); k++) {
			const Elf64_Sym *s = (const void *)(base + sh->sh_offset + k * sizeof(*s));

			if (ELF64_ST_TYPE(s->st_info) == STT_FUNC && s->st_value &&
			    !strcmp((const char *)base + strs->sh_offset + s->st_name, name))
				return (void *)(base + s->st_value);
		}
	}
	return NULL;
}

static inline void vdso_find(struct vdso_fns *f)
{
	f->clock_gettime = vdso_lookup("__vdso_clock_gettime");
	f->gettimeofday = vdso_lookup("__vdso_gettimeofday");
	f->time = vdso_lookup("__vdso_time");
	f->clock_getres = vdso_lookup("__vdso_clock_getres");
	f->getcpu = vdso_lookup("__vdso_getcpu");
	f->getrandom = vdso_lookup("__vdso_getrandom");
}

static inline long long ts_ns(const struct timespec *t)
{
	return t->tv_sec * 1000000000LL + t->tv_nsec;
}

/* The vDSO reading of clock `clk` must lie between two system call readings. */
static inline const char *check_clock(int (*fn)(clockid_t, struct timespec *), clockid_t clk)
{
	struct timespec a, v, b;

	syscall(SYS_clock_gettime, clk, &a);
	if (fn(clk, &v))
		return "clock_gettime failed";
	syscall(SYS_clock_gettime, clk, &b);
	if (ts_ns(&v) < ts_ns(&a) - 1000000 || ts_ns(&v) > ts_ns(&b) + 1000000)
		return "clock_gettime disagrees with the system call";
	return NULL;
}

/* Every function against its system call; NULL if all agree, else what failed. */
static inline const char *vdso_check_all(const struct vdso_fns *f)
{
	static const clockid_t clocks[] = { CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME,
					    CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE,
					    CLOCK_MONOTONIC_COARSE };
	struct timespec r1, r2;
	struct timeval tv;
	unsigned cpu = ~0u, node = ~0u;
	const char *why;
	time_t t0, t1, tv_t;
	uint8_t buf[64] = { 0 }, buf2[64] = { 0 };

	for (size_t i = 0; i < sizeof(clocks) / sizeof(clocks[0]); i++)
		if (f->clock_gettime && (why = check_clock(f->clock_gettime, clocks[i])))
			return why;
	if (f->gettimeofday) {
		t0 = syscall(SYS_time, NULL);
		if (f->gettimeofday(&tv, NULL) || tv.tv_sec < t0 || tv.tv_sec > t0 + 1)
			return "gettimeofday disagrees with time()";
	}
	if (f->time) {
		t0 = syscall(SYS_time, NULL);
		tv_t = f->time(NULL);
		t1 = syscall(SYS_time, NULL);
		if (tv_t < t0 || tv_t > t1)
			return "time disagrees with the system call";
	}
	if (f->clock_getres) {
		syscall(SYS_clock_getres, CLOCK_MONOTONIC, &r1);
		if (f->clock_getres(CLOCK_MONOTONIC, &r2) || ts_ns(&r1) != ts_ns(&r2))
			return "clock_getres disagrees with the system call";
	}
	if (f->getcpu) {
		if (f->getcpu(&cpu, &node, NULL) || cpu >= (unsigned)sysconf(_SC_NPROCESSORS_CONF) ||
		    node != 0)
			return "getcpu gave an impossible CPU or node";
	}
	if (f->getrandom) {
		/* Without opaque state the vDSO falls back to the system call itself. */
		if (f->getrandom(buf, sizeof(buf), 0, NULL, 0) != sizeof(buf) ||
		    f->getrandom(buf2, sizeof(buf2), 0, NULL, 0) != sizeof(buf2) ||
		    !memcmp(buf, buf2, sizeof(buf)))
			return "getrandom did not give fresh random bytes";
	}
	return NULL;
}

#endif
