/* t_regs: the register probes. Each loads general, x87, SSE/AVX/AVX-512 and opmask
 * registers from a block, waits (in a raw pause() syscall, or spinning in user mode)
 * and stores them back with no other code in between (layout in t_regs.h). */
#include "t_regs.h"

#define IN(off) (PB_IN + (off))
#define OUT(off) (PB_OUT + (off))
#define GPR(i) (RS_GPR + (i) * 8)

/* Vector and opmask registers from p->in (p in rdi), as wide as the CPU has them. */
.macro load_vectors
	movl	PB_LEVEL(%rdi), %eax
	cmpl	$RL_AVX512F, %eax
	jae	.Lload_512\@
	cmpl	$RL_AVX, %eax
	je	.Lload_256\@
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	movdqu	IN(RS_VEC + \i * 64)(%rdi), %xmm\i
	.endr
	jmp	.Lload_end\@
.Lload_256\@:
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	vmovdqu	IN(RS_VEC + \i * 64)(%rdi), %ymm\i
	.endr
	jmp	.Lload_end\@
.Lload_512\@:
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	vmovdqu64 IN(RS_VEC + \i * 64)(%rdi), %zmm\i
	.endr
	.irp i, 16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	vmovdqu64 IN(RS_VEC + \i * 64)(%rdi), %zmm\i
	.endr
	cmpl	$RL_AVX512BW, %eax
	je	.Lload_k64\@
	.irp i, 0,1,2,3,4,5,6,7
	kmovw	IN(RS_K + \i * 8)(%rdi), %k\i
	.endr
	jmp	.Lload_end\@
.Lload_k64\@:
	.irp i, 0,1,2,3,4,5,6,7
	kmovq	IN(RS_K + \i * 8)(%rdi), %k\i
	.endr
.Lload_end\@:
.endm

/* Save the caller's settings; load everything but the general registers. */
.macro load_fp_vectors
	fnstcw	PB_SAVED_FCW(%rdi)
	stmxcsr	PB_SAVED_MXCSR(%rdi)
	load_vectors
	fninit
	fldcw	IN(RS_FCW)(%rdi)
	.irp i, 7,6,5,4,3,2,1,0
	fldt	IN(RS_X87 + \i * 16)(%rdi)		/* st0 ends as x87[0] */
	.endr
	fnstenv	IN(RS_ENV)(%rdi)
	ldmxcsr	IN(RS_MXCSR)(%rdi)
.endm

/* Store everything but the general registers into p->out; give the caller its x87
 * and SSE settings back. */
.macro store_fp_vectors
	stmxcsr	OUT(RS_MXCSR)(%rdi)
	fnstenv	OUT(RS_ENV)(%rdi)
	.irp i, 0,1,2,3,4,5,6,7
	fstpt	OUT(RS_X87 + \i * 16)(%rdi)
	.endr
	movl	PB_LEVEL(%rdi), %eax
	cmpl	$RL_AVX512F, %eax
	jae	.Lstore_512\@
	cmpl	$RL_AVX, %eax
	je	.Lstore_256\@
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	movdqu	%xmm\i, OUT(RS_VEC + \i * 64)(%rdi)
	.endr
	jmp	.Lstore_end\@
.Lstore_256\@:
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	vmovdqu	%ymm\i, OUT(RS_VEC + \i * 64)(%rdi)
	.endr
	jmp	.Lstore_end\@
.Lstore_512\@:
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	vmovdqu64 %zmm\i, OUT(RS_VEC + \i * 64)(%rdi)
	.endr
	.irp i, 16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	vmovdqu64 %zmm\i, OUT(RS_VEC + \i * 64)(%rdi)
	.endr
	cmpl	$RL_AVX512BW, %eax
	je	.Lstore_k64\@
	.irp i, 0,1,2,3,4,5,6,7
	kmovw	%k\i, OUT(RS_K + \i * 8)(%rdi)
	.endr
	jmp	.Lstore_end\@
.Lstore_k64\@:
	.irp i, 0,1,2,3,4,5,6,7
	kmovq	%k\i, OUT(RS_K + \i * 8)(%rdi)
	.endr
