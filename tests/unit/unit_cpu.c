/* Unit tests of the CPU compatibility check (src/cpu.h): missing features and XSAVE
 * components named, supersets accepted, output buffers never overrun. */
#include <stdlib.h>

#include "cpu.h"
#include "cryo.h"
#include "unit.h"

/* A Skylake-server-like CPU: SSE..AVX-512, XCR0 with the AVX-512 components. */
static struct cpu_info server(void)
{
	struct cpu_info c;

	memset(&c, 0, sizeof(c));
	strcpy(c.vendor, "GenuineIntel");
	c.words[CPUW_1_ECX] = 0xfffa3203;
	c.words[CPUW_1_EDX] = 0x1f8bfbff;
	c.words[CPUW_7_EBX] = 0xf1bf07ab;
	c.words[CPUW_7_ECX] = 0x00415f5e;
	c.words[CPUW_7_EDX] = 0x20000010;
	c.words[CPUW_X1_ECX] = 0x00000121;
	c.words[CPUW_X1_EDX] = 0x2c100800;
	c.words[CPUW_D_1_EAX] = 0xf;
	c.xcr0 = 0xe7;
	c.xsave_size = 2688;
	return c;
}

static int missing(const struct cpu_info *need, const struct cpu_info *have, char *buf,
		   size_t len)
{
	return cpu_missing(need, have, buf, len);
}

static void test_same_and_superset(void)
{
	struct cpu_info a = server(), b = server();
	char buf[1024];

	unit_case();
	strcpy(buf, "junk");
	CHECK(missing(&a, &b, buf, sizeof(buf)) == 0 && !buf[0], "same CPU: '%s'", buf);

	unit_case();
	for (int w = 0; w < CPU_NR_WORDS; w++)
		b.words[w] = 0xffffffff;
	b.xcr0 = ~0ULL;
	CHECK(missing(&a, &b, buf, sizeof(buf)) == 0 && !buf[0], "superset: '%s'", buf);

	unit_case();
	memset(&a.words, 0, sizeof(a.words));
	a.xcr0 = 0;
	b = server();
	CHECK(missing(&a, &b, buf, sizeof(buf)) == 0, "empty need");

	/* Bits cpu.c does not list are not compared (hypervisor bit, OSXSAVE, ...). */
	unit_case();
	a = server();
	b = server();
	a.words[CPUW_1_ECX] |= 1u << 31 | 1u << 27;
	b.words[CPUW_1_ECX] &= ~(1u << 31 | 1u << 27);
	a.xcr0 |= 1ULL << 62;
	CHECK(missing(&a, &b, buf, sizeof(buf)) == 0, "unlisted bits compared: '%s'", buf);

	/* This machine against itself. */
	unit_case();
	cpu_read(&a);
	CHECK(missing(&a, &a, buf, sizeof(buf)) == 0, "own CPU: '%s'", buf);
	CHECK(a.vendor[0] && a.words[CPUW_1_EDX] & (1u << 26), "own CPU has sse2");
}

struct miss_case {
	const char *what;
	int word;
	uint32_t bit;
	const char *name;
};

static const struct miss_case one_missing[] = {
	{ "avx512f", CPUW_7_EBX, 16, "avx512f" },
	{ "avx2", CPUW_7_EBX, 5, "avx2" },
	{ "avx", CPUW_1_ECX, 28, "avx" },
	{ "sse4_2", CPUW_1_ECX, 20, "sse4_2" },
	{ "sse2", CPUW_1_EDX, 26, "sse2" },
	{ "vaes", CPUW_7_ECX, 9, "vaes" },
	{ "fsrm", CPUW_7_EDX, 4, "fsrm" },
	{ "lahf_lm", CPUW_X1_ECX, 0, "lahf_lm" },
	{ "rdtscp", CPUW_X1_EDX, 27, "rdtscp" },
	{ "xsaveopt", CPUW_D_1_EAX, 0, "xsaveopt" },
	{ "avx_vnni", CPUW_7_1_EAX, 4, "avx_vnni" },
};

