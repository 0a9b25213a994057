/* The image stream (docs/STREAM.md): an image as one byte stream of checksummed
 * records, written by dump --stream and to the page server, read back by restore
 * --stream and by the page server. */
#ifndef CRYO_STREAM_H
#define CRYO_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STREAM_MAGIC "CRYOSTRM"
#define STREAM_VERSION 1
#define STREAM_HDR_SIZE 16		/* the stream's header, and each record's */
#define STREAM_MAX_DATA (1u << 20)	/* the most bytes of one data record */
#define STREAM_MAX_MSG 4096		/* the most bytes of any other record */

enum stream_rec {
	STREAM_FILE = 1,		/* a file begins: its name */
	STREAM_DATA = 2,		/* the next bytes of the file begun */
	STREAM_FILE_END = 3,		/* the file is whole: u64 size, u32 checksum */
	STREAM_END = 4,			/* the image is whole: u64 files, u64 bytes */
	STREAM_ABORT = 5,		/* the dump failed: its error line */
	STREAM_ACK = 6,			/* page server to dump: every file is stored */
	STREAM_NAK = 7,			/* page server to dump: storing failed, why */
};

/* A stream being written. */
struct stream_out {
	int fd;
	bool sock;			/* send() without SIGPIPE */
	char what[128];			/* "stdout", "the page server 127.0.0.1:4000" */
	uint64_t files, bytes;
	bool in_file;
	bool broken;			/* a write failed: nothing more goes out */
};

/* Write the stream's header. */
int stream_out_start(struct stream_out *s, int fd, bool sock, const char *what);
int stream_file_begin(struct stream_out *s, const char *name);
int stream_file_data(struct stream_out *s, const void *buf, size_t len);
/* crc: the checksum the inventory records for the file (raw files: of its chunk
 * checksums; metadata: of its payload). */
int stream_file_end(struct stream_out *s, uint64_t size, uint32_t crc);
/* The end record: the image is complete. */
int stream_finish(struct stream_out *s);
/* Best effort: tell the reader the dump failed, and why. */
void stream_abort(struct stream_out *s, const char *why);
/* A connection's fd is closed (a caller's stdout is not). */
void stream_out_close(struct stream_out *s);
/* Page server: wait for its answer to the end record. */
int stream_wait_ack(struct stream_out *s);

/* Where a stream read back puts its files. */
struct stream_sink {
	void *arg;
	/* A new file: a handle for it, or NULL (error recorded). */
	void *(*open)(void *arg, const char *name);
	int (*write)(void *arg, void *file, const void *buf, size_t len);
	/* The file is whole (size and crc as sent); 0, or -1 with the error recorded. */
	int (*close)(void *arg, void *file, uint64_t size, uint32_t crc);
	/* A file left unfinished by an error. */
	void (*drop)(void *arg, void *file);
};

/* Read a whole stream from fd into sink, up to its end record (to_eof: and then to
 * the end of the input, which the dump closes only once it has succeeded); every
 * record's checksum is checked. -1 with one line recorded (truncated, damaged,
 * aborted). */
int stream_receive(int fd, const char *what, const struct stream_sink *sink, bool to_eof);
/* Page server: answer the dump (ACK, or NAK with the error). */
int stream_reply(int fd, bool ok, const char *why);

/* Pure checks, unit-tested: the stream header, and a record header (its type and
 * payload length within bounds). */
int stream_check_start(const uint8_t *hdr, const char *what);
int stream_check_record(const uint8_t *hdr, const char *what, uint64_t at, uint32_t *type,
			uint32_t *len, uint32_t *crc);
/* A record header for type/payload (pure). */
void stream_make_record(uint8_t *hdr, uint32_t type, const void *payload, uint32_t len);
void stream_make_start(uint8_t *hdr);

#endif
