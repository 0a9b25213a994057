/* Unit tests of the pure memory decisions (src/mem.h): how each kind of smaps VMA is
 * classified or refused, and the validation of an image's VMA list and page runs. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crc32c.h"
#include "image.h"
#include "lazy.h"
#include "mem.h"
#include "mem_track.h"
#include "page_map.h"
#include "sys.h"
#include "unit.h"

#define RW (PROT_READ | PROT_WRITE)
#define ANON_FLAGS (VMF(RD) | VMF(WR) | VMF(MR) | VMF(MW) | VMF(ME) | VMF(AC))
#define FILE_FLAGS (VMF(RD) | VMF(MR) | VMF(MW) | VMF(ME))
#define SHARED_FLAGS (VMF(RD) | VMF(WR) | VMF(SH) | VMF(MR) | VMF(MW) | VMF(ME) | VMF(MS))
#define SPECIAL_FLAGS (VMF(RD) | VMF(MR) | VMF(PF) | VMF(IO) | VMF(DE) | VMF(DD))

struct classify_case {
	const char *what;
	const char *path;
	bool shared;
	uint64_t flags;
	int unknown;
	int kind;		/* 0: refused */
	const char *why;	/* part of the reason when refused */
};

static const struct classify_case classify_cases[] = {
	{ "anonymous", NULL, false, ANON_FLAGS, 0, VMA_KIND__VMA_ANON_PRIVATE, NULL },
	{ "heap", "[heap]", false, ANON_FLAGS, 0, VMA_KIND__VMA_ANON_PRIVATE, NULL },
	{ "stack", "[stack]", false, ANON_FLAGS | VMF(GD), 0, VMA_KIND__VMA_ANON_PRIVATE, NULL },
	{ "named anonymous", "[anon:my name]", false, ANON_FLAGS, 0, VMA_KIND__VMA_ANON_PRIVATE,
	  NULL },
	{ "read-only anonymous", NULL, false, VMF(RD) | VMF(MR) | VMF(MW) | VMF(ME), 0,
	  VMA_KIND__VMA_ANON_PRIVATE, NULL },
	{ "PROT_NONE guard", NULL, false, VMF(MR) | VMF(MW) | VMF(ME), 0,
	  VMA_KIND__VMA_ANON_PRIVATE, NULL },
	{ "locked, dontfork, wipeonfork, hugepage, sealed, droppable", NULL, false,
	  ANON_FLAGS | VMF(LO) | VMF(DC) | VMF(WF) | VMF(HG) | VMF(SL) | VMF(DP), 0,
	  VMA_KIND__VMA_ANON_PRIVATE, NULL },
	{ "soft-dirty", NULL, false, ANON_FLAGS | VMF(SD), 0, VMA_KIND__VMA_ANON_PRIVATE, NULL },
	{ "guard regions", NULL, false, ANON_FLAGS | VMF(GU), 0, VMA_KIND__VMA_ANON_PRIVATE,
	  NULL },
	{ "library", "/usr/lib/x86_64-linux-gnu/libc.so.6", false, FILE_FLAGS, 0,
	  VMA_KIND__VMA_FILE_PRIVATE, NULL },
	{ "library data", "/usr/lib/x86_64-linux-gnu/libc.so.6", false, ANON_FLAGS, 0,
	  VMA_KIND__VMA_FILE_PRIVATE, NULL },
	{ "file with spaces", "/tmp/fx/my file (x).dat", false, FILE_FLAGS, 0,
	  VMA_KIND__VMA_FILE_PRIVATE, NULL },
	{ "file named like deleted", "/tmp/a (deleted) b", false, FILE_FLAGS, 0,
	  VMA_KIND__VMA_FILE_PRIVATE, NULL },
	{ "shared file", "/var/lib/data.db", true, SHARED_FLAGS, 0, VMA_KIND__VMA_FILE_SHARED,
	  NULL },
	{ "shared anonymous", "/dev/zero (deleted)", true, SHARED_FLAGS, 0,
	  VMA_KIND__VMA_ANON_SHARED, NULL },
	{ "named shared anonymous", "[anon_shmem:ring]", true, SHARED_FLAGS, 0,
	  VMA_KIND__VMA_ANON_SHARED, NULL },
	{ "vdso", "[vdso]", false, VMF(RD) | VMF(EX) | VMF(MR) | VMF(MW) | VMF(ME) | VMF(DE), 0,
	  VMA_KIND__VMA_VDSO, NULL },
	{ "vvar", "[vvar]", false, SPECIAL_FLAGS, 0, VMA_KIND__VMA_VVAR, NULL },
	{ "vvar_vclock", "[vvar_vclock]", false, SPECIAL_FLAGS, 0, VMA_KIND__VMA_VVAR_VCLOCK,
	  NULL },

	{ "hugetlb", "/anon_hugepage (deleted)", true, SHARED_FLAGS | VMF(HT), 0, 0, "hugetlb" },
	{ "private hugetlb", NULL, false, ANON_FLAGS | VMF(HT), 0, 0, "hugetlb" },
	{ "userfaultfd missing", NULL, false, ANON_FLAGS | VMF(UM), 0, 0, "userfaultfd" },
	{ "userfaultfd wp", NULL, false, ANON_FLAGS | VMF(UW), 0, 0, "userfaultfd" },
	{ "userfaultfd minor", NULL, false, ANON_FLAGS | VMF(UI), 0, 0, "userfaultfd" },
	{ "shadow stack", NULL, false, ANON_FLAGS | VMF(SS), 0, 0, "shadow stack" },
	{ "pfnmap", "/dev/mem", true, SHARED_FLAGS | VMF(PF), 0, 0, "device" },
	{ "io", "/dev/fb0", true, SHARED_FLAGS | VMF(IO), 0, 0, "device" },
	{ "mixedmap", "/dev/dri/card0", true, SHARED_FLAGS | VMF(MM), 0, 0, "device" },
	{ "dontexpand", NULL, false, ANON_FLAGS | VMF(DE), 0, 0, "device" },
	{ "sync faults", "/mnt/pmem/f", true, SHARED_FLAGS | VMF(SF), 0, 0, "device" },
	{ "arch specific", NULL, false, ANON_FLAGS | VMF(AR), 0, 0, "device" },
	{ "arm MTE", NULL, false, ANON_FLAGS | VMF(MT), 0, 0, "cannot restore" },
	{ "arm BTI", NULL, false, ANON_FLAGS | VMF(BT), 0, 0, "cannot restore" },
	{ "unknown mnemonic", NULL, false, ANON_FLAGS, 1, 0, "does not know" },
	{ "unknown mnemonic on a file", "/usr/lib/libfoo.so", false, FILE_FLAGS, 1, 0,
	  "does not know" },
	{ "deleted file (a ghost)", "/tmp/gone (deleted)", false, FILE_FLAGS, 0,
	  VMA_KIND__VMA_FILE_PRIVATE, NULL },
	{ "deleted shared file (a POSIX semaphore)", "/dev/shm/sem.mp-x1 (deleted)", true,
	  SHARED_FLAGS, 0, VMA_KIND__VMA_ANON_SHARED, NULL },
	{ "memfd", "/memfd:buffer (deleted)", false, FILE_FLAGS, 0, VMA_KIND__VMA_FILE_PRIVATE,
	  NULL },
	{ "shared memfd", "/memfd:wayland-shm (deleted)", true, SHARED_FLAGS, 0,
	  VMA_KIND__VMA_ANON_SHARED, NULL },
	/* An attachment never reaches mem_classify (ipc_shm_vma takes it first). */
	{ "System V", "/SYSV00001234 (deleted)", true, SHARED_FLAGS, 0, 0, "System V" },
	{ "vsyscall", "[vsyscall]", false, VMF(EX), 0, 0, "special" },
	{ "uprobes", "[uprobes]", false, VMF(EX) | VMF(MR) | VMF(ME), 0, 0, "special" },
	{ "shared, no path", NULL, true, SHARED_FLAGS, 0, 0, "unknown kind" },
	{ "shared anon inode", "anon_inode:[io_uring]", true, SHARED_FLAGS, 0, 0,
	  "unknown kind" },
	{ "private anon inode", "anon_inode:kvm-vcpu:0", false, FILE_FLAGS, 0, 0, "reopen" },
	{ "private socket", "socket:[12345]", false, FILE_FLAGS, 0, 0, "reopen" },
};

