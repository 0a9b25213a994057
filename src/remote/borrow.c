/* Borrowing a live process's threads so that cryo's death cannot harm them: the
 * program sits in the trailing padding of the process's vDSO, its data in dead stack
 * memory, and every instant of a borrowed thread leads home by itself. */
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "layout.h"
#include "log.h"
#include "remote.h"
#include "restart.h"
#include "sys.h"
#include "util.h"
#include "vdso.h"

#define DATA_MIN (48u << 10)
#define DATA_MAX (256u << 10)
#define PROG_STACK (16u << 10)		/* below a control block: room for a signal frame */
#define TINY_ROOM 1024			/* less than any signal frame the kernel writes */
#define BELOW_RSP (128 + 1024)		/* the red zone and a margin */
#define MIN_SLOTS 8
#define MAX_SLOTS 256
#define BIT(sig) (1ULL << ((sig) - 1))
#define SIGACT_LEN (65 * 32)

#define BORROW_LEN CR_OFF(cr_borrow_end, cr_borrow_start)

/* ---- pure decisions ---- */

int borrow_pick_stop_signal(uint64_t ignored, uint64_t caught, uint64_t pending)
{
	/* Stop and continue signals act when they are sent; SIGKILL/SIGSTOP cannot be
	 * ignored. Default-ignored ones the process does not catch come next. */
	static const int defaults[] = { SIGURG, SIGWINCH, SIGCHLD };
	uint64_t never = BIT(SIGKILL) | BIT(SIGSTOP) | BIT(SIGCONT) | BIT(SIGTSTP) |
			 BIT(SIGTTIN) | BIT(SIGTTOU);

	for (int sig = 1; sig <= 31; sig++)
		if ((ignored & BIT(sig)) && !(never & BIT(sig)) && !(pending & BIT(sig)) &&
		    !(caught & BIT(sig)))
			return sig;
	for (size_t i = 0; i < CR_ARRAY_SIZE(defaults); i++) {
		int sig = defaults[i];

		if (!((ignored | caught | pending) & BIT(sig)))
			return sig;
	}
	return 0;
}

/* The end of the ELF data in a vDSO image: headers, sections and section headers. */
static uint64_t elf_extent(const uint8_t *img, size_t len)
{
	const Elf64_Ehdr *eh = (const void *)img;
	uint64_t end = sizeof(*eh);

	if (len < sizeof(*eh))
		return len;
	if (eh->e_phoff <= len && (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) <= len - eh->e_phoff)
		end = CR_MAX(end, eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr));
	if (eh->e_shoff > len || (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > len - eh->e_shoff)
		return len;
	end = CR_MAX(end, eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr));
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		const Elf64_Shdr *sh = (const void *)(img + eh->e_shoff + i * sizeof(Elf64_Shdr));

		if (sh->sh_type == SHT_NOBITS)
			continue;
		if (sh->sh_offset > len || sh->sh_size > len - sh->sh_offset)
			return len;
		end = CR_MAX(end, sh->sh_offset + sh->sh_size);
	}
	return end;
}

int borrow_find_padding(const uint8_t *img, size_t len, size_t *off, bool *ours)
{
	uint64_t start = CR_ALIGN_UP(elf_extent(img, len), 16) + 16;

	*ours = false;
	if (start + BORROW_LEN + PAD_HDR_SIZE > len)
		return cr_err("the vDSO has no free room after its code");
	/* A cryo that died left its program here, and maybe trampoline entries a
	 * thread still returns through: the same program is used again. */
	if (!memcmp(img + start, cr_borrow_start, BORROW_LEN))
		*ours = true;
	for (size_t i = start + (*ours ? BORROW_LEN + PAD_HDR_SIZE : 0); i < len && !*ours; i++)
		if (img[i])
			return cr_err("the vDSO's padding holds bytes cryo did not put there");
	*off = start;
	return (int)(len - start);
}

void borrow_clean_vdso(uint8_t *img, size_t len)
{
	size_t off;
	bool ours;

	if (borrow_find_padding(img, len, &off, &ours) < 0) {
		cr_err_reset();
		return;
	}
	if (ours)
		memset(img + off, 0, len - off);
}

/* A mapping only a stack lives in: [stack], or anonymous memory right above a guard. */
static bool stack_like(const struct proc_vmas *vmas, size_t i)
{
	const struct proc_vma *v = &vmas->v[i], *g = i ? &vmas->v[i - 1] : NULL;

	if ((v->prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE) || v->shared)
		return false;
	if (v->path && !strcmp(v->path, "[stack]"))
		return true;
	if (v->path && strncmp(v->path, "[anon:", 6))
		return false;
	return g && g->end == v->start && g->prot == PROT_NONE && !g->ino;
}

