/* Process-wide state: identity and the checks that make dump refuse what it cannot
 * restore faithfully, plus umask, personality, prctl settings, rlimits, itimers and
 * credentials. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "process.h"
#include "userns.h"
#include "sys.h"

static const char *const namespaces[] = {
	"mnt", "pid", "net", "ipc", "uts", "user", "cgroup", "time",
};

static int check_namespaces(pid_t pid)
{
	for (size_t i = 0; i < CR_ARRAY_SIZE(namespaces); i++) {
		char a[64], b[64];
		struct stat sa, sb;

		snprintf(a, sizeof(a), "/proc/%d/ns/%s", pid, namespaces[i]);
		snprintf(b, sizeof(b), "/proc/self/ns/%s", namespaces[i]);
		if (stat(b, &sb))
			continue;	/* this kernel lacks the namespace */
		if (stat(a, &sa) && errno == EACCES)
			return cr_err("process %d may not be inspected by cryo (its namespaces are "
				      "hidden: permission denied)", pid);
		if (stat(a, &sa))
			return cr_perr("cannot read %s", a);
		if (sa.st_ino != sb.st_ino || sa.st_dev != sb.st_dev)
			return cr_err("process %d is in another %s namespace than cryo; "
				      "namespaces are not supported", pid, namespaces[i]);
	}
	return 0;
}

int process_dump_check(pid_t pid)
{
	struct proc_stat st;
	struct proc_status ss;
	size_t len;
	char *txt;

	if (pid <= 0)
		return cr_err("invalid PID %d", pid);
	if (pid == getpid())
		return cr_err("cryo cannot dump itself");
	if (pid == 1)
		return cr_err("PID 1 is init, which cannot be dumped: restoring it would need a "
			      "PID namespace of its own");
	txt = proc_read_pid_file(pid, "stat", &len);
	if (!txt) {
		if (errno == ENOENT) {
			cr_err_reset();
			return cr_err("no process with PID %d", pid);
		}
		return -1;
	}
	if (proc_parse_stat(txt, len, &st)) {
		free(txt);
		return -1;
	}
	free(txt);
	if (st.flags & CR_PF_KTHREAD)
		return cr_err("PID %d (%s) is a kernel thread and cannot be dumped", pid, st.comm);
	txt = proc_read_pid_file(pid, "status", &len);
	if (!txt)
		return -1;
	if (proc_parse_status(txt, len, &ss)) {
		free(txt);
		return -1;
	}
	free(txt);
	if (ss.tgid != pid)
		return cr_err("PID %d is a thread of process %d; dump the process", pid, ss.tgid);
	if (ss.tracer_pid)
		return cr_err("process %d is already traced by PID %d", pid, ss.tracer_pid);
	if (ss.state == 'Z' || ss.state == 'X')
		return cr_err("process %d is a zombie", pid);
	if (ss.seccomp)
		return cr_err("process %d uses seccomp (mode %d); seccomp is not supported yet",
			      pid, ss.seccomp);
	return check_namespaces(pid);
}

/* The limits as the task read them itself: prlimit64 on a process of another user
 * needs CAP_SYS_RESOURCE, which root in a container may lack. */
static int collect_rlimits(struct dump_proc *p, const struct rlimit64 *rl)
{
	Rlimit *items = calloc(RLIM_NLIMITS, sizeof(*items));

	p->core.rlimits = calloc(RLIM_NLIMITS, sizeof(*p->core.rlimits));
	if (!items || !p->core.rlimits) {
		free(items);
		return cr_err("out of memory");
	}
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		rlimit__init(&items[r]);
		items[r].resource = r;
		items[r].cur = rl[r].rlim_cur;
		items[r].max = rl[r].rlim_max;
		p->core.rlimits[r] = &items[r];
	}
	p->core.n_rlimits = RLIM_NLIMITS;
	return 0;
}

static int dump_creds(struct dump_proc *p)
{
	const struct proc_status *s = &p->status;
	Creds *c = malloc(sizeof(*c));

	if (!c)
		return cr_err("out of memory");
	creds__init(c);
	p->core.creds = c;
	c->uid = s->uid[0];
	c->euid = s->uid[1];
	c->suid = s->uid[2];
	c->fsuid = s->uid[3];
	c->gid = s->gid[0];
	c->egid = s->gid[1];
	c->sgid = s->gid[2];
	c->fsgid = s->gid[3];
	c->cap_inh = s->cap_inh;
	c->cap_prm = s->cap_prm;
	c->cap_eff = s->cap_eff;
	c->cap_bnd = s->cap_bnd;
	c->cap_amb = s->cap_amb;
	c->no_new_privs = s->no_new_privs;
	if (s->nr_groups) {
		c->groups = malloc(s->nr_groups * sizeof(uint32_t));
		if (!c->groups)
			return cr_err("out of memory");
		memcpy(c->groups, s->groups, s->nr_groups * sizeof(uint32_t));
		c->n_groups = s->nr_groups;
	}
	return 0;
}

