/* Memory: VMAs and their contents. Dump classifies each VMA, finds the pages worth
 * saving with PAGEMAP_SCAN (or pagemap on older kernels) and streams them into the
 * page file; restore plans the mmaps and has the task preadv its own pages. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "files.h"
#include "ipc.h"
#include "lazy.h"
#include "log.h"
#include "mem.h"
#include "mem_track.h"
#include "stats.h"
#include "sys.h"
#include "userns.h"
#include "util.h"

#define READ_BUF (8u << 20)
#define CR_MADV_COLLAPSE 25
#define MAX_IOV 1024
/* At most this much per preadv: the kernel counts a read in /proc/PID/io only once the
 * call returns, and the progress line follows that count. */
#define MAX_PREADV (64ULL << 20)

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

int runs_add_new(struct runs *rs, uint64_t start, uint64_t nr_pages)
{
	if (cr_grow(&rs->r, &rs->cap, rs->nr + 1, sizeof(*rs->r), 256))
		return -1;
	rs->r[rs->nr].start = start;
	rs->r[rs->nr].nr_pages = nr_pages;
	rs->nr++;
	return 0;
}

int runs_add(struct runs *rs, uint64_t start, uint64_t nr_pages)
{
	if (rs->nr && rs->r[rs->nr - 1].start + rs->r[rs->nr - 1].nr_pages * CR_PAGE_SIZE == start) {
		rs->r[rs->nr - 1].nr_pages += nr_pages;
		return 0;
	}
	return runs_add_new(rs, start, nr_pages);
}

/* VmFlags that need nothing at restore or come back by themselves ("gu", guard
 * regions may exist, returns when the guard pages are installed again). */
#define VMF_DERIVED (VMF(RD) | VMF(WR) | VMF(EX) | VMF(SH) | VMF(MR) | VMF(MW) | VMF(ME) | \
		     VMF(MS) | VMF(AC) | VMF(SD) | VMF(NR) | VMF(GD) | VMF(GU))
/* VmFlags restored with madvise/mlock/mseal/mmap flags. */
#define VMF_RESTORED (VMF(LO) | VMF(LF) | VMF(SR) | VMF(RR) | VMF(DC) | VMF(WF) | VMF(DD) | \
		      VMF(HG) | VMF(NH) | VMF(MG) | VMF(DP) | VMF(SL))

static bool has_prefix(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

int mem_classify(const struct proc_vma *v, VmaKind *kind, const char **why)
{
	const char *path = v->path;
	uint64_t odd;

	*why = NULL;
	if (path && !strcmp(path, "[vdso]")) {
		*kind = VMA_KIND__VMA_VDSO;
		return 0;
	}
	if (path && !strcmp(path, "[vvar]")) {
		*kind = VMA_KIND__VMA_VVAR;
		return 0;
	}
	if (path && !strcmp(path, "[vvar_vclock]")) {
		*kind = VMA_KIND__VMA_VVAR_VCLOCK;
		return 0;
	}
	if (path && !strcmp(path, "/[aio] (deleted)")) {
		*why = "it is an AIO ring (io_setup); AIO contexts are not supported";
		return -1;
	}
	if (v->unknown_flags) {
		*why = "it has a VmFlags flag this cryo does not know";
		return -1;
	}
	if (v->vm_flags & VMF(HT)) {
		*why = "hugetlbfs mappings are not supported";
		return -1;
	}
	if (v->vm_flags & (VMF(UM) | VMF(UW) | VMF(UI))) {
		*why = "it is registered with userfaultfd (by the process, or by a cryo "
		       "pre-dump's tracker: dump it with --prev-images-dir and --track-mem)";
		return -1;
	}
	if (v->vm_flags & VMF(SS)) {
		*why = "shadow stacks are not supported";
		return -1;
	}
	if (v->vm_flags & (VMF(PF) | VMF(IO) | VMF(MM) | VMF(DE) | VMF(SF) | VMF(AR))) {
		*why = "it is a device or special mapping";
		return -1;
	}
	odd = v->vm_flags & ~(VMF_DERIVED | VMF_RESTORED);
	if (odd) {
		*why = "it has VmFlags cryo cannot restore";
		return -1;
	}
	if (path && path[0] == '[' && strcmp(path, "[heap]") && strcmp(path, "[stack]") &&
	    !has_prefix(path, "[anon:") && !has_prefix(path, "[anon_shmem:")) {
		*why = "it is a special kernel mapping";
		return -1;
	}
	if (v->shared) {
		if (path && (has_prefix(path, "/dev/zero") || has_prefix(path, "[anon_shmem:"))) {
			*kind = VMA_KIND__VMA_ANON_SHARED;
			return 0;
		}
		/* Attachments are ipc_sysv.c's (ipc_shm_vma); this name is not one. */
		if (path && has_prefix(path, "/SYSV")) {
			*why = "it looks like System V shared memory but is not an attachment";
			return -1;
		}
		if (!path || path[0] != '/') {
			*why = "it is a shared mapping of an unknown kind";
			return -1;
		}
		/* A deleted file (a POSIX semaphore, a memfd) is memory shared by whoever
		 * maps it, nothing more: saved as a shared memory object. */
		if (ends_with(path, " (deleted)")) {
			*kind = VMA_KIND__VMA_ANON_SHARED;
			return 0;
		}
		*kind = VMA_KIND__VMA_FILE_SHARED;
		return 0;
	}
	if (path && path[0] == '/') {
		/* A deleted file or a memfd: its contents go into the image
		 * (file_ghost.c, file_memfd.c). */
		*kind = VMA_KIND__VMA_FILE_PRIVATE;
		return 0;
	}
	/* Anonymous memory is unnamed or "[...]"; anything else ("anon_inode:...",
	 * "socket:[...]") maps a file cryo cannot open again by path. */
	if (path && path[0] != '[') {
		*why = "it maps a file that has no path cryo can reopen";
		return -1;
	}
	*kind = VMA_KIND__VMA_ANON_PRIVATE;
	return 0;
}

static bool kind_has_pages(VmaKind k)
{
	return k == VMA_KIND__VMA_ANON_PRIVATE || k == VMA_KIND__VMA_FILE_PRIVATE;
}

/* ---- dump ---- */

static void map_file_path(pid_t pid, const struct proc_vma *v, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/%d/map_files/%lx-%lx", pid, (unsigned long)v->start,
		 (unsigned long)v->end);
}

/* /proc/PID/map_files opens only with CAP_CHECKPOINT_RESTORE (in the first user
 * namespace): without it a mapping of a file that exists is found by its path (below),
 * and what has no path to open (memfd, shared memory, a deleted file) is refused by
 * name. */
static bool map_files_closed(int err)
{
	return err == EPERM && !userns_map_files_open();
}

static int open_map_file(pid_t pid, const struct proc_vma *v, int flags)
{
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", pid,
		 (unsigned long)v->start, (unsigned long)v->end);
	fd = open(path, flags | O_CLOEXEC);
	if (fd < 0 && map_files_closed(errno))
		return cr_err("process %d: mapping 0x%lx-0x%lx of %s is read through %s, which "
			      "needs CAP_CHECKPOINT_RESTORE; dump it as root or with cryo's file "
			      "capabilities (make install-caps)", pid, (unsigned long)v->start,
			      (unsigned long)v->end, v->path ? v->path : "shared memory", path);
	if (fd < 0)
		return cr_perr("cannot open %s", path);
	return fd;
}

/* Without map_files: the file the mapping's path names now, if it is the one mapped
 * (the device and inode /proc/PID/maps gives). */
