/* membarrier registrations survive: after restore the expedited barriers the process
 * registered for still work (EPERM otherwise) and, on 6.3+, the kernel reports the
 * same registrations. Also the login uid the process set. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tlib.h"

#define REGISTER_GLOBAL_EXPEDITED (1 << 2)
#define PRIVATE_EXPEDITED (1 << 3)
#define REGISTER_PRIVATE_EXPEDITED (1 << 4)
#define PRIVATE_EXPEDITED_RSEQ (1 << 7)
#define REGISTER_PRIVATE_EXPEDITED_RSEQ (1 << 8)
#define GET_REGISTRATIONS (1 << 9)
#define LOGINUID 4321

static long mb(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

static unsigned read_loginuid(void)
{
	char buf[32] = "";
	int fd = open("/proc/self/loginuid", O_RDONLY);

	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
		tl_fail("cannot read /proc/self/loginuid");
	close(fd);
	return strtoul(buf, NULL, 10);
}

int main(void)
{
	long regs;
	char v[16];
	int fd, n;

	tl_init();
	TL_CHECK(!mb(REGISTER_PRIVATE_EXPEDITED), "register: %s", strerror(errno));
	TL_CHECK(!mb(REGISTER_PRIVATE_EXPEDITED_RSEQ) || errno == EINVAL,
		 "register rseq: %s", strerror(errno));
	TL_CHECK(!mb(REGISTER_GLOBAL_EXPEDITED), "register global: %s", strerror(errno));
	regs = mb(GET_REGISTRATIONS);
	n = snprintf(v, sizeof(v), "%d", LOGINUID);
	fd = open("/proc/self/loginuid", O_WRONLY);
	TL_CHECK(fd >= 0 && write(fd, v, n) == n, "cannot set loginuid: %s", strerror(errno));
	close(fd);
	tl_ready();
	tl_wait_go();
	TL_CHECK(!mb(PRIVATE_EXPEDITED), "private expedited barrier: %s", strerror(errno));
	TL_CHECK(regs < 0 || mb(GET_REGISTRATIONS) == regs, "registrations 0x%lx, were 0x%lx",
		 mb(GET_REGISTRATIONS), regs);
	TL_CHECK(read_loginuid() == LOGINUID, "loginuid %u, was %d", read_loginuid(), LOGINUID);
	tl_pass();
}
