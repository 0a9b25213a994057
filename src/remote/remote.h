/* The remote-control library: holding tasks stopped over ptrace, waiting for them with
 * a bound, and making them run system calls for cryo. Dump borrows live threads so
 * that a dead cryo cannot harm them (borrow.c); restore drives tasks it made (exec.c). */
#ifndef CRYO_REMOTE_H
#define CRYO_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "proc.h"

#define CR_XSTATE_MAX 16384
#define RMT_WAIT_MS 10000		/* the longest cryo waits for a task to stop */

/* ---- waiting and the ptrace basics (ptrace.c) ---- */

/* Before tracing anything: SIGCHLD at its default action and blocked in every thread,
 * so that a bounded wait can sleep until a tracee changes state. *old gets the mask
 * to put back with rmt_end. */
void rmt_begin(uint64_t *old);
void rmt_end(uint64_t old);

/* Wait up to `ms` for tid to stop. 0 with the raw status, or -1 with the error
 * recorded (it exited, or did not stop in time). */
int ptr_wait_ms(pid_t tid, int *status, int ms);
/* The next stop or the end of a task: no error for an exit. */
int ptr_wait_change_ms(pid_t tid, int *status, int ms);
int ptr_wait(pid_t tid, int *status);

/* Kinds of ptrace stop, from a wait status. */
enum stop_kind {
	STOP_SIGNAL,		/* signal-delivery-stop; stop_signal() says which */
	STOP_EVENT,		/* PTRACE_EVENT_STOP: interrupt or group stop */
	STOP_SYSCALL,		/* syscall entry or exit (PTRACE_O_TRACESYSGOOD) */
	STOP_OTHER,		/* another PTRACE_EVENT_* */
};
enum stop_kind stop_kind(int status);
static inline int stop_signal(int status)
{
	return (status >> 8) & 0xff;
}
static inline int stop_event(int status)
{
	return status >> 16;
}
/* A PTRACE_EVENT_STOP that reports a group stop (not a plain interrupt). */
bool stop_is_group(int status);

/* Seize tid and bring it to an interrupt stop. A signal that arrives first is passed
 * on as it would have been, with the interrupt asked for again (a signal-delivery-stop
 * consumes a pending interrupt), so this converges under any signal storm. *gone is
 * set if a thread (not the leader) exited meanwhile; *group_stop gets the signal of a
 * group stop the task was in, or 0. */
int ptr_seize(pid_t tid, bool leader, bool *gone, int *group_stop);
/* --timeout N (0: none): from now, seizing waits no longer than N s in all, and
 * ptr_check_deadline fails once they are over. */
void ptr_set_deadline(unsigned secs);
int ptr_check_deadline(void);
/* From a signal-delivery-stop or syscall stop: let the task finish what it was doing
 * without delivering the stop's signal, and stop again at an interrupt stop. */
int ptr_reinterrupt(pid_t tid);

int ptr_get_regs(pid_t tid, struct user_regs_struct *r);
int ptr_set_regs(pid_t tid, const struct user_regs_struct *r);
/* Read the xstate into buf (CR_XSTATE_MAX bytes); *len gets its size. */
int ptr_get_xstate(pid_t tid, void *buf, size_t *len);
int ptr_set_xstate(pid_t tid, const void *buf, size_t len);
int ptr_get_sigmask(pid_t tid, uint64_t *mask);
int ptr_set_sigmask(pid_t tid, uint64_t mask);
int ptr_detach(pid_t tid, int sig);
/* The siginfo of a signal-delivery-stop was sent by the task to itself with tgkill. */
bool ptr_stop_is_own_tgkill(pid_t tid, pid_t tgid, int sig);

/* Memory of a process through /proc/PID/mem (writes reach read-only mappings as a
 * private copy, like a debugger's breakpoint). */
int mem_open(pid_t pid);
int mem_write(int fd, pid_t pid, uint64_t addr, const void *buf, size_t len);
int mem_read(int fd, pid_t pid, uint64_t addr, void *buf, size_t len);
/* Read memory of a process (through /proc/PID/mem: nothing it shares is unshared). */
int mem_read_vm(pid_t pid, uint64_t addr, void *buf, size_t len);
/* The same without recording an error (a probe that may fail). */
int mem_peek_vm(pid_t pid, uint64_t addr, void *buf, size_t len);
int mem_write_vm(pid_t pid, uint64_t addr, const void *buf, size_t len);

/* ---- tables of system calls ---- */

/* One entry of a table run by an executor. */
struct plan_call {
	uint32_t nr;
	uint32_t flags;
	uint64_t args[6];
	int64_t result;
};
#define PLAN_MAY_FAIL 1
#define PLAN_END 0xffffffffu

