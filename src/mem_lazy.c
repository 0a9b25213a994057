/* Lazy restore (--lazy-pages): a process's private anonymous memory is registered with
 * userfaultfd by the task itself, which then runs before its pages are in. A supplier
 * process answers each first touch from the page file and fills the rest in the
 * background; a guard process holding the same userfaultfds kills the tree if the
 * supplier dies before every page is in; each holder's tripwire (lazy_wire.c) kills it
 * from inside that holder's own death, both dying at once included
 * (docs/ARCHITECTURE.md, "Lazy restore"). Its marks and its plan serve the eager fill
 * through userfaultfd too (mem_fill.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "lazy.h"
#include "log.h"
#include "mem.h"
#include "page_map.h"
#include "proc.h"
#include "sys.h"
#include "util.h"

#define LAZY_COPY_MAX (256u << 10)	/* one background copy: bounds a fault's wait */
#define LAZY_FAULT_SPAN (64u << 10)	/* bytes answered per fault, from the page on */
#define LAZY_THREADS 3			/* background fillers */
#define LAZY_FILL_QUIET 0.002		/* s without a fault: the background fill starts */
#define LAZY_FILL_WAIT 0.010		/* s after the tree runs: it starts anyway */
#define LAZY_CACHE 16			/* checked chunks the fault path keeps */
#define LAZY_CACHE_ON_TOUCH 2		/* on-touch: the supplier lives as long as the tree */
#define LAZY_IDLE_TRIM 1.0		/* s without a fault: the cached chunks are freed */
#define LAZY_PROBE_EVERY 0.25		/* s between on-touch checks of which trees live */
#define LAZY_MAX_MMS 4096		/* address spaces served (the tree and its forks) */
#define LAZY_MSGS 32
#define LAZY_FORK_FIND 1.0		/* s a forked child is looked for */
#define LAZY_SCAN_FAST 0.001		/* s between looks while one is not found */
#define LAZY_SCAN_SLOW 0.020		/* s between looks after that */
#define LAZY_SYNC_WAIT_MS 10000		/* cryo's wait for the supplier's answer */
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- pieces (pure) ---- */

bool lazy_vma_ok(const Vma *v)
{
	uint64_t eager = VMF(LO) | VMF(WF) | VMF(DC) | VMF(DP);

	/* Made read-only before any page is in, a mapping would lose its accounting
	 * (mprotect drops VM_ACCOUNT without an anon_vma): its pages go in first. The
	 * heap too: registered, it would not merge with what brk adds to it. And a
	 * mapping that had huge pages: UFFDIO_COPY fills it with small ones. */
	return v->kind == VMA_KIND__VMA_ANON_PRIVATE && !v->inherited && !v->n_guards &&
	       !v->thp_bytes &&
	       (v->prot & PROT_WRITE) && !(v->vm_flags & eager) &&
	       !(v->name && !strcmp(v->name, "[heap]"));
}

static int pieces_grow(struct lazy_pieces *ps)
{
	struct lazy_piece *n;
	size_t cap;

	if (ps->nr < ps->cap)
		return 0;
	cap = ps->cap ? ps->cap * 2 : 64;
	n = realloc(ps->p, cap * sizeof(*n));
	if (!n)
		return -1;
	ps->p = n;
	ps->cap = cap;
	return 0;
}

int lazy_pieces_add(struct lazy_pieces *ps, uint64_t vaddr, uint64_t len, uint32_t src,
		    uint64_t off)
{
	/* Never merged: a piece stays inside one VMA, and one copy never crosses two. */
	if (pieces_grow(ps))
		return -1;
	ps->p[ps->nr++] = (struct lazy_piece){ vaddr, len, off, src, false };
	return 0;
}