static void test_classify(void)
{
	for (size_t i = 0; i < sizeof(classify_cases) / sizeof(classify_cases[0]); i++) {
		const struct classify_case *c = &classify_cases[i];
		struct proc_vma v;
		VmaKind kind = 0;
		const char *why = "unset";
		int rc;

		memset(&v, 0, sizeof(v));
		v.start = 0x7f0000000000;
		v.end = 0x7f0000004000;
		v.prot = RW;
		v.shared = c->shared;
		v.vm_flags = c->flags;
		v.path = (char *)c->path;
		if (c->unknown) {
			v.unknown_flags = 1;
			strcpy(v.unknown_flag, "zz");
		}
		unit_case();
		rc = mem_classify(&v, &kind, &why);
		if (c->kind) {
			CHECK(!rc && (int)kind == c->kind && !why, "%s: rc %d kind %d, want %d (%s)",
			      c->what, rc, kind, c->kind, why ? why : "");
		} else {
			CHECK(rc == -1, "%s: accepted as kind %d", c->what, kind);
			CHECK(rc != -1 || (why && strstr(why, c->why)), "%s: reason '%s', want '%s'",
			      c->what, why ? why : "(none)", c->why);
		}
	}
}

/* ---- mem_validate ---- */

static Vma *vma(uint64_t start, uint64_t end, VmaKind kind)
{
	Vma *v = calloc(1, sizeof(*v));

	vma__init(v);
	v->start = start;
	v->end = end;
	v->prot = RW;
	v->kind = kind;
	if (kind == VMA_KIND__VMA_FILE_PRIVATE || kind == VMA_KIND__VMA_FILE_SHARED)
		v->has_file_id = 1;
	if (kind == VMA_KIND__VMA_ANON_SHARED)
		v->has_shmem_id = 1;
	return v;
}

static PageRun *run(uint64_t vaddr, uint64_t nr)
{
	PageRun *r = calloc(1, sizeof(*r));

	page_run__init(r);
	r->vaddr = vaddr;
	r->nr_pages = nr;
	return r;
}

struct image {
	MmState mm;
	PageMap pm;
	Vma *v[16];
	PageRun *r[16];
	PageRun *g[4];		/* guard runs */
	int ng;
};

#define P CR_PAGE_SIZE

/* A typical small process: executable, heap, a shared mapping, a library, stack,
 * the vDSO; runs in the private ones. */
