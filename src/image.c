/* The image directory: writing and reading checksummed metadata files and raw page
 * files, and the inventory that lists them all and is written last. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "image.h"
#include "log.h"
#include "stream.h"
#include "util.h"

#define INVENTORY "inventory.img"

struct img_header {
	uint32_t magic;
	uint16_t kind;
	uint16_t major;
	uint32_t length;
	uint32_t crc;
};

_Static_assert(sizeof(struct img_header) == IMG_HDR_SIZE, "header size");

static const char *kind_name(uint16_t kind)
{
	switch (kind) {
	case IMAGE_KIND__IMG_INVENTORY: return "inventory";
	case IMAGE_KIND__IMG_PSTREE: return "process tree";
	case IMAGE_KIND__IMG_CORE: return "core";
	case IMAGE_KIND__IMG_PAGEMAP: return "page map";
	case IMAGE_KIND__IMG_FILES: return "file table";
	case IMAGE_KIND__IMG_SHMEM: return "shared memory table";
	case IMAGE_KIND__IMG_IPC: return "System V IPC table";
	case IMAGE_KIND__IMG_NETLOCK: return "network lock";
	}
	return "unknown";
}

static int add_record(struct img_dir *d, const char *name, uint64_t size, uint32_t crc)
{
	struct img_file_rec *rec;

	for (size_t i = 0; i < d->nr_files; i++)
		if (!strcmp(d->files[i].name, name)) {
			d->files[i].size = size;
			d->files[i].crc = crc;
			return 0;
		}
	if (cr_grow(&d->files, &d->cap_files, d->nr_files + 1, sizeof(*d->files), 16))
		return -1;
	rec = &d->files[d->nr_files];
	rec->name = strdup(name);
	if (!rec->name)
		return cr_err("out of memory");
	rec->size = size;
	rec->crc = crc;
	d->nr_files++;
	return 0;
}

static const struct img_file_rec *find_record(const struct img_dir *d, const char *name)
{
	for (size_t i = 0; i < d->nr_files; i++)
		if (!strcmp(d->files[i].name, name))
			return &d->files[i];
	return NULL;
}

/* The directory itself, never through a symbolic link; not one others can write. */
static int open_dir(struct img_dir *d, const char *path, bool writing)
{
	struct stat st;

	d->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d->dirfd < 0) {
		struct stat lst;

		if (!lstat(path, &lst) && S_ISLNK(lst.st_mode))
			return cr_err("image directory %s is a symbolic link; cryo does not follow "
				      "links there", path);
		return cr_perr("cannot open image directory %s", path);
	}
	if (fstat(d->dirfd, &st))
		return cr_perr("cannot stat image directory %s", path);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return cr_err("image directory %s can be written by others (mode %04o); use a "
			      "directory only its owner can write", path, st.st_mode & 07777);
	if (writing && faccessat(d->dirfd, ".", W_OK, AT_EACCESS))
		return cr_perr("image directory %s is not writable", path);
	return 0;
}

int img_dir_create(struct img_dir *d, const char *path)
{
	memset(d, 0, sizeof(*d));
	d->dirfd = -1;
	if (!mkdir(path, 0700))
		d->created = true;
	else if (errno != EEXIST)
		return cr_perr("cannot create image directory %s", path);
	d->path = strdup(path);
	if (!d->path)
		return cr_err("out of memory");
	d->writing = true;
	if (open_dir(d, path, true))
		goto fail;
	/* An old inventory would make a half-written new image look complete. */
	if (unlinkat(d->dirfd, INVENTORY, 0) && errno != ENOENT) {
		cr_perr("cannot remove the old %s/%s", path, INVENTORY);
		goto fail;
	}
	return 0;
fail:
	img_dir_close(d, false);
	return -1;
}

int img_dir_open(struct img_dir *d, const char *path)
{
	memset(d, 0, sizeof(*d));
	d->dirfd = -1;
	d->path = strdup(path);
	if (!d->path)
		return cr_err("out of memory");
	if (open_dir(d, path, false)) {
		img_dir_close(d, true);
		return -1;
	}
	return 0;
}

/* The stream gets an image file instead of the directory. */
static bool to_stream(const struct img_dir *d, bool raw)
{
	return d->out && (raw || !d->out_raw_only);
}

