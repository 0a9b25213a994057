/* Terminals: pseudo-terminal pairs held inside the tree (master /dev/ptmx, slave
 * /dev/pts/N) with the slave's termios, the window size, packet mode and the lock; the
 * controlling terminal of each session and its foreground group; and, for
 * --shell-job, the terminal of the shell the job ran in, which becomes cryo's own.
 * The bytes queued in both directions are read into the image and put back at once.
 * Dump refuses what it cannot bring back: a pty half outside the tree, /dev/tty, the
 * console and other terminals. Restore takes the same pty index (devpts gives out the
 * lowest free one), opens the slaves through the master (TIOCGPTPEER), and the session
 * leader takes the slave as its controlling terminal right after its setsid. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cryo.h"
#include "fd_kind.h"
#include "files.h"
#include "log.h"
#include "sys.h"
#include "util.h"

#define CR_TCGETS2 _IOR('T', 0x2A, struct cr_termios2)
#define CR_TCSETS2 _IOW('T', 0x2B, struct cr_termios2)
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

#define TTY_OPEN_FLAGS (O_ACCMODE | O_NONBLOCK | O_APPEND)
#define PTY_MAX_INDEX (1u << 20)	/* devpts allows at most NR_UNIX98_PTY_MAX */
#define PTMX_TRIES 4096			/* ptys held open while looking for an index */

/* ---- pure: devices and the session rule ---- */

enum tty_class tty_classify(uint32_t maj, uint32_t min, uint32_t *index)
{
	if (maj >= 136 && maj <= 143) {
		*index = (maj - 136) * 256 + min;
		return TTY_PTY_SLAVE;
	}
	if (maj == 5)
		return min == 0 ? TTY_CTTY : min == 1 ? TTY_CONSOLE :
		       min == 2 ? TTY_PTY_MASTER : TTY_NOT;
	if (maj == 4)
		return TTY_OTHER;
	return TTY_NOT;
}

void tty_decode_nr(uint32_t tty_nr, uint32_t *maj, uint32_t *min)
{
	*maj = (tty_nr >> 8) & 0xfff;
	*min = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
}

/* Each process's controlling terminal must be its session leader's (it got it from
 * the leader, by being made after the leader took it); in a session led from
 * outside, the root's. */
int tty_check_sessions(const struct tty_node *n, size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		uint32_t want = n[0].tty_nr;
		pid_t from = n[0].pid;

		for (size_t k = 0; k < nr; k++)
			if (n[k].pid == n[i].sid) {
				want = n[k].tty_nr;
				from = n[k].pid;
			}
		if (n[i].tty_nr != want)
			return cr_err("process %d: its controlling terminal (device 0x%x, 0 for "
				      "none) is not that of %s %d (0x%x); cryo cannot make that "
				      "again", n[i].pid, n[i].tty_nr,
				      from == n[i].sid ? "its session leader" : "the root", from,
				      want);
	}
	return 0;
}

/* ---- bytes in flight in a pair (dump and restore) ----
 * The reader's queue of each direction is put back (at dump, after reading it) or made
 * (at restore) by writing from the other end with the processing that already happened
 * switched off for the time of the write: output processing (OPOST) for the bytes
 * towards the master; echo, signals, erase/kill and input mapping for the bytes
 * towards the slave, canonical mode kept so that each line keeps its end. Packet mode
 * is off meanwhile (reads on the master carry no status byte, a termios change sets
 * no status), and its status is clear (the dump refuses one not read) as when it is
 * switched on again. */

#define PTY_DATA_MAX (1u << 20)		/* bytes in flight, each direction */
#define PTY_LINE_MAX 4096		/* N_TTY_BUF_SIZE: a canonical line is shorter */
#define PTY_QUEUE_WAIT_MS 2000
#define PTY_ONE_WRITE 1024		/* less than one tty buffer (TTY_BUFFER_PAGE) */

struct pty_io {
	int master, slave;		/* the slave is cryo's (TIOCGPTPEER), non-blocking */
	struct cr_termios2 tios;	/* the slave's settings, as they were */
	int packet, master_flags;
};

static bool tios_canonical(const struct cr_termios2 *t)
{
	return t->c_lflag & ICANON;
}

static bool is_cc(const struct cr_termios2 *t, int idx, uint8_t c)
{
	return t->c_cc[idx] != _POSIX_VDISABLE && t->c_cc[idx] == c;
}

static bool ends_line(const struct cr_termios2 *t, uint8_t c)
{
	return c == '\n' || is_cc(t, VEOL, c) || is_cc(t, VEOL2, c);
}

static bool is_flow_char(const struct cr_termios2 *t, uint8_t c)
{
	return (t->c_iflag & IXON) && (is_cc(t, VSTART, c) || is_cc(t, VSTOP, c));
}

/* The settings the bytes b towards the slave are written with. IXON stays as it was
 * (switching it off starts a terminal stopped by ^S) unless they hold a start/stop
 * character (typed after ^V), which it would take. */
static struct cr_termios2 tios_for_input(const struct cr_termios2 *t, const uint8_t *b,
					 size_t len)
{
	struct cr_termios2 r = *t;

	r.c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHONL | ECHOCTL | ECHOPRT | ECHOKE | ISIG |
		       IEXTEN | XCASE);
	r.c_iflag &= ~(ICRNL | INLCR | IGNCR | ISTRIP | IUCLC | PARMRK | IXANY);
	r.c_cc[VERASE] = r.c_cc[VKILL] = _POSIX_VDISABLE;
	for (size_t i = 0; i < len; i++)
		if (is_flow_char(t, b[i]))
			r.c_iflag &= ~IXON;
	return r;
}