static void image_init(struct image *im)
{
	memset(im, 0, sizeof(*im));
	mm_state__init(&im->mm);
	page_map__init(&im->pm);
	im->v[0] = vma(0x555555554000, 0x555555556000, VMA_KIND__VMA_FILE_PRIVATE);
	im->v[1] = vma(0x555555556000, 0x555555558000, VMA_KIND__VMA_FILE_PRIVATE);
	im->v[2] = vma(0x555555558000, 0x555555579000, VMA_KIND__VMA_ANON_PRIVATE);
	im->v[3] = vma(0x7ffff7d00000, 0x7ffff7d10000, VMA_KIND__VMA_ANON_SHARED);
	im->v[4] = vma(0x7ffff7d10000, 0x7ffff7d36000, VMA_KIND__VMA_FILE_PRIVATE);
	im->v[5] = vma(0x7ffff7fc1000, 0x7ffff7fc5000, VMA_KIND__VMA_VVAR);
	im->v[6] = vma(0x7ffff7fc5000, 0x7ffff7fc7000, VMA_KIND__VMA_VDSO);
	im->v[7] = vma(0x7ffffffde000, 0x7ffffffff000, VMA_KIND__VMA_ANON_PRIVATE);
	im->mm.vmas = im->v;
	im->mm.n_vmas = 8;
	im->r[0] = run(0x555555554000, 2);		/* the whole first VMA */
	im->r[1] = run(0x555555557000, 1);		/* the last page of the second */
	im->r[2] = run(0x555555558000, 3);
	im->r[3] = run(0x555555570000, 9);		/* up to the end of the heap */
	im->r[4] = run(0x7ffff7d35000, 1);
	im->r[5] = run(0x7fffffffd000, 2);
	im->pm.runs = im->r;
	im->pm.n_runs = 6;
	im->pm.total_pages = 18;
}

static void image_free(struct image *im)
{
	for (int i = 0; i < 16; i++) {
		if (im->v[i])
			free(im->v[i]->guards);
		free(im->v[i]);
		free(im->r[i]);
	}
	for (int i = 0; i < im->ng; i++)
		free(im->g[i]);
}

typedef void (*damage_fn)(struct image *im);

static void d_none(struct image *im) { (void)im; }
static void d_empty(struct image *im)
{
	im->mm.n_vmas = 0;
	im->pm.n_runs = 0;
	im->pm.total_pages = 0;
}
static void d_no_runs(struct image *im)
{
	im->pm.n_runs = 0;
	im->pm.total_pages = 0;
}
static void d_overlap(struct image *im) { im->v[1]->start = 0x555555555000; }
static void d_overlap_last(struct image *im) { im->v[7]->start = 0x7ffff7fc6000; }
static void d_unsorted(struct image *im)
{
	Vma *t = im->v[3];

	im->v[3] = im->v[4];
	im->v[4] = t;
}
static void d_dup(struct image *im)
{
	free(im->v[3]);
	im->v[3] = vma(0x555555558000, 0x555555579000, VMA_KIND__VMA_ANON_PRIVATE);
}
static void d_empty_vma(struct image *im) { im->v[2]->end = im->v[2]->start; }
static void d_reversed(struct image *im) { im->v[4]->end = im->v[4]->start - P; }
static void d_zero_page(struct image *im) { im->v[0]->start = 0; }
static void d_unaligned_start(struct image *im) { im->v[2]->start += 8; }
static void d_unaligned_end(struct image *im) { im->v[3]->end -= 1; }
static void d_kernel(struct image *im) { im->v[7]->end = 0xffffffffff601000; }
static void d_task_size(struct image *im) { im->v[7]->end = CR_TASK_SIZE + P; }
static void d_prot(struct image *im) { im->v[2]->prot |= 0x10; }
static void d_kind0(struct image *im) { im->v[2]->kind = 0; }
static void d_kind8(struct image *im) { im->v[2]->kind = 8; }
static void d_no_file(struct image *im) { im->v[4]->has_file_id = 0; }
static void d_no_shmem(struct image *im) { im->v[3]->has_shmem_id = 0; }
static void d_pgoff(struct image *im) { im->v[4]->pgoff = 0x123; }
static void d_thp_ok(struct image *im)
{
	im->v[2]->has_thp_bytes = 1;
	im->v[2]->thp_bytes = im->v[2]->end - im->v[2]->start;
}
static void d_thp_big(struct image *im)
{
	d_thp_ok(im);
	im->v[2]->thp_bytes += P;
}

static void guard(struct image *im, int vi, uint64_t vaddr, uint64_t nr)
{
	Vma *v = im->v[vi];
	PageRun *g = run(vaddr, nr);

	v->guards = realloc(v->guards, (v->n_guards + 1) * sizeof(PageRun *));
	v->guards[v->n_guards++] = g;
	im->g[im->ng++] = g;
}

static void d_guard_ok(struct image *im)
{
	guard(im, 7, 0x7ffffffde000, 1);
	guard(im, 7, 0x7fffffffe000, 1);
}
static void d_guard_below(struct image *im) { guard(im, 2, 0x555555557000, 1); }
static void d_guard_past(struct image *im) { guard(im, 2, 0x555555578000, 2); }
static void d_guard_after(struct image *im) { guard(im, 2, 0x555555579000, 1); }
static void d_guard_far(struct image *im) { guard(im, 2, 0x7ffff7d00000, 1); }
static void d_guard_huge(struct image *im) { guard(im, 2, 0x555555558000, (uint64_t)-1); }
static void d_guard_zero(struct image *im) { guard(im, 2, 0x555555558000, 0); }
static void d_guard_odd(struct image *im) { guard(im, 2, 0x555555558010, 1); }

