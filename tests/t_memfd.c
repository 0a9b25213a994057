/* memfds: A (sealing allowed, sealed against shrinking and growing) open at an
 * offset, mapped shared and private (one page of that written), shared with a child
 * made by fork; B sealed against writing and sealed, mapped read-only; C without
 * sealing, only mapped (its fd closed); Z, shared anonymous memory also held as an fd
 * (through /proc/self/map_files). After restore, from inside: names (the fd link and
 * the mapping's), sizes, contents, seals, the offsets, writes through the fd visible
 * in the mapping and back, the private page kept, the child holding the same open
 * file description and mapping the same memfd. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "tlib.h"

#define A_SIZE 12345
#define A_MAP 16384
#define A_POS 777
#define B_SIZE 8192
#define C_SIZE 4096
#define A_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)
#define B_SEALS (F_SEAL_WRITE | F_SEAL_SEAL)

enum { FD_A = 10, FD_B = 11, FD_Z = 12 };

#define Z_SIZE 8192
#define Z_POS 4444

static uint8_t *map_a, *map_b, *map_c, *map_z, *priv_a;
static pid_t child;

static int make(const char *name, unsigned flags, size_t size, uint64_t seed, int want)
{
	static uint8_t buf[A_SIZE];
	int fd = memfd_create(name, flags);

	TL_CHECK(fd >= 0, "memfd_create %s: %s", name, strerror(errno));
	tl_fill(buf, size, seed);
	TL_CHECK(write(fd, buf, size) == (ssize_t)size, "write %s", name);
	if (want >= 0) {
		TL_CHECK(dup3(fd, want, flags & MFD_CLOEXEC ? O_CLOEXEC : 0) == want, "dup3");
		close(fd);
		fd = want;
	}
	return fd;
}

static void map_files_path(pid_t pid, const void *m, size_t len, char *buf, size_t n);

static void setup(void)
{
	char path[128];
	int c;

	make("cryo-a", MFD_ALLOW_SEALING, A_SIZE, 1, FD_A);
	TL_CHECK(!fcntl(FD_A, F_ADD_SEALS, A_SEALS), "seal a: %s", strerror(errno));
	TL_CHECK(lseek(FD_A, A_POS, SEEK_SET) == A_POS, "lseek a");
	map_a = mmap(NULL, A_MAP, PROT_READ | PROT_WRITE, MAP_SHARED, FD_A, 0);
	TL_CHECK(map_a != MAP_FAILED, "mmap a: %s", strerror(errno));
	priv_a = mmap(NULL, A_MAP, PROT_READ | PROT_WRITE, MAP_PRIVATE, FD_A, 0);
	TL_CHECK(priv_a != MAP_FAILED, "mmap a private: %s", strerror(errno));
	memset(priv_a + 8192, 0xee, 4096);

	make("cryo-b", MFD_ALLOW_SEALING | MFD_CLOEXEC, B_SIZE, 2, FD_B);
	TL_CHECK(!fcntl(FD_B, F_ADD_SEALS, B_SEALS), "seal b: %s", strerror(errno));
	map_b = mmap(NULL, B_SIZE, PROT_READ, MAP_SHARED, FD_B, 0);
	TL_CHECK(map_b != MAP_FAILED, "mmap b: %s", strerror(errno));

	c = make("cryo-c", MFD_CLOEXEC, C_SIZE, 3, -1);
	map_c = mmap(NULL, C_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, c, 0);
	TL_CHECK(map_c != MAP_FAILED, "mmap c: %s", strerror(errno));
	close(c);

	map_z = mmap(NULL, Z_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	TL_CHECK(map_z != MAP_FAILED, "mmap z: %s", strerror(errno));
	tl_fill(map_z, Z_SIZE, 4);
	map_files_path(getpid(), map_z, Z_SIZE, path, sizeof(path));
	TL_CHECK(dup2(open(path, O_RDWR), FD_Z) == FD_Z, "open %s: %s", path, strerror(errno));
	TL_CHECK(lseek(FD_Z, Z_POS, SEEK_SET) == Z_POS, "lseek z");
}

static void check_link(const char *self, const char *want)
{
	char link[256];
	ssize_t n = readlink(self, link, sizeof(link) - 1);

	TL_CHECK(n > 0, "readlink %s: %s", self, strerror(errno));
	link[n] = 0;
	TL_CHECK(!strcmp(link, want), "%s links to '%s', not '%s'", self, link, want);
}

static void map_files_path(pid_t pid, const void *m, size_t len, char *buf, size_t n)
{
	snprintf(buf, n, "/proc/%d/map_files/%lx-%lx", pid, (unsigned long)m,
		 (unsigned long)m + len);
}

static void check_a(void)
{
	static uint8_t buf[A_SIZE];
	struct stat st;
	uint8_t c = 0x77;
	int fl = fcntl(FD_A, F_GETFD);

	check_link("/proc/self/fd/10", "/memfd:cryo-a (deleted)");
	TL_CHECK(!fstat(FD_A, &st) && st.st_size == A_SIZE, "a: size %lld", (long long)st.st_size);
	TL_CHECK(fcntl(FD_A, F_GET_SEALS) == A_SEALS, "a: seals 0x%x", fcntl(FD_A, F_GET_SEALS));
	TL_CHECK(fl >= 0 && !(fl & FD_CLOEXEC), "a: close-on-exec");
	TL_CHECK(lseek(FD_A, 0, SEEK_CUR) == A_POS, "a: position %lld",
		 (long long)lseek(FD_A, 0, SEEK_CUR));
	TL_CHECK(pread(FD_A, buf, A_SIZE, 0) == A_SIZE && tl_verify(buf, A_SIZE, 1) < 0,
		 "a: contents differ");
	TL_CHECK(tl_verify(map_a, A_SIZE, 1) < 0, "a: mapping differs");
	TL_CHECK(pwrite(FD_A, &c, 1, 5000) == 1 && map_a[5000] == 0x77,
		 "a: a write through the fd is not in the mapping");
	map_a[6000] = 0x66;
	TL_CHECK(pread(FD_A, &c, 1, 6000) == 1 && c == 0x66,
		 "a: a write to the mapping is not seen through the fd");
	TL_CHECK(ftruncate(FD_A, 100) && errno == EPERM, "a: shrinking is allowed");
}

/* The private mapping: its own page, the memfd's contents elsewhere. */
static void check_a_private(void)
{
	char path[128];

	TL_CHECK(tl_verify(priv_a, 8192, 1) < 0, "a private: contents differ");
	for (int i = 0; i < 4096; i++)
		TL_CHECK(priv_a[8192 + i] == 0xee, "a private: its written page differs at %d", i);
	map_files_path(getpid(), priv_a, A_MAP, path, sizeof(path));
	check_link(path, "/memfd:cryo-a (deleted)");
}

