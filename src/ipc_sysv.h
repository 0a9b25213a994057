/* What the System V files share: ipc_sysv.c (the table, the ids, the order of
 * things), ipc_shm.c, ipc_sem.c and ipc_msg.c (one kind of object each). */
#ifndef CRYO_IPC_SYSV_H
#define CRYO_IPC_SYSV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/ipc.h>
#include <sys/sem.h>

#include "ipc.h"

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

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *info;
};

/* Dump: the table being filled. */
struct ipc_dump {
	IpcTable t;
	size_t cap_shm, cap_sem, cap_msg, cap_seen;
	uint32_t *shm_seen;		/* attachments in the tree, per segment */
};

/* Restore: the table read, what this restore created. */
struct ipc_restore {
	IpcTable *t;
	bool *shm_made, *sem_made, *msg_made;
	int lock_fd;
};

enum ipc_type { IPC_SHM, IPC_SEM, IPC_MSG };
extern const char *const ipc_type_name[];

/* ipc_sysv.c */
int ipc_check_perm(const SysvPerm *p, const char *what, size_t i);
void ipc_perm_from(SysvPerm *pb, const struct ipc_perm *k, int id);
struct ipc_dump *ipc_dump_state(struct dump_ctx *ctx);
bool ipc_in_tree(const struct dump_ctx *ctx, pid_t pid);
/* Make an object with the image's id (next_id, checked). */
int ipc_make_object(enum ipc_type type, const SysvPerm *p, uint64_t size);
/* An object with the image's id is there: is it the one the tree left? */
int ipc_existing(enum ipc_type type, const SysvPerm *p, int32_t key, uint64_t size,
		 uint64_t want_size, unsigned long nattch);
int ipc_set_owner(enum ipc_type type, const SysvPerm *p, uint64_t qbytes);
/* Is rp the process that puts back what process `pid` last changed? */
bool ipc_fills(const struct restore_proc *rp, uint32_t pid);

/* ipc_shm.c */
int ipc_shm_check(const SysvShm *s, size_t i);
int ipc_shm_check_outside(struct ipc_dump *d);
int ipc_shm_restore(struct restore_ctx *ctx, size_t i);
void ipc_shm_plan(struct restore_proc *rp, struct plan *p);

/* ipc_sem.c */
int ipc_sem_check(const SysvSem *s, size_t i);
int ipc_sem_scan(struct dump_ctx *ctx, struct ipc_dump *d);
int ipc_sem_restore(struct restore_ctx *ctx, size_t i);
void ipc_sem_plan(struct restore_proc *rp, struct plan *p, const IpcTable *t);

/* ipc_msg.c */
int ipc_msg_check(const SysvMsgQueue *q, size_t i);
int ipc_msg_scan(struct dump_ctx *ctx, struct ipc_dump *d);
int ipc_msg_restore(struct restore_ctx *ctx, size_t i);
void ipc_msg_plan(struct restore_proc *rp, struct plan *p, const IpcTable *t);

#endif
