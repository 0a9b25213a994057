/* net_lock.c for real, in a network namespace of the test's own (the host's ruleset is
 * never touched): a loopback connection between a victim process and the test (its
 * peer) is locked, unlocked, persisted and removed; cryo (a child playing it) and the
 * guardian are SIGKILLed at random moments, after which no lock and no socket in
 * repair mode may remain. Every wait is for an event, bounded by a deadline. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <nftables/libnftables.h>

#include "files.h"
#include "fd_kind.h"
#include "net_lock.h"
#include "tcp_repair.h"
#include "unit.h"

#define DEADLINE_MS 60000

static int peer = -1;		/* the test's end of the connection */
static int vsk;			/* the victim's socket, as fd number in the victim */
static pid_t victim;
static int vcmd[2], vans[2];	/* commands to the victim, its answers */

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int lo_up(void)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM, 0), rc;

	strcpy(ifr.ifr_name, "lo");
	rc = s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) ? -1 : 0;
	ifr.ifr_flags |= IFF_UP;
	if (!rc)
		rc = ioctl(s, SIOCSIFFLAGS, &ifr);
	if (s >= 0)
		close(s);
	return rc;
}

/* ---- the victim: holds its socket, answers commands ---- */

static void victim_main(int sk)
{
	char c;

	while (read(vcmd[0], &c, 1) == 1) {
		int v = 0;

		if (c == 'q')
			ioctl(sk, SIOCINQ, &v);
		else if (c == 's')
			v = send(sk, "v", 1, MSG_DONTWAIT) == 1 ? 0 : errno;
		if (write(vans[1], &v, sizeof(v)) != sizeof(v))
			break;
	}
	_exit(0);
}

static int ask(char c)
{
	int v = -1;

	if (write(vcmd[1], &c, 1) != 1 || read(vans[0], &v, sizeof(v)) != sizeof(v))
		return -1;
	return v;
}

/* More connections of the victim (test_many): its ends, the test's. */
static int *extra_c, *extra_p, nr_extra;

/* A connection over loopback to listener l: *c the client end, *p the accepted one. */
static int pair(int l, const struct sockaddr_in *a, int *c, int *p)
{
	*c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*c < 0 || connect(*c, (const void *)a, sizeof(*a)))
		return -1;
	*p = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	return *p < 0 ? -1 : 0;
}

/* A connection over loopback, and nr_extra more: the victim has one end of each, the
 * test the other. */