.Lstore_end\@:
	fldcw	PB_SAVED_FCW(%rdi)
	ldmxcsr	PB_SAVED_MXCSR(%rdi)
	cmpl	$RL_AVX, PB_LEVEL(%rdi)
	jb	.Lno_avx\@
	vzeroupper
.Lno_avx\@:
.endm

/* The registers every wait keeps: all but rax, rcx, r11 and rdi. */
.macro load_common_gprs
	movq	%rsp, IN(GPR(11))(%rdi)
	movq	IN(GPR(0))(%rdi), %rbx
	movq	IN(GPR(1))(%rdi), %rbp
	movq	IN(GPR(2))(%rdi), %r12
	movq	IN(GPR(3))(%rdi), %r13
	movq	IN(GPR(4))(%rdi), %r14
	movq	IN(GPR(5))(%rdi), %r15
	movq	IN(GPR(6))(%rdi), %rsi
	movq	IN(GPR(7))(%rdi), %rdx
	movq	IN(GPR(8))(%rdi), %r8
	movq	IN(GPR(9))(%rdi), %r9
	movq	IN(GPR(10))(%rdi), %r10
.endm

/* Store them; \base holds p. */
.macro store_common_gprs base
	movq	%rbx, OUT(GPR(0))(\base)
	movq	%rbp, OUT(GPR(1))(\base)
	movq	%r12, OUT(GPR(2))(\base)
	movq	%r13, OUT(GPR(3))(\base)
	movq	%r14, OUT(GPR(4))(\base)
	movq	%r15, OUT(GPR(5))(\base)
	movq	%rsi, OUT(GPR(6))(\base)
	movq	%rdx, OUT(GPR(7))(\base)
	movq	%r8, OUT(GPR(8))(\base)
	movq	%r9, OUT(GPR(9))(\base)
	movq	%r10, OUT(GPR(10))(\base)
	movq	%rsp, OUT(GPR(11))(\base)
.endm

.macro push_callee_saved
	pushq	%rbx
	pushq	%rbp
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
.endm

.macro pop_callee_saved
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbp
	popq	%rbx
.endm

	.text
	.globl regs_probe
	.type regs_probe, @function
/* void regs_probe(struct probe *p): p stays in rdi; rax, rcx, r11 are the syscall's. */
regs_probe:
	push_callee_saved
	load_fp_vectors
	load_common_gprs
.Lwait:
	movq	PB_FLAG(%rdi), %rax
	cmpl	$0, (%rax)
	jne	.Lwoken
	incq	PB_SYSCALLS(%rdi)
	movl	$34, %eax		/* __NR_pause */
	syscall
	jmp	.Lwait
.Lwoken:
	store_common_gprs %rdi
	store_fp_vectors
	pop_callee_saved
	ret
	.size regs_probe, . - regs_probe

	.globl regs_spin
	.type regs_spin, @function
/* void regs_spin(struct probe *p): every general register holds a known value while
 * the loop spins in user mode on tl_go (addressed relative to rip). */
regs_spin:
	push_callee_saved
	pushq	%rdi
	load_fp_vectors
	load_common_gprs
	movq	IN(GPR(12))(%rdi), %rax
	movq	IN(GPR(13))(%rdi), %rcx
	movq	IN(GPR(14))(%rdi), %r11
	movq	IN(GPR(15))(%rdi), %rdi
.Lspin:
	cmpl	$0, tl_go(%rip)
	je	.Lspin
	movq	%rax, spin_rax(%rip)
	movq	(%rsp), %rax
	store_common_gprs %rax
	movq	%rcx, OUT(GPR(13))(%rax)
	movq	%r11, OUT(GPR(14))(%rax)
	movq	%rdi, OUT(GPR(15))(%rax)
	movq	spin_rax(%rip), %rcx
	movq	%rcx, OUT(GPR(12))(%rax)
	movq	%rax, %rdi
	store_fp_vectors
	popq	%rdi
	pop_callee_saved
	ret
	.size regs_spin, . - regs_spin

	.bss
	.balign 8
spin_rax:
	.skip 8

	.section .note.GNU-stack, "", @progbits
