/* System V IPC, both halves: shared memory segments attached by the tree (contents,
 * attach addresses), semaphore sets and message queues a process of the tree last
 * operated on (values, queued messages), restored with their keys and ids. */
#include <errno.h>
#include <linux/kcmp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd_kind.h"
#include "ipc.h"
#include "log.h"
#include "mem.h"
#include "sys.h"
#include "util.h"

#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#endif
#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20
#endif
#ifndef MSG_STAT_ANY
#define MSG_STAT_ANY 13
#endif
#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

#define SHM_MAX_SIZE (1ULL << 40)
#define SEM_MAX_NSEMS 32000
#define SEM_MAX_VALUE 32767
#define MSG_MAX_BYTES (64u << 20)
#define READ_CHUNK (1u << 20)
#define IPC_LOCK_PATH "/run/cryo-ipc.lock"

/* VmFlags an attachment may have: what shmat and mprotect give. */
#define SHM_VMFLAGS (VMF(RD) | VMF(WR) | VMF(EX) | VMF(SH) | VMF(MR) | VMF(MW) | VMF(ME) | \
		     VMF(MS) | VMF(AC) | VMF(SD) | VMF(NR))

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *info;
};

struct ipc_dump {
	IpcTable t;
	size_t cap_shm, cap_sem, cap_msg, cap_seen;
	uint32_t *shm_seen;		/* attachments in the tree, per segment */
};

struct ipc_restore {
	IpcTable *t;
	bool *shm_made, *sem_made, *msg_made;	/* created by this restore */
	int lock_fd;
};

static const char *const next_id_file[] = { "shm_next_id", "sem_next_id", "msg_next_id" };
enum ipc_type { IPC_SHM, IPC_SEM, IPC_MSG };
static const char *const type_name[] = { "shared memory segment", "semaphore set",
					 "message queue" };

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

static int check_perm(const SysvPerm *p, const char *what, size_t i)
{
	if (!p || p->id < 0 || p->mode > 0777)
		return cr_err("image: ipc.img: %s %zu has an invalid id or mode", what, i);
	return 0;
}

/* No two objects of a kind share an id, or a key other than IPC_PRIVATE. */
static int check_unique(SysvPerm *const *perms, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (perms[i]->id == perms[j]->id ||
			    (perms[i]->key && perms[i]->key == perms[j]->key))
				return cr_err("image: ipc.img: two %ss with id %d or key 0x%x", what,
					      perms[i]->id, (unsigned int)perms[i]->key);
	return 0;
}