static void d_run_gap(struct image *im) { im->r[4]->vaddr = 0x7ffff7a00000; }
static void d_run_before_all(struct image *im)
{
	im->r[0]->vaddr = 0x1000;
	im->r[0]->nr_pages = 1;
	im->pm.total_pages = 17;
}
static void d_run_after_all(struct image *im)
{
	im->r[5]->vaddr = 0x7ffffffff000;
	im->r[5]->nr_pages = 1;
	im->pm.total_pages = 17;
}
static void d_run_past_vma(struct image *im)
{
	im->r[3]->nr_pages = 10;
	im->pm.total_pages = 19;
}
static void d_run_across(struct image *im) { im->r[0]->vaddr = 0x555555555000; }
static void d_run_shared(struct image *im) { im->r[4]->vaddr = 0x7ffff7d00000; }
static void d_run_vdso(struct image *im) { im->r[4]->vaddr = 0x7ffff7fc5000; }
static void d_run_vvar(struct image *im) { im->r[4]->vaddr = 0x7ffff7fc1000; }
static void d_run_file_shared(struct image *im) { im->v[4]->kind = VMA_KIND__VMA_FILE_SHARED; }
static void d_run_overlap(struct image *im)
{
	im->r[3]->vaddr = 0x55555555a000;
	im->r[3]->nr_pages = 1;
	im->pm.total_pages = 10;
}
static void d_run_unsorted(struct image *im)
{
	PageRun *t = im->r[2];

	im->r[2] = im->r[3];
	im->r[3] = t;
}
static void d_run_odd(struct image *im) { im->r[2]->vaddr += 0x10; }
static void d_run_zero(struct image *im)
{
	im->r[2]->nr_pages = 0;
	im->pm.total_pages = 15;
}
static void d_run_huge(struct image *im) { im->r[5]->nr_pages = (uint64_t)1 << 52; }
static void d_run_wrap(struct image *im)
{
	im->r[5]->vaddr = (uint64_t)-P;
	im->r[5]->nr_pages = 2;
}
static void d_run_kernel(struct image *im)
{
	im->r[5]->vaddr = 0xffffffffff600000;
	im->r[5]->nr_pages = 1;
}
static void d_total_more(struct image *im) { im->pm.total_pages = 19; }
static void d_total_less(struct image *im) { im->pm.total_pages = 17; }
static void d_total_zero(struct image *im) { im->pm.total_pages = 0; }
static void d_run_no_vmas(struct image *im) { im->mm.n_vmas = 0; }

static const struct {
	const char *what;
	damage_fn fn;
	const char *err;	/* NULL: valid */
} validate_cases[] = {
	{ "valid", d_none, NULL },
	{ "empty", d_empty, NULL },
	{ "no runs", d_no_runs, NULL },
	{ "guards inside the stack", d_guard_ok, NULL },
	{ "overlapping VMAs", d_overlap, "overlaps" },
	{ "overlapping last VMA", d_overlap_last, "overlaps" },
	{ "unsorted VMAs", d_unsorted, "out of order" },
	{ "duplicate VMA", d_dup, "overlaps" },
	{ "empty VMA", d_empty_vma, "invalid range" },
	{ "reversed VMA", d_reversed, "invalid range" },
	{ "VMA at page zero", d_zero_page, "invalid range" },
	{ "unaligned VMA start", d_unaligned_start, "invalid range" },
	{ "unaligned VMA end", d_unaligned_end, "invalid range" },
	{ "VMA in kernel space", d_kernel, "invalid range" },
	{ "VMA past the task size", d_task_size, "invalid range" },
	{ "bad protection", d_prot, "protection" },
	{ "kind 0", d_kind0, "unknown kind" },
	{ "kind 8", d_kind8, "unknown kind" },
	{ "file VMA without file", d_no_file, "names no file" },
	{ "shared VMA without object", d_no_shmem, "no memory object" },
	{ "unaligned file offset", d_pgoff, "unaligned file offset" },
	{ "huge pages over the whole VMA", d_thp_ok, NULL },
	{ "huge pages past the VMA size", d_thp_big, "huge-page bytes" },
	{ "guard below the VMA", d_guard_below, "guard" },
	{ "guard past the VMA end", d_guard_past, "guard" },
	{ "guard right after the VMA", d_guard_after, "guard" },
	{ "guard in another VMA", d_guard_far, "guard" },
	{ "guard of 2^64-1 pages", d_guard_huge, "guard" },
	{ "guard of 0 pages", d_guard_zero, "guard" },
	{ "unaligned guard", d_guard_odd, "guard" },
	{ "run in a gap", d_run_gap, "not inside" },
	{ "run before every VMA", d_run_before_all, "not inside" },
	{ "run after every VMA", d_run_after_all, "" },
	{ "run past its VMA", d_run_past_vma, "not inside" },
	{ "run across two VMAs", d_run_across, "not inside" },
	{ "run in a shared VMA", d_run_shared, "not inside" },
	{ "run in the vDSO", d_run_vdso, "not inside" },
	{ "run in vvar", d_run_vvar, "not inside" },
	{ "run in a shared file VMA", d_run_file_shared, "not inside" },
	{ "overlapping runs", d_run_overlap, "overlaps" },
	{ "unsorted runs", d_run_unsorted, "overlaps" },
	{ "unaligned run", d_run_odd, "invalid" },
	{ "run of 0 pages", d_run_zero, "invalid" },
	{ "run of 2^52 pages", d_run_huge, "invalid" },
	{ "run wrapping around", d_run_wrap, "outside user space" },
	{ "run in kernel space", d_run_kernel, "outside user space" },
	{ "total too large", d_total_more, "counts" },
	{ "total too small", d_total_less, "counts" },
	{ "total zero", d_total_zero, "counts" },
	{ "runs without VMAs", d_run_no_vmas, "not inside" },
};

