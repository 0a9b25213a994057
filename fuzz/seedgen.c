/* Seed generator for the fuzz corpora: copies this process's own /proc files, the
 * fdinfo of several kinds of fds, its POSIX timers and the running vDSO into
 * DIR/<target>/. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *outdir;

static int write_seed(const char *target, const char *name, const void *buf, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	f = fopen(path, "w");
	if (!f || fwrite(buf, 1, len, f) != len) {
		perror(path);
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f) ? -1 : 0;
}

/* A whole /proc file (they report size 0, so read until EOF). */
static char *slurp(const char *path, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY);
	ssize_t r;

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while ((r = read(fd, buf + n, cap - n)) > 0) {
		n += r;
		if (n == cap) {
			char *nb = realloc(buf, cap *= 2);

			if (!nb)
				break;
			buf = nb;
		}
	}
	close(fd);
	*len = n;
	return buf;
}

static int copy_proc(const char *target, const char *name, const char *path)
{
	size_t len;
	char *buf = slurp(path, &len);
	int rc;

	if (!buf)
		return 0;	/* e.g. /proc/1 hidden: not an error */
	rc = write_seed(target, name, buf, len);
	free(buf);
	return rc;
}

static int fdinfo_seed(const char *name, int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	return copy_proc("fdinfo", name, path);
}

static int fdinfo_seeds(void)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int pfd[2], fd, ep, rc = 0;
	sigset_t mask;

	fd = open("/proc/self/exe", O_RDONLY);
	lseek(fd, 4321, SEEK_SET);
	rc |= fdinfo_seed("regular", fd);
	rc |= fdinfo_seed("directory", open("/", O_RDONLY | O_DIRECTORY));
	if (!pipe(pfd))
		rc |= fdinfo_seed("pipe", pfd[1]);
	fd = eventfd(3, EFD_NONBLOCK);
	rc |= fdinfo_seed("eventfd", fd);
	ep = epoll_create1(EPOLL_CLOEXEC);
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	rc |= fdinfo_seed("epoll", ep);
	fd = inotify_init1(0);
	inotify_add_watch(fd, "/", IN_CREATE);
	rc |= fdinfo_seed("inotify", fd);
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR2);
	rc |= fdinfo_seed("signalfd", signalfd(-1, &mask, 0));
	return rc;
}

/* One timer of each notification kind, then /proc/self/timers. */
static int timers_seed(void)
{
	struct sigevent ev;
	timer_t t;

	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = SIGUSR1;
	ev.sigev_value.sival_ptr = &ev;
	timer_create(CLOCK_MONOTONIC, &ev, &t);
	ev.sigev_notify = SIGEV_NONE;
	timer_create(CLOCK_REALTIME, &ev, &t);
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev._sigev_un._tid = syscall(SYS_gettid);
	ev.sigev_signo = SIGRTMIN + 1;
	timer_create(CLOCK_PROCESS_CPUTIME_ID, &ev, &t);
	return copy_proc("timers", "self-timers", "/proc/self/timers");
}

/* The running vDSO: its address from the aux vector, its size from our maps. */
static int vdso_seed(void)
{
	uintptr_t base = getauxval(AT_SYSINFO_EHDR);
	size_t len;
	char *maps = slurp("/proc/self/maps", &len), *line;
	unsigned long start, end;
	int rc = -1;

	if (!maps || !base)
		return -1;
	maps[len ? len - 1 : 0] = 0;
	for (line = strtok(maps, "\n"); line; line = strtok(NULL, "\n"))
		if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &start, &end) == 2 &&
		    start == base)
			rc = write_seed("vdso_elf", "running-vdso", (void *)base, end - start) |
			     write_seed("unwind", "running-vdso", (void *)base, end - start);
	free(maps);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: seedgen DIR\n");
		return 2;
	}
	outdir = argv[1];
	mkdir(outdir, 0755);
	rc |= copy_proc("smaps", "self-smaps", "/proc/self/smaps");
	rc |= copy_proc("smaps", "self-maps", "/proc/self/maps");
	rc |= copy_proc("smaps", "init-smaps", "/proc/1/smaps");
	rc |= copy_proc("stat", "self-stat", "/proc/self/stat");
	rc |= copy_proc("stat", "init-stat", "/proc/1/stat");
	rc |= copy_proc("stat", "kthreadd-stat", "/proc/2/stat");
	rc |= copy_proc("status", "self-status", "/proc/self/status");
	rc |= copy_proc("status", "init-status", "/proc/1/status");
	rc |= copy_proc("status", "kthreadd-status", "/proc/2/status");
	rc |= fdinfo_seeds();
	rc |= timers_seed();
	rc |= vdso_seed();
	return rc ? 1 : 0;
}
