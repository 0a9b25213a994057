/* System V shared memory, both halves: the segments the tree attaches (size,
 * contents, removed ones) and each attachment (address, protection, SHM_RDONLY);
 * restore fills each segment once and every process attaches it again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ipc_sysv.h"
#include "log.h"
#include "mem.h"
#include "sys.h"
#include "util.h"

#define READ_CHUNK (1u << 20)

/* VmFlags an attachment may have: what shmat and mprotect give. */
#define SHM_VMFLAGS (VMF(RD) | VMF(WR) | VMF(EX) | VMF(SH) | VMF(MR) | VMF(MW) | VMF(ME) | \
		     VMF(MS) | VMF(AC) | VMF(SD) | VMF(NR))

/* ---- pure helpers ---- */

bool ipc_shm_name_key(const char *path, int32_t *key)
{
	unsigned int k = 0;

	if (!path || strncmp(path, "/SYSV", 5) || strcmp(path + 13, " (deleted)"))
		return false;
	for (int i = 5; i < 13; i++) {
		char c = path[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (d < 0)
			return false;
		k = k << 4 | d;
	}
	*key = (int32_t)k;
	return true;
}

int ipc_shm_check(const SysvShm *s, size_t i)
{
	const ShmemObject *o = s->data;
	uint64_t pages;

	if (ipc_check_perm(s->perm, "segment", i))
		return -1;
	if (!o || !s->size || s->size > SHM_MAX_SIZE)
		return cr_err("image: ipc.img: segment %d has an invalid size", s->perm->id);
	pages = CR_ALIGN_UP(s->size, CR_PAGE_SIZE);
	if (o->size != pages || !o->data_file || o->chunk_size != IMG_CHUNK_SIZE ||
	    (s->destroyed && s->perm->key))
		return cr_err("image: ipc.img: segment %d is inconsistent", s->perm->id);
	for (size_t r = 0; r < o->n_runs; r++) {
		const PageRun *run = o->runs[r];

		if (run->vaddr % CR_PAGE_SIZE || !run->nr_pages || run->vaddr >= pages ||
		    run->nr_pages > (pages - run->vaddr) / CR_PAGE_SIZE ||
		    (r && run->vaddr < o->runs[r - 1]->vaddr + o->runs[r - 1]->nr_pages *
				CR_PAGE_SIZE))
			return cr_err("image: ipc.img: segment %d has an invalid run", s->perm->id);
	}
	return 0;
}

static const SysvShm *shm_by_id(const IpcTable *t, int32_t id)
{
	for (size_t i = 0; t && i < t->n_shm; i++)
		if (t->shm[i]->perm->id == id)
			return t->shm[i];
	return NULL;
}

static bool overlaps(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 < e2 && s2 < e1;
}

static int check_attachment(const IpcTable *t, const Core *c, size_t i)
{
	const SysvShmAttach *a = c->shm_attachments[i];
	const SysvShm *s = shm_by_id(t, a->shmid);
	const MmState *mm = c->mm;

	if (!s || a->start % CR_PAGE_SIZE || a->start < CR_PAGE_SIZE ||
	    a->start >= CR_TASK_SIZE || a->end != a->start + s->data->size ||
	    a->end > CR_TASK_SIZE || a->prot & ~(uint32_t)(PROT_READ | PROT_WRITE | PROT_EXEC) ||
	    (a->rdonly && (a->prot & PROT_WRITE)))
		return cr_err("image: process %u: System V attachment %zu (segment %d) is invalid",
			      c->pid, i, a->shmid);
	for (size_t v = 0; mm && v < mm->n_vmas; v++)
		if (overlaps(a->start, a->end, mm->vmas[v]->start, mm->vmas[v]->end))
			return cr_err("image: process %u: System V attachment at 0x%llx overlaps "
				      "a mapping", c->pid, (unsigned long long)a->start);
	for (size_t j = 0; j < i; j++)
		if (overlaps(a->start, a->end, c->shm_attachments[j]->start,
			     c->shm_attachments[j]->end))
			return cr_err("image: process %u: System V attachments overlap at 0x%llx",
				      c->pid, (unsigned long long)a->start);
	return 0;
}

int ipc_check_attachments(const IpcTable *t, const Core *c)
{
	for (size_t i = 0; i < c->n_shm_attachments; i++)
		if (check_attachment(t, c, i))
			return -1;
	return 0;
}


/* ---- dump ---- */

bool ipc_shm_vma(const struct proc_vma *v)
{
	int32_t key;

	return v->shared && ipc_shm_name_key(v->path, &key);
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < CR_PAGE_SIZE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* The segment's non-zero pages, read through the attaching process's memory (which
 * changes nothing the segment reports, unlike an attachment of cryo's own). */
static int shm_save_contents(struct dump_proc *p, const struct proc_vma *v, SysvShm *s)
{
	ShmemObject *o = s->data;
	struct raw_writer w;
	struct runs rs = { 0 };
	char name[64];
	uint8_t *buf = malloc(READ_CHUNK);
	int rc = -1;

	snprintf(name, sizeof(name), "sysvshm-%d.img", s->perm->id);
	if (!buf)
		return cr_err("out of memory");
	if (raw_open(&w, &p->ctx->dir, name))
		goto out;
	for (uint64_t off = 0; off < o->size; off += READ_CHUNK) {
		size_t n = o->size - off < READ_CHUNK ? o->size - off : READ_CHUNK;

		if (mem_read_vm(p->pid, v->start + off, buf, n))
			goto out_w;
		for (size_t pg = 0; pg < n; pg += CR_PAGE_SIZE) {
			if (page_is_zero(buf + pg))
				continue;
			if (runs_add(&rs, off + pg, 1) || raw_write(&w, buf + pg, CR_PAGE_SIZE))
				goto out_w;
		}
	}
	rc = mem_shmem_finish(o, &w, name, &rs);
out_w:
	raw_free(&w);
out:
	free(rs.r);
	free(buf);
	return rc;
}

static int shm_add(struct dump_proc *p, const struct proc_vma *v, int id,
		   const struct shmid_ds *ds, size_t *at)
{
	struct ipc_dump *d = p->ctx->ipc;
	SysvShm *s;

	if (cr_grow(&d->t.shm, &d->cap_shm, d->t.n_shm + 1, sizeof(*d->t.shm), 4) ||
	    cr_grow(&d->shm_seen, &d->cap_seen, d->t.n_shm + 1, sizeof(*d->shm_seen), 4))
		return -1;
	s = calloc(1, sizeof(*s) + sizeof(SysvPerm) + sizeof(ShmemObject));
	if (!s)
		return cr_err("out of memory");
	sysv_shm__init(s);
	s->perm = (SysvPerm *)(s + 1);
	s->data = (ShmemObject *)(s->perm + 1);
	ipc_perm_from(s->perm, &ds->shm_perm, id);
	shmem_object__init(s->data);
	s->size = ds->shm_segsz;
	s->destroyed = (ds->shm_perm.mode & SHM_DEST) != 0;
	s->has_destroyed = s->destroyed;
	s->data->id = d->t.n_shm + 1;
	s->data->size = CR_ALIGN_UP((uint64_t)ds->shm_segsz, CR_PAGE_SIZE);
	s->data->ino = id;
	d->shm_seen[d->t.n_shm] = 0;
	d->t.shm[d->t.n_shm++] = s;
	*at = d->t.n_shm - 1;
	return shm_save_contents(p, v, s);
}

/* One VMA for the whole segment: anything else is refused. */
static bool attached_whole(struct dump_proc *p, const struct proc_vma *v, uint64_t size)
{
	if (!v->pgoff && v->end - v->start == size)
		return true;
	cr_err("process %d: System V segment %llu is attached in part at 0x%lx (split by "
	       "mprotect or munmap), which cryo does not restore", p->pid,
	       (unsigned long long)v->ino, (unsigned long)v->start);
	return false;
}

static int shm_find(struct dump_proc *p, const struct proc_vma *v, size_t *at)
{
	struct ipc_dump *d = ipc_dump_state(p->ctx);
	struct shmid_ds ds;
	int id = (int)v->ino;

	if (!d)
		return -1;
	for (size_t i = 0; i < d->t.n_shm; i++)
		if (d->t.shm[i]->perm->id == id) {
			*at = i;
			return 0;
		}
	if (shmctl(id, IPC_STAT, &ds))
		return cr_perr("process %d: System V segment %d attached at 0x%lx", p->pid, id,
			       (unsigned long)v->start);
	if (ds.shm_perm.mode & SHM_LOCKED)
		return cr_err("process %d: System V segment %d is locked in memory (SHM_LOCK), "
			      "which cryo does not restore", p->pid, id);
	if (!attached_whole(p, v, CR_ALIGN_UP((uint64_t)ds.shm_segsz, CR_PAGE_SIZE)))
		return -1;
	return shm_add(p, v, id, &ds, at);
}

int ipc_dump_shm_vma(struct dump_proc *p, const struct proc_vma *v)
{
	SysvShmAttach *a, **n;
	size_t at = 0;

	if (v->unknown_flags || (v->vm_flags & ~SHM_VMFLAGS))
		return cr_err("process %d: System V segment %llu at 0x%lx: VmFlags cryo does not "
			      "restore", p->pid, (unsigned long long)v->ino, (unsigned long)v->start);
	if (shm_find(p, v, &at))
		return -1;
	if (!attached_whole(p, v, ((struct ipc_dump *)p->ctx->ipc)->t.shm[at]->data->size))
		return -1;
	n = realloc(p->core.shm_attachments, (p->core.n_shm_attachments + 1) * sizeof(*n));
	if (!n)
		return cr_err("out of memory");
	p->core.shm_attachments = n;
	a = calloc(1, sizeof(*a));
	if (!a)
		return cr_err("out of memory");
	sysv_shm_attach__init(a);
	a->start = v->start;
	a->end = v->end;
	a->shmid = (int)v->ino;
	a->prot = v->prot;
	a->rdonly = !(v->vm_flags & VMF(MW));
	n[p->core.n_shm_attachments++] = a;
	((struct ipc_dump *)p->ctx->ipc)->shm_seen[at]++;
	return 0;
}

/* A segment attached outside the tree would become two at restore. */
int ipc_shm_check_outside(struct ipc_dump *d)
{
	for (size_t i = 0; i < d->t.n_shm; i++) {
		const SysvShm *s = d->t.shm[i];
		struct shmid_ds ds;

		if (shmctl(s->perm->id, IPC_STAT, &ds))
			return cr_perr("System V segment %d", s->perm->id);
		if (ds.shm_nattch != d->shm_seen[i])
			return cr_err("System V segment %d (key 0x%x) is attached %lu times, %u of "
				      "them by the tree: one attached outside it cannot be "
				      "restored", s->perm->id, (unsigned int)s->perm->key,
				      (unsigned long)ds.shm_nattch, d->shm_seen[i]);
	}
	return 0;
}

/* ---- restore ---- */

int ipc_add_busy(const struct restore_proc *rp, struct ranges *busy)
{
	for (size_t i = 0; i < rp->core->n_shm_attachments; i++)
		if (ranges_add(busy, rp->core->shm_attachments[i]->start,
			       rp->core->shm_attachments[i]->end))
			return -1;
	return 0;
}

/* ---- restore: contents ---- */

static int shm_fill(struct restore_ctx *ctx, const SysvShm *s)
{
	const ShmemObject *o = s->data;
	uint64_t total = 0, off = 0;
	uint8_t *m;
	int fd, rc = -1;

	for (size_t i = 0; i < o->n_runs; i++)
		total += o->runs[i]->nr_pages * CR_PAGE_SIZE;
	fd = img_open_raw(&ctx->dir, o->data_file, total);
	if (fd < 0)
		return -1;
	if (img_verify_raw(&ctx->dir, o->data_file, fd, total, o->chunk_size, o->chunk_crc32c,
			   o->n_chunk_crc32c))
		goto out;
	m = shmat(s->perm->id, NULL, 0);
	if (m == (void *)-1) {
		cr_perr("cannot attach System V segment %d to fill it", s->perm->id);
		goto out;
	}
	madvise(m, o->size, MADV_REMOVE);
	for (size_t i = 0; i < o->n_runs; i++) {
		uint64_t len = o->runs[i]->nr_pages * CR_PAGE_SIZE;

		if (pread(fd, m + o->runs[i]->vaddr, len, off) != (ssize_t)len) {
			cr_perr("cannot read %s/%s", ctx->dir.path, o->data_file);
			goto out_dt;
		}
		off += len;
	}
	rc = 0;
out_dt:
	shmdt(m);
out:
	close(fd);
	return rc;
}

int ipc_shm_restore(struct restore_ctx *ctx, size_t i)
{
	struct ipc_restore *r = ctx->ipc;
	const SysvShm *s = r->t->shm[i];
	struct shmid_ds ds;

	if (!shmctl(s->perm->id, IPC_STAT, &ds)) {
		if (ipc_existing(IPC_SHM, s->perm, ds.shm_perm.__key, ds.shm_segsz, s->size,
			     ds.shm_nattch))
			return -1;
	} else if (ipc_make_object(IPC_SHM, s->perm, s->size)) {
		return -1;
	} else {
		r->shm_made[i] = true;
	}
	return ipc_set_owner(IPC_SHM, s->perm, 0) || shm_fill(ctx, s);
}

/* Each attachment at its address, once the process's mappings are in place. */
void ipc_shm_plan(struct restore_proc *rp, struct plan *p)
{
	for (size_t i = 0; i < rp->core->n_shm_attachments; i++) {
		const SysvShmAttach *a = rp->core->shm_attachments[i];
		uint32_t prot = PROT_READ | (a->rdonly ? 0 : PROT_WRITE) |
				(a->prot & PROT_EXEC);

		plan_call(p, "attaching a System V segment", 0, __NR_shmat, a->shmid, a->start,
			  (a->rdonly ? SHM_RDONLY : 0) | (a->prot & PROT_EXEC ? SHM_EXEC : 0), 0,
			  0, 0);
		if (prot != a->prot)
			plan_call(p, "protecting a System V segment", 0, __NR_mprotect, a->start,
				  a->end - a->start, a->prot, 0, 0, 0);
	}
}