static int piece_cmp(const void *a, const void *b)
{
	const struct lazy_piece *x = a, *y = b;

	if (x->src != y->src)
		return x->src < y->src ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

void lazy_pieces_sort(struct lazy_pieces *ps)
{
	qsort(ps->p, ps->nr, sizeof(*ps->p), piece_cmp);
}

int lazy_pieces_split(struct lazy_pieces *ps, uint64_t addr)
{
	for (size_t i = 0; i < ps->nr; i++) {
		struct lazy_piece *p = &ps->p[i], tail;

		if (addr <= p->vaddr || addr >= p->vaddr + p->len)
			continue;
		if (pieces_grow(ps))
			return -1;
		p = &ps->p[i];
		tail = *p;
		tail.vaddr = addr;
		tail.off += addr - p->vaddr;
		tail.len -= addr - p->vaddr;
		p->len = addr - p->vaddr;
		/* File order: the tail follows its head. */
		memmove(&ps->p[i + 2], &ps->p[i + 1], (ps->nr - i - 1) * sizeof(*p));
		ps->p[i + 1] = tail;
		ps->nr++;
		return 0;
	}
	return 0;
}

int lazy_pieces_gone(struct lazy_pieces *ps, uint64_t start, uint64_t end)
{
	if (end <= start)
		return 0;
	if (lazy_pieces_split(ps, start) || lazy_pieces_split(ps, end))
		return -1;
	for (size_t i = 0; i < ps->nr; i++)
		if (ps->p[i].vaddr >= start && ps->p[i].vaddr < end)
			ps->p[i].gone = true;
	return 0;
}

int lazy_pieces_move(struct lazy_pieces *ps, uint64_t from, uint64_t to, uint64_t len)
{
	bool *in;
	int rc = -1;

	if (!len || from == to)
		return 0;
	if (lazy_pieces_split(ps, from) || lazy_pieces_split(ps, from + len))
		return -1;
	/* Decide first, move after: a piece moved may land inside [from, from + len). */
	in = calloc(ps->nr + 1, sizeof(bool));
	if (!in)
		return -1;
	for (size_t i = 0; i < ps->nr; i++)
		in[i] = ps->p[i].vaddr >= from && ps->p[i].vaddr < from + len;
	for (size_t i = 0; i < ps->nr; i++)
		if (in[i])
			ps->p[i].vaddr = ps->p[i].vaddr - from + to;
	rc = 0;
	free(in);
	return rc;
}

const struct lazy_piece *lazy_pieces_at(const struct lazy_pieces *ps, uint64_t addr)
{
	for (size_t i = 0; i < ps->nr; i++)
		if (addr >= ps->p[i].vaddr && addr < ps->p[i].vaddr + ps->p[i].len)
			return &ps->p[i];
	return NULL;
}

const struct lazy_piece *lazy_pieces_from(const struct lazy_pieces *ps, uint32_t src,
					  uint64_t off)
{
	size_t lo = 0, hi = ps->nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct lazy_piece *p = &ps->p[mid];

		if (p->src < src || (p->src == src && p->off + p->len <= off))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ps->nr && ps->p[lo].src == src ? &ps->p[lo] : NULL;
}

uint64_t lazy_probe_addr(const struct lazy_pieces *ps)
{
	uint64_t a = LAZY_PROBE_FROM;

	for (const struct lazy_piece *p; (p = lazy_pieces_at(ps, a));)
		a = p->vaddr + p->len;
	return a;
}

/* ---- the plan (cryo) ---- */

/* A child's mappings inherited from this process keep its pages: those the child
 * shares copy-on-write must be in before it is made. */
static bool child_inherits(const struct restore_proc *rp, const Vma *v)
{
	for (size_t c = 0; c < rp->nr_children; c++) {
		const Core *core = rp->children[c]->core;

		for (size_t i = 0; core && core->mm && i < core->mm->n_vmas; i++) {
			const Vma *cv = core->mm->vmas[i];

			if (cv->inherited && cv->start < v->end && cv->end > v->start)
				return true;
		}
	}
	return false;
}

int lazy_mark(struct restore_proc *rp, const bool *has_pages)
{
	const MmState *mm = rp->core->mm;
	size_t vi = 0;

	rp->lazy = false;
	rp->fill_now = false;
	if (!rp->ctx->lazy_pages && !fill_wanted(rp->ctx))
		return 0;
	if (!rp->lazy_vmas) {
		rp->lazy_vmas = calloc(mm->n_vmas + 1, sizeof(bool));
		rp->lazy_segs = calloc(rp->nr_segs + 1, sizeof(bool));
		if (!rp->lazy_vmas || !rp->lazy_segs)
			return cr_err("out of memory");
	}
	for (size_t i = 0; i < mm->n_vmas; i++) {
		rp->lazy_vmas[i] = has_pages[i] && lazy_vma_ok(mm->vmas[i]) &&
				   !child_inherits(rp, mm->vmas[i]);
		rp->lazy |= rp->lazy_vmas[i];
	}
	/* A segment may go on into the next VMA: lazy only if it lies in one lazy VMA
	 * (an eager read fills the rest before anything is registered). */
	for (size_t i = 0; i < rp->nr_segs; i++) {
		const struct page_seg *sg = &rp->segs[i];

		while (vi < mm->n_vmas && mm->vmas[vi]->end <= sg->vaddr)
			vi++;
		rp->lazy_segs[i] = vi < mm->n_vmas && rp->lazy_vmas[vi] &&
				   sg->vaddr >= mm->vmas[vi]->start &&
				   sg->vaddr + sg->len <= mm->vmas[vi]->end;
	}
	/* Not lazy: filled by cryo before the task goes on, where that pays. */
	if (!rp->ctx->lazy_pages)
		rp->lazy = rp->fill_now = rp->lazy && fill_worth(rp);
	return 0;
}

bool lazy_seg(const struct restore_proc *rp, size_t i)
{
	return rp->lazy && rp->lazy_segs[i];
}

void lazy_plan(struct restore_proc *rp, struct plan *p)
{
	if (!rp->lazy)
		return;
	rp->lazy_call = p->nr_calls;
	plan_call(p, "making a userfaultfd", 0, __NR_userfaultfd,
		  O_CLOEXEC | O_NONBLOCK | (rp->fill_now ? CR_UFFD_USER_MODE_ONLY : 0), 0, 0, 0, 0,
		  0);
	rp->table_main2 = plan_new_table(p);
	rp->stop_main2 = plan_stop_block(p, rp->pid, rp->pid, rp->stop_sig);
	/* Its fd is known once the call ran: cryo writes it here. */
	rp->lazy_close = p->nr_calls;
	plan_call(p, "closing the userfaultfd", 0, __NR_close, -1, 0, 0, 0, 0, 0);
}

bool *lazy_eager_chunks(const struct restore_proc *rp, size_t k)
{
	const PageMap *pm = rp->srcs[k].pm;
	size_t n = pm->n_chunk_crc32c;
	bool *want;

	if (!rp->lazy || !pm->chunk_size)
		return NULL;
	want = calloc(n + 1, sizeof(bool));
	if (!want)
		return NULL;
	for (size_t i = 0; i < rp->nr_segs; i++) {
		const struct page_seg *sg = &rp->segs[i];

		if (sg->src == k && !rp->lazy_segs[i])
			for (uint64_t c = sg->off / pm->chunk_size;
			     c < n && c * pm->chunk_size < sg->off + sg->len; c++)
				want[c] = true;
	}
	return want;
}

/* ---- messages between cryo, the supplier and the guard ---- */

/* MSG_UFFD: fds uffd and pidfd (a fork's uffd alone). MSG_PID (to the guard): a
 * forked child's pidfd. MSG_SYNC: from cryo through the supplier to the guard and
 * back, once every earlier message is done (each holder armed every process). */
enum { MSG_UFFD = 1, MSG_END, MSG_DONE, MSG_PID, MSG_SYNC };
#define LAZY_MSG_FDS 2

struct lazy_msg {
	uint32_t type;
	uint32_t proc;		/* MSG_UFFD from cryo: the process's index; else ~0 */
	int32_t pid;
};

static int send_msg(int sock, const struct lazy_msg *m, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(LAZY_MSG_FDS * sizeof(int))];
	struct iovec iov = { (void *)m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (nfds) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == sizeof(*m) ? 0 : -1;
}

/* 1 with a message, 0 at the end of the stream, -1 on error. fds[LAZY_MSG_FDS] get
 * -1 if absent. */
static int recv_msg(int sock, struct lazy_msg *m, int *fds)
{
	char cbuf[CMSG_SPACE(LAZY_MSG_FDS * sizeof(int))];
	struct iovec iov = { m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	ssize_t n;

	for (int i = 0; i < LAZY_MSG_FDS; i++)
		fds[i] = -1;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -1 : 0;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			memcpy(fds, CMSG_DATA(c),
			       (k > LAZY_MSG_FDS ? LAZY_MSG_FDS : k) * sizeof(int));
		}
	return n == sizeof(*m) ? 1 : -1;
}

/* ---- killing the tree (supplier or guard, when its pair is gone) ---- */

struct tree_pids {
	pid_t pids[LAZY_MAX_MMS];
	int pidfds[LAZY_MAX_MMS];
	int ends[LAZY_MAX_MMS][2];	/* its tripwire's read ends (lazy_wire.c) */
	size_t nr;
};

/* The children of every thread of pid, up to max; how many. */
static int read_children(pid_t pid, pid_t *out, int max)
{
	char path[64], buf[4096];
	struct dirent *de;
	int found = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)) && found < max) {
		char *at, *end;
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(buf, sizeof(buf), "/proc/%d/task/%s/children", pid, de->d_name);
		fd = open(buf, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[n > 0 ? n : 0] = 0;
		for (at = buf; *at && found < max; at = end) {
			long child = strtol(at, &end, 10);

			if (end == at)
				break;
			out[found++] = (pid_t)child;
		}
	}
	closedir(d);
	return found;
}

static void kill_descendants(pid_t pid, int depth)
{
	pid_t kids[512];
	int n;

	if (depth > 64)
		return;
	n = read_children(pid, kids, 512);
	for (int i = 0; i < n; i++) {
		/* Stopped first: it cannot fork while its own children are found. */
		kill(kids[i], SIGSTOP);
		kill_descendants(kids[i], depth + 1);
		kill(kids[i], SIGKILL);
	}
}

static bool pidfd_alive(int pidfd)
{
	return pidfd >= 0 && !syscall(__NR_pidfd_send_signal, pidfd, 0, NULL, 0);
}

/* Every process of the tree and whatever it forked since: their memory may never be
 * complete now. Only a live one's PID is followed into /proc (a dead one's number may
 * be another process's now); stopped, it stays alive until killed. */
static void kill_tree(const struct tree_pids *t)
{
	for (size_t i = 0; i < t->nr; i++)
		if (t->pidfds[i] >= 0)
			syscall(__NR_pidfd_send_signal, t->pidfds[i], SIGSTOP, NULL, 0);
	for (size_t i = 0; i < t->nr; i++)
		if (pidfd_alive(t->pidfds[i])) {
			kill_descendants(t->pids[i], 0);
			syscall(__NR_pidfd_send_signal, t->pidfds[i], SIGKILL, NULL, 0);
		}
}