static int read_personality(pid_t pid, uint32_t *out)
{
	size_t len;
	char *txt = proc_read_pid_file(pid, "personality", &len);
	unsigned long v;
	char *end;

	if (!txt)
		return -1;
	v = strtoul(txt, &end, 16);
	free(txt);
	if (end == txt || v > 0xffffffff)
		return cr_err("malformed /proc/%d/personality", pid);
	*out = v;
	return 0;
}

int read_loginuid(pid_t pid, uint32_t *out)
{
	size_t len;
	char *txt = proc_read_pid_file(pid, "loginuid", &len);
	unsigned long v;
	char *end;

	if (!txt)
		return -1;
	v = strtoul(txt, &end, 10);
	free(txt);
	if (end == txt || v > 0xffffffffUL)
		return cr_err("malformed /proc/%d/loginuid", pid);
	*out = v;
	return 0;
}

static int read_oom_score_adj(struct dump_proc *p)
{
	size_t len;
	char *txt = proc_read_pid_file(p->pid, "oom_score_adj", &len);
	long v;
	char *end;

	if (!txt)
		return -1;
	v = strtol(txt, &end, 10);
	free(txt);
	if (end == txt || v < -1000 || v > 1000)
		return cr_err("malformed /proc/%d/oom_score_adj", p->pid);
	p->core.has_oom_score_adj = 1;
	p->core.oom_score_adj = v;
	return 0;
}

int process_dump_static(struct dump_proc *p)
{
	const struct proc_stat *st = &p->stat;

	p->core.pid = p->pid;
	p->core.comm = (char *)st->comm;
	if (p->status.umask < 0)
		return cr_err("/proc/%d/status has no Umask", p->pid);
	p->core.umask = p->status.umask;
	p->core.has_exit_signal = 1;
	p->core.exit_signal = st->exit_signal;
	if (read_personality(p->pid, &p->core.personality) || read_oom_score_adj(p) ||
	    read_loginuid(p->pid, &p->core.loginuid))
		return -1;
	p->core.has_loginuid = 1;
	return dump_creds(p);
}

enum {
	S_DUMPABLE, S_PDEATH, S_PDEATH_BUF, S_SUBREAPER, S_SUBREAPER_BUF, S_THP, S_SLACK,
	S_NAME, S_NAME_BUF, S_SECBITS, S_BRK, S_MEMBARRIER, S_MB_PRIVATE, S_MB_SYNC_CORE,
	S_MB_RSEQ, S_ITIMER_BUF, S_ITIMER0, S_RLIMIT_BUF = S_ITIMER0 + 3, S_COUNT
};

_Static_assert(S_COUNT <= PROCESS_SLOTS, "PROCESS_SLOTS is too small");

#define MB_REGISTER_GLOBAL_EXPEDITED (1 << 2)
#define MB_PRIVATE_EXPEDITED (1 << 3)
#define MB_REGISTER_PRIVATE_EXPEDITED (1 << 4)
#define MB_PRIVATE_EXPEDITED_SYNC_CORE (1 << 5)
#define MB_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE (1 << 6)
#define MB_PRIVATE_EXPEDITED_RSEQ (1 << 7)
#define MB_REGISTER_PRIVATE_EXPEDITED_RSEQ (1 << 8)
#define MB_GET_REGISTRATIONS (1 << 9)		/* 6.3 */
#define MB_REGISTERS (MB_REGISTER_GLOBAL_EXPEDITED | MB_REGISTER_PRIVATE_EXPEDITED | \
		      MB_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE | MB_REGISTER_PRIVATE_EXPEDITED_RSEQ)