static int stat_by_path(struct dump_proc *p, const struct proc_vma *v, struct stat *st)
{
	if (!v->path || v->path[0] != '/' || ends_with(v->path, " (deleted)"))
		return open_map_file(p->pid, v, O_PATH);	/* says why */
	if (stat(v->path, st) || major(st->st_dev) != v->dev_major ||
	    minor(st->st_dev) != v->dev_minor || st->st_ino != v->ino)
		return cr_err("process %d: mapping 0x%lx-0x%lx: %s was deleted or replaced on "
			      "disk since it was mapped", p->pid, (unsigned long)v->start,
			      (unsigned long)v->end, v->path);
	return 0;
}

/* The file of a mapping: through map_files, else (no capability) by its path. */
static int stat_mapped(struct dump_proc *p, const struct proc_vma *v, struct stat *st)
{
	char path[96];
	int fd, rc = 0;

	map_file_path(p->pid, v, path, sizeof(path));
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0 && map_files_closed(errno))
		return stat_by_path(p, v, st);
	if (fd < 0)
		return cr_perr("cannot open %s", path);
	if (fstat(fd, st))
		rc = cr_perr("cannot stat the file mapped at 0x%lx", (unsigned long)v->start);
	close(fd);
	return rc;
}


/* A memfd mapped private maps its object, through an fd that can read it. */
static int dump_memfd_private(struct dump_proc *p, const struct proc_vma *v, Vma *pb)
{
	struct stat st;
	uint32_t shmem_id;
	int rc, fd = open_map_file(p->pid, v, O_RDONLY);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st)) {
		close(fd);
		return cr_perr("cannot stat the memfd mapped at 0x%lx", (unsigned long)v->start);
	}
	pb->has_file_id = 1;
	rc = mem_shmem_add(p->ctx, fd, &st, &shmem_id) ||
	     memfd_add_mapped(p, v->start, v->path, fd, &st, shmem_id, false, &pb->file_id);
	close(fd);
	return rc ? -1 : 0;
}

static int dump_file_vma(struct dump_proc *p, const struct proc_vma *v, Vma *pb)
{
	struct stat st, by_path;
	uint32_t flags = O_RDONLY;
	char proc[96];

	if (!v->shared && has_prefix(v->path, "/memfd:"))
		return dump_memfd_private(p, v, pb);
	if (stat_mapped(p, v, &st))
		return -1;
	if (!S_ISREG(st.st_mode))
		return cr_err("process %d: mapping 0x%lx-0x%lx of %s: only regular files can be "
			      "mapped", p->pid, (unsigned long)v->start, (unsigned long)v->end,
			      v->path);
	if (v->shared && (v->vm_flags & VMF(MW)))
		flags = O_RDWR;
	pb->has_file_id = 1;
	if (st.st_nlink == 0 && ends_with(v->path, " (deleted)")) {
		map_file_path(p->pid, v, proc, sizeof(proc));
		return ghost_add_mapped(p, v->start, proc, v->path, &st, flags, &pb->file_id);
	}
	if (st.st_nlink == 0 || stat(v->path, &by_path) || by_path.st_dev != st.st_dev ||
	    by_path.st_ino != st.st_ino)
		return cr_err("process %d: mapping 0x%lx-0x%lx: %s was deleted or replaced on "
			      "disk since it was mapped", p->pid, (unsigned long)v->start,
			      (unsigned long)v->end, v->path);
	return files_add_mapped(&p->ctx->files, v->path, &st, flags, &pb->file_id);
}

int mem_scan_data(int fd, uint64_t size, struct runs *rs, uint64_t *bytes)
{
	off_t pos = 0;

	if (bytes)
		*bytes = 0;
	while ((uint64_t)pos < size) {
		off_t data = lseek(fd, pos, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			return 0;
		if (data < 0 || (hole = lseek(fd, data, SEEK_HOLE)) < 0)
			return cr_perr("cannot find the data of a file of %llu bytes",
				       (unsigned long long)size);
		if ((uint64_t)hole > size)
			hole = size;
		data &= ~(off_t)(CR_PAGE_SIZE - 1);
		hole = CR_ALIGN_UP((uint64_t)hole, CR_PAGE_SIZE);
		if (hole > data && runs_add(rs, data, (hole - data) / CR_PAGE_SIZE))
			return -1;
		if (hole > data && bytes)
			*bytes += hole - data;
		pos = hole;
	}
	return 0;
}

PageRun **runs_to_pb(const struct runs *rs)
{
	PageRun **out = calloc(rs->nr ? rs->nr : 1, sizeof(*out));
	PageRun *items = calloc(rs->nr ? rs->nr : 1, sizeof(*items));

	if (!out || !items) {
		free(out);
		free(items);
		cr_err("out of memory");
		return NULL;
	}
	out[0] = items;		/* runs_pb_free frees it, even with no runs */
	for (size_t i = 0; i < rs->nr; i++) {
		page_run__init(&items[i]);
		items[i].vaddr = rs->r[i].start;
		items[i].nr_pages = rs->r[i].nr_pages;
		out[i] = &items[i];
	}
	return out;
}

void runs_pb_free(PageRun **runs)
{
	if (runs) {
		free(runs[0]);
		free(runs);
	}
}

int mem_shmem_finish(ShmemObject *obj, struct raw_writer *w, const char *name,
		     const struct runs *rs)
{
	if (raw_close(w))
		return -1;
	obj->data_file = strdup(name);
	obj->runs = runs_to_pb(rs);
	if (!obj->data_file || !obj->runs)
		return cr_err("out of memory");
	obj->n_runs = rs->nr;
	obj->chunk_size = IMG_CHUNK_SIZE;
	obj->chunk_crc32c = w->crcs;
	obj->n_chunk_crc32c = w->nr_crcs;
	w->crcs = NULL;
	return 0;
}

static int shmem_dump_object(struct dump_ctx *ctx, int fd, const struct stat *st,
			     ShmemObject *obj)
{
	struct raw_writer w;
	struct runs rs = { 0 };
	char name[64];
	uint8_t *buf = NULL;
	int rc = -1;

	snprintf(name, sizeof(name), "shmem-%u.img", obj->id);
	if (mem_scan_data(fd, st->st_size, &rs, NULL) || raw_open(&w, &ctx->dir, name))
		goto out;
	buf = malloc(READ_BUF);
	if (!buf) {
		cr_err("out of memory");
		goto out_w;
	}
	for (size_t i = 0; i < rs.nr; i++) {
		uint64_t off = rs.r[i].start, left = rs.r[i].nr_pages * CR_PAGE_SIZE;

		while (left) {
			size_t n = left < READ_BUF ? left : READ_BUF;
			ssize_t got = pread(fd, buf, n, off);

			/* A file's last page: what lies past its end reads as zeroes. */
			if (got >= 0 && (uint64_t)(off + got) >= (uint64_t)st->st_size &&
			    got < (ssize_t)n)
				memset(buf + got, 0, n - got), got = n;
			if (got != (ssize_t)n) {
				cr_perr("cannot read shared memory object %u", obj->id);
				goto out_w;
			}
			if (raw_write(&w, buf, n))
				goto out_w;
			off += n;
			left -= n;
		}
	}
	rc = mem_shmem_finish(obj, &w, name, &rs);
out_w:
	raw_free(&w);
out:
	free(buf);
	free(rs.r);
	return rc;
}

int mem_shmem_add(struct dump_ctx *ctx, int fd, const struct stat *st, uint32_t *id)
{
	struct shmem_table *t = &ctx->shmem;
	ShmemObject *obj;

	for (size_t i = 0; i < t->nr; i++)
		if (t->objs[i]->dev == st->st_dev && t->objs[i]->ino == st->st_ino) {
			*id = t->objs[i]->id;
			return 0;
		}
	if (cr_grow(&t->objs, &t->cap, t->nr + 1, sizeof(*t->objs), 8))
		return -1;
	obj = calloc(1, sizeof(*obj));
	if (!obj)
		return cr_err("out of memory");
	shmem_object__init(obj);
	obj->id = t->nr + 1;
	obj->size = CR_ALIGN_UP((uint64_t)st->st_size, CR_PAGE_SIZE);
	obj->dev = st->st_dev;
	obj->ino = st->st_ino;
	t->objs[t->nr++] = obj;
	*id = obj->id;
	return shmem_dump_object(ctx, fd, st, obj);
}

/* A deleted file some fd holds (a ghost) is mapped as that file, not as memory of
 * its own: writes through the fd stay visible in the mapping. */
static bool maps_ghost(struct dump_proc *p, const struct proc_vma *v, const struct stat *st)
{
	return v->path && v->path[0] == '/' && !has_prefix(v->path, "/memfd:") &&
	       !has_prefix(v->path, "/dev/zero") && files_ghost_known(&p->ctx->files, st);
}

static int dump_shmem_vma(struct dump_proc *p, const struct proc_vma *v, Vma *pb)
{
	struct stat st;
	int rc, fd = open_map_file(p->pid, v, O_RDONLY);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st)) {
		close(fd);
		return cr_perr("cannot stat shared memory at 0x%lx", (unsigned long)v->start);
	}
	if (v->path && v->path[0] == '/' && strncmp(v->path, "/dev/zero", 9) && st.st_nlink) {
		close(fd);
		return cr_err("process %d: mapping 0x%lx-0x%lx: %s names a file that exists",
			      p->pid, (unsigned long)v->start, (unsigned long)v->end, v->path);
	}
	if (maps_ghost(p, v, &st)) {
		close(fd);
		pb->kind = VMA_KIND__VMA_FILE_SHARED;
		return dump_file_vma(p, v, pb);
	}
	pb->has_shmem_id = 1;
	rc = mem_shmem_add(p->ctx, fd, &st, &pb->shmem_id);
	if (!rc && v->path && has_prefix(v->path, "/memfd:"))
		rc = memfd_add_mapped(p, v->start, v->path, fd, &st, pb->shmem_id,
				      v->vm_flags & VMF(MW), NULL);
	close(fd);
	return rc;
}

