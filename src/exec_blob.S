/* The executor blob: position-independent code that cryo places in a task it controls
 * (the scratch area of a dumped task, the plan region of a restored one).
 *
 *   offset 0   single-call stub: "syscall; int3" (cryo sets rax and the arguments)
 *   offset 16  table runner: r12 points to a table of 64-byte entries
 *                 u32 nr; u32 flags; u64 args[6]; u64 result
 *              ended by nr == 0xffffffff.  Each result is stored back; an error
 *              result (-4095..-1) stops the run unless flags bit 0 ("may fail") is
 *              set.  The runner ends with int3: rax = 0 and r12 at the end marker on
 *              success, rax = -errno and r12 at the failing entry otherwise. */
	.section .rodata.cryo_blob, "a"
	.globl cr_blob_start, cr_blob_end, cr_blob_stub, cr_blob_runner
	.balign 16
cr_blob_start:
cr_blob_stub:
	syscall
	int3
	.balign 16
cr_blob_runner:
	movl	(%r12), %eax
	cmpl	$0xffffffff, %eax
	je	2f
	movq	8(%r12), %rdi
	movq	16(%r12), %rsi
	movq	24(%r12), %rdx
	movq	32(%r12), %r10
	movq	40(%r12), %r8
	movq	48(%r12), %r9
	syscall
	movq	%rax, 56(%r12)
	cmpq	$-4095, %rax
	jb	1f
	testl	$1, 4(%r12)
	jz	3f
1:	addq	$64, %r12
	jmp	cr_blob_runner
2:	xorl	%eax, %eax
	int3
3:	int3
	.balign 16
cr_blob_end:
	.section .note.GNU-stack, "", @progbits
