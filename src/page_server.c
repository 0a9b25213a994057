/* The page server: `cryo page-server` takes one dump's raw files (pages-*.img and the
 * other raw data) over TCP as an image stream and writes them into its directory;
 * dump --page-server connects to it. The metadata stays in the dump's directory. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cryo.h"
#include "image.h"
#include "log.h"
#include "page_server.h"

static int resolve(const char *address, unsigned port, bool passive, struct addrinfo **res)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0) };
	char serv[16];
	int rc;

	if (port > 65535)
		return cr_err("invalid port %u", port);
	snprintf(serv, sizeof(serv), "%u", port);
	rc = getaddrinfo(address, serv, &hints, res);
	if (rc)
		return cr_err("page server address %s: %s", address ? address : "(any)",
			      gai_strerror(rc));
	return 0;
}

int page_server_connect(struct stream_out *out, const char *address, unsigned port)
{
	struct addrinfo *res, *ai;
	char what[128];
	int fd = -1, one = 1;

	snprintf(what, sizeof(what), "the page server %s port %u", address, port);
	if (resolve(address, port, false, &res))
		return -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && !connect(fd, ai->ai_addr, ai->ai_addrlen))
			break;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return cr_perr("cannot connect to %s", what);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (stream_out_start(out, fd, true, what)) {
		close(fd);
		out->fd = -1;
		return -1;
	}
	return 0;
}

/* ---- the server ---- */

/* The dump's raw files are written into the directory as a dump would write them;
 * nothing else may come (no metadata, no inventory). */
struct ps_file {
	struct raw_writer w;
};

bool page_server_name_ok(const char *name)
{
	static const char *const kinds[] = { "pages-", "shmem-", "ghost-", "sysvshm-" };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const char *p = name + strlen(kinds[i]);
		size_t digits;

		if (strncmp(name, kinds[i], strlen(kinds[i])))
			continue;
		digits = strspn(p, "0123456789");
		return digits && digits <= 10 && !strcmp(p + digits, ".img");
	}
	return false;
}

static void *ps_open(void *arg, const char *name)
{
	struct ps_file *f;

	if (!page_server_name_ok(name)) {
		cr_err("the dump sent %s, not a page file", name);
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		cr_err("out of memory");
		return NULL;
	}
	if (raw_open(&f->w, arg, name)) {
		free(f);
		return NULL;
	}
	return f;
}

static int ps_write(void *arg, void *file, const void *buf, size_t len)
{
	struct ps_file *f = file;

	(void)arg;
	return raw_write(&f->w, buf, len);
}

/* The file's checksums, computed here, must be those the dump computed. */
static int ps_close(void *arg, void *file, uint64_t size, uint32_t crc)
{
	struct ps_file *f = file;
	int rc = raw_close(&f->w);

	(void)arg;
	if (!rc && (f->w.size != size || f->w.file_crc != crc))
		rc = cr_err("%s: the data received does not match the dump's checksums",
			    f->w.name);
	raw_free(&f->w);
	free(f);
	return rc;
}

static void ps_drop(void *arg, void *file)
{
	struct ps_file *f = file;

	(void)arg;
	raw_free(&f->w);
	free(f);
}

static int listen_on(const struct cryo_page_server_opts *o)
{
	struct addrinfo *res, *ai;
	int fd = -1, one = 1;

	if (resolve(o->address, o->port, true, &res))
		return -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 1))
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return cr_perr("page server: cannot listen on %s port %u",
			       o->address ? o->address : "every address", o->port);
	return fd;
}

static unsigned bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int tell_port(int fd, unsigned port)
{
	char line[16];
	int n = snprintf(line, sizeof(line), "%u\n", port);

	if (fd >= 0 && write(fd, line, n) != n)
		return cr_perr("page server: cannot tell the port");
	return 0;
}

static int serve(struct img_dir *d, int conn)
{
	const struct stream_sink sink = { d, ps_open, ps_write, ps_close, ps_drop };
	int rc = stream_receive(conn, "the dump's stream", &sink, false);

	if (rc) {
		stream_reply(conn, false, cr_last_error());
		return -1;
	}
	if (stream_reply(conn, true, NULL))
		return -1;
	pr_info("page server: %zu file%s stored in %s", d->nr_files, d->nr_files == 1 ? "" : "s",
		d->path);
	return 0;
}

int cryo_page_server(const struct cryo_page_server_opts *o)
{
	struct img_dir d;
	int lfd, conn, rc;

	cr_err_reset();
	if (!o->dir)
		return cr_err("no image directory given (-D)");
	if (img_dir_create(&d, o->dir))
		return -1;
	lfd = listen_on(o);
	if (lfd < 0 || tell_port(o->port_fd, bound_port(lfd))) {
		if (lfd >= 0)
			close(lfd);
		img_dir_close(&d, false);
		return -1;
	}
	do
		conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	while (conn < 0 && errno == EINTR);
	close(lfd);
	if (conn < 0) {
		img_dir_close(&d, false);
		return cr_perr("page server: accept");
	}
	rc = serve(&d, conn);
	close(conn);
	img_dir_close(&d, rc == 0);
	return rc;
}
