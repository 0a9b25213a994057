/* System V IPC: which objects a dump takes, ipc.img and its checks, the ids at
 * restore (next_id under a lock), the order of it all and the undoing; each kind of
 * object has its own file (ipc_shm.c, ipc_sem.c, ipc_msg.c). docs/IPC.md. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd_kind.h"
#include "ipc_sysv.h"
#include "log.h"
#include "mem.h"
#include "sys.h"
#include "userns.h"
#include "util.h"

#define IPC_LOCK_PATH "/run/cryo-ipc.lock"

static const char *const next_id_file[] = { "shm_next_id", "sem_next_id", "msg_next_id" };
const char *const ipc_type_name[] = { "shared memory segment", "semaphore set",
				      "message queue" };

/* ---- ipc.img ---- */

int ipc_check_perm(const SysvPerm *p, const char *what, size_t i)
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
		if (ipc_shm_check(t->shm[i], i))
			goto out;
		perms[i] = t->shm[i]->perm;
	}
	if (check_unique(perms, t->n_shm, "segment"))
		goto out;
	for (size_t i = 0; i < t->n_sem; i++) {
		if (ipc_sem_check(t->sem[i], i))
			goto out;
		perms[i] = t->sem[i]->perm;
	}
	if (check_unique(perms, t->n_sem, "semaphore set"))
		goto out;
	for (size_t i = 0; i < t->n_msg; i++) {
		if (ipc_msg_check(t->msg[i], i))
			goto out;
		perms[i] = t->msg[i]->perm;
	}
	rc = check_unique(perms, t->n_msg, "message queue");
out:
	free(perms);
	return rc;
}

/* ---- dump ---- */

void ipc_perm_from(SysvPerm *pb, const struct ipc_perm *k, int id)
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

struct ipc_dump *ipc_dump_state(struct dump_ctx *ctx)
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

/* ---- dump: semaphores and queues ---- */

bool ipc_in_tree(const struct dump_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; pid > 0 && i < ctx->nr_procs; i++)
		if (ctx->procs[i]->pid == pid)
			return true;
	return false;
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
	/* The reference is cryo's child, not dumpable if cryo has file capabilities. */
	if (userns_ptrace_own(true))
		rc = -1;
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
	if (userns_ptrace_own(false))
		rc = -1;
	kill(ref, SIGKILL);
	waitpid(ref, NULL, 0);
	return rc;
}

int ipc_dump(struct dump_ctx *ctx)
{
	struct ipc_dump *d = ipc_dump_state(ctx);

	if (!d || ipc_shm_check_outside(d) || ipc_sem_scan(ctx, d) || ipc_msg_scan(ctx, d) ||
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


/* ---- restore ---- */

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
		return cr_perr("cannot open %s to give a %s its id %d", path, ipc_type_name[type], id);
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

int ipc_make_object(enum ipc_type type, const SysvPerm *p, uint64_t size)
{
	int flags = IPC_CREAT | IPC_EXCL | 0600, got, err;

	/* The key first: a failed creation would leave next_id set for whoever is next
	 * (it cannot be reset). */
	if (p->key && key_taken(type, p->key))
		return cr_err("cannot restore %s %d: its key 0x%x is taken by another",
			      ipc_type_name[type], p->id, (unsigned int)p->key);
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
		return cr_err("cannot restore %s %d: its key 0x%x is taken by another", ipc_type_name[type],
			      p->id, (unsigned int)p->key);
	if (got < 0 && err == ENOSPC)
		return cr_err("cannot restore %s %d: its id is taken", ipc_type_name[type], p->id);
	if (got < 0) {
		errno = err;
		return cr_perr("cannot restore %s %d", ipc_type_name[type], p->id);
	}
	if (got != p->id) {
		remove_object(type, got);
		return cr_err("cannot restore %s %d: another process made an IPC object meanwhile "
			      "and took its id", ipc_type_name[type], p->id);
	}
	return 0;
}

/* An object with the image's id: reused when it is the one the dumped tree left (same
 * key and size, nobody attached; the tree's PIDs are free by now), else refused. */
int ipc_existing(enum ipc_type type, const SysvPerm *p, int32_t key, uint64_t size,
		    uint64_t want_size, unsigned long nattch)
{
	if (key != p->key || size != want_size || nattch)
		return cr_err("cannot restore %s %d (key 0x%x): id %d is another %s (key 0x%x)%s",
			      ipc_type_name[type], p->id, (unsigned int)p->key, p->id, ipc_type_name[type],
			      (unsigned int)key, nattch ? ", attached" : "");
	pr_debug("%s %d is still there: taken back", ipc_type_name[type], p->id);
	return 0;
}

int ipc_set_owner(enum ipc_type type, const SysvPerm *p, uint64_t qbytes)
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
	return rc ? cr_perr("cannot give %s %d its owner and mode", ipc_type_name[type], p->id) : 0;
}

static int check_trust(const struct restore_ctx *ctx, const SysvPerm *p, enum ipc_type type)
{
	if (ctx->trust.limited && p->uid != ctx->trust.owner)
		return cr_err("image: %s %d belongs to uid %u, beyond the image owner's rights",
			      ipc_type_name[type], p->id, p->uid);
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
		if (ipc_shm_restore(ctx, i))
			return -1;
	for (size_t i = 0; i < t->n_sem; i++)
		if (ipc_sem_restore(ctx, i))
			return -1;
	for (size_t i = 0; i < t->n_msg; i++)
		if (ipc_msg_restore(ctx, i))
			return -1;
	close(r->lock_fd);
	r->lock_fd = -1;
	return 0;
}

/* The process that puts a set's values or a queue's messages back. */
bool ipc_fills(const struct restore_proc *rp, uint32_t pid)
{
	const struct restore_ctx *ctx = rp->ctx;

	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (ctx->procs[i]->pid == (pid_t)pid && !ctx->procs[i]->zombie)
			return ctx->procs[i] == rp;
	return rp == ctx->procs[0];
}

void ipc_plan_attach(struct restore_proc *rp, struct plan *p)
{
	const struct ipc_restore *r = rp->ctx->ipc;

	if (r && r->t) {
		ipc_sem_plan(rp, p, r->t);
		ipc_msg_plan(rp, p, r->t);
	}
	ipc_shm_plan(rp, p);
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