int borrow_dead_room(const struct proc_vmas *vmas, uint64_t rsp, uint64_t *lo, uint64_t *hi)
{
	for (size_t i = 0; i < vmas->nr; i++) {
		const struct proc_vma *v = &vmas->v[i];
		uint64_t top;

		if (rsp <= v->start || rsp > v->end)
			continue;
		if (!stack_like(vmas, i) || rsp - v->start < BELOW_RSP + CR_PAGE_SIZE)
			return 0;
		top = (rsp - BELOW_RSP) & ~63ULL;
		*lo = v->start + CR_PAGE_SIZE;
		*hi = top;
		return *hi > *lo;
	}
	return 0;
}

/* ---- slots in the padding ---- */

static bool slot_busy(const struct borrow_area *a, unsigned i)
{
	return a->slot_used[i / 64] & (1ULL << (i % 64));
}

static void slot_mark(struct borrow_area *a, unsigned i, bool used)
{
	if (used)
		a->slot_used[i / 64] |= 1ULL << (i % 64);
	else
		a->slot_used[i / 64] &= ~(1ULL << (i % 64));
}

/* n consecutive free slots. */
static int slot_alloc_n(struct borrow_area *a, unsigned n, uint64_t *addr)
{
	for (unsigned i = 0; i + n <= a->nr_slots; i += n) {
		unsigned k = 0;

		while (k < n && !slot_busy(a, i + k))
			k++;
		if (k < n)
			continue;
		for (k = 0; k < n; k++)
			slot_mark(a, i + k, true);
		*addr = a->slots + i * SLOT_SIZE;
		return 0;
	}
	return cr_err("process %d: cryo holds too many of its threads at once", a->pid);
}

static int slot_alloc(struct borrow_area *a, uint64_t *addr)
{
	return slot_alloc_n(a, 1, addr);
}

static void slot_free_n(struct borrow_area *a, uint64_t addr, unsigned n)
{
	unsigned i = (addr - a->slots) / SLOT_SIZE;

	for (unsigned k = 0; addr >= a->slots && k < n && i + k < a->nr_slots; k++)
		slot_mark(a, i + k, false);
}

static void slot_free(struct borrow_area *a, uint64_t addr)
{
	slot_free_n(a, addr, 1);
}

/* ---- the area ---- */

static int read_status_masks(pid_t pid, uint64_t *ignored, uint64_t *caught, uint64_t *pending)
{
	pid_t *tids;
	size_t n, len;
	char path[96];

	*pending = 0;
	if (proc_list_tasks(pid, &tids, &n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct proc_status st;
		char *txt;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tids[i]);
		txt = proc_read_file(path, &len);
		if (!txt || proc_parse_status(txt, len, &st)) {
			free(txt);
			if (i)
				continue;	/* a thread that exited */
			free(tids);
			return -1;
		}
		free(txt);
		*pending |= st.sig_pnd | st.shd_pnd;
		*ignored = st.sig_ign;
		*caught = st.sig_cgt;
	}
	free(tids);
	return 0;
}

static bool is_stub(const uint8_t *b)
{
	return b[0] == 0x6a && b[2] == 0x49 && b[3] == 0xba && b[12] == 0xe9;
}

/* A dead cryo's return stub is still needed while its thread lives and the stack
 * slot it was put in still points at it (the frame has not returned yet). */
static bool stub_needed(struct borrow_area *a, const uint8_t *b, uint64_t addr,
			const struct rthread *threads, size_t nr)
{
	uint32_t tid;
	uint64_t slot, now;

	memcpy(&tid, b + STUB_TID, 4);
	memcpy(&slot, b + STUB_RA_SLOT, 8);
	for (size_t i = 0; i < nr; i++)
		if ((uint32_t)threads[i].tid == tid)
			return mem_read(a->mem_fd, a->pid, slot, &now, 8) || now == addr;
	return false;
}

/* Slots a dead cryo left: tails are done with (no thread is inside the program any
 * more), stubs are kept while a frame may still return through them. */
static void keep_old_slots(struct borrow_area *a, const uint8_t *slots,
			   const struct rthread *threads, size_t nr)
{
	static const uint8_t zero[SLOT_SIZE];

	for (unsigned i = 0; i < a->nr_slots; i++) {
		const uint8_t *b = slots + i * SLOT_SIZE;
		bool keep;

		if (!memcmp(b, zero, SLOT_SIZE) || b[0] == 0x5c)
			continue;
		keep = i + 1 < a->nr_slots && is_stub(b) ?
		       stub_needed(a, b, a->slots + i * SLOT_SIZE, threads, nr) : true;
		if (!keep) {
			i++;
			continue;
		}
		slot_mark(a, i, true);
		if (is_stub(b) && i + 1 < a->nr_slots)
			slot_mark(a, ++i, true);
		a->old_slots = true;
	}
}

