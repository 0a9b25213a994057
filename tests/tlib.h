/* Test-program side of the harness protocol: a test builds its state, calls
 * tl_ready() (prints READY), blocks in tl_wait_go() until the harness sends SIGUSR1
 * after the dump/restore, then verifies the state from inside and exits 0 (pass) or
 * non-zero with a FAIL line. */
#ifndef TLIB_H
#define TLIB_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern volatile int tl_go;

/* Install the go handler (SIGUSR1, SA_RESTART). Call first. */
void tl_init(void);
void tl_ready(void);
/* First call of every other thread: SIGUSR1 is the main thread's (it sleeps for it in
 * sigsuspend; a thread that takes it instead would leave it asleep). */
void tl_thread_start(void);
/* Block (sigsuspend) until SIGUSR1 arrived. */
void tl_wait_go(void);
__attribute__((noreturn, format(printf, 1, 2))) void tl_fail(const char *fmt, ...);
__attribute__((noreturn)) void tl_pass(void);
#define TL_CHECK(cond, ...) do { if (!(cond)) tl_fail(__VA_ARGS__); } while (0)

/* A deterministic byte pattern for memory checks. */
static inline uint8_t tl_pattern(uint64_t i, uint64_t seed)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ULL ^ seed;

	x ^= x >> 29;
	return (uint8_t)(x ^ (x >> 17));
}
void tl_fill(void *p, size_t len, uint64_t seed);
/* Returns the offset of the first mismatch or -1. */
long tl_verify(const void *p, size_t len, uint64_t seed);
double tl_now(void);	/* CLOCK_MONOTONIC seconds */
/* A packet-mode pty master: len data bytes into out, in as many packets as they come
 * (each read one packet: TIOCPKT_DATA, then bytes). */
void tl_read_packets(int m, char *out, size_t len);
/* Run fn(up) in a process outside the tree (its parent ends at once: the harness
 * adopts it) and in a session of its own, ended by SIGALRM after 120 s at the latest;
 * returns once fn wrote a byte to `up` (it is ready) and closed it. Start it before
 * making what the tree must hold alone: it gets a copy of every fd. */
void tl_outside(void (*fn)(int up));
/* For fn: say it is ready. */
void tl_outside_up(int up);

#endif
