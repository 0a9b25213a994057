/* Registers of a thread caught in user mode (spinning, not in a syscall): t_regs with
 * all 16 general registers, rax, rcx, r11 and rdi included. */
#define REGS_SPIN 1
#include "t_regs.c"
