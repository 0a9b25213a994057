/* The image directory: metadata files (header + checksummed protobuf message), raw
 * page files checksummed in chunks, and the inventory that seals an image. */
#ifndef CRYO_IMAGE_H
#define CRYO_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "cryo.pb-c.h"

#define FORMAT_MAJOR 2
#define FORMAT_MINOR 0
#define IMG_MAGIC 0x4f595243u		/* "CRYO" little endian */
#define IMG_HDR_SIZE 16
/* The largest metadata file written or accepted. Socket queues live in the file table:
 * 50 TCP connections with full 6 MiB receive queues make about 300 MiB. A file read is
 * never larger than the file on disk, so the bound only caps a real file's size. */
#define IMG_MAX_META (1024u << 20)
#define IMG_CHUNK_SIZE (1u << 20)	/* checksum granularity of raw files */
#define IMG_MAX_FILES 4096

struct img_file_rec {
	char *name;
	uint64_t size;
	uint32_t crc;
};

struct stream_out;

/* restore --stream: a file of the image, read from the stream into a memfd. */
struct img_mem_file {
	char *name;
	int fd;
};

/* An image directory on disk; or written as a stream (dump --stream, no dirfd); or
 * with its raw files sent to the page server (out_raw_only); or read from a stream
 * into memory (in_memory: every file a sealed memfd). */
struct img_dir {
	int dirfd;
	char *path;
	bool writing;
	bool created;			/* dump made the directory: a failure removes it */
	/* Files written so far (dump) or listed by the inventory (restore). */
	struct img_file_rec *files;
	size_t nr_files, cap_files;
	struct stream_out *out;		/* where the files go instead of dirfd */
	bool out_raw_only;		/* only the raw (page) files go to out */
	bool in_memory;
	struct img_mem_file *mem;
	size_t nr_mem, cap_mem;
};

int img_dir_create(struct img_dir *d, const char *path);
int img_dir_open(struct img_dir *d, const char *path);
/* dump --stream: an image written to `out` (already started) as it is made. */
int img_dir_stream(struct img_dir *d, struct stream_out *out);
/* restore --stream: read a whole stream from fd into memory (`what` names it in
 * errors); the image is then read as from a directory. */
int img_dir_open_stream(struct img_dir *d, int fd, const char *what);
/* Close; when writing and !keep, remove every file written. */
void img_dir_close(struct img_dir *d, bool keep);

/* Pack and write one message as `name`. */
int img_write_msg(struct img_dir *d, const char *name, uint16_t kind,
		  const ProtobufCMessage *msg);
/* Read, check and unpack `name`; NULL on error (recorded). Free with
 * protobuf_c_message_free_unpacked. */
void *img_read_msg(struct img_dir *d, const char *name, uint16_t kind,
		   const ProtobufCMessageDescriptor *desc);

/* A raw data file being written: data goes out in large writes, checksummed per
 * IMG_CHUNK_SIZE chunk. */
struct raw_writer {
	struct img_dir *dir;
	char *name;
	int fd;
	struct stream_out *out;		/* the data goes into this stream instead of fd */
	uint64_t size;
	uint32_t *crcs;
	size_t nr_crcs, cap_crcs;
	uint32_t cur_crc;		/* crc of the partial last chunk */
	uint32_t file_crc;		/* crc of the whole file */
	bool crcs_done;			/* raw_set_checksums: crcs is complete */
};

int raw_open(struct raw_writer *w, struct img_dir *d, const char *name);

/* Asynchronous writing: a thread checksums and writes each filled buffer while the
 * caller fills the next one. */
#define RAW_ASYNC_BUFS 4
#define RAW_ASYNC_BUF_SIZE (4u << 20)

struct raw_async {
	struct raw_writer *w;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint8_t *bufs[RAW_ASYNC_BUFS];
	size_t len[RAW_ASYNC_BUFS];
	unsigned head, tail;		/* filled buffers: [tail, head) */
	bool done;
	int error;
	char error_msg[512];
};

int raw_async_start(struct raw_async *a, struct raw_writer *w);
/* The buffer to fill next (waits until the thread has written it out). */
uint8_t *raw_async_buffer(struct raw_async *a);
/* Hand the buffer from raw_async_buffer over, holding len bytes. */
int raw_async_submit(struct raw_async *a, size_t len);
/* Wait for everything to be written; -1 if anything failed (error recorded). */
int raw_async_finish(struct raw_async *a);
int raw_write(struct raw_writer *w, const void *buf, size_t len);
/* The file was written by other means (pwrite at offsets): its size and all its
 * chunk checksums (w takes crcs). */
void raw_set_checksums(struct raw_writer *w, uint32_t *crcs, size_t nr, uint64_t size);
/* Finish: returns 0 and leaves crcs for the caller to store (owned by w). */
int raw_close(struct raw_writer *w);
void raw_free(struct raw_writer *w);

/* Open a raw file for reading, checking its size against the inventory. */
int img_open_raw(struct img_dir *d, const char *name, uint64_t expect_size);
/* Verify a raw file against its chunk checksums (reads the whole file). */
int img_verify_raw(struct img_dir *d, const char *name, int fd, uint64_t size,
		   uint32_t chunk_size, const uint32_t *crcs, size_t nr_crcs);
/* The same for the chunks marked in want only (the list's checksum is always checked). */
int img_verify_chunks(struct img_dir *d, const char *name, int fd, uint64_t size,
		      uint32_t chunk_size, const uint32_t *crcs, size_t nr_crcs,
		      const bool *want);

/* Write the inventory (listing every file written) atomically: the image exists
 * from this moment on. */
int img_write_inventory(struct img_dir *d, Inventory *inv);
/* Read and check the inventory: format version, every listed file present. */
Inventory *img_read_inventory(struct img_dir *d);

/* Check the header of a metadata buffer and return its payload (pure, fuzzed). */
int img_check_buffer(const uint8_t *buf, size_t len, uint16_t kind, const char *name,
		     const uint8_t **payload, size_t *payload_len);

#endif
