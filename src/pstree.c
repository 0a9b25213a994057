/* The process tree: walking and seizing it at dump (parents first, so that a stopped
 * parent makes no new child), the rules sessions and groups must follow for each
 * process to be made again by its own parent, pstree.img at both ends, and the parts
 * of the restore plan that make children, sessions, groups and zombies. */
#include <errno.h>
#include <sys/prctl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "lifecycle.h"
#include "log.h"
#include "process.h"
#include "pstree.h"
#include "userns.h"
#include "sys.h"
#include "util.h"

#define OUTSIDE (-1)	/* a session or group led from outside the tree */

/* ---- the rules ---- */

static ssize_t node_index(const struct tree_node *n, size_t nr, pid_t pid)
{
	for (size_t i = 0; i < nr; i++)
		if (n[i].pid == pid)
			return i;
	return -1;
}

/* A child that will lead its own session is made after: what its own first children
 * inherit is then its parent's new session. */
bool tree_forks_before_setsid(const struct tree_node *parent, const struct tree_node *child)
{
	return parent->sid == parent->pid && child->sid != parent->pid &&
	       child->sid != child->pid;
}

/* The session each process has when its parent has just made it (born[]), and
 * whether that can become the one it had. */
static int check_sessions(const struct tree_node *n, size_t nr, bool shell_job, pid_t *born)
{
	pid_t outside = n[0].sid != n[0].pid ? n[0].sid : 0;

	for (size_t i = 0; i < nr; i++) {
		ssize_t q = i ? node_index(n, i, n[i].ppid) : -1;

		if (i && q < 0)
			return cr_err("process %d: its parent %d comes after it", n[i].pid,
				      n[i].ppid);
		born[i] = !i ? OUTSIDE : tree_forks_before_setsid(&n[q], &n[i]) ? born[q] :
				n[q].sid;
		if (n[i].sid == n[i].pid)
			continue;
		if (born[i] != OUTSIDE) {
			if (n[i].sid != born[i])
				return cr_err("process %d is in session %d, which it cannot have "
					      "from its parent %d (in session %d); cryo cannot "
					      "make that again", n[i].pid, n[i].sid, n[i].ppid,
					      born[i]);
			continue;
		}
		if (node_index(n, nr, n[i].sid) >= 0 || (outside && n[i].sid != outside))
			return cr_err("process %d is in session %d, which it cannot have from "
				      "its parent %d; cryo cannot make that again", n[i].pid,
				      n[i].sid, n[i].ppid);
		if (!shell_job)
			return cr_err("process %d is in the session of PID %d, outside what is "
				      "dumped; start it with setsid, or use --shell-job to restore "
				      "it into cryo's session", n[i].pid, n[i].sid);
		outside = n[i].sid;
	}
	return 0;
}

static int check_groups(const struct tree_node *n, size_t nr)
{
	pid_t outside = 0;

	for (size_t i = 0; i < nr; i++) {
		ssize_t g;

		if (n[i].pgid == n[i].pid)
			continue;
		g = node_index(n, nr, n[i].pgid);
		if (g >= 0 && (n[g].pgid != n[g].pid || n[g].sid != n[i].sid))
			return cr_err("process %d is in process group %d, which process %d does "
				      "not lead in its session", n[i].pid, n[i].pgid, n[i].pgid);
		if (g >= 0)
			continue;
		/* A group led from outside: the restorer's, for processes in its session. */
		if (node_index(n, nr, n[i].sid) >= 0 || (outside && n[i].pgid != outside))
			return cr_err("process %d is in process group %d, whose leader is not in "
				      "what is dumped (it ended); cryo cannot make that group again",
				      n[i].pid, n[i].pgid);
		outside = n[i].pgid;
	}
	return 0;
}

int tree_check(const struct tree_node *n, size_t nr, bool shell_job)
{
	pid_t *born;
	int rc;

	if (!nr)
		return cr_err("the process tree is empty");
	for (size_t i = 0; i < nr; i++)
		if (node_index(n, i, n[i].pid) >= 0)
			return cr_err("process %d appears twice in the tree", n[i].pid);
	if (node_index(n, nr, n[0].ppid) >= 0)
		return cr_err("the root process %d has its parent %d in the tree", n[0].pid,
			      n[0].ppid);
	born = malloc(nr * sizeof(*born));
	if (!born)
		return cr_err("out of memory");
	rc = check_sessions(n, nr, shell_job, born) || check_groups(n, nr) ? -1 : 0;
	free(born);
	return rc;
}

