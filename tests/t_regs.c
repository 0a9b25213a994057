/* Registers across dump and restore: general registers that survive a syscall, the
 * x87 stack and control word, MXCSR, xmm/ymm/zmm, opmasks (the probe in
 * t_regs_probe.S waits in pause() between loading and storing them), and fs_base.
 * Built with REGS_SPIN (t_regs_spin.c), the probe spins in user mode instead and
 * all 16 general registers are checked. */
#include <asm/prctl.h>
#include <float.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "go_early.h"
#include "t_regs.h"
#include "tlib.h"

#ifndef REGS_SPIN
#define REGS_SPIN 0
#endif

#define TLS_VALUE 0x7e1157a7e0ddba11ULL
#define FCW_VALUE 0x0e7f	/* all exceptions masked, 53-bit precision, truncate */
#define FCW_BITS 0x1f3f		/* the defined bits of the control word */
#define MXCSR_VALUE 0xffe1	/* FZ, RC = truncate, DAZ, all masked, IE and PE set */

static const char *const gpr_names[16] = { "rbx", "rbp", "r12", "r13", "r14", "r15",
					   "rsi", "rdx", "r8", "r9", "r10", "rsp",
					   "rax", "rcx", "r11", "rdi" };
static const int nr_gprs = REGS_SPIN ? 16 : 12;

static __thread volatile uint64_t tls_word = 1;
static struct probe probe;

static int vector_level(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		return __builtin_cpu_supports("avx512bw") ? RL_AVX512BW : RL_AVX512F;
	if (__builtin_cpu_supports("avx"))
		return RL_AVX;
	return RL_SSE;
}

static void fill_inputs(struct rset *in, int level)
{
	const long double x87[8] = {
		1.0L / 3, -2.5L, 1e4000L, -0.0L, LDBL_TRUE_MIN * 7,
		3.14159265358979323846264338327950288L, LDBL_MAX, -42.0L,
	};

	memset(in, 0, sizeof(*in));
	/* gpr[11], rsp, is filled in by the probe. */
	for (int i = 0; i < 16; i++)
		in->gpr[i] = 0x9e3779b97f4a7c15ULL * (i + 1) ^ 0x5a5aa5a5c3c33c3cULL;
	for (int i = 0; i < 8; i++)
		memcpy(in->x87[i], &x87[i], 10);
	in->fcw = FCW_VALUE;
	in->mxcsr = MXCSR_VALUE;
	tl_fill(in->vec, sizeof(in->vec), 0x7e6);
	for (int i = 0; i < 8; i++) {
		in->k[i] = 0xa5c3000000000000ULL | (uint64_t)(i + 1) * 0x0000010203040506ULL;
		if (level == RL_AVX512F)
			in->k[i] &= 0xffff;
	}
}

static void check_gprs(const struct rset *in, const struct rset *out)
{
	for (int i = 0; i < nr_gprs; i++)
		TL_CHECK(in->gpr[i] == out->gpr[i], "%s was 0x%llx, is 0x%llx", gpr_names[i],
			 (unsigned long long)in->gpr[i], (unsigned long long)out->gpr[i]);
}

static uint16_t env_word(const struct rset *s, int i)
{
	uint16_t w;

	memcpy(&w, s->env + 4 * i, 2);
	return w;
}

static void check_x87(const struct rset *in, const struct rset *out)
{
	static const char *const names[3] = { "control", "status", "tag" };

	for (int i = 0; i < 8; i++) {
		long double a, b;

		memcpy(&a, in->x87[i], sizeof(a));
		memcpy(&b, out->x87[i], sizeof(b));
		TL_CHECK(!memcmp(in->x87[i], out->x87[i], 10), "st%d was %Lg, is %Lg", i, a, b);
	}
	TL_CHECK((env_word(in, 0) & FCW_BITS) == (FCW_VALUE & FCW_BITS),
		 "x87 control word 0x%x was not loaded (0x%x)", FCW_VALUE, env_word(in, 0));
	for (int i = 0; i < 3; i++)
		TL_CHECK(env_word(in, i) == env_word(out, i), "x87 %s word was 0x%x, is 0x%x",
			 names[i], env_word(in, i), env_word(out, i));
	TL_CHECK(in->mxcsr == out->mxcsr, "MXCSR was 0x%x, is 0x%x", in->mxcsr, out->mxcsr);
}

static void check_vectors(const struct rset *in, const struct rset *out, int level)
{
	static const char *const kind[4] = { "xmm", "ymm", "zmm", "zmm" };
	int nr = level >= RL_AVX512F ? 32 : 16;
	size_t width = level >= RL_AVX512F ? 64 : level == RL_AVX ? 32 : 16;

	for (int i = 0; i < nr; i++)
		for (size_t b = 0; b < width; b++)
			TL_CHECK(in->vec[i][b] == out->vec[i][b],
				 "%s%d byte %zu was 0x%02x, is 0x%02x", kind[level], i, b,
				 in->vec[i][b], out->vec[i][b]);
	if (level < RL_AVX512F)
		return;
	for (int i = 0; i < 8; i++)
		TL_CHECK(in->k[i] == out->k[i], "k%d was 0x%llx, is 0x%llx", i,
			 (unsigned long long)in->k[i], (unsigned long long)out->k[i]);
}

static uint64_t fs_base(void)
{
	unsigned long base = 0;

	TL_CHECK(!syscall(SYS_arch_prctl, ARCH_GET_FS, &base), "ARCH_GET_FS failed");
	return base;
}

int main(void)
{
	static const char *const levels[4] = { "sse", "avx", "avx512f", "avx512bw" };
	int level = vector_level();
	uint64_t fs_before;

	tl_init();
	go_early_init(SYS_pause);
	fill_inputs(&probe.in, level);
	memset(&probe.out, 0xee, sizeof(probe.out));
	probe.flag = &tl_go;
	probe.level = level;
	tls_word = TLS_VALUE;
	fs_before = fs_base();
	printf("vector registers: %s\n", levels[level]);
	tl_ready();
	if (REGS_SPIN) {
		regs_spin(&probe);
	} else {
		regs_probe(&probe);
		printf("pause() called %llu times%s\n", (unsigned long long)probe.syscalls,
		       go_early ? "; the go signal came just before it was re-entered" : "");
	}
	check_gprs(&probe.in, &probe.out);
	check_x87(&probe.in, &probe.out);
	check_vectors(&probe.in, &probe.out, level);
	TL_CHECK(fs_base() == fs_before, "fs_base was 0x%llx, is 0x%llx",
		 (unsigned long long)fs_before, (unsigned long long)fs_base());
	TL_CHECK(tls_word == TLS_VALUE, "TLS word was 0x%llx, is 0x%llx",
		 (unsigned long long)TLS_VALUE, (unsigned long long)tls_word);
	tl_pass();
}