static void tree_drop(struct tree_pids *t, size_t i)
{
	close(t->pidfds[i]);
	wire_disarm(t->ends[i]);
	t->nr--;
	t->pids[i] = t->pids[t->nr];
	t->pidfds[i] = t->pidfds[t->nr];
	t->ends[i][0] = t->ends[t->nr][0];
	t->ends[i][1] = t->ends[t->nr][1];
}

/* The entries of processes that are gone. */
static void tree_prune(struct tree_pids *t)
{
	for (size_t i = t->nr; i-- > 0;)
		if (!pidfd_alive(t->pidfds[i]))
			tree_drop(t, i);
}

/* Keeps the pidfd and the tripwire's ends; -1 if there is no room (then they are
 * closed). */
static int tree_add(struct tree_pids *t, pid_t pid, int pidfd, const int *ends)
{
	int e[2] = { ends[0], ends[1] };

	if (t->nr == LAZY_MAX_MMS)
		tree_prune(t);
	if (t->nr == LAZY_MAX_MMS) {
		close(pidfd);
		wire_disarm(e);
		return -1;
	}
	t->pids[t->nr] = pid;
	t->pidfds[t->nr] = pidfd;
	t->ends[t->nr][0] = e[0];
	t->ends[t->nr][1] = e[1];
	t->nr++;
	return 0;
}

/* Arm this holder's tripwire for pid and keep it: 0, 1 if the process is gone (the
 * number F_SETOWN took may have been another's: nothing kept), -1 on error. */
static int tree_arm(struct tree_pids *t, const struct lazy_wire *w, pid_t pid, int pidfd)
{
	int ends[2];

	/* A process that ended meanwhile (a forked child that exits at once, reaped by
	 * its parent) cannot be made an owner (F_SETOWN_EX: ESRCH): nothing to arm. */
	if (wire_arm(w, pid, ends)) {
		bool gone = !pidfd_alive(pidfd);

		close(pidfd);
		if (gone)
			cr_err_reset();
		return gone ? 1 : -1;
	}
	if (!pidfd_alive(pidfd)) {
		wire_disarm(ends);
		close(pidfd);
		return 1;
	}
	return tree_add(t, pid, pidfd, ends);
}

/* Is pid a live process of the tree's (a dead one's number may be a new child's)? */
static bool tree_has(const struct tree_pids *t, pid_t pid)
{
	for (size_t i = 0; i < t->nr; i++)
		if (t->pids[i] == pid && pidfd_alive(t->pidfds[i]))
			return true;
	return false;
}

/* Every page is in: this holder's ends of the tripwire kill no one from now on. */
static void tree_disarm(struct tree_pids *t)
{
	for (size_t i = 0; i < t->nr; i++)
		wire_disarm(t->ends[i]);
}

/* ---- the guard ---- */

/* Holds every userfaultfd the supplier holds, so that the supplier's death unregisters
 * nothing; kills the tree if the supplier goes before saying every page is in, and
 * through its own tripwire (lazy_wire.c) if it dies itself. */
static void guard_main(int sock)
{
	static struct tree_pids tree;
	static struct lazy_wire wire;
	int fds[LAZY_MSG_FDS], r;
	struct lazy_msg m;

	prctl(PR_SET_NAME, "cryo-lazy-guard");
	/* A session and group apart from the supplier's: no one kill of a group or a
	 * session takes both holders of the userfaultfds at once. */
	setsid();
	if (wire_make(&wire))
		_exit(1);
	for (;;) {
		r = recv_msg(sock, &m, fds);
		if (r > 0 && m.type == MSG_DONE) {
			tree_disarm(&tree);
			_exit(0);
		}
		if (r > 0 && m.type == MSG_SYNC && !send_msg(sock, &m, NULL, 0))
			continue;
		/* The userfaultfd (fds[0] of MSG_UFFD) stays open until the end. */
		if (r > 0 && m.type == MSG_UFFD && m.pid > 0)
			r = tree_arm(&tree, &wire, m.pid, fds[1]) < 0 ? -1 : 1;
		else if (r > 0 && m.type == MSG_PID)
			r = tree_arm(&tree, &wire, m.pid, fds[0]) < 0 ? -1 : 1;
		if (r <= 0) {
			kill_tree(&tree);
			_exit(1);
		}
	}
}

/* ---- the supplier ---- */

struct lazy_mm {
	int uffd;
	const struct page_src *srcs;	/* the page files (a pre-dump chain's too) */
	size_t nr_srcs;
	struct lazy_pieces ps;
	uint64_t next_chunk, nr_chunks;	/* over every file's chunks, in turn */
	uint8_t *taken;			/* per chunk: a filler or a fault's answer has it */
	int busy;			/* fillers (or the fault path) on a chunk of it now */
	bool dead;			/* its address space is gone */
	uint64_t probe;			/* on-touch: an address outside every piece */
};

struct fault {
	struct lazy_mm *mm;
	uint64_t addr;
};

struct chunk_cache {
	int fd;
	uint64_t chunk, used;
	uint8_t *buf;
};

struct supplier {
	struct restore_ctx *ctx;
	int ctl, guard;
	struct lazy_mm *mms[LAZY_MAX_MMS];
	size_t nr_mms;
	pthread_rwlock_t events;	/* held to write by the reader of events */
	pthread_mutex_t jobs;
	size_t job_at;			/* round robin over the address spaces */
	bool ended;
	bool fill_waits;		/* the tree runs; its first touches come first */
	double ended_at;
	volatile bool failed;
	struct tree_pids tree;
	struct fault *faults;		/* to answer again (an event came first) */
	size_t nr_faults, cap_faults;
	struct chunk_cache cache[LAZY_CACHE];
	int nr_cache;			/* of cache[] in use */
	uint64_t tick;
	int live_fillers;		/* under jobs */
	int wake;			/* eventfd: a filler ended (the main loop looks) */
	bool on_touch;			/* --lazy-fill on-touch: faults only */
	double last_fault, last_probe;
	struct lazy_wire wire;
	int forks_unseen;		/* forked children not yet found and armed */
	double fork_at;			/* the last fork event */
	double scan_at;			/* the last look for its children */
};

/* The checked bytes of one checksum chunk of a page file, into buf (the fault path's
 * cache: a copy of its own); its length, or -1 (read error or damaged data). */
static ssize_t lazy_read_chunk(const struct page_src *src, uint64_t chunk, uint8_t *buf)
{
	const PageMap *pm = src->pm;
	uint64_t off = chunk * pm->chunk_size;
	ssize_t len = page_chunk_len(src, chunk), got = 0;

	if (len < 0)
		return -1;
	while (got < len) {
		ssize_t n = pread(src->fd, buf + got, len - got, off + got);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		got += n;
	}
	if (crc32c(0, buf, len) != pm->chunk_crc32c[chunk])
		return -1;
	return len;
}

/* Background job k of an address space: chunk *chunk of file *src. */
static void job_chunk(const struct lazy_mm *mm, uint64_t k, uint32_t *src, uint64_t *chunk)
{
	uint32_t i = 0;

	while (i + 1 < mm->nr_srcs && k >= mm->srcs[i].pm->n_chunk_crc32c)
		k -= mm->srcs[i++].pm->n_chunk_crc32c;
	*src = i;
	*chunk = k;
}

int lazy_uffd_copy(int uffd, uint64_t dst, const uint8_t *src, uint64_t len,
		     bool *first_exists)
{
	uint64_t start = dst;

	while (len) {
		struct uffdio_copy c = { .dst = dst, .src = (uint64_t)src, .len = len };

		if (!ioctl(uffd, UFFDIO_COPY, &c))
			return 0;
		if (c.copy > 0) {
			dst += c.copy;
			src += c.copy;
			len -= c.copy;
			continue;
		}
		if (c.copy == -EEXIST || errno == EEXIST || errno == ENOENT) {
			if (dst == start && first_exists)
				*first_exists = true;
			dst += CR_PAGE_SIZE;
			src += CR_PAGE_SIZE;
			len -= CR_PAGE_SIZE;
			continue;
		}
		return -errno;
	}
	return 0;
}