/* One read of the slave's programs (a canonical line; in non-canonical mode, all of
 * it): would writing it back, with the end-of-file mark added to a canonical line that
 * has no end, queue it as it is? Not if a byte in it would end the line early (a line
 * end or end-of-file character typed after ^V). Pure. */
bool pty_input_faithful(const struct cr_termios2 *t, const uint8_t *b, size_t len)
{
	bool canon = tios_canonical(t);

	for (size_t i = 0; i < len; i++) {
		bool last = i + 1 == len;

		if (canon && (is_cc(t, VEOF, b[i]) || (!last && ends_line(t, b[i]))))
			return false;
	}
	return true;
}

/* What the slave's FIONREAD shows once the bytes are queued: in canonical mode, the
 * lines (what follows the last one is an unfinished line), their end-of-file marks not
 * counted. Pure. */
size_t pty_input_visible(const struct cr_termios2 *t, const uint8_t *b, size_t len)
{
	size_t n = 0, seen = 0;

	if (!tios_canonical(t))
		return len;
	for (size_t i = 0; i < len; i++) {
		bool eof = is_cc(t, VEOF, b[i]);

		seen += !eof;
		if (eof || ends_line(t, b[i]))
			n = seen;
	}
	return n;
}

static int set_tios(int master, const struct cr_termios2 *t)
{
	return ioctl(master, CR_TCSETS2, t);
}

/* Until fd's reader queue holds want bytes: the kernel's buffer work moves written
 * bytes into it shortly after the write. */
static int wait_queued(int fd, size_t want)
{
	struct timespec pause_ts = { 0, 1000000 };
	int n = 0;

	for (int i = 0; i < PTY_QUEUE_WAIT_MS; i++) {
		if (ioctl(fd, FIONREAD, &n))
			return -1;
		if ((size_t)n == want)
			return 0;
		nanosleep(&pause_ts, NULL);
	}
	errno = ETIMEDOUT;
	return -1;
}

static int write_all(int fd, const uint8_t *b, size_t len)
{
	while (len) {
		struct pollfd pfd = { fd, POLLOUT, 0 };
		ssize_t n;

		int ready = poll(&pfd, 1, PTY_QUEUE_WAIT_MS);

		if (ready < 0 && errno == EINTR)
			continue;
		if (ready != 1) {
			errno = ready ? errno : ETIMEDOUT;
			return -1;
		}
		n = write(fd, b, len);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (n > 0) {
			b += n;
			len -= n;
		}
	}
	return 0;
}

static int pty_io_begin(struct pty_io *io, int master)
{
	int off = 0;

	*io = (struct pty_io){ master, -1, { 0 }, 0, -1 };
	if (ioctl(master, CR_TCGETS2, &io->tios) || ioctl(master, TIOCGPKT, &io->packet))
		return -1;
	io->master_flags = fcntl(master, F_GETFL);
	if (io->master_flags < 0 ||
	    fcntl(master, F_SETFL, io->master_flags | O_NONBLOCK))
		return -1;
	if (io->packet && ioctl(master, TIOCPKT, &off))
		return -1;
	io->slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	return io->slave < 0 ? -1 : 0;
}

/* Everything as it was; -1 if some of it could not be. */
static int pty_io_end(struct pty_io *io)
{
	int rc = 0;

	if (io->slave >= 0)
		close(io->slave);
	if (io->packet && ioctl(io->master, TIOCPKT, &io->packet))
		rc = -1;
	if (io->master_flags >= 0 && fcntl(io->master, F_SETFL, io->master_flags))
		rc = -1;
	return rc;
}

/* Bytes towards the master: written on the slave with OPOST off. */
static int put_to_master(struct pty_io *io, const ProtobufCBinaryData *b)
{
	struct cr_termios2 raw = io->tios;
	int rc;

	if (!b->len)
		return 0;
	raw.c_oflag &= ~OPOST;
	if (set_tios(io->master, &raw))
		return -1;
	rc = write_all(io->slave, b->data, b->len) || wait_queued(io->master, b->len);
	if (set_tios(io->master, &io->tios))
		rc = -1;
	return rc ? -1 : 0;
}

/* Bytes towards the slave: written on the master, already processed. */
static int put_to_slave(struct pty_io *io, const ProtobufCBinaryData *b)
{
	struct cr_termios2 raw = tios_for_input(&io->tios, b->data, b->len);
	int rc;

	if (!b->len)
		return 0;
	if (set_tios(io->master, &raw))
		return -1;
	rc = write_all(io->master, b->data, b->len) ||
	     wait_queued(io->slave, pty_input_visible(&io->tios, b->data, b->len));
	if (set_tios(io->master, &io->tios))
		rc = -1;
	return rc ? -1 : 0;
}

/* ---- dump ---- */

static bool tty_match(const struct fd_probe *pr)
{
	uint32_t idx;

	return S_ISCHR(pr->st->st_mode) &&
	       tty_classify(major(pr->st->st_rdev), minor(pr->st->st_rdev), &idx) != TTY_NOT;
}

