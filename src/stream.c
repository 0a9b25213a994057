/* The image stream: writing an image as one stream of checksummed records (dump
 * --stream, the page server's connection) and reading one back into a sink (restore
 * --stream, the page server). The format is in docs/STREAM.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "stream.h"

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

void stream_make_start(uint8_t *hdr)
{
	uint16_t version = STREAM_VERSION, flags = 0;

	memcpy(hdr, STREAM_MAGIC, 8);
	memcpy(hdr + 8, &version, 2);
	memcpy(hdr + 10, &flags, 2);
	put32(hdr + 12, crc32c(0, hdr, 12));
}

void stream_make_record(uint8_t *hdr, uint32_t type, const void *payload, uint32_t len)
{
	put32(hdr, type);
	put32(hdr + 4, len);
	put32(hdr + 8, crc32c(0, payload, len));
	put32(hdr + 12, crc32c(0, hdr, 12));
}

int stream_check_start(const uint8_t *hdr, const char *what)
{
	uint16_t version;

	if (memcmp(hdr, STREAM_MAGIC, 8))
		return cr_err("%s: not a cryo image stream (bad magic)", what);
	if (get32(hdr + 12) != crc32c(0, hdr, 12))
		return cr_err("%s: the stream header is damaged (checksum mismatch)", what);
	memcpy(&version, hdr + 8, 2);
	if (version != STREAM_VERSION)
		return cr_err("%s: stream format %u, this cryo reads format %u", what, version,
			      STREAM_VERSION);
	return 0;
}

int stream_check_record(const uint8_t *hdr, const char *what, uint64_t at, uint32_t *type,
			uint32_t *len, uint32_t *crc)
{
	if (get32(hdr + 12) != crc32c(0, hdr, 12))
		return cr_err("%s: record header at byte %llu is damaged (checksum mismatch)",
			      what, (unsigned long long)at);
	*type = get32(hdr);
	*len = get32(hdr + 4);
	*crc = get32(hdr + 8);
	if (*type < STREAM_FILE || *type > STREAM_NAK)
		return cr_err("%s: unknown record type %u at byte %llu", what, *type,
			      (unsigned long long)at);
	if (*len > (*type == STREAM_DATA ? STREAM_MAX_DATA : STREAM_MAX_MSG))
		return cr_err("%s: record at byte %llu is too long (%u bytes)", what,
			      (unsigned long long)at, *len);
	return 0;
}

/* ---- writing ---- */

static int out_fail(struct stream_out *s)
{
	s->broken = true;
	if (errno == EPIPE || errno == ECONNRESET)
		return cr_err("cannot write the image to %s: the reader is gone (%s)", s->what,
			      strerror(errno));
	return cr_perr("cannot write the image to %s", s->what);
}

static int out_iov(struct stream_out *s, struct iovec *iov, int n)
{
	if (s->broken)
		return cr_err("cannot write the image to %s: an earlier write failed", s->what);
	while (n) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n };
		ssize_t w = s->sock ? sendmsg(s->fd, &mh, MSG_NOSIGNAL) : writev(s->fd, iov, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (!w)
				errno = EPIPE;
			return out_fail(s);
		}
		s->bytes += w;
		while (n && (size_t)w >= iov->iov_len) {
			w -= iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= w;
		}
	}
	return 0;
}

static int out_record(struct stream_out *s, uint32_t type, const void *payload, size_t len)
{
	uint8_t hdr[STREAM_HDR_SIZE];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)payload, len } };

	stream_make_record(hdr, type, payload, len);
	return out_iov(s, iov, len ? 2 : 1);
}

int stream_out_start(struct stream_out *s, int fd, bool sock, const char *what)
{
	uint8_t hdr[STREAM_HDR_SIZE];
	struct iovec iov = { hdr, sizeof(hdr) };

	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->sock = sock;
	snprintf(s->what, sizeof(s->what), "%s", what);
	stream_make_start(hdr);
	return out_iov(s, &iov, 1);
}