static void check_b(void)
{
	uint8_t c = 0;
	int fl = fcntl(FD_B, F_GETFD);

	check_link("/proc/self/fd/11", "/memfd:cryo-b (deleted)");
	TL_CHECK(fcntl(FD_B, F_GET_SEALS) == B_SEALS, "b: seals 0x%x", fcntl(FD_B, F_GET_SEALS));
	TL_CHECK(fl >= 0 && (fl & FD_CLOEXEC), "b: no close-on-exec");
	TL_CHECK(pwrite(FD_B, &c, 1, 0) < 0 && errno == EPERM, "b: writing is allowed");
	TL_CHECK(tl_verify(map_b, B_SIZE, 2) < 0, "b: mapping differs");
	TL_CHECK(mmap(NULL, B_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, FD_B, 0) == MAP_FAILED,
		 "b: a writable mapping is allowed");
}

static void check_c(void)
{
	char path[128];
	int fd;

	TL_CHECK(tl_verify(map_c, C_SIZE, 3) < 0, "c: mapping differs");
	map_files_path(getpid(), map_c, C_SIZE, path, sizeof(path));
	check_link(path, "/memfd:cryo-c (deleted)");
	fd = open(path, O_RDONLY);
	TL_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	TL_CHECK(fcntl(fd, F_GET_SEALS) == F_SEAL_SEAL, "c: seals 0x%x (sealing was not "
		 "allowed)", fcntl(fd, F_GET_SEALS));
	close(fd);
}

static void check_z(void)
{
	static uint8_t buf[Z_SIZE];
	uint8_t c = 0x33;

	check_link("/proc/self/fd/12", "/dev/zero (deleted)");
	TL_CHECK(lseek(FD_Z, 0, SEEK_CUR) == Z_POS, "z: position %lld",
		 (long long)lseek(FD_Z, 0, SEEK_CUR));
	TL_CHECK(pread(FD_Z, buf, Z_SIZE, 0) == Z_SIZE && tl_verify(buf, Z_SIZE, 4) < 0,
		 "z: contents differ");
	TL_CHECK(pwrite(FD_Z, &c, 1, 10) == 1 && map_z[10] == 0x33,
		 "z: a write through the fd is not in the mapping");
}

/* The child holds a's fd (one open file description with ours) and maps a. */
static void check_child(void)
{
	char path[128];
	struct stat mine, its;

	TL_CHECK(syscall(SYS_kcmp, getpid(), child, KCMP_FILE, FD_A, FD_A) == 0,
		 "the child's fd is not our open file description");
	map_files_path(child, map_a, A_MAP, path, sizeof(path));
	TL_CHECK(!stat(path, &its) && !fstat(FD_A, &mine) && its.st_ino == mine.st_ino &&
		 its.st_dev == mine.st_dev, "the child maps another file than a");
}

int main(void)
{
	tl_init();
	setup();
	child = fork();
	TL_CHECK(child >= 0, "fork");
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	tl_ready();
	tl_wait_go();
	check_a_private();	/* first: check_a writes to the memfd */
	check_a();
	check_b();
	check_c();
	check_z();
	check_child();
	kill(child, SIGKILL);
	tl_pass();
}