static int vma_to_pb(struct dump_proc *p, const struct proc_vma *v, VmaKind kind, Vma *pb)
{
	vma__init(pb);
	pb->start = v->start;
	pb->end = v->end;
	pb->prot = v->prot;
	pb->kind = kind;
	pb->pgoff = v->pgoff;
	pb->vm_flags = v->vm_flags;
	if (v->anon_huge_kb) {
		pb->has_thp_bytes = 1;
		pb->thp_bytes = v->anon_huge_kb << 10;
	}
	if (v->path && v->path[0] == '[')
		pb->name = v->path;
	if (v->path && (has_prefix(v->path, "[anon:") || has_prefix(v->path, "[anon_shmem:"))) {
		size_t skip = has_prefix(v->path, "[anon:") ? 6 : 12;

		pb->anon_name = strndup(v->path + skip, strlen(v->path) - skip - 1);
		if (!pb->anon_name)
			return cr_err("out of memory");
	}
	switch (kind) {
	case VMA_KIND__VMA_FILE_PRIVATE:
	case VMA_KIND__VMA_FILE_SHARED:
		return dump_file_vma(p, v, pb);
	case VMA_KIND__VMA_ANON_SHARED:
		return dump_shmem_vma(p, v, pb);
	default:
		return 0;
	}
}

/* ---- finding the pages worth saving ---- */

static int scan_supported = -1;	/* PAGEMAP_SCAN: -1 unknown, 0 no, 1 yes */
static int scan_has_guard = 1;
static uint64_t zero_pfn;

struct vma_pages {
	struct runs data;
	struct runs guards;
};

static int scan_vma_ioctl(int pm_fd, const struct proc_vma *v, struct vma_pages *vp)
{
	struct cr_page_region regions[512];
	struct cr_pm_scan_arg arg;
	uint64_t start = v->start;

	while (start < v->end) {
		long n;

		memset(&arg, 0, sizeof(arg));
		arg.size = sizeof(arg);
		arg.start = start;
		arg.end = v->end;
		arg.vec = (uint64_t)regions;
		arg.vec_len = CR_ARRAY_SIZE(regions);
		arg.category_inverted = CR_PAGE_IS_FILE | CR_PAGE_IS_PFNZERO;
		arg.category_mask = CR_PAGE_IS_FILE | CR_PAGE_IS_PFNZERO;
		arg.category_anyof_mask = CR_PAGE_IS_PRESENT | CR_PAGE_IS_SWAPPED;
		arg.return_mask = CR_PAGE_IS_PRESENT | CR_PAGE_IS_SWAPPED;
		if (scan_has_guard)
			arg.return_mask |= CR_PAGE_IS_GUARD;
		n = ioctl(pm_fd, CR_PAGEMAP_SCAN, &arg);
		if (n < 0 && errno == EINVAL && scan_has_guard) {
			scan_has_guard = 0;
			continue;
		}
		if (n < 0)
			return -1;
		for (long i = 0; i < n; i++) {
			uint64_t np = (regions[i].end - regions[i].start) / CR_PAGE_SIZE;
			struct runs *rs = (regions[i].categories & CR_PAGE_IS_GUARD) ?
					  &vp->guards : &vp->data;

			if (runs_add(rs, regions[i].start, np))
				return -2;
		}
		if (arg.walk_end <= start)
			break;
		start = arg.walk_end;
	}
	return 0;
}

static int find_zero_pfn(void)
{
	volatile char *m = mmap(NULL, CR_PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t e = 0;
	int fd;

	if (m == MAP_FAILED)
		return cr_perr("mmap");
	(void)m[0];
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (pread(fd, &e, 8, (uint64_t)m / CR_PAGE_SIZE * 8) != 8)
			e = 0;
		close(fd);
	}
	munmap((void *)m, CR_PAGE_SIZE);
	zero_pfn = (e & (1ULL << 63)) ? (e & ((1ULL << 55) - 1)) : 0;
	return 0;
}

/* Without PAGEMAP_SCAN: read the pagemap entries of the VMA. */
static int scan_vma_pagemap(int pm_fd, const struct proc_vma *v, struct vma_pages *vp)
{
	uint64_t ents[4096];
	uint64_t addr = v->start;

	if (!zero_pfn && find_zero_pfn())
		return -2;
	while (addr < v->end) {
		uint64_t nr = (v->end - addr) / CR_PAGE_SIZE;
		ssize_t got;

		if (nr > CR_ARRAY_SIZE(ents))
			nr = CR_ARRAY_SIZE(ents);
		got = pread(pm_fd, ents, nr * 8, addr / CR_PAGE_SIZE * 8);
		if (got != (ssize_t)(nr * 8))
			return -1;
		for (uint64_t i = 0; i < nr; i++) {
			uint64_t e = ents[i];
			bool present = e & (1ULL << 63), swapped = e & (1ULL << 62);
			bool file = e & (1ULL << 61);
			uint64_t pfn = e & ((1ULL << 55) - 1);

			if (!(present || swapped) || file)
				continue;
			if (present && zero_pfn && pfn == zero_pfn)
				continue;
			if (runs_add(&vp->data, addr + i * CR_PAGE_SIZE, 1))
				return -2;
		}
		addr += nr * CR_PAGE_SIZE;
	}
	return 0;
}

