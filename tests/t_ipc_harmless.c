/* IPC under a cryo killed at random instants (KILL-CRYO): one process with a System V
 * segment, semaphore set and message queue and a POSIX message queue with messages of
 * several priorities; whatever instant cryo died at, every message, value and byte is
 * there afterwards, in order (the queue's copy is made by a child that puts it back).
 * Single process: a kill-mode dump cut short may have killed children already. */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#include "tlib.h"

#define SEG_SIZE (2 * 4096)
#define SEED 0x1bc

static char mq_name[64];
static int shmid = -1, semid = -1, msgid = -1;
static unsigned char *seg;
static mqd_t q;

static const struct { const char *text; unsigned int prio; } mq_msgs[] = {
	{ "one", 2 }, { "two", 7 }, { "three", 2 }, { "four", 0 }, { "five", 7 },
};
static const char *const mq_order[] = { "two", "five", "one", "three", "four" };

static void cleanup(void)
{
	shmctl(shmid, IPC_RMID, NULL);
	semctl(semid, 0, IPC_RMID);
	msgctl(msgid, IPC_RMID, NULL);
	mq_unlink(mq_name);
}

static void setup(void)
{
	struct mq_attr attr = { .mq_maxmsg = 8, .mq_msgsize = 32 };
	struct { long type; char text[16]; } m = { 4, "sysv message" };
	int key = 0x5f000000 | getpid(), id;

	snprintf(mq_name, sizeof(mq_name), "/cryo-t-ipc-%d", getpid());
	mq_unlink(mq_name);	/* an earlier run killed with the same PID */
	if ((id = shmget(key, 0, 0)) >= 0)
		shmctl(id, IPC_RMID, NULL);
	if ((id = semget(key, 0, 0)) >= 0)
		semctl(id, 0, IPC_RMID);
	if ((id = msgget(key, 0)) >= 0)
		msgctl(id, IPC_RMID, NULL);
	shmid = shmget(key, SEG_SIZE, IPC_CREAT | IPC_EXCL | 0600);
	semid = semget(key, 1, IPC_CREAT | IPC_EXCL | 0600);
	msgid = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
	q = mq_open(mq_name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
	TL_CHECK(shmid >= 0 && semid >= 0 && msgid >= 0 && q != (mqd_t)-1, "creating: %s",
		 strerror(errno));
	atexit(cleanup);
	seg = shmat(shmid, NULL, 0);
	TL_CHECK(seg != (void *)-1, "shmat");
	tl_fill(seg, SEG_SIZE, SEED);
	TL_CHECK(!semctl(semid, 0, SETVAL, 9), "SETVAL");
	TL_CHECK(!msgsnd(msgid, &m, sizeof(m.text), IPC_NOWAIT), "msgsnd");
	for (size_t i = 0; i < sizeof(mq_msgs) / sizeof(mq_msgs[0]); i++)
		TL_CHECK(!mq_send(q, mq_msgs[i].text, strlen(mq_msgs[i].text), mq_msgs[i].prio),
			 "mq_send");
}

static void check(void)
{
	struct { long type; char text[16]; } m;
	struct mq_attr attr;
	char buf[32];

	TL_CHECK(tl_verify(seg, SEG_SIZE, SEED) < 0, "the segment changed");
	TL_CHECK(semctl(semid, 0, GETVAL) == 9, "the semaphore is %d", semctl(semid, 0, GETVAL));
	TL_CHECK(msgrcv(msgid, &m, sizeof(m.text), 0, IPC_NOWAIT) == sizeof(m.text) &&
		 m.type == 4 && !strcmp(m.text, "sysv message"), "the System V message");
	for (size_t i = 0; i < sizeof(mq_order) / sizeof(mq_order[0]); i++) {
		ssize_t n = mq_receive(q, buf, sizeof(buf), NULL);

		TL_CHECK(n == (ssize_t)strlen(mq_order[i]) && !memcmp(buf, mq_order[i], n),
			 "message %zu of the queue is '%.*s', not '%s'", i, n > 0 ? (int)n : 0,
			 buf, mq_order[i]);
	}
	TL_CHECK(!mq_getattr(q, &attr) && !attr.mq_curmsgs, "the queue has more messages");
}

int main(void)
{
	tl_init();
	setup();
	printf("KILL-CRYO 30\n");
	tl_ready();
	tl_wait_go();
	check();
	tl_pass();
}