static int check_shm(const SysvShm *s, size_t i)
{
	const ShmemObject *o = s->data;
	uint64_t pages;

	if (check_perm(s->perm, "segment", i))
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

static int check_sem(const SysvSem *s, size_t i)
{
	if (check_perm(s->perm, "semaphore set", i))
		return -1;
	if (!s->n_values || s->n_values > SEM_MAX_NSEMS)
		return cr_err("image: ipc.img: semaphore set %d has %zu semaphores", s->perm->id,
			      s->n_values);
	for (size_t v = 0; v < s->n_values; v++)
		if (s->values[v] > SEM_MAX_VALUE)
			return cr_err("image: ipc.img: semaphore %zu of set %d has value %u", v,
				      s->perm->id, s->values[v]);
	return 0;
}

static int check_msg(const SysvMsgQueue *q, size_t i)
{
	uint64_t bytes = 0;

	if (check_perm(q->perm, "message queue", i))
		return -1;
	if (q->qbytes > MSG_MAX_BYTES)
		return cr_err("image: ipc.img: message queue %d holds up to %llu bytes",
			      q->perm->id, (unsigned long long)q->qbytes);
	for (size_t m = 0; m < q->n_messages; m++) {
		if (q->messages[m]->type <= 0)
			return cr_err("image: ipc.img: message %zu of queue %d has type %lld", m,
				      q->perm->id, (long long)q->messages[m]->type);
		bytes += q->messages[m]->text.len;
	}
	if (bytes > q->qbytes)
		return cr_err("image: ipc.img: queue %d holds more than its %llu bytes",
			      q->perm->id, (unsigned long long)q->qbytes);
	return 0;
}

int ipc_check_table(const IpcTable *t)
{
	SysvPerm **perms;
	size_t n = t->n_shm > t->n_sem ? t->n_shm : t->n_sem;
	int rc = -1;

	n = n > t->n_msg ? n : t->n_msg;
	perms = calloc(n + 1, sizeof(*perms));
	if (!perms)
		return cr_err("out of memory");
	for (size_t i = 0; i < t->n_shm; i++) {
		if (check_shm(t->shm[i], i))
			goto out;
		perms[i] = t->shm[i]->perm;
	}
	if (check_unique(perms, t->n_shm, "segment"))
		goto out;
	for (size_t i = 0; i < t->n_sem; i++) {
		if (check_sem(t->sem[i], i))
			goto out;
		perms[i] = t->sem[i]->perm;
	}
	if (check_unique(perms, t->n_sem, "semaphore set"))
		goto out;
	for (size_t i = 0; i < t->n_msg; i++) {
		if (check_msg(t->msg[i], i))
			goto out;
		perms[i] = t->msg[i]->perm;
	}
	rc = check_unique(perms, t->n_msg, "message queue");
out:
	free(perms);
	return rc;
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

/* ---- dump: shared memory ---- */

bool ipc_shm_vma(const struct proc_vma *v)
{
	int32_t key;

	return v->shared && ipc_shm_name_key(v->path, &key);
}

static void perm_from(SysvPerm *pb, const struct ipc_perm *k, int id)
{
	sysv_perm__init(pb);
	pb->key = k->__key;
	pb->id = id;
	pb->uid = k->uid;
	pb->gid = k->gid;
	pb->cuid = k->cuid;
	pb->cgid = k->cgid;
	pb->mode = k->mode & 0777;
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
	if (raw_close(&w))
		goto out_w;
	o->data_file = strdup(name);
	o->runs = runs_to_pb(&rs);
	if (!o->data_file || !o->runs) {
		cr_err("out of memory");
		goto out_w;
	}
	o->n_runs = rs.nr;
	o->chunk_size = IMG_CHUNK_SIZE;
	o->chunk_crc32c = w.crcs;
	o->n_chunk_crc32c = w.nr_crcs;
	w.crcs = NULL;
	rc = 0;
out_w:
	raw_free(&w);
out:
	free(rs.r);
	free(buf);
	return rc;
}

static struct ipc_dump *dump_state(struct dump_ctx *ctx)
{
	if (!ctx->ipc) {
		struct ipc_dump *d = calloc(1, sizeof(*d));

		if (!d) {
			cr_err("out of memory");
			return NULL;
		}
		ipc_table__init(&d->t);
		ctx->ipc = d;
	}
	return ctx->ipc;
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
	perm_from(s->perm, &ds->shm_perm, id);
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
	struct ipc_dump *d = dump_state(p->ctx);
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

/* ---- dump: semaphores and queues ---- */

static bool in_tree(const struct dump_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; pid > 0 && i < ctx->nr_procs; i++)
		if (ctx->procs[i]->pid == pid)
			return true;
	return false;
}

static int sem_read(struct ipc_dump *d, int id, const struct semid_ds *ds, pid_t pid)
{
	size_t n = ds->sem_nsems;
	unsigned short *vals = calloc(n + 1, sizeof(*vals));
	SysvSem *s;

	if (!vals)
		return cr_err("out of memory");
	if (semctl(id, 0, GETALL, (union semun){ .array = vals })) {
		free(vals);
		return cr_perr("cannot read semaphore set %d", id);
	}
	if (cr_grow(&d->t.sem, &d->cap_sem, d->t.n_sem + 1, sizeof(*d->t.sem), 4))
		goto oom;
	s = calloc(1, sizeof(*s) + sizeof(SysvPerm) + n * sizeof(uint32_t));
	if (!s)
		goto oom;
	sysv_sem__init(s);
	s->perm = (SysvPerm *)(s + 1);
	s->values = (uint32_t *)(s->perm + 1);
	perm_from(s->perm, &ds->sem_perm, id);
	s->n_values = n;
	s->pid = pid;
	for (size_t i = 0; i < n; i++)
		s->values[i] = vals[i];
	d->t.sem[d->t.n_sem++] = s;
	free(vals);
	return 0;
oom:
	free(vals);
	return cr_err("out of memory");
}

/* A set is the tree's when one of its processes was the last to change one of its
 * semaphores (semop, SETVAL, SETALL). */
static int sem_scan(struct dump_ctx *ctx, struct ipc_dump *d)
{
	struct seminfo si;
	int max = semctl(0, 0, SEM_INFO, (union semun){ .info = &si });

	for (int idx = 0; idx <= max; idx++) {
		struct semid_ds ds;
		int id = semctl(idx, 0, SEM_STAT_ANY, (union semun){ .buf = &ds });
		pid_t last = 0;

		if (id < 0)
			continue;
		for (unsigned long i = 0; i < ds.sem_nsems && !last; i++) {
			pid_t pid = semctl(id, i, GETPID);

			last = in_tree(ctx, pid) ? pid : 0;
		}
		if (last && sem_read(d, id, &ds, last))
			return -1;
	}
	return 0;
}

static int msg_copy_all(SysvMsgQueue *q, int id, uint64_t qnum, uint64_t cbytes)
{
	size_t cap = sizeof(long) + cbytes + 1;
	struct msgbuf *buf = malloc(cap);
	int rc = -1;

	if (!buf)
		return cr_err("out of memory");
	q->messages = calloc(qnum + 1, sizeof(*q->messages));
	if (!q->messages)
		goto oom;
	for (uint64_t i = 0; i < qnum; i++) {
		ssize_t n = msgrcv(id, buf, cbytes + 1, i, IPC_NOWAIT | MSG_COPY);
		SysvMessage *m;

		if (n < 0) {
			if (errno == ENOSYS)
				cr_err("message queue %d: this kernel cannot copy queued messages "
				       "(MSG_COPY needs CONFIG_CHECKPOINT_RESTORE)", id);
			else
				cr_perr("cannot copy message %llu of queue %d",
					(unsigned long long)i, id);
			goto out;
		}
		m = calloc(1, sizeof(*m) + n + 1);
		if (!m)
			goto oom;
		sysv_message__init(m);
		m->type = buf->mtype;
		m->text.data = (uint8_t *)(m + 1);
		m->text.len = n;
		memcpy(m->text.data, buf->mtext, n);
		q->messages[q->n_messages++] = m;
	}
	rc = 0;
	goto out;
oom:
	cr_err("out of memory");
out:
	free(buf);
	return rc;
}

static int msg_read(struct ipc_dump *d, int id, const struct msqid_ds *ds, pid_t pid)
{
	SysvMsgQueue *q;

	if (ds->__msg_cbytes > MSG_MAX_BYTES || ds->msg_qbytes > MSG_MAX_BYTES)
		return cr_err("message queue %d holds more than %u bytes, which cryo does not "
			      "save", id, MSG_MAX_BYTES);
	if (cr_grow(&d->t.msg, &d->cap_msg, d->t.n_msg + 1, sizeof(*d->t.msg), 4))
		return -1;
	q = calloc(1, sizeof(*q) + sizeof(SysvPerm));
	if (!q)
		return cr_err("out of memory");
	sysv_msg_queue__init(q);
	q->perm = (SysvPerm *)(q + 1);
	perm_from(q->perm, &ds->msg_perm, id);
	q->qbytes = ds->msg_qbytes;
	q->pid = pid;
	d->t.msg[d->t.n_msg++] = q;
	return msg_copy_all(q, id, ds->msg_qnum, ds->__msg_cbytes);
}

/* A queue is the tree's when one of its processes sent or received last. */
static int msg_scan(struct dump_ctx *ctx, struct ipc_dump *d)
{
	struct msginfo mi;
	int max = msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);

	for (int idx = 0; idx <= max; idx++) {
		struct msqid_ds ds;
		int id = msgctl(idx, MSG_STAT_ANY, &ds);

		if (id < 0)
			continue;
		pid_t last = in_tree(ctx, ds.msg_lspid) ? ds.msg_lspid :
			     in_tree(ctx, ds.msg_lrpid) ? ds.msg_lrpid : 0;

		if (last && msg_read(d, id, &ds, last))
			return -1;
	}
	return 0;
}

/* A segment attached outside the tree would become two at restore. */
static int shm_check_outside(struct ipc_dump *d)
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

/* SEM_UNDO adjustments live in a per-process undo list the kernel shows nowhere; kcmp
 * only tells whether a process has such a list, compared with a fresh child of cryo's
 * that has none. A list also comes with threads (CLONE_SYSVSEM makes one, empty), so
 * the test is made only when the tree uses semaphore sets: then any list is refused. */
static int check_no_undo(const struct dump_ctx *ctx)
{
	pid_t ref = fork();
	int rc = 0;

	if (ref < 0)
		return cr_perr("fork");
	if (ref == 0) {
		pause();
		_exit(0);
	}
	for (size_t i = 0; !rc && i < ctx->nr_procs; i++) {
		const struct dump_proc *p = ctx->procs[i];
		long same;

		if (p->zombie)
			continue;
		same = sys_kcmp(ref, p->pid, KCMP_SYSVSEM, 0, 0);
		if (same < 0)
			rc = cr_perr("process %d: cannot compare its semaphore undo list (kcmp)",
				     p->pid);
		else if (same)
			rc = cr_err("process %d: it has a semaphore undo list (from SEM_UNDO, or "
				    "threads) and the tree uses System V semaphores; its "
				    "adjustments cannot be read, so they would be lost", p->pid);
	}
	kill(ref, SIGKILL);
	waitpid(ref, NULL, 0);
	return rc;
}

int ipc_dump(struct dump_ctx *ctx)
{
	struct ipc_dump *d = dump_state(ctx);

	if (!d || shm_check_outside(d) || sem_scan(ctx, d) || msg_scan(ctx, d) ||
	    (d->t.n_sem && check_no_undo(ctx)))
		return -1;
	if (d->t.n_shm || d->t.n_sem || d->t.n_msg)
		pr_info("System V IPC: %zu segment%s, %zu semaphore set%s, %zu message queue%s",
			d->t.n_shm, d->t.n_shm == 1 ? "" : "s", d->t.n_sem,
			d->t.n_sem == 1 ? "" : "s", d->t.n_msg, d->t.n_msg == 1 ? "" : "s");
	return 0;
}

int ipc_write_image(struct dump_ctx *ctx)
{
	struct ipc_dump *d = ctx->ipc;

	if (!d || !(d->t.n_shm || d->t.n_sem || d->t.n_msg))
		return 0;
	return img_write_msg(&ctx->dir, "ipc.img", IMAGE_KIND__IMG_IPC, &d->t.base);
}

void ipc_dump_free(struct dump_ctx *ctx)
{
	struct ipc_dump *d = ctx->ipc;

	for (size_t i = 0; i < ctx->nr_procs; i++) {
		Core *c = &ctx->procs[i]->core;

		for (size_t a = 0; a < c->n_shm_attachments; a++)
			free(c->shm_attachments[a]);
		free(c->shm_attachments);
		c->shm_attachments = NULL;
		c->n_shm_attachments = 0;
	}
	if (!d)
		return;
	for (size_t i = 0; i < d->t.n_shm; i++) {
		free(d->t.shm[i]->data->data_file);
		runs_pb_free(d->t.shm[i]->data->runs);
		free(d->t.shm[i]->data->chunk_crc32c);
		free(d->t.shm[i]);
	}
	for (size_t i = 0; i < d->t.n_sem; i++)
		free(d->t.sem[i]);
	for (size_t i = 0; i < d->t.n_msg; i++) {
		for (size_t m = 0; m < d->t.msg[i]->n_messages; m++)
			free(d->t.msg[i]->messages[m]);
		free(d->t.msg[i]->messages);
		free(d->t.msg[i]);
	}
	free(d->t.shm);
	free(d->t.sem);
	free(d->t.msg);
	free(d->shm_seen);
	free(d);
	ctx->ipc = NULL;
}

/* ---- restore: loading ---- */

int ipc_load(struct restore_ctx *ctx)
{
	struct ipc_restore *r = calloc(1, sizeof(*r));

	if (!r)
		return cr_err("out of memory");
	r->lock_fd = -1;
	ctx->ipc = r;
	for (size_t i = 0; i < ctx->dir.nr_files; i++)
		if (!strcmp(ctx->dir.files[i].name, "ipc.img")) {
			r->t = img_read_msg(&ctx->dir, "ipc.img", IMAGE_KIND__IMG_IPC,
					    &ipc_table__descriptor);
			if (!r->t || ipc_check_table(r->t))
				return -1;
		}
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		const Core *c = ctx->procs[i]->core;

		if (c && c->n_shm_attachments && !r->t)
			return cr_err("image: process %u attaches System V segments but there is "
				      "no ipc.img", c->pid);
		if (c && ipc_check_attachments(r->t, c))
			return -1;
	}
	if (r->t) {
		r->shm_made = calloc(r->t->n_shm + 1, sizeof(bool));
		r->sem_made = calloc(r->t->n_sem + 1, sizeof(bool));
		r->msg_made = calloc(r->t->n_msg + 1, sizeof(bool));
		if (!r->shm_made || !r->sem_made || !r->msg_made)
			return cr_err("out of memory");
	}
	return 0;
}