static int scan_vma(struct dump_proc *p, int pm_fd, const struct proc_vma *v,
		    struct vma_pages *vp)
{
	int rc;

	if (scan_supported && getenv("CRYO_NO_PAGEMAP_SCAN"))
		scan_supported = 0;
	if (scan_supported) {
		rc = scan_vma_ioctl(pm_fd, v, vp);
		if (rc == -1 && (errno == ENOTTY || errno == EINVAL) && scan_supported < 0) {
			scan_supported = 0;
			pr_info("PAGEMAP_SCAN is not available, reading pagemap");
		} else if (rc) {
			if (rc == -1)
				cr_perr("process %d: cannot scan pages of 0x%lx-0x%lx", p->pid,
					(unsigned long)v->start, (unsigned long)v->end);
			return -1;
		} else {
			scan_supported = 1;
			return 0;
		}
	}
	rc = scan_vma_pagemap(pm_fd, v, vp);
	if (rc == -1)
		cr_perr("process %d: cannot read the page map of 0x%lx-0x%lx", p->pid,
			(unsigned long)v->start, (unsigned long)v->end);
	return rc ? -1 : 0;
}

/* Append a VMA's runs; the first never merges into the previous VMA's last run, so
 * every run lies in one VMA. */
static int add_vma_runs(struct runs *all, const struct runs *rs)
{
	for (size_t i = 0; i < rs->nr; i++) {
		int rc = i ? runs_add(all, rs->r[i].start, rs->r[i].nr_pages) :
			     runs_add_new(all, rs->r[i].start, rs->r[i].nr_pages);

		if (rc)
			return -1;
	}
	return 0;
}

static uint64_t runs_bytes(const struct runs *all)
{
	uint64_t n = 0;

	for (size_t i = 0; i < all->nr; i++)
		n += all->r[i].nr_pages * CR_PAGE_SIZE;
	return n;
}

static int dump_pages(struct dump_proc *p, const struct runs *all, bool running)
{
	struct raw_writer w;
	uint64_t total = runs_bytes(all);
	char name[64];
	int rc = -1;

	snprintf(name, sizeof(name), "pages-%d.img", p->pid);
	if (raw_open(&w, &p->ctx->dir, name))
		return -1;
	stats_progress("writing pages", total);
	if (mem_write_pages(p, all, total, running, &w) || raw_close(&w))
		goto out;
	p->pagemap.pages_file = strdup(name);
	p->pagemap.chunk_size = IMG_CHUNK_SIZE;
	p->pagemap.chunk_crc32c = w.crcs;
	p->pagemap.n_chunk_crc32c = w.nr_crcs;
	w.crcs = NULL;
	rc = p->pagemap.pages_file ? 0 : cr_err("out of memory");
out:
	raw_free(&w);
	return rc;
}

/* One VMA's pages worth saving (less those shared with the parent), its guards. */
static int vma_pages(struct dump_proc *p, int pm_fd, int ppm_fd, size_t i, Vma *pb,
		     struct runs *all, struct runs *from_parent)
{
	struct vma_pages vp = { { 0 }, { 0 } };
	struct runs in_parent = { 0 };
	const Vma *pv;
	int rc = scan_vma(p, pm_fd, &p->vmas.v[i], &vp);

	pv = ppm_fd >= 0 && !rc && !vp.guards.nr ? cow_parent_vma(p, pb) : NULL;
	if (pv)
		rc = cow_dump_vma(p, pm_fd, ppm_fd, pv, pb, &vp.data);
	rc = rc || track_vma_pages(p, pm_fd, i, &vp.data, &in_parent) ||
	     add_vma_runs(all, &vp.data) || add_vma_runs(from_parent, &in_parent);
	if (!rc && vp.guards.nr) {
		pb->guards = runs_to_pb(&vp.guards);
		pb->n_guards = vp.guards.nr;
		rc = !pb->guards;
	}
	free(vp.data.r);
	free(vp.guards.r);
	free(in_parent.r);
	return rc ? -1 : 0;
}

static int collect_pages(struct dump_proc *p, Vma **pbs, VmaKind *kinds)
{
	struct runs all = { 0 }, from_parent = { 0 };
	char path[64];
	int pm_fd, ppm_fd, rc = -1;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", p->pid);
	pm_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pm_fd < 0)
		return cr_perr("cannot open %s", path);
	ppm_fd = cow_open_parent_pagemap(p);
	stats_enter(PH_MEM_SCAN);
	for (size_t i = 0; i < p->vmas.nr; i++)
		if (pbs[i] && kind_has_pages(kinds[i]) &&
		    vma_pages(p, pm_fd, ppm_fd, i, pbs[i], &all, &from_parent))
			goto out;
	stats_leave(PH_MEM_SCAN);
	/* A pre-dump reads them once the process runs again (mem_dump_late). */
	if (track_late(p)) {
		if (track_keep_late(p, &all))
			goto out;
	} else {
		stats_enter(PH_PAGE_WRITE);
		if (dump_pages(p, &all, false))
			goto out;
		stats_leave(PH_PAGE_WRITE);
	}
	p->pagemap.n_runs = all.nr;
	p->pagemap.runs = from_parent.nr ?
			  track_runs_to_pb(&all, &from_parent, &p->pagemap.n_runs) :
			  runs_to_pb(&all);
	if (!p->pagemap.runs)
		goto out;
	p->pagemap.total_pages = 0;
	for (size_t k = 0; k < all.nr; k++)
		p->pagemap.total_pages += all.r[k].nr_pages;
	stats_add_proc(p->pid, p->pagemap.total_pages, p->pagemap.total_pages * CR_PAGE_SIZE);
	rc = 0;
out:
	close(pm_fd);
	if (ppm_fd >= 0)
		close(ppm_fd);
	free(all.r);
	free(from_parent.r);
	return rc;
}

int mem_dump_late(struct dump_proc *p)
{
	const struct runs *all = track_late(p);

	return all ? dump_pages(p, all, true) : 0;
}

static int read_auxv(struct dump_proc *p)
{
	size_t len;
	char *buf = proc_read_pid_file(p->pid, "auxv", &len);
	size_t n;

	if (!buf)
		return -1;
	n = len / 8;
	if (len % 16 || !n) {
		free(buf);
		return cr_err("process %d: malformed auxv (%zu bytes)", p->pid, len);
	}
	p->mm.auxv = malloc(n * sizeof(uint64_t));
	if (!p->mm.auxv) {
		free(buf);
		return cr_err("out of memory");
	}
	memcpy(p->mm.auxv, buf, n * 8);
	p->mm.n_auxv = n;
	free(buf);
	return 0;
}

