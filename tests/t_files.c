/* Open files: access modes, offsets, O_APPEND, stateless devices, a directory fd, the
 * cwd, the umask, close-on-exec flags, one open file description behind two fds and
 * fds with gaps in their numbers, all verified from inside after restore. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "tlib.h"

enum {
	FD_SHARED = 3, FD_DIR = 7, FD_RO = 20, FD_WO, FD_RW, FD_APPEND, FD_NULL, FD_ZERO,
	FD_URANDOM, FD_INDEP, FD_SHARED_DUP = 100,
};

struct fd_want {
	int fd;
	const char *path;	/* relative to the cwd, or absolute */
	int accmode;
	bool cloexec;
};

static const struct fd_want fds[] = {
	{ FD_SHARED, "shared.dat", O_RDWR, false },
	{ FD_DIR, "sub", O_RDONLY, true },
	{ FD_RO, "ro.dat", O_RDONLY, true },
	{ FD_WO, "wo.dat", O_WRONLY, false },
	{ FD_RW, "rw.dat", O_RDWR, true },
	{ FD_APPEND, "append.dat", O_WRONLY, false },
	{ FD_NULL, "/dev/null", O_RDWR, false },
	{ FD_ZERO, "/dev/zero", O_RDONLY, true },
	{ FD_URANDOM, "/dev/urandom", O_RDONLY, false },
	{ FD_INDEP, "shared.dat", O_RDWR, false },
	{ FD_SHARED_DUP, "shared.dat", O_RDWR, true },
};

#define NR_FDS (sizeof(fds) / sizeof(fds[0]))
#define RO_LEN 8192
#define RO_POS 3001
#define RW_LEN 8192
#define RW_POS 3000
#define WO_LEN 1000
#define APPEND_LEN 300
#define UMASK 0027

static char cwd[4096];
static ino_t cwd_ino, dir_ino;
static char dir_seen[16];	/* entries listed before the dump, then after */

/* ---- helpers ---- */

static void write_pattern(int fd, uint64_t base, size_t len, uint64_t seed)
{
	uint8_t buf[RO_LEN];

	for (size_t i = 0; i < len; i++)
		buf[i] = tl_pattern(base + i, seed);
	TL_CHECK(write(fd, buf, len) == (ssize_t)len, "write fd %d: %s", fd, strerror(errno));
}

static void make_file(const char *path, size_t len, uint64_t seed)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	TL_CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
	write_pattern(fd, 0, len, seed);
	close(fd);
}

/* Move fd to number want with the wanted close-on-exec flag. */
static void place(int fd, int want, bool cloexec)
{
	TL_CHECK(fd >= 0, "open for fd %d: %s", want, strerror(errno));
	if (fd != want) {
		TL_CHECK(dup3(fd, want, cloexec ? O_CLOEXEC : 0) == want, "dup3 to %d: %s", want,
			 strerror(errno));
		close(fd);
		return;
	}
	TL_CHECK(!fcntl(fd, F_SETFD, cloexec ? FD_CLOEXEC : 0), "F_SETFD: %s", strerror(errno));
}

static off_t pos(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

/* The whole file at path must be len bytes of the pattern (base 0, seed). */
static void check_file(const char *path, size_t len, uint64_t seed)
{
	uint8_t buf[RO_LEN + 1];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	TL_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf));
	close(fd);
	TL_CHECK(n == (ssize_t)len, "%s has %zd bytes, expected %zu", path, n, len);
	for (size_t i = 0; i < len; i++)
		TL_CHECK(buf[i] == tl_pattern(i, seed), "%s differs at byte %zu", path, i);
}

static void check_read(int fd, uint64_t base, size_t len, uint64_t seed)
{
	uint8_t buf[RO_LEN];

	TL_CHECK(read(fd, buf, len) == (ssize_t)len, "read fd %d: %s", fd, strerror(errno));
	for (size_t i = 0; i < len; i++)
		TL_CHECK(buf[i] == tl_pattern(base + i, seed),
			 "fd %d read wrong data at file offset %llu", fd,
			 (unsigned long long)(base + i));
}

/* The open fds must be exactly 0, 1, 2 and those in fds[]. */
static void check_fd_set(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	size_t found = 0;

	TL_CHECK(d, "opendir /proc/self/fd: %s", strerror(errno));
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		bool known = fd <= 2;

		if (de->d_name[0] == '.' || fd == dirfd(d))
			continue;
		for (size_t i = 0; i < NR_FDS; i++)
			if (fds[i].fd == fd) {
				known = true;
				found++;
			}
		TL_CHECK(known, "fd %d is open but should not be", fd);
	}
	closedir(d);
	TL_CHECK(found == NR_FDS, "only %zu of the %zu fds are open", found, NR_FDS);
}

