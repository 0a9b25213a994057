/* `cryo check`: probes the running kernel for every feature cryo relies on, each by
 * actually using it, and says what breaks without it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/kcmp.h>
#include <linux/netlink.h>
#include <linux/netlink_diag.h>
#include <linux/packet_diag.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cpu.h"
#include "cryo.h"
#include "lazy.h"
#include "log.h"
#include "util.h"
#include "net_lock.h"
#include "proc.h"
#include "mem_track.h"
#include "remote.h"
#include "sys.h"
#include "vdso.h"

struct probe {
	const char *key;	/* for --feature: the reference's name where it has one */
	const char *name;
	bool required;
	const char *without;	/* what breaks without it */
	int (*run)(pid_t child);	/* 1 yes, 0 no */
};

static int probe_seize(pid_t child)
{
	int status;

	if (ptrace(PTRACE_SEIZE, child, 0, 0) || ptrace(PTRACE_INTERRUPT, child, 0, 0))
		return 0;
	if (waitpid(child, &status, __WALL) != child || !WIFSTOPPED(status))
		return 0;
	return 1;
}

static int probe_regs(pid_t child)
{
	struct user_regs_struct r;
	uint8_t *xs = malloc(CR_XSTATE_MAX);
	size_t len = 0;
	int ok;

	ok = xs && !ptr_get_regs(child, &r) && !ptr_get_xstate(child, xs, &len) && len >= 576;
	free(xs);
	return ok;
}

static int probe_sigmask(pid_t child)
{
	uint64_t m;
	struct __ptrace_peeksiginfo_args a = { 0, 0, 1 };
	uint8_t si[128];

	return !ptr_get_sigmask(child, &m) && ptrace(PTRACE_PEEKSIGINFO, child, &a, si) >= 0;
}

static int probe_rseq(pid_t child)
{
	struct cr_rseq_configuration c;

	return ptrace(CR_PTRACE_GET_RSEQ_CONFIGURATION, child, (void *)sizeof(c), &c) >= 0;
}

/* The highest PID plus one (pid_max), or 32768 if it cannot be read. */
static long read_pid_max(void)
{
	int v = read_int_file("/proc/sys/kernel/pid_max", 0);

	return v > 1000 ? v : 32768;
}

/* PID `want` made with clone3's set_tid: 1 it was, 0 the kernel cannot, -1 the PID was
 * taken meanwhile (another one may be tried). */
static int clone3_at(uint64_t want)
{
	struct cr_clone_args args = { .exit_signal = SIGCHLD, .set_tid = (uint64_t)&want,
				      .set_tid_size = 1 };
	long pid = sys_clone3(&args);
	int status;

	if (pid == 0)
		_exit(0);
	if (pid < 0)
		return errno == EEXIST ? -1 : 0;
	waitpid(pid, &status, 0);
	return (uint64_t)pid == want;
}

static int probe_clone3(pid_t child)
{
	long max = read_pid_max(), want = getpid() + 1000;

	(void)child;
	/* A free PID some way above the current ones (below pid_max: PIDs wrap), made
	 * again elsewhere if another process took it first. */
	for (int tries = 0; tries < 64; tries++, want += 97) {
		char path[64];
		int r;

		if (want >= max)
			want = 301 + want % (max - 301);
		snprintf(path, sizeof(path), "/proc/%ld", want);
		if (!access(path, F_OK))
			continue;
		r = clone3_at(want);
		if (r >= 0)
			return r;
	}
	return 0;
}

