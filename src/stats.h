/* Per-phase times, pages per process, and the progress line of a dump or a restore
 * (src/stats.c). */
#ifndef CRYO_STATS_H
#define CRYO_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum stats_phase {
	/* dump */
	PH_SEIZE, PH_FROZEN, PH_MEM_SCAN, PH_PAGE_WRITE, PH_METADATA,
	/* restore */
	PH_READ_IMAGES, PH_WAIT_IDS, PH_CREATE, PH_VERIFY, PH_RELEASE,
	PH_COUNT
};

void stats_start(bool restore);
void stats_enter(enum stats_phase ph);
void stats_leave(enum stats_phase ph);
void stats_finish(void);
void stats_add_proc(pid_t pid, uint64_t pages, uint64_t bytes);

/* The figures of a restore made in another process (--pidns's init), moved to cryo's:
 * stats_pack gives them as bytes (malloc'd, *len set; NULL if out of memory),
 * stats_unpack takes such bytes as this process's figures (-1 if malformed). */
void *stats_pack(size_t *len);
int stats_unpack(const void *buf, size_t len);

/* The progress line (a terminal only, after a second): `todo` bytes of `what`. */
void stats_progress(const char *what, uint64_t todo);
void stats_progress_add(uint64_t bytes);
/* The progress line's count of bytes done so far. */
void stats_progress_set(uint64_t done);
/* Bytes come as what process pid reads (its /proc/PID/io rchar). */
void stats_progress_watch(pid_t pid, uint64_t todo);
/* Called from waits and loops: redraws the line when it is time. */
void stats_tick(void);

/* Pure, for the unit tests. */
void stats_human_bytes(uint64_t n, char *out, size_t len);
void stats_progress_text(const char *what, uint64_t done, uint64_t todo, double secs,
			 char *out, size_t len);

#endif