int img_dir_stream(struct img_dir *d, struct stream_out *out)
{
	memset(d, 0, sizeof(*d));
	d->dirfd = -1;
	d->writing = true;
	d->out = out;
	d->path = strdup("stream");
	return d->path ? 0 : cr_err("out of memory");
}

static struct img_mem_file *find_mem(const struct img_dir *d, const char *name)
{
	for (size_t i = 0; i < d->nr_mem; i++)
		if (!strcmp(d->mem[i].name, name))
			return &d->mem[i];
	return NULL;
}

/* The stream's files become memfds (handles: index + 1). */
static void *mem_open(void *arg, const char *name)
{
	struct img_dir *d = arg;
	struct img_mem_file *m;

	if (find_mem(d, name)) {
		cr_err("%s: holds %s twice (malformed stream)", d->path, name);
		return NULL;
	}
	if (d->nr_mem >= IMG_MAX_FILES + 1) {
		cr_err("%s: too many files", d->path);
		return NULL;
	}
	if (cr_grow(&d->mem, &d->cap_mem, d->nr_mem + 1, sizeof(*d->mem), 16))
		return NULL;
	m = &d->mem[d->nr_mem];
	m->fd = memfd_create("cryo-image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (m->fd < 0) {
		cr_perr("%s: cannot make a memfd for %s", d->path, name);
		return NULL;
	}
	m->name = strdup(name);
	if (!m->name) {
		close(m->fd);
		cr_err("out of memory");
		return NULL;
	}
	return (void *)(++d->nr_mem);
}

static int write_all(int fd, const void *buf, size_t len, const char *dir, const char *name);

static int mem_write(void *arg, void *file, const void *buf, size_t len)
{
	struct img_dir *d = arg;
	struct img_mem_file *m = &d->mem[(uintptr_t)file - 1];

	return write_all(m->fd, buf, len, d->path, m->name);
}

/* Sealed: what restore reads (and the restored task preadv's) cannot change. */
static int mem_close(void *arg, void *file, uint64_t size, uint32_t crc)
{
	struct img_dir *d = arg;
	struct img_mem_file *m = &d->mem[(uintptr_t)file - 1];

	(void)size;
	(void)crc;	/* the inventory's checksums are checked as the files are read */
	if (fcntl(m->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL))
		return cr_perr("%s: cannot seal the memfd of %s", d->path, m->name);
	return 0;
}

static void mem_drop(void *arg, void *file)
{
	(void)arg;
	(void)file;	/* closed with the directory */
}

int img_dir_open_stream(struct img_dir *d, int fd, const char *what)
{
	const struct stream_sink sink = { d, mem_open, mem_write, mem_close, mem_drop };

	memset(d, 0, sizeof(*d));
	d->dirfd = -1;
	d->in_memory = true;
	d->path = strdup("stream");
	if (!d->path)
		return cr_err("out of memory");
	if (stream_receive(fd, what, &sink, true)) {
		img_dir_close(d, true);
		return -1;
	}
	return 0;
}

void img_dir_close(struct img_dir *d, bool keep)
{
	if (d->out && d->writing && !keep)
		stream_abort(d->out, cr_last_error());
	for (size_t i = 0; i < d->nr_mem; i++) {
		close(d->mem[i].fd);
		free(d->mem[i].name);
	}
	free(d->mem);
	for (size_t i = 0; i < d->nr_files; i++) {
		if (d->writing && !keep && d->dirfd >= 0)
			unlinkat(d->dirfd, d->files[i].name, 0);
		free(d->files[i].name);
	}
	if (d->writing && !keep && d->dirfd >= 0)
		unlinkat(d->dirfd, INVENTORY ".tmp", 0);
	if (d->dirfd >= 0)
		close(d->dirfd);
	/* A refused dump leaves nothing behind: not even the directory it made. */
	if (d->writing && !keep && d->created && d->path)
		rmdir(d->path);
	free(d->files);
	free(d->path);
	memset(d, 0, sizeof(*d));
	d->dirfd = -1;
}

