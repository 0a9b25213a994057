/* The layout of the blocks the executors in blob.S read: shared by C and assembly. */
#ifndef CRYO_REMOTE_LAYOUT_H
#define CRYO_REMOTE_LAYOUT_H

/* A borrow program's control block (in the data room). */
#define CTL_TABLE_A	0	/* calls run before the stop */
#define CTL_TABLE_B	8	/* calls run after it (only if cryo died), 0: none */
#define CTL_TGID	16
#define CTL_TID		24
#define CTL_STOP_SIG	32	/* 0: tgkill(..., 0), a stop in syscall mode */
#define CTL_BORROW_MASK	40	/* everything blocked but the stop signal */
#define CTL_HOME_MASK	48
#define CTL_EINTR_KIND	56	/* 0: restart only; 1: -ERESTARTSYS; 2: any handler */
#define CTL_PENDING	64	/* rt_sigpending's answer */
#define CTL_SIGACT	72	/* 65 kernel sigactions of 32 bytes, entry i for signal i */
#define CTL_R_RESTART	80	/* registers to go home with */
#define CTL_R_EINTR	88	/* the same, the call failing with EINTR */
#define CTL_SIZE	96

/* A register block, popped in this order, then "ret" into a tail in the padding that
 * does "pop %rsp; jmp *slot(%rip)". */
#define RB_WORDS	18	/* r15 r14 r13 r12 r11 r10 r9 r8 rbp rdi rsi rdx rcx rbx rax
				   eflags tail rsp */
#define RB_SIZE		(RB_WORDS * 8)

/* After the borrow program in the padding: a header, then 16-byte slots: tails (one
 * slot), or return stubs (two slots: code, then u32 tid and u64 the stack slot the
 * stub's address was put in, so a later cryo can tell whether it is still needed). */
#define PAD_HDR_TGID	0
#define PAD_HDR_SLOTS	4
#define PAD_HDR_SIZE	16
#define SLOT_SIZE	16
#define STUB_TID	20
#define STUB_RA_SLOT	24

#define CR_SA_RESTART_BIT 0x10000000

#endif