/* ---- dump ---- */

static struct dump_proc *tree_add(struct dump_ctx *ctx, pid_t pid)
{
	struct dump_proc *p = calloc(1, sizeof(*p));

	if (!p || cr_grow(&ctx->procs, &ctx->cap_procs, ctx->nr_procs + 1, sizeof(*ctx->procs),
			  16)) {
		free(p);
		cr_err("out of memory");
		return NULL;
	}
	p->ctx = ctx;
	p->pid = pid;
	p->borrow.mem_fd = -1;
	ctx->procs[ctx->nr_procs++] = p;
	return p;
}

static bool known(const struct dump_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (ctx->procs[i]->pid == pid)
			return true;
	return false;
}

static int read_stat(pid_t pid, struct proc_stat *st)
{
	size_t len;
	char *txt = proc_read_pid_file(pid, "stat", &len);
	int rc;

	if (!txt)
		return -1;
	rc = proc_parse_stat(txt, len, st);
	free(txt);
	return rc;
}

/* The children of every thread of a stopped process, in PID order. */
static int list_children(const struct dump_proc *p, pid_t **out, size_t *nr)
{
	size_t cap = 0;

	*out = NULL;
	*nr = 0;
	for (size_t t = 0; t < p->nr_threads; t++) {
		char path[96], *txt, *at, *end;
		size_t len;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", p->pid, p->tids[t]);
		txt = proc_read_file(path, &len);
		if (!txt)
			return -1;
		for (at = txt;; at = end) {
			long c = strtol(at, &end, 10);

			if (end == at)
				break;
			if (c <= 0 || c > INT32_MAX ||
			    cr_grow(out, &cap, *nr + 1, sizeof(**out), 16)) {
				free(txt);
				return c > 0 ? -1 : cr_err("malformed %s", path);
			}
			(*out)[(*nr)++] = c;
		}
		free(txt);
	}
	return 0;
}

static bool same_mm(pid_t a, pid_t b)
{
	return syscall(__NR_kcmp, a, b, KCMP_VM, 0, 0) == 0;
}

/* A child that shares the memory of `pid` (vfork, or clone with CLONE_VM), or 0. */
static pid_t memory_sharing_child(pid_t pid)
{
	char path[64], *txt, *at, *end;
	pid_t found = 0;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	txt = proc_read_file(path, &len);
	if (!txt) {
		cr_err_reset();
		return 0;
	}
	for (at = txt; !found; at = end) {
		long c = strtol(at, &end, 10);

		if (end == at)
			break;
		if (c > 0 && c <= INT32_MAX && same_mm(pid, c))
			found = c;
	}
	free(txt);
	return found;
}

/* A vfork lasts until the child calls exec, which shells do at once: wait for the
 * sharing to end, a second at most. */
static pid_t vfork_lasting(pid_t pid)
{
	struct timespec ms = { 0, 1000000 };
	pid_t c = 0;

	for (int i = 0; i < 1000 && (c = memory_sharing_child(pid)); i++)
		nanosleep(&ms, NULL);
	return c;
}

static int vfork_error(pid_t parent, pid_t child)
{
	return cr_err("process %d is in the middle of vfork: its child %d still shares its "
		      "memory; dump it once the child has called exec or exited", parent, child);
}

static int add_zombie(struct dump_ctx *ctx, pid_t pid, const struct proc_stat *st)
{
	struct dump_proc *z = tree_add(ctx, pid);

	if (!z)
		return -1;
	z->zombie = true;
	z->stat = *st;
	z->exit_status = st->exit_code;
	pr_info("process %d is a zombie (status 0x%x)", pid, st->exit_code);
	return 0;
}

/* A child that failed a check or the seize may just have ended: then it is a zombie
 * now, or gone (reaped at once: its parent ignores SIGCHLD). 1 if so. */
