/* System V IPC (ipc_sysv.c): the segments the tree attaches, the semaphore sets and
 * message queues it last operated on, saved in ipc.img and made again with their ids. */
#ifndef CRYO_IPC_H
#define CRYO_IPC_H

#include <stdbool.h>
#include <stdint.h>

#include "task.h"

/* ---- dump ---- */

/* Is this smaps VMA a System V shared memory attachment ("/SYSV%08x (deleted)")? */
bool ipc_shm_vma(const struct proc_vma *v);
/* Record an attachment in the process's core and the segment, once, in ipc.img. */
int ipc_dump_shm_vma(struct dump_proc *p, const struct proc_vma *v);
/* Once every process is collected: segments attached outside the tree are refused;
 * the semaphore sets and queues the tree last operated on are read. */
int ipc_dump(struct dump_ctx *ctx);
int ipc_write_image(struct dump_ctx *ctx);
void ipc_dump_free(struct dump_ctx *ctx);

/* ---- restore ---- */

/* Read ipc.img (if any) and check it with every process's attachments. */
int ipc_load(struct restore_ctx *ctx);
/* Make (or take back, when left by the dumped tree) every object with its id, and
 * refill the POSIX message queues (file_mqueue.c). After the image's PIDs are known
 * free, before the tree is made. */
int ipc_restore_objects(struct restore_ctx *ctx);
/* The shmat calls of a process, once its memory is in place. */
void ipc_plan_attach(struct restore_proc *rp, struct plan *p);
/* Its attachments, busy for the plans and the vDSO. */
int ipc_add_busy(const struct restore_proc *rp, struct ranges *busy);
/* Success: segments that were destroyed go again. Failure: what was made goes (the
 * message queues' too). */
void ipc_restore_finish(struct restore_ctx *ctx, bool ok);

/* ---- pure helpers (unit-tested, fuzzed) ---- */

/* The key in a System V segment's mapping name; false if it is not one. */
bool ipc_shm_name_key(const char *path, int32_t *key);
/* Is ipc.img sound (ids, keys, sizes, runs, messages)? 0 or -1 with the error. */
int ipc_check_table(const IpcTable *t);
/* Do a process's attachments name segments of the table, whole, page-aligned, with
 * a consistent protection, clear of each other and of its VMAs? */
int ipc_check_attachments(const IpcTable *t, const Core *c);

#endif