static void test_one_missing(void)
{
	for (size_t i = 0; i < sizeof(one_missing) / sizeof(one_missing[0]); i++) {
		const struct miss_case *c = &one_missing[i];
		struct cpu_info need = server(), have = server();
		char buf[256];
		int n;

		unit_case();
		need.words[c->word] |= 1u << c->bit;
		have.words[c->word] &= ~(1u << c->bit);
		n = missing(&need, &have, buf, sizeof(buf));
		CHECK(n == 1 && !strcmp(buf, c->name), "%s missing: %d '%s'", c->what, n, buf);
	}
}

static void test_xcr0(void)
{
	static const struct {
		int bit;
		const char *name;
	} comps[] = {
		{ 1, "sse state" }, { 2, "avx state (ymm)" }, { 5, "avx512 state (opmask)" },
		{ 6, "avx512 state (zmm_hi256)" }, { 7, "avx512 state (hi16_zmm)" },
		{ 9, "pkru state" }, { 17, "amx state (tilecfg)" }, { 18, "amx state (tiledata)" },
	};
	char buf[512];

	for (size_t i = 0; i < sizeof(comps) / sizeof(comps[0]); i++) {
		struct cpu_info need = server(), have = server();
		int n;

		unit_case();
		need.xcr0 |= 1ULL << comps[i].bit;
		have.xcr0 = need.xcr0 & ~(1ULL << comps[i].bit);
		n = missing(&need, &have, buf, sizeof(buf));
		CHECK(n == 1 && !strcmp(buf, comps[i].name), "xcr0 bit %d: %d '%s'", comps[i].bit,
		      n, buf);
	}
	/* The OS enabled AVX-512 at dump, not here, though the CPU has the instructions. */
	{
		struct cpu_info need = server(), have = server();
		int n;

		unit_case();
		have.xcr0 = 0x7;
		n = missing(&need, &have, buf, sizeof(buf));
		CHECK(n == 3 && !strcmp(buf, "avx512 state (opmask), avx512 state (zmm_hi256), "
					"avx512 state (hi16_zmm)"), "avx512 xcr0: %d '%s'", n, buf);
	}
}

/* An AVX-512 machine to an AVX2-only machine: every missing feature, in order. */
static void test_many_missing(void)
{
	struct cpu_info need = server(), have = server();
	char buf[1024];
	int n;

	unit_case();
	have.words[CPUW_7_EBX] &= ~(1u << 16 | 1u << 17 | 1u << 28 | 1u << 30 | 1u << 31);
	have.xcr0 = 0x7;
	n = missing(&need, &have, buf, sizeof(buf));
	CHECK(n == 8, "avx2-only: %d missing: '%s'", n, buf);
	CHECK(!strcmp(buf, "avx512f, avx512dq, avx512cd, avx512bw, avx512vl, avx512 state "
		      "(opmask), avx512 state (zmm_hi256), avx512 state (hi16_zmm)"),
	      "avx2-only list: '%s'", buf);

	/* Small buffers: the count stays right, the text is cut and terminated. */
	for (size_t len = 0; len < 40; len++) {
		char *small = malloc(len ? len : 1);

		unit_case();
		if (len)
			memset(small, 'x', len);
		n = missing(&need, &have, len ? small : NULL, len);
		CHECK(n == 8, "buffer %zu: count %d", len, n);
		if (len)
			CHECK(memchr(small, 0, len) && !strncmp(small, buf, strlen(small)),
			      "buffer %zu: '%.*s'", len, (int)len, small);
		free(small);
	}
	/* Nothing in common at all. */
	unit_case();
	memset(&have, 0, sizeof(have));
	n = missing(&need, &have, buf, sizeof(buf));
	CHECK(n > 30, "nothing in common: only %d missing", n);
	CHECK(strlen(buf) < sizeof(buf), "nothing in common: terminated");
}