static int write_all(int fd, const void *buf, size_t len, const char *dir, const char *name)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cr_perr("cannot write %s/%s", dir, name);
		if (n == 0) {
			errno = ENOSPC;
			return cr_perr("cannot write %s/%s", dir, name);
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* A new file: whatever had the name (an old image file, a planted link) goes first,
 * and the name must then be free. */
static int create_at(struct img_dir *d, const char *name, int access)
{
	if (unlinkat(d->dirfd, name, 0) && errno != ENOENT)
		return -1;
	return openat(d->dirfd, name, access | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

static int create_file(struct img_dir *d, const char *name, int access)
{
	int fd = create_at(d, name, access);

	if (fd < 0)
		return cr_perr("cannot create %s/%s", d->path, name);
	/* Listed at once, so that a failure removes it. */
	if (add_record(d, name, 0, 0)) {
		close(fd);
		unlinkat(d->dirfd, name, 0);
		return -1;
	}
	return fd;
}

static int close_checked(int fd, const char *dir, const char *name)
{
	if (close(fd))
		return cr_perr("cannot write %s/%s", dir, name);
	return 0;
}

static uint8_t *pack_with_header(uint16_t kind, const ProtobufCMessage *msg, size_t *total)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	struct img_header h;
	uint8_t *buf;

	if (len > IMG_MAX_META) {
		cr_err("%s image too large (%zu bytes)", kind_name(kind), len);
		return NULL;
	}
	buf = malloc(IMG_HDR_SIZE + len);
	if (!buf) {
		cr_err("out of memory packing %s image", kind_name(kind));
		return NULL;
	}
	protobuf_c_message_pack(msg, buf + IMG_HDR_SIZE);
	h.magic = IMG_MAGIC;
	h.kind = kind;
	h.major = FORMAT_MAJOR;
	h.length = len;
	h.crc = crc32c(0, buf + IMG_HDR_SIZE, len);
	memcpy(buf, &h, sizeof(h));
	*total = IMG_HDR_SIZE + len;
	return buf;
}

int img_write_msg(struct img_dir *d, const char *name, uint16_t kind,
		  const ProtobufCMessage *msg)
{
	size_t total;
	uint8_t *buf = pack_with_header(kind, msg, &total);
	struct img_header h;
	int fd, rc = -1;

	if (!buf)
		return -1;
	memcpy(&h, buf, sizeof(h));
	if (to_stream(d, false)) {
		if (stream_file_begin(d->out, name) || stream_file_data(d->out, buf, total) ||
		    stream_file_end(d->out, total, h.crc))
			goto out;
		rc = add_record(d, name, total, h.crc);
		goto out;
	}
	fd = create_file(d, name, O_WRONLY);
	if (fd < 0)
		goto out;
	if (write_all(fd, buf, total, d->path, name)) {
		close(fd);
		goto out;
	}
	if (close_checked(fd, d->path, name))
		goto out;
	rc = add_record(d, name, total, h.crc);
out:
	free(buf);
	return rc;
}

/* Which cryo wrote a format version. */
static const char *format_writer(unsigned major)
{
	return major == 1 ? "0.1.x" : "?";
}

int img_check_buffer(const uint8_t *buf, size_t len, uint16_t kind, const char *name,
		     const uint8_t **payload, size_t *payload_len)
{
	struct img_header h;

	if (len < IMG_HDR_SIZE)
		return cr_err("%s: truncated (%zu bytes, shorter than the header)", name, len);
	memcpy(&h, buf, sizeof(h));
	if (h.magic != IMG_MAGIC)
		return cr_err("%s: not a cryo image file (bad magic)", name);
	if (h.major > FORMAT_MAJOR)
		return cr_err("%s: written in image format %u, newer than this cryo reads "
			      "(up to %u); use a newer cryo", name, h.major, FORMAT_MAJOR);
	if (h.major == 0)
		return cr_err("%s: invalid format version 0", name);
	if (h.major < FORMAT_MAJOR)
		return cr_err("%s: written in image format %u (cryo %s), which this cryo %s "
			      "(format %u) does not read; restore it with cryo %s", name, h.major,
			      format_writer(h.major), CRYO_VERSION, FORMAT_MAJOR,
			      format_writer(h.major));
	if (h.kind != kind)
		return cr_err("%s: holds a %s image where a %s image was expected", name,
			      kind_name(h.kind), kind_name(kind));
	if (h.length != len - IMG_HDR_SIZE)
		return cr_err("%s: truncated or padded (header says %u bytes of data, "
			      "file has %zu)", name, h.length, len - IMG_HDR_SIZE);
	if (crc32c(0, buf + IMG_HDR_SIZE, h.length) != h.crc)
		return cr_err("%s: checksum mismatch (the file is damaged)", name);
	*payload = buf + IMG_HDR_SIZE;
	*payload_len = h.length;
	return 0;
}

/* A file read from a stream: its memfd opened anew, with an offset of its own. */
static int open_mem_file(const struct img_dir *d, const char *name)
{
	const struct img_mem_file *m = find_mem(d, name);
	char path[64];

	if (!m) {
		errno = ENOENT;
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", m->fd);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static int stat_image_file(const struct img_dir *d, const char *name, struct stat *st)
{
	const struct img_mem_file *m;

	if (!d->in_memory)
		return fstatat(d->dirfd, name, st, AT_SYMLINK_NOFOLLOW);
	m = find_mem(d, name);
	if (!m) {
		errno = ENOENT;
		return -1;
	}
	return fstat(m->fd, st);
}

/* Never through a link, and without blocking on a FIFO planted there. */
static int open_image_file(struct img_dir *d, const char *name)
{
	int fd;

	if (d->in_memory)
		return open_mem_file(d, name);
	fd = openat(d->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		fcntl(fd, F_SETFL, 0);
	return fd;
}

static uint8_t *read_whole(struct img_dir *d, const char *name, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd = open_image_file(d, name);

	if (fd < 0) {
		if (errno == ENOENT)
			cr_err("%s/%s is missing", d->path, name);
		else if (errno == ELOOP)
			cr_err("%s/%s is a symbolic link; cryo does not follow links there",
			       d->path, name);
		else
			cr_perr("cannot open %s/%s", d->path, name);
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		cr_err("%s/%s is not a regular file", d->path, name);
		goto fail_fd;
	}
	if ((uint64_t)st.st_size > IMG_MAX_META + IMG_HDR_SIZE) {
		cr_err("%s/%s is too large for a metadata file", d->path, name);
		goto fail_fd;
	}
	buf = malloc(st.st_size ? st.st_size : 1);
	if (!buf) {
		cr_err("out of memory reading %s/%s", d->path, name);
		goto fail_fd;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			cr_perr("cannot read %s/%s", d->path, name);
			free(buf);
			goto fail_fd;
		}
		got += n;
	}
	close(fd);
	*len = got;
	return buf;
fail_fd:
	close(fd);
	return NULL;
}

static void *unpack_checked(struct img_dir *d, const char *name, uint16_t kind,
			    const ProtobufCMessageDescriptor *desc, uint32_t *crc_out)
{
	char label[4200];
	const uint8_t *payload;
	size_t len, plen;
	uint8_t *buf = read_whole(d, name, &len);
	void *msg;

	if (!buf)
		return NULL;
	snprintf(label, sizeof(label), "%s/%s", d->path, name);
	if (img_check_buffer(buf, len, kind, label, &payload, &plen)) {
		free(buf);
		return NULL;
	}
	memcpy(crc_out, buf + 12, 4);
	msg = protobuf_c_message_unpack(desc, NULL, plen, payload);
	free(buf);
	if (!msg)
		cr_err("%s: malformed %s data", label, kind_name(kind));
	return msg;
}

void *img_read_msg(struct img_dir *d, const char *name, uint16_t kind,
		   const ProtobufCMessageDescriptor *desc)
{
	const struct img_file_rec *rec = find_record(d, name);
	uint32_t crc;
	void *msg;

	if (!rec) {
		cr_err("%s/%s is not listed in the inventory", d->path, name);
		return NULL;
	}
	msg = unpack_checked(d, name, kind, desc, &crc);
	if (msg && crc != rec->crc) {
		protobuf_c_message_free_unpacked(msg, NULL);
		cr_err("%s/%s does not match the inventory (replaced or damaged)", d->path, name);
		return NULL;
	}
	return msg;
}

int raw_open(struct raw_writer *w, struct img_dir *d, const char *name)
{
	memset(w, 0, sizeof(*w));
	w->dir = d;
	w->name = strdup(name);
	if (!w->name)
		return cr_err("out of memory");
	if (to_stream(d, true)) {
		w->fd = -1;
		w->out = d->out;
		return stream_file_begin(w->out, name);
	}
	w->fd = create_file(d, name, O_RDWR);	/* a page file is written through a map */
	if (w->fd < 0) {
		free(w->name);
		w->name = NULL;
		return -1;
	}
	return 0;
}

static int push_crc(struct raw_writer *w, uint32_t crc)
{
	if (w->nr_crcs == w->cap_crcs) {
		size_t cap = w->cap_crcs ? w->cap_crcs * 2 : 64;
		uint32_t *n = realloc(w->crcs, cap * sizeof(*n));

		if (!n)
			return cr_err("out of memory");
		w->crcs = n;
		w->cap_crcs = cap;
	}
	w->crcs[w->nr_crcs++] = crc;
	return 0;
}

/* Checksum data about to be appended at w->size, chunk by chunk. */
static int raw_checksum(struct raw_writer *w, const uint8_t *p, size_t len)
{
	uint64_t pos = w->size;

	while (len) {
		size_t in_chunk = IMG_CHUNK_SIZE - pos % IMG_CHUNK_SIZE;
		size_t n = len < in_chunk ? len : in_chunk;

		w->cur_crc = crc32c(w->cur_crc, p, n);
		p += n;
		len -= n;
		pos += n;
		if (pos % IMG_CHUNK_SIZE == 0) {
			if (push_crc(w, w->cur_crc))
				return -1;
			w->cur_crc = 0;
		}
	}
	return 0;
}

int raw_write(struct raw_writer *w, const void *buf, size_t len)
{
	if (raw_checksum(w, buf, len) ||
	    (w->out ? stream_file_data(w->out, buf, len) :
		      write_all(w->fd, buf, len, w->dir->path, w->name)))
		return -1;
	w->size += len;
	return 0;
}

static void *raw_async_main(void *arg)
{
	struct raw_async *a = arg;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		unsigned slot;
		int rc;

		while (a->tail == a->head && !a->done)
			pthread_cond_wait(&a->cond, &a->lock);
		if (a->tail == a->head)
			break;
		slot = a->tail % RAW_ASYNC_BUFS;
		pthread_mutex_unlock(&a->lock);
		rc = a->error ? -1 : raw_write(a->w, a->bufs[slot], a->len[slot]);
		pthread_mutex_lock(&a->lock);
		if (rc && !a->error) {
			a->error = 1;
			snprintf(a->error_msg, sizeof(a->error_msg), "%s",
				 cr_last_error() ? cr_last_error() : "write failed");
		}
		a->tail++;
		pthread_cond_broadcast(&a->cond);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

int raw_async_start(struct raw_async *a, struct raw_writer *w)
{
	memset(a, 0, sizeof(*a));
	a->w = w;
	for (int i = 0; i < RAW_ASYNC_BUFS; i++) {
		a->bufs[i] = mmap(NULL, RAW_ASYNC_BUF_SIZE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (a->bufs[i] == MAP_FAILED) {
			a->bufs[i] = NULL;
			raw_async_finish(a);
			return cr_perr("cannot allocate page buffers");
		}
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	if (pthread_create(&a->thread, NULL, raw_async_main, a)) {
		a->thread = 0;
		raw_async_finish(a);
		return cr_err("cannot start the page writer");
	}
	return 0;
}

uint8_t *raw_async_buffer(struct raw_async *a)
{
	uint8_t *b;

	pthread_mutex_lock(&a->lock);
	while (a->head - a->tail >= RAW_ASYNC_BUFS)
		pthread_cond_wait(&a->cond, &a->lock);
	b = a->bufs[a->head % RAW_ASYNC_BUFS];
	pthread_mutex_unlock(&a->lock);
	return b;
}

int raw_async_submit(struct raw_async *a, size_t len)
{
	int err;

	pthread_mutex_lock(&a->lock);
	a->len[a->head % RAW_ASYNC_BUFS] = len;
	a->head++;
	err = a->error;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	return err ? -1 : 0;
}

int raw_async_finish(struct raw_async *a)
{
	int rc = 0;

	if (a->thread) {
		pthread_mutex_lock(&a->lock);
		a->done = true;
		pthread_cond_broadcast(&a->cond);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->thread, NULL);
		a->thread = 0;
		pthread_mutex_destroy(&a->lock);
		pthread_cond_destroy(&a->cond);
	}
	if (a->error)
		rc = cr_err("%s", a->error_msg);
	for (int i = 0; i < RAW_ASYNC_BUFS; i++)
		if (a->bufs[i])
			munmap(a->bufs[i], RAW_ASYNC_BUF_SIZE);
	memset(a->bufs, 0, sizeof(a->bufs));
	return rc;
}

void raw_set_checksums(struct raw_writer *w, uint32_t *crcs, size_t nr, uint64_t size)
{
	free(w->crcs);
	w->crcs = crcs;
	w->nr_crcs = w->cap_crcs = nr;
	w->size = size;
	w->crcs_done = true;
}

int raw_close(struct raw_writer *w)
{
	int fd = w->fd;

	w->fd = -1;
	if (!w->crcs_done && w->size % IMG_CHUNK_SIZE && push_crc(w, w->cur_crc)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	w->file_crc = crc32c(0, w->crcs, w->nr_crcs * sizeof(uint32_t));
	if (w->out ? stream_file_end(w->out, w->size, w->file_crc) :
		     close_checked(fd, w->dir->path, w->name))
		return -1;
	return add_record(w->dir, w->name, w->size, w->file_crc);
}

void raw_free(struct raw_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->crcs);
	free(w->name);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}

int img_open_raw(struct img_dir *d, const char *name, uint64_t expect_size)
{
	const struct img_file_rec *rec = find_record(d, name);
	struct stat st;
	int fd;

	if (!rec)
		return cr_err("%s/%s is not listed in the inventory", d->path, name);
	fd = open_image_file(d, name);
	if (fd < 0) {
		if (errno == ENOENT)
			return cr_err("%s/%s is missing", d->path, name);
		if (errno == ELOOP)
			return cr_err("%s/%s is a symbolic link; cryo does not follow links there",
				      d->path, name);
		return cr_perr("cannot open %s/%s", d->path, name);
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return cr_err("%s/%s is not a regular file", d->path, name);
	}
	if ((uint64_t)st.st_size != expect_size || rec->size != expect_size) {
		close(fd);
		return cr_err("%s/%s has %llu bytes, the image expects %llu (truncated or "
			      "damaged)", d->path, name, (unsigned long long)st.st_size,
			      (unsigned long long)expect_size);
	}
	return fd;
}

int img_verify_raw(struct img_dir *d, const char *name, int fd, uint64_t size,
		   uint32_t chunk_size, const uint32_t *crcs, size_t nr_crcs)
{
	return img_verify_chunks(d, name, fd, size, chunk_size, crcs, nr_crcs, NULL);
}

int img_verify_chunks(struct img_dir *d, const char *name, int fd, uint64_t size,
		      uint32_t chunk_size, const uint32_t *crcs, size_t nr_crcs,
		      const bool *want)
{
	const struct img_file_rec *rec = find_record(d, name);
	const uint8_t *map;
	int rc = -1;

	if (chunk_size != IMG_CHUNK_SIZE)
		return cr_err("%s/%s: unsupported checksum chunk size %u", d->path, name,
			      chunk_size);
	if (nr_crcs != (size + chunk_size - 1) / chunk_size)
		return cr_err("%s/%s: %zu checksums for %llu bytes", d->path, name, nr_crcs,
			      (unsigned long long)size);
	if (!rec || rec->crc != crc32c(0, crcs, nr_crcs * sizeof(uint32_t)))
		return cr_err("%s/%s: checksum list does not match the inventory", d->path,
			      name);
	if (!size)
		return 0;
	/* Straight from the page cache: no copy. */
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return cr_perr("cannot map %s/%s", d->path, name);
	madvise((void *)map, size, MADV_SEQUENTIAL);
	for (uint64_t off = 0, idx = 0; off < size; off += chunk_size, idx++) {
		size_t l = size - off < chunk_size ? size - off : chunk_size;

		if (want && !want[idx])
			continue;
		if (crc32c(0, map + off, l) != crcs[idx]) {
			cr_err("%s/%s: checksum mismatch in bytes %llu-%llu (the page data is "
			       "damaged)", d->path, name, (unsigned long long)off,
			       (unsigned long long)(off + l - 1));
			goto out;
		}
	}
	rc = 0;
out:
	munmap((void *)map, size);
	return rc;
}

/* --stream: the inventory is the stream's last file; --page-server: the page server
 * confirms every page is stored before the inventory seals the image. */
static int write_inventory_out(struct img_dir *d, const uint8_t *buf, size_t total)
{
	uint32_t crc;

	if (d->out_raw_only)
		return stream_finish(d->out) || stream_wait_ack(d->out) ? -1 : 1;
	memcpy(&crc, buf + 12, 4);
	if (stream_file_begin(d->out, INVENTORY) || stream_file_data(d->out, buf, total) ||
	    stream_file_end(d->out, total, crc) || stream_finish(d->out))
		return -1;
	return 0;
}

int img_write_inventory(struct img_dir *d, Inventory *inv)
{
	ImageFileEntry *entries, **ptrs;
	size_t total;
	uint8_t *buf;
	int fd, rc = -1;

	entries = calloc(d->nr_files + 1, sizeof(*entries));
	ptrs = calloc(d->nr_files + 1, sizeof(*ptrs));
	if (!entries || !ptrs) {
		cr_err("out of memory");
		goto out;
	}
	for (size_t i = 0; i < d->nr_files; i++) {
		image_file_entry__init(&entries[i]);
		entries[i].name = d->files[i].name;
		entries[i].size = d->files[i].size;
		entries[i].crc32c = d->files[i].crc;
		ptrs[i] = &entries[i];
	}
	inv->n_files = d->nr_files;
	inv->files = ptrs;
	buf = pack_with_header(IMAGE_KIND__IMG_INVENTORY, &inv->base, &total);
	inv->n_files = 0;
	inv->files = NULL;
	if (!buf)
		goto out;
	if (d->out) {
		rc = write_inventory_out(d, buf, total);
		if (rc <= 0)
			goto out_buf;
		rc = -1;
	}
	fd = create_at(d, INVENTORY ".tmp", O_WRONLY);
	if (fd < 0) {
		cr_perr("cannot create %s/%s.tmp", d->path, INVENTORY);
		goto out_buf;
	}
	/* No fsync: every file is checksummed, so an image torn by a crash is refused
	 * at restore rather than restored wrong. */
	if (write_all(fd, buf, total, d->path, INVENTORY ".tmp")) {
		cr_perr("cannot write %s/%s", d->path, INVENTORY);
		close(fd);
		goto out_buf;
	}
	if (close_checked(fd, d->path, INVENTORY) ||
	    renameat(d->dirfd, INVENTORY ".tmp", d->dirfd, INVENTORY)) {
		cr_perr("cannot write %s/%s", d->path, INVENTORY);
		goto out_buf;
	}
	rc = 0;
out_buf:
	free(buf);
out:
	free(entries);
	free(ptrs);
	return rc;
}

static bool safe_name(const char *name)
{
	size_t n = strlen(name);

	if (!n || n > 255 || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	return true;
}

Inventory *img_read_inventory(struct img_dir *d)
{
	Inventory *inv;
	uint32_t crc;

	inv = unpack_checked(d, INVENTORY, IMAGE_KIND__IMG_INVENTORY,
			     &inventory__descriptor, &crc);
	if (!inv) {
		struct stat st;

		if (stat_image_file(d, INVENTORY, &st) && errno == ENOENT) {
			cr_err_reset();
			cr_err("%s is not a cryo image (no %s; an interrupted dump leaves none)",
			       d->path, INVENTORY);
		}
		return NULL;
	}
	if (inv->format_major > FORMAT_MAJOR) {
		cr_err("%s: image format %u is newer than this cryo reads (up to %u)",
		       d->path, inv->format_major, FORMAT_MAJOR);
		goto fail;
	}
	if (inv->n_files > IMG_MAX_FILES) {
		cr_err("%s: inventory lists too many files (%zu)", d->path, inv->n_files);
		goto fail;
	}
	for (size_t i = 0; i < inv->n_files; i++) {
		ImageFileEntry *e = inv->files[i];
		struct stat st;

		if (!safe_name(e->name)) {
			cr_err("%s: inventory names an invalid file '%.64s'", d->path, e->name);
			goto fail;
		}
		if (stat_image_file(d, e->name, &st)) {
			cr_perr("%s/%s is missing", d->path, e->name);
			goto fail;
		}
		if (S_ISLNK(st.st_mode)) {
			cr_err("%s/%s is a symbolic link; cryo does not follow links there",
			       d->path, e->name);
			goto fail;
		}
		if (!S_ISREG(st.st_mode)) {
			cr_err("%s/%s is not a regular file", d->path, e->name);
			goto fail;
		}
		if ((uint64_t)st.st_size != e->size) {
			cr_err("%s/%s has %llu bytes, the inventory says %llu (truncated or "
			       "damaged)", d->path, e->name, (unsigned long long)st.st_size,
			       (unsigned long long)e->size);
			goto fail;
		}
		if (add_record(d, e->name, e->size, e->crc32c))
			goto fail;
	}
	return inv;
fail:
	inventory__free_unpacked(inv, NULL);
	return NULL;
}