static void mm_dead(struct supplier *s, struct lazy_mm *mm)
{
	pthread_mutex_lock(&s->jobs);
	mm->dead = true;
	pthread_mutex_unlock(&s->jobs);
}

/* Does chunk k of file src hold bytes of a piece still to fill? Under the events
 * lock. */
static bool chunk_wanted(const struct lazy_mm *mm, uint32_t src, uint64_t k)
{
	uint64_t cs = mm->srcs[src].pm->chunk_size, start = k * cs, end = start + cs;

	for (const struct lazy_piece *p = lazy_pieces_from(&mm->ps, src, start);
	     p && p < mm->ps.p + mm->ps.nr && p->src == src && p->off < end; p++)
		if (!p->gone)
			return true;
	return false;
}

/* Copy the chunk's bytes (buf, from file offset start) into every piece they belong
 * to, a slice at a time, never over a piece an event made gone. A filler waits out an
 * event not yet read (wait); the reader of events itself gets -EAGAIN. */
static int fill_chunk(struct supplier *s, struct lazy_mm *mm, uint32_t src, uint64_t start,
		      const uint8_t *buf, size_t len, bool wait)
{
	uint64_t pos = start, end = start + len;
	struct timespec pause_ts = { 0, 50000 };

	while (pos < end) {
		const struct lazy_piece *p;
		uint64_t from, to;
		int rc = 0;

		pthread_rwlock_rdlock(&s->events);
		p = lazy_pieces_from(&mm->ps, src, pos);
		if (!p || p->off >= end) {
			pthread_rwlock_unlock(&s->events);
			return 0;
		}
		from = pos > p->off ? pos : p->off;
		to = p->off + p->len < end ? p->off + p->len : end;
		if (to - from > LAZY_COPY_MAX)
			to = from + LAZY_COPY_MAX;
		if (!p->gone)
			rc = lazy_uffd_copy(mm->uffd, p->vaddr + (from - p->off),
					    buf + (from - start), to - from, NULL);
		pthread_rwlock_unlock(&s->events);
		if (rc == -EAGAIN && wait) {
			nanosleep(&pause_ts, NULL);
			continue;
		}
		if (rc)
			return rc;
		pos = to;
	}
	return 0;
}

/* The next chunk of some address space to fill, round robin. */
static struct lazy_mm *next_job(struct supplier *s, uint64_t *chunk)
{
	struct lazy_mm *mm = NULL;

	pthread_mutex_lock(&s->jobs);
	for (size_t n = 0; n < s->nr_mms; n++) {
		struct lazy_mm *m = s->mms[(s->job_at + n) % s->nr_mms];

		while (m->next_chunk < m->nr_chunks && m->taken[m->next_chunk])
			m->next_chunk++;
		if (m->dead || m->next_chunk >= m->nr_chunks)
			continue;
		mm = m;
		m->taken[m->next_chunk] = 1;
		*chunk = m->next_chunk++;
		mm->busy++;
		s->job_at = (s->job_at + n + 1) % s->nr_mms;
		break;
	}
	pthread_mutex_unlock(&s->jobs);
	return mm;
}

static void job_done(struct supplier *s, struct lazy_mm *mm)
{
	pthread_mutex_lock(&s->jobs);
	mm->busy--;
	pthread_mutex_unlock(&s->jobs);
}

static uint64_t job_of(const struct lazy_mm *mm, uint32_t src, uint64_t chunk)
{
	for (uint32_t i = 0; i < src; i++)
		chunk += mm->srcs[i].pm->n_chunk_crc32c;
	return chunk;
}

/* The fault path takes job k unless a filler has: then it copies the whole chunk it
 * has just read and checked, and no filler reads it again. */
static bool job_claim(struct supplier *s, struct lazy_mm *mm, uint64_t k)
{
	bool got = false;

	pthread_mutex_lock(&s->jobs);
	if (k < mm->nr_chunks && !mm->taken[k]) {
		mm->taken[k] = 1;
		mm->busy++;
		got = true;
	}
	pthread_mutex_unlock(&s->jobs);
	return got;
}

/* A claimed job left unfinished (an event first): back to the fillers. */
static void job_return(struct supplier *s, struct lazy_mm *mm, uint64_t k)
{
	pthread_mutex_lock(&s->jobs);
	mm->taken[k] = 0;
	if (k < mm->next_chunk)
		mm->next_chunk = k;
	mm->busy--;
	pthread_mutex_unlock(&s->jobs);
}

/* A chunk's buffer with its pages in: the answer to a fault does not wait for 256
 * page faults of the supplier's own. */