static int ended_meanwhile(struct dump_ctx *ctx, pid_t pid)
{
	struct proc_stat st;

	if (read_stat(pid, &st)) {
		cr_err_reset();
		return 1;
	}
	if (st.state != 'Z')
		return 0;
	cr_err_reset();
	return add_zombie(ctx, pid, &st) ? -1 : 1;
}

/* One child of a seized process: seized in turn, or recorded as a zombie. */
static int seize_child(struct dump_ctx *ctx, pid_t pid)
{
	struct dump_proc *p;
	pid_t sharer;
	int ended;

	ended = ended_meanwhile(ctx, pid);
	if (ended)
		return ended < 0 ? -1 : 0;
	if (process_dump_check(pid)) {
		ended = ended_meanwhile(ctx, pid);
		return ended ? (ended < 0 ? -1 : 0) : -1;
	}
	sharer = vfork_lasting(pid);
	if (sharer)
		return vfork_error(pid, sharer);
	p = tree_add(ctx, pid);
	if (!p)
		return -1;
	if (task_seize(p) == 0)
		return 0;
	if (!p->seized) {
		free(p);
		ctx->nr_procs--;
		ended = ended_meanwhile(ctx, pid);
		if (ended)
			return ended < 0 ? -1 : 0;
	}
	sharer = memory_sharing_child(pid);
	return sharer ? (cr_err_reset(), vfork_error(pid, sharer)) : -1;
}

/* Is p (not the root) made by fork from its parent? A process sharing its parent's
 * memory is still in vfork. */
static int check_vfork(const struct dump_ctx *ctx, const struct dump_proc *p)
{
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (ctx->procs[i]->pid == p->stat.ppid && !ctx->procs[i]->zombie &&
		    same_mm(p->pid, p->stat.ppid))
			return vfork_error(p->stat.ppid, p->pid);
	return 0;
}

static int check_rules(const struct dump_ctx *ctx)
{
	struct tree_node *n = calloc(ctx->nr_procs, sizeof(*n));
	int rc;

	if (!n)
		return cr_err("out of memory");
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		const struct proc_stat *st = &ctx->procs[i]->stat;

		n[i] = (struct tree_node){ st->pid, st->ppid, st->pgid, st->sid };
	}
	rc = tree_check(n, ctx->nr_procs, ctx->shell_job);
	free(n);
	return rc;
}

int tree_seize(struct dump_ctx *ctx, pid_t root)
{
	struct dump_proc *p = tree_add(ctx, root);
	pid_t sharer = vfork_lasting(root);

	if (!p)
		return -1;
	if (sharer)
		return vfork_error(root, sharer);
	if (task_seize(p))
		return -1;
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		pid_t *kids;
		size_t nr;
		int rc = 0;

		p = ctx->procs[i];
		if (p->zombie)
			continue;
		if (read_stat(p->pid, &p->stat) || (i && check_vfork(ctx, p)) ||
		    list_children(p, &kids, &nr))
			return -1;
		for (size_t k = 0; k < nr && !rc; k++)
			if (!known(ctx, kids[k]))
				rc = seize_child(ctx, kids[k]);
		free(kids);
		if (rc)
			return -1;
		if (ctx->nr_procs > TREE_MAX_PROCS)
			return cr_err("the tree of process %d has more than %d processes", root,
				      TREE_MAX_PROCS);
	}
	pr_info("seized %zu processes", ctx->nr_procs);
	return check_rules(ctx);
}

int tree_write(struct dump_ctx *ctx)
{
	ProcessEntry *pes = calloc(ctx->nr_procs, sizeof(*pes));
	ProcessEntry **ptrs = calloc(ctx->nr_procs, sizeof(*ptrs));
	PsTree tree = PS_TREE__INIT;
	int rc = -1;

	if (!pes || !ptrs) {
		cr_err("out of memory");
		goto out;
	}
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		struct dump_proc *p = ctx->procs[i];
		ProcessEntry *pe = &pes[i];

		process_entry__init(pe);
		pe->pid = p->pid;
		pe->ppid = p->stat.ppid;
		pe->pgid = p->stat.pgid;
		pe->sid = p->stat.sid;
		pe->n_tids = p->zombie ? 1 : p->nr_threads;
		pe->tids = p->zombie ? (uint32_t *)&p->pid : (uint32_t *)p->tids;
		pe->has_exit_signal = 1;
		pe->exit_signal = p->stat.exit_signal;
		if (p->group_stop) {
			pe->has_stop_signal = 1;
			pe->stop_signal = p->group_stop;
		}
		if (p->zombie) {
			pe->has_zombie = pe->has_exit_status = 1;
			pe->zombie = 1;
			pe->exit_status = p->exit_status;
		}
		ptrs[i] = pe;
	}
	tree.n_procs = ctx->nr_procs;
	tree.procs = ptrs;
	rc = img_write_msg(&ctx->dir, "pstree.img", IMAGE_KIND__IMG_PSTREE, &tree.base);