int ipc_add_busy(const struct restore_proc *rp, struct ranges *busy)
{
	for (size_t i = 0; i < rp->core->n_shm_attachments; i++)
		if (ranges_add(busy, rp->core->shm_attachments[i]->start,
			       rp->core->shm_attachments[i]->end))
			return -1;
	return 0;
}

/* ---- restore: ids ---- */

/* Only /proc/sys/kernel/X_next_id chooses an id: the next object made anywhere in
 * the namespace gets it, so the id cryo got is checked (and cryo restores take a
 * lock against each other). */
static int set_next_id(enum ipc_type type, int id)
{
	char path[64], num[16];
	int fd, n = snprintf(num, sizeof(num), "%d", id);
	ssize_t w;

	snprintf(path, sizeof(path), "/proc/sys/kernel/%s", next_id_file[type]);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return cr_perr("cannot open %s to give a %s its id %d", path, type_name[type], id);
	w = write(fd, num, n);
	close(fd);
	if (w != n)
		return cr_perr("cannot write %s", path);
	return 0;
}

static void remove_object(enum ipc_type type, int id)
{
	if (type == IPC_SHM)
		shmctl(id, IPC_RMID, NULL);
	else if (type == IPC_SEM)
		semctl(id, 0, IPC_RMID);
	else
		msgctl(id, IPC_RMID, NULL);
}