static uint8_t *chunk_buf_new(void)
{
	void *p = mmap(NULL, IMG_CHUNK_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void chunk_buf_free(uint8_t *buf)
{
	if (buf)
		munmap(buf, IMG_CHUNK_SIZE);
}

static void *filler_main(void *arg)
{
	struct supplier *s = arg;
	struct lazy_mm *mm;
	uint64_t k;

	/* At the process's own priority: at nice 5 the fill of 1 GiB took 0.31 s against
	 * 0.24 s, and the first touches come before it anyway (fill_when_quiet). */
	while ((mm = next_job(s, &k))) {
		const struct page_src *f;
		const uint8_t *buf = NULL;
		uint64_t chunk, cs;
		uint32_t src;
		bool wanted;
		ssize_t len;
		int rc;

		job_chunk(mm, k, &src, &chunk);
		f = &mm->srcs[src];
		cs = f->pm->chunk_size;
		pthread_rwlock_rdlock(&s->events);
		wanted = chunk_wanted(mm, src, chunk);
		pthread_rwlock_unlock(&s->events);
		if (!wanted) {
			job_done(s, mm);
			continue;
		}
		len = page_map_chunk(f, chunk, &buf);
		rc = len < 0 ? -EIO : fill_chunk(s, mm, src, chunk * cs, buf, len, true);
		if (rc == -ESRCH)
			mm_dead(s, mm);
		else if (rc) {
			cr_err("%s bytes %llu-%llu of %s: %s",
			       len < 0 ? "cannot read or check" : "cannot copy",
			       (unsigned long long)(chunk * cs),
			       (unsigned long long)((chunk + 1) * cs - 1), f->pm->pages_file,
			       len < 0 ? "damaged or unreadable" : strerror(-rc));
			s->failed = true;
		}
		job_done(s, mm);
	}
	pthread_mutex_lock(&s->jobs);
	s->live_fillers--;
	pthread_mutex_unlock(&s->jobs);
	/* The main loop may be waiting in poll: the end of the fill is seen now. */
	if (write(s->wake, &(uint64_t){ 1 }, sizeof(uint64_t)) < 0)
		pr_debug("lazy pages: cannot wake the supplier's main loop");
	return NULL;
}

/* Every address space filled (or gone), nothing more to come. */
static bool all_done(struct supplier *s)
{
	bool done = s->ended;

	pthread_mutex_lock(&s->jobs);
	for (size_t i = 0; done && i < s->nr_mms; i++)
		if (!s->mms[i]->dead && (s->mms[i]->next_chunk < s->mms[i]->nr_chunks ||
					 s->mms[i]->busy))
			done = false;
	pthread_mutex_unlock(&s->jobs);
	return done;
}

static const uint8_t *cached_chunk(struct supplier *s, const struct page_src *src, uint64_t k)
{
	int cap = s->on_touch ? LAZY_CACHE_ON_TOUCH : LAZY_CACHE;
	struct chunk_cache *victim = &s->cache[0];

	for (int i = 0; i < s->nr_cache; i++) {
		struct chunk_cache *c = &s->cache[i];

		if (c->buf && c->fd == src->fd && c->chunk == k) {
			c->used = ++s->tick;
			return c->buf;
		}
		if (c->used < victim->used)
			victim = c;
	}
	if (s->nr_cache < cap)
		victim = &s->cache[s->nr_cache++];
	if (!victim->buf)
		victim->buf = chunk_buf_new();
	if (!victim->buf)
		return NULL;
	victim->fd = -1;
	if (lazy_read_chunk(src, k, victim->buf) < 0)
		return NULL;
	victim->fd = src->fd;
	victim->chunk = k;
	victim->used = ++s->tick;
	return victim->buf;
}

/* Idle a while: the checked chunks go (an on-touch supplier may wait for hours). */
static void trim_cache(struct supplier *s)
{
	for (int i = 0; i < s->nr_cache; i++) {
		chunk_buf_free(s->cache[i].buf);
		s->cache[i] = (struct chunk_cache){ 0 };
	}
	s->nr_cache = 0;
}

/* Does the address space still exist? A zero page asked for outside every piece: the
 * kernel says ESRCH once the address space is gone, and otherwise fills nothing a fault
 * there would not have filled with zeros too (or finds it unregistered, or present). */
static bool mm_alive(const struct lazy_mm *mm)
{
	struct uffdio_zeropage z = {
		.range = { lazy_probe_addr(&mm->ps), CR_PAGE_SIZE },
		.mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE,
	};

	return !ioctl(mm->uffd, UFFDIO_ZEROPAGE, &z) || errno != ESRCH;
}

/* On touch, nothing copies into an address space all the time: its end is found by
 * asking. */
static void probe_mms(struct supplier *s)
{
	double t = mono_s();

	if (t - s->last_probe < LAZY_PROBE_EVERY)
		return;
	s->last_probe = t;
	for (size_t i = 0; i < s->nr_mms; i++)
		if (!s->mms[i]->dead && !mm_alive(s->mms[i]))
			mm_dead(s, s->mms[i]);
}

static int zero_page(int uffd, uint64_t page)
{
	struct uffdio_zeropage z = { .range = { page, CR_PAGE_SIZE } };
	struct uffdio_range r = { page, CR_PAGE_SIZE };

	if (!ioctl(uffd, UFFDIO_ZEROPAGE, &z))
		return 0;
	/* EEXIST: filled meanwhile. ENOENT: unmapped since the fault (another thread's
	 * munmap, whose event comes next); the waiter, woken, faults again or ends. */
	if (errno == EEXIST || errno == ENOENT)
		return ioctl(uffd, UFFDIO_WAKE, &r) ? -errno : 0;
	return -errno;
}

static void start_fillers(struct supplier *s);

/* A fault's claimed chunk (job), its answer given: the rest of its bytes. An event
 * not yet read hands the job back to the fillers. */
static int fill_claimed(struct supplier *s, struct lazy_mm *mm, uint32_t src, uint64_t k,
			uint64_t job, const uint8_t *buf)
{
	const struct page_src *f = &mm->srcs[src];
	int rc = fill_chunk(s, mm, src, k * f->pm->chunk_size, buf, page_chunk_len(f, k),
			    false);

	if (rc == -EAGAIN) {
		job_return(s, mm, job);
		if (!s->fill_waits)
			start_fillers(s);
		return 0;
	}
	job_done(s, mm);
	return rc;
}

/* Answer a fault: the page and what follows it in its piece and chunk, then (unless on
 * touch) the rest of that chunk if no filler has it. 0, -EAGAIN (an event first),
 * -ESRCH, or another error. Only the event reader calls this. */
static int serve_fault(struct supplier *s, struct lazy_mm *mm, uint64_t addr)
{
	uint64_t page = addr & ~(uint64_t)(CR_PAGE_SIZE - 1), off, k, start, end, cs, job;
	/* On touch: that page alone, so a copy holds what it touched and no more. */
	uint64_t span = s->on_touch ? CR_PAGE_SIZE : LAZY_FAULT_SPAN;
	const struct lazy_piece *p = lazy_pieces_at(&mm->ps, page);
	struct uffdio_range r = { page, CR_PAGE_SIZE };
	const uint8_t *buf;
	bool exists = false, whole;
	int rc;

	if (!p || p->gone)
		return zero_page(mm->uffd, page);
	cs = mm->srcs[p->src].pm->chunk_size;
	off = p->off + (page - p->vaddr);
	k = off / cs;
	start = k * cs;
	job = job_of(mm, p->src, k);
	whole = !s->on_touch && job_claim(s, mm, job);
	buf = cached_chunk(s, &mm->srcs[p->src], k);
	rc = buf ? 0 : -EIO;
	end = CR_MIN(CR_MIN(p->off + p->len, start + cs), off + span);
	if (!rc)
		rc = lazy_uffd_copy(mm->uffd, page, buf + (off - start), end - off, &exists);
	if (!rc && exists && ioctl(mm->uffd, UFFDIO_WAKE, &r))
		rc = -errno;
	if (!whole)
		return rc;
	if (rc) {
		job_return(s, mm, job);
		return rc;
	}
	return fill_claimed(s, mm, p->src, k, job, buf);
}

static int mm_add(struct supplier *s, int uffd, const struct page_src *srcs, size_t nr_srcs,
		  const struct lazy_pieces *from)
{
	struct lazy_mm *mm = calloc(1, sizeof(*mm));

	if (!mm || s->nr_mms == LAZY_MAX_MMS)
		goto fail;
	mm->uffd = uffd;
	mm->srcs = srcs;
	mm->nr_srcs = nr_srcs;
	for (size_t i = 0; i < nr_srcs; i++)
		mm->nr_chunks += srcs[i].pm->n_chunk_crc32c;
	mm->taken = calloc(mm->nr_chunks ? mm->nr_chunks : 1, 1);
	if (!mm->taken)
		goto fail;
	if (from->nr) {
		mm->ps.p = malloc(from->nr * sizeof(*from->p));
		if (!mm->ps.p)
			goto fail;
		memcpy(mm->ps.p, from->p, from->nr * sizeof(*from->p));
		mm->ps.nr = mm->ps.cap = from->nr;
	}
	pthread_mutex_lock(&s->jobs);
	s->mms[s->nr_mms++] = mm;
	pthread_mutex_unlock(&s->jobs);
	return 0;
fail:
	if (mm)
		free(mm->taken);
	free(mm);
	return -1;
}

int lazy_proc_pieces(const struct restore_proc *rp, struct lazy_pieces *ps)
{
	for (size_t i = 0; i < rp->nr_segs; i++) {
		const struct page_seg *sg = &rp->segs[i];

		if (rp->lazy_segs[i] && lazy_pieces_add(ps, sg->vaddr, sg->len, sg->src, sg->off))
			return -1;
	}
	lazy_pieces_sort(ps);
	return 0;
}

static int add_fault(struct supplier *s, struct lazy_mm *mm, uint64_t addr)
{
	if (s->nr_faults == s->cap_faults) {
		size_t cap = s->cap_faults ? s->cap_faults * 2 : 64;
		struct fault *n = realloc(s->faults, cap * sizeof(*n));

		if (!n)
			return -1;
		s->faults = n;
		s->cap_faults = cap;
	}
	s->faults[s->nr_faults++] = (struct fault){ mm, addr };
	return 0;
}

/* Fillers end when no work is left; an address space added later (a fork) starts
 * them again. */
static void start_fillers(struct supplier *s)
{
	pthread_attr_t a;
	pthread_t t;

	if (s->on_touch)
		return;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&s->jobs);
	for (int i = s->live_fillers; i < LAZY_THREADS; i++)
		if (!pthread_create(&t, &a, filler_main, s))
			s->live_fillers++;
	pthread_mutex_unlock(&s->jobs);
	pthread_attr_destroy(&a);
}

/* Just released, a process touches its first pages in a burst: the background fill
 * waits for a pause in its faults, or LAZY_FILL_WAIT at most, and leaves the CPUs
 * to the answers of those faults meanwhile. */
static void fill_when_quiet(struct supplier *s)
{
	double t = mono_s();
	double since = s->last_fault > s->ended_at ? s->last_fault : s->ended_at;

	if (!s->fill_waits ||
	    (t - since < LAZY_FILL_QUIET && t - s->ended_at < LAZY_FILL_WAIT))
		return;
	s->fill_waits = false;
	start_fillers(s);
}

/* One message of an address space's userfaultfd, under the events lock. */
static int on_event(struct supplier *s, struct lazy_mm *mm, const struct uffd_msg *m)
{
	struct lazy_msg fwd = { MSG_UFFD, ~0u, 0 };
	int fd;

	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT:
		s->last_fault = mono_s();
		return add_fault(s, mm, m->arg.pagefault.address);
	case UFFD_EVENT_FORK:
		/* The child has its own copy of what is not in yet, filled the same way;
		 * the guard holds its userfaultfd too before anything else. */
		fd = (int)m->arg.fork.ufd;
		if (send_msg(s->guard, &fwd, &fd, 1) ||
		    mm_add(s, fd, mm->srcs, mm->nr_srcs, &mm->ps))
			return -1;
		/* Not in /proc yet: found and armed once the fork is done. */
		s->forks_unseen++;
		s->fork_at = mono_s();
		if (s->ended && !s->fill_waits)
			start_fillers(s);
		return 0;
	case UFFD_EVENT_REMAP:
		return lazy_pieces_move(&mm->ps, m->arg.remap.from, m->arg.remap.to,
					m->arg.remap.len);
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		return lazy_pieces_gone(&mm->ps, m->arg.remove.start, m->arg.remove.end);
	default:
		return 0;
	}
}