static int write_code(struct borrow_area *a, uint64_t vdso, const uint8_t *img, size_t off,
		      size_t room, bool ours, const struct rthread *threads, size_t nr)
{
	uint8_t *buf;
	uint32_t hdr[4] = { a->pid, 0, 0, 0 };
	size_t slots_room = room - BORROW_LEN - PAD_HDR_SIZE;
	int rc;

	a->nr_slots = CR_MIN(slots_room / SLOT_SIZE, MAX_SLOTS);
	if (room < BORROW_LEN + PAD_HDR_SIZE || a->nr_slots < MIN_SLOTS)
		return cr_err("process %d: its vDSO has only %zu free bytes, cryo needs %zu", a->pid,
			      room, BORROW_LEN + PAD_HDR_SIZE + MIN_SLOTS * SLOT_SIZE);
	hdr[1] = a->nr_slots;
	a->code = vdso + off;
	a->slots = a->code + BORROW_LEN + PAD_HDR_SIZE;
	a->code_len = BORROW_LEN + PAD_HDR_SIZE + a->nr_slots * SLOT_SIZE;
	if (ours) {
		memcpy(&hdr[1], img + off + BORROW_LEN + PAD_HDR_SLOTS, 4);
		a->nr_slots = CR_MIN(hdr[1], a->nr_slots);
		keep_old_slots(a, img + off + BORROW_LEN + PAD_HDR_SIZE, threads, nr);
		a->dead_prog = true;
		pr_info("process %d: reusing the program a dead cryo left in its vDSO", a->pid);
		return 0;
	}
	buf = calloc(1, a->code_len);
	if (!buf)
		return cr_err("out of memory");
	memcpy(buf, cr_borrow_start, BORROW_LEN);
	memcpy(buf + BORROW_LEN, hdr, sizeof(hdr));
	rc = mem_write(a->mem_fd, a->pid, a->code, buf, a->code_len);
	free(buf);
	if (rc)
		a->code_len = 0;
	return rc;
}

int borrow_open(struct borrow_area *a, pid_t pid, const struct proc_vmas *vmas,
		const struct rthread *threads, size_t nr)
{
	struct vdso_layout l;
	uint64_t ignored = 0, caught = 0, pending = 0;
	uint8_t *img;
	size_t off;
	bool ours;
	int room;

	memset(a, 0, sizeof(*a));
	a->pid = pid;
	a->mem_fd = -1;
	if (!vdso_find_layout(vmas, &l) || l.vdso_size > VDSO_MAX_SIZE)
		return cr_err("process %d has no vDSO, which cryo needs to control it safely",
			      pid);
	if (read_status_masks(pid, &ignored, &caught, &pending))
		return -1;
	a->stop_sig = borrow_pick_stop_signal(ignored, caught, pending);
	a->mem_fd = mem_open(pid);
	if (a->mem_fd < 0)
		return -1;
	img = malloc(l.vdso_size);
	if (!img)
		return cr_err("out of memory");
	if (mem_read(a->mem_fd, pid, l.vdso_start, img, l.vdso_size)) {
		free(img);
		return -1;
	}
	room = borrow_find_padding(img, l.vdso_size, &off, &ours);
	if (room < 0 || write_code(a, l.vdso_start, img, off, room, ours, threads, nr)) {
		free(img);
		return -1;
	}
	free(img);
	pr_debug("process %d: borrow program at 0x%lx, %u slots, stop signal %d", pid,
		 (unsigned long)a->code, a->nr_slots, a->stop_sig);
	return 0;
}

#define FRAME_SCAN_MAX (256u << 10)

/* Does a word of the stack from rsp up (to the end of its mapping, bounded) hold an
 * address in [lo, hi)? The kernel saves the interrupted rip in a signal frame. */
static bool stack_refers_to(struct borrow_area *a, const struct proc_vmas *vmas, uint64_t rsp,
			    uint64_t lo, uint64_t hi)
{
	uint64_t *buf, start = rsp & ~7ULL, len = 0;
	bool found = false;

	for (size_t i = 0; i < vmas->nr; i++)
		if (start >= vmas->v[i].start && start < vmas->v[i].end)
			len = CR_MIN(vmas->v[i].end - start, FRAME_SCAN_MAX);
	if (!len)
		return false;
	buf = malloc(len);
	if (!buf || mem_read(a->mem_fd, a->pid, start, buf, len)) {
		free(buf);
		cr_err_reset();
		return true;		/* cannot tell: as if it did */
	}
	for (size_t i = 0; i < len / 8 && !found; i++)
		found = buf[i] >= lo && buf[i] < hi;
	free(buf);
	return found;
}

bool borrow_dead_holds(struct borrow_area *a, const struct proc_vmas *vmas,
		       const struct rthread *t)
{
	if (!a->dead_prog)
		return false;
	if (t->home.rip >= a->code && t->home.rip < a->code + a->code_len)
		return true;
	return stack_refers_to(a, vmas, t->home.rsp, a->code, a->code + BORROW_LEN);
}

static void set_room(struct borrow_area *a, uint64_t lo, size_t len, size_t prog_stack)
{
	a->data = lo;
	a->data_len = len;
	a->data_used = 0;
	a->data_saved_len = 0;
	a->prog_stack = prog_stack;
}

static int put_back_room(struct borrow_area *a)
{
	size_t at = a->data_len - a->data_saved_len;

	if (!a->data_saved_len)
		return 0;
	return mem_write(a->mem_fd, a->pid, a->data + at, a->data_saved + at, a->data_saved_len);
}