static bool key_taken(enum ipc_type type, int32_t key)
{
	if (type == IPC_SHM)
		return shmget(key, 0, 0) >= 0 || errno != ENOENT;
	if (type == IPC_SEM)
		return semget(key, 0, 0) >= 0 || errno != ENOENT;
	return msgget(key, 0) >= 0 || errno != ENOENT;
}

static int make_object(enum ipc_type type, const SysvPerm *p, uint64_t size)
{
	int flags = IPC_CREAT | IPC_EXCL | 0600, got, err;

	/* The key first: a failed creation would leave next_id set for whoever is next
	 * (it cannot be reset). */
	if (p->key && key_taken(type, p->key))
		return cr_err("cannot restore %s %d: its key 0x%x is taken by another",
			      type_name[type], p->id, (unsigned int)p->key);
	if (set_next_id(type, p->id))
		return -1;
	if (type == IPC_SHM)
		got = shmget(p->key, size, flags);
	else if (type == IPC_SEM)
		got = semget(p->key, size, flags);
	else
		got = msgget(p->key, flags);
	err = errno;
	if (got < 0 && err == EEXIST)
		return cr_err("cannot restore %s %d: its key 0x%x is taken by another", type_name[type],
			      p->id, (unsigned int)p->key);
	if (got < 0 && err == ENOSPC)
		return cr_err("cannot restore %s %d: its id is taken", type_name[type], p->id);
	if (got < 0) {
		errno = err;
		return cr_perr("cannot restore %s %d", type_name[type], p->id);
	}
	if (got != p->id) {
		remove_object(type, got);
		return cr_err("cannot restore %s %d: another process made an IPC object meanwhile "
			      "and took its id", type_name[type], p->id);
	}
	return 0;
}