static int read_events(struct supplier *s, struct lazy_mm *mm)
{
	struct uffd_msg msgs[LAZY_MSGS];
	ssize_t n;
	int rc = 0;

	pthread_rwlock_wrlock(&s->events);
	n = read(mm->uffd, msgs, sizeof(msgs));
	for (ssize_t i = 0; !rc && n > 0 && i < n / (ssize_t)sizeof(msgs[0]); i++)
		rc = on_event(s, mm, &msgs[i]);
	pthread_rwlock_unlock(&s->events);
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return cr_perr("cannot read a userfaultfd");
	return rc ? cr_err("cannot follow the process's memory (out of memory?)") : 0;
}

/* Faults first answered with EAGAIN are answered once their event was read. */
static int serve_faults(struct supplier *s)
{
	size_t keep = 0;

	for (size_t i = 0; i < s->nr_faults; i++) {
		struct fault f = s->faults[i];
		int rc = f.mm->dead ? 0 : serve_fault(s, f.mm, f.addr);

		if (rc == -EAGAIN)
			s->faults[keep++] = f;
		else if (rc == -ESRCH)
			mm_dead(s, f.mm);
		else if (rc)
			return cr_err("cannot supply page 0x%llx: %s",
				      (unsigned long long)f.addr, strerror(-rc));
	}
	s->nr_faults = keep;
	return 0;
}

/* A process from cryo (fds: its userfaultfd and pidfd): to the guard, then armed. */
static int arm_proc(struct supplier *s, struct lazy_msg *m, int *fds)
{
	if (send_msg(s->guard, m, fds, 2))
		return cr_perr("cannot reach the guard");
	if (tree_arm(&s->tree, &s->wire, m->pid, fds[1]))
		return cr_err("process %d: cannot arm the lazy pages' tripwire", m->pid);
	return 0;
}

/* Its parent from /proc/PID/status (no error recorded: it may be gone), or 0. */
static pid_t parent_of(pid_t pid)
{
	char buf[2048], *at;

	if (proc_peek_pid_file(pid, "status", buf, sizeof(buf)) < 0)
		return 0;
	at = strstr(buf, "\nPPid:");
	return at ? (pid_t)strtol(at + 7, NULL, 10) : 0;
}

/* A child of the tree's (a fork event's), armed here and by the guard. */
static void arm_child(struct supplier *s, pid_t parent, pid_t pid)
{
	struct lazy_msg m = { MSG_PID, ~0u, pid };
	int pidfd = sys_pidfd_open(pid, 0), r;

	if (pidfd < 0)
		return;
	if (parent_of(pid) != parent) {
		close(pidfd);
		return;
	}
	r = tree_arm(&s->tree, &s->wire, pid, pidfd);
	if (r < 0 || (!r && send_msg(s->guard, &m, &s->tree.pidfds[s->tree.nr - 1], 1)))
		s->failed = true;
	if (!r && s->forks_unseen > 0)
		s->forks_unseen--;
}

/* After fork events: their children, found among the tree's, for LAZY_FORK_FIND
 * after the last (every LAZY_SCAN_FAST while fewer were found than forked, then every
 * LAZY_SCAN_SLOW: a busy fault path does not pay for a look at each wakeup). */
static void find_children(struct supplier *s)
{
	for (size_t i = 0; i < s->tree.nr; i++) {
		pid_t kids[256];
		int n;

		if (!pidfd_alive(s->tree.pidfds[i]))
			continue;
		n = read_children(s->tree.pids[i], kids, 256);
		for (int k = 0; k < n; k++)
			if (!tree_has(&s->tree, kids[k]))
				arm_child(s, s->tree.pids[i], kids[k]);
	}
	/* One gone before it was seen is never found. */
	if (mono_s() - s->fork_at > LAZY_FORK_FIND) {
		s->forks_unseen = 0;
		s->fork_at = 0;
	}
}

/* A message from cryo: a process's userfaultfd, a sync, or the end of the tree's
 * making. */
static int on_ctl(struct supplier *s)
{
	const struct restore_ctx *ctx = s->ctx;
	struct lazy_pieces ps = { 0 };
	int fds[LAZY_MSG_FDS], r, rc;
	struct lazy_msg m;

	r = recv_msg(s->ctl, &m, fds);
	if (r < 0)
		return cr_perr("cannot receive from cryo");
	if (!r) {
		if (!s->ended)	/* the restore failed: cryo kills what it made */
			return cr_err("the restore ended before the tree ran");
		close(s->ctl);
		s->ctl = -1;
		return 0;
	}
	if (m.type == MSG_END) {
		s->ended = true;
		s->ended_at = mono_s();
		s->fill_waits = !s->on_touch;
		return 0;
	}
	if (m.type == MSG_SYNC)
		return send_msg(s->guard, &m, NULL, 0) ? cr_perr("cannot reach the guard") : 0;
	if (m.type != MSG_UFFD || m.proc >= ctx->nr_procs || fds[0] < 0 || fds[1] < 0 ||
	    m.pid <= 0)
		return cr_err("bad message from cryo");
	if (arm_proc(s, &m, fds))
		return -1;
	for (size_t i = 0; !s->on_touch && i < ctx->procs[m.proc]->nr_srcs; i++)
		if (page_map_open(&ctx->procs[m.proc]->srcs[i]))
			return -1;
	rc = lazy_proc_pieces(ctx->procs[m.proc], &ps) ||
	     mm_add(s, fds[0], ctx->procs[m.proc]->srcs, ctx->procs[m.proc]->nr_srcs, &ps);
	free(ps.p);
	return rc;
}

