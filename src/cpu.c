/* CPU identity and features: CPUID words and XCR0 at dump; at restore, the features
 * the dumping CPU had and this one lacks, by name. */
#include <cpuid.h>
#include <stdio.h>
#include <string.h>

#include "cpu.h"
#include "cryo.h"
#include "log.h"

#define CR_FEATURES (sizeof(features) / sizeof(features[0]))

struct feature {
	uint8_t word, bit;
	const char *name;
};

/* Features a user program may execute or depend on (names as in /proc/cpuinfo). */
static const struct feature features[] = {
	{ CPUW_1_ECX, 0, "pni" }, { CPUW_1_ECX, 1, "pclmulqdq" }, { CPUW_1_ECX, 9, "ssse3" },
	{ CPUW_1_ECX, 12, "fma" }, { CPUW_1_ECX, 13, "cx16" }, { CPUW_1_ECX, 19, "sse4_1" },
	{ CPUW_1_ECX, 20, "sse4_2" }, { CPUW_1_ECX, 22, "movbe" }, { CPUW_1_ECX, 23, "popcnt" },
	{ CPUW_1_ECX, 25, "aes" }, { CPUW_1_ECX, 26, "xsave" }, { CPUW_1_ECX, 28, "avx" },
	{ CPUW_1_ECX, 29, "f16c" }, { CPUW_1_ECX, 30, "rdrand" },
	{ CPUW_1_EDX, 0, "fpu" }, { CPUW_1_EDX, 8, "cx8" }, { CPUW_1_EDX, 15, "cmov" },
	{ CPUW_1_EDX, 19, "clflush" }, { CPUW_1_EDX, 23, "mmx" }, { CPUW_1_EDX, 24, "fxsr" },
	{ CPUW_1_EDX, 25, "sse" }, { CPUW_1_EDX, 26, "sse2" },
	{ CPUW_7_EBX, 0, "fsgsbase" }, { CPUW_7_EBX, 3, "bmi1" }, { CPUW_7_EBX, 4, "hle" },
	{ CPUW_7_EBX, 5, "avx2" }, { CPUW_7_EBX, 8, "bmi2" }, { CPUW_7_EBX, 9, "erms" },
	{ CPUW_7_EBX, 11, "rtm" }, { CPUW_7_EBX, 16, "avx512f" }, { CPUW_7_EBX, 17, "avx512dq" },
	{ CPUW_7_EBX, 18, "rdseed" }, { CPUW_7_EBX, 19, "adx" }, { CPUW_7_EBX, 21, "avx512ifma" },
	{ CPUW_7_EBX, 23, "clflushopt" }, { CPUW_7_EBX, 24, "clwb" }, { CPUW_7_EBX, 28, "avx512cd" },
	{ CPUW_7_EBX, 29, "sha_ni" }, { CPUW_7_EBX, 30, "avx512bw" }, { CPUW_7_EBX, 31, "avx512vl" },
	{ CPUW_7_ECX, 1, "avx512vbmi" }, { CPUW_7_ECX, 3, "pku" }, { CPUW_7_ECX, 5, "waitpkg" },
	{ CPUW_7_ECX, 6, "avx512_vbmi2" }, { CPUW_7_ECX, 8, "gfni" }, { CPUW_7_ECX, 9, "vaes" },
	{ CPUW_7_ECX, 10, "vpclmulqdq" }, { CPUW_7_ECX, 11, "avx512_vnni" },
	{ CPUW_7_ECX, 12, "avx512_bitalg" }, { CPUW_7_ECX, 14, "avx512_vpopcntdq" },
	{ CPUW_7_ECX, 22, "rdpid" }, { CPUW_7_ECX, 25, "cldemote" }, { CPUW_7_ECX, 27, "movdiri" },
	{ CPUW_7_ECX, 28, "movdir64b" },
	{ CPUW_7_EDX, 4, "fsrm" }, { CPUW_7_EDX, 8, "avx512_vp2intersect" },
	{ CPUW_7_EDX, 14, "serialize" }, { CPUW_7_EDX, 22, "amx_bf16" },
	{ CPUW_7_EDX, 23, "avx512_fp16" }, { CPUW_7_EDX, 24, "amx_tile" },
	{ CPUW_7_EDX, 25, "amx_int8" },
	{ CPUW_7_1_EAX, 4, "avx_vnni" }, { CPUW_7_1_EAX, 5, "avx512_bf16" },
	{ CPUW_7_1_EAX, 11, "fsrs" }, { CPUW_7_1_EAX, 12, "fsrc" },
	{ CPUW_X1_ECX, 0, "lahf_lm" }, { CPUW_X1_ECX, 5, "abm" }, { CPUW_X1_ECX, 6, "sse4a" },
	{ CPUW_X1_ECX, 8, "3dnowprefetch" }, { CPUW_X1_ECX, 11, "xop" }, { CPUW_X1_ECX, 16, "fma4" },
	{ CPUW_X1_ECX, 21, "tbm" },
	{ CPUW_X1_EDX, 27, "rdtscp" }, { CPUW_X1_EDX, 29, "lm" },
	{ CPUW_D_1_EAX, 0, "xsaveopt" }, { CPUW_D_1_EAX, 1, "xsavec" },
	{ CPUW_D_1_EAX, 2, "xgetbv1" },
};

