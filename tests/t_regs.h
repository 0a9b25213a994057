/* t_regs, t_regs_spin: layout of the block shared with the register probes
 * (t_regs_probe.S), which load registers, wait and store them again. */
#ifndef T_REGS_H
#define T_REGS_H

/* Vector levels: which registers the probe loads and stores. */
#define RL_SSE 0	/* xmm0-15 */
#define RL_AVX 1	/* ymm0-15 */
#define RL_AVX512F 2	/* zmm0-31, k0-7 (16 bits) */
#define RL_AVX512BW 3	/* zmm0-31, k0-7 (64 bits) */

/* One register set (struct rset). */
#define RS_GPR 0	/* u64[16]: rbx rbp r12 r13 r14 r15 rsi rdx r8 r9 r10 rsp,
			 * then (regs_spin only) rax rcx r11 rdi */
#define RS_X87 128	/* 8 x 16 bytes (80-bit values), st0 first */
#define RS_ENV 256	/* fnstenv image, 28 bytes: fcw, fsw, ftw at 0, 4, 8 */
#define RS_MXCSR 288	/* u32 */
#define RS_FCW 292	/* u16: control word to load (input only) */
#define RS_K 320	/* u64[8] */
#define RS_VEC 384	/* 32 x 64 bytes */
#define RS_SIZE 2432

/* The whole block (struct probe). */
#define PB_IN 0			/* values to load; the probe adds rsp and env */
#define PB_OUT RS_SIZE		/* values found after the wait */
#define PB_FLAG (2 * RS_SIZE)	/* int *: stop waiting once it is non-zero */
#define PB_LEVEL (PB_FLAG + 8)	/* u32: RL_* */
#define PB_SAVED_MXCSR (PB_FLAG + 12)	/* the caller's, put back at the end */
#define PB_SAVED_FCW (PB_FLAG + 16)
#define PB_SYSCALLS (PB_FLAG + 24)	/* u64: how many times regs_probe called pause() */

#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>

struct rset {
	uint64_t gpr[16];
	uint8_t x87[8][16];
	uint8_t env[32];
	uint32_t mxcsr;
	uint16_t fcw;
	uint8_t pad[26];
	uint64_t k[8];
	uint8_t vec[32][64];
} __attribute__((aligned(64)));

struct probe {
	struct rset in, out;
	volatile int *flag;
	uint32_t level;
	uint32_t saved_mxcsr;
	uint16_t saved_fcw;
	uint64_t syscalls;
} __attribute__((aligned(64)));

_Static_assert(offsetof(struct rset, x87) == RS_X87, "RS_X87");
_Static_assert(offsetof(struct rset, env) == RS_ENV, "RS_ENV");
_Static_assert(offsetof(struct rset, mxcsr) == RS_MXCSR, "RS_MXCSR");
_Static_assert(offsetof(struct rset, fcw) == RS_FCW, "RS_FCW");
_Static_assert(offsetof(struct rset, k) == RS_K, "RS_K");
_Static_assert(offsetof(struct rset, vec) == RS_VEC, "RS_VEC");
_Static_assert(sizeof(struct rset) == RS_SIZE, "RS_SIZE");
_Static_assert(offsetof(struct probe, out) == PB_OUT, "PB_OUT");
_Static_assert(offsetof(struct probe, flag) == PB_FLAG, "PB_FLAG");
_Static_assert(offsetof(struct probe, level) == PB_LEVEL, "PB_LEVEL");
_Static_assert(offsetof(struct probe, saved_mxcsr) == PB_SAVED_MXCSR, "PB_SAVED_MXCSR");
_Static_assert(offsetof(struct probe, saved_fcw) == PB_SAVED_FCW, "PB_SAVED_FCW");
_Static_assert(offsetof(struct probe, syscalls) == PB_SYSCALLS, "PB_SYSCALLS");

/* Load p->in, pause() until *p->flag, store into p->out (t_regs_probe.S). */
void regs_probe(struct probe *p);
/* The same, with all 16 general registers, spinning in user mode until tl_go. */
void regs_spin(struct probe *p);
#endif

#endif