static int probe_pagemap_scan(pid_t child)
{
	struct cr_page_region r[4];
	struct cr_pm_scan_arg a = { 0 };
	char *m = mmap(NULL, 4096 * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	long n = -1;

	(void)child;
	if (m != MAP_FAILED && fd >= 0) {
		m[4096] = 1;
		a.size = sizeof(a);
		a.start = (uint64_t)m;
		a.end = (uint64_t)m + 4096 * 4;
		a.vec = (uint64_t)r;
		a.vec_len = 4;
		a.category_anyof_mask = CR_PAGE_IS_PRESENT;
		a.return_mask = CR_PAGE_IS_PRESENT;
		n = ioctl(fd, CR_PAGEMAP_SCAN, &a);
	}
	if (fd >= 0)
		close(fd);
	if (m != MAP_FAILED)
		munmap(m, 4096 * 4);
	return n == 1 && r[0].start == (uint64_t)m + 4096;
}

static int probe_guard(pid_t child)
{
	char *m = mmap(NULL, 4096 * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int ok;

	(void)child;
	if (m == MAP_FAILED)
		return 0;
	ok = !madvise(m, 4096, MADV_GUARD_INSTALL);
	munmap(m, 4096 * 2);
	return ok;
}

static int probe_map_files(pid_t child)
{
	char path[96];
	char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int fd;

	(void)child;
	if (m == MAP_FAILED)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)m,
		 (unsigned long)m + 4096);
	fd = open(path, O_RDWR | O_CLOEXEC);
	munmap(m, 4096);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

static int probe_mm_map(pid_t child)
{
	unsigned int size = 0;

	(void)child;
	return !prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) &&
	       size == sizeof(struct cr_prctl_mm_map);
}

static int probe_vm_readv(pid_t child)
{
	long v = 0;
	static long marker = 0x1234;
	struct iovec l = { &v, sizeof(v) }, r = { &marker, sizeof(marker) };

	return process_vm_readv(child, &l, 1, &r, 1, 0) == sizeof(v) && v == 0x1234;
}

static int probe_track_mem(pid_t child)
{
	(void)child;
	return track_probe();
}

static int probe_kcmp(pid_t child)
{
	return sys_kcmp(getpid(), child, KCMP_FILE, 0, 0) >= 0;
}

static int probe_pidfd(pid_t child)
{
	int pfd = sys_pidfd_open(child, 0), fd;

	if (pfd < 0)
		return 0;
	fd = sys_pidfd_getfd(pfd, 0);
	close(pfd);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

static int probe_lazy(pid_t child)
{
	(void)child;
	return lazy_probe(LAZY_FEATURES, 0);
}

static int probe_close_range(pid_t child)
{
	int fd = dup(0);

	(void)child;
	return fd >= 0 && !syscall(__NR_close_range, fd, fd, 0);
}

static int probe_timers(pid_t child)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/timers", child);
	return !access(path, R_OK);
}