static void test_pb(void)
{
	struct cpu_info a = server(), b;
	uint32_t words[CPU_NR_WORDS + 3];
	XstateComponent comps[CPU_MAX_XCOMP], *cptrs[CPU_MAX_XCOMP];
	CpuInfo pb;
	char buf[64];

	unit_case();
	strcpy(a.model, "Test CPU @ 1.00GHz");
	cpu_to_pb(&a, &pb, words, comps, cptrs);
	CHECK(pb.n_words == CPU_NR_WORDS && pb.xcr0 == a.xcr0, "cpu_to_pb");
	CHECK(!cpu_from_pb(&pb, &b) && !memcmp(&a, &b, sizeof(a)), "pb round trip");

	/* Older images: fewer words; newer: more. */
	unit_case();
	pb.n_words = 2;
	CHECK(!cpu_from_pb(&pb, &b) && b.words[0] == a.words[0] && b.words[1] == a.words[1] &&
	      !b.words[2] && !b.words[CPU_NR_WORDS - 1], "fewer words");
	CHECK(missing(&b, &a, buf, sizeof(buf)) == 0, "fewer words: compatible");
	unit_case();
	words[CPU_NR_WORDS] = words[CPU_NR_WORDS + 1] = words[CPU_NR_WORDS + 2] = ~0u;
	pb.n_words = CPU_NR_WORDS + 3;
	CHECK(!cpu_from_pb(&pb, &b) && !memcmp(b.words, a.words, sizeof(a.words)), "more words");
	unit_case();
	pb.n_words = 0;
	pb.words = NULL;
	CHECK(!cpu_from_pb(&pb, &b) && !b.words[0], "no words");

	/* Long strings are cut. */
	unit_case();
	{
		char longs[200];

		memset(longs, 'v', sizeof(longs) - 1);
		longs[sizeof(longs) - 1] = 0;
		pb.vendor = longs;
		pb.model = longs;
		CHECK(!cpu_from_pb(&pb, &b) && strlen(b.vendor) == 12 && strlen(b.model) == 48,
		      "long vendor/model");
	}
}

static void test_feature_list(void)
{
	struct cpu_info c;
	char buf[2048], small[10];

	unit_case();
	memset(&c, 0, sizeof(c));
	c.words[CPUW_1_EDX] = 1u << 25 | 1u << 26;
	cpu_feature_list(&c, buf, sizeof(buf));
	CHECK(!strcmp(buf, "sse, sse2"), "feature list '%s'", buf);
	unit_case();
	c = server();
	cpu_feature_list(&c, buf, sizeof(buf));
	CHECK(strstr(buf, "avx512f") && strstr(buf, "sse4_2"), "server list '%s'", buf);
	cpu_feature_list(&c, small, sizeof(small));
	CHECK(strlen(small) < sizeof(small) && !strncmp(small, buf, strlen(small)),
	      "cut list '%s'", small);
}

/* An AVX-512 machine's xstate restored on an AVX2-only one and back. */
static void test_xstate_convert(void)
{
	struct cpu_info big, small;
	uint8_t src[2688], dst[832], back[2688];
	uint64_t bv;

	memset(&big, 0, sizeof(big));
	memset(&small, 0, sizeof(small));
	big.xcr0 = 0xe7;
	big.xcomp[2] = (struct xcomp){ 576, 256 };
	big.xcomp[5] = (struct xcomp){ 1088, 64 };
	big.xcomp[6] = (struct xcomp){ 1152, 512 };
	big.xcomp[7] = (struct xcomp){ 1664, 1024 };
	small.xcr0 = 0x7;
	small.xcomp[2] = (struct xcomp){ 576, 256 };
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 7 + 3);
	bv = 0xe7;
	memcpy(src + 512, &bv, 8);
	memset(src + 520, 0, 56);
	memset(dst, 0xaa, sizeof(dst));

	unit_case();
	CHECK(!cpu_xstate_convert(src, sizeof(src), &big, dst, sizeof(dst), &small),
	      "convert down");
	CHECK(!memcmp(dst, src, 464), "legacy x87/SSE area copied");
	CHECK(dst[464] == 0xaa && dst[511] == 0xaa, "this kernel's software bytes kept");
	memcpy(&bv, dst + 512, 8);
	CHECK(bv == 0x7, "header keeps only x87, SSE, AVX (0x%llx)", (unsigned long long)bv);
	CHECK(!memcmp(dst + 576, src + 576, 256), "AVX upper halves copied");

	unit_case();
	memset(back, 0, sizeof(back));
	CHECK(!cpu_xstate_convert(dst, sizeof(dst), &small, back, sizeof(back), &big),
	      "convert up");
	memcpy(&bv, back + 512, 8);
	CHECK(bv == 0x7, "nothing invented going up (0x%llx)", (unsigned long long)bv);
	CHECK(!memcmp(back + 576, src + 576, 256) && !back[1088], "AVX copied, AVX-512 empty");

	unit_case();
	big.xcomp[7] = (struct xcomp){ 2600, 1024 };
	CHECK(cpu_xstate_convert(src, sizeof(src), &big, back, sizeof(back), &big) == -1,
	      "a component outside the buffer is refused");
	cr_err_reset();
	CHECK(cpu_xstate_convert(src, 100, &big, back, sizeof(back), &big) == -1,
	      "a short buffer is refused");
	cr_err_reset();
}