static int dump_mm_fields(struct dump_proc *p)
{
	uint64_t brk = p->brk;
	char path[64];
	struct stat st;
	int fd;

	p->mm.start_code = p->stat.start_code;
	p->mm.end_code = p->stat.end_code;
	p->mm.start_data = p->stat.start_data;
	p->mm.end_data = p->stat.end_data;
	p->mm.start_brk = p->stat.start_brk;
	p->mm.brk = brk;
	p->mm.start_stack = p->stat.start_stack;
	p->mm.arg_start = p->stat.arg_start;
	p->mm.arg_end = p->stat.arg_end;
	p->mm.env_start = p->stat.env_start;
	p->mm.env_end = p->stat.env_end;
	if (read_auxv(p))
		return -1;
	/* The executable, for PR_SET_MM_MAP's exe_fd. */
	snprintf(path, sizeof(path), "/proc/%d/exe", p->pid);
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return cr_perr("cannot open %s", path);
	if (fstat(fd, &st)) {
		close(fd);
		return cr_perr("cannot stat %s", path);
	}
	close(fd);
	{
		char exe[4096];
		ssize_t n = readlink(path, exe, sizeof(exe) - 1);
		struct stat by_path;

		if (n < 0)
			return cr_perr("cannot read %s", path);
		exe[n] = 0;
		if (st.st_nlink == 0 || stat(exe, &by_path) || by_path.st_ino != st.st_ino ||
		    by_path.st_dev != st.st_dev)
			return cr_err("process %d: its executable %s was deleted or replaced",
				      p->pid, exe);
		p->mm.has_exe_file_id = 1;
		return files_add_mapped(&p->ctx->files, exe, &st, O_RDONLY, &p->mm.exe_file_id);
	}
}

/* The vDSO as the program sees it: an earlier restore's proxy (what it maps), or the
 * kernel's as it made it (read before cryo wrote anything into it). */
static int read_vdso(struct dump_proc *p)
{
	struct vdso_layout proxy;
	const struct vdso_layout *l = &p->vdso_layout;
	bool proxied = vdso_find_proxy(&p->vmas, &proxy);
	uint8_t *bytes;
	size_t len;

	if (!proxied && !p->vdso_clean)
		return 0;
	if (proxied)
		l = &proxy;
	len = l->vdso_size;
	if (len > VDSO_MAX_SIZE)
		return cr_err("process %d: vDSO too large", p->pid);
	bytes = malloc(len);
	if (!bytes)
		return cr_err("out of memory");
	if (proxied ? mem_read_vm(p->pid, l->vdso_start, bytes, len) :
		      !memcpy(bytes, p->vdso_clean, len)) {
		free(bytes);
		return -1;
	}
	if (vdso_info_fill(&p->vdso, l, bytes, len)) {
		vdso_info_free(&p->vdso);
		return -1;
	}
	p->core.vdso = &p->vdso;
	return 0;
}

/* With a proxy, its mappings stand for the vDSO and the real one is left out. */
static int classify(const struct proc_vma *v, VmaKind *kind, const char **why)
{
	int k = vdso_proxy_kind(v);

	if (k) {
		*kind = k;
		return 0;
	}
	return mem_classify(v, kind, why);
}

static bool real_special(const struct proc_vma *v)
{
	return v->path && (!strcmp(v->path, "[vdso]") || !strcmp(v->path, "[vvar]") ||
			   !strcmp(v->path, "[vvar_vclock]"));
}

int mem_read_vmas(struct dump_proc *p)
{
	size_t len;
	char *txt = proc_read_pid_file(p->pid, "smaps", &len);
	int rc;

	if (!txt)
		return -1;
	rc = proc_parse_smaps(txt, len, &p->vmas);
	free(txt);
	return rc;
}