void stream_out_close(struct stream_out *s)
{
	if (s->sock && s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

int stream_file_begin(struct stream_out *s, const char *name)
{
	if (s->in_file)
		return cr_err("%s: %s begun while another file is being written", s->what, name);
	s->in_file = true;
	s->files++;
	return out_record(s, STREAM_FILE, name, strlen(name));
}

int stream_file_data(struct stream_out *s, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		size_t n = len < STREAM_MAX_DATA ? len : STREAM_MAX_DATA;

		if (out_record(s, STREAM_DATA, p, n))
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

int stream_file_end(struct stream_out *s, uint64_t size, uint32_t crc)
{
	uint8_t end[12];

	memcpy(end, &size, 8);
	put32(end + 8, crc);
	s->in_file = false;
	return out_record(s, STREAM_FILE_END, end, sizeof(end));
}

int stream_finish(struct stream_out *s)
{
	uint8_t end[16];
	uint64_t bytes = s->bytes;

	memcpy(end, &s->files, 8);
	memcpy(end + 8, &bytes, 8);
	return out_record(s, STREAM_END, end, sizeof(end));
}

void stream_abort(struct stream_out *s, const char *why)
{
	size_t len = why ? strlen(why) : 0;

	if (s->broken || s->fd < 0)
		return;
	out_record(s, STREAM_ABORT, why ? why : "", len < STREAM_MAX_MSG ? len : STREAM_MAX_MSG);
}

/* ---- reading ---- */

/* Exactly len bytes; 0 at a clean end of stream before any byte, 1 if cut short. */
static int read_full(int fd, void *buf, size_t len, size_t *got)
{
	*got = 0;
	while (*got < len) {
		ssize_t n = read(fd, (char *)buf + *got, len - *got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (!n)
			return 1;
		*got += n;
	}
	return 0;
}

struct reader {
	int fd;
	const char *what;
	uint64_t at;			/* bytes read so far */
	uint8_t *buf;
};

static int rd(struct reader *r, void *buf, size_t len)
{
	size_t got;
	int rc = read_full(r->fd, buf, len, &got);

	r->at += got;
	if (rc < 0)
		return cr_perr("cannot read %s", r->what);
	if (rc)
		return cr_err("%s: truncated after %llu bytes, before the image's end (the dump "
			      "failed or the stream was cut)", r->what, (unsigned long long)r->at);
	return 0;
}

/* One record into r->buf; its type and length. 1 at the end of the input, if
 * eof_ok. */
static int rd_record(struct reader *r, uint32_t *type, uint32_t *len, bool eof_ok)
{
	uint8_t hdr[STREAM_HDR_SIZE];
	uint64_t at = r->at;
	uint32_t crc;
	size_t got;

	if (eof_ok) {
		int rc = read_full(r->fd, hdr, 1, &got);

		if (rc > 0)
			return 1;
		if (rc < 0)
			return cr_perr("cannot read %s", r->what);
		r->at++;
	}
	if (rd(r, hdr + eof_ok, sizeof(hdr) - eof_ok) ||
	    stream_check_record(hdr, r->what, at, type, len, &crc) || rd(r, r->buf, *len))
		return -1;
	if (crc32c(0, r->buf, *len) != crc)
		return cr_err("%s: checksum mismatch in the record at byte %llu (the stream is "
			      "damaged)", r->what, (unsigned long long)at);
	return 0;
}

static bool name_ok(const uint8_t *name, uint32_t len)
{
	if (!len || len > 255 || memchr(name, '/', len) || memchr(name, 0, len))
		return false;
	return !(len == 1 && name[0] == '.') && !(len == 2 && !memcmp(name, "..", 2));
}

struct rx {
	struct reader r;
	const struct stream_sink *sink;
	void *file;
	char name[256];
	uint64_t size, files;
};

static int rx_file(struct rx *x, uint32_t len)
{
	if (x->file)
		return cr_err("%s: file begun inside %s (malformed stream)", x->r.what, x->name);
	if (!name_ok(x->r.buf, len))
		return cr_err("%s: a file with an invalid name (malformed stream)", x->r.what);
	memcpy(x->name, x->r.buf, len);
	x->name[len] = 0;
	x->size = 0;
	x->files++;
	x->file = x->sink->open(x->sink->arg, x->name);
	return x->file ? 0 : -1;
}

static int rx_file_end(struct rx *x, uint32_t len)
{
	uint64_t size;
	void *f = x->file;

	if (!f || len != 12)
		return cr_err("%s: malformed file end record at byte %llu", x->r.what,
			      (unsigned long long)x->r.at);
	size = get64(x->r.buf);
	if (size != x->size)
		return cr_err("%s: %s has %llu bytes, its end record says %llu (malformed stream)",
			      x->r.what, x->name, (unsigned long long)x->size,
			      (unsigned long long)size);
	x->file = NULL;
	return x->sink->close(x->sink->arg, f, size, get32(x->r.buf + 8));
}

static int rx_end(struct rx *x, uint32_t len)
{
	if (x->file || len != 16)
		return cr_err("%s: malformed end record", x->r.what);
	if (get64(x->r.buf) != x->files)
		return cr_err("%s: %llu files, the end record counts %llu (malformed stream)",
			      x->r.what, (unsigned long long)x->files,
			      (unsigned long long)get64(x->r.buf));
	return 0;
}

static int rx_record(struct rx *x, uint32_t type, uint32_t len)
{
	switch (type) {
	case STREAM_FILE:
		return rx_file(x, len);
	case STREAM_DATA:
		if (!x->file)
			return cr_err("%s: data outside any file (malformed stream)", x->r.what);
		x->size += len;
		return x->sink->write(x->sink->arg, x->file, x->r.buf, len);
	case STREAM_FILE_END:
		return rx_file_end(x, len);
	case STREAM_ABORT: {
		char msg[STREAM_MAX_MSG + 1], line[STREAM_MAX_MSG + 1];

		memcpy(msg, x->r.buf, len);
		msg[len] = 0;
		cr_escape_line(msg, line, sizeof(line));
		return cr_err("%s: the dump failed: %s", x->r.what, len ? line : "(no reason)");
	}
	}
	return cr_err("%s: unexpected record type %u (malformed stream)", x->r.what, type);
}

/* After the end record: the dump's exit closes the stream; an abort record means it
 * failed after all (and its process runs on). */
static int rx_after_end(struct rx *x)
{
	uint32_t type, len;
	int rc = rd_record(&x->r, &type, &len, true);

	if (rc)
		return rc > 0 ? 0 : -1;
	if (type == STREAM_ABORT)
		return rx_record(x, type, len);
	return cr_err("%s: data after the image's end (malformed stream)", x->r.what);
}

int stream_receive(int fd, const char *what, const struct stream_sink *sink, bool to_eof)
{
	struct rx x = { .r = { .fd = fd, .what = what }, .sink = sink };
	uint8_t hdr[STREAM_HDR_SIZE];
	uint32_t type, len;
	int rc = -1;

	x.r.buf = malloc(STREAM_MAX_DATA);
	if (!x.r.buf)
		return cr_err("out of memory");
	if (rd(&x.r, hdr, sizeof(hdr)) || stream_check_start(hdr, what))
		goto out;
	for (;;) {
		if (rd_record(&x.r, &type, &len, false))
			goto out;
		if (type == STREAM_END)
			break;
		if (rx_record(&x, type, len))
			goto out;
	}
	rc = rx_end(&x, len);
	if (!rc && to_eof)
		rc = rx_after_end(&x);
out:
	if (x.file)
		sink->drop(sink->arg, x.file);
	free(x.r.buf);
	return rc;
}

int stream_reply(int fd, bool ok, const char *why)
{
	struct stream_out s = { .fd = fd, .sock = true };
	size_t len = why ? strlen(why) : 0;

	snprintf(s.what, sizeof(s.what), "the dumping cryo");
	return out_record(&s, ok ? STREAM_ACK : STREAM_NAK, why ? why : "",
			  len < STREAM_MAX_MSG ? len : STREAM_MAX_MSG);
}

int stream_wait_ack(struct stream_out *s)
{
	uint8_t buf[STREAM_MAX_MSG + 1], hdr[STREAM_HDR_SIZE];
	char line[STREAM_MAX_MSG + 1];
	uint32_t type, len, crc;
	size_t got;
	int rc = read_full(s->fd, hdr, sizeof(hdr), &got);

	if (rc > 0)
		return cr_err("%s closed the connection before it confirmed the pages", s->what);
	if (rc < 0)
		return cr_perr("%s: waiting for its answer", s->what);
	if (stream_check_record(hdr, s->what, 0, &type, &len, &crc))
		return -1;
	if (len > STREAM_MAX_MSG || read_full(s->fd, buf, len, &got) ||
	    crc32c(0, buf, len) != crc)
		return cr_err("%s: its answer is damaged", s->what);
	if (type == STREAM_ACK)
		return 0;
	buf[len] = 0;
	cr_escape_line((char *)buf, line, sizeof(line));
	if (type == STREAM_NAK)
		return cr_err("%s could not store the pages: %s", s->what, line);
	return cr_err("%s: unexpected answer (record type %u)", s->what, type);
}