/* The terminal the shell ran the job in: the root's, its session led from outside. */
static bool is_shell_tty(const struct dump_ctx *ctx, dev_t rdev)
{
	const struct proc_stat *root = &ctx->procs[0]->stat;
	uint32_t maj, min;

	if (root->sid == root->pid || !root->tty_nr)
		return false;
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (ctx->procs[i]->pid == root->sid)
			return false;
	tty_decode_nr(root->tty_nr, &maj, &min);
	return major(rdev) == maj && minor(rdev) == min;
}

static int get_bytes(int fd, unsigned long req, size_t len, ProtobufCBinaryData *out,
		     protobuf_c_boolean *has)
{
	void *buf = calloc(1, len);

	if (!buf)
		return cr_err("out of memory");
	if (ioctl(fd, req, buf)) {
		free(buf);
		return -1;
	}
	out->data = buf;
	out->len = len;
	*has = 1;
	return 0;
}

static int read_termios(int fd, ProtobufCBinaryData *out, protobuf_c_boolean *has)
{
	if (out->data)
		return 0;
	return get_bytes(fd, CR_TCGETS2, sizeof(struct cr_termios2), out, has);
}

/* A master: its index, mode, lock and settings (the bytes queued are read once its
 * slave is known, tty_dump_tree). */
static int dump_master(const struct fd_probe *pr, TtyFile *tf, int fd)
{
	struct pollfd pfd = { fd, POLLPRI, 0 };
	int idx, pkt = 0, lck = 0;

	if (ioctl(fd, TIOCGPTN, &idx) || ioctl(fd, TIOCGPKT, &pkt) ||
	    ioctl(fd, TIOCGPTLCK, &lck))
		return cr_perr("process %d: cannot read the state of the pty master fd %d",
			       pr->p->pid, pr->fd);
	tf->index = idx;
	tf->has_packet = tf->has_locked = 1;
	tf->packet = !!pkt;
	tf->locked = !!lck;
	if (pkt && poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLPRI))
		return cr_err("process %d: fd %d, the master of /dev/pts/%d in packet mode, has "
			      "a status change not read yet; cryo cannot copy it", pr->p->pid,
			      pr->fd, idx);
	/* The slave's settings: termios ioctls on a master act on its slave. */
	if (read_termios(fd, &tf->termios, &tf->has_termios) ||
	    get_bytes(fd, TIOCGWINSZ, sizeof(struct winsize), &tf->winsize, &tf->has_winsize))
		return cr_perr("process %d: cannot read the settings of the pty master fd %d",
			       pr->p->pid, pr->fd);
	return 0;
}

static int refuse_other(const struct fd_probe *pr, enum tty_class c)
{
	pid_t pid = pr->p->pid;

	if (c == TTY_CTTY)
		return cr_err("process %d: fd %d is /dev/tty (its controlling terminal by that "
			      "name); cryo cannot restore it", pid, pr->fd);
	if (c == TTY_CONSOLE)
		return cr_err("process %d: fd %d is the console (%s); cryo cannot restore it",
			      pid, pr->fd, pr->link);
	return cr_err("process %d: fd %d is the terminal %s, which is neither a pseudo-terminal "
		      "whose master is in the image nor (with --shell-job) the shell's; cryo "
		      "cannot restore it", pid, pr->fd, pr->link);
}

static int tty_dump(const struct fd_probe *pr, FileEntry *e)
{
	struct dump_ctx *ctx = pr->p->ctx;
	TtyFile *tf = calloc(1, sizeof(*tf));
	uint32_t idx = 0;
	enum tty_class c = tty_classify(major(pr->st->st_rdev), minor(pr->st->st_rdev), &idx);
	bool shell = ctx->shell_job && is_shell_tty(ctx, pr->st->st_rdev);
	int fd, rc = 0;

	if (!tf)
		return cr_err("out of memory");
	tty_file__init(tf);
	e->tty = tf;
	e->kind = FILE_KIND__FILE_TTY;
	e->flags = pr->fi->flags & TTY_OPEN_FLAGS;
	if (!shell && c != TTY_PTY_MASTER && c != TTY_PTY_SLAVE)
		return refuse_other(pr, c);
	tf->path = strdup(pr->link);
	if (!tf->path)
		return cr_err("out of memory");
	tf->index = idx;
	tf->master = c == TTY_PTY_MASTER;
	tf->has_shell = tf->shell = shell;
	if (!shell && !tf->master)
		return 0;	/* the pair is checked once every fd is known */
	fd = file_fd_dup(pr->p->pid, pr->fd);
	if (fd < 0)
		return -1;
	if (shell && read_termios(fd, &tf->termios, &tf->has_termios))
		rc = cr_perr("process %d: cannot read the settings of terminal fd %d",
			     pr->p->pid, pr->fd);
	else if (!shell)
		rc = dump_master(pr, tf, fd);
	close(fd);
	return rc;
}

static void tty_free(FileEntry *e)
{
	if (!e->tty)
		return;
	free(e->tty->path);
	free(e->tty->termios.data);
	free(e->tty->winsize.data);
	free(e->tty->to_master.data);
	free(e->tty->to_slave.data);
	free(e->tty);
}

/* ---- dump: the pairs and sessions, once every fd of the tree is known ---- */

static ssize_t entry_of(const struct file_table *ft, uint32_t index, bool master, size_t from)
{
	for (size_t i = from; i < ft->nr; i++) {
		const TtyFile *tf = ft->files[i]->tty;

		if (tf && !tf->shell && tf->index == index && tf->master == master)
			return i;
	}
	return -1;
}