void process_dump_queue(struct dump_proc *p, struct rtable *t, uint64_t *slots)
{
	uint64_t pd = rtable_buf(t, 4), sr = rtable_buf(t, 4), name = rtable_buf(t, 16);
	uint64_t it = rtable_buf(t, 3 * sizeof(struct itimerval));
	uint64_t rl = rtable_buf(t, RLIM_NLIMITS * sizeof(struct rlimit64));

	(void)p;
	slots[S_RLIMIT_BUF] = rl;
	slots[S_PDEATH_BUF] = pd;
	slots[S_SUBREAPER_BUF] = sr;
	slots[S_NAME_BUF] = name;
	slots[S_ITIMER_BUF] = it;
	slots[S_BRK] = rtable_add(t, 0, __NR_brk, 0, 0, 0, 0, 0, 0);
	/* Registrations, asked for directly (6.3) or, older, seen in whether an
	 * expedited barrier is allowed (all threads are stopped: it costs nothing). */
	slots[S_MEMBARRIER] = rtable_add(t, PLAN_MAY_FAIL, __NR_membarrier, MB_GET_REGISTRATIONS,
					 0, 0, 0, 0, 0);
	slots[S_MB_PRIVATE] = rtable_add(t, PLAN_MAY_FAIL, __NR_membarrier, MB_PRIVATE_EXPEDITED,
					 0, 0, 0, 0, 0);
	slots[S_MB_SYNC_CORE] = rtable_add(t, PLAN_MAY_FAIL, __NR_membarrier,
					   MB_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0, 0, 0, 0);
	slots[S_MB_RSEQ] = rtable_add(t, PLAN_MAY_FAIL, __NR_membarrier, MB_PRIVATE_EXPEDITED_RSEQ,
				      0, 0, 0, 0, 0);
	slots[S_DUMPABLE] = rtable_add(t, 0, __NR_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0, 0);
	slots[S_PDEATH] = rtable_add(t, 0, __NR_prctl, PR_GET_PDEATHSIG, pd, 0, 0, 0, 0);
	slots[S_SUBREAPER] = rtable_add(t, 0, __NR_prctl, PR_GET_CHILD_SUBREAPER, sr, 0, 0, 0, 0);
	slots[S_THP] = rtable_add(t, 0, __NR_prctl, PR_GET_THP_DISABLE, 0, 0, 0, 0, 0);
	slots[S_SLACK] = rtable_add(t, 0, __NR_prctl, PR_GET_TIMERSLACK, 0, 0, 0, 0, 0);
	slots[S_NAME] = rtable_add(t, 0, __NR_prctl, PR_GET_NAME, name, 0, 0, 0, 0);
	slots[S_SECBITS] = rtable_add(t, 0, __NR_prctl, PR_GET_SECUREBITS, 0, 0, 0, 0, 0);
	for (int w = 0; w < 3; w++)
		slots[S_ITIMER0 + w] = rtable_add(t, 0, __NR_getitimer, w,
						  it + w * sizeof(struct itimerval), 0, 0, 0, 0);
	for (int r = 0; r < RLIM_NLIMITS; r++)
		rtable_add(t, 0, __NR_prlimit64, 0, r, 0, rl + r * sizeof(struct rlimit64), 0, 0);
}

static uint32_t membarrier_registrations(const struct rtable *t, const uint64_t *slots)
{
	int64_t got = rtable_result(t, slots[S_MEMBARRIER]);
	uint32_t m = 0;

	if (got >= 0)
		return got & MB_REGISTERS;
	if (!rtable_result(t, slots[S_MB_PRIVATE]))
		m |= MB_REGISTER_PRIVATE_EXPEDITED;
	if (!rtable_result(t, slots[S_MB_SYNC_CORE]))
		m |= MB_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE;
	if (!rtable_result(t, slots[S_MB_RSEQ]))
		m |= MB_REGISTER_PRIVATE_EXPEDITED_RSEQ;
	return m;
}

static uint64_t tv_ns(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * 1000000000ULL + (uint64_t)tv->tv_usec * 1000;
}

