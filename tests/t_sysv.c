/* System V IPC: a keyed segment attached read-write and read-only in the parent and
 * (inherited) in a child, a private segment removed while attached, a semaphore set
 * with values, a message queue with three messages of different types; checked after
 * restore from inside: ids and keys, attach addresses and modes, contents, sharing
 * between the two processes, values, the messages in order. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tlib.h"

#define SEG_SIZE (3 * 4096 + 100)
#define SEED 0x5157
#define TOKEN_OFF 8192
#define NSEMS 3

static int shm_key, sem_key, msg_key;
static int shmid, privid, semid, msgid;
static unsigned char *rw, *ro, *priv;
static int to_child[2];

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static const unsigned short sem_vals[NSEMS] = { 5, 0, 42 };
static const struct { long type; const char *text; } msgs[] = {
	{ 3, "first, of type three" }, { 1, "second" }, { 2, "third and last message" },
};

static void cleanup(void)
{
	shmctl(shmid, IPC_RMID, NULL);
	semctl(semid, 0, IPC_RMID);
	msgctl(msgid, IPC_RMID, NULL);
}

/* An earlier run killed with the same PID left them. */
static void remove_leftovers(void)
{
	int id;

	if ((id = shmget(shm_key, 0, 0)) >= 0)
		shmctl(id, IPC_RMID, NULL);
	if ((id = semget(sem_key, 0, 0)) >= 0)
		semctl(id, 0, IPC_RMID);
	if ((id = msgget(msg_key, 0)) >= 0)
		msgctl(id, IPC_RMID, NULL);
}

static void setup(void)
{
	struct { long type; char text[64]; } m;

	shmid = shmget(shm_key, SEG_SIZE, IPC_CREAT | IPC_EXCL | 0640);
	semid = semget(sem_key, NSEMS, IPC_CREAT | IPC_EXCL | 0604);
	msgid = msgget(msg_key, IPC_CREAT | IPC_EXCL | 0620);
	TL_CHECK(shmid >= 0 && semid >= 0 && msgid >= 0, "creating: %s", strerror(errno));
	atexit(cleanup);
	rw = shmat(shmid, NULL, 0);
	ro = shmat(shmid, NULL, SHM_RDONLY);
	TL_CHECK(rw != (void *)-1 && ro != (void *)-1, "shmat: %s", strerror(errno));
	tl_fill(rw, SEG_SIZE, SEED);
	memset(rw + 4096, 0, 4096);	/* a hole of zeroes among the data */
	privid = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	TL_CHECK(privid >= 0, "private shmget: %s", strerror(errno));
	priv = shmat(privid, NULL, 0);
	TL_CHECK(priv != (void *)-1, "private shmat: %s", strerror(errno));
	strcpy((char *)priv, "private and removed");
	TL_CHECK(!shmctl(privid, IPC_RMID, NULL), "IPC_RMID: %s", strerror(errno));
	TL_CHECK(!semctl(semid, 0, SETALL, (union semun){ .array = (unsigned short *)sem_vals }),
		 "SETALL: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		m.type = msgs[i].type;
		strcpy(m.text, msgs[i].text);
		TL_CHECK(!msgsnd(msgid, &m, strlen(m.text) + 1, IPC_NOWAIT), "msgsnd: %s",
			 strerror(errno));
	}
}

/* /proc/self/maps shows the attachment at addr with these permissions. */
static void check_mapped(const void *addr, const char *perms, int id)
{
	char line[512], want[64];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	snprintf(want, sizeof(want), "%lx-", (unsigned long)addr);
	while (f && fgets(line, sizeof(line), f)) {
		char p[8];
		unsigned long ino;

		if (strncmp(line, want, strlen(want)))
			continue;
		found = sscanf(line, "%*s %7s %*s %*s %lu", p, &ino) == 2 && !strcmp(p, perms) &&
			(int)ino == id;
	}
	if (f)
		fclose(f);
	TL_CHECK(found, "no %s attachment of segment %d at %p", perms, id, addr);
}

static void child(void)
{
	char c;

	close(to_child[1]);	/* the parent's end: EOF if the harness kills it */
	TL_CHECK(read(to_child[0], &c, 1) == 1, "child: token");
	TL_CHECK(tl_verify(rw, 4096, SEED) < 0 && tl_verify(ro, 4096, SEED) < 0,
		 "child: the segment's contents changed");
	TL_CHECK(!strcmp((char *)rw + TOKEN_OFF, "from the parent"),
		 "child: the parent's write after restore is not shared");
	TL_CHECK(!strcmp((char *)priv, "private and removed"), "child: private segment");
	strcpy((char *)rw + TOKEN_OFF + 100, "from the child");
	_exit(0);
}

