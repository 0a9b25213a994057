/* CRC-32C with the SSE4.2 crc32 instruction where the CPU has it, a table otherwise. */
#include <cpuid.h>
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

__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
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
