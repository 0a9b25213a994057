/* Page file bytes used in place through a mapping (page_map.h). A SIGBUS while a
 * thread checksums them is turned into that checksum's failure. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "crc32c.h"
#include "image.h"
#include "log.h"
#include "page_map.h"
#include "sys.h"

static __thread sigjmp_buf *bus_guard;
static pthread_once_t bus_once = PTHREAD_ONCE_INIT;
static struct sigaction bus_before;

/* A SIGBUS in a guarded check ends that check; any other is as it was before. */
static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	if (bus_guard)
		siglongjmp(*bus_guard, 1);
	sigaction(SIGBUS, &bus_before, NULL);	/* the faulting access runs again */
}

static void bus_install(void)
{
	struct sigaction sa = { .sa_sigaction = on_bus, .sa_flags = SA_SIGINFO | SA_NODEFER };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &bus_before);
}

int page_map_open(struct page_src *src)
{
	void *m;

	if (src->map || !src->bytes)
		return 0;
	m = mmap(NULL, src->bytes, PROT_READ, MAP_SHARED, src->fd, 0);
	if (m == MAP_FAILED)
		return cr_perr("cannot map %s", src->pm->pages_file);
	src->map = m;
	return 0;
}

void page_map_close(struct page_src *src)
{
	if (src->map)
		munmap((void *)src->map, src->bytes);
	src->map = NULL;
}

int page_map_crc(const uint8_t *at, size_t len, uint32_t *crc)
{
	sigjmp_buf jb;

	pthread_once(&bus_once, bus_install);
	if (sigsetjmp(jb, 0)) {
		bus_guard = NULL;
		return -1;
	}
	bus_guard = &jb;
	*crc = crc32c(0, at, len);
	bus_guard = NULL;
	return 0;
}

ssize_t page_chunk_len(const struct page_src *src, uint64_t k)
{
	const PageMap *pm = src->pm;
	uint64_t off = k * pm->chunk_size;

	if (pm->chunk_size != IMG_CHUNK_SIZE || k >= pm->n_chunk_crc32c || off >= src->bytes)
		return -1;
	return CR_MIN(pm->chunk_size, src->bytes - off);
}

ssize_t page_map_chunk(const struct page_src *src, uint64_t k, const uint8_t **data)
{
	const PageMap *pm = src->pm;
	uint64_t off = k * pm->chunk_size;
	ssize_t len = page_chunk_len(src, k);
	uint32_t crc;

	if (!src->map || len < 0)
		return -1;
	/* Its page tables made in one call, not a fault per 16 pages; a kernel before 5.14
	 * (EINVAL) takes the faults. */
	if (madvise((void *)(src->map + off), len, MADV_POPULATE_READ) && errno != EINVAL)
		return -1;
	if (page_map_crc(src->map + off, len, &crc) || crc != pm->chunk_crc32c[k])
		return -1;
	*data = src->map + off;
	return len;
}
