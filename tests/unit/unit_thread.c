/* Unit tests of the pure per-thread helpers (src/thread.h): rseq critical-section
 * membership at its boundaries, and the register <-> image conversion. */
#include <stdint.h>

#include "thread.h"
#include "unit.h"

struct cs_case {
	uint64_t ip, start, len;
	int in;
};

static const struct cs_case cs_cases[] = {
	{ 0x1000, 0x1000, 0x10, 1 },		/* first byte */
	{ 0x100f, 0x1000, 0x10, 1 },		/* last byte */
	{ 0x1010, 0x1000, 0x10, 0 },		/* one past the end (post-commit ip) */
	{ 0x0fff, 0x1000, 0x10, 0 },		/* one below the start */
	{ 0x0, 0x1000, 0x10, 0 },
	{ 0x1008, 0x1000, 0x10, 1 },
	{ 0x1000, 0x1000, 0, 0 },		/* empty section */
	{ 0x1000, 0x1000, 1, 1 },
	{ 0x1001, 0x1000, 1, 0 },
	{ UINT64_MAX, 0x1000, 0x10, 0 },
	{ 0x0fff, 0x1000, UINT64_MAX, 0 },	/* below start, even with a huge length */
	{ UINT64_MAX - 1, UINT64_MAX - 1, 1, 1 },	/* at the top of the address space */
	{ UINT64_MAX, UINT64_MAX - 1, 1, 0 },
	{ 0, 0, 1, 1 },
	{ 0x7ffff7a00100, 0x7ffff7a00000, 0x200, 1 },
	{ 0x7ffff79fff00, 0x7ffff7a00000, 0x200, 0 },
};

static void test_rseq(void)
{
	for (size_t i = 0; i < sizeof(cs_cases) / sizeof(cs_cases[0]); i++) {
		const struct cs_case *c = &cs_cases[i];
		int got = rseq_ip_in_cs(c->ip, c->start, c->len);

		unit_case();
		CHECK(!!got == c->in, "ip 0x%lx in [0x%lx, +0x%lx): %d, want %d",
		      (unsigned long)c->ip, (unsigned long)c->start, (unsigned long)c->len, got,
		      c->in);
	}
}

static void test_regs_roundtrip(void)
{
	struct user_regs_struct r, back;
	uint64_t *w = (uint64_t *)&r;
	GpRegs pb = GP_REGS__INIT;

	unit_case();
	for (size_t i = 0; i < sizeof(r) / sizeof(*w); i++)
		w[i] = 0x0101010101010101ULL * (i + 1);
	regs_to_pb(&r, &pb);
	memset(&back, 0, sizeof(back));
	regs_from_pb(&pb, &back);
	CHECK(pb.rip == r.rip && pb.orig_rax == r.orig_rax && pb.fs_base == r.fs_base &&
	      pb.gs == r.gs, "regs_to_pb fields");
	CHECK(!memcmp(&r, &back, sizeof(r)), "registers survive the round trip");
}

int main(void)
{
	test_rseq();
	test_regs_roundtrip();
	return unit_done("unit_thread");
}
