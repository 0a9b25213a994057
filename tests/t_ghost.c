/* Deleted files still open or mapped (ghosts): a sparse 64 MiB file with three data
 * runs and holes between them, open three times (read-write at an offset, read-only,
 * write-only with O_APPEND) and mapped shared; a second deleted file only mapped
 * private. After restore, from inside: the same data, size, holes, mode, positions
 * and flags, each fd its own open file description of one file, still unlinked (its
 * link ends in "(deleted)", with its name), and writes through an fd visible in the
 * shared mapping and back. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "tlib.h"

#define BIG_SIZE (64ULL << 20)
#define MODE 0640
#define MAPPED_LEN 20000
#define POS_RW 5000
#define POS_RO 123

enum { FD_RW = 10, FD_RO, FD_APPEND };

/* Data runs of the sparse file: offset, length, seed. */
static const struct { uint64_t off; size_t len; uint64_t seed; } runs[] = {
	{ 0, 8192, 11 }, { 1 << 20, 4096, 12 }, { BIG_SIZE - 6000, 6000, 13 },
};

static char big_path[4096], mapped_path[4096];
static uint8_t *shared_map, *private_map;
static struct stat big_st;

static void put(int fd, const void *buf, size_t len, uint64_t off)
{
	TL_CHECK(pwrite(fd, buf, len, off) == (ssize_t)len, "pwrite: %s", strerror(errno));
}

static void make_big(void)
{
	static uint8_t buf[8192];
	int fd = open(big_path, O_RDWR | O_CREAT | O_EXCL, 0600);

	TL_CHECK(fd >= 0, "create %s: %s", big_path, strerror(errno));
	TL_CHECK(!ftruncate(fd, BIG_SIZE), "ftruncate: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		tl_fill(buf, runs[i].len, runs[i].seed);
		put(fd, buf, runs[i].len, runs[i].off);
	}
	TL_CHECK(!fchmod(fd, MODE), "fchmod: %s", strerror(errno));
	TL_CHECK(dup2(fd, FD_RW) == FD_RW, "dup2");
	close(fd);
	TL_CHECK(lseek(FD_RW, POS_RW, SEEK_SET) == POS_RW, "lseek");
	TL_CHECK(dup2(open(big_path, O_RDONLY), FD_RO) == FD_RO, "open ro");
	TL_CHECK(lseek(FD_RO, POS_RO, SEEK_SET) == POS_RO, "lseek");
	TL_CHECK(dup2(open(big_path, O_WRONLY | O_APPEND), FD_APPEND) == FD_APPEND, "open app");
	shared_map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, FD_RW, 0);
	TL_CHECK(shared_map != MAP_FAILED, "mmap shared: %s", strerror(errno));
	TL_CHECK(!fstat(FD_RW, &big_st), "fstat");
	TL_CHECK(!unlink(big_path), "unlink: %s", strerror(errno));
}

static void make_mapped(void)
{
	static uint8_t buf[MAPPED_LEN];
	int fd = open(mapped_path, O_RDWR | O_CREAT | O_EXCL, 0644);

	TL_CHECK(fd >= 0, "create %s: %s", mapped_path, strerror(errno));
	tl_fill(buf, sizeof(buf), 21);
	put(fd, buf, sizeof(buf), 0);
	private_map = mmap(NULL, MAPPED_LEN, PROT_READ, MAP_PRIVATE, fd, 0);
	TL_CHECK(private_map != MAP_FAILED, "mmap private: %s", strerror(errno));
	close(fd);
	TL_CHECK(!unlink(mapped_path), "unlink: %s", strerror(errno));
}

static void check_link(int fd, const char *path)
{
	char self[64], link[4200], want[4200];
	ssize_t n;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	n = readlink(self, link, sizeof(link) - 1);
	TL_CHECK(n > 0, "readlink fd %d: %s", fd, strerror(errno));
	link[n] = 0;
	snprintf(want, sizeof(want), "%s (deleted)", path);
	TL_CHECK(!strcmp(link, want), "fd %d links to '%s', not '%s'", fd, link, want);
}