static void test_validate(void)
{
	for (size_t i = 0; i < sizeof(validate_cases) / sizeof(validate_cases[0]); i++) {
		struct image im;
		int rc;

		image_init(&im);
		validate_cases[i].fn(&im);
		unit_case();
		rc = mem_validate(&im.mm, &im.pm);
		if (!validate_cases[i].err) {
			CHECK(!rc, "%s: refused: %s", validate_cases[i].what, err_text());
		} else {
			CHECK(rc == -1, "%s: accepted", validate_cases[i].what);
			CHECK(rc != -1 || err_has(validate_cases[i].err), "%s: error '%s', want '%s'",
			      validate_cases[i].what, err_text(), validate_cases[i].err);
		}
		image_free(&im);
	}
}

/* ---- memory shared with the parent ---- */

#define PG 4096ULL

static void add(struct runs *rs, uint64_t page, uint64_t n)
{
	runs_add_new(rs, page * PG, n);
}

static bool runs_are(const struct runs *rs, const uint64_t *want, size_t n)
{
	if (rs->nr != n / 2)
		return false;
	for (size_t i = 0; i < rs->nr; i++)
		if (rs->r[i].start != want[2 * i] * PG || rs->r[i].nr_pages != want[2 * i + 1])
			return false;
	return true;
}

static void test_subtract(void)
{
	struct runs a = { 0 }, b = { 0 }, out = { 0 };
	static const uint64_t want[] = { 0, 2, 5, 1, 8, 2, 20, 5 };

	unit_case();
	add(&a, 0, 10);		/* 0..9 */
	add(&a, 20, 5);		/* 20..24 */
	add(&b, 2, 3);		/* 2..4 */
	add(&b, 6, 2);		/* 6..7 */
	add(&b, 12, 4);		/* outside a */
	CHECK(!cow_subtract(&a, &b, &out), "subtract failed");
	CHECK(runs_are(&out, want, sizeof(want) / sizeof(want[0])),
	      "0-9,20-24 less 2-4,6-7,12-15: %zu runs", out.nr);
	free(b.r);
	b = (struct runs){ 0 };
	add(&b, 0, 30);
	CHECK(!cow_subtract(&a, &b, &out) && out.nr == 0, "all shared: %zu runs left", out.nr);
	free(b.r);
	b = (struct runs){ 0 };
	CHECK(!cow_subtract(&a, &b, &out) && out.nr == 2, "nothing shared: %zu runs", out.nr);
	free(a.r);
	free(out.r);
}

static void test_same_page(void)
{
	const uint64_t present = 1ULL << 63, swapped = 1ULL << 62, excl = 1ULL << 56;

	unit_case();
	CHECK(cow_same_page(present | 1234, present | 1234), "same frame");
	CHECK(cow_same_page(present | excl | 1234, present | 1234), "flags do not matter");
	CHECK(!cow_same_page(present | 1234, present | 1235), "another frame");
	CHECK(!cow_same_page(present, present), "hidden frames (0) are never the same");
	CHECK(!cow_same_page(0, 0), "absent pages are not shared");
	CHECK(cow_maybe_same(present, present), "hidden frames, both shared: maybe");
	CHECK(!cow_maybe_same(present | excl, present), "mine exclusive: not shared");
	CHECK(!cow_maybe_same(present, present | excl), "theirs exclusive: not shared");
	CHECK(!cow_maybe_same(present | 1234, present | 1234), "frames shown: no guess");
	CHECK(!cow_maybe_same(swapped, swapped), "swapped: not compared");
	CHECK(cow_same_page(swapped | 77, swapped | 77), "same swap slot");
	CHECK(!cow_same_page(swapped | 77, present | 77), "swapped and present");
}

static void test_vma_matches(void)
{
	Vma c = VMA__INIT, p = VMA__INIT;

	unit_case();
	c.start = p.start = 0x10000;
	c.end = p.end = 0x20000;
	c.kind = p.kind = VMA_KIND__VMA_ANON_PRIVATE;
	CHECK(cow_vma_matches(&c, &p), "the same private mapping");
	c.prot = PROT_READ;
	CHECK(cow_vma_matches(&c, &p), "protection may differ (set after)");
	c.end = 0x30000;
	CHECK(!cow_vma_matches(&c, &p), "another range");
	c.end = p.end;
	p.vm_flags = VMF(DC);
	CHECK(!cow_vma_matches(&c, &p), "MADV_DONTFORK in the parent");
	p.vm_flags = VMF(WF);
	CHECK(!cow_vma_matches(&c, &p), "MADV_WIPEONFORK");
	p.vm_flags = VMF(GD);
	CHECK(!cow_vma_matches(&c, &p), "grows down in one only");
	p.vm_flags = 0;
	c.kind = p.kind = VMA_KIND__VMA_ANON_SHARED;
	CHECK(!cow_vma_matches(&c, &p), "shared mappings are objects, not inherited");
	c.kind = p.kind = VMA_KIND__VMA_FILE_PRIVATE;
	c.file_id = 1;
	p.file_id = 2;
	CHECK(!cow_vma_matches(&c, &p), "another file");
	p.file_id = 1;
	CHECK(cow_vma_matches(&c, &p), "the same file");
}

/* ---- iterative dumps (mem_track.c) ---- */

