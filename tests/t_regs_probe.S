/* t_regs: the register probe. Loads general, x87, SSE/AVX/AVX-512 and opmask
 * registers from a block, waits in a raw pause() syscall and stores them back with
 * no other code in between (layout in t_regs.h). */
#include "t_regs.h"

#define IN(off) (PB_IN + (off))
#define OUT(off) (PB_OUT + (off))

	.text
	.globl regs_probe
	.type regs_probe, @function
/* void regs_probe(struct probe *p): p stays in rdi throughout. */
regs_probe:
	pushq	%rbx
	pushq	%rbp
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	fnstcw	PB_SAVED_FCW(%rdi)
	stmxcsr	PB_SAVED_MXCSR(%rdi)

	/* Vector and opmask registers, as wide as the CPU has them. */
	movl	PB_LEVEL(%rdi), %eax
	cmpl	$RL_AVX512F, %eax
	jae	.Lload_512
	cmpl	$RL_AVX, %eax
	je	.Lload_256
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	movdqu	IN(RS_VEC + \i * 64)(%rdi), %xmm\i
	.endr
	jmp	.Lload_x87
.Lload_256:
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	vmovdqu	IN(RS_VEC + \i * 64)(%rdi), %ymm\i
	.endr
	jmp	.Lload_x87
.Lload_512:
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	vmovdqu64 IN(RS_VEC + \i * 64)(%rdi), %zmm\i
	.endr
	.irp i, 16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	vmovdqu64 IN(RS_VEC + \i * 64)(%rdi), %zmm\i
	.endr
	cmpl	$RL_AVX512BW, %eax
	je	.Lload_k64
	.irp i, 0,1,2,3,4,5,6,7
	kmovw	IN(RS_K + \i * 8)(%rdi), %k\i
	.endr
	jmp	.Lload_x87
.Lload_k64:
	.irp i, 0,1,2,3,4,5,6,7
	kmovq	IN(RS_K + \i * 8)(%rdi), %k\i
	.endr

	/* x87: control word, then all eight registers (st0 = x87[0]); MXCSR. */
.Lload_x87:
	fninit
	fldcw	IN(RS_FCW)(%rdi)
	.irp i, 7,6,5,4,3,2,1,0
	fldt	IN(RS_X87 + \i * 16)(%rdi)
	.endr
	fnstenv	IN(RS_ENV)(%rdi)
	ldmxcsr	IN(RS_MXCSR)(%rdi)

	/* General registers; rax, rcx and r11 belong to the syscall. */
	movq	%rsp, IN(RS_GPR + 11 * 8)(%rdi)
	movq	IN(RS_GPR + 0 * 8)(%rdi), %rbx
	movq	IN(RS_GPR + 1 * 8)(%rdi), %rbp
	movq	IN(RS_GPR + 2 * 8)(%rdi), %r12
	movq	IN(RS_GPR + 3 * 8)(%rdi), %r13
	movq	IN(RS_GPR + 4 * 8)(%rdi), %r14
	movq	IN(RS_GPR + 5 * 8)(%rdi), %r15
	movq	IN(RS_GPR + 6 * 8)(%rdi), %rsi
	movq	IN(RS_GPR + 7 * 8)(%rdi), %rdx
	movq	IN(RS_GPR + 8 * 8)(%rdi), %r8
	movq	IN(RS_GPR + 9 * 8)(%rdi), %r9
	movq	IN(RS_GPR + 10 * 8)(%rdi), %r10

	/* Wait: pause() until the flag is set (the handler runs between). */
.Lwait:
	movq	PB_FLAG(%rdi), %rax
	cmpl	$0, (%rax)
	jne	.Lstore
	incq	PB_SYSCALLS(%rdi)
	movl	$34, %eax		/* __NR_pause */
	syscall
	jmp	.Lwait

.Lstore:
	movq	%rbx, OUT(RS_GPR + 0 * 8)(%rdi)
	movq	%rbp, OUT(RS_GPR + 1 * 8)(%rdi)
	movq	%r12, OUT(RS_GPR + 2 * 8)(%rdi)
	movq	%r13, OUT(RS_GPR + 3 * 8)(%rdi)
	movq	%r14, OUT(RS_GPR + 4 * 8)(%rdi)
	movq	%r15, OUT(RS_GPR + 5 * 8)(%rdi)
	movq	%rsi, OUT(RS_GPR + 6 * 8)(%rdi)
	movq	%rdx, OUT(RS_GPR + 7 * 8)(%rdi)
	movq	%r8, OUT(RS_GPR + 8 * 8)(%rdi)
	movq	%r9, OUT(RS_GPR + 9 * 8)(%rdi)
	movq	%r10, OUT(RS_GPR + 10 * 8)(%rdi)
	movq	%rsp, OUT(RS_GPR + 11 * 8)(%rdi)
	stmxcsr	OUT(RS_MXCSR)(%rdi)
	fnstenv	OUT(RS_ENV)(%rdi)
	.irp i, 0,1,2,3,4,5,6,7
	fstpt	OUT(RS_X87 + \i * 16)(%rdi)
	.endr

	movl	PB_LEVEL(%rdi), %eax
	cmpl	$RL_AVX512F, %eax
	jae	.Lstore_512
	cmpl	$RL_AVX, %eax
	je	.Lstore_256
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	movdqu	%xmm\i, OUT(RS_VEC + \i * 64)(%rdi)
	.endr
	jmp	.Ldone
.Lstore_256:
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	vmovdqu	%ymm\i, OUT(RS_VEC + \i * 64)(%rdi)
	.endr
	jmp	.Ldone
.Lstore_512:
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	vmovdqu64 %zmm\i, OUT(RS_VEC + \i * 64)(%rdi)
	.endr
	.irp i, 16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	vmovdqu64 %zmm\i, OUT(RS_VEC + \i * 64)(%rdi)
	.endr
	cmpl	$RL_AVX512BW, %eax
	je	.Lstore_k64
	.irp i, 0,1,2,3,4,5,6,7
	kmovw	%k\i, OUT(RS_K + \i * 8)(%rdi)
	.endr
	jmp	.Ldone
.Lstore_k64:
	.irp i, 0,1,2,3,4,5,6,7
	kmovq	%k\i, OUT(RS_K + \i * 8)(%rdi)
	.endr

	/* Give the caller its x87 and SSE settings back. */
.Ldone:
	fldcw	PB_SAVED_FCW(%rdi)
	ldmxcsr	PB_SAVED_MXCSR(%rdi)
	cmpl	$RL_AVX, PB_LEVEL(%rdi)
	jb	1f
	vzeroupper
1:	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbp
	popq	%rbx
	ret
	.size regs_probe, . - regs_probe

	.section .note.GNU-stack, "", @progbits