/* Append the entries read from the directory fd's position to seen ("." as '.',
 * ".." as ':', the files by name); only one getdents64 call if once. */
static void read_dir(size_t bufsize, bool once, char *seen, size_t seen_len)
{
	char buf[4096];
	long n;

	while ((n = syscall(SYS_getdents64, FD_DIR, buf, bufsize)) > 0) {
		for (long off = 0; off < n;) {
			struct dirent64 *de = (struct dirent64 *)(buf + off);
			char c = strcmp(de->d_name, "..") ? de->d_name[0] : ':';

			off += de->d_reclen;
			TL_CHECK((c == ':' || strlen(de->d_name) == 1) && strchr(".:abc", c) &&
				 strlen(seen) < seen_len - 1, "unexpected directory entry '%s'",
				 de->d_name);
			strncat(seen, &c, 1);
		}
		if (once)
			return;
	}
	TL_CHECK(n == 0, "getdents64: %s", strerror(errno));
}

/* ---- setup ---- */

static void setup_dirs(const char *work)
{
	char base[4096];

	snprintf(base, sizeof(base), "%s/files-%d", work, getpid());
	TL_CHECK(!mkdir(base, 0755) && !chdir(base), "mkdir/chdir %s: %s", base, strerror(errno));
	TL_CHECK(!mkdir("cwd", 0755) && !chdir("cwd"), "mkdir/chdir cwd: %s", strerror(errno));
	TL_CHECK(!mkdir("sub", 0755), "mkdir sub: %s", strerror(errno));
	make_file("sub/a", 10, 71);
	make_file("sub/b", 20, 72);
	make_file("sub/c", 30, 73);
	TL_CHECK(getcwd(cwd, sizeof(cwd)), "getcwd: %s", strerror(errno));
}