/* One fd of a process outside the tree: a pty of the image? */
static int held_outside(pid_t pid, int fds, const char *fd_name, void *arg)
{
	const struct dump_ctx *ctx = arg;
	const struct file_table *ft = &ctx->files;
	char path[300], *txt, *at;
	struct stat st;
	uint32_t idx;
	size_t len;
	enum tty_class c;

	if (fstatat(fds, fd_name, &st, 0) || !S_ISCHR(st.st_mode))
		return 0;
	c = tty_classify(major(st.st_rdev), minor(st.st_rdev), &idx);
	if (c == TTY_PTY_MASTER) {
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", pid, fd_name);
		txt = proc_read_file(path, &len);
		cr_err_reset();
		at = txt ? strstr(txt, "tty-index:") : NULL;
		c = at && sscanf(at, "tty-index: %u", &idx) == 1 ? TTY_PTY_SLAVE : TTY_NOT;
		free(txt);
	}
	if (c != TTY_PTY_SLAVE || entry_of(ft, idx, true, 0) < 0)
		return 0;
	return cr_err("/dev/pts/%u, a pseudo-terminal of the image, is also open in process %d "
		      "(fd %s) outside the image; cryo cannot restore it", idx, pid, fd_name);
}

static int check_outside(const struct dump_ctx *ctx)
{
	return file_scan_outside(ctx, held_outside, (void *)ctx);
}

/* A locked pair (cryo cannot open its slave) or one without a slave: nothing may be
 * queued in it (s: its slave's entry, or -1). */
static int check_locked_pair(struct dump_ctx *ctx, TtyFile *m, size_t mi, ssize_t s)
{
	const struct file_key *k = &ctx->files.keys[mi];
	int fd = file_fd_dup(k->pid, k->fd), queued = 0, rc = 0;

	if (fd < 0)
		return -1;
	if (ioctl(fd, FIONREAD, &queued))
		rc = cr_perr("process %d: cannot read the queue of the pty master fd %d", k->pid,
			     k->fd);
	else if (queued)
		rc = cr_err("process %d: fd %d, the master of the locked /dev/pts/%u, has %d "
			    "bytes written by the terminal's programs and not read yet; cryo "
			    "cannot copy them", k->pid, k->fd, m->index, queued);
	close(fd);
	if (rc || s < 0)
		return rc;
	k = &ctx->files.keys[s];
	fd = file_fd_dup(k->pid, k->fd);
	if (fd < 0)
		return -1;
	if (ioctl(fd, FIONREAD, &queued))
		rc = cr_perr("process %d: cannot read the queue of /dev/pts/%u (fd %d)", k->pid,
			     m->index, k->fd);
	else if (queued)
		rc = cr_err("process %d: fd %d, the locked /dev/pts/%u, has %d bytes of input "
			    "its programs have not read; cryo cannot copy them", k->pid, k->fd,
			    m->index, queued);
	close(fd);
	return rc;
}

/* The queue fd reads (non-blocking) into a buffer of cap bytes; its length in *len.
 * t: the settings the bytes were input-processed with (NULL for the master's queue).
 * In canonical mode one read is one line: each gets the end-of-file character if it
 * had no line end (it was ended by ^D), and *faithful says whether all can be put
 * back as they were. */
static int read_queue(int fd, const struct cr_termios2 *t, bool lines, uint8_t *buf,
		      size_t cap, size_t *len, bool *faithful)
{
	*len = 0;
	while (*len + PTY_LINE_MAX + 1 <= cap) {
		uint8_t *at = buf + *len;
		ssize_t n = read(fd, at, PTY_LINE_MAX);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if (!n && !lines)
			return 0;
		*faithful &= !t || pty_input_faithful(t, at, n);
		*len += n;
		if (lines && (!n || !ends_line(t, at[n - 1]))) {
			*faithful &= t->c_cc[VEOF] != _POSIX_VDISABLE;
			buf[(*len)++] = t->c_cc[VEOF];
		}
	}
	*faithful = false;	/* more than the image keeps */
	return 0;
}

/* A canonical reader's unfinished line shows only with canonical mode off: switched
 * off for the read (the complete lines are read already), then on again on an empty
 * queue, as it was. */
static int read_partial(struct pty_io *io, uint8_t *buf, size_t cap, size_t *len,
			bool *faithful)
{
	struct cr_termios2 raw = io->tios;
	int rc;

	raw.c_lflag &= ~ICANON;
	if (set_tios(io->master, &raw))
		return -1;
	rc = read_queue(io->slave, NULL, false, buf, cap, len, faithful);
	if (set_tios(io->master, &io->tios))
		rc = -1;
	if (*len)
		*faithful &= pty_input_faithful(&io->tios, buf, *len) &&
			     !ends_line(&io->tios, buf[*len - 1]);
	return rc;
}

static int keep_bytes(ProtobufCBinaryData *out, protobuf_c_boolean *has, const uint8_t *b,
		      size_t len)
{
	if (!len)
		return 0;
	out->data = malloc(len);
	if (!out->data)
		return cr_err("out of memory");
	memcpy(out->data, b, len);
	out->len = len;
	*has = 1;
	return 0;
}

/* Both queues read into the image and put back; the tree is frozen, nothing else
 * reads or writes the pair meanwhile. */