out:
	free(pes);
	free(ptrs);
	return rc;
}

/* ---- restore: reading the tree ---- */

static bool id_ok(uint32_t id)
{
	return id >= 2 && id <= 0x3fffffff;
}

/* A zombie's status must be one an exit or a fatal default action gives. */
static bool exit_status_ok(uint32_t st)
{
	int sig = st & 0x7f;

	if (!sig)
		return !(st & ~0xff00u);
	if (st & ~0xffu || sig > 64)
		return false;
	return sig != SIGCHLD && sig != SIGCONT && sig != SIGURG && sig != SIGWINCH &&
	       sig != SIGSTOP && sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU;
}

static int check_entry(const struct restore_ctx *ctx, const ProcessEntry *pe)
{
	const char *path = ctx->dir.path;

	if (!id_ok(pe->pid) || !pe->n_tids || pe->tids[0] != pe->pid || pe->n_tids > 65536 ||
	    !pe->pgid || pe->pgid > 0x3fffffff || !pe->sid || pe->sid > 0x3fffffff ||
	    pe->ppid > 0x3fffffff)
		return cr_err("%s: invalid process tree entry (PID %u)", path, pe->pid);
	if (pe->has_exit_signal && (pe->exit_signal < 0 || pe->exit_signal > 64))
		return cr_err("%s: process %u has an invalid exit signal", path, pe->pid);
	if (pe->zombie && (pe->n_tids != 1 || !pe->has_exit_status ||
			   !exit_status_ok(pe->exit_status) || pe->has_stop_signal))
		return cr_err("%s: zombie %u has an invalid exit status", path, pe->pid);
	return 0;
}

/* Every PID and TID once, all in range. */
static int check_ids(const struct restore_ctx *ctx, uint32_t *ids, size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		if (!id_ok(ids[i]))
			return cr_err("%s: invalid PID or TID %u", ctx->dir.path, ids[i]);
		for (size_t k = 0; k < i; k++)
			if (ids[k] == ids[i])
				return cr_err("%s: PID or TID %u appears twice", ctx->dir.path,
					      ids[i]);
	}
	return 0;
}

int tree_all_ids(struct restore_ctx *ctx, uint32_t **out, size_t *nr)
{
	size_t n = 0;

	for (size_t i = 0; i < ctx->tree->n_procs; i++)
		n += ctx->tree->procs[i]->n_tids;
	*out = malloc((n + 1) * sizeof(**out));
	if (!*out)
		return cr_err("out of memory");
	*nr = 0;
	for (size_t i = 0; i < ctx->tree->n_procs; i++)
		for (size_t t = 0; t < ctx->tree->procs[i]->n_tids; t++)
			(*out)[(*nr)++] = ctx->tree->procs[i]->tids[t];
	return 0;
}