static void setup_files(void)
{
	int fd;

	make_file("ro.dat", RO_LEN, 61);
	make_file("rw.dat", RW_LEN, 63);
	make_file("shared.dat", 4096, 66);
	place(open("shared.dat", O_RDWR), FD_SHARED, false);
	TL_CHECK(lseek(FD_SHARED, 777, SEEK_SET) == 777, "lseek: %s", strerror(errno));
	TL_CHECK(dup3(FD_SHARED, FD_SHARED_DUP, O_CLOEXEC) == FD_SHARED_DUP, "dup3: %s",
		 strerror(errno));
	place(open("sub", O_RDONLY | O_DIRECTORY), FD_DIR, true);
	read_dir(64, true, dir_seen, sizeof(dir_seen));
	TL_CHECK(strlen(dir_seen) > 0 && strlen(dir_seen) < 5,
		 "setup: a short getdents64 read %zu of 5 entries", strlen(dir_seen));
	place(open("ro.dat", O_RDONLY), FD_RO, true);
	check_read(FD_RO, 0, RO_POS, 61);
	place(open("wo.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644), FD_WO, false);
	write_pattern(FD_WO, 0, WO_LEN, 62);
	place(open("rw.dat", O_RDWR), FD_RW, true);
	TL_CHECK(lseek(FD_RW, RW_POS, SEEK_SET) == RW_POS, "lseek: %s", strerror(errno));
	fd = open("append.dat", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	place(fd, FD_APPEND, false);
	write_pattern(FD_APPEND, 0, APPEND_LEN, 65);
	TL_CHECK(lseek(FD_APPEND, 10, SEEK_SET) == 10, "lseek: %s", strerror(errno));
	place(open("/dev/null", O_RDWR), FD_NULL, false);
	place(open("/dev/zero", O_RDONLY), FD_ZERO, true);
	place(open("/dev/urandom", O_RDONLY), FD_URANDOM, false);
	place(open("shared.dat", O_RDWR), FD_INDEP, false);
	TL_CHECK(lseek(FD_INDEP, 55, SEEK_SET) == 55, "lseek: %s", strerror(errno));
}

static void record_inodes(void)
{
	struct stat st;

	TL_CHECK(!stat(".", &st), "stat .: %s", strerror(errno));
	cwd_ino = st.st_ino;
	TL_CHECK(!fstat(FD_DIR, &st), "fstat: %s", strerror(errno));
	dir_ino = st.st_ino;
}

/* ---- checks after restore ---- */

/* Every fd: same file (by path), access mode and close-on-exec flag. */
static void check_fd_table(void)
{
	for (size_t i = 0; i < NR_FDS; i++) {
		const struct fd_want *w = &fds[i];
		char link[64], target[4096], want[8192];
		int fl = fcntl(w->fd, F_GETFL), fdfl = fcntl(w->fd, F_GETFD);
		ssize_t n;

		TL_CHECK(fl >= 0 && fdfl >= 0, "fd %d is not open: %s", w->fd, strerror(errno));
		TL_CHECK((fl & O_ACCMODE) == w->accmode, "fd %d has access mode %d, expected %d",
			 w->fd, fl & O_ACCMODE, w->accmode);
		TL_CHECK(!!(fdfl & FD_CLOEXEC) == w->cloexec, "fd %d: FD_CLOEXEC is %s", w->fd,
			 (fdfl & FD_CLOEXEC) ? "set" : "clear");
		snprintf(link, sizeof(link), "/proc/self/fd/%d", w->fd);
		n = readlink(link, target, sizeof(target) - 1);
		TL_CHECK(n > 0, "readlink %s: %s", link, strerror(errno));
		target[n] = 0;
		if (w->path[0] == '/')
			snprintf(want, sizeof(want), "%s", w->path);
		else
			snprintf(want, sizeof(want), "%s/%s", cwd, w->path);
		TL_CHECK(!strcmp(target, want), "fd %d is %s, expected %s", w->fd, target, want);
	}
	TL_CHECK(fcntl(FD_APPEND, F_GETFL) & O_APPEND, "fd %d lost O_APPEND", FD_APPEND);
	TL_CHECK(!(fcntl(FD_WO, F_GETFL) & O_APPEND), "fd %d gained O_APPEND", FD_WO);
}

/* rw.dat: its pattern, with the 50 bytes written after restore at RW_POS + 100. */
static void check_rw_file(void)
{
	uint8_t buf[RW_LEN];
	int fd = open("rw.dat", O_RDONLY);

	TL_CHECK(fd >= 0 && read(fd, buf, RW_LEN) == RW_LEN, "read rw.dat: %s", strerror(errno));
	close(fd);
	for (size_t i = 0; i < RW_LEN; i++) {
		bool written = i >= RW_POS + 100 && i < RW_POS + 150;

		TL_CHECK(buf[i] == tl_pattern(i, written ? 64 : 63),
			 "rw.dat differs at byte %zu: the write went to the wrong place", i);
	}
}

static void check_offsets(void)
{
	TL_CHECK(pos(FD_RO) == RO_POS, "read-only fd at %lld, expected %d", (long long)pos(FD_RO),
		 RO_POS);
	check_read(FD_RO, RO_POS, 500, 61);
	TL_CHECK(write(FD_RO, "x", 1) < 0 && errno == EBADF, "a read-only fd is writable");
	TL_CHECK(pos(FD_WO) == WO_LEN, "write-only fd at %lld", (long long)pos(FD_WO));
	write_pattern(FD_WO, WO_LEN, 500, 62);
	check_file("wo.dat", WO_LEN + 500, 62);
	TL_CHECK(pos(FD_RW) == RW_POS, "read-write fd at %lld", (long long)pos(FD_RW));
	check_read(FD_RW, RW_POS, 100, 63);
	write_pattern(FD_RW, RW_POS + 100, 50, 64);
	TL_CHECK(pos(FD_RW) == RW_POS + 150, "read-write fd at %lld after write",
		 (long long)pos(FD_RW));
	check_rw_file();
	TL_CHECK(pos(FD_APPEND) == 10, "O_APPEND fd at %lld, expected 10",
		 (long long)pos(FD_APPEND));
	write_pattern(FD_APPEND, APPEND_LEN, 200, 65);
	check_file("append.dat", APPEND_LEN + 200, 65);
}

static void check_shared(void)
{
	TL_CHECK(pos(FD_SHARED) == 777 && pos(FD_SHARED_DUP) == 777,
		 "shared fds at %lld and %lld, expected 777", (long long)pos(FD_SHARED),
		 (long long)pos(FD_SHARED_DUP));
	TL_CHECK(pos(FD_INDEP) == 55, "independent fd at %lld, expected 55",
		 (long long)pos(FD_INDEP));
	TL_CHECK(lseek(FD_SHARED, 1234, SEEK_SET) == 1234, "lseek: %s", strerror(errno));
	TL_CHECK(pos(FD_SHARED_DUP) == 1234, "fds %d and %d no longer share their offset",
		 FD_SHARED, FD_SHARED_DUP);
	TL_CHECK(pos(FD_INDEP) == 55, "fd %d shares an offset it should not", FD_INDEP);
	TL_CHECK(lseek(FD_SHARED_DUP, 99, SEEK_SET) == 99 && pos(FD_SHARED) == 99,
		 "fds %d and %d no longer share their offset", FD_SHARED_DUP, FD_SHARED);
}

static void check_dev(int fd, unsigned int maj, unsigned int min)
{
	struct stat st;

	TL_CHECK(!fstat(fd, &st) && S_ISCHR(st.st_mode), "fd %d is not a device", fd);
	TL_CHECK(major(st.st_rdev) == maj && minor(st.st_rdev) == min,
		 "fd %d is device %u:%u, expected %u:%u", fd, major(st.st_rdev),
		 minor(st.st_rdev), maj, min);
}

static void check_devices(void)
{
	uint8_t a[4096], b[64];
	bool zero = true;
	char c;

	check_dev(FD_NULL, 1, 3);
	check_dev(FD_ZERO, 1, 5);
	check_dev(FD_URANDOM, 1, 9);
	TL_CHECK(write(FD_NULL, "abc", 3) == 3 && read(FD_NULL, &c, 1) == 0,
		 "/dev/null does not behave as /dev/null");
	memset(a, 0xaa, sizeof(a));
	TL_CHECK(read(FD_ZERO, a, sizeof(a)) == sizeof(a), "read /dev/zero: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(a); i++)
		TL_CHECK(!a[i], "/dev/zero gave a non-zero byte");
	TL_CHECK(read(FD_URANDOM, a, 64) == 64 && read(FD_URANDOM, b, 64) == 64,
		 "read /dev/urandom: %s", strerror(errno));
	for (size_t i = 0; i < 64; i++)
		zero &= !a[i];
	TL_CHECK(!zero && memcmp(a, b, 64), "/dev/urandom gives no random data");
}

static void check_listed(const char *seen, const char *how)
{
	TL_CHECK(strlen(seen) == 5 && strchr(seen, '.') && strchr(seen, ':') && strchr(seen, 'a') &&
		 strchr(seen, 'b') && strchr(seen, 'c'), "%s, the directory lists '%s' (. as '.', "
		 ".. as ':'), expected . .. a b c once each", how, seen);
}

/* The listing started before the dump continues where it was, and a new one from
 * the start lists everything once. */
static void check_dir_listing(void)
{
	char seen[16] = "";

	read_dir(4096, false, dir_seen, sizeof(dir_seen));
	check_listed(dir_seen, "continued after restore");
	TL_CHECK(lseek(FD_DIR, 0, SEEK_SET) == 0, "lseek dir: %s", strerror(errno));
	read_dir(4096, false, seen, sizeof(seen));
	check_listed(seen, "read again from the start");
}

static void check_dirs(void)
{
	char now[4096];
	struct stat st;
	int fd;

	TL_CHECK(getcwd(now, sizeof(now)) && !strcmp(now, cwd), "cwd is %s, expected %s", now,
		 cwd);
	TL_CHECK(!stat(".", &st) && st.st_ino == cwd_ino, "the cwd is another directory");
	TL_CHECK(!fstat(FD_DIR, &st) && S_ISDIR(st.st_mode) && st.st_ino == dir_ino,
		 "fd %d is not the directory it was", FD_DIR);
	check_dir_listing();
	fd = openat(FD_DIR, "b", O_RDONLY);
	TL_CHECK(fd >= 0, "openat(dir fd, b): %s", strerror(errno));
	close(fd);
	TL_CHECK(!fchdir(FD_DIR), "fchdir: %s", strerror(errno));
	TL_CHECK(getcwd(now, sizeof(now)) && !strcmp(strrchr(now, '/'), "/sub"),
		 "fchdir to the directory fd went to %s", now);
	check_file("c", 30, 73);
	TL_CHECK(!chdir(cwd), "chdir back: %s", strerror(errno));
}

static void check_umask(void)
{
	mode_t old = umask(0);
	struct stat st;
	int fd;

	umask(old);
	TL_CHECK(old == UMASK, "umask is %03o, expected %03o", old, UMASK);
	fd = open("umask.dat", O_WRONLY | O_CREAT | O_EXCL, 0666);
	TL_CHECK(fd >= 0 && !fstat(fd, &st), "create umask.dat: %s", strerror(errno));
	TL_CHECK((st.st_mode & 0777) == (0666 & ~UMASK), "a new file got mode %03o",
		 st.st_mode & 0777);
	close(fd);
}

int main(int argc, char **argv)
{
	tl_init();
	TL_CHECK(argc > 1, "usage: t_files WORKDIR");
	setup_dirs(argv[1]);
	setup_files();
	umask(UMASK);
	record_inodes();
	check_fd_set();
	check_fd_table();
	tl_ready();
	tl_wait_go();
	check_fd_set();
	check_fd_table();
	check_shared();
	check_offsets();
	check_devices();
	check_dirs();
	check_umask();
	tl_pass();
}