int process_dump_collect(struct dump_proc *p, struct rtable *t, const uint64_t *slots)
{
	const struct itimerval *it = rtable_local(t, slots[S_ITIMER_BUF]);
	ItimerState *items = calloc(3, sizeof(*items));
	const char *name = rtable_local(t, slots[S_NAME_BUF]);
	size_t n = 0;

	p->core.itimers = calloc(3, sizeof(*p->core.itimers));
	if (!items || !p->core.itimers) {
		free(items);
		return cr_err("out of memory");
	}
	if (collect_rlimits(p, rtable_local(t, slots[S_RLIMIT_BUF]))) {
		free(items);
		return -1;
	}
	p->core.has_dumpable = 1;
	p->core.dumpable = rtable_result(t, slots[S_DUMPABLE]);
	p->core.has_pdeathsig = 1;
	p->core.pdeathsig = *(const int *)rtable_local(t, slots[S_PDEATH_BUF]);
	p->core.has_child_subreaper = 1;
	p->core.child_subreaper = *(const int *)rtable_local(t, slots[S_SUBREAPER_BUF]);
	p->core.has_thp_disable = 1;
	p->core.thp_disable = rtable_result(t, slots[S_THP]);
	p->core.has_timerslack_ns = 1;
	p->core.timerslack_ns = rtable_result(t, slots[S_SLACK]);
	p->brk = rtable_result(t, slots[S_BRK]);
	p->core.has_membarrier = 1;
	p->core.membarrier = membarrier_registrations(t, slots);
	p->core.name = strndup(name, 16);
	if (!p->core.name)
		return cr_err("out of memory");
	p->core.creds->securebits = rtable_result(t, slots[S_SECBITS]);
	for (int w = 0; w < 3; w++) {
		/* A periodic timer between an expiry and the dequeue of its signal
		 * shows no value but keeps its interval: it is still armed. */
		if (!it[w].it_value.tv_sec && !it[w].it_value.tv_usec &&
		    !it[w].it_interval.tv_sec && !it[w].it_interval.tv_usec)
			continue;
		itimer_state__init(&items[n]);
		items[n].which = w;
		items[n].interval_ns = tv_ns(&it[w].it_interval);
		items[n].value_ns = tv_ns(&it[w].it_value);
		p->core.itimers[n] = &items[n];
		n++;
	}
	p->core.n_itimers = n;
	if (!n)
		free(items);
	return 0;
}

void process_dump_free(struct dump_proc *p)
{
	if (p->core.rlimits)
		free(p->core.rlimits[0]);
	free(p->core.rlimits);
	if (p->core.creds)
		free(p->core.creds->groups);
	free(p->core.creds);
	if (p->core.n_itimers)
		free(p->core.itimers[0]);
	free(p->core.itimers);
	free(p->core.name);
}

/* ---- restore ---- */

static struct timeval ns_tv(uint64_t ns)
{
	struct timeval tv = { ns / 1000000000ULL, (ns % 1000000000ULL) / 1000 };

	return tv;
}

int process_plan(struct restore_proc *rp, struct plan *p)
{
	const Core *c = rp->core;

	for (uint32_t cmd = 1; cmd; cmd <<= 1)
		if (c->has_membarrier && (c->membarrier & MB_REGISTERS & cmd))
			plan_call(p, "registering for membarrier", 0, __NR_membarrier, cmd, 0, 0,
				  0, 0, 0);
	if (c->umask > 0777)
		return cr_err("image: invalid umask %o", c->umask);
	if (!c->shares_fs)
		plan_call(p, "umask", 0, __NR_umask, c->umask, 0, 0, 0, 0, 0);
	plan_call(p, "personality", 0, __NR_personality, c->personality, 0, 0, 0, 0, 0);
	if (c->name) {
		char name[16] = { 0 };

		strncpy(name, c->name, sizeof(name) - 1);
		plan_call(p, "setting the process name", 0, __NR_prctl, PR_SET_NAME,
			  plan_data(p, name, sizeof(name)), 0, 0, 0, 0);
	}
	if (c->has_child_subreaper && c->child_subreaper)
		plan_call(p, "PR_SET_CHILD_SUBREAPER", 0, __NR_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0, 0);
	if (c->has_thp_disable && c->thp_disable)
		plan_call(p, "PR_SET_THP_DISABLE", 0, __NR_prctl, PR_SET_THP_DISABLE, 1, 0, 0, 0, 0);
	if (c->has_timerslack_ns)
		plan_call(p, "PR_SET_TIMERSLACK", 0, __NR_prctl, PR_SET_TIMERSLACK, c->timerslack_ns,
			  0, 0, 0, 0);
	for (size_t i = 0; i < c->n_itimers; i++) {
		const ItimerState *it = c->itimers[i];
		/* No value but an interval: it had just expired; it goes on from now. */
		struct itimerval v = { ns_tv(it->interval_ns),
				       ns_tv(it->value_ns ? it->value_ns : it->interval_ns) };

		if (it->which > 2)
			return cr_err("image: invalid itimer %u", it->which);
		plan_call(p, "setitimer", 0, __NR_setitimer, it->which, plan_data(p, &v, sizeof(v)),
			  0, 0, 0, 0);
	}
	return 0;
}