int mem_dump(struct dump_proc *p)
{
	struct vdso_layout proxy;
	bool proxied;
	Vma **pbs = NULL;
	VmaKind *kinds = NULL;
	size_t n = 0;
	int rc = -1;

	mm_state__init(&p->mm);
	page_map__init(&p->pagemap);
	p->pagemap.pid = p->pid;
	pbs = calloc(p->vmas.nr + 1, sizeof(*pbs));
	kinds = calloc(p->vmas.nr + 1, sizeof(*kinds));
	if (!pbs || !kinds) {
		cr_err("out of memory");
		goto out;
	}
	proxied = vdso_find_proxy(&p->vmas, &proxy);
	for (size_t i = 0; i < p->vmas.nr; i++) {
		struct proc_vma *v = &p->vmas.v[i];
		const char *why;

		if ((v->path && !strcmp(v->path, "[vsyscall]")) || (proxied && real_special(v)))
			continue;
		/* System V attachments are the process's core's, not VMAs (ipc_sysv.c). */
		if (ipc_shm_vma(v)) {
			if (ipc_dump_shm_vma(p, v))
				goto out;
			continue;
		}
		if (classify(v, &kinds[i], &why)) {
			if (v->unknown_flags)
				cr_err("process %d: cannot dump mapping 0x%lx-0x%lx (%s): VmFlags "
				       "'%s' is unknown to this cryo", p->pid,
				       (unsigned long)v->start, (unsigned long)v->end,
				       v->path ? v->path : "anonymous", v->unknown_flag);
			else
				cr_err("process %d: cannot dump mapping 0x%lx-0x%lx (%s): %s",
				       p->pid, (unsigned long)v->start, (unsigned long)v->end,
				       v->path ? v->path : "anonymous", why);
			goto out;
		}
		pbs[i] = calloc(1, sizeof(Vma));
		if (!pbs[i]) {
			cr_err("out of memory");
			goto out;
		}
		if (vma_to_pb(p, v, kinds[i], pbs[i]))
			goto out;
	}
	if (read_vdso(p) || dump_mm_fields(p) || collect_pages(p, pbs, kinds))
		goto out;
	p->mm.vmas = calloc(p->vmas.nr + 1, sizeof(Vma *));
	if (!p->mm.vmas) {
		cr_err("out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->vmas.nr; i++)
		if (pbs[i])
			p->mm.vmas[n++] = pbs[i];
	p->mm.n_vmas = n;
	free(pbs);
	pbs = NULL;
	rc = 0;
out:
	if (pbs) {
		for (size_t i = 0; i < p->vmas.nr; i++)
			if (pbs[i]) {
				free(pbs[i]->anon_name);
				runs_pb_free(pbs[i]->guards);
				runs_pb_free(pbs[i]->kept);
				free(pbs[i]);
			}
		free(pbs);
	}
	free(kinds);
	return rc;
}

void mem_dump_free(struct dump_proc *p)
{
	for (size_t i = 0; i < p->mm.n_vmas; i++) {
		free(p->mm.vmas[i]->anon_name);
		runs_pb_free(p->mm.vmas[i]->guards);
		runs_pb_free(p->mm.vmas[i]->kept);
		free(p->mm.vmas[i]);
	}
	free(p->mm.vmas);
	free(p->mm.auxv);
	runs_pb_free(p->pagemap.runs);
	free(p->pagemap.pages_file);
	free(p->pagemap.chunk_crc32c);
	proc_vmas_free(&p->vmas);
}

int mem_write_shmem_image(struct dump_ctx *ctx)
{
	ShmemTable t = SHMEM_TABLE__INIT;

	if (!ctx->shmem.nr)
		return 0;
	t.objects = ctx->shmem.objs;
	t.n_objects = ctx->shmem.nr;
	return img_write_msg(&ctx->dir, "shmem.img", IMAGE_KIND__IMG_SHMEM, &t.base);
}

/* ---- restore ---- */

static bool kind_valid(int k)
{
	return k >= VMA_KIND__VMA_ANON_PRIVATE && k <= VMA_KIND__VMA_VVAR_VCLOCK;
}

static int validate_vma(const Vma *v, const Vma *prev, size_t i)
{
	if (v->start >= v->end || v->start % CR_PAGE_SIZE || v->end % CR_PAGE_SIZE ||
	    v->end > CR_TASK_SIZE || v->start < CR_PAGE_SIZE)
		return cr_err("image: VMA %zu has an invalid range 0x%llx-0x%llx", i,
			      (unsigned long long)v->start, (unsigned long long)v->end);
	if (prev && v->start < prev->end)
		return cr_err("image: VMA %zu overlaps the previous one or is out of order", i);
	if (v->prot & ~(uint32_t)(PROT_READ | PROT_WRITE | PROT_EXEC))
		return cr_err("image: VMA %zu has invalid protection bits 0x%x", i, v->prot);
	if (!kind_valid(v->kind))
		return cr_err("image: VMA %zu has an unknown kind %d", i, v->kind);
	if ((v->kind == VMA_KIND__VMA_FILE_PRIVATE || v->kind == VMA_KIND__VMA_FILE_SHARED) &&
	    !v->has_file_id)
		return cr_err("image: file VMA %zu names no file", i);
	if (v->kind == VMA_KIND__VMA_ANON_SHARED && !v->has_shmem_id)
		return cr_err("image: shared VMA %zu names no memory object", i);
	if (v->pgoff % CR_PAGE_SIZE)
		return cr_err("image: VMA %zu has an unaligned file offset", i);
	if (v->thp_bytes > v->end - v->start)
		return cr_err("image: VMA %zu has more huge-page bytes than its size", i);
	for (size_t g = 0; g < v->n_guards; g++) {
		const PageRun *r = v->guards[g];

		/* vaddr < end first: end - vaddr must not wrap around. */
		if (r->vaddr % CR_PAGE_SIZE || r->vaddr < v->start || r->vaddr >= v->end ||
		    !r->nr_pages || r->nr_pages > (v->end - r->vaddr) / CR_PAGE_SIZE)
			return cr_err("image: VMA %zu has a guard run outside it", i);
	}
	return 0;
}

int mem_validate(const MmState *mm, const PageMap *pm)
{
	uint64_t total = 0;
	size_t vi = 0;

	for (size_t i = 0; i < mm->n_vmas; i++)
		if (validate_vma(mm->vmas[i], i ? mm->vmas[i - 1] : NULL, i))
			return -1;
	for (size_t i = 0; i < pm->n_runs; i++) {
		const PageRun *r = pm->runs[i];
		uint64_t end;

		if (r->vaddr % CR_PAGE_SIZE || !r->nr_pages || r->nr_pages > CR_TASK_SIZE / CR_PAGE_SIZE)
			return cr_err("image: page run %zu is invalid", i);
		end = r->vaddr + r->nr_pages * CR_PAGE_SIZE;
		if (end > CR_TASK_SIZE || end <= r->vaddr)
			return cr_err("image: page run %zu is outside user space", i);
		if (i && r->vaddr < pm->runs[i - 1]->vaddr + pm->runs[i - 1]->nr_pages * CR_PAGE_SIZE)
			return cr_err("image: page run %zu overlaps the previous one", i);
		while (vi < mm->n_vmas && mm->vmas[vi]->end <= r->vaddr)
			vi++;
		if (vi == mm->n_vmas || mm->vmas[vi]->start > r->vaddr || mm->vmas[vi]->end < end ||
		    !kind_has_pages(mm->vmas[vi]->kind))
			return cr_err("image: page run %zu (0x%llx, %llu pages) is not inside a "
				      "private VMA", i, (unsigned long long)r->vaddr,
				      (unsigned long long)r->nr_pages);
		/* Pages found in a parent image take no room in this one's file. */
		if (!r->in_parent)
			total += r->nr_pages;
	}
	if (total != pm->total_pages)
		return cr_err("image: page map counts %llu pages, its runs %llu",
			      (unsigned long long)pm->total_pages, (unsigned long long)total);
	return 0;
}

int mem_restore_prepare(struct restore_proc *rp)
{
	PageMap *pm = rp->pm;

	if (mem_validate(rp->core->mm, pm) || cow_validate(rp))
		return -1;
	if (pm->total_pages > (1ULL << 40) / CR_PAGE_SIZE)
		return cr_err("image: page map too large");
	rp->page_bytes = pm->total_pages * CR_PAGE_SIZE;
	rp->page_fd = img_open_raw(&rp->ctx->dir, pm->pages_file, rp->page_bytes);
	return rp->page_fd < 0 ? -1 : 0;
}

static uint32_t vma_map_flags(const Vma *v)
{
	uint32_t f = MAP_FIXED;

	switch (v->kind) {
	case VMA_KIND__VMA_ANON_PRIVATE:
		f |= MAP_PRIVATE | MAP_ANONYMOUS;
		break;
	case VMA_KIND__VMA_FILE_PRIVATE:
		f |= MAP_PRIVATE;
		break;
	default:
		f |= MAP_SHARED;
		break;
	}
	if (v->vm_flags & VMF(GD))
		f |= MAP_GROWSDOWN;
	if (v->vm_flags & VMF(NR))
		f |= MAP_NORESERVE;
	if (v->vm_flags & VMF(DP))
		f = (f & ~(MAP_PRIVATE | MAP_SHARED)) | MAP_DROPPABLE;
	return f;
}

static int vma_fd(struct restore_proc *rp, const Vma *v, int *fd)
{
	struct restore_ctx *ctx = rp->ctx;

	*fd = -1;
	if (v->kind == VMA_KIND__VMA_FILE_PRIVATE || v->kind == VMA_KIND__VMA_FILE_SHARED)
		*fd = files_fd(ctx, v->file_id);
	else if (v->kind == VMA_KIND__VMA_ANON_SHARED) {
		if (!ctx->shmem || v->shmem_id == 0 || v->shmem_id > ctx->shmem->n_objects)
			return cr_err("image: VMA 0x%llx names unknown memory object %u",
				      (unsigned long long)v->start, v->shmem_id);
		*fd = ctx->shmem_fds[v->shmem_id - 1];
	} else
		return 0;
	return *fd < 0 ? -1 : 0;
}

struct madv_flag {
	int vmf, advice;
};

/* Applied before the pages are read (they shape how memory is allocated). */
static const struct madv_flag madv_early[] = {
	{ VMF_HG, MADV_HUGEPAGE }, { VMF_NH, MADV_NOHUGEPAGE },
};

static const struct madv_flag madv_late[] = {
	{ VMF_DC, MADV_DONTFORK }, { VMF_WF, MADV_WIPEONFORK }, { VMF_DD, MADV_DONTDUMP },
	{ VMF_MG, MADV_MERGEABLE }, { VMF_SR, MADV_SEQUENTIAL }, { VMF_RR, MADV_RANDOM },
};

static void plan_madvise(struct plan *p, const Vma *v, const struct madv_flag *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v->vm_flags & (1ULL << f[i].vmf))
			plan_call(p, "madvise", 0, __NR_madvise, v->start, v->end - v->start,
				  f[i].advice, 0, 0, 0);
}

static bool is_special(const Vma *v)
{
	return v->kind == VMA_KIND__VMA_VDSO || v->kind == VMA_KIND__VMA_VVAR ||
	       v->kind == VMA_KIND__VMA_VVAR_VCLOCK;
}

static int plan_maps(struct restore_proc *rp, struct plan *p, const bool *has_pages)
{
	const MmState *mm = rp->core->mm;

	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Vma *v = mm->vmas[i];
		uint32_t prot = v->prot;
		int fd;

		if (is_special(v))
			continue;
		if (vma_fd(rp, v, &fd))
			return -1;
		if (has_pages[i])
			prot |= PROT_READ | PROT_WRITE;
		if (v->inherited)
			cow_plan_vma(p, v, prot);
		else
			plan_call(p, "mmap", 0, __NR_mmap, v->start, v->end - v->start, prot,
				  vma_map_flags(v), fd,
				  v->kind == VMA_KIND__VMA_ANON_PRIVATE ? 0 : v->pgoff);
		plan_madvise(p, v, madv_early, CR_ARRAY_SIZE(madv_early));
		if (v->anon_name) {
			uint64_t name = plan_data(p, v->anon_name, strlen(v->anon_name) + 1);

			plan_call(p, "naming an anonymous mapping", PLAN_MAY_FAIL, __NR_prctl,
				  PR_SET_VMA, PR_SET_VMA_ANON_NAME, v->start, v->end - v->start,
				  name, 0);
		}
	}
	return 0;
}

