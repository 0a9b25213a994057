/* The executors cryo places in tasks.
 *
 * The borrow program runs in a live, dumped process, copied into the trailing padding
 * of its vDSO. rbx points at its control block (layout.h). It blocks every signal but
 * the stop signal, runs table A, stops with tgkill (the process ignores that signal:
 * a traced thread stops, an untraced one drops it), runs table B, and goes home: its
 * own mask and every register back, through a per-thread tail "pop %rsp; jmp *slot".
 * While cryo lives, it holds the thread at the stop and puts it back itself; if cryo
 * dies, the thread simply goes on home. No trap anywhere: a trap without a tracer is a
 * SIGTRAP that kills.
 *
 * The return trampoline: the return address of a vDSO function is replaced by a stub
 * of its own in the padding, which loads the real return address into r10 (dead at a
 * return, like every caller-saved register) and the stop signal onto the dead stack;
 * the trampoline keeps rax/rdx, stops the same way and jumps there.
 *
 * The restore runner runs a restore plan's table (r12) in a task cryo created, then
 * stops with tgkill as described by the block at rbx (struct run_stop); rbp holds 0 or
 * the failing call's -errno, r12 the entry it stopped at. Table entries are 64 bytes:
 * u32 nr; u32 flags; u64 args[6]; u64 result, ended by nr == 0xffffffff; an error
 * result stops table A and the restore table unless flags bit 0 ("may fail") is set. */
#include <asm/unistd.h>
#include "layout.h"

/* The call of the table entry at r12: its arguments, the call, its result stored, and
 * the flags set by comparing the result with -4095 (below: success). */
	.macro CALL_ENTRY
	movq	8(%r12), %rdi
	movq	16(%r12), %rsi
	movq	24(%r12), %rdx
	movq	32(%r12), %r10
	movq	40(%r12), %r8
	movq	48(%r12), %r9
	syscall
	movq	%rax, 56(%r12)
	cmpq	$-4095, %rax
	.endm

	.section .rodata.cryo_blob, "a"
	.globl cr_borrow_start, cr_borrow_end, cr_borrow_prog, cr_borrow_stop, cr_borrow_home
	.globl cr_tramp, cr_tramp_stop
	.globl cr_run_start, cr_run_end, cr_run_stub, cr_run_table, cr_run_stop

	.balign 16
cr_borrow_start:
cr_borrow_prog:
	movl	$__NR_rt_sigprocmask, %eax
	movl	$2, %edi			/* SIG_SETMASK */
	leaq	CTL_BORROW_MASK(%rbx), %rsi
	xorl	%edx, %edx
	movl	$8, %r10d
	syscall
	movq	CTL_TABLE_A(%rbx), %r12
	xorl	%r13d, %r13d
1:	movl	(%r12), %eax
	cmpl	$0xffffffff, %eax
	je	3f
	CALL_ENTRY
	jb	2f
	testl	$1, 4(%r12)
	jnz	2f
	testl	%r13d, %r13d
	jz	3f
2:	addq	$64, %r12
	jmp	1b
3:	testl	%r13d, %r13d
	jnz	cr_borrow_home
	movl	$__NR_tgkill, %eax
	movq	CTL_TGID(%rbx), %rdi
	movq	CTL_TID(%rbx), %rsi
	movq	CTL_STOP_SIG(%rbx), %rdx
	syscall
cr_borrow_stop:
	movq	CTL_TABLE_B(%rbx), %r12
	movl	$1, %r13d
	testq	%r12, %r12
	jnz	1b
cr_borrow_home:
	movl	$__NR_rt_sigprocmask, %eax
	movl	$2, %edi
	leaq	CTL_HOME_MASK(%rbx), %rsi
	xorl	%edx, %edx
	movl	$8, %r10d
	syscall
	movq	CTL_R_RESTART(%rbx), %rsp
	movq	CTL_EINTR_KIND(%rbx), %rcx
	testq	%rcx, %rcx
	jz	5f
	/* An interrupted call: fail it with EINTR if a pending signal that can be
	 * delivered would make the kernel do so (its handler, SA_RESTART). */
	movl	$__NR_rt_sigpending, %eax
	leaq	CTL_PENDING(%rbx), %rdi
	movl	$8, %esi
	syscall
	movq	CTL_PENDING(%rbx), %r8
	movq	CTL_HOME_MASK(%rbx), %rax
	notq	%rax
	andq	%rax, %r8
	jz	5f
	movq	CTL_SIGACT(%rbx), %rsi
	testq	%rsi, %rsi
	jz	5f
	movq	CTL_EINTR_KIND(%rbx), %rcx
	addq	$32, %rsi
	xorl	%r9d, %r9d
	xorl	%edi, %edi
4:	movq	(%rsi), %rax
	cmpq	$1, %rax
	jbe	6f				/* SIG_DFL, SIG_IGN: no handler runs */
	cmpq	$1, %rcx
	jne	7f
	testl	$CR_SA_RESTART_BIT, 8(%rsi)
	jnz	6f
7:	btsq	%rdi, %r9
6:	addq	$32, %rsi
	incl	%edi
	cmpl	$64, %edi
	jb	4b
	andq	%r9, %r8
	jz	5f
	movq	CTL_R_EINTR(%rbx), %rsp
5:	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rbp
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rbx
	popq	%rax
	popfq
	ret

cr_tramp:
	/* Reached from a stub: push $sig; movabs $return, %r10; jmp cr_tramp. */
	movq	%rax, %r8
	movq	%rdx, %r9
	popq	%rdx
	movl	$__NR_gettid, %eax
	syscall
	movl	%eax, %esi
	leaq	cr_borrow_end(%rip), %rdi
	movl	PAD_HDR_TGID(%rdi), %edi
	movl	$__NR_tgkill, %eax
	syscall
cr_tramp_stop:
	movq	%r8, %rax
	movq	%r9, %rdx
	jmp	*%r10
	.balign 16
cr_borrow_end:

	.balign 16
cr_run_start:
cr_run_stub:
	syscall
	ud2
	.balign 16
cr_run_table:
	movl	(%r12), %eax
	cmpl	$0xffffffff, %eax
	je	2f
	CALL_ENTRY
	jb	1f
	testl	$1, 4(%r12)
	jz	3f
1:	addq	$64, %r12
	jmp	cr_run_table
2:	xorl	%eax, %eax
3:	movq	%rax, %rbp
	movl	$__NR_rt_sigprocmask, %eax
	movl	$2, %edi
	movq	%rbx, %rsi
	xorl	%edx, %edx
	movl	$8, %r10d
	syscall
	movl	$__NR_tgkill, %eax
	movq	8(%rbx), %rdi
	movq	16(%rbx), %rsi
	movq	24(%rbx), %rdx
	syscall
cr_run_stop:
	ud2
	.balign 16
cr_run_end:
	.section .note.GNU-stack, "", @progbits