static int take_and_put_back(const struct file_key *k, TtyFile *m, int master, uint8_t *buf)
{
	struct pty_io io;
	size_t out_len = 0, in_len = 0, part_len = 0;
	bool out_ok = true, in_ok = true;
	int rc = 0;

	/* What was read is kept (and put back) even if a later read fails. */
	if (pty_io_begin(&io, master))
		rc = -1;
	if (!rc) {
		rc = read_queue(master, NULL, false, buf, PTY_DATA_MAX, &out_len, &out_ok);
		rc |= keep_bytes(&m->to_master, &m->has_to_master, buf, out_len);
	}
	if (!rc) {
		bool canon = tios_canonical(&io.tios);

		rc = read_queue(io.slave, &io.tios, canon, buf, PTY_DATA_MAX, &in_len, &in_ok);
		if (!rc && canon)
			rc = read_partial(&io, buf + in_len, PTY_DATA_MAX - in_len, &part_len,
					  &in_ok);
		rc |= keep_bytes(&m->to_slave, &m->has_to_slave, buf, in_len + part_len);
	}
	if (rc)
		rc = cr_perr("process %d: cannot read the bytes queued in /dev/pts/%u (master "
			     "fd %d)", k->pid, m->index, k->fd);
	if (put_to_master(&io, &m->to_master) || put_to_slave(&io, &m->to_slave) ||
	    pty_io_end(&io))
		return cr_perr("process %d: cannot put back the bytes queued in /dev/pts/%u "
			       "(master fd %d): its programs may have lost some", k->pid,
			       m->index, k->fd);
	if (!rc && part_len && in_len + part_len > PTY_ONE_WRITE)
		rc = cr_err("process %d: /dev/pts/%u (master fd %d) has an unfinished line "
			    "after %zu bytes of lines queued; cryo keeps one only when all fit "
			    "in %u bytes", k->pid, m->index, k->fd, in_len, PTY_ONE_WRITE);
	if (!rc && !out_ok)
		rc = cr_err("process %d: fd %d, the master of /dev/pts/%u, has more than %u "
			    "bytes queued; cryo cannot keep them", k->pid, k->fd, m->index,
			    PTY_DATA_MAX);
	if (!rc && !in_ok)
		rc = cr_err("process %d: /dev/pts/%u (master fd %d) has input queued that "
			    "cryo cannot put back as it is (more than %u bytes, or a line end "
			    "or end-of-file character typed after ^V inside a line)", k->pid,
			    m->index, k->fd, PTY_DATA_MAX);
	return rc;
}

/* The bytes in flight in a pair whose slave is open in the tree. Nothing is touched
 * when both queues are empty and the reader is not canonical (whose unfinished line
 * does not show until it is looked for). */
