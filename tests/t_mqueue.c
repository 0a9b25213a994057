/* POSIX message queues: a named queue with messages of different priorities, open in
 * the parent (read-write) and in a child (its own write-only, non-blocking
 * description), and a queue whose name was removed; checked after restore from inside:
 * attributes, mode, flags, the child's send reaching the parent, every message in
 * priority order, the removed name still gone. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tlib.h"

static char name[64], gone_name[64];
static mqd_t q, gone;
static int to_child[2], opened[2];

static const struct { const char *text; unsigned int prio; } msgs[] = {
	{ "low", 1 }, { "high-a", 5 }, { "high-b", 5 }, { "mid", 3 },
};
/* What receiving gives after the child's send: priority order, FIFO within one. */
static const char *const order[] = { "from the child", "high-a", "high-b", "mid", "low" };

static void cleanup(void)
{
	mq_unlink(name);
}

static void setup(void)
{
	struct mq_attr attr = { .mq_maxmsg = 8, .mq_msgsize = 64 };
	struct mq_attr small = { .mq_maxmsg = 4, .mq_msgsize = 32 };

	mq_unlink(name);	/* an earlier run killed with the same PID */
	mq_unlink(gone_name);
	q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0640, &attr);
	TL_CHECK(q != (mqd_t)-1, "mq_open %s: %s", name, strerror(errno));
	atexit(cleanup);
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
		TL_CHECK(!mq_send(q, msgs[i].text, strlen(msgs[i].text), msgs[i].prio), "mq_send");
	gone = mq_open(gone_name, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, 0600, &small);
	TL_CHECK(gone != (mqd_t)-1, "mq_open %s: %s", gone_name, strerror(errno));
	TL_CHECK(!mq_send(gone, "kept", 4, 2) && !mq_unlink(gone_name), "the removed queue");
}

static void child(void)
{
	mqd_t w = mq_open(name, O_WRONLY | O_NONBLOCK);
	struct mq_attr attr;
	char c;

	close(to_child[1]);
	TL_CHECK(w != (mqd_t)-1, "child: mq_open: %s", strerror(errno));
	TL_CHECK(write(opened[1], "o", 1) == 1, "child: opened");
	TL_CHECK(read(to_child[0], &c, 1) == 1, "child: token");
	TL_CHECK(!mq_getattr(w, &attr) && (attr.mq_flags & O_NONBLOCK) && attr.mq_maxmsg == 8,
		 "child: its description lost O_NONBLOCK or the attributes");
	TL_CHECK(!mq_send(w, "from the child", 14, 9), "child: mq_send: %s", strerror(errno));
	_exit(0);
}

static void expect(mqd_t m, const char *text, unsigned int prio, const char *what)
{
	char buf[64];
	unsigned int got;
	ssize_t n = mq_receive(m, buf, sizeof(buf), &got);

	TL_CHECK(n == (ssize_t)strlen(text) && !memcmp(buf, text, n) && (!prio || got == prio),
		 "%s: got '%.*s' (priority %u), expected '%s'", what, n > 0 ? (int)n : 0, buf,
		 got, text);
}

static void check(pid_t kid)
{
	struct mq_attr attr;
	struct stat st;
	int status;

	TL_CHECK(!mq_getattr(q, &attr) && attr.mq_maxmsg == 8 && attr.mq_msgsize == 64 &&
		 attr.mq_curmsgs == 4 && !(attr.mq_flags & O_NONBLOCK),
		 "queue attributes: maxmsg %ld msgsize %ld curmsgs %ld flags %lx",
		 attr.mq_maxmsg, attr.mq_msgsize, attr.mq_curmsgs, attr.mq_flags);
	TL_CHECK(!fstat(q, &st) && (st.st_mode & 0777) == 0640, "queue mode %o",
		 st.st_mode & 0777);
	TL_CHECK(!mq_getattr(gone, &attr) && attr.mq_curmsgs == 1 && attr.mq_maxmsg == 4 &&
		 (attr.mq_flags & O_NONBLOCK), "the removed queue's attributes");
	TL_CHECK(mq_open(gone_name, O_RDONLY) == (mqd_t)-1 && errno == ENOENT,
		 "the removed queue has a name again");
	TL_CHECK(write(to_child[1], "g", 1) == 1, "token");
	TL_CHECK(waitpid(kid, &status, 0) == kid && WIFEXITED(status) && !WEXITSTATUS(status),
		 "the child ended with 0x%x", status);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		expect(q, order[i], 0, "queue");
	TL_CHECK(!mq_getattr(q, &attr) && !attr.mq_curmsgs, "the queue has more messages");
	expect(gone, "kept", 2, "the removed queue");
}

int main(int argc, char **argv)
{
	const char *bad = argc > 2 ? argv[2] : "";
	pid_t kid;

	tl_init();
	snprintf(name, sizeof(name), "/cryo-t-mq-%d", getpid());
	snprintf(gone_name, sizeof(gone_name), "/cryo-t-mq-%d-gone", getpid());
	setup();
	TL_CHECK(!pipe(to_child) && !pipe(opened), "pipe");
	kid = fork();
	TL_CHECK(kid >= 0, "fork");
	if (kid == 0)
		child();
	close(to_child[0]);
	TL_CHECK(read(opened[0], &(char){ 0 }, 1) == 1, "the child did not open the queue");
	close(opened[0]);
	close(opened[1]);
	/* Bad cases: a notification registered; a full queue. */
	if (!strcmp(bad, "notify"))
		TL_CHECK(!mq_notify(q, &(struct sigevent){ .sigev_notify = SIGEV_NONE }),
			 "mq_notify: %s", strerror(errno));
	for (int i = 4; !strcmp(bad, "full") && i < 8; i++)
		TL_CHECK(!mq_send(q, "more", 4, 0), "filling the queue");
	tl_ready();
	tl_wait_go();
	if (*bad)
		tl_pass();
	check(kid);
	tl_pass();
}
