/* System V message queues, both halves: every message of each queue the tree last
 * used, copied without dequeuing (MSG_COPY); restore makes the queue and the process
 * that sent last sends them again, in order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/syscall.h>

#include "ipc_sysv.h"
#include "log.h"
#include "util.h"

int ipc_msg_check(const SysvMsgQueue *q, size_t i)
{
	uint64_t bytes = 0;

	if (ipc_check_perm(q->perm, "message queue", i))
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

/* ---- dump ---- */

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
	ipc_perm_from(q->perm, &ds->msg_perm, id);
	q->qbytes = ds->msg_qbytes;
	q->pid = pid;
	d->t.msg[d->t.n_msg++] = q;
	return msg_copy_all(q, id, ds->msg_qnum, ds->__msg_cbytes);
}

/* A queue is the tree's when one of its processes sent or received last. */
int ipc_msg_scan(struct dump_ctx *ctx, struct ipc_dump *d)
{
	struct msginfo mi;
	int max = msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);

	for (int idx = 0; idx <= max; idx++) {
		struct msqid_ds ds;
		int id = msgctl(idx, MSG_STAT_ANY, &ds);

		if (id < 0)
			continue;
		pid_t last = ipc_in_tree(ctx, ds.msg_lspid) ? ds.msg_lspid :
			     ipc_in_tree(ctx, ds.msg_lrpid) ? ds.msg_lrpid : 0;

		if (last && msg_read(d, id, &ds, last))
			return -1;
	}
	return 0;
}

/* A queue taken back is emptied; its process sends the messages again. */
/* ---- restore ---- */

static void msg_drain(const SysvMsgQueue *q)
{
	struct { long type; char text[1]; } buf;

	while (msgrcv(q->perm->id, &buf, sizeof(buf.text), 0, IPC_NOWAIT | MSG_NOERROR) >= 0)
		;
}

int ipc_msg_restore(struct restore_ctx *ctx, size_t i)
{
	struct ipc_restore *r = ctx->ipc;
	const SysvMsgQueue *q = r->t->msg[i];
	struct msqid_ds ds;

	if (!msgctl(q->perm->id, IPC_STAT, &ds)) {
		if (ipc_existing(IPC_MSG, q->perm, ds.msg_perm.__key, 0, 0, 0))
			return -1;
	} else if (ipc_make_object(IPC_MSG, q->perm, 0)) {
		return -1;
	} else {
		r->msg_made[i] = true;
	}
	msg_drain(q);
	return ipc_set_owner(IPC_MSG, q->perm, q->qbytes);
}

/* The messages, in order, from the process that sent last (its lspid, again). */
void ipc_msg_plan(struct restore_proc *rp, struct plan *p, const IpcTable *t)
{
	for (size_t i = 0; i < t->n_msg; i++) {
		const SysvMsgQueue *q = t->msg[i];

		if (!ipc_fills(rp, q->pid))
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