static int make_conn(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int c;

	if (l < 0 || bind(l, (void *)&a, sizeof(a)) || listen(l, 128) ||
	    getsockname(l, (void *)&a, &al) || pair(l, &a, &c, &peer))
		return -1;
	for (int i = 0; i < nr_extra; i++)
		if (pair(l, &a, &extra_c[i], &extra_p[i]))
			return -1;
	close(l);
	if (pipe(vcmd) || pipe(vans))
		return -1;
	vsk = c;
	victim = fork();
	if (victim == 0) {
		close(peer);
		for (int i = 0; i < nr_extra; i++)
			close(extra_p[i]);
		close(vcmd[1]);
		close(vans[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		victim_main(c);
	}
	close(c);
	for (int i = 0; i < nr_extra; i++)
		close(extra_c[i]);
	close(vcmd[0]);
	close(vans[1]);
	return victim > 0 ? 0 : -1;
}

static void drop_conn(void)
{
	if (victim > 0) {
		kill(victim, SIGKILL);
		waitpid(victim, NULL, 0);
	}
	victim = 0;
	for (int i = 0; i < nr_extra; i++)
		close(extra_p[i]);
	close(peer);
	close(vcmd[1]);
	close(vans[0]);
}

/* ---- nftables, as an outsider sees it ---- */

static char *nft_out(const char *cmd)
{
	struct nft_ctx *n = nft_ctx_new(NFT_CTX_DEFAULT);
	char *out = NULL;

	nft_ctx_buffer_output(n);
	nft_ctx_buffer_error(n);
	if (!nft_run_cmd_from_buffer(n, cmd))
		out = strdup(nft_ctx_get_output_buffer(n));
	nft_ctx_free(n);
	return out;
}

/* The first table of family inet whose name starts with prefix, or "". */
static void find_table(const char *prefix, char *name, size_t len)
{
	char *s = nft_out("list tables\n"), *at;
	char want[96];

	name[0] = 0;
	snprintf(want, sizeof(want), "table inet %s", prefix);
	at = s ? strstr(s, want) : NULL;
	if (at)
		snprintf(name, len, "%.*s", (int)strcspn(at + 11, "\n "), at + 11);
	free(s);
}

static bool table_exists(const char *prefix)
{
	char name[128];

	find_table(prefix, name, sizeof(name));
	return name[0];
}

/* Packets the table's rules dropped. */
static long dropped(const char *table)
{
	char cmd[160], *s, *at;
	long n = 0;

	snprintf(cmd, sizeof(cmd), "list table inet %s\n", table);
	s = nft_out(cmd);
	for (at = s; at && (at = strstr(at, "packets ")); at += 8)
		n += atol(at + 8);
	free(s);
	return s ? n : -1;
}

static bool wait_dropped(const char *table, long at_least)
{
	for (int ms = 0; ms < DEADLINE_MS; ms += 2, sleep_ms(2))
		if (dropped(table) >= at_least)
			return true;
	return false;
}

static int peer_inq(void)
{
	int v = -1;

	ioctl(peer, SIOCINQ, &v);
	return v;
}

/* Both ways, a byte sent now arrives. */
static bool traffic_flows(void)
{
	int before = ask('q'), pbefore = peer_inq();

	if (send(peer, "p", 1, MSG_DONTWAIT) != 1 || ask('s') != 0)
		return false;
	for (int ms = 0; ms < DEADLINE_MS; ms += 2, sleep_ms(2))
		if (ask('q') > before && peer_inq() > pbefore)
			return true;
	return false;
}

static struct dump_ctx *fake_ctx(pid_t pid)
{
	static struct dump_ctx ctx;
	static struct dump_proc p, *pp = &p;

	memset(&ctx, 0, sizeof(ctx));
	memset(&p, 0, sizeof(p));
	p.pid = pid;
	p.ctx = &ctx;
	ctx.procs = &pp;
	ctx.nr_procs = 1;
	ctx.tcp_established = true;
	ctx.leave_running = true;
	return &ctx;
}

/* A new case with a new connection, and the dump context of its victim. */
static struct dump_ctx *start_case(void)
{
	unit_case();
	if (make_conn()) {
		CHECK(0, "cannot make a connection");
		return NULL;
	}
	return fake_ctx(victim);
}

/* The guardian: the test's child that is neither the victim nor `not`. */
static pid_t find_guardian(pid_t not)
{
	char path[64], buf[512], *at, *end;
	int fd, n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", getpid());
	fd = open(path, O_RDONLY);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	for (at = buf;; at = end) {
		long pid = strtol(at, &end, 10);

		if (end == at)
			return 0;
		if (pid != victim && pid != not)
			return pid;
	}
}

/* Repair mode on the victim's socket, through a copy, guarded first. */
static int enter_repair(void)
{
	int sk = file_fd_dup(victim, vsk), on = 1, rc;

	if (sk < 0)
		return -1;
	rc = net_guard_repair(sk) || setsockopt(sk, SOL_TCP, TCP_REPAIR, &on, sizeof(on));
	close(sk);
	return rc ? -1 : 0;
}

/* --leave-running: locked both ways, then unlocked with repair off. */
static void test_lock_unlock(void)
{
	char table[64];
	struct dump_ctx *ctx;

	ctx = start_case();
	if (!ctx)
		return;
	snprintf(table, sizeof(table), "cryo_lock_%d", victim);
	CHECK(!net_lock_dump(ctx), "lock: %s", err_text());
	CHECK(table_exists(table), "no table %s", table);
	CHECK(!enter_repair(), "repair: %s", err_text());
	/* The peer sends, the victim (repair mode refuses a send) cannot. */
	CHECK(send(peer, "x", 1, MSG_DONTWAIT) == 1, "peer send");
	CHECK(wait_dropped(table, 1), "the lock dropped nothing");
	CHECK(ask('q') == 0, "a byte reached the locked socket");
	CHECK(ask('s') == EINVAL, "the victim's socket is not in repair mode");
	CHECK(!net_lock_dump_finish(ctx, false), "unlock: %s", err_text());
	CHECK(!table_exists(table), "the table stayed");
	CHECK(ask('s') == 0, "repair mode stayed after the unlock");
	for (int ms = 0; ms < DEADLINE_MS && ask('q') < 1; ms += 2)
		sleep_ms(2);
	CHECK(ask('q') == 1, "the held-back byte never arrived");
	CHECK(traffic_flows(), "no traffic after the unlock");
	drop_conn();
}

/* What carries TCP_REPAIR_MARK (restore's segments sent in a peer's name) passes,
 * over loopback too. */
static void test_mark_passes(void)
{
	int mark = TCP_REPAIR_MARK, got = 0;
	struct dump_ctx *ctx;

	ctx = start_case();
	if (!ctx)
		return;
	CHECK(!net_lock_dump(ctx), "lock: %s", err_text());
	CHECK(!setsockopt(peer, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)), "SO_MARK");
	CHECK(send(peer, "m", 1, MSG_DONTWAIT) == 1, "peer send");
	for (int ms = 0; ms < DEADLINE_MS && (got = ask('q')) < 1; ms += 2)
		sleep_ms(2);
	CHECK(got == 1, "a marked segment did not pass the lock");
	CHECK(!net_lock_dump_finish(ctx, false), "unlock: %s", err_text());
	drop_conn();
}

/* A connection not under the lock never enters repair mode. */
static void test_unguarded(void)
{
	unit_case();
	if (make_conn()) {
		CHECK(0, "cannot make a connection");
		return;
	}
	CHECK(enter_repair() && err_has("not under the network lock"), "unlocked repair: %s",
	      err_text());
	CHECK(ask('s') == 0, "the socket entered repair mode");
	drop_conn();
}

/* "cryo" (a child) is SIGKILLed at a random moment of lock, repair, or kill mode's
 * end: afterwards no lock, no repair mode, traffic flows; or, if it had killed the
 * tree, the persistent lock holds. */
static long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

/* Returns how long cryo took to be ready (max_us 0: it is killed once ready). */
static long kill_cryo_once(long max_us, bool kill_tree)
{
	int go[2], st;
	pid_t cryo, g;
	long t0 = now_us(), took = 0;
	char c;

	if (make_conn() || pipe(go)) {
		CHECK(0, "cannot make a connection");
		return 0;
	}
	cryo = fork();
	if (cryo == 0) {
		struct dump_ctx *ctx = fake_ctx(victim);

		close(go[0]);
		if (net_lock_dump(ctx) || enter_repair())
			_exit(1);
		if (kill_tree)
			kill(victim, SIGKILL);
		if (write(go[1], "r", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(go[1]);
	if (max_us)
		usleep(rand() % max_us);
	else if (read(go[0], &c, 1) != 1)
		CHECK(0, "cryo failed before it was ready");
	took = now_us() - t0;
	kill(cryo, SIGKILL);
	waitpid(cryo, &st, 0);
	close(go[0]);
	/* The guardian, ours now (subreaper), finishes its work and exits. */
	while ((g = find_guardian(cryo)) > 0)
		waitpid(g, &st, 0);
	CHECK(!table_exists("cryo_lock_"), "the owner table outlived its guardian");
	if (kill_tree) {
		char keep[128];
		struct restore_ctx rctx = { 0 };
		NetLock nl = NET_LOCK__INIT;

		waitpid(victim, &st, 0);
		victim = 0;
		find_table("cryo_keep_", keep, sizeof(keep));
		CHECK(keep[0], "a killed tree lost its lock");
		/* The peer sends: dropped, no RST comes back. */
		CHECK(send(peer, "y", 1, MSG_DONTWAIT) == 1, "peer send");
		CHECK(!keep[0] || wait_dropped(keep, 1), "the persistent lock dropped nothing");
		CHECK(recv(peer, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN,
		      "the peer saw its connection end: %s", strerror(errno));
		nl.table = keep;
		rctx.netlock = &nl;
		net_unlock_restore(&rctx);
		CHECK(!table_exists("cryo_keep_"), "restore left the lock");
	} else {
		CHECK(!table_exists("cryo_keep_"), "a running tree got a persistent lock");
		CHECK(traffic_flows(), "no traffic after cryo died");
	}
	drop_conn();
	return took;
}

static void test_kill_cryo(void)
{
	long ready;

	unit_case();
	ready = kill_cryo_once(0, false);
	printf("cryo took %ld us to lock and enter repair mode\n", ready);
	/* Moments spread over the whole of it, and a little after. */
	for (int i = 0; i < 16; i++)
		kill_cryo_once(ready * 3 / 2 + 1, false);
	kill_cryo_once(0, true);
}

/* The guardian SIGKILLed while cryo lives: its table goes; cryo's copies turn repair
 * off; the dump fails. */
static void test_kill_guardian(void)
{
	struct dump_ctx *ctx;
	pid_t g;

	ctx = start_case();
	if (!ctx)
		return;
	CHECK(!net_lock_dump(ctx) && !enter_repair(), "lock: %s", err_text());
	g = find_guardian(0);
	CHECK(g > 0, "no guardian");
	if (g > 0) {
		kill(g, SIGKILL);
		waitpid(g, NULL, 0);
	}
	CHECK(!table_exists("cryo_lock_"), "the table outlived the guardian");
	cr_err_reset();
	CHECK(net_lock_dump_finish(ctx, false) && err_has("guardian"), "finish: %s",
	      err_text());
	CHECK(traffic_flows(), "no traffic after the guardian died");
	drop_conn();
}

/* Kill mode: the tree dies in repair mode, silently; the persistent table holds; its
 * removal (restore's) lets the kernel answer the peer again (a reset). */
static void test_killed(void)
{
	struct dump_ctx *ctx;
	struct restore_ctx rctx = { 0 };
	NetLock nl = NET_LOCK__INIT;
	char keep[128], c;

	ctx = start_case();
	if (!ctx)
		return;
	ctx->leave_running = false;
	CHECK(!net_lock_dump(ctx) && !enter_repair(), "lock: %s", err_text());
	kill(victim, SIGKILL);
	waitpid(victim, NULL, 0);
	victim = 0;
	CHECK(!net_lock_dump_finish(ctx, true), "finish: %s", err_text());
	CHECK(!table_exists("cryo_lock_"), "the owner table stayed");
	find_table("cryo_keep_", keep, sizeof(keep));
	CHECK(keep[0], "no persistent table");
	CHECK(recv(peer, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN,
	      "the peer saw its connection end: %s", strerror(errno));
	nl.table = keep;
	rctx.netlock = &nl;
	CHECK(!net_unlock_restore(&rctx), "unlock");
	CHECK(!table_exists("cryo_keep_"), "the persistent table stayed");
	CHECK(send(peer, "z", 1, MSG_DONTWAIT) == 1, "peer send");
	for (int ms = 0; ms < DEADLINE_MS; ms += 2, sleep_ms(2))
		if (recv(peer, &c, 1, MSG_DONTWAIT) < 0 && errno == ECONNRESET)
			break;
	CHECK(errno == ECONNRESET, "no reset once unlocked: %s", strerror(errno));
	drop_conn();
}

/* 1000 connections of one process, locked and unlocked (the times are printed, not
 * judged); a packet of the first and of the 500th is held back. */
static void test_many(void)
{
	static int c[999], p[999];
	struct rlimit rl = { 4096, 4096 };
	struct dump_ctx *ctx;
	char table[64];
	long t0, t1, t2;

	setrlimit(RLIMIT_NOFILE, &rl);
	extra_c = c;
	extra_p = p;
	nr_extra = 999;
	ctx = start_case();
	if (!ctx) {
		nr_extra = 0;
		return;
	}
	snprintf(table, sizeof(table), "cryo_lock_%d", victim);
	t0 = now_us();
	CHECK(!net_lock_dump(ctx), "lock: %s", err_text());
	t1 = now_us();
	CHECK(send(peer, "x", 1, MSG_DONTWAIT) == 1 && send(p[499], "x", 1, MSG_DONTWAIT) == 1,
	      "peer send");
	CHECK(wait_dropped(table, 2), "the lock of 1000 dropped less than 2 packets");
	CHECK(ask('q') == 0, "a byte reached a locked socket");
	t2 = now_us();
	CHECK(!net_lock_dump_finish(ctx, false), "unlock: %s", err_text());
	printf("1000 connections: locked in %ld us, unlocked in %ld us\n", t1 - t0,
	       now_us() - t2);
	drop_conn();
	nr_extra = 0;
}

int main(void)
{
	srand(getpid() ^ time(NULL));
	if (unshare(CLONE_NEWNET) || lo_up()) {
		printf("cannot make a network namespace: %s\n", strerror(errno));
		return 1;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGPIPE, SIG_IGN);
	test_lock_unlock();
	test_unguarded();
	test_mark_passes();
	test_kill_guardian();
	test_killed();
	test_kill_cryo();
	test_many();
	return unit_done("unit_netlock_live");
}