static int link_procs(struct restore_ctx *ctx)
{
	size_t n = ctx->tree->n_procs;

	ctx->procs = calloc(n, sizeof(*ctx->procs));
	if (!ctx->procs)
		return cr_err("out of memory");
	ctx->nr_procs = n;
	for (size_t i = 0; i < n; i++) {
		struct restore_proc *rp = calloc(1, sizeof(*rp));

		if (!rp)
			return cr_err("out of memory");
		ctx->procs[i] = rp;
		rp->ctx = ctx;
		rp->pe = ctx->tree->procs[i];
		rp->pid = rp->pe->pid;
		rp->zombie = rp->pe->zombie;
		rp->nr_threads = rp->pe->n_tids;
		rp->page_fd = -1;
		rp->proxy_fds[0] = rp->proxy_fds[1] = rp->proxy_fds[2] = -1;
		rp->lazy_uffd = rp->lazy_pidfd = -1;
		for (size_t k = 0; k < i && !rp->parent; k++)
			if (ctx->procs[k]->pe->pid == rp->pe->ppid)
				rp->parent = ctx->procs[k];
		if (i && (!rp->parent || rp->parent->zombie))
			return cr_err("%s: process %u has no living parent before it in the tree",
				      ctx->dir.path, rp->pid);
		if (rp->parent)
			rp->parent->nr_children++;
	}
	for (size_t i = 0; i < n; i++) {
		struct restore_proc *rp = ctx->procs[i];

		rp->children = calloc(rp->nr_children + 1, sizeof(*rp->children));
		if (!rp->children)
			return cr_err("out of memory");
		rp->nr_children = 0;
	}
	for (size_t i = 1; i < n; i++) {
		struct restore_proc *q = ctx->procs[i]->parent;

		q->children[q->nr_children++] = ctx->procs[i];
	}
	return 0;
}

int tree_load(struct restore_ctx *ctx)
{
	PsTree *t;
	struct tree_node *n;
	uint32_t *ids;
	size_t nr;
	int rc;

	t = ctx->tree = img_read_msg(&ctx->dir, "pstree.img", IMAGE_KIND__IMG_PSTREE,
				     &ps_tree__descriptor);
	if (!t)
		return -1;
	if (!t->n_procs || t->n_procs > TREE_MAX_PROCS)
		return cr_err("%s: holds %zu processes", ctx->dir.path, t->n_procs);
	if (t->procs[0]->zombie)
		return cr_err("%s: the root process is a zombie", ctx->dir.path);
	for (size_t i = 0; i < t->n_procs; i++)
		if (check_entry(ctx, t->procs[i]))
			return -1;
	if (tree_all_ids(ctx, &ids, &nr))
		return -1;
	rc = check_ids(ctx, ids, nr);
	free(ids);
	n = rc ? NULL : calloc(t->n_procs, sizeof(*n));
	if (rc || !n)
		return rc ? -1 : cr_err("out of memory");
	for (size_t i = 0; i < t->n_procs; i++)
		n[i] = (struct tree_node){ t->procs[i]->pid, t->procs[i]->ppid, t->procs[i]->pgid,
					   t->procs[i]->sid };
	rc = tree_check(n, t->n_procs, ctx->shell_job);
	free(n);
	if (rc) {
		char why[512];

		snprintf(why, sizeof(why), "%s", cr_last_error());
		cr_err_reset();
		return cr_err("%s: %s", ctx->dir.path, why);
	}
	return link_procs(ctx);
}

/* ---- restore: the plan's parts ---- */

static struct tree_node node_of(const ProcessEntry *pe)
{
	return (struct tree_node){ pe->pid, pe->ppid, pe->pgid, pe->sid };
}

/* Each child with its PID, as fork makes it; cryo's tracing attaches it at birth. */
void tree_plan_children(struct restore_proc *rp, struct plan *p, bool before_setsid)
{
	struct tree_node me = node_of(rp->pe);

	for (size_t i = 0; i < rp->nr_children; i++) {
		const ProcessEntry *c = rp->children[i]->pe;
		struct tree_node cn = node_of(c);
		const Core *core = rp->children[i]->core;
		uint64_t pid = c->pid;
		struct cr_clone_args args = {
			.flags = (core && core->shares_files ? CLONE_FILES : 0) |
				 (core && core->shares_fs ? CLONE_FS : 0),
			.exit_signal = c->has_exit_signal ? c->exit_signal : SIGCHLD,
			.set_tid = plan_data(p, &pid, sizeof(pid)),
			.set_tid_size = 1,
		};

		if (tree_forks_before_setsid(&me, &cn) != before_setsid)
			continue;
		plan_call(p, "creating a child process", 0, __NR_clone3,
			  plan_data(p, &args, sizeof(args)), sizeof(args), 0, 0, 0, 0);
	}
}

void tree_plan_setsid(struct restore_proc *rp, struct plan *p)
{
	if (rp->pe->sid == rp->pe->pid)
		plan_call(p, "setsid", 0, __NR_setsid, 0, 0, 0, 0, 0, 0);
}

