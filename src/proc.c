/* Parsers for /proc/PID text files. Every parser works on (buffer, length), never
 * reads past the end, and rejects malformed input with an error naming the line. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "sys.h"
#include "util.h"

static const char *const vmf_names[VMF_NR_BITS] = {
	"rd", "wr", "ex", "sh", "mr", "mw", "me", "ms",
	"gd", "pf", "lo", "io", "sr", "rr", "dc", "de",
	"lf", "ac", "nr", "ht", "sf", "ar", "wf", "dd",
	"bt", "sd", "mm", "hg", "nh", "mg", "um", "uw",
	"mt", "ui", "ss", "dp", "sl", "gu",
};

const char *vmf_name(int bit)
{
	if (bit < 0 || bit >= VMF_NR_BITS)
		return NULL;
	return vmf_names[bit];
}

/* A cursor over a length-delimited buffer. */
struct cursor {
	const char *p, *end;
};

static bool next_line(struct cursor *c, const char **line, size_t *len)
{
	const char *nl;

	if (c->p >= c->end)
		return false;
	nl = memchr(c->p, '\n', c->end - c->p);
	*line = c->p;
	*len = (nl ? nl : c->end) - c->p;
	c->p = nl ? nl + 1 : c->end;
	return true;
}

static void skip_spaces(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Parse an unsigned number in the given base (8, 10 or 16); at least one digit. */
static int parse_uint(struct cursor *c, int base, uint64_t *out)
{
	uint64_t v = 0;
	int digits = 0;

	while (c->p < c->end) {
		int d = hexval(*c->p);

		if (d < 0 || d >= base)
			break;
		if (v > (UINT64_MAX - d) / base)
			return -1;
		v = v * base + d;
		c->p++;
		digits++;
	}
	if (!digits)
		return -1;
	*out = v;
	return 0;
}

static int parse_int(struct cursor *c, int64_t *out)
{
	uint64_t v;
	bool neg = false;

	if (c->p < c->end && *c->p == '-') {
		neg = true;
		c->p++;
	}
	if (parse_uint(c, 10, &v) || v > (uint64_t)INT64_MAX)
		return -1;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

static int expect(struct cursor *c, char ch)
{
	if (c->p >= c->end || *c->p != ch)
		return -1;
	c->p++;
	return 0;
}

static int vmas_push(struct proc_vmas *v, struct proc_vma **slot)
{
	if (cr_grow(&v->v, &v->cap, v->nr + 1, sizeof(*v->v), 64))
		return -1;
	*slot = &v->v[v->nr++];
	memset(*slot, 0, sizeof(**slot));
	return 0;
}

/* "start-end perms offset major:minor inode   path" */
static int parse_maps_line(const char *line, size_t len, struct proc_vma *vma)
{
	struct cursor c = { line, line + len };
	uint64_t v;
	const char *perm;

	if (parse_uint(&c, 16, &vma->start) || expect(&c, '-') ||
	    parse_uint(&c, 16, &vma->end) || expect(&c, ' '))
		return -1;
	if (vma->end <= vma->start || (vma->start | vma->end) & 0xfff)
		return -1;
	if (c.end - c.p < 5)
		return -1;
	perm = c.p;
	if ((perm[0] != 'r' && perm[0] != '-') || (perm[1] != 'w' && perm[1] != '-') ||
	    (perm[2] != 'x' && perm[2] != '-') || (perm[3] != 's' && perm[3] != 'p') ||
	    perm[4] != ' ')
		return -1;
	vma->prot = (perm[0] == 'r' ? PROT_READ : 0) | (perm[1] == 'w' ? PROT_WRITE : 0) |
		    (perm[2] == 'x' ? PROT_EXEC : 0);
	vma->shared = perm[3] == 's';
	c.p += 5;
	if (parse_uint(&c, 16, &vma->pgoff) || expect(&c, ' '))
		return -1;
	if (parse_uint(&c, 16, &v) || v > 0xffffffff || expect(&c, ':'))
		return -1;
	vma->dev_major = v;
	if (parse_uint(&c, 16, &v) || v > 0xffffffff || expect(&c, ' '))
		return -1;
	vma->dev_minor = v;
	if (parse_uint(&c, 10, &vma->ino))
		return -1;
	if (c.p < c.end && *c.p != ' ')
		return -1;
	skip_spaces(&c);
	if (c.p < c.end) {
		size_t n = c.end - c.p;

		if (memchr(c.p, 0, n))
			return -1;
		vma->path = strndup(c.p, n);
		if (!vma->path)
			return -1;
	}
	return 0;
}

static int parse_vmflags(const char *s, size_t len, struct proc_vma *vma)
{
	struct cursor c = { s, s + len };

	for (;;) {
		const char *w;
		size_t n;
		int b;

		skip_spaces(&c);
		if (c.p >= c.end)
			return 0;
		w = c.p;
		while (c.p < c.end && *c.p != ' ')
			c.p++;
		n = c.p - w;
		if (n != 2)
			return -1;
		for (b = 0; b < VMF_NR_BITS; b++)
			if (!memcmp(vmf_names[b], w, 2))
				break;
		if (b < VMF_NR_BITS) {
			vma->vm_flags |= 1ULL << b;
		} else if (!vma->unknown_flags) {
			vma->unknown_flags = 1;
			memcpy(vma->unknown_flag, w, 2);
			vma->unknown_flag[2] = 0;
		}
	}
}

static bool is_maps_line(const char *line, size_t len)
{
	const char *dash = memchr(line, '-', len < 20 ? len : 20);
	const char *colon = memchr(line, ':', len);

	/* A VMA line has "hex-hex" first; a field line is "Name:   value". */
	if (!dash)
		return false;
	return !colon || colon > dash;
}

/* The number of a "Field:   123 kB" line, after the field name. */
static int parse_kb(const char *p, const char *end, uint64_t *kb)
{
	struct cursor f = { p, end };

	skip_spaces(&f);
	return parse_uint(&f, 10, kb);
}

int proc_parse_smaps(const char *buf, size_t len, struct proc_vmas *out)
{
	struct cursor c = { buf, buf + len };
	struct proc_vma *cur = NULL;
	const char *line;
	size_t n;
	int lineno = 0;

	memset(out, 0, sizeof(*out));
	while (next_line(&c, &line, &n)) {
		lineno++;
		if (!n)
			continue;
		if (is_maps_line(line, n)) {
			if (vmas_push(out, &cur))
				goto fail;
			if (parse_maps_line(line, n, cur)) {
				cr_err("malformed memory map line %d: '%.*s'", lineno,
				       (int)(n > 80 ? 80 : n), line);
				goto fail;
			}
			if (out->nr > 1 && cur->start < out->v[out->nr - 2].end) {
				cr_err("memory map line %d: VMAs overlap or are unsorted", lineno);
				goto fail;
			}
			continue;
		}
		if (!cur) {
			cr_err("memory map line %d: field before any VMA", lineno);
			goto fail;
		}
		if (n > 8 && !memcmp(line, "VmFlags:", 8)) {
			if (parse_vmflags(line + 8, n - 8, cur)) {
				cr_err("memory map line %d: malformed VmFlags", lineno);
				goto fail;
			}
		} else if (n > 10 && !memcmp(line, "Anonymous:", 10)) {
			if (parse_kb(line + 10, line + n, &cur->anon_kb)) {
				cr_err("memory map line %d: malformed Anonymous field", lineno);
				goto fail;
			}
		} else if (n > 14 && !memcmp(line, "AnonHugePages:", 14)) {
			if (parse_kb(line + 14, line + n, &cur->anon_huge_kb)) {
				cr_err("memory map line %d: malformed AnonHugePages field",
				       lineno);
				goto fail;
			}
		}
	}
	return 0;
fail:
	proc_vmas_free(out);
	return -1;
}

void proc_vmas_free(struct proc_vmas *v)
{
	for (size_t i = 0; i < v->nr; i++)
		free(v->v[i].path);
	free(v->v);
	memset(v, 0, sizeof(*v));
}

/* /proc/PID/stat: "pid (comm) S ppid pgrp session ..." — comm may hold spaces and
 * parentheses, so it ends at the last ')'. */
int proc_parse_stat(const char *buf, size_t len, struct proc_stat *st)
{
	const char *lp, *rp = NULL;
	struct cursor c = { buf, buf + len };
	uint64_t f[64];
	int i, nf;
	uint64_t pid;
	size_t n;

	memset(st, 0, sizeof(*st));
	for (const char *p = buf; p < buf + len; p++)
		if (*p == ')')
			rp = p;
	lp = memchr(buf, '(', len);
	if (!lp || !rp || rp < lp || parse_uint(&c, 10, &pid) || c.p + 1 != lp ||
	    pid == 0 || pid > 0x7fffffff)
		return cr_err("malformed /proc stat: no 'pid (comm)' header");
	st->pid = pid;
	/* Copy at most what fits: a cast of a longer span to int could go negative, and a
	 * negative precision would make snprintf read up to a NUL past the buffer. */
	n = rp - lp - 1;
	if (n > sizeof(st->comm) - 1)
		n = sizeof(st->comm) - 1;
	snprintf(st->comm, sizeof(st->comm), "%.*s", (int)n, lp + 1);
	c.p = rp + 1;
	if (expect(&c, ' ') || c.p >= c.end)
		return cr_err("malformed /proc stat: no state after comm");
	st->state = *c.p++;
	/* Fields 4.. as signed numbers; we need up to field 52. */
	for (nf = 0; nf < 64; nf++) {
		skip_spaces(&c);
		if (c.p >= c.end || *c.p == '\n')
			break;
		if (c.p < c.end && *c.p == '-') {
			int64_t v;

			if (parse_int(&c, &v))
				return cr_err("malformed /proc stat: bad field %d", nf + 4);
			f[nf] = (uint64_t)v;
		} else if (parse_uint(&c, 10, &f[nf])) {
			return cr_err("malformed /proc stat: bad field %d", nf + 4);
		}
	}
	if (nf < 49)
		return cr_err("malformed /proc stat: %d fields, expected at least 52", nf + 3);
	i = -4;	/* f[field + i] is field number `field` (1-based) */
	if (f[4 + i] > 0x7fffffff || f[5 + i] > 0x7fffffff || f[6 + i] > 0x7fffffff)
		return cr_err("malformed /proc stat: bad process ids");
	st->ppid = f[4 + i];
	st->pgid = f[5 + i];
	st->sid = f[6 + i];
	st->tty_nr = (uint32_t)f[7 + i];
	st->tpgid = (pid_t)f[8 + i];
	st->flags = f[9 + i];
	st->num_threads = (long)f[20 + i];
	st->start_code = (uint64_t)f[26 + i];
	st->end_code = (uint64_t)f[27 + i];
	st->start_stack = (uint64_t)f[28 + i];
	st->exit_signal = (int)f[38 + i];
	st->start_data = (uint64_t)f[45 + i];
	st->end_data = (uint64_t)f[46 + i];
	st->start_brk = (uint64_t)f[47 + i];
	st->arg_start = (uint64_t)f[48 + i];
	st->arg_end = (uint64_t)f[49 + i];
	st->env_start = (uint64_t)f[50 + i];
	st->env_end = (uint64_t)f[51 + i];
	st->exit_code = (int)f[52 + i];
	return 0;
}

static int parse_hex64_field(struct cursor *c, uint64_t *out)
{
	skip_spaces(c);
	return parse_uint(c, 16, out);
}

static int parse_ids(struct cursor *c, uint32_t ids[4])
{
	for (int i = 0; i < 4; i++) {
		uint64_t v;

		skip_spaces(c);
		if (parse_uint(c, 10, &v) || v > 0xffffffff)
			return -1;
		ids[i] = v;
	}
	return 0;
}

static int parse_dec_field(struct cursor *c, int64_t *out)
{
	skip_spaces(c);
	return parse_int(c, out);
}

static int status_field(struct proc_status *st, const char *key, size_t klen, struct cursor *c)
{
	int64_t v;

#define KEY(s) (klen == sizeof(s) - 1 && !memcmp(key, s, klen))
	if (KEY("State")) {
		skip_spaces(c);
		if (c->p >= c->end)
			return -1;
		st->state = *c->p;
		return 0;
	}
	if (KEY("Tgid") || KEY("PPid") || KEY("TracerPid") || KEY("Threads") ||
	    KEY("NoNewPrivs") || KEY("Seccomp") || KEY("Kthread")) {
		if (parse_dec_field(c, &v) || v < 0 || v > 0x7fffffff)
			return -1;
		if (KEY("Tgid"))
			st->tgid = v;
		else if (KEY("PPid"))
			st->ppid = v;
		else if (KEY("TracerPid"))
			st->tracer_pid = v;
		else if (KEY("Threads"))
			st->threads = v;
		else if (KEY("NoNewPrivs"))
			st->no_new_privs = v;
		else if (KEY("Seccomp"))
			st->seccomp = v;
		else
			st->kthread = v;
		return 0;
	}
	if (KEY("Umask")) {
		uint64_t u;

		skip_spaces(c);
		if (parse_uint(c, 8, &u) || u > 0777)
			return -1;
		st->umask = u;
		return 0;
	}
	if (KEY("Uid"))
		return parse_ids(c, st->uid);
	if (KEY("Gid"))
		return parse_ids(c, st->gid);
	if (KEY("Groups")) {
		st->nr_groups = 0;
		for (;;) {
			uint64_t g;

			skip_spaces(c);
			if (c->p >= c->end)
				return 0;
			if (st->nr_groups >= (int)CR_GROUPS_MAX)
				return -2;	/* well formed, but more than we keep */
			if (parse_uint(c, 10, &g) || g > 0xffffffff)
				return -1;
			st->groups[st->nr_groups++] = g;
		}
	}
	if (KEY("NSpid")) {
		st->nspid_levels = 0;
		for (;;) {
			skip_spaces(c);
			if (c->p >= c->end)
				return 0;
			if (parse_dec_field(c, &v))
				return -1;
			st->nspid_levels++;
		}
	}
	if (KEY("SigPnd"))
		return parse_hex64_field(c, &st->sig_pnd);
	if (KEY("ShdPnd"))
		return parse_hex64_field(c, &st->shd_pnd);
	if (KEY("SigBlk"))
		return parse_hex64_field(c, &st->sig_blk);
	if (KEY("SigIgn"))
		return parse_hex64_field(c, &st->sig_ign);
	if (KEY("SigCgt"))
		return parse_hex64_field(c, &st->sig_cgt);
	if (KEY("CapInh"))
		return parse_hex64_field(c, &st->cap_inh);
	if (KEY("CapPrm"))
		return parse_hex64_field(c, &st->cap_prm);
	if (KEY("CapEff"))
		return parse_hex64_field(c, &st->cap_eff);
	if (KEY("CapBnd"))
		return parse_hex64_field(c, &st->cap_bnd);
	if (KEY("CapAmb"))
		return parse_hex64_field(c, &st->cap_amb);
#undef KEY
	return 0;
}

int proc_parse_status(const char *buf, size_t len, struct proc_status *st)
{
	struct cursor c = { buf, buf + len };
	const char *line;
	size_t n;
	int lineno = 0, rc;

	memset(st, 0, sizeof(*st));
	st->umask = -1;
	st->kthread = -1;
	while (next_line(&c, &line, &n)) {
		const char *colon = memchr(line, ':', n);
		struct cursor f;

		lineno++;
		if (!colon)
			return cr_err("malformed /proc status line %d: no ':'", lineno);
		f.p = colon + 1;
		f.end = line + n;
		rc = status_field(st, line, colon - line, &f);
		if (rc == -2)
			return cr_err("the process has more than %d supplementary groups; cryo "
				      "handles up to %d", CR_GROUPS_MAX, CR_GROUPS_MAX);
		if (rc)
			return cr_err("malformed /proc status line %d: '%.*s'", lineno,
				      (int)(n > 60 ? 60 : n), line);
	}
	if (!st->tgid)
		return cr_err("malformed /proc status: no Tgid");
	return 0;
}

int proc_fdinfo_number(const char *buf, size_t len, const char *key, int base, uint64_t *out)
{
	struct cursor c = { buf, buf + len };
	size_t klen = strlen(key);
	const char *line;
	size_t n;

	while (next_line(&c, &line, &n)) {
		struct cursor f = { line + klen + 1, line + n };

		if (n <= klen || memcmp(line, key, klen) || line[klen] != ':')
			continue;
		skip_spaces(&f);
		if (base == 16 && f.end - f.p > 2 && f.p[0] == '0' && (f.p[1] == 'x' || f.p[1] == 'X'))
			f.p += 2;
		if (parse_uint(&f, base, out))
			return cr_err("malformed fdinfo line '%s'", key);
		return 1;
	}
	return 0;
}

/* "KEY:" then a signed number, after skip_spaces. */
static int mq_field(struct cursor *f, const char *key, int64_t *out)
{
	size_t klen = strlen(key);

	skip_spaces(f);
	if ((size_t)(f->end - f->p) < klen || memcmp(f->p, key, klen))
		return -1;
	f->p += klen;
	return parse_int(f, out);
}

int proc_parse_mq_status(const char *buf, size_t len, struct proc_mq_status *out)
{
	struct cursor c = { buf, buf + len };
	const char *line;
	size_t n;

	while (next_line(&c, &line, &n)) {
		struct cursor f = { line, line + n };
		int64_t qsize;

		if (n < 6 || memcmp(line, "QSIZE:", 6))
			continue;
		if (mq_field(&f, "QSIZE:", &qsize) || qsize < 0 ||
		    mq_field(&f, "NOTIFY:", &out->notify) || mq_field(&f, "SIGNO:", &out->signo) ||
		    mq_field(&f, "NOTIFY_PID:", &out->notify_pid))
			return cr_err("malformed message queue status");
		out->qsize = qsize;
		return 0;
	}
	return cr_err("no 'QSIZE' in a message queue's status");
}

/* "(sec, nsec)" after skip_spaces. */
static int parse_timespec_pair(struct cursor *f, uint64_t *ns)
{
	uint64_t sec, nsec;

	skip_spaces(f);
	if (expect(f, '(') || parse_uint(f, 10, &sec) || expect(f, ','))
		return -1;
	skip_spaces(f);
	if (parse_uint(f, 10, &nsec) || expect(f, ')') || nsec >= 1000000000ULL ||
	    sec > UINT64_MAX / 1000000000ULL - 1)
		return -1;
	*ns = sec * 1000000000ULL + nsec;
	return 0;
}

int proc_parse_timerfd(const char *buf, size_t len, struct proc_timerfd *t)
{
	struct cursor c = { buf, buf + len };
	const char *line;
	size_t n;
	int have = 0;

	memset(t, 0, sizeof(*t));
	while (next_line(&c, &line, &n)) {
		static const char *const keys[] = { "clockid:", "ticks:", "settime flags:",
						    "it_value:", "it_interval:" };
		uint64_t v = 0;
		int k;

		for (k = 0; k < 5; k++)
			if (n >= strlen(keys[k]) && !memcmp(line, keys[k], strlen(keys[k])))
				break;
		if (k == 5)
			continue;
		{
			struct cursor f = { line + strlen(keys[k]), line + n };
			int bad;

			skip_spaces(&f);
			if (k >= 3)
				bad = parse_timespec_pair(&f, k == 3 ? &t->value_ns : &t->interval_ns);
			else
				bad = parse_uint(&f, k == 2 ? 8 : 10, &v);
			if (bad || (k == 0 && v > 64) || (k == 2 && v > 0xffff))
				return cr_err("malformed timerfd fdinfo: %s", keys[k]);
			if (k == 0)
				t->clockid = v;
			else if (k == 1)
				t->ticks = v;
			else if (k == 2)
				t->flags = v;
			have |= 1 << k;
		}
	}
	if (have != 0x1f)
		return cr_err("malformed timerfd fdinfo: fields missing");
	return 0;
}

int proc_parse_fdinfo(const char *buf, size_t len, struct proc_fdinfo *fi)
{
	struct cursor c = { buf, buf + len };
	const char *line;
	size_t n;
	int have = 0;

	memset(fi, 0, sizeof(*fi));
	while (next_line(&c, &line, &n)) {
		struct cursor f = { line, line + n };
		uint64_t v;

		if (n > 4 && !memcmp(line, "pos:", 4)) {
			f.p += 4;
			skip_spaces(&f);
			if (parse_uint(&f, 10, &fi->pos))
				return cr_err("malformed fdinfo pos");
			have |= 1;
		} else if (n > 6 && !memcmp(line, "flags:", 6)) {
			f.p += 6;
			skip_spaces(&f);
			if (parse_uint(&f, 8, &v) || v > 0xffffffff)
				return cr_err("malformed fdinfo flags");
			fi->flags = v;
			have |= 2;
		} else if (n > 7 && !memcmp(line, "mnt_id:", 7)) {
			f.p += 7;
			skip_spaces(&f);
			if (parse_uint(&f, 10, &v) || v > 0x7fffffff)
				return cr_err("malformed fdinfo mnt_id");
			fi->mnt_id = v;
		} else if (n > 4 && !memcmp(line, "ino:", 4)) {
			f.p += 4;
			skip_spaces(&f);
			if (parse_uint(&f, 10, &fi->ino))
				return cr_err("malformed fdinfo ino");
		}
	}
	if (have != 3)
		return cr_err("malformed fdinfo: no pos or flags");
	return 0;
}

char *proc_read_file(const char *path, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	int fd;

	if (!buf) {
		cr_err("out of memory reading %s", path);
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cr_perr("cannot open %s", path);
		free(buf);
		return NULL;
	}
	for (;;) {
		ssize_t r;

		if (n == cap) {
			char *nb = realloc(buf, cap * 2 + 1);

			if (!nb) {
				cr_err("out of memory reading %s", path);
				goto fail;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			cr_perr("cannot read %s", path);
			goto fail;
		}
		if (!r)
			break;
		n += r;
	}
	close(fd);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

char *proc_read_pid_file(pid_t pid, const char *name, size_t *len)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	return proc_read_file(path, len);
}

ssize_t proc_peek_pid_file(pid_t pid, const char *name, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return n;
}

static int cmp_number(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

int proc_list_numbers(const char *path, int **out, size_t *nr)
{
	struct dirent *de;
	size_t cap = 0;
	int *v = NULL;
	DIR *d = opendir(path);

	*nr = 0;
	if (!d)
		return cr_perr("cannot list %s", path);
	while ((de = readdir(d))) {
		char *end;
		long n = strtol(de->d_name, &end, 10);

		if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end || n < 0 || n > INT32_MAX)
			continue;
		if (cr_grow(&v, &cap, *nr + 1, sizeof(*v), 64)) {
			closedir(d);
			free(v);
			return -1;
		}
		v[(*nr)++] = n;
	}
	closedir(d);
	qsort(v, *nr, sizeof(*v), cmp_number);
	*out = v;
	return 0;
}

int proc_list_tasks(pid_t pid, pid_t **tids, size_t *nr)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	return proc_list_numbers(path, tids, nr);
}

static int timer_field(struct proc_timer *t, const char *line, size_t n, int *seen)
{
	struct cursor c = { line, line + n };
	uint64_t v;
	int64_t sv;

	if (n > 4 && !memcmp(line, "ID: ", 4)) {
		c.p += 4;
		if (parse_int(&c, &sv) || sv < 0 || sv > 0x7fffffff)
			return -1;
		t->id = sv;
		*seen |= 1;
	} else if (n > 8 && !memcmp(line, "signal: ", 8)) {
		c.p += 8;
		if (parse_uint(&c, 10, &v) || v > 64 || expect(&c, '/') ||
		    parse_uint(&c, 16, &t->sigev_value))
			return -1;
		t->signo = v;
		*seen |= 2;
	} else if (n > 8 && !memcmp(line, "notify: ", 8)) {
		static const struct { const char *s; int v; } kinds[] = {
			{ "signal/", 0 }, { "none/", 1 }, { "thread/", 2 },
		};
		size_t k;

		c.p += 8;
		for (k = 0; k < CR_ARRAY_SIZE(kinds); k++)
			if ((size_t)(c.end - c.p) > strlen(kinds[k].s) &&
			    !memcmp(c.p, kinds[k].s, strlen(kinds[k].s)))
				break;
		if (k == CR_ARRAY_SIZE(kinds))
			return -1;
		c.p += strlen(kinds[k].s);
		t->notify = kinds[k].v;
		if (c.end - c.p > 4 && !memcmp(c.p, "tid.", 4))
			t->notify |= 4;		/* SIGEV_THREAD_ID */
		else if (!(c.end - c.p > 4 && !memcmp(c.p, "pid.", 4)))
			return -1;
		c.p += 4;
		if (parse_uint(&c, 10, &v) || v > 0x7fffffff)
			return -1;
		t->notify_pid = v;
		*seen |= 4;
	} else if (n > 9 && !memcmp(line, "ClockID: ", 9)) {
		c.p += 9;
		if (parse_int(&c, &sv) || sv < -0x7fffffffLL || sv > 0x7fffffff)
			return -1;
		t->clock_id = sv;
		*seen |= 8;
	} else {
		return -1;
	}
	return 0;
}

int proc_parse_timers(const char *buf, size_t len, struct proc_timer **out, size_t *nr)
{
	struct cursor c = { buf, buf + len };
	struct proc_timer *v = NULL, *cur = NULL;
	size_t cap = 0;
	const char *line;
	size_t n;
	int seen = 15, lineno = 0;

	*nr = 0;
	while (next_line(&c, &line, &n)) {
		lineno++;
		if (n > 4 && !memcmp(line, "ID: ", 4)) {
			if (seen != 15)
				goto bad;
			if (cr_grow(&v, &cap, *nr + 1, sizeof(*v), 8)) {
				free(v);
				return -1;
			}
			cur = &v[(*nr)++];
			memset(cur, 0, sizeof(*cur));
			seen = 0;
		}
		if (!cur || timer_field(cur, line, n, &seen))
			goto bad;
	}
	if (seen != 15)
		goto bad;
	*out = v;
	return 0;
bad:
	free(v);
	*nr = 0;
	return cr_err("malformed /proc timers line %d", lineno);
}

/* "tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x" */
static int parse_epoll_line(const char *line, size_t n, struct proc_epoll_target *t)
{
	struct cursor c = { line + 4, line + n };
	uint64_t v;

	skip_spaces(&c);
	if (parse_uint(&c, 10, &v) || v > 0x7fffffff)
		return -1;
	t->tfd = v;
	skip_spaces(&c);
	if (c.end - c.p < 7 || memcmp(c.p, "events:", 7))
		return -1;
	c.p += 7;
	skip_spaces(&c);
	if (parse_uint(&c, 16, &v) || v > 0xffffffff)
		return -1;
	t->events = v;
	skip_spaces(&c);
	if (c.end - c.p < 5 || memcmp(c.p, "data:", 5))
		return -1;
	c.p += 5;
	skip_spaces(&c);
	return parse_uint(&c, 16, &t->data);
}

int proc_parse_epoll(const char *buf, size_t len, struct proc_epoll_target **out, size_t *nr)
{
	struct cursor c = { buf, buf + len };
	struct proc_epoll_target *v = NULL;
	size_t cap = 0;
	const char *line;
	size_t n;
	int lineno = 0;

	*nr = 0;
	*out = NULL;
	while (next_line(&c, &line, &n)) {
		lineno++;
		if (n < 4 || memcmp(line, "tfd:", 4))
			continue;
		if (cr_grow(&v, &cap, *nr + 1, sizeof(*v), 16)) {
			free(v);
			return -1;
		}
		if (parse_epoll_line(line, n, &v[*nr])) {
			free(v);
			*nr = 0;
			return cr_err("malformed epoll fdinfo line %d", lineno);
		}
		(*nr)++;
	}
	*out = v;
	return 0;
}

/* "Pid:" of a pidfd's fdinfo: the process, -1 once it has been reaped. */
int proc_parse_pidfd(const char *buf, size_t len, int *pid)
{
	struct cursor c = { buf, buf + len };
	const char *line;
	size_t n;

	while (next_line(&c, &line, &n)) {
		struct cursor f = { line + 4, line + n };
		int64_t v;

		if (n < 4 || memcmp(line, "Pid:", 4))
			continue;
		skip_spaces(&f);
		if (parse_int(&f, &v) || f.p != f.end || v < -1 || v > 0x3fffffff)
			return cr_err("malformed pidfd fdinfo line 'Pid'");
		*pid = v;
		return 0;
	}
	return cr_err("no 'Pid' line in a pidfd's fdinfo");
}

/* " key:HEX" of an inotify line. */
static int inotify_field(struct cursor *c, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);

	skip_spaces(c);
	if ((size_t)(c->end - c->p) <= klen || memcmp(c->p, key, klen) || c->p[klen] != ':')
		return -1;
	c->p += klen + 1;
	return parse_uint(c, 16, out);
}

static int inotify_handle(struct cursor *c, struct proc_inotify_watch *w, uint64_t bytes)
{
	skip_spaces(c);
	if (bytes > sizeof(w->handle) || c->end - c->p < 9 || memcmp(c->p, "f_handle:", 9))
		return -1;
	c->p += 9;
	if ((size_t)(c->end - c->p) != 2 * bytes)
		return -1;
	for (size_t i = 0; i < bytes; i++) {
		int hi = hexval(c->p[2 * i]), lo = hexval(c->p[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		w->handle[i] = hi << 4 | lo;
	}
	w->handle_bytes = bytes;
	return 0;
}

static int parse_inotify_line(const char *line, size_t n, struct proc_inotify_watch *w)
{
	struct cursor c = { line + 8, line + n };
	uint64_t wd, ino, sdev, mask, ignored, bytes, type;

	if (inotify_field(&c, "wd", &wd) || inotify_field(&c, "ino", &ino) ||
	    inotify_field(&c, "sdev", &sdev) || inotify_field(&c, "mask", &mask) ||
	    inotify_field(&c, "ignored_mask", &ignored) ||
	    inotify_field(&c, "fhandle-bytes", &bytes) ||
	    inotify_field(&c, "fhandle-type", &type) || wd == 0 || wd > INT32_MAX ||
	    mask > UINT32_MAX || sdev > UINT32_MAX || type > INT32_MAX ||
	    inotify_handle(&c, w, bytes))
		return -1;
	w->wd = wd;
	w->ino = ino;
	w->sdev = sdev;
	w->mask = mask;
	w->handle_type = type;
	return 0;
}

int proc_parse_inotify(const char *buf, size_t len, struct proc_inotify_watch **out, size_t *nr)
{
	struct cursor c = { buf, buf + len };
	struct proc_inotify_watch *v = NULL;
	size_t cap = 0, n;
	const char *line;
	int lineno = 0;

	*nr = 0;
	*out = NULL;
	while (next_line(&c, &line, &n)) {
		lineno++;
		if (n < 8 || memcmp(line, "inotify ", 8))
			continue;
		if (cr_grow(&v, &cap, *nr + 1, sizeof(*v), 16)) {
			free(v);
			return -1;
		}
		if (parse_inotify_line(line, n, &v[*nr])) {
			free(v);
			*nr = 0;
			return cr_err("malformed inotify fdinfo line %d", lineno);
		}
		(*nr)++;
	}
	*out = v;
	return 0;
}

/* A mountinfo path field: octal escapes (\040) undone. */
static int mount_path(const char *p, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = p[i];

		if (ch == '\\' && i + 3 < n && p[i + 1] >= '0' && p[i + 1] <= '3' &&
		    p[i + 2] >= '0' && p[i + 2] <= '7' &&
		    p[i + 3] >= '0' && p[i + 3] <= '7') {
			ch = (p[i + 1] - '0') << 6 | (p[i + 2] - '0') << 3 | (p[i + 3] - '0');
			i += 3;
		}
		if (o + 1 >= outlen || !ch)
			return -1;
		out[o++] = ch;
	}
	out[o] = 0;
	return 0;
}

/* The next space-separated field of a line. */
static bool next_field(struct cursor *c, const char **f, size_t *n)
{
	skip_spaces(c);
	*f = c->p;
	while (c->p < c->end && *c->p != ' ')
		c->p++;
	*n = c->p - *f;
	return *n > 0;
}

int proc_mount_of_dev(const char *buf, size_t len, unsigned int major, unsigned int minor,
		      char *out, size_t outlen)
{
	struct cursor c = { buf, buf + len };
	const char *line;
	size_t n;

	while (next_line(&c, &line, &n)) {
		struct cursor l = { line, line + n };
		const char *f[5];
		size_t fl[5];
		char dev[32];
		int k;

		for (k = 0; k < 5 && next_field(&l, &f[k], &fl[k]); k++)
			;
		if (k < 5)
			return cr_err("malformed mountinfo line");
		if (snprintf(dev, sizeof(dev), "%u:%u", major, minor) != (int)fl[2] ||
		    memcmp(dev, f[2], fl[2]) || fl[3] != 1 || f[3][0] != '/')
			continue;
		if (mount_path(f[4], fl[4], out, outlen) || out[0] != '/')
			return cr_err("malformed mountinfo mount point");
		return 1;
	}
	return 0;
}