static void note_read(struct restore_proc *rp, struct plan *p, uint64_t bytes)
{
	if (p->counting) {
		rp->nr_reads++;
		return;
	}
	if (rp->nr_reads >= rp->max_reads) {
		p->overflow = 1;
		return;
	}
	rp->reads[rp->nr_reads].call = p->nr_calls;
	rp->reads[rp->nr_reads].bytes = bytes;
	rp->nr_reads++;
}

/* preadv calls that fill every run, each from the page file its segment names
 * (rp->segs: the image's own, or a parent's of a pre-dump chain). */
static void plan_reads(struct restore_proc *rp, struct plan *p)
{
	static struct iovec iov[MAX_IOV];
	uint64_t done = 0;		/* bytes of segs[i] already planned */
	size_t i = 0;

	while (i < rp->nr_segs) {
		uint32_t src = rp->segs[i].src;
		uint64_t start_off = rp->segs[i].off + done, off = start_off, bytes = 0, at;
		int n = 0;

		/* The supplier's (mem_lazy.c): not read here. */
		if (lazy_seg(rp, i)) {
			i++;
			continue;
		}
		/* One call reads what lies in a row in one file; runs larger than a
		 * call may read are split. */
		while (i < rp->nr_segs && !lazy_seg(rp, i) && n < MAX_IOV && bytes < MAX_PREADV &&
		       rp->segs[i].src == src && rp->segs[i].off + done == off) {
			const struct page_seg *sg = &rp->segs[i];
			uint64_t len = sg->len - done;

			if (len > MAX_PREADV - bytes)
				len = MAX_PREADV - bytes;
			iov[n].iov_base = (void *)(sg->vaddr + done);
			iov[n].iov_len = len;
			bytes += len;
			off += len;
			n++;
			done += len;
			if (done == sg->len) {
				done = 0;
				i++;
			}
		}
		at = plan_data(p, iov, n * sizeof(struct iovec));
		if (!at)
			return;
		/* No MADV_POPULATE_WRITE first: zeroing the whole run ahead of the copy
		 * writes every page twice from memory; a page faulted in by the copy
		 * itself is zeroed and filled while in the cache (1 GiB: 2.0-2.6 s
		 * against 2.9-3.8 s, alternating runs). */
		note_read(rp, p, bytes);
		plan_call(p, "reading pages from the image", 0, __NR_preadv, rp->srcs[src].fd,
			  at, n, start_off, 0, 0);
	}
}

/* Huge pages the process had without MADV_HUGEPAGE (THP "always", MADV_COLLAPSE):
 * with THP "madvise" its filled memory would stay small pages; collapse it. A VMA
 * with MADV_HUGEPAGE gets them while being filled (madv_early). */
static bool wants_collapse(const Vma *v)
{
	return v->thp_bytes && v->kind == VMA_KIND__VMA_ANON_PRIVATE &&
	       !(v->vm_flags & (VMF(HG) | VMF(NH)));
}

static void plan_after_fill(struct restore_proc *rp, struct plan *p, const bool *has_pages)
{
	const MmState *mm = rp->core->mm;

	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Vma *v = mm->vmas[i];

		if (is_special(v))
			continue;
		if (has_pages[i] && wants_collapse(v))
			plan_call(p, "collapsing into huge pages", PLAN_MAY_FAIL, __NR_madvise,
				  v->start, v->end - v->start, CR_MADV_COLLAPSE, 0, 0, 0);
		if (has_pages[i] && v->prot != (v->prot | PROT_READ | PROT_WRITE))
			plan_call(p, "mprotect", 0, __NR_mprotect, v->start, v->end - v->start,
				  v->prot, 0, 0, 0);
		plan_madvise(p, v, madv_late, CR_ARRAY_SIZE(madv_late));
		for (size_t g = 0; g < v->n_guards; g++)
			plan_call(p, "installing guard pages", 0, __NR_madvise, v->guards[g]->vaddr,
				  v->guards[g]->nr_pages * CR_PAGE_SIZE, MADV_GUARD_INSTALL, 0, 0, 0);
		if (v->vm_flags & VMF(LO))
			plan_call(p, "mlock", 0, __NR_mlock2, v->start, v->end - v->start,
				  (v->vm_flags & VMF(LF)) ? MLOCK_ONFAULT : 0, 0, 0, 0);
	}
}

int mem_plan(struct restore_proc *rp, struct plan *p)
{
	const MmState *mm = rp->core->mm;
	bool *has_pages = calloc(mm->n_vmas + 1, sizeof(bool));
	size_t vi = 0;
	int rc = -1;

	if (!has_pages)
		return cr_err("out of memory");
	for (size_t i = 0; i < rp->pm->n_runs; i++) {
		while (mm->vmas[vi]->end <= rp->pm->runs[i]->vaddr)
			vi++;
		has_pages[vi] = true;
	}
	if (lazy_mark(rp, has_pages) || plan_maps(rp, p, has_pages))
		goto out;
	plan_reads(rp, p);
	lazy_plan(rp, p);
	plan_after_fill(rp, p, has_pages);
	rc = 0;
out:
	free(has_pages);
	return rc;
}

/* Seals must come last: nothing may change a sealed VMA afterwards. */
static void plan_seals(struct restore_proc *rp, struct plan *p)
{
	const MmState *mm = rp->core->mm;

	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->vm_flags & VMF(SL))
			plan_call(p, "mseal", 0, __NR_mseal, mm->vmas[i]->start,
				  mm->vmas[i]->end - mm->vmas[i]->start, 0, 0, 0, 0);
}

/* A task cryo makes starts with cryo's own executable (a program restoring a child of
 * its own through libcryo: the same file as the image's). The kernel refuses to replace
 * the executable while the old one is mapped, so when it is the same file it is kept. */
static bool exe_is_restorers(int exe_fd)
{
	struct stat img, self;

	return !fstat(exe_fd, &img) && !stat("/proc/self/exe", &self) &&
	       img.st_dev == self.st_dev && img.st_ino == self.st_ino;
}

int mem_plan_mm(struct restore_proc *rp, struct plan *p)
{
	const MmState *mm = rp->core->mm;
	struct cr_prctl_mm_map map = { 0 };
	int exe_fd = -1;

	if (mm->n_auxv % 2 || mm->n_auxv > 256)
		return cr_err("image: invalid auxv (%zu words)", mm->n_auxv);
	if (mm->has_exe_file_id) {
		exe_fd = files_fd(rp->ctx, mm->exe_file_id);
		if (exe_fd < 0)
			return -1;
	}
	map.start_code = mm->start_code;
	map.end_code = mm->end_code;
	map.start_data = mm->start_data;
	map.end_data = mm->end_data;
	map.start_brk = mm->start_brk;
	map.brk = mm->brk;
	map.start_stack = mm->start_stack;
	map.arg_start = mm->arg_start;
	map.arg_end = mm->arg_end;
	map.env_start = mm->env_start;
	map.env_end = mm->env_end;
	map.auxv = plan_data(p, mm->auxv, mm->n_auxv * 8);
	map.auxv_size = mm->n_auxv * 8;
	map.exe_fd = exe_fd >= 0 && exe_is_restorers(exe_fd) ? -1 : exe_fd;
	plan_call(p, "setting the mm fields (PR_SET_MM_MAP)", 0, __NR_prctl, PR_SET_MM,
		  PR_SET_MM_MAP, plan_data(p, &map, sizeof(map)), sizeof(map), 0, 0);
	plan_seals(rp, p);
	return 0;
}