/* Components recorded in an image: only bits 2..63, sane sizes and offsets. */
static void test_xstate_pb(void)
{
	static const struct {
		uint32_t bit, offset, size;
		int ok;
	} comps[] = {
		{ 2, 576, 256, 1 }, { 63, 1 << 20, 1 << 16, 1 }, { 0, 0, 160, 0 }, { 1, 160, 256, 0 },
		{ 64, 2688, 64, 0 }, { 0xffffffff, 0, 0, 0 }, { 5, 1088, (1 << 16) + 1, 0 },
		{ 5, (1 << 20) + 1, 64, 0 }, { 7, 0xffffffff, 0xffffffff, 0 },
	};
	struct cpu_info a = server(), b;

	for (size_t i = 0; i < sizeof(comps) / sizeof(comps[0]); i++) {
		uint32_t words[CPU_NR_WORDS];
		XstateComponent xc[CPU_MAX_XCOMP], *xp[CPU_MAX_XCOMP];
		XstateComponent c = XSTATE_COMPONENT__INIT, *cp = &c;
		CpuInfo pb;
		int rc;

		unit_case();
		cpu_to_pb(&a, &pb, words, xc, xp);
		c.bit = comps[i].bit;
		c.offset = comps[i].offset;
		c.size = comps[i].size;
		pb.n_xstate = 1;
		pb.xstate = &cp;
		rc = cpu_from_pb(&pb, &b);
		CHECK(rc == (comps[i].ok ? 0 : -1), "component bit %u offset %u size %u: %d",
		      comps[i].bit, comps[i].offset, comps[i].size, rc);
		if (!rc)
			CHECK(b.xcomp[c.bit].offset == c.offset && b.xcomp[c.bit].size == c.size,
			      "component bit %u kept", c.bit);
		else
			CHECK(err_has("xstate component"), "component error: %s", err_text());
	}
}

/* --cpu-cap lists: the reference's names, none alone, nothing else. */
static void test_cpu_cap(void)
{
	static const struct { const char *arg; int rc; bool check; } cases[] = {
		{ NULL, 0, true }, { "fpu", 0, true }, { "all", 0, true },
		{ "cpu,fpu,ins", 0, true }, { "none", 0, false }, { "none,none", 0, false },
		{ "", -1, false }, { "fpu,", -1, false }, { ",fpu", -1, false },
		{ "none,fpu", -1, false }, { "fp", -1, false }, { "fpux", -1, false },
		{ "nonex", -1, false }, { "NONE", -1, false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool check = !cases[i].check;
		int rc = cryo_parse_cpu_cap(cases[i].arg, &check);

		unit_case();
		CHECK(rc == cases[i].rc && (rc || check == cases[i].check), "--cpu-cap '%s': %d %d",
		      cases[i].arg ? cases[i].arg : "(none)", rc, check);
	}
}

int main(void)
{
	test_cpu_cap();
	test_xstate_convert();
	test_xstate_pb();
	test_same_and_superset();
	test_one_missing();
	test_xcr0();
	test_many_missing();
	test_pb();
	test_feature_list();
	return unit_done("unit_cpu");
}