static void test_from_parent(void)
{
	struct runs present = { 0 }, written = { 0 }, covered = { 0 }, out = { 0 };
	/* Present 0-9 and 20-24; written 3-4; the parent has 0-7 and 20-29: from it
	 * come 0-2, 5-7 and 20-24; 8-9 (new since) and 3-4 are saved again. */
	static const uint64_t want[] = { 0, 3, 5, 3, 20, 5 };

	unit_case();
	add(&present, 0, 10);
	add(&present, 20, 5);
	add(&written, 3, 2);
	add(&covered, 0, 8);
	add(&covered, 20, 10);
	CHECK(!track_from_parent(&present, &written, &covered, &out), "failed");
	CHECK(runs_are(&out, want, sizeof(want) / sizeof(want[0])), "%zu runs from the parent",
	      out.nr);
	free(covered.r);
	covered = (struct runs){ 0 };
	CHECK(!track_from_parent(&present, &written, &covered, &out) && !out.nr,
	      "a parent without pages gives none: %zu runs", out.nr);
	free(present.r);
	free(written.r);
	free(out.r);
}

static void test_runs_to_pb(void)
{
	struct runs data = { 0 }, parent = { 0 };
	PageRun **pb;
	size_t n = 0;

	unit_case();
	add(&data, 3, 2);
	add(&data, 10, 1);
	add(&parent, 0, 3);
	add(&parent, 5, 5);
	pb = track_runs_to_pb(&data, &parent, &n);
	CHECK(pb && n == 4, "%zu runs", n);
	if (pb && n == 4) {
		CHECK(pb[0]->vaddr == 0 && pb[0]->in_parent, "run 0: parent's 0-2");
		CHECK(pb[1]->vaddr == 3 * PG && !pb[1]->in_parent && pb[1]->nr_pages == 2,
		      "run 1: data 3-4");
		CHECK(pb[2]->vaddr == 5 * PG && pb[2]->in_parent, "run 2: parent's 5-9");
		CHECK(pb[3]->vaddr == 10 * PG && !pb[3]->has_in_parent, "run 3: data 10");
	}
	runs_pb_free(pb);
	free(data.r);
	free(parent.r);
}

static void test_starttime(void)
{
	static const char stat[] = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 "
				   "0 0 20 0 1 0 987654 1000 10";

	unit_case();
	CHECK(track_parse_starttime(stat) == 987654, "starttime %llu",
	      (unsigned long long)track_parse_starttime(stat));
	CHECK(track_parse_starttime("12 (x) S 1 2") == 0, "short line");
	CHECK(track_parse_starttime("garbage") == 0, "no comm");
}

/* ---- lazy restore: which VMAs, and the pieces following the process's changes ---- */

static void test_lazy_vma(void)
{
	static const struct { const char *what; VmaKind kind; uint64_t flags; bool inh, guard, ok;
			      bool unwritable; uint32_t prot; }
	cases[] = {
		{ "private anonymous", VMA_KIND__VMA_ANON_PRIVATE, ANON_FLAGS, 0, 0, true },
		{ "stack", VMA_KIND__VMA_ANON_PRIVATE, ANON_FLAGS | VMF(GD), 0, 0, true },
		{ "huge pages advised", VMA_KIND__VMA_ANON_PRIVATE, ANON_FLAGS | VMF(HG), 0, 0, true },
		{ "shared anonymous", VMA_KIND__VMA_ANON_SHARED, SHARED_FLAGS, 0, 0, false },
		{ "private file", VMA_KIND__VMA_FILE_PRIVATE, FILE_FLAGS, 0, 0, false },
		{ "locked", VMA_KIND__VMA_ANON_PRIVATE, ANON_FLAGS | VMF(LO), 0, 0, false },
		{ "wiped on fork", VMA_KIND__VMA_ANON_PRIVATE, ANON_FLAGS | VMF(WF), 0, 0, false },
		{ "not copied on fork", VMA_KIND__VMA_ANON_PRIVATE, ANON_FLAGS | VMF(DC), 0, 0, false },
		{ "droppable", VMA_KIND__VMA_ANON_PRIVATE, ANON_FLAGS | VMF(DP), 0, 0, false },
		{ "inherited from the parent", VMA_KIND__VMA_ANON_PRIVATE, ANON_FLAGS, 1, 0, false },
		{ "with guard pages", VMA_KIND__VMA_ANON_PRIVATE, ANON_FLAGS, 0, 1, false },
		{ "read-only", VMA_KIND__VMA_ANON_PRIVATE, ANON_FLAGS, 0, 0, false, true, PROT_READ },
		{ "PROT_NONE", VMA_KIND__VMA_ANON_PRIVATE, ANON_FLAGS, 0, 0, false, true, PROT_NONE },
		{ "[heap]", VMA_KIND__VMA_ANON_PRIVATE, ANON_FLAGS, 0, 0, false },
	};
	PageRun g = PAGE_RUN__INIT, *gp = &g;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Vma v = VMA__INIT;

		unit_case();
		v.kind = cases[i].kind;
		v.vm_flags = cases[i].flags;
		v.inherited = cases[i].inh;
		v.guards = cases[i].guard ? &gp : NULL;
		v.n_guards = cases[i].guard;
		v.prot = cases[i].unwritable ? cases[i].prot : RW;
		v.name = cases[i].what[0] == '[' ? (char *)cases[i].what : NULL;
		CHECK(lazy_vma_ok(&v) == cases[i].ok, "%s: lazy %d", cases[i].what, !cases[i].ok);
	}
	{
		Vma v = VMA__INIT;

		unit_case();
		v.kind = VMA_KIND__VMA_ANON_PRIVATE;
		v.vm_flags = ANON_FLAGS | VMF(HG);
		v.prot = RW;
		v.has_thp_bytes = 1;
		v.thp_bytes = 2 << 20;
		CHECK(!lazy_vma_ok(&v), "a mapping that had huge pages is lazy");
	}
}

#define MB (1ULL << 20)