static int dump_pair_data(struct dump_ctx *ctx, TtyFile *m, size_t mi)
{
	const struct file_key *k = &ctx->files.keys[mi];
	int master = file_fd_dup(k->pid, k->fd), peer = -1, out = 0, in = 0, rc = 0;
	struct cr_termios2 t;
	uint8_t *buf = NULL;

	if (master < 0)
		return -1;
	peer = ioctl(master, TIOCGPTPEER, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (peer < 0 || ioctl(master, FIONREAD, &out) || ioctl(peer, FIONREAD, &in) ||
	    ioctl(master, CR_TCGETS2, &t))
		rc = cr_perr("process %d: cannot read the queues of /dev/pts/%u (master fd %d)",
			     k->pid, m->index, k->fd);
	else if (in && (t.c_lflag & EXTPROC))
		rc = cr_err("process %d: /dev/pts/%u (master fd %d) has %d bytes of input "
			    "queued in external processing mode (EXTPROC); cryo cannot copy "
			    "them", k->pid, m->index, k->fd, in);
	else if ((unsigned)out > PTY_DATA_MAX || (unsigned)in > PTY_DATA_MAX)
		rc = cr_err("process %d: /dev/pts/%u (master fd %d) has %d bytes queued "
			    "towards the master and %d towards its programs; cryo keeps %u at "
			    "most", k->pid, m->index, k->fd, out, in, PTY_DATA_MAX);
	else if (out || in || tios_canonical(&t)) {
		buf = malloc(PTY_DATA_MAX);
		rc = buf ? take_and_put_back(k, m, master, buf) : cr_err("out of memory");
	}
	free(buf);
	if (peer >= 0)
		close(peer);
	close(master);
	return rc;
}


static int check_pairs(struct dump_ctx *ctx)
{
	struct file_table *ft = &ctx->files;

	for (size_t i = 0; i < ft->nr; i++) {
		TtyFile *tf = ft->files[i]->tty;
		const struct file_key *k = &ft->keys[i];
		ssize_t s;

		if (!tf || tf->shell)
			continue;
		if (!tf->master && entry_of(ft, tf->index, true, 0) < 0)
			return cr_err("process %d: fd %d is %s, whose master is not open in the "
				      "image; cryo cannot restore it", k->pid, k->fd, tf->path);
		if (!tf->master)
			continue;
		if (entry_of(ft, tf->index, true, i + 1) >= 0)
			return cr_err("/dev/pts/%u has two masters in the image", tf->index);
		s = entry_of(ft, tf->index, false, 0);
		if (s < 0 && !tf->locked)
			return cr_err("process %d: fd %d is the master of /dev/pts/%u, whose slave "
				      "is open nowhere in the image (it was closed); cryo cannot "
				      "make that again", k->pid, k->fd, tf->index);
		if (s < 0 || tf->locked ? check_locked_pair(ctx, tf, i, s) :
					  dump_pair_data(ctx, tf, i))
			return -1;
	}
	return 0;
}

static bool group_in_session(const struct dump_ctx *ctx, pid_t pgrp, pid_t sid)
{
	for (size_t i = 0; i < ctx->nr_procs; i++)
		if (!ctx->procs[i]->zombie && ctx->procs[i]->stat.pgid == pgrp &&
		    ctx->procs[i]->stat.sid == sid)
			return true;
	return false;
}

/* A session leader's controlling terminal: a pty of the image, with its foreground. */
static int record_ctty(struct dump_proc *p)
{
	const struct proc_stat *st = &p->stat;
	uint32_t maj, min, idx = 0;

	tty_decode_nr(st->tty_nr, &maj, &min);
	if (tty_classify(maj, min, &idx) != TTY_PTY_SLAVE ||
	    entry_of(&p->ctx->files, idx, false, 0) < 0)
		return cr_err("process %d leads a session whose controlling terminal (device "
			      "%u:%u) is not a pseudo-terminal open in the image; cryo cannot "
			      "restore it", p->pid, maj, min);
	if (p->core.shares_files)
		return cr_err("process %d leads a session with a controlling terminal and shares "
			      "its fd table with its parent; cryo cannot restore that", p->pid);
	if (!group_in_session(p->ctx, st->tpgid, p->pid))
		return cr_err("process %d: the foreground group %d of its terminal /dev/pts/%u "
			      "is not in the image; cryo cannot restore it", p->pid, st->tpgid,
			      idx);
	controlling_tty__init(&p->ctty);
	p->ctty.index = idx;
	p->ctty.fg_pgrp = st->tpgid;
	p->core.ctty = &p->ctty;
	return 0;
}

static int check_sessions(struct dump_ctx *ctx)
{
	struct tty_node *n = calloc(ctx->nr_procs, sizeof(*n));
	struct dump_proc *root = ctx->procs[0];
	size_t nr = 0;
	int rc;

	if (!n)
		return cr_err("out of memory");
	for (size_t i = 0; i < ctx->nr_procs; i++) {
		const struct proc_stat *st = &ctx->procs[i]->stat;

		if (!ctx->procs[i]->zombie)
			n[nr++] = (struct tty_node){ st->pid, st->sid, st->tty_nr };
	}
	rc = tty_check_sessions(n, nr);
	free(n);
	for (size_t i = 0; i < ctx->nr_procs && !rc; i++) {
		struct dump_proc *p = ctx->procs[i];

		if (!p->zombie && p->stat.sid == p->pid && p->stat.tty_nr)
			rc = record_ctty(p);
	}
	if (!rc && ctx->shell_job && root->stat.sid != root->pid && root->stat.tty_nr &&
	    root->stat.tpgid == root->stat.pgid)
		root->core.has_shell_foreground = root->core.shell_foreground = 1;
	return rc;
}

int tty_dump_tree(struct dump_ctx *ctx)
{
	bool any = false;

	for (size_t i = 0; i < ctx->files.nr && !any; i++)
		any = ctx->files.files[i]->tty && !ctx->files.files[i]->tty->shell;
	/* Outside holders first: the pairs' queues are read only when none is. */
	if (any && (check_outside(ctx) || check_pairs(ctx)))
		return -1;
	return check_sessions(ctx);
}

/* ---- restore ---- */

static int tty_check(const FileEntry *e)
{
	const TtyFile *tf = e->tty;

	if (!tf || tf->index >= PTY_MAX_INDEX)
		return cr_err("image: terminal file %u is invalid", e->id);
	if ((tf->has_termios && tf->termios.len != sizeof(struct cr_termios2)) ||
	    (tf->has_winsize && tf->winsize.len != sizeof(struct winsize)))
		return cr_err("image: terminal file %u has settings of the wrong size", e->id);
	if ((tf->has_to_master || tf->has_to_slave) && (!tf->master || tf->shell))
		return cr_err("image: terminal file %u has queued bytes but is no pty master",
			      e->id);
	if (tf->to_master.len > PTY_DATA_MAX || tf->to_slave.len > PTY_DATA_MAX)
		return cr_err("image: terminal file %u has more than %u bytes queued", e->id,
			      PTY_DATA_MAX);
	if (tf->master && !tf->shell &&
	    (!tf->path || (strcmp(tf->path, "/dev/ptmx") && strcmp(tf->path, "/dev/pts/ptmx"))))
		return cr_err("image: terminal file %u is a pty master with a wrong path", e->id);
	if (e->flags & ~TTY_OPEN_FLAGS)
		return cr_err("image: terminal file %u has invalid flags 0x%x", e->id, e->flags);
	return 0;
}

/* One pty pair of the image, made once in cryo. */
struct tty_pair {
	uint32_t index;
	int master;		/* cryo's; the task's is a copy */
	bool locked, master_given;
};

struct tty_state {
	struct tty_pair *p;
	size_t nr, cap;
	bool shell_set;		/* the shell's terminal has its termios */
};

static struct tty_state *state_of(struct restore_ctx *ctx)
{
	if (!ctx->ttys)
		ctx->ttys = calloc(1, sizeof(struct tty_state));
	if (!ctx->ttys)
		cr_err("out of memory");
	return ctx->ttys;
}

/* The master of /dev/pts/index: devpts gives out the lowest free index, so the ones
 * below it are held until it comes. One above it means the index is taken: 1, to
 * wait (the dumped pair is freed by a kernel worker after its last close). */
static int try_ptmx_at(const char *path, uint32_t index, int flags, int *out)
{
	int *held = NULL, fd = -1, got = -1, rc = -1;
	size_t nr = 0, cap = 0;

	while (nr < PTMX_TRIES) {
		fd = open(path, flags | O_NOCTTY | O_CLOEXEC);
		if (fd < 0 || ioctl(fd, TIOCGPTN, &got)) {
			cr_perr("cannot open %s to make /dev/pts/%u again", path, index);
			break;
		}
		if ((uint32_t)got >= index || cr_grow(&held, &cap, nr + 1, sizeof(int), 64)) {
			rc = (uint32_t)got == index ? 0 : (uint32_t)got > index ? 1 : -1;
			break;
		}
		held[nr++] = fd;
		fd = -1;
	}
	if (nr == PTMX_TRIES)
		cr_err("cannot make /dev/pts/%u again: %d ptys below it are in use", index,
		       PTMX_TRIES);
	for (size_t i = 0; i < nr; i++)
		close(held[i]);
	free(held);
	if (rc && fd >= 0)
		close(fd);
	*out = rc ? -1 : fd;
	return rc;
}

#define PTY_FREE_WAIT_MS 2000

static int open_ptmx_at(const char *path, uint32_t index, int flags)
{
	struct timespec pause_ts = { 0, 2000000 };
	int fd;

	for (int waited = 0; waited < PTY_FREE_WAIT_MS / 2; waited++) {
		int rc = try_ptmx_at(path, index, flags, &fd);

		if (rc <= 0)
			return rc ? -1 : fd;
		nanosleep(&pause_ts, NULL);
	}
	return cr_err("cannot make /dev/pts/%u again: it is in use", index);
}

static int set_bytes(int fd, unsigned long req, const ProtobufCBinaryData *b, bool has)
{
	return has ? ioctl(fd, req, b->data) : 0;
}

/* The bytes that were in flight, before any task has the pair. */
static int put_back_queues(int master, const TtyFile *tf)
{
	struct pty_io io;
	int rc;

	if (!tf->has_to_master && !tf->has_to_slave)
		return 0;
	rc = pty_io_begin(&io, master) || put_to_master(&io, &tf->to_master) ||
	     put_to_slave(&io, &tf->to_slave);
	if (pty_io_end(&io))
		rc = -1;
	return rc ? -1 : 0;
}

/* Unlocked while cryo opens its slaves; locked again, if it was, once all are open.
 * The settings go through the master (they are the slave's), then the bytes in
 * flight; packet mode last, as the settings before it would set a status change. */
static int set_up_pair(struct tty_pair *pr, const TtyFile *tf)
{
	int unlock = 0, on = 1;

	if (ioctl(pr->master, TIOCSPTLCK, &unlock))
		return cr_perr("cannot unlock /dev/pts/%u", tf->index);
	if (set_bytes(pr->master, CR_TCSETS2, &tf->termios, tf->has_termios) ||
	    set_bytes(pr->master, TIOCSWINSZ, &tf->winsize, tf->has_winsize) ||
	    put_back_queues(pr->master, tf) || (tf->packet && ioctl(pr->master, TIOCPKT, &on)))
		return cr_perr("cannot give /dev/pts/%u its settings", tf->index);
	return 0;
}

static const FileEntry *master_entry(const FileTable *ft, uint32_t index)
{
	for (size_t i = 0; i < ft->n_files; i++) {
		const TtyFile *tf = ft->files[i]->tty;

		if (ft->files[i]->kind == FILE_KIND__FILE_TTY && tf && !tf->shell && tf->master &&
		    tf->index == index)
			return ft->files[i];
	}
	return NULL;
}

static struct tty_pair *pair_of(struct restore_ctx *ctx, uint32_t index)
{
	struct tty_state *s = state_of(ctx);
	const FileEntry *m = master_entry(ctx->files, index);
	struct tty_pair *pr;

	if (!s)
		return NULL;
	for (size_t i = 0; i < s->nr; i++)
		if (s->p[i].index == index)
			return &s->p[i];
	if (!m) {
		cr_err("image: /dev/pts/%u has no master in the image", index);
		return NULL;
	}
	if (cr_grow(&s->p, &s->cap, s->nr + 1, sizeof(*s->p), 8))
		return NULL;
	pr = &s->p[s->nr];
	*pr = (struct tty_pair){ index, -1, m->tty->locked, false };
	pr->master = open_ptmx_at(m->tty->path, index, m->flags & TTY_OPEN_FLAGS);
	if (pr->master < 0)
		return NULL;
	s->nr++;
	return set_up_pair(pr, m->tty) ? NULL : pr;
}

/* cryo's terminal (its stdin), a new open file of it, with the job's settings. */
static int open_shell_tty(struct restore_ctx *ctx, const FileEntry *e)
{
	struct tty_state *s = state_of(ctx);
	sigset_t ttou, old;
	int fd, rc = 0;

	if (!s)
		return -1;
	if (!ctx->shell_job)
		return cr_err("image: file %u is the terminal of the shell the job ran in; "
			      "restore it with --shell-job", e->id);
	if (!isatty(0))
		return cr_err("cannot restore the job's terminal: cryo's stdin is not a "
			      "terminal");
	fd = open("/proc/self/fd/0", (e->flags & TTY_OPEN_FLAGS) | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return cr_perr("cannot open cryo's terminal again");
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	if (!s->shell_set && set_bytes(fd, CR_TCSETS2, &e->tty->termios, e->tty->has_termios))
		rc = cr_perr("cannot give cryo's terminal the job's settings");
	sigprocmask(SIG_SETMASK, &old, NULL);
	s->shell_set = true;
	if (rc) {
		close(fd);
		return -1;
	}
	return fd;
}

static int tty_open(struct restore_ctx *ctx, const FileEntry *e)
{
	struct tty_pair *pr;
	int fd;

	if (e->tty->shell)
		return open_shell_tty(ctx, e);
	pr = pair_of(ctx, e->tty->index);
	if (!pr)
		return -1;
	if (e->tty->master) {
		if (pr->master_given)
			return cr_err("image: /dev/pts/%u has two masters", e->tty->index);
		pr->master_given = true;
		fd = fcntl(pr->master, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? cr_perr("cannot copy the master of /dev/pts/%u", pr->index) : fd;
	}
	fd = ioctl(pr->master, TIOCGPTPEER, (e->flags & TTY_OPEN_FLAGS) | O_NOCTTY | O_CLOEXEC);
	return fd < 0 ? cr_perr("cannot open /dev/pts/%u again", pr->index) : fd;
}

static void tty_open_done(struct restore_ctx *ctx)
{
	struct tty_state *s = ctx->ttys;
	int lock = 1;

	for (size_t i = 0; s && i < s->nr; i++) {
		if (s->p[i].locked)
			ioctl(s->p[i].master, TIOCSPTLCK, &lock);
		close(s->p[i].master);
	}
	if (s)
		free(s->p);
	free(s);
	ctx->ttys = NULL;
}

/* cryo's fd of a slave of the pty, which the task inherited. */
static int slave_fd(struct restore_proc *rp, uint32_t index)
{
	const FileTable *ft = rp->ctx->files;

	for (size_t i = 0; i < ft->n_files; i++) {
		const TtyFile *tf = ft->files[i]->tty;

		if (ft->files[i]->kind == FILE_KIND__FILE_TTY && tf && !tf->shell &&
		    !tf->master && tf->index == index && rp->ctx->file_fds[i] >= 0)
			return rp->ctx->file_fds[i];
	}
	return cr_err("image: process %d's controlling terminal /dev/pts/%u is not open in "
		      "the image", rp->pid, index);
}

int tty_plan_ctty(struct restore_proc *rp, struct plan *p)
{
	const ControllingTty *ct = rp->core->ctty;
	int fd;

	if (!ct)
		return 0;
	if (rp->pe->sid != rp->pe->pid || rp->core->shares_files)
		return cr_err("image: process %d has a controlling terminal but leads no "
			      "session of its own", rp->pid);
	fd = slave_fd(rp, ct->index);
	if (fd < 0)
		return -1;
	plan_call(p, "taking its controlling terminal", 0, __NR_ioctl, fd, TIOCSCTTY, 0, 0, 0, 0);
	return 0;
}

int tty_plan_foreground(struct restore_proc *rp, struct plan *p)
{
	const ControllingTty *ct = rp->core->ctty;
	struct restore_ctx *ctx = rp->ctx;
	bool found = false;
	int32_t pgrp;
	int fd;

	if (!ct)
		return 0;
	for (size_t i = 0; i < ctx->nr_procs && !found; i++)
		found = ctx->procs[i]->pe->pgid == ct->fg_pgrp &&
			ctx->procs[i]->pe->sid == (uint32_t)rp->pid;
	if (!found)
		return cr_err("image: the foreground group %u of process %d's terminal is not "
			      "in its session", ct->fg_pgrp, rp->pid);
	fd = slave_fd(rp, ct->index);
	if (fd < 0)
		return -1;
	pgrp = ct->fg_pgrp;
	plan_call(p, "setting its terminal's foreground group", 0, __NR_ioctl, fd, TIOCSPGRP,
		  plan_data(p, &pgrp, sizeof(pgrp)), 0, 0, 0);
	return 0;
}

/* --shell-job: the restored job in the foreground of cryo's terminal, as it was in the
 * shell's; the terminal goes back to cryo's group when it ends. */
static bool gave_foreground;

static void set_foreground(pid_t pgrp)
{
	sigset_t ttou, old;

	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	if (tcsetpgrp(0, pgrp))
		pr_warn("cannot make group %d the foreground of cryo's terminal: %s", pgrp,
			strerror(errno));
	sigprocmask(SIG_SETMASK, &old, NULL);
}

void tty_shell_foreground(struct restore_ctx *ctx)
{
	const struct restore_proc *root = ctx->procs[0];
	bool own_group = false;

	if (!ctx->shell_job || !root->core->shell_foreground || !isatty(0))
		return;
	for (size_t i = 0; i < ctx->nr_procs; i++)
		own_group |= ctx->procs[i]->pe->pid == root->pe->pgid;
	if (!own_group)
		return;		/* it stays in cryo's group, already in front */
	set_foreground(root->pe->pgid);
	gave_foreground = true;
}

void tty_shell_take_back(void)
{
	if (gave_foreground)
		set_foreground(getpgrp());
	gave_foreground = false;
}

static bool tty_handles(FileKind k)
{
	return k == FILE_KIND__FILE_TTY;
}

const struct fd_kind tty_kind = {
	.name = "a terminal",
	.handles = tty_handles,
	.match = tty_match,
	.dump = tty_dump,
	.check = tty_check,
	.open = tty_open,
	.open_done = tty_open_done,
	.free = tty_free,
};