/* Just below a thread's red zone, a kilobyte is as free as it is for the kernel's
 * own signal frames: room enough for a one-call program. */
static int tiny_room(struct borrow_area *a, const struct proc_vmas *vmas, const struct rthread *t)
{
	uint64_t top = (t->home.rsp - 128) & ~63ULL, lo = top - TINY_ROOM;

	for (size_t i = 0; i < vmas->nr; i++) {
		const struct proc_vma *v = &vmas->v[i];

		if (lo >= v->start && t->home.rsp <= v->end && (v->prot & PROT_WRITE) &&
		    !v->shared) {
			set_room(a, lo, TINY_ROOM, 0);
			return 0;
		}
	}
	return cr_err("process %d: thread %d's stack has no room for cryo", a->pid, t->tid);
}

/* One call run from the tiny room under thread t's stack, every byte put back. */
static int tiny_call(struct borrow_area *a, const struct proc_vmas *vmas, struct rthread *t,
		     long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, int64_t *ret)
{
	uint64_t data = a->data;
	size_t len = a->data_len, stack = a->prog_stack;
	struct rtable tab;
	int rc;

	if (tiny_room(a, vmas, t))
		return -1;
	rtable_init(&tab, a);
	rtable_add(&tab, 0, nr, a1, a2, a3, a4, (uint64_t)-1, 0);
	rc = rtable_run(&tab, t);
	*ret = rtable_result(&tab, 0);
	if (put_back_room(a))
		a->abandoned = true;
	rtable_free(&tab);
	set_room(a, data, len, stack);
	return rc;
}

/* No thread stands on a stack cryo could borrow from: map memory for it (which stays
 * behind, unused, if cryo dies while it exists). */
static int map_scratch(struct borrow_area *a, const struct proc_vmas *vmas, struct rthread *t)
{
	int64_t addr;

	if (tiny_call(a, vmas, t, __NR_mmap, 0, DATA_MAX, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, &addr))
		return -1;
	pr_info("process %d: no thread's stack has room; cryo mapped 0x%lx for its work",
		a->pid, (unsigned long)addr);
	set_room(a, addr, DATA_MAX, PROG_STACK);
	a->scratch = true;
	a->scratch_vmas = vmas;
	a->scratch_thread = t;
	return 0;
}

int borrow_find_data(struct borrow_area *a, const struct proc_vmas *vmas,
		     struct rthread *threads, size_t nr, size_t size)
{
	uint64_t best_lo = 0, best_hi = 0;

	if (a->data)
		return 0;
	a->data_saved = malloc(DATA_MAX);
	if (!a->data_saved)
		return cr_err("out of memory");
	a->vmas = vmas;
	size = CR_MIN(CR_MAX(size, DATA_MIN), DATA_MAX);
	for (size_t i = 0; i < nr; i++) {
		uint64_t lo, hi;

		if (!borrow_dead_room(vmas, threads[i].home.rsp, &lo, &hi))
			continue;
		if (hi - lo > best_hi - best_lo)
			best_lo = lo, best_hi = hi;
		if (best_hi - best_lo >= size)
			break;
	}
	if (best_hi - best_lo < DATA_MIN)
		return map_scratch(a, vmas, &threads[0]);
	size = CR_MIN(best_hi - best_lo, size) & ~63ULL;
	set_room(a, best_hi - size, size, PROG_STACK);
	return 0;
}

/* Allocate from the top of the data room; the bytes are saved before first use. */
static uint64_t data_alloc(struct borrow_area *a, size_t size)
{
	size_t at;

	size = CR_ALIGN_UP(size, 64);
	if (size > a->data_len - a->data_used) {
		cr_err("process %d: cryo needs %zu bytes of its stack, %zu are free", a->pid,
		       size, a->data_len - a->data_used);
		return 0;
	}
	a->data_used += size;
	at = a->data_len - a->data_used;
	if (a->data_used > a->data_saved_len) {
		size_t n = a->data_used - a->data_saved_len;

		if (mem_read(a->mem_fd, a->pid, a->data + at, a->data_saved + at, n))
			return 0;
		a->data_saved_len = a->data_used;
	}
	return a->data + at;
}

void borrow_close(struct borrow_area *a)
{
	bool clean = a->mem_fd >= 0 && !a->abandoned && !a->nr_parked;

	if (clean && !a->scratch && put_back_room(a))
		pr_warn("process %d: its dead stack keeps cryo's data", a->pid);
	if (clean && a->scratch) {
		uint64_t addr = a->data;
		int64_t ret;

		if (tiny_call(a, a->scratch_vmas, a->scratch_thread, __NR_munmap, addr, DATA_MAX,
			      0, 0, &ret) || ret)
			pr_warn("process %d: cryo's mapping at 0x%lx stays", a->pid,
				(unsigned long)addr);
		clean = !a->abandoned;
	}
	if (clean && a->code_len && !a->old_slots) {
		uint8_t *zeros = calloc(1, a->code_len);

		if (zeros && mem_write(a->mem_fd, a->pid, a->code, zeros, a->code_len))
			pr_warn("process %d: its vDSO padding keeps cryo's code", a->pid);
		free(zeros);
	}
	if (a->mem_fd >= 0)
		close(a->mem_fd);
	free(a->data_saved);
	free(a->own_saved);
	free(a->sigact);
	memset(a, 0, sizeof(*a));
	a->mem_fd = -1;
}