static void check_fd(int fd, int accmode, bool append, off_t pos)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	TL_CHECK(!fstat(fd, &st), "fstat %d", fd);
	TL_CHECK(st.st_nlink == 0, "fd %d: the file has %lu links", fd, (unsigned long)st.st_nlink);
	TL_CHECK((uint64_t)st.st_size == BIG_SIZE, "fd %d: size %lld", fd, (long long)st.st_size);
	TL_CHECK((st.st_mode & 07777) == MODE, "fd %d: mode %o", fd, st.st_mode & 07777);
	TL_CHECK(st.st_uid == big_st.st_uid && st.st_gid == big_st.st_gid, "fd %d: owner", fd);
	TL_CHECK((fl & O_ACCMODE) == accmode, "fd %d: access mode %d", fd, fl & O_ACCMODE);
	TL_CHECK(!!(fl & O_APPEND) == append, "fd %d: O_APPEND %d", fd, !!(fl & O_APPEND));
	TL_CHECK(lseek(fd, 0, SEEK_CUR) == pos, "fd %d: position %lld, not %lld", fd,
		 (long long)lseek(fd, 0, SEEK_CUR), (long long)pos);
	check_link(fd, big_path);
}

static void check_data(void)
{
	static uint8_t buf[8192];

	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		TL_CHECK(pread(FD_RO, buf, runs[i].len, runs[i].off) == (ssize_t)runs[i].len,
			 "pread run %zu", i);
		TL_CHECK(tl_verify(buf, runs[i].len, runs[i].seed) < 0, "run %zu differs at %ld",
			 i, tl_verify(buf, runs[i].len, runs[i].seed));
	}
	/* Holes are holes: the first ends where the first run does. */
	TL_CHECK(lseek(FD_RW, 0, SEEK_HOLE) == 8192, "first hole at %lld",
		 (long long)lseek(FD_RW, 0, SEEK_HOLE));
	TL_CHECK(lseek(FD_RW, 8192, SEEK_DATA) == 1 << 20, "second run at %lld",
		 (long long)lseek(FD_RW, 8192, SEEK_DATA));
	TL_CHECK(lseek(FD_RW, POS_RW, SEEK_SET) == POS_RW, "lseek back");
	TL_CHECK(tl_verify(shared_map, 8192, 11) < 0, "shared mapping differs");
	TL_CHECK(tl_verify(private_map, MAPPED_LEN, 21) < 0, "private mapping differs at %ld",
		 tl_verify(private_map, MAPPED_LEN, 21));
}

/* One file, three open file descriptions, one shared mapping of it. */
static void check_one_file(void)
{
	pid_t me = getpid();
	struct stat a, b;
	uint8_t c = 0x5a;

	TL_CHECK(syscall(SYS_kcmp, me, me, KCMP_FILE, FD_RW, FD_RO) != 0, "fds share a file");
	TL_CHECK(!fstat(FD_RW, &a) && !fstat(FD_APPEND, &b) && a.st_ino == b.st_ino &&
		 a.st_dev == b.st_dev, "the fds are not one file");
	put(FD_RW, &c, 1, 100);
	TL_CHECK(shared_map[100] == 0x5a, "a write through the fd is not in the mapping");
	shared_map[200] = 0xa5;
	TL_CHECK(pread(FD_RO, &c, 1, 200) == 1 && c == 0xa5, "a write to the mapping is not "
		 "seen through the fd");
	TL_CHECK(write(FD_APPEND, &c, 1) == 1, "append");
	TL_CHECK(lseek(FD_RO, 0, SEEK_END) == (off_t)BIG_SIZE + 1, "append went elsewhere");
}

int main(int argc, char **argv)
{
	const char *work = argc > 1 ? argv[1] : "/tmp";

	tl_init();
	snprintf(big_path, sizeof(big_path), "%s/ghost-%d.dat", work, getpid());
	snprintf(mapped_path, sizeof(mapped_path), "%s/ghost-mapped-%d.dat", work, getpid());
	make_big();
	make_mapped();
	tl_ready();
	tl_wait_go();
	check_fd(FD_RW, O_RDWR, false, POS_RW);
	check_fd(FD_RO, O_RDONLY, false, POS_RO);
	check_fd(FD_APPEND, O_WRONLY, true, 0);
	check_data();
	check_one_file();
	TL_CHECK(access(big_path, F_OK) && errno == ENOENT, "%s exists again", big_path);
	TL_CHECK(access(mapped_path, F_OK) && errno == ENOENT, "%s exists again", mapped_path);
	tl_pass();
}