/* An object with the image's id: reused when it is the one the dumped tree left (same
 * key and size, nobody attached; the tree's PIDs are free by now), else refused. */
static int existing(enum ipc_type type, const SysvPerm *p, int32_t key, uint64_t size,
		    uint64_t want_size, unsigned long nattch)
{
	if (key != p->key || size != want_size || nattch)
		return cr_err("cannot restore %s %d (key 0x%x): id %d is another %s (key 0x%x)%s",
			      type_name[type], p->id, (unsigned int)p->key, p->id, type_name[type],
			      (unsigned int)key, nattch ? ", attached" : "");
	pr_debug("%s %d is still there: taken back", type_name[type], p->id);
	return 0;
}

static int set_owner(enum ipc_type type, const SysvPerm *p, uint64_t qbytes)
{
	int rc;

	if (type == IPC_SHM) {
		struct shmid_ds ds = { 0 };

		ds.shm_perm.uid = p->uid, ds.shm_perm.gid = p->gid, ds.shm_perm.mode = p->mode;
		rc = shmctl(p->id, IPC_SET, &ds);
	} else if (type == IPC_SEM) {
		struct semid_ds ds = { 0 };

		ds.sem_perm.uid = p->uid, ds.sem_perm.gid = p->gid, ds.sem_perm.mode = p->mode;
		rc = semctl(p->id, 0, IPC_SET, (union semun){ .buf = &ds });
	} else {
		struct msqid_ds ds = { 0 };

		ds.msg_perm.uid = p->uid, ds.msg_perm.gid = p->gid, ds.msg_perm.mode = p->mode;
		ds.msg_qbytes = qbytes;
		rc = msgctl(p->id, IPC_SET, &ds);
	}
	return rc ? cr_perr("cannot give %s %d its owner and mode", type_name[type], p->id) : 0;
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

static int restore_shm(struct restore_ctx *ctx, size_t i)
{
	struct ipc_restore *r = ctx->ipc;
	const SysvShm *s = r->t->shm[i];
	struct shmid_ds ds;

	if (!shmctl(s->perm->id, IPC_STAT, &ds)) {
		if (existing(IPC_SHM, s->perm, ds.shm_perm.__key, ds.shm_segsz, s->size,
			     ds.shm_nattch))
			return -1;
	} else if (make_object(IPC_SHM, s->perm, s->size)) {
		return -1;
	} else {
		r->shm_made[i] = true;
	}
	return set_owner(IPC_SHM, s->perm, 0) || shm_fill(ctx, s);
}

static int restore_sem(struct restore_ctx *ctx, size_t i)
{
	struct ipc_restore *r = ctx->ipc;
	const SysvSem *s = r->t->sem[i];
	struct semid_ds ds;

	(void)ctx;
	if (semctl(s->perm->id, 0, IPC_STAT, (union semun){ .buf = &ds }) >= 0) {
		if (existing(IPC_SEM, s->perm, ds.sem_perm.__key, ds.sem_nsems, s->n_values, 0))
			return -1;
	} else if (make_object(IPC_SEM, s->perm, s->n_values)) {
		return -1;
	} else {
		r->sem_made[i] = true;
	}
	return set_owner(IPC_SEM, s->perm, 0);
}

/* A queue taken back is emptied; its process sends the messages again. */
static void msg_drain(const SysvMsgQueue *q)
{
	struct { long type; char text[1]; } buf;

	while (msgrcv(q->perm->id, &buf, sizeof(buf.text), 0, IPC_NOWAIT | MSG_NOERROR) >= 0)
		;
}

static int restore_msg(struct restore_ctx *ctx, size_t i)
{
	struct ipc_restore *r = ctx->ipc;
	const SysvMsgQueue *q = r->t->msg[i];
	struct msqid_ds ds;

	(void)ctx;
	if (!msgctl(q->perm->id, IPC_STAT, &ds)) {
		if (existing(IPC_MSG, q->perm, ds.msg_perm.__key, 0, 0, 0))
			return -1;
	} else if (make_object(IPC_MSG, q->perm, 0)) {
		return -1;
	} else {
		r->msg_made[i] = true;
	}
	msg_drain(q);
	return set_owner(IPC_MSG, q->perm, q->qbytes);
}

static int check_trust(const struct restore_ctx *ctx, const SysvPerm *p, enum ipc_type type)
{
	if (ctx->trust.limited && p->uid != ctx->trust.owner)
		return cr_err("image: %s %d belongs to uid %u, beyond the image owner's rights",
			      type_name[type], p->id, p->uid);
	return 0;
}

int ipc_restore_objects(struct restore_ctx *ctx)
{
	struct ipc_restore *r = ctx->ipc;
	const IpcTable *t = r ? r->t : NULL;

	if (mqueue_restore_contents(ctx))
		return -1;
	if (!t)
		return 0;
	for (size_t i = 0; i < t->n_shm; i++)
		if (check_trust(ctx, t->shm[i]->perm, IPC_SHM))
			return -1;
	for (size_t i = 0; i < t->n_sem; i++)
		if (check_trust(ctx, t->sem[i]->perm, IPC_SEM))
			return -1;
	for (size_t i = 0; i < t->n_msg; i++)
		if (check_trust(ctx, t->msg[i]->perm, IPC_MSG))
			return -1;
	r->lock_fd = open(IPC_LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (r->lock_fd < 0 || flock(r->lock_fd, LOCK_EX))
		return cr_perr("cannot lock %s", IPC_LOCK_PATH);
	for (size_t i = 0; i < t->n_shm; i++)
		if (restore_shm(ctx, i))
			return -1;
	for (size_t i = 0; i < t->n_sem; i++)
		if (restore_sem(ctx, i))
			return -1;
	for (size_t i = 0; i < t->n_msg; i++)
		if (restore_msg(ctx, i))
			return -1;
	close(r->lock_fd);
	r->lock_fd = -1;
	return 0;
}

/* The process that puts a set's values or a queue's messages back. */
static bool fills(const struct restore_proc *rp, uint32_t pid)
{
	const struct restore_ctx *ctx = rp->ctx;

	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (ctx->procs[i]->pid == (pid_t)pid && !ctx->procs[i]->zombie)
			return ctx->procs[i] == rp;
	return rp == ctx->procs[0];
}

static void plan_fill(struct restore_proc *rp, struct plan *p, const IpcTable *t)
{
	for (size_t i = 0; i < t->n_sem; i++) {
		const SysvSem *s = t->sem[i];
		uint64_t at;

		if (!fills(rp, s->pid))
			continue;
		/* Counting hands out scratch memory: nothing is written then. */
		at = plan_data(p, NULL, s->n_values * sizeof(uint16_t));
		for (size_t v = 0; at && v < s->n_values && !p->counting; v++)
			((uint16_t *)at)[v] = s->values[v];
		plan_call(p, "setting semaphore values", 0, __NR_semctl, s->perm->id, 0, SETALL,
			  at, 0, 0);
	}
	for (size_t i = 0; i < t->n_msg; i++) {
		const SysvMsgQueue *q = t->msg[i];

		if (!fills(rp, q->pid))
			continue;
		for (size_t m = 0; m < q->n_messages; m++) {
			const SysvMessage *msg = q->messages[m];
			uint64_t at = plan_data(p, NULL, sizeof(int64_t) + msg->text.len);

			if (at && !p->counting) {
				memcpy((void *)at, &msg->type, sizeof(int64_t));
				memcpy((uint8_t *)at + sizeof(int64_t), msg->text.data, msg->text.len);
			}
			plan_call(p, "sending a queued message again", 0, __NR_msgsnd,
				  q->perm->id, at, msg->text.len, IPC_NOWAIT, 0, 0);
		}
	}
}

void ipc_plan_attach(struct restore_proc *rp, struct plan *p)
{
	const struct ipc_restore *r = rp->ctx->ipc;

	if (r && r->t)
		plan_fill(rp, p, r->t);
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

void ipc_restore_finish(struct restore_ctx *ctx, bool ok)
{
	struct ipc_restore *r = ctx->ipc;
	const IpcTable *t = r ? r->t : NULL;

	mqueue_restore_finish(ctx, ok);
	for (size_t i = 0; t && i < t->n_shm; i++)
		if (ok ? t->shm[i]->destroyed : r->shm_made[i])
			shmctl(t->shm[i]->perm->id, IPC_RMID, NULL);
	for (size_t i = 0; t && !ok && i < t->n_sem; i++)
		if (r->sem_made[i])
			semctl(t->sem[i]->perm->id, 0, IPC_RMID);
	for (size_t i = 0; t && !ok && i < t->n_msg; i++)
		if (r->msg_made[i])
			msgctl(t->msg[i]->perm->id, IPC_RMID, NULL);
	if (!r)
		return;
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	if (r->t)
		ipc_table__free_unpacked(r->t, NULL);
	free(r->shm_made);
	free(r->sem_made);
	free(r->msg_made);
	free(r);
	ctx->ipc = NULL;
}
