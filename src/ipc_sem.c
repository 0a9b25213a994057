/* System V semaphore sets, both halves: the values of each set the tree last
 * changed; restore makes the set and the process that changed it last sets them. */
#include <errno.h>
#include <stdlib.h>
#include <sys/sem.h>
#include <sys/syscall.h>

#include "ipc_sysv.h"
#include "log.h"
#include "util.h"

int ipc_sem_check(const SysvSem *s, size_t i)
{
	if (ipc_check_perm(s->perm, "semaphore set", i))
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

/* ---- dump ---- */

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
	ipc_perm_from(s->perm, &ds->sem_perm, id);
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
int ipc_sem_scan(struct dump_ctx *ctx, struct ipc_dump *d)
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

			last = ipc_in_tree(ctx, pid) ? pid : 0;
		}
		if (last && sem_read(d, id, &ds, last))
			return -1;
	}
	return 0;
}

/* ---- restore ---- */

int ipc_sem_restore(struct restore_ctx *ctx, size_t i)
{
	struct ipc_restore *r = ctx->ipc;
	const SysvSem *s = r->t->sem[i];
	struct semid_ds ds;

	if (semctl(s->perm->id, 0, IPC_STAT, (union semun){ .buf = &ds }) >= 0) {
		if (ipc_existing(IPC_SEM, s->perm, ds.sem_perm.__key, ds.sem_nsems, s->n_values, 0))
			return -1;
	} else if (ipc_make_object(IPC_SEM, s->perm, s->n_values)) {
		return -1;
	} else {
		r->sem_made[i] = true;
	}
	return ipc_set_owner(IPC_SEM, s->perm, 0);
}

/* SETALL from the process that changed a set last (its sempid, again). */
void ipc_sem_plan(struct restore_proc *rp, struct plan *p, const IpcTable *t)
{
	for (size_t i = 0; i < t->n_sem; i++) {
		const SysvSem *s = t->sem[i];
		uint64_t at;

		if (!ipc_fills(rp, s->pid))
			continue;
		/* Counting hands out scratch memory: nothing is written then. */
		at = plan_data(p, NULL, s->n_values * sizeof(uint16_t));
		for (size_t v = 0; at && v < s->n_values && !p->counting; v++)
			((uint16_t *)at)[v] = s->values[v];
		plan_call(p, "setting semaphore values", 0, __NR_semctl, s->perm->id, 0, SETALL,
			  at, 0, 0);
	}
}