/* Does the kernel keep naming a moved vDSO "[vdso]"? Checked in a throw-away child. */
static int probe_vdso_mremap(pid_t unused)
{
	struct vdso_runtime rt;
	pid_t pid;
	int status;

	(void)unused;
	if (vdso_runtime(&rt) || !rt.present)
		return 0;
	pid = fork();
	if (pid == 0) {
		void *to = mmap(NULL, rt.layout.vdso_size * 4, PROT_NONE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct proc_vmas vmas;
		struct vdso_layout l;
		size_t len;
		char *txt;

		if (to == MAP_FAILED)
			_exit(2);
		to = (char *)to + rt.layout.vdso_size;
		if (mremap((void *)rt.layout.vdso_start, rt.layout.vdso_size, rt.layout.vdso_size,
			   MREMAP_MAYMOVE | MREMAP_FIXED, to) == MAP_FAILED)
			_exit(3);
		txt = proc_read_file("/proc/self/maps", &len);
		if (!txt || proc_parse_smaps(txt, len, &vmas))
			_exit(4);
		_exit(vdso_find_layout(&vmas, &l) && l.vdso_start == (uint64_t)to ? 0 : 1);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int probe_membarrier_registrations(pid_t unused)
{
	(void)unused;
	return syscall(__NR_membarrier, 1 << 9, 0, 0) >= 0;	/* GET_REGISTRATIONS, 6.3 */
}

/* Does sock_diag answer a dump request (req: the family's own request after the
 * netlink header) with something other than an error? */
static int diag_answers(const void *req, size_t len)
{
	struct {
		struct nlmsghdr nlh;
		uint8_t req[64];
	} msg = { .nlh = { .nlmsg_len = NLMSG_HDRLEN + len, .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP } };
	char buf[8192];
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), ok = 0;
	ssize_t n;

	if (fd < 0 || len > sizeof(msg.req))
		goto out;
	memcpy(msg.req, req, len);
	if (send(fd, &msg, msg.nlh.nlmsg_len, 0) != (ssize_t)msg.nlh.nlmsg_len)
		goto out;
	n = recv(fd, buf, sizeof(buf), 0);
	if (n >= (ssize_t)NLMSG_HDRLEN) {
		const struct nlmsghdr *h = (const void *)buf;
		const struct nlmsgerr *e = NLMSG_DATA(h);

		/* A dump's failure comes as an error, or as a negative code in its DONE. */
		if (h->nlmsg_type == NLMSG_ERROR)
			ok = n >= (ssize_t)NLMSG_SPACE(sizeof(*e)) && e->error == 0;
		else if (h->nlmsg_type == NLMSG_DONE)
			ok = n < (ssize_t)NLMSG_SPACE(sizeof(int)) || *(const int *)e >= 0;
		else
			ok = 1;
	}
out:
	if (fd >= 0)
		close(fd);
	return ok;
}

static int inet_diag_probe(int proto)
{
	struct inet_diag_req_v2 r = { .sdiag_family = AF_INET, .sdiag_protocol = proto,
				      .idiag_states = ~0u };

	return diag_answers(&r, sizeof(r));
}

static int probe_diag_tcp(pid_t child)
{
	(void)child;
	return inet_diag_probe(IPPROTO_TCP);
}

static int probe_diag_udp(pid_t child)
{
	(void)child;
	return inet_diag_probe(IPPROTO_UDP);
}

static int probe_diag_raw(pid_t child)
{
	(void)child;
	return inet_diag_probe(IPPROTO_RAW);
}

static int probe_diag_unix(pid_t child)
{
	struct unix_diag_req r = { .sdiag_family = AF_UNIX, .udiag_states = ~0u };

	(void)child;
	return diag_answers(&r, sizeof(r));
}

static int probe_diag_netlink(pid_t child)
{
	struct netlink_diag_req r = { .sdiag_family = AF_NETLINK,
				      .sdiag_protocol = NDIAG_PROTO_ALL };

	(void)child;
	return diag_answers(&r, sizeof(r));
}

static int probe_diag_packet(pid_t child)
{
	struct packet_diag_req r = { .sdiag_family = AF_PACKET };

	(void)child;
	return diag_answers(&r, sizeof(r));
}

static int probe_nft_owner(pid_t child)
{
	(void)child;
	return net_lock_probe();
}

static int probe_tcp_repair(pid_t child)
{
	(void)child;
	return net_repair_probe();
}

static const struct probe probes[] = {
	{ "ptrace_seize", "ptrace seize and interrupt",
	  true, "nothing can be dumped", probe_seize },
	{ "ptrace_regs", "ptrace registers and xstate",
	  true, "registers cannot be saved or restored",
	  probe_regs },
	{ "ptrace_sigmask", "ptrace signal mask and PEEKSIGINFO", true,
	  "blocked and pending signals cannot be saved", probe_sigmask },
	{ "get_rseq_conf", "ptrace rseq configuration", false,
	  "rseq registrations are not saved (glibc threads lose them)", probe_rseq },
	{ "clone3_set_tid", "clone3 with set_tid",
	  true, "processes cannot get their PIDs back", probe_clone3 },
	{ "process_vm_readv", "process_vm_readv", true, "memory cannot be read", probe_vm_readv },
	{ "pagemap_scan", "PAGEMAP_SCAN ioctl",
	  false, "page scans fall back to reading pagemap (slower)",
	  probe_pagemap_scan },
	{ "track_mem", "write tracking (uffd-wp async, PAGEMAP_SCAN)", false,
	  "pre-dump and --track-mem cannot track writes (Linux 6.7 or later)", probe_track_mem },
	{ "madv_guard", "MADV_GUARD_INSTALL", false, "guard regions are neither found nor restored",
	  probe_guard },
	{ "map_files", "/proc/PID/map_files", true,
	  "mapped files and shared memory cannot be identified or recreated", probe_map_files },
	{ "prctl_mm_map", "PR_SET_MM_MAP",
	  true, "brk, arguments, environment and auxv cannot be restored",
	  probe_mm_map },
	{ "kcmp", "kcmp", true, "shared open files cannot be recognised", probe_kcmp },
	{ "pidfd_getfd", "pidfd_open/pidfd_getfd", false,
	  "restore --lazy-pages cannot take a task's userfaultfd", probe_pidfd },
	{ "lazy-pages", "userfaultfd: missing pages, fork/remap/remove/unmap events", false,
	  "restore --lazy-pages is refused", probe_lazy },
	{ "close_range", "close_range",
	  true, "the restored fd table cannot be cleaned", probe_close_range },
	{ "posix_timers", "/proc/PID/timers",
	  false, "POSIX timers cannot be detected", probe_timers },
	{ "membarrier_registrations", "membarrier registrations (GET_REGISTRATIONS)", false,
	  "only private expedited registrations are seen (by trying them); a global "
	  "expedited registration is lost", probe_membarrier_registrations },
	{ "can_map_vdso", "[vdso] name kept after mremap", false,
	  "a moved vDSO is not recognised on a later dump", probe_vdso_mremap },
	{ "net_diag_tcp", "sock_diag: inet (TCP)", false,
	  "TCP sockets can be neither dumped nor locked", probe_diag_tcp },
	{ "net_diag_udp", "sock_diag: inet (UDP)",
	  false, "UDP sockets cannot be dumped", probe_diag_udp },
	{ "net_diag_raw", "sock_diag: inet (raw)", false,
	  "raw sockets cannot be inspected (kernel without CONFIG_INET_RAW_DIAG)",
	  probe_diag_raw },
	{ "net_diag_unix", "sock_diag: unix",
	  false, "Unix sockets cannot be dumped", probe_diag_unix },
	{ "net_diag_netlink", "sock_diag: netlink", false, "netlink sockets cannot be dumped",
	  probe_diag_netlink },
	{ "net_diag_packet", "sock_diag: packet",
	  false, "packet sockets cannot be dumped", probe_diag_packet },
	{ "network_lock_nftables", "nftables owner tables (libnftables)", false,
	  "--tcp-established cannot lock connections: dump refuses them", probe_nft_owner },
	{ "tcp_repair", "TCP_REPAIR", false, "--tcp-established cannot dump or restore connections",
	  probe_tcp_repair },
};

static pid_t probe_child(void)
{
	pid_t child = fork();

	if (child == 0) {
		for (;;)
			pause();
	}
	if (child < 0)
		cr_perr("fork");
	return child;
}

static void probe_child_end(pid_t child)
{
	int status;

	cr_err_reset();
	kill(child, SIGKILL);
	waitpid(child, &status, __WALL);
}

static int run_probe(FILE *out, const struct probe *pr, pid_t child)
{
	int ok;

	cr_err_reset();
	ok = pr->run(child);
	fprintf(out, "%-38s %s", pr->name, ok ? "yes" : "no");
	if (!ok)
		fprintf(out, "  (%s: %s)", pr->required ? "required" : "optional", pr->without);
	fputc('\n', out);
	return ok;
}

int cryo_check(FILE *out)
{
	struct utsname un;
	struct cpu_info ci;
	char feats[2048];
	int missing = 0;
	pid_t child;

	uname(&un);
	cpu_read(&ci);
	cpu_feature_list(&ci, feats, sizeof(feats));
	fprintf(out, "kernel: %s %s\ncpu: %s\ncpu features: %s\n", un.release, un.machine,
		ci.model, feats);
	child = probe_child();
	if (child < 0)
		return -1;
	for (size_t i = 0; i < CR_ARRAY_SIZE(probes); i++)
		if (!run_probe(out, &probes[i], child) && probes[i].required)
			missing++;
	probe_child_end(child);
	if (missing)
		cr_err("%d required feature%s missing", missing, missing > 1 ? "s are" : " is");
	return missing;
}

/* Feature names match with '-' for '_' ("track-mem" is "track_mem"). */
static bool same_key(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (*a != *b && !((*a == '-' || *a == '_') && (*b == '-' || *b == '_')))
			return false;
	return !*a && !*b;
}

int cryo_check_feature(const char *key, FILE *out)
{
	pid_t child;
	int ok;

	cr_err_reset();
	if (!strcmp(key, "list")) {
		for (size_t i = 0; i < CR_ARRAY_SIZE(probes); i++)
			fprintf(out, "%-26s %s\n", probes[i].key, probes[i].name);
		return 1;
	}
	for (size_t i = 0; i < CR_ARRAY_SIZE(probes); i++) {
		if (!same_key(key, probes[i].key))
			continue;
		child = probe_child();
		if (child < 0)
			return -1;
		ok = run_probe(out, &probes[i], child);
		probe_child_end(child);
		return ok;
	}
	return cr_err("no feature '%s' (cryo check --feature list names them)", key);
}