/* The guard's answer to a sync, passed on to cryo; anything else: it is gone. */
static int on_guard(struct supplier *s)
{
	int fds[LAZY_MSG_FDS];
	struct lazy_msg m;

	if (recv_msg(s->guard, &m, fds) != 1 || m.type != MSG_SYNC)
		return cr_err("the guard of the lazy pages is gone");
	if (s->ctl < 0 || send_msg(s->ctl, &m, NULL, 0))
		return cr_perr("cannot answer cryo");
	return 0;
}

static int supplier_poll(struct supplier *s)
{
	struct pollfd pf[LAZY_MAX_MMS + 3];
	struct lazy_mm *of[LAZY_MAX_MMS + 3];
	int n = 0, r;

	pf[n] = (struct pollfd){ s->guard, POLLIN, 0 };
	of[n++] = NULL;
	pf[n] = (struct pollfd){ s->wake, POLLIN, 0 };
	of[n++] = NULL;
	if (s->ctl >= 0) {
		pf[n] = (struct pollfd){ s->ctl, POLLIN, 0 };
		of[n++] = NULL;
	}
	for (size_t i = 0; i < s->nr_mms; i++)
		if (!s->mms[i]->dead) {
			pf[n] = (struct pollfd){ s->mms[i]->uffd, POLLIN, 0 };
			of[n++] = s->mms[i];
		}
	r = poll(pf, n, s->nr_faults || s->fill_waits || s->forks_unseen ? 1 :
			s->on_touch ? (int)(LAZY_PROBE_EVERY * 1000) : 20);
	if (r < 0)
		return errno == EINTR ? 0 : cr_perr("poll");
	if (pf[0].revents && on_guard(s))
		return -1;
	if (pf[1].revents && read(s->wake, &(uint64_t){ 0 }, sizeof(uint64_t)) < 0)
		pr_debug("lazy pages: cannot read the supplier's wake-up");
	for (int i = 2; i < n; i++) {
		if (!pf[i].revents)
			continue;
		if (!of[i] && on_ctl(s))
			return -1;
		if (of[i] && read_events(s, of[i]))
			return -1;
	}
	if (serve_faults(s))
		return -1;
	if (s->fork_at && mono_s() - s->scan_at >= (s->forks_unseen ? LAZY_SCAN_FAST :
									  LAZY_SCAN_SLOW)) {
		s->scan_at = mono_s();
		find_children(s);
	}
	fill_when_quiet(s);
	if (s->on_touch)
		probe_mms(s);
	if (s->nr_cache && mono_s() - s->last_fault > LAZY_IDLE_TRIM)
		trim_cache(s);
	return 0;
}

static void supplier_run(struct supplier *s)
{
	struct lazy_msg done = { MSG_DONE, ~0u, 0 };

	while (!s->failed && !(all_done(s) && !s->nr_faults))
		if (supplier_poll(s))
			s->failed = true;
	if (s->failed) {
		pr_warn("lazy pages: %s; the tree is killed", cr_last_error());
		kill_tree(&s->tree);
		_exit(1);
	}
	/* Disarmed here, then by the guard as it hears "done". */
	tree_disarm(&s->tree);
	send_msg(s->guard, &done, NULL, 0);
	_exit(0);
}

/* ---- starting the pair ---- */

static bool pid_needed(const struct restore_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; i < ctx->nr_tree_pids; i++)
		if ((pid_t)ctx->tree_pids[i] == pid)
			return true;
	return false;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Only these fds stay open (and the standard ones). */
static void close_all_but(int *keep, int n)
{
	int from = 3;

	qsort(keep, n, sizeof(int), cmp_int);
	for (int i = 0; i < n; i++) {
		if (keep[i] < from)
			continue;
		if (keep[i] > from)
			syscall(__NR_close_range, from, keep[i] - 1, 0);
		from = keep[i] + 1;
	}
	syscall(__NR_close_range, from, ~0U, 0);
}

/* The pair outlives cryo (-d): nothing of cryo's output is held open by it. */
static void quiet_stdio(void)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	struct stat st;

	if (null < 0)
		return;
	dup2(null, 0);
	dup2(null, 1);
	if (fstat(2, &st) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
		dup2(null, 2);
	close(null);
}

/* fork, again while the child's PID is one the image needs. */
static pid_t fork_free(const struct restore_ctx *ctx)
{
	for (int tries = 0; tries < 64; tries++) {
		pid_t pid = fork();
		int status;

		if (pid <= 0) {
			if (!pid && pid_needed(ctx, getpid()))
				_exit(3);
			return pid;
		}
		if (!pid_needed(ctx, pid))
			return pid;
		waitpid(pid, &status, 0);
	}
	errno = EAGAIN;
	return -1;
}

static void supplier_main(struct restore_ctx *ctx, int ctl)
{
	static struct supplier s;
	int keep[LAZY_MAX_MMS + 2], nk = 0, gs[2];
	pthread_rwlockattr_t ra;
	sigset_t none;
	pid_t g;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);	/* cryo's blocked signals are not its */
	prctl(PR_SET_NAME, "cryo-lazy");
	setsid();	/* its own session: a terminal's signals are not its */
	signal(SIGPIPE, SIG_IGN);
	quiet_stdio();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, gs))
		_exit(1);
	g = fork_free(ctx);
	if (g < 0)
		_exit(1);
	keep[nk++] = ctl;
	keep[nk++] = gs[g ? 0 : 1];
	if (!g) {
		close_all_but(keep + 1, 1);
		guard_main(gs[1]);
	}
	for (size_t i = 0; i < ctx->nr_procs; i++)
		for (size_t k = 0; ctx->procs[i]->lazy && k < ctx->procs[i]->nr_srcs &&
				   nk < LAZY_MAX_MMS; k++)
			keep[nk++] = ctx->procs[i]->srcs[k].fd;
	close_all_but(keep, nk);
	/* Its own tripwire, as the guard has (a shared one would go off only at the later
	 * of their deaths, possibly after the earlier released a userfaultfd). */
	if (wire_make(&s.wire))
		_exit(1);
	s.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s.wake < 0)
		_exit(1);
	s.ctx = ctx;
	s.ctl = ctl;
	s.guard = gs[0];
	s.on_touch = ctx->lazy_on_touch;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s.events, &ra);
	pthread_mutex_init(&s.jobs, NULL);
	/* While cryo makes the tree: the first faults find buffers ready. */
	for (int i = 0; i < LAZY_CACHE_ON_TOUCH; i++)
		s.cache[i].buf = chunk_buf_new();
	supplier_run(&s);
}

struct lazy_ctl {
	int sock;
	pid_t pid;
	size_t nr_lazy, taken;		/* lazy processes, and those handed over */
	bool synced;			/* the sync after the last one is sent */
};

