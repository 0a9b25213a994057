/* CRC-32C with the SSE4.2 crc32 instruction where the CPU has it, a table otherwise. */
#include <cpuid.h>
#include <pthread.h>
#include <string.h>

#include "crc32c.h"

static uint32_t table[256];
static int use_hw = -1;

static void init_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78 : c >> 1;
		table[i] = c;
	}
}

static uint32_t crc_sw(uint32_t crc, const unsigned char *p, size_t len)
{
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

/* Three independent streams of STREAM bytes run in parallel (hiding the crc32
 * instruction's latency) and are combined: for the raw CRC register,
 * crc(A||B, r) = shift(crc(A, r), |B|) ^ crc(B, 0), and shifting by STREAM bytes is
 * linear, so four 256-entry tables do it. */
#define STREAM 4096

static uint32_t shift_table[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

__attribute__((target("sse4.2")))
static uint32_t raw_zeros(uint32_t c, size_t n)
{
	uint64_t v = c;

	for (size_t i = 0; i < n; i += 8)
		v = __builtin_ia32_crc32di(v, 0);
	return (uint32_t)v;
}

static void init_shift(void)
{
	uint32_t bit[32];

	for (int i = 0; i < 32; i++)
		bit[i] = raw_zeros(1u << i, STREAM);
	for (int k = 0; k < 4; k++)
		for (int b = 0; b < 256; b++) {
			uint32_t v = 0;

			for (int i = 0; i < 8; i++)
				if (b & (1 << i))
					v ^= bit[8 * k + i];
			shift_table[k][b] = v;
		}
}

static uint32_t shift_stream(uint32_t c)
{
	return shift_table[0][c & 0xff] ^ shift_table[1][(c >> 8) & 0xff] ^
	       shift_table[2][(c >> 16) & 0xff] ^ shift_table[3][c >> 24];
}

__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	if (len >= 3 * STREAM)
		pthread_once(&shift_once, init_shift);
	while (len >= 3 * STREAM) {
		uint64_t c1 = 0, c2 = 0;
		const unsigned char *q1 = p + STREAM, *q2 = p + 2 * STREAM;

		for (size_t i = 0; i < STREAM; i += 8) {
			uint64_t a, b, d;

			memcpy(&a, p + i, 8);
			memcpy(&b, q1 + i, 8);
			memcpy(&d, q2 + i, 8);
			c = __builtin_ia32_crc32di(c, a);
			c1 = __builtin_ia32_crc32di(c1, b);
			c2 = __builtin_ia32_crc32di(c2, d);
		}
		c = shift_stream(shift_stream((uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
		p += 3 * STREAM;
		len -= 3 * STREAM;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (use_hw < 0) {
		unsigned int a, b, c, d;

		init_table();
		use_hw = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2);
	}
	crc = ~crc;
	crc = use_hw ? crc_hw(crc, buf, len) : crc_sw(crc, buf, len);
	return ~crc;
}