static void check_shm(void)
{
	struct shmid_ds ds;

	TL_CHECK(!shmctl(shmid, IPC_STAT, &ds), "IPC_STAT: %s", strerror(errno));
	TL_CHECK(ds.shm_perm.__key == shm_key && ds.shm_segsz == SEG_SIZE &&
		 (ds.shm_perm.mode & 0777) == 0640,
		 "segment %d: key 0x%x size %zu mode %o", shmid, ds.shm_perm.__key,
		 (size_t)ds.shm_segsz, ds.shm_perm.mode & 0777);
	TL_CHECK(ds.shm_nattch == 4, "segment %d attached %lu times, not 4", shmid,
		 (unsigned long)ds.shm_nattch);
	check_mapped(rw, "rw-s", shmid);
	check_mapped(ro, "r--s", shmid);
	check_mapped(priv, "rw-s", privid);
	for (long off = 0; off < SEG_SIZE; off++) {
		unsigned char want = off >= 4096 && off < 8192 ? 0 : tl_pattern(off, SEED);

		TL_CHECK(rw[off] == want && ro[off] == want, "segment byte %ld changed", off);
	}
	TL_CHECK(!strcmp((char *)priv, "private and removed"), "private segment contents");
	TL_CHECK(shmctl(privid, IPC_STAT, &ds) || (ds.shm_perm.mode & SHM_DEST),
		 "the removed segment is back without SHM_DEST");
}

static void check_sem(void)
{
	unsigned short vals[NSEMS];
	struct semid_ds ds;
	struct sembuf op = { 2, -2, IPC_NOWAIT };

	TL_CHECK(semctl(semid, 0, IPC_STAT, (union semun){ .buf = &ds }) >= 0 &&
		 ds.sem_perm.__key == sem_key && ds.sem_nsems == NSEMS &&
		 (ds.sem_perm.mode & 0777) == 0604, "semaphore set %d: key or size changed", semid);
	TL_CHECK(!semctl(semid, 0, GETALL, (union semun){ .array = vals }), "GETALL");
	for (int i = 0; i < NSEMS; i++)
		TL_CHECK(vals[i] == sem_vals[i], "semaphore %d is %u, not %u", i, vals[i],
			 sem_vals[i]);
	TL_CHECK(!semop(semid, &op, 1) && semctl(semid, 2, GETVAL) == 40, "semop");
}

static void check_msg(void)
{
	struct { long type; char text[64]; } m;
	struct msqid_ds ds;

	TL_CHECK(!msgctl(msgid, IPC_STAT, &ds) && ds.msg_perm.__key == msg_key &&
		 ds.msg_qnum == 3 && (ds.msg_perm.mode & 0777) == 0620,
		 "queue %d: key, mode or count changed", msgid);
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		ssize_t n = msgrcv(msgid, &m, sizeof(m.text), 0, IPC_NOWAIT);

		TL_CHECK(n == (ssize_t)strlen(msgs[i].text) + 1 && m.type == msgs[i].type &&
			 !strcmp(m.text, msgs[i].text), "message %zu is wrong", i);
	}
	TL_CHECK(msgrcv(msgid, &m, sizeof(m.text), 0, IPC_NOWAIT) < 0 && errno == ENOMSG,
		 "the queue has more messages");
}

int main(int argc, char **argv)
{
	bool split = argc > 2 && !strcmp(argv[2], "split");
	bool undo = argc > 2 && !strcmp(argv[2], "undo");
	bool locked = argc > 2 && !strcmp(argv[2], "locked");
	int status;
	pid_t kid;

	tl_init();
	shm_key = 0x5c000000 | getpid();
	sem_key = 0x5d000000 | getpid();
	msg_key = 0x5e000000 | getpid();
	remove_leftovers();
	setup();
	TL_CHECK(!pipe(to_child), "pipe");
	kid = fork();
	TL_CHECK(kid >= 0, "fork");
	if (kid == 0)
		child();
	close(to_child[0]);
	/* Bad case: part of an attachment made read-only splits it. */
	if (split)
		TL_CHECK(!mprotect(rw + 4096, 4096, PROT_READ), "mprotect");
	/* Bad case: an adjustment the kernel would undo at exit. */
	if (undo)
		TL_CHECK(!semop(semid, &(struct sembuf){ 0, -1, SEM_UNDO }, 1), "semop");
	/* Bad case: a segment locked in memory. */
	if (locked)
		TL_CHECK(!shmctl(shmid, SHM_LOCK, NULL), "SHM_LOCK: %s", strerror(errno));
	tl_ready();
	tl_wait_go();
	if (split || undo || locked)
		tl_pass();
	check_shm();
	check_sem();
	check_msg();
	strcpy((char *)rw + TOKEN_OFF, "from the parent");
	TL_CHECK(write(to_child[1], "g", 1) == 1, "token");
	TL_CHECK(waitpid(kid, &status, 0) == kid && WIFEXITED(status) && !WEXITSTATUS(status),
		 "the child ended with 0x%x", status);
	TL_CHECK(!strcmp((char *)rw + TOKEN_OFF + 100, "from the child"),
		 "the child's write is not shared");
	tl_pass();
}