int mem_check_reads(struct restore_proc *rp, const struct plan_call *done)
{
	for (size_t i = 0; i < rp->nr_reads; i++) {
		int64_t got = done[rp->reads[i].call].result;

		if (got != (int64_t)rp->reads[i].bytes)
			return cr_err("%s/%s: short read restoring pages (%lld of %llu bytes); "
				      "the page file changed during restore", rp->ctx->dir.path,
				      rp->pm->pages_file, (long long)got,
				      (unsigned long long)rp->reads[i].bytes);
	}
	return 0;
}

/* The object's runs inside it, in order; the bytes they hold. */
static int shmem_check_runs(const ShmemObject *o, uint64_t *total)
{
	*total = 0;
	if (!o->size || o->size % CR_PAGE_SIZE || o->size > (1ULL << 40))
		return cr_err("image: shared memory object %u has invalid size %llu", o->id,
			      (unsigned long long)o->size);
	for (size_t i = 0; i < o->n_runs; i++) {
		const PageRun *r = o->runs[i];

		if (r->vaddr % CR_PAGE_SIZE || !r->nr_pages || r->vaddr >= o->size ||
		    r->nr_pages > (o->size - r->vaddr) / CR_PAGE_SIZE ||
		    (i && r->vaddr < o->runs[i - 1]->vaddr + o->runs[i - 1]->nr_pages * CR_PAGE_SIZE))
			return cr_err("image: shared memory object %u has an invalid run", o->id);
		*total += r->nr_pages * CR_PAGE_SIZE;
	}
	return 0;
}

/* The object's data file, checked against its checksums. */
static int shmem_open_data(struct restore_ctx *ctx, const ShmemObject *o)
{
	uint64_t total;
	int data_fd;

	if (shmem_check_runs(o, &total))
		return -1;
	data_fd = img_open_raw(&ctx->dir, o->data_file, total);
	if (data_fd < 0)
		return -1;
	if (img_verify_raw(&ctx->dir, o->data_file, data_fd, total, o->chunk_size,
			   o->chunk_crc32c, o->n_chunk_crc32c)) {
		close(data_fd);
		return -1;
	}
	return data_fd;
}

/* A shared anonymous object made in cryo, filled from the image, kept as an fd the
 * new task maps: /proc/self/map_files gives the same kind of file MAP_SHARED |
 * MAP_ANONYMOUS makes ("/dev/zero (deleted)"). */
static int create_shmem(struct restore_ctx *ctx, const ShmemObject *o)
{
	char path[96];
	uint8_t *m;
	int fd = -1, data_fd = shmem_open_data(ctx, o);
	uint64_t off = 0;

	if (data_fd < 0)
		return -1;
	m = mmap(NULL, o->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		cr_perr("cannot create shared memory object %u", o->id);
		goto out_data;
	}
	for (size_t i = 0; i < o->n_runs; i++) {
		uint64_t len = o->runs[i]->nr_pages * CR_PAGE_SIZE;

		if (pread(data_fd, m + o->runs[i]->vaddr, len, off) != (ssize_t)len) {
			cr_perr("cannot read %s/%s", ctx->dir.path, o->data_file);
			goto out_map;
		}
		off += len;
	}
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)m,
		 (unsigned long)(m + o->size));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		cr_perr("cannot open %s", path);
out_map:
	munmap(m, o->size);
out_data:
	close(data_fd);
	return fd;
}

const ShmemObject *mem_shmem_object(struct restore_ctx *ctx, uint32_t id)
{
	const ShmemObject *o;

	if (!ctx->shmem || !id || id > ctx->shmem->n_objects)
		return NULL;
	o = ctx->shmem->objects[id - 1];
	return o->id == id ? o : NULL;
}

int mem_shmem_write(struct restore_ctx *ctx, const ShmemObject *o, int fd, uint64_t size)
{
	int data_fd = shmem_open_data(ctx, o);
	uint64_t off = 0;
	uint8_t *buf;
	int rc = -1;

	if (data_fd < 0)
		return -1;
	buf = malloc(READ_BUF);
	if (!buf) {
		close(data_fd);
		return cr_err("out of memory");
	}
	for (size_t i = 0; i < o->n_runs; i++) {
		uint64_t at = o->runs[i]->vaddr, left = o->runs[i]->nr_pages * CR_PAGE_SIZE;

		while (left) {
			size_t n = left < READ_BUF ? left : READ_BUF;
			size_t keep = at >= size ? 0 : size - at < n ? size - at : n;

			if (pread(data_fd, buf, n, off) != (ssize_t)n ||
			    pwrite(fd, buf, keep, at) != (ssize_t)keep) {
				cr_perr("cannot fill shared memory object %u", o->id);
				goto out;
			}
			at += n;
			off += n;
			left -= n;
		}
	}
	rc = 0;
out:
	free(buf);
	close(data_fd);
	return rc;
}

static int shmem_fds_alloc(struct restore_ctx *ctx)
{
	size_t n = ctx->shmem ? ctx->shmem->n_objects : 0;

	if (ctx->shmem_fds)
		return 0;
	ctx->shmem_fds = malloc((n + 1) * sizeof(int));
	if (!ctx->shmem_fds)
		return cr_err("out of memory");
	for (size_t i = 0; i < n; i++)
		ctx->shmem_fds[i] = -1;
	return 0;
}

int mem_shmem_adopt(struct restore_ctx *ctx, uint32_t id, int fd)
{
	if (shmem_fds_alloc(ctx) || !mem_shmem_object(ctx, id) || ctx->shmem_fds[id - 1] >= 0) {
		close(fd);
		return cr_err("image: memory object %u is missing or made twice", id);
	}
	fd = restore_inherit_fd(ctx, fd, "shared memory");
	if (fd < 0)
		return -1;
	ctx->shmem_fds[id - 1] = fd;
	return 0;
}

int mem_shmem_make(struct restore_ctx *ctx, const ShmemObject *o)
{
	int fd = create_shmem(ctx, o);

	if (fd < 0 || mem_shmem_adopt(ctx, o->id, fd))
		return -1;
	return ctx->shmem_fds[o->id - 1];
}

int mem_prepare_shmem(struct restore_ctx *ctx)
{
	size_t n = ctx->shmem ? ctx->shmem->n_objects : 0;

	if (shmem_fds_alloc(ctx))
		return -1;
	for (size_t i = 0; i < n; i++) {
		const ShmemObject *o = ctx->shmem->objects[i];
		int fd;

		if (o->id != i + 1)
			return cr_err("image: shared memory object %zu has id %u", i, o->id);
		/* Made already for an fd holding it (file_memfd.c). */
		if (ctx->shmem_fds[i] >= 0)
			continue;
		fd = create_shmem(ctx, o);
		if (fd < 0)
			return -1;
		fd = restore_inherit_fd(ctx, fd, "shared memory");
		if (fd < 0)
			return -1;
		ctx->shmem_fds[i] = fd;
	}
	return 0;
}