int borrow_keep_sigactions(struct borrow_area *a, const void *ka)
{
	if (!a->sigact)
		a->sigact = malloc(SIGACT_LEN);
	if (!a->sigact)
		return cr_err("out of memory");
	memcpy(a->sigact, ka, SIGACT_LEN);
	return 0;
}

/* A tail: "pop %rsp; jmp *slot(%rip)" with the home address in the slot's second half. */
static int write_tail(struct borrow_area *a, uint64_t *addr, uint64_t rip)
{
	uint8_t t[SLOT_SIZE] = { 0x5c, 0xff, 0x25, 0x01, 0x00, 0x00, 0x00, 0xcc };

	memcpy(t + 8, &rip, 8);
	if (slot_alloc(a, addr))
		return -1;
	return mem_write(a->mem_fd, a->pid, *addr, t, sizeof(t));
}

/* ---- running a program ---- */

static bool at_site(pid_t tid, uint64_t site, bool syscall_mode)
{
	struct user_regs_struct r;

	if (ptr_get_regs(tid, &r))
		return false;
	return r.rip == site && (!syscall_mode || r.orig_rax == __NR_tgkill);
}

/* Resume tid and wait until it stops at `site` (just after a tgkill of `sig` to
 * itself, or at that tgkill's entry when sig is 0). Signals on the way are passed on;
 * a foreign `sig` is dropped (the process ignores it). */
static int run_to_stop(struct borrow_area *a, pid_t tid, uint64_t site, int sig)
{
	int req = sig ? PTRACE_CONT : PTRACE_SYSCALL, pass = 0, status;
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int n = 0; n < 100000; n++) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > RMT_WAIT_MS / 1000)
			break;
		if (ptrace(req, tid, 0, (void *)(long)pass))
			return cr_perr("cannot resume task %d", tid);
		pass = 0;
		if (ptr_wait(tid, &status))
			return -1;
		switch (stop_kind(status)) {
		case STOP_SIGNAL:
			if (sig && stop_signal(status) == sig && at_site(tid, site, false) &&
			    ptr_stop_is_own_tgkill(tid, a->pid, sig))
				return 0;
			if (stop_signal(status) != sig)
				pass = stop_signal(status);
			break;
		case STOP_SYSCALL:
			if (!sig && at_site(tid, site, true))
				return 0;
			break;
		default:
			break;		/* a group stop taken on the way: go on */
		}
	}
	return cr_err("task %d did not reach cryo's stop", tid);
}

/* From a program's stop back to the thread's own registers and mask: the mask first,
 * so that a death in between still goes home through the program. */
static int give_back(struct rthread *th)
{
	if (ptr_reinterrupt(th->tid) || ptr_set_sigmask(th->tid, th->home_mask))
		return -1;
	return ptr_set_regs(th->tid, &th->home);
}

int borrow_rescue(struct borrow_area *a, struct rthread *th)
{
	int status;

	if (th->parked) {
		/* Between unregistering and registering again: only the program can
		 * finish it; let it. */
		a->abandoned = true;
		return ptr_detach(th->tid, 0);
	}
	if (ptrace(PTRACE_INTERRUPT, th->tid, 0, 0) == 0 && waitpid(th->tid, &status,
								     __WALL | WNOHANG) == 0)
		ptr_wait(th->tid, &status);
	if (give_back(th)) {
		a->abandoned = true;
		return -1;
	}
	return 0;
}

static void fill_block(uint64_t *b, const struct user_regs_struct *r, uint64_t tail)
{
	const uint64_t v[RB_WORDS] = {
		r->r15, r->r14, r->r13, r->r12, r->r11, r->r10, r->r9, r->r8, r->rbp, r->rdi,
		r->rsi, r->rdx, r->rcx, r->rbx, r->rax, r->eflags, tail, r->rsp,
	};

	memcpy(b, v, sizeof(v));
}

struct prog {
	uint64_t base, size;		/* the allocation */
	uint64_t ctl, table_a, table_b, bufs;
	uint64_t tail_restart, tail_eintr;
	uint64_t sigact;		/* the program's copy of the sigactions, or 0 */
	uint8_t *img;			/* local copy of [ctl, end) */
	size_t img_len;
};

static uint64_t relocate(const struct rtable *t, uint64_t v, uint64_t bufs);

/* A program's bytes: control block, register blocks, tables, buffers and, unless the
 * program reads them itself, the sigactions its way home looks at. */
static size_t prog_img_len(const struct borrow_area *a, const struct rtable *t)
{
	size_t ta = (t->n + 1) * sizeof(struct plan_call);
	size_t tb = t->n_after ? (t->n_after + 1) * sizeof(struct plan_call) : 0;
	size_t sa = !t->sigact_tok && a->sigact ? SIGACT_LEN : 0;

	return CTL_SIZE + 2 * RB_SIZE + ta + tb + CR_ALIGN_UP(t->used, 16) + sa;
}