/* XSAVE state components (XCR0 bits) a program's registers may live in. */
static const struct { uint8_t bit; const char *name; } xcomponents[] = {
	{ 0, "x87 state" }, { 1, "sse state" }, { 2, "avx state (ymm)" },
	{ 5, "avx512 state (opmask)" }, { 6, "avx512 state (zmm_hi256)" },
	{ 7, "avx512 state (hi16_zmm)" }, { 9, "pkru state" },
	{ 17, "amx state (tilecfg)" }, { 18, "amx state (tiledata)" },
};

static void cpuid_count(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}

static uint64_t read_xcr0(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

void cpu_read(struct cpu_info *ci)
{
	uint32_t r[4], max, maxext;

	memset(ci, 0, sizeof(*ci));
	cpuid_count(0, 0, r);
	max = r[0];
	memcpy(ci->vendor, &r[1], 4);
	memcpy(ci->vendor + 4, &r[3], 4);
	memcpy(ci->vendor + 8, &r[2], 4);
	cpuid_count(1, 0, r);
	ci->family = ((r[0] >> 8) & 0xf) + ((r[0] >> 20) & 0xff);
	ci->model_id = ((r[0] >> 4) & 0xf) | ((r[0] >> 12) & 0xf0);
	ci->words[CPUW_1_ECX] = r[2];
	ci->words[CPUW_1_EDX] = r[3];
	if (max >= 7) {
		cpuid_count(7, 0, r);
		ci->words[CPUW_7_EBX] = r[1];
		ci->words[CPUW_7_ECX] = r[2];
		ci->words[CPUW_7_EDX] = r[3];
		if (r[0] >= 1) {
			cpuid_count(7, 1, r);
			ci->words[CPUW_7_1_EAX] = r[0];
		}
	}
	if (max >= 0xd) {
		cpuid_count(0xd, 1, r);
		ci->words[CPUW_D_1_EAX] = r[0];
		cpuid_count(0xd, 0, r);
		ci->xsave_size = r[1];
	}
	if (ci->words[CPUW_1_ECX] & (1u << 27))	/* OSXSAVE */
		ci->xcr0 = read_xcr0();
	for (int i = 2; i < CPU_MAX_XCOMP && max >= 0xd; i++) {
		if (!(ci->xcr0 & (1ULL << i)))
			continue;
		cpuid_count(0xd, i, r);
		ci->xcomp[i].size = r[0];
		ci->xcomp[i].offset = r[1];
	}
	cpuid_count(0x80000000, 0, r);
	maxext = r[0];
	if (maxext >= 0x80000001) {
		cpuid_count(0x80000001, 0, r);
		ci->words[CPUW_X1_ECX] = r[2];
		ci->words[CPUW_X1_EDX] = r[3];
	}
	if (maxext >= 0x80000004) {
		for (uint32_t i = 0; i < 3; i++) {
			cpuid_count(0x80000002 + i, 0, r);
			memcpy(ci->model + 16 * i, r, 16);
		}
		ci->model[48] = 0;
	}
}

void cpu_to_pb(const struct cpu_info *ci, CpuInfo *pb, uint32_t *words,
	       XstateComponent *comps, XstateComponent **cptrs)
{
	size_t n = 0;

	cpu_info__init(pb);
	pb->vendor = (char *)ci->vendor;
	pb->model = (char *)ci->model;
	pb->family = ci->family;
	pb->model_id = ci->model_id;
	memcpy(words, ci->words, sizeof(ci->words));
	pb->n_words = CPU_NR_WORDS;
	pb->words = words;
	pb->xcr0 = ci->xcr0;
	pb->xsave_size = ci->xsave_size;
	for (int i = 2; i < CPU_MAX_XCOMP; i++) {
		if (!ci->xcomp[i].size)
			continue;
		xstate_component__init(&comps[n]);
		comps[n].bit = i;
		comps[n].offset = ci->xcomp[i].offset;
		comps[n].size = ci->xcomp[i].size;
		cptrs[n] = &comps[n];
		n++;
	}
	pb->n_xstate = n;
	pb->xstate = cptrs;
}

int cpu_from_pb(const CpuInfo *pb, struct cpu_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	snprintf(ci->vendor, sizeof(ci->vendor), "%s", pb->vendor);
	snprintf(ci->model, sizeof(ci->model), "%s", pb->model);
	ci->family = pb->family;
	ci->model_id = pb->model_id;
	/* Older images may have fewer words, newer ones more: compare what both know. */
	for (size_t i = 0; i < pb->n_words && i < CPU_NR_WORDS; i++)
		ci->words[i] = pb->words[i];
	ci->xcr0 = pb->xcr0;
	ci->xsave_size = pb->xsave_size;
	for (size_t i = 0; i < pb->n_xstate; i++) {
		const XstateComponent *c = pb->xstate[i];

		if (c->bit < 2 || c->bit >= CPU_MAX_XCOMP || c->size > 1 << 16 ||
		    c->offset > 1 << 20)
			return cr_err("image: invalid xstate component %u", c->bit);
		ci->xcomp[c->bit].offset = c->offset;
		ci->xcomp[c->bit].size = c->size;
	}
	return 0;
}

#define XSAVE_LEGACY 512
#define XSAVE_HDR 64
#define XSAVE_SW_BYTES 464		/* software-reserved tail of the legacy area */

int cpu_xstate_convert(const uint8_t *src, size_t src_len, const struct cpu_info *from,
		       uint8_t *dst, size_t dst_len, const struct cpu_info *to)
{
	uint64_t src_bv, bv = 0;

	if (src_len < XSAVE_LEGACY + XSAVE_HDR || dst_len < XSAVE_LEGACY + XSAVE_HDR)
		return cr_err("image: xstate too short (%zu bytes)", src_len);
	memcpy(&src_bv, src + XSAVE_LEGACY, 8);
	/* x87 and SSE registers; the kernel's software bytes stay this kernel's. */
	memcpy(dst, src, XSAVE_SW_BYTES);
	bv = src_bv & to->xcr0 & 3;
	for (int i = 2; i < CPU_MAX_XCOMP; i++) {
		const struct xcomp *a = &from->xcomp[i], *b = &to->xcomp[i];
		uint32_t n;

		if (!(src_bv & (1ULL << i)) || !(to->xcr0 & (1ULL << i)) || !b->size)
			continue;
		/* An image without a layout was saved on a CPU laid out like this one. */
		if (!a->size)
			a = b;
		n = a->size < b->size ? a->size : b->size;
		if ((uint64_t)a->offset + n > src_len || (uint64_t)b->offset + n > dst_len)
			return cr_err("image: xstate component %d lies outside the buffer", i);
		memcpy(dst + b->offset, src + a->offset, n);
		bv |= 1ULL << i;
	}
	memset(dst + XSAVE_LEGACY, 0, XSAVE_HDR);
	memcpy(dst + XSAVE_LEGACY, &bv, 8);
	return 0;
}

static void append(char *buf, size_t len, size_t *used, const char *name)
{
	int n;

	if (*used >= len)
		return;
	n = snprintf(buf + *used, len - *used, "%s%s", *used ? ", " : "", name);
	if (n > 0)
		*used += n;
}

int cpu_missing(const struct cpu_info *need, const struct cpu_info *have, char *buf,
		size_t len)
{
	size_t used = 0;
	int missing = 0;

	if (len)
		buf[0] = 0;
	for (size_t i = 0; i < CR_FEATURES; i++) {
		const struct feature *f = &features[i];
		uint32_t m = 1u << f->bit;

		if ((need->words[f->word] & m) && !(have->words[f->word] & m)) {
			append(buf, len, &used, f->name);
			missing++;
		}
	}
	for (size_t i = 0; i < sizeof(xcomponents) / sizeof(xcomponents[0]); i++) {
		uint64_t m = 1ULL << xcomponents[i].bit;

		if ((need->xcr0 & m) && !(have->xcr0 & m)) {
			append(buf, len, &used, xcomponents[i].name);
			missing++;
		}
	}
	return missing;
}

void cpu_feature_list(const struct cpu_info *ci, char *buf, size_t len)
{
	size_t used = 0;

	if (len)
		buf[0] = 0;
	for (size_t i = 0; i < CR_FEATURES; i++)
		if (ci->words[features[i].word] & (1u << features[i].bit))
			append(buf, len, &used, features[i].name);
}

int cryo_parse_cpu_cap(const char *arg, bool *check)
{
	static const char *const caps[] = { "all", "cpu", "fpu", "ins" };
	bool none = false, other = false;
	const char *p = arg ? arg : "fpu";

	while (*p) {
		size_t len = strcspn(p, ",");
		bool known = len == 4 && !strncmp(p, "none", 4);

		none |= known;
		for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]) && !known; i++)
			if (len == strlen(caps[i]) && !strncmp(p, caps[i], len))
				known = other = true;
		if (!known)
			return -1;
		p += len;
		if (*p == ',' && !*++p)
			return -1;
	}
	if (p == arg || (none && other))
		return -1;
	*check = !none;
	return 0;
}