int lazy_start(struct restore_ctx *ctx)
{
	struct lazy_ctl *l;
	size_t nr = 0;
	int sv[2];
	pid_t pid;

	for (size_t i = 0; i < ctx->nr_procs; i++)
		nr += ctx->procs[i]->lazy && !ctx->procs[i]->fill_now;
	if (!nr)
		return 0;
	if (!lazy_probe(LAZY_FEATURES, 0))
		return cr_err("--lazy-pages: this kernel's userfaultfd cannot supply missing "
			      "pages with fork, remap, remove and unmap events (cryo check "
			      "--feature lazy-pages)");
	l = calloc(1, sizeof(*l));
	if (!l)
		return cr_err("out of memory");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		free(l);
		return cr_perr("cannot make the lazy pages' socket");
	}
	pid = fork_free(ctx);
	if (!pid) {
		close(sv[0]);
		supplier_main(ctx, sv[1]);
		_exit(1);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		free(l);
		return cr_perr("cannot start the lazy pages' supplier");
	}
	l->sock = sv[0];
	l->pid = pid;
	l->nr_lazy = nr;
	ctx->lazy = l;
	pr_info("lazy pages supplied by process %d", pid);
	return 0;
}

static int register_vmas(struct restore_proc *rp, int uffd)
{
	const MmState *mm = rp->core->mm;
	struct uffdio_api api = { .api = UFFD_API,
				  .features = rp->fill_now ? 0 : LAZY_FEATURES };

	if (ioctl(uffd, UFFDIO_API, &api))
		return cr_perr("process %d: userfaultfd refuses %s", rp->pid,
			       rp->fill_now ? "its API handshake" : "the events lazy pages need");
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Vma *v = mm->vmas[i];
		struct uffdio_register reg = {
			.range = { v->start, v->end - v->start },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};

		if (!rp->lazy_vmas[i])
			continue;
		if (ioctl(uffd, UFFDIO_REGISTER, &reg))
			return cr_perr("process %d: cannot register 0x%llx-0x%llx with "
				       "userfaultfd", rp->pid, (unsigned long long)v->start,
				       (unsigned long long)v->end);
		if (!(reg.ioctls & (1ULL << _UFFDIO_COPY)))
			return cr_err("process %d: userfaultfd cannot copy into 0x%llx",
				      rp->pid, (unsigned long long)v->start);
	}
	return 0;
}

/* A userfaultfd with the events, a page registered and copied into. */
int lazy_probe(uint64_t features, int flags)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	static const uint8_t data[CR_PAGE_SIZE] = { 0x5a };
	uint8_t *m = mmap(NULL, CR_PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | flags), ok = 0;
	struct uffdio_register reg = { .range = { (uint64_t)m, CR_PAGE_SIZE },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct uffdio_copy c = { .dst = (uint64_t)m, .src = (uint64_t)data, .len = CR_PAGE_SIZE };

	if (fd >= 0 && m != MAP_FAILED && !ioctl(fd, UFFDIO_API, &api) &&
	    !ioctl(fd, UFFDIO_REGISTER, &reg) && !ioctl(fd, UFFDIO_COPY, &c))
		ok = m[0] == 0x5a;
	if (fd >= 0)
		close(fd);
	if (m != MAP_FAILED)
		munmap(m, CR_PAGE_SIZE);
	return ok;
}

static int lazy_sync(struct lazy_ctl *l)
{
	struct lazy_msg m = { MSG_SYNC, ~0u, 0 };

	if (send_msg(l->sock, &m, NULL, 0))
		return cr_perr("the lazy pages' supplier is gone");
	l->synced = true;
	return 0;
}

/* The task's next table starts by closing its userfaultfd, fd `fd`. */
static int close_call(struct restore_proc *rp, int64_t fd)
{
	struct plan_call c;

	plan_call_set(&c, 0, __NR_close, fd, 0, 0, 0, 0, 0);
	return mem_write_vm(rp->pid, (uint64_t)&rp->plan.calls[rp->lazy_close], &c, sizeof(c));
}

int lazy_take(struct restore_proc *rp)
{
	struct restore_ctx *ctx = rp->ctx;
	struct lazy_ctl *l = ctx->lazy;
	struct lazy_msg m = { MSG_UFFD, 0, rp->pid };
	struct plan_call c;
	int fds[2];

	if (!rp->lazy)
		return 0;
	if (!l && !rp->fill_now)
		return cr_err("no supplier for the lazy pages");
	while (m.proc < ctx->nr_procs && ctx->procs[m.proc] != rp)
		m.proc++;
	if (mem_read_vm(rp->pid, (uint64_t)&rp->plan.calls[rp->lazy_call], &c, sizeof(c)))
		return -1;
	if (c.result < 0 || c.result > INT32_MAX)
		return cr_err("process %d: bad userfaultfd %lld", rp->pid, (long long)c.result);
	rp->lazy_pidfd = sys_pidfd_open(rp->pid, 0);
	if (rp->lazy_pidfd < 0)
		return cr_perr("pidfd_open %d", rp->pid);
	rp->lazy_uffd = sys_pidfd_getfd(rp->lazy_pidfd, (int)c.result);
	if (rp->lazy_uffd < 0)
		return cr_perr("cannot take the userfaultfd of process %d", rp->pid);
	if (register_vmas(rp, rp->lazy_uffd))
		return -1;
	/* Filled now: cryo's copies go before the task runs, its own close then ends
	 * the registration. */
	if (rp->fill_now) {
		int rc = fill_proc(rp, rp->lazy_uffd);

		close(rp->lazy_uffd);
		close(rp->lazy_pidfd);
		rp->lazy_uffd = rp->lazy_pidfd = -1;
		return rc || close_call(rp, c.result);
	}
	fds[0] = rp->lazy_uffd;
	fds[1] = rp->lazy_pidfd;
	if (send_msg(l->sock, &m, fds, 2))
		return cr_perr("cannot hand process %d's memory to the supplier", rp->pid);
	/* After the last: its answer (lazy_armed) comes while the rest is made. */
	if (++l->taken == l->nr_lazy && lazy_sync(l))
		return -1;
	return close_call(rp, c.result);
}

int lazy_armed(struct restore_ctx *ctx)
{
	struct lazy_ctl *l = ctx->lazy;
	struct lazy_msg m;
	struct pollfd pf;
	int fds[LAZY_MSG_FDS];

	if (!l)
		return 0;
	if (!l->synced && lazy_sync(l))
		return -1;
	pf = (struct pollfd){ l->sock, POLLIN, 0 };
	if (poll(&pf, 1, LAZY_SYNC_WAIT_MS) != 1)
		return cr_err("the lazy pages' supplier did not answer within %d s",
			      LAZY_SYNC_WAIT_MS / 1000);
	if (recv_msg(l->sock, &m, fds) != 1 || m.type != MSG_SYNC)
		return cr_err("the lazy pages' supplier is gone");
	return 0;
}

void lazy_tree_made(struct restore_ctx *ctx)
{
	struct lazy_ctl *l = ctx->lazy;
	struct lazy_msg m = { MSG_END, ~0u, 0 };

	/* Only a dead supplier cannot hear it: its guard kills the tree. */
	if (l && send_msg(l->sock, &m, NULL, 0))
		pr_warn("the lazy pages' supplier is gone: the restored tree is killed");
}

void lazy_free(struct restore_ctx *ctx)
{
	struct lazy_ctl *l = ctx->lazy;

	for (size_t i = 0; i < ctx->nr_procs; i++) {
		struct restore_proc *rp = ctx->procs[i];

		if (!rp)
			continue;
		if (rp->lazy_uffd >= 0)
			close(rp->lazy_uffd);
		if (rp->lazy_pidfd >= 0)
			close(rp->lazy_pidfd);
		free(rp->lazy_vmas);
		free(rp->lazy_segs);
	}
	if (!l)
		return;
	close(l->sock);
	free(l);
	ctx->lazy = NULL;
}