static bool piece_is(const struct lazy_pieces *ps, size_t i, uint64_t va, uint64_t len,
		     uint64_t off, bool gone)
{
	return i < ps->nr && ps->p[i].vaddr == va && ps->p[i].len == len && ps->p[i].off == off &&
	       ps->p[i].gone == gone;
}

static void test_lazy_pieces(void)
{
	struct lazy_pieces ps = { 0 };
	const struct lazy_piece *p;

	unit_case();
	/* Two runs: [1G, 1G+4M) at file 0, [2G, 2G+4M) at file 4M. */
	CHECK(!lazy_pieces_add(&ps, 2048 * MB, 4 * MB, 0, 4 * MB), "add");
	CHECK(!lazy_pieces_add(&ps, 1024 * MB, 4 * MB, 0, 0), "add");
	CHECK(!lazy_pieces_add(&ps, 4096 * MB, MB, 1, 0), "add");
	lazy_pieces_sort(&ps);
	CHECK(ps.nr == 3 && piece_is(&ps, 0, 1024 * MB, 4 * MB, 0, false) &&
	      ps.p[2].src == 1, "in file order: %zu", ps.nr);
	/* MADV_DONTNEED inside the first: three pieces, the middle gone. */
	CHECK(!lazy_pieces_gone(&ps, 1025 * MB, 1026 * MB), "gone");
	CHECK(ps.nr == 5 && piece_is(&ps, 0, 1024 * MB, MB, 0, false) &&
	      piece_is(&ps, 1, 1025 * MB, MB, MB, true) &&
	      piece_is(&ps, 2, 1026 * MB, 2 * MB, 2 * MB, false), "split by gone: %zu", ps.nr);
	p = lazy_pieces_at(&ps, 1025 * MB + 4096);
	CHECK(p && p->gone, "a dropped page is gone");
	CHECK(!lazy_pieces_at(&ps, 1500 * MB), "no piece between the runs");
	/* mremap of [2G+1M, 2G+3M) to 3G: file order kept, addresses follow. */
	CHECK(!lazy_pieces_move(&ps, 2049 * MB, 3072 * MB, 2 * MB), "move");
	CHECK(ps.nr == 7 && piece_is(&ps, 3, 2048 * MB, MB, 4 * MB, false) &&
	      piece_is(&ps, 4, 3072 * MB, 2 * MB, 5 * MB, false) &&
	      piece_is(&ps, 5, 2051 * MB, MB, 7 * MB, false), "moved: %zu", ps.nr);
	p = lazy_pieces_at(&ps, 3073 * MB);
	CHECK(p && p->off == 5 * MB && !p->gone, "the moved bytes are found at their new place");
	CHECK(!lazy_pieces_at(&ps, 2050 * MB), "nothing is left where they were");
	/* A move onto a range that itself moves (overlapping mremap). */
	CHECK(!lazy_pieces_move(&ps, 3072 * MB, 3073 * MB, 2 * MB), "overlapping move");
	p = lazy_pieces_at(&ps, 3073 * MB);
	CHECK(p && p->off == 5 * MB && p->vaddr == 3073 * MB, "moved once, not twice");
	/* munmap across pieces; lookups by file offset. */
	CHECK(!lazy_pieces_gone(&ps, 1024 * MB, 2048 * MB + MB), "unmap");
	p = lazy_pieces_from(&ps, 0, 3 * MB);
	CHECK(p && p->off == 2 * MB && p->gone, "from 3M: the piece at 2M, gone");
	p = lazy_pieces_from(&ps, 0, 8 * MB);
	CHECK(!p, "nothing after the file's end");
	p = lazy_pieces_from(&ps, 1, 0);
	CHECK(p && p->vaddr == 4096 * MB, "the second file's piece");
	CHECK(!lazy_pieces_gone(&ps, 5 * MB, 5 * MB), "empty range");
	free(ps.p);
}

static bool job_is(const struct fill_job *jobs, size_t nr, size_t i, uint32_t src,
		   uint64_t chunk)
{
	return i < nr && jobs[i].src == src && jobs[i].chunk == chunk;
}

/* The eager fill's jobs: every (file, chunk) some piece has bytes in, once each, in
 * file order. */
static void test_fill_jobs(void)
{
	struct lazy_pieces ps = { 0 };
	struct fill_job *jobs;
	size_t nr;

	unit_case();
	CHECK(!fill_jobs(&ps, MB, &jobs, &nr) && nr == 0 && !jobs, "no pieces, no jobs");
	/* Two small pieces in chunk 0, one across chunks 1-2, one in the second file's
	 * chunk 2, and an empty one. */
	CHECK(!lazy_pieces_add(&ps, 100 * MB, 4096, 0, 0) &&
	      !lazy_pieces_add(&ps, 200 * MB, 8192, 0, 4096) &&
	      !lazy_pieces_add(&ps, 300 * MB, 2 * MB - 12288, 0, MB) &&
	      !lazy_pieces_add(&ps, 400 * MB, 4096, 1, 2 * MB + 4096) &&
	      !lazy_pieces_add(&ps, 500 * MB, 0, 1, 5 * MB), "add");
	lazy_pieces_sort(&ps);
	CHECK(!fill_jobs(&ps, MB, &jobs, &nr), "jobs: %s", err_text());
	CHECK(nr == 4 && job_is(jobs, nr, 0, 0, 0) && job_is(jobs, nr, 1, 0, 1) &&
	      job_is(jobs, nr, 2, 0, 2) && job_is(jobs, nr, 3, 1, 2),
	      "chunk 0 once, chunks 1-2 (the piece ends at 3M - 12K), file 1's chunk 2: %zu", nr);
	free(jobs);
	/* A piece ending exactly on a chunk boundary does not ask for the next chunk. */
	CHECK(!lazy_pieces_add(&ps, 600 * MB, MB, 1, 3 * MB), "add");
	lazy_pieces_sort(&ps);
	CHECK(!fill_jobs(&ps, MB, &jobs, &nr) && nr == 5 && job_is(jobs, nr, 4, 1, 3),
	      "[3M, 4M) is chunk 3 alone: %zu", nr);
	free(jobs);
	unit_case();
	CHECK(fill_jobs(&ps, 0, &jobs, &nr) && err_has("checksum chunks"),
	      "no chunk size is refused");
	free(ps.p);
}