static int prog_layout(struct borrow_area *a, struct rtable *t, struct prog *pg)
{
	size_t ta = (t->n + 1) * sizeof(struct plan_call);
	size_t tb = t->n_after ? (t->n_after + 1) * sizeof(struct plan_call) : 0;

	pg->img_len = prog_img_len(a, t);
	pg->size = a->prog_stack + pg->img_len;
	pg->base = data_alloc(a, pg->size);
	if (!pg->base)
		return -1;
	pg->ctl = pg->base + a->prog_stack;
	pg->table_a = pg->ctl + CTL_SIZE + 2 * RB_SIZE;
	pg->table_b = tb ? pg->table_a + ta : 0;
	pg->bufs = pg->table_a + ta + tb;
	pg->sigact = !t->sigact_tok && a->sigact ? pg->bufs + CR_ALIGN_UP(t->used, 16) : 0;
	t->base = pg->bufs;
	pg->img = calloc(1, pg->img_len);
	return pg->img ? 0 : cr_err("out of memory");
}

static void put_table(uint8_t *at, const struct plan_call *c, size_t n, const struct rtable *t,
		      uint64_t bufs)
{
	struct plan_call *out = (struct plan_call *)at;

	for (size_t i = 0; i < n; i++) {
		out[i] = c[i];
		for (int k = 0; k < 6; k++)
			out[i].args[k] = relocate(t, c[i].args[k], bufs);
	}
	memset(&out[n], 0, sizeof(out[n]));
	out[n].nr = PLAN_END;
}

static int prog_build(struct borrow_area *a, struct rtable *t, struct rthread *th, struct prog *pg)
{
	struct user_regs_struct restart, eintr;
	uint64_t *ctl = (uint64_t *)pg->img;
	int kind = restart_live_variants(&th->home, &restart, &eintr);

	if (write_tail(a, &pg->tail_restart, restart.rip) ||
	    write_tail(a, &pg->tail_eintr, eintr.rip))
		return -1;
	ctl[CTL_TABLE_A / 8] = pg->table_a;
	ctl[CTL_TABLE_B / 8] = pg->table_b;
	ctl[CTL_TGID / 8] = a->pid;
	ctl[CTL_TID / 8] = th->tid;
	ctl[CTL_STOP_SIG / 8] = a->stop_sig;
	ctl[CTL_BORROW_MASK / 8] = a->stop_sig ? ~BIT(a->stop_sig) : ~0ULL;
	ctl[CTL_HOME_MASK / 8] = th->home_mask;
	ctl[CTL_EINTR_KIND / 8] = kind;
	ctl[CTL_SIGACT / 8] = t->sigact_tok ? relocate(t, t->sigact_tok, pg->bufs) : pg->sigact;
	ctl[CTL_R_RESTART / 8] = pg->ctl + CTL_SIZE;
	ctl[CTL_R_EINTR / 8] = pg->ctl + CTL_SIZE + RB_SIZE;
	fill_block(ctl + CTL_SIZE / 8, &restart, pg->tail_restart);
	fill_block(ctl + (CTL_SIZE + RB_SIZE) / 8, &eintr, pg->tail_eintr);
	put_table(pg->img + (pg->table_a - pg->ctl), t->calls, t->n, t, pg->bufs);
	if (pg->table_b)
		put_table(pg->img + (pg->table_b - pg->ctl), t->after, t->n_after, t, pg->bufs);
	memcpy(pg->img + (pg->bufs - pg->ctl), t->data, t->used);
	if (pg->sigact)
		memcpy(pg->img + (pg->sigact - pg->ctl), a->sigact, SIGACT_LEN);
	return mem_write(a->mem_fd, a->pid, pg->ctl, pg->img, pg->img_len);
}

/* Into the program: registers first (a death now runs it with its own mask, and it
 * blocks signals itself), then the borrow mask. */
static int prog_enter(struct borrow_area *a, struct rthread *th, const struct prog *pg)
{
	struct user_regs_struct r = th->home;

	r.rip = a->code + CR_OFF(cr_borrow_prog, cr_borrow_start);
	r.rsp = pg->ctl;
	r.rbx = pg->ctl;
	r.orig_rax = (unsigned long long)-1;
	r.rax = 0;
	if (ptr_set_regs(th->tid, &r))
		return -1;
	return ptr_set_sigmask(th->tid, a->stop_sig ? ~BIT(a->stop_sig) : ~0ULL);
}

static int prog_collect(struct borrow_area *a, struct rtable *t, struct rthread *th,
			struct prog *pg)
{
	const struct plan_call *done = (const void *)(pg->img + (pg->table_a - pg->ctl));
	struct user_regs_struct r;