static void plan_rlimits(struct restore_proc *rp, struct plan *p)
{
	const Core *c = rp->core;

	for (size_t i = 0; i < c->n_rlimits; i++) {
		const Rlimit *r = c->rlimits[i];
		struct rlimit64 want = { r->cur, r->max }, have;

		if (r->resource >= RLIM_NLIMITS || prlimit64(0, r->resource, NULL, &have))
			continue;
		/* Without CAP_SYS_RESOURCE a hard limit cannot be raised. */
		if (want.rlim_max > have.rlim_max) {
			pr_warn("process %u: resource limit %u lowered to the restorer's hard "
				"limit %llu (was %llu)", c->pid, r->resource,
				(unsigned long long)have.rlim_max, (unsigned long long)want.rlim_max);
			want.rlim_max = have.rlim_max;
			if (want.rlim_cur > want.rlim_max)
				want.rlim_cur = want.rlim_max;
		}
		plan_call(p, "setting a resource limit", 0, __NR_prlimit64, 0, r->resource,
			  plan_data(p, &want, sizeof(want)), 0, 0, 0);
	}
}

static bool creds_are_cryos(const Creds *c)
{
	uint64_t full = 0;
	int last = 0;
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");

	if (f) {
		if (fscanf(f, "%d", &last) != 1)
			last = 40;
		fclose(f);
	}
	full = last >= 63 ? ~0ULL : (1ULL << (last + 1)) - 1;
	return !c->uid && !c->euid && !c->suid && !c->fsuid && !c->gid && !c->egid &&
	       !c->sgid && !c->fsgid && c->cap_eff == c->cap_prm && c->cap_bnd == full &&
	       !c->cap_amb && !c->no_new_privs && !c->securebits;
}

static void plan_creds(struct restore_proc *rp, struct plan *p)
{
	const Creds *c = rp->core->creds;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = {
		{ (uint32_t)c->cap_eff, (uint32_t)c->cap_prm, (uint32_t)c->cap_inh },
		{ (uint32_t)(c->cap_eff >> 32), (uint32_t)(c->cap_prm >> 32),
		  (uint32_t)(c->cap_inh >> 32) },
	};

	uint64_t groups = plan_data(p, NULL, c->n_groups * 4 + 4);

	if (groups && c->n_groups)
		memcpy((void *)groups, c->groups, c->n_groups * 4);
	/* Not root: the ids, groups and securebits are the caller's own already
	 * (userns_check_creds); only cryo's capabilities go. */
	if (!userns_is_root()) {
		plan_call(p, "capset", 0, __NR_capset, plan_data(p, &hdr, sizeof(hdr)),
			  plan_data(p, data, sizeof(data)), 0, 0, 0, 0);
		/* Dropping capabilities clears the parent-death signal (and dumpable):
		 * process_plan_final sets the image's right after. */
		if (c->no_new_privs)
			plan_call(p, "PR_SET_NO_NEW_PRIVS", 0, __NR_prctl, PR_SET_NO_NEW_PRIVS, 1,
				  0, 0, 0, 0);
		return;
	}
	plan_call(p, "setgroups", 0, __NR_setgroups, c->n_groups, groups, 0, 0, 0, 0);
	if (creds_are_cryos(c))
		return;
	for (int cap = 0; cap < 64; cap++)
		if (!(c->cap_bnd & (1ULL << cap)))
			plan_call(p, "dropping a bounding capability", PLAN_MAY_FAIL, __NR_prctl,
				  PR_CAPBSET_DROP, cap, 0, 0, 0, 0);
	/* Securebits need CAP_SETPCAP: set them while still root, keeping caps over the
	 * uid change; the keep-caps bit itself is put back at the end. */
	plan_call(p, "PR_SET_SECUREBITS", 0, __NR_prctl, PR_SET_SECUREBITS,
		  c->securebits | SECBIT_KEEP_CAPS, 0, 0, 0, 0);
	plan_call(p, "setresgid", 0, __NR_setresgid, c->gid, c->egid, c->sgid, 0, 0, 0);
	plan_call(p, "setfsgid", 0, __NR_setfsgid, c->fsgid, 0, 0, 0, 0, 0);
	plan_call(p, "setresuid", 0, __NR_setresuid, c->uid, c->euid, c->suid, 0, 0, 0);
	plan_call(p, "setfsuid", 0, __NR_setfsuid, c->fsuid, 0, 0, 0, 0, 0);
	plan_call(p, "capset", 0, __NR_capset, plan_data(p, &hdr, sizeof(hdr)),
		  plan_data(p, data, sizeof(data)), 0, 0, 0, 0);
	for (int cap = 0; cap < 64; cap++)
		if (c->cap_amb & (1ULL << cap))
			plan_call(p, "raising an ambient capability", 0, __NR_prctl,
				  PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0, 0);
	plan_call(p, "PR_SET_KEEPCAPS", 0, __NR_prctl, PR_SET_KEEPCAPS,
		  !!(c->securebits & SECBIT_KEEP_CAPS), 0, 0, 0, 0);
	if (c->no_new_privs)
		plan_call(p, "PR_SET_NO_NEW_PRIVS", 0, __NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0);
}