static inline void plan_call_set(struct plan_call *c, uint32_t flags, long nr, uint64_t a1,
				 uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6)
{
	c->nr = nr;
	c->flags = flags;
	c->args[0] = a1;
	c->args[1] = a2;
	c->args[2] = a3;
	c->args[3] = a4;
	c->args[4] = a5;
	c->args[5] = a6;
	c->result = 0;
}

/* The executors (blob.S): the borrow program copied into a dumped process, and the
 * restore runner placed in a restore plan. */
extern const char cr_borrow_start[], cr_borrow_end[], cr_borrow_prog[], cr_borrow_stop[],
	cr_borrow_home[], cr_tramp[], cr_tramp_stop[];
extern const char cr_run_start[], cr_run_end[], cr_run_stub[], cr_run_table[],
	cr_run_stop[];
#define CR_OFF(sym, base) ((size_t)((sym) - (base)))

/* ---- borrowing a live process (borrow.c) ---- */

/* A thread cryo holds, and the state it goes home with. */
struct rthread {
	pid_t tid;
	struct user_regs_struct home;	/* registers it continues with */
	uint64_t home_mask;		/* its signal mask */
	bool at_syscall;		/* parked at the entry of a system call */
	bool parked;			/* parked inside a program (never given back) */
	uint64_t ctl;			/* its program's control block while parked */
};

/* Where a dumped process is borrowed from: the program in the trailing padding of its
 * vDSO, data in dead stack memory. */
struct borrow_area {
	pid_t pid;
	int mem_fd;
	int stop_sig;			/* a signal it ignores; 0: syscall stops instead */
	uint64_t code;			/* the program's address */
	size_t code_len;
	uint64_t slots;			/* 16-byte slots after the code */
	unsigned nr_slots;
	uint64_t slot_used[4];		/* bitmap */
	uint64_t data;			/* dead stack borrowed for data */
	size_t data_len, data_used;
	uint8_t *data_saved;		/* its bytes before cryo wrote any */
	size_t data_saved_len;		/* how many (from the top) are saved */
	size_t prog_stack;		/* room left below each program's control block */
	bool scratch;			/* the room is a mapping cryo made */
	const struct proc_vmas *scratch_vmas;
	struct rthread *scratch_thread;	/* the thread that unmaps it */
	uint8_t *sigact;		/* a copy of the sigactions for each program, or NULL */
	const struct proc_vmas *vmas;	/* where each thread's own dead stack is */
	uint8_t *own_saved;		/* a thread's own room's bytes before cryo's program */
	unsigned nr_parked;
	bool abandoned;			/* a thread may still run the program: leave it all */
	bool old_slots;			/* a dead cryo's entries are in use: leave them */
	bool dead_prog;			/* the program is a dead cryo's: threads may be in it */
};

/* Find the room (the vDSO's padding must be free; see docs/ARCHITECTURE.md) and write
 * the program; the data room is chosen later, once the threads are where they stay. */
int borrow_open(struct borrow_area *a, pid_t pid, const struct proc_vmas *vmas,
		const struct rthread *threads, size_t nr);
/* After a dead cryo: does thread t still have a way back into its program, by its rip
 * or by a signal frame on its stack (a handler that interrupted it on its way home)?
 * Such a thread must be let run until it is home before the padding is touched. */
bool borrow_dead_holds(struct borrow_area *a, const struct proc_vmas *vmas,
		       const struct rthread *t);
/* Choose dead stack of `size` bytes below one of the threads' stack pointers. */
int borrow_find_data(struct borrow_area *a, const struct proc_vmas *vmas,
		     struct rthread *threads, size_t nr, size_t size);
/* Keep a copy of the 64 sigactions (65 entries, entry i for signal i) for the
 * programs that follow: a thread going home by itself reads them. */
int borrow_keep_sigactions(struct borrow_area *a, const void *ka);
/* Put back every byte cryo wrote, unless a thread may still need them. */
void borrow_close(struct borrow_area *a);
/* The trailing free bytes of a vDSO image: their offset in *off, their number
 * returned (-1 if none). *ours tells that a dead cryo's program is already there.
 * Pure. */
int borrow_find_padding(const uint8_t *img, size_t len, size_t *off, bool *ours);
/* Zero what a dead cryo left in a vDSO image's padding: the vDSO as the kernel made
 * it. Pure. */
void borrow_clean_vdso(uint8_t *img, size_t len);
/* Dead stack below a stack pointer: [*lo, *hi) in the stack-only mapping holding rsp,
 * below the red zone. 1 if there is any, 0 if rsp is not in such a mapping. Pure. */
int borrow_dead_room(const struct proc_vmas *vmas, uint64_t rsp, uint64_t *lo, uint64_t *hi);
/* Choose the process's stop signal from /proc/PID/status: one it ignores that is not
 * pending. Pure: masks in, signal out (0 if none). */