	if (mem_read(a->mem_fd, a->pid, pg->ctl, pg->img, pg->img_len) ||
	    ptr_get_regs(th->tid, &r))
		return -1;
	for (size_t i = 0; i < t->n; i++)
		t->calls[i].result = done[i].result;
	memcpy(t->data, pg->img + (pg->bufs - pg->ctl), t->used);
	t->failed = -1;
	if (r.r12 != pg->table_a + t->n * sizeof(struct plan_call))
		t->failed = (r.r12 - pg->table_a) / sizeof(struct plan_call);
	if (t->failed >= (int)t->n)
		return cr_err("task %d: cryo's program stopped at an unknown place", th->tid);
	return 0;
}

/* The room a program runs in, while it is swapped for the thread's own. */
struct room {
	uint64_t data;
	size_t len, used, saved_len, prog_stack;
	uint8_t *saved;
};

static void room_get(const struct borrow_area *a, struct room *r)
{
	*r = (struct room){ a->data, a->data_len, a->data_used, a->data_saved_len, a->prog_stack,
			    a->data_saved };
}

static void room_set(struct borrow_area *a, const struct room *r)
{
	a->data = r->data;
	a->data_len = r->len;
	a->data_used = r->used;
	a->data_saved_len = r->saved_len;
	a->prog_stack = r->prog_stack;
	a->data_saved = r->saved;
}

/* A program runs in dead stack of its own thread where that has room: if cryo dies
 * while the thread runs it (or a handler that interrupted it on its way home), no
 * other thread's stack can grow over its data, its stack or its signal frames. */
static bool enter_own_room(struct borrow_area *a, const struct rtable *t,
			   const struct rthread *th, struct room *shared)
{
	size_t need = CR_ALIGN_UP(PROG_STACK + prog_img_len(a, t), 64);
	uint64_t lo, hi;

	if (!a->vmas || need > DATA_MAX ||
	    !borrow_dead_room(a->vmas, th->home.rsp, &lo, &hi) || hi - lo < need)
		return false;
	/* The shared room is on this very stack: it is the thread's own already. */
	if (a->data && a->data < hi && lo < a->data + a->data_len)
		return false;
	if (!a->own_saved && !(a->own_saved = malloc(DATA_MAX)))
		return false;
	room_get(a, shared);
	room_set(a, &(struct room){ hi - need, need, 0, 0, PROG_STACK, a->own_saved });
	return true;
}

/* Back to the shared room; the thread's own bytes go back unless a thread may still
 * run the program there (parked, or left to itself). */
static void leave_own_room(struct borrow_area *a, const struct room *shared, bool keep)
{
	if (!keep && !a->abandoned && put_back_room(a))
		a->abandoned = true;
	room_set(a, shared);
}

static int prog_run_here(struct rtable *t, struct rthread *th, bool park);

static int prog_run(struct rtable *t, struct rthread *th, bool park)
{
	struct room shared;
	bool own;
	int rc;

	if (t->error)
		return cr_err("out of memory");
	own = enter_own_room(t->a, t, th, &shared);
	rc = prog_run_here(t, th, park);
	if (own)
		leave_own_room(t->a, &shared, park && th->parked);
	return rc;
}

static int prog_run_here(struct rtable *t, struct rthread *th, bool park)
{
	struct borrow_area *a = t->a;
	size_t mark = a->data_used;
	struct prog pg;
	int rc = -1;

	memset(&pg, 0, sizeof(pg));
	if (prog_layout(a, t, &pg) || prog_build(a, t, th, &pg))
		goto out;
	if (prog_enter(a, th, &pg) ||
	    run_to_stop(a, th->tid, a->code + CR_OFF(cr_borrow_stop, cr_borrow_start),
			a->stop_sig) ||
	    prog_collect(a, t, th, &pg)) {
		borrow_rescue(a, th);
		goto out;
	}
	if (park) {
		th->parked = true;
		th->ctl = pg.ctl;
		a->nr_parked++;
		free(pg.img);
		return 0;
	}
	rc = give_back(th);
	if (rc)
		a->abandoned = true;
out:
	if (!a->abandoned) {
		slot_free(a, pg.tail_restart);
		slot_free(a, pg.tail_eintr);
		a->data_used = mark;
	}
	free(pg.img);
	if (!rc && t->failed >= 0)
		return cr_err("task %d: remote call %d (syscall %u) failed: %s", th->tid, t->failed,
			      t->calls[t->failed].nr, strerror((int)-t->calls[t->failed].result));
	return rc;
}

int rtable_run(struct rtable *t, struct rthread *th)
{
	return prog_run(t, th, false);
}

int rtable_run_parked(struct rtable *t, struct rthread *th)
{
	return prog_run(t, th, true);
}

/* ---- tables ---- */

#define TOKEN_TAG 0xc4e0000000000000ULL
#define TOKEN_MASK 0xffff000000000000ULL

static uint64_t relocate(const struct rtable *t, uint64_t v, uint64_t bufs)
{
	if ((v & TOKEN_MASK) != TOKEN_TAG || (v & ~TOKEN_MASK) > t->used)
		return v;
	return bufs + (v & ~TOKEN_MASK);
}

void rtable_init(struct rtable *t, struct borrow_area *a)
{
	memset(t, 0, sizeof(*t));
	t->a = a;
	t->failed = -1;
}