/* A page file's chunks read in place: checked against their sums, and a file cut
 * short under the mapping an error, not a SIGBUS. */
static void test_page_map(void)
{
	const size_t len = IMG_CHUNK_SIZE + 8192;
	uint8_t *bytes = malloc(len);
	uint32_t crcs[2];
	PageMap pm = PAGE_MAP__INIT;
	struct page_src src = { .pm = &pm, .bytes = len };
	const uint8_t *at = NULL;
	uint32_t crc = 0;
	char path[] = "/tmp/cryo-unit-pagemap-XXXXXX";
	int fd = mkstemp(path);

	unit_case();
	CHECK(bytes && fd >= 0, "a page file");
	if (!bytes || fd < 0)
		goto out;
	unlink(path);
	for (size_t i = 0; i < len; i++)
		bytes[i] = (uint8_t)(i * 131 + (i >> 12));
	CHECK(write(fd, bytes, len) == (ssize_t)len, "written");
	crcs[0] = crc32c(0, bytes, IMG_CHUNK_SIZE);
	crcs[1] = crc32c(0, bytes + IMG_CHUNK_SIZE, 8192);
	pm.pages_file = "pages-1.img";
	pm.chunk_size = IMG_CHUNK_SIZE;
	pm.n_chunk_crc32c = 2;
	pm.chunk_crc32c = crcs;
	src.fd = fd;
	CHECK(page_map_chunk(&src, 0, &at) == -1, "not mapped: refused");
	CHECK(!page_map_open(&src) && src.map, "mapped: %s", err_text());
	CHECK(page_map_chunk(&src, 0, &at) == IMG_CHUNK_SIZE && at == src.map &&
	      !memcmp(at, bytes, IMG_CHUNK_SIZE), "chunk 0 whole and in place");
	CHECK(page_map_chunk(&src, 1, &at) == 8192 && !memcmp(at, bytes + IMG_CHUNK_SIZE, 8192),
	      "the last chunk is short");
	CHECK(page_map_chunk(&src, 2, &at) == -1, "no chunk 2");
	crcs[1] ^= 1;
	CHECK(page_map_chunk(&src, 1, &at) == -1, "a damaged chunk is refused");
	crcs[1] ^= 1;
	pm.chunk_size = 4096;
	CHECK(page_map_chunk(&src, 0, &at) == -1, "another chunk size is refused");
	pm.chunk_size = IMG_CHUNK_SIZE;
	/* Cut short under the mapping: reading there would be a SIGBUS. */
	CHECK(!ftruncate(fd, 4096), "truncated");
	CHECK(page_map_chunk(&src, 0, &at) == -1 && page_map_chunk(&src, 1, &at) == -1,
	      "a file cut short: both chunks refused, no SIGBUS");
	/* The guard itself: the mapping read past the cut (what a check racing the
	 * truncation would do after its populate succeeded). */
	CHECK(page_map_crc(src.map, IMG_CHUNK_SIZE, &crc) == -1,
	      "a read past the end of the file: the SIGBUS is a failed checksum");
	CHECK(!page_map_crc(src.map, 4096, &crc) && crc == crc32c(0, bytes, 4096),
	      "the page still in the file reads as before");
	page_map_close(&src);
	CHECK(!src.map, "unmapped");
out:
	if (fd >= 0)
		close(fd);
	free(bytes);
}

/* The on-touch supplier's probe: an address no piece holds, gone pieces included. */
static void test_lazy_probe_addr(void)
{
	struct lazy_pieces ps = { 0 };

	unit_case();
	CHECK(lazy_probe_addr(&ps) == LAZY_PROBE_FROM, "no pieces: the first address");
	/* Out of address order in the array (file order), touching, one gone. */
	CHECK(!lazy_pieces_add(&ps, 3 * MB, MB, 0, 0) && !lazy_pieces_add(&ps, MB, MB, 0, MB) &&
	      !lazy_pieces_add(&ps, 2 * MB, MB, 1, 0), "add");
	lazy_pieces_sort(&ps);
	CHECK(!lazy_pieces_gone(&ps, 3 * MB, 3 * MB + 4096), "gone");
	CHECK(lazy_probe_addr(&ps) == 4 * MB, "past three touching pieces: 0x%llx",
	      (unsigned long long)lazy_probe_addr(&ps));
	CHECK(!lazy_pieces_add(&ps, 5 * MB, MB, 1, MB), "add");
	CHECK(lazy_probe_addr(&ps) == 4 * MB, "the first hole, not the end");
	free(ps.p);
}

int main(void)
{
	test_from_parent();
	test_runs_to_pb();
	test_starttime();
	test_lazy_vma();
	test_lazy_pieces();
	test_fill_jobs();
	test_page_map();
	test_lazy_probe_addr();
	test_classify();
	test_validate();
	test_subtract();
	test_same_page();
	test_vma_matches();
	return unit_done("unit_mem");
}