int borrow_pick_stop_signal(uint64_t ignored, uint64_t caught, uint64_t pending);

/* A table of calls for one borrowed thread: entries and buffers, laid out in the data
 * room at run time. Buffer addresses are tokens until then. */
struct rtable {
	struct borrow_area *a;
	struct plan_call *calls;
	size_t n, cap;
	struct plan_call *after;	/* run only if cryo dies while parked */
	size_t n_after, cap_after;
	uint8_t *data;
	size_t used, data_cap;
	uint64_t sigact_tok;		/* a buffer holding the sigaction results */
	uint64_t base;			/* where the buffers are once run */
	int failed;			/* index of the failing call, -1 */
	int error;			/* allocation failure while building */
};

void rtable_init(struct rtable *t, struct borrow_area *a);
void rtable_free(struct rtable *t);
/* Add a call; returns its index (results via rtable_result after the run). */
int rtable_add(struct rtable *t, uint32_t flags, long nr, uint64_t a1, uint64_t a2,
	       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6);
/* A call run only if cryo dies while the thread is parked after this table. */
void rtable_add_after(struct rtable *t, long nr, uint64_t a1, uint64_t a2, uint64_t a3);
/* Reserve a zeroed buffer of len bytes; returns a token usable as an argument. */
uint64_t rtable_buf(struct rtable *t, size_t len);
/* The buffer at `tok` holds the 64 sigactions (entry i for signal i) after the run. */
void rtable_sigactions(struct rtable *t, uint64_t tok);
/* Run the table in thread th and give it back home; results are read back. */
int rtable_run(struct rtable *t, struct rthread *th);
/* Run the table and leave the thread parked in its program (see rtable_add_after). */
int rtable_run_parked(struct rtable *t, struct rthread *th);
int64_t rtable_result(const struct rtable *t, int idx);
/* The local copy of a buffer. */
const void *rtable_local(const struct rtable *t, uint64_t tok);

/* Run a thread stopped inside the vDSO to the return address stored at ra_slot (its
 * value `ra`), through a trampoline in the padding; th->home becomes the state just
 * after the return. */
int borrow_return_from(struct borrow_area *a, struct rthread *th, uint64_t ra_slot, uint64_t ra);
/* Put a thread back as it was, whatever it was doing under cryo's control. */
int borrow_rescue(struct borrow_area *a, struct rthread *th);

/* ---- unwinding the vDSO (cfi.c) ---- */

typedef int (*cfi_read_fn)(void *arg, uint64_t addr, uint64_t *val);

/* For a thread at rip/rsp/rbp inside a vDSO image (bytes `img` of `len`, mapped at
 * base), find the stack slot holding the return address into code outside the
 * vDSO, following the image's .eh_frame. Pure but for `read`. 0 or -1 (recorded). */
int cfi_return_slot(const uint8_t *img, size_t len, uint64_t base, uint64_t rip,
		    uint64_t rsp, uint64_t rbp, cfi_read_fn read, void *arg, uint64_t *slot);

/* ---- driving a task cryo created (exec.c) ---- */

/* The stop a restore table ends with (restore runner registers rbx points at it). */
struct run_stop {
	uint64_t mask;			/* everything blocked but sig */
	uint64_t tgid, tid, sig;
};

/* Choose a signal for a restored task's stops: none of the pending ones. Pure. */
int exec_pick_stop_signal(uint64_t pending);
/* Run the table at `table` in task tid whose runner is at `runner`, ending at the
 * stop described by `stop` (an address in the task). on_clone is called for each
 * thread the table creates. *failed and *err describe a failing entry. */
int exec_run_table(pid_t tid, const struct user_regs_struct *base, uint64_t runner,
		   uint64_t table, uint64_t stop, int (*on_clone)(pid_t, void *), void *arg,
		   int *failed, int64_t *err);
/* From a syscall stop: send the task `sig` as it leaves and hold it at that signal's
 * delivery stop (the place a restart code in rax is honoured). */
int exec_signal_stop(pid_t tid, int sig);
/* Run a table that ends the task (exit_group, or a fatal signal it sends itself,
 * passed on); *status is the end as the tracer sees it. */
int exec_run_to_end(pid_t tid, const struct user_regs_struct *base, uint64_t runner,
		    uint64_t table, int *status);
/* One system call (two arguments) at `site`, ending at the delivery stop of `sig`
 * (sent at its entry): a call whose return cannot reach code, like unmapping it. */
int exec_syscall_stop(pid_t tid, const struct user_regs_struct *base, uint64_t site, long nr,
		      uint64_t a1, uint64_t a2, int sig, int64_t *ret);
#endif