static bool pid_in_tree(const struct restore_ctx *ctx, uint32_t pid)
{
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (ctx->procs[i]->pe->pid == pid)
			return true;
	return false;
}

void tree_plan_group(struct restore_proc *rp, struct plan *p)
{
	const ProcessEntry *pe = rp->pe;

	/* A session leader leads its group already; a group led from outside is the
	 * restorer's, which every process starts in. */
	if (pe->sid == pe->pid)
		return;
	if (pe->pgid == pe->pid || pid_in_tree(rp->ctx, pe->pgid))
		plan_call(p, "setpgid", 0, __NR_setpgid, 0, pe->pgid == pe->pid ? 0 : pe->pgid,
			  0, 0, 0, 0);
}

int tree_plan_exit(struct restore_proc *rp, struct plan *p)
{
	uint32_t st = rp->pe->exit_status;
	int sig = st & 0x7f;
	struct cr_ksigaction dfl = { 0 };
	uint64_t set = 1ULL << (sig - 1);
	struct rlimit64 nocore = { 0, 0 };
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	static const struct __user_cap_data_struct none[2];

	/* Not root: the zombie ends as it was, dumpable and without cryo's file
	 * capabilities (a zombie keeps the dumpability it ended with: a reader who is not
	 * root would not see its exit code, nor cryo dump it again). */
	if (!userns_is_root()) {
		plan_call(p, "giving up cryo's capabilities", 0, __NR_capset,
			  plan_data(p, &hdr, sizeof(hdr)), plan_data(p, none, sizeof(none)), 0,
			  0, 0, 0);
		plan_call(p, "PR_SET_DUMPABLE", 0, __NR_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0, 0);
	}
	if (!sig) {
		plan_call(p, "exiting as the zombie did", 0, __NR_exit_group, (st >> 8) & 0xff, 0,
			  0, 0, 0, 0);
		return 0;
	}
	/* No core file: the status then lacks the core-dumped bit (docs/TREES.md). */
	plan_call(p, "no core dump", 0, __NR_prlimit64, 0, RLIMIT_CORE,
		  plan_data(p, &nocore, sizeof(nocore)), 0, 0, 0);
	if (sig != SIGKILL) {
		plan_call(p, "the default action", 0, __NR_rt_sigaction, sig,
			  plan_data(p, &dfl, sizeof(dfl)), 0, 8, 0, 0);
		plan_call(p, "unblocking the signal", 0, __NR_rt_sigprocmask, SIG_UNBLOCK,
			  plan_data(p, &set, sizeof(set)), 0, 8, 0, 0);
	}
	plan_call(p, "dying as the zombie did", 0, __NR_kill, rp->pid, sig, 0, 0, 0, 0);
	return 0;
}

void tree_plan_reaped(struct restore_proc *rp, struct plan *p)
{
	static const struct timespec now = { 0, 0 };
	uint64_t taken = 0;

	for (size_t i = 0; i < rp->nr_children; i++) {
		const ProcessEntry *c = rp->children[i]->pe;
		uint64_t set;

		if (!c->zombie || c->exit_signal <= 0 || c->exit_signal > 64)
			continue;
		set = 1ULL << (c->exit_signal - 1);
		/* A standard signal is pending once however many sent it. */
		if (c->exit_signal < 32 && (taken & set))
			continue;
		taken |= set;
		plan_call(p, "taking the signal of an ended child", PLAN_MAY_FAIL,
			  __NR_rt_sigtimedwait, plan_data(p, &set, sizeof(set)), 0,
			  plan_data(p, &now, sizeof(now)), 8, 0, 0);
	}
}

int tree_group_order(struct restore_ctx *ctx, struct restore_proc ***out)
{
	size_t n = 0;

	*out = malloc((ctx->nr_procs + 1) * sizeof(**out));
	if (!*out)
		return cr_err("out of memory");
	for (int leaders = 1; leaders >= 0; leaders--)
		for (size_t i = 0; i < ctx->nr_procs; i++) {
			const ProcessEntry *pe = ctx->procs[i]->pe;

			if ((pe->pgid == pe->pid) == leaders)
				(*out)[n++] = ctx->procs[i];
		}
	return 0;
}