void rtable_free(struct rtable *t)
{
	free(t->calls);
	free(t->after);
	free(t->data);
	memset(t, 0, sizeof(*t));
}

int rtable_add(struct rtable *t, uint32_t flags, long nr, uint64_t a1, uint64_t a2,
	       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6)
{
	if (cr_grow(&t->calls, &t->cap, t->n + 1, sizeof(*t->calls), 64)) {
		t->error = 1;
		return 0;
	}
	plan_call_set(&t->calls[t->n], flags, nr, a1, a2, a3, a4, a5, a6);
	return t->n++;
}

void rtable_add_after(struct rtable *t, long nr, uint64_t a1, uint64_t a2, uint64_t a3)
{
	if (cr_grow(&t->after, &t->cap_after, t->n_after + 1, sizeof(*t->after), 8)) {
		t->error = 1;
		return;
	}
	plan_call_set(&t->after[t->n_after++], PLAN_MAY_FAIL, nr, a1, a2, a3, 0, 0, 0);
}

uint64_t rtable_buf(struct rtable *t, size_t len)
{
	size_t at = CR_ALIGN_UP(t->used, 16);

	if (cr_grow(&t->data, &t->data_cap, at + len, 1, 4096)) {
		t->error = 1;
		return TOKEN_TAG;
	}
	memset(t->data + at, 0, len);
	t->used = at + len;
	return TOKEN_TAG | at;
}

void rtable_sigactions(struct rtable *t, uint64_t tok)
{
	t->sigact_tok = tok;
}

int64_t rtable_result(const struct rtable *t, int idx)
{
	return t->calls[idx].result;
}

const void *rtable_local(const struct rtable *t, uint64_t tok)
{
	return t->data + (tok & ~TOKEN_MASK);
}

/* ---- leaving the vDSO ---- */

/* It did not come back: stop it where it is (its own code ran, that is its state
 * now) and put its return address back, or leave the trampoline for it. */
static void leave_unreturned(struct borrow_area *a, struct rthread *th, uint64_t ra_slot,
			     uint64_t tramp, uint64_t ra)
{
	uint64_t now = 0;
	int status;

	if (ptrace(PTRACE_INTERRUPT, th->tid, 0, 0) || ptr_wait(th->tid, &status) ||
	    ptr_get_regs(th->tid, &th->home) || ptr_get_sigmask(th->tid, &th->home_mask)) {
		a->abandoned = true;
		return;
	}
	if (mem_read(a->mem_fd, a->pid, ra_slot, &now, 8) ||
	    (now == tramp && mem_write(a->mem_fd, a->pid, ra_slot, &ra, 8)))
		a->abandoned = true;
}

/* "push $sig; movabs $ra, %r10; jmp cr_tramp", then the tid and the stack slot. */
static int write_stub(struct borrow_area *a, uint64_t stub, int sig, uint64_t ra, pid_t tid,
		      uint64_t ra_slot)
{
	uint8_t b[2 * SLOT_SIZE];
	uint64_t tramp = a->code + CR_OFF(cr_tramp, cr_borrow_start);
	int32_t rel = (int32_t)(tramp - (stub + 17));
	uint32_t t = tid;

	memset(b, 0xcc, sizeof(b));
	b[0] = 0x6a;
	b[1] = (uint8_t)sig;
	b[2] = 0x49;
	b[3] = 0xba;
	memcpy(b + 4, &ra, 8);
	b[12] = 0xe9;
	memcpy(b + 13, &rel, 4);
	memcpy(b + STUB_TID, &t, 4);
	memcpy(b + STUB_RA_SLOT, &ra_slot, 8);
	return mem_write(a->mem_fd, a->pid, stub, b, sizeof(b));
}

int borrow_return_from(struct borrow_area *a, struct rthread *th, uint64_t ra_slot, uint64_t ra)
{
	int sig = a->stop_sig && !(th->home_mask & BIT(a->stop_sig)) ? a->stop_sig : 0;
	struct user_regs_struct r;
	uint64_t stub;
	int rc = -1;

	if (slot_alloc_n(a, 2, &stub))
		return -1;
	if (write_stub(a, stub, sig, ra, th->tid, ra_slot) ||
	    mem_write(a->mem_fd, a->pid, ra_slot, &stub, 8))
		goto out;
	if (run_to_stop(a, th->tid, a->code + CR_OFF(cr_tramp_stop, cr_borrow_start), sig)) {
		leave_unreturned(a, th, ra_slot, stub, ra);
		goto out;
	}
	if (ptr_get_regs(th->tid, &r))
		goto out;
	th->home = r;
	th->home.rip = r.r10;
	th->home.rax = r.r8;
	th->home.rdx = r.r9;
	th->home.orig_rax = (unsigned long long)-1;
	rc = ptr_reinterrupt(th->tid) || ptr_set_regs(th->tid, &th->home) ? -1 : 0;
	if (rc)
		a->abandoned = true;
out:
	if (!a->abandoned)
		slot_free_n(a, stub, 2);
	return rc;
}