/* A change of uid or gid resets dumpable (per process) and the parent-death signal
 * (per thread), so both follow the credentials. PR_SET_DUMPABLE takes 0 and 1 only. */
int process_plan_creds(struct restore_proc *rp, struct plan *p)
{
	const Core *c = rp->core;

	/* No record is not "keep cryo's": cryo runs as root. */
	if (!c->creds)
		return cr_err("image: process %u has no credentials record", c->pid);
	if (c->creds->n_groups > 65536)
		return cr_err("image: too many supplementary groups");
	plan_creds(rp, p);
	if (c->has_dumpable && c->dumpable <= 1)
		plan_call(p, "PR_SET_DUMPABLE", 0, __NR_prctl, PR_SET_DUMPABLE, c->dumpable, 0, 0, 0, 0);
	return 0;
}

int process_plan_final(struct restore_proc *rp, struct plan *p)
{
	const Core *c = rp->core;

	plan_rlimits(rp, p);
	if (process_plan_creds(rp, p))
		return -1;
	/* Always: the task was made with SIGKILL, to die with cryo until released. */
	plan_call(p, "PR_SET_PDEATHSIG", 0, __NR_prctl, PR_SET_PDEATHSIG,
		  c->has_pdeathsig ? c->pdeathsig : 0, 0, 0, 0, 0);
	return 0;
}

/* Only the task may write its own loginuid: the call lands on fd 0, free while the fd
 * table is being rebuilt (files_plan). Without CAP_AUDIT_CONTROL, or once the kernel
 * made it immutable, the step fails and names itself. */
int process_plan_loginuid(struct restore_proc *rp, struct plan *p)
{
	const Core *c = rp->core;
	static const char path[] = "/proc/self/loginuid";
	uint32_t mine;
	char v[16];
	int n;

	if (!c->has_loginuid || read_loginuid(getpid(), &mine))
		return c->has_loginuid ? -1 : 0;
	if (mine == c->loginuid)
		return 0;
	n = snprintf(v, sizeof(v), "%u", c->loginuid);
	/* Not root: a task made by cryo (file capabilities) is not dumpable, and its
	 * /proc files are root's; its owner may set a loginuid still unset. */
	if (!userns_is_root())
		plan_call(p, "PR_SET_DUMPABLE", 0, __NR_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0, 0);
	plan_call(p, "opening its loginuid", 0, __NR_openat, AT_FDCWD,
		  plan_data(p, path, sizeof(path)), O_WRONLY, 0, 0, 0);
	plan_call(p, "setting its loginuid", 0, __NR_write, 0, plan_data(p, v, n), n, 0, 0, 0);
	plan_call(p, "setting its loginuid", 0, __NR_close, 0, 0, 0, 0, 0, 0);
	return 0;
}

/* oom_score_adj is set from outside (it is not a system call), before the release.
 * Lowering it needs CAP_SYS_RESOURCE: without it the restorer's value stays. */
int process_restore_oom_score(const Core *core, pid_t pid)
{
	char path[64], val[16];
	int fd, n;

	if (!core->has_oom_score_adj || core->oom_score_adj < -1000 || core->oom_score_adj > 1000)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", pid);
	n = snprintf(val, sizeof(val), "%d", core->oom_score_adj);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return cr_perr("cannot open %s", path);
	if (write(fd, val, n) != n) {
		if (errno == EACCES || errno == EPERM)
			pr_warn("process %d: oom_score_adj %d could not be restored (lowering it "
				"needs CAP_SYS_RESOURCE)", pid, core->oom_score_adj);
		else {
			close(fd);
			return cr_perr("cannot write %s", path);
		}
	}
	close(fd);
	return 0;
}
