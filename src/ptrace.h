/* Remote control of stopped tasks over ptrace: seize and stop, registers and xstate,
 * and remote system calls, one at a time or as a table run inside the task. */
#ifndef CRYO_PTRACE_H
#define CRYO_PTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#define CR_XSTATE_MAX 16384

/* Seize tid and stop it (PTRACE_INTERRUPT). */
int ptr_seize_stop(pid_t tid);
/* Seize and stop another thread; *gone is set if it exited meanwhile. */
int ptr_seize_thread(pid_t tid, bool *gone);
/* Wait for tid to stop; returns the raw wait status in *status. Fails if it exited. */
int ptr_wait(pid_t tid, int *status);
int ptr_get_regs(pid_t tid, struct user_regs_struct *r);
int ptr_set_regs(pid_t tid, const struct user_regs_struct *r);
/* Read the xstate into buf (CR_XSTATE_MAX bytes); *len gets its size. */
int ptr_get_xstate(pid_t tid, void *buf, size_t *len);
int ptr_set_xstate(pid_t tid, const void *buf, size_t len);
int ptr_get_sigmask(pid_t tid, uint64_t *mask);
int ptr_set_sigmask(pid_t tid, uint64_t mask);
int ptr_detach(pid_t tid, int sig);

/* The executor blob (exec_blob.S). */
extern const char cr_blob_start[], cr_blob_end[], cr_blob_stub[], cr_blob_runner[];
#define CR_BLOB_SIZE ((size_t)(cr_blob_end - cr_blob_start))
#define CR_BLOB_STUB_OFF ((size_t)(cr_blob_stub - cr_blob_start))
#define CR_BLOB_RUNNER_OFF ((size_t)(cr_blob_runner - cr_blob_start))

/* One entry of a syscall table run by the blob. */
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

/* A task under remote control. */
struct remote {
	pid_t tid;
	uint64_t syscall_ip;		/* address of a "syscall" instruction */
	uint64_t blob;			/* address of the blob in the task, 0 if none */
	uint64_t scratch;		/* remote scratch area (data), 0 if none */
	size_t scratch_len;
	uint64_t map_start;		/* the whole injected mapping */
	size_t map_len;
	int mem_fd;			/* /proc/PID/mem, -1 if not open */
	uint64_t poke_addr;		/* where original bytes were replaced, 0 if not */
	long poke_saved;
	struct user_regs_struct saved;	/* registers to put back at the end */
	uint64_t saved_sigmask;
	/* Called for a PTRACE_EVENT_CLONE stop while running a table (restore). */
	int (*on_clone)(struct remote *r, pid_t new_tid, void *arg);
	void *clone_arg;
};

/* Run one system call in the task. Returns 0 and the result in *ret (which may be
 * -errno), or -1 if the task could not be made to run it. */
int remote_syscall(struct remote *r, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		   uint64_t a4, uint64_t a5, uint64_t a6, int64_t *ret);
/* Run a table of calls placed at `table` in the task. Returns 0 on success or -1;
 * *failed gets the index of the failing entry (or -1). */
int remote_run_table(struct remote *r, uint64_t table, int *failed, int64_t *err);

/* For a dumped (live) task: find a syscall instruction, map a scratch area of
 * `scratch_len` bytes plus the blob, with all signals blocked. */
int remote_attach_scratch(struct remote *r, pid_t tid, size_t scratch_len);
/* Undo everything remote_attach_scratch did; put back registers and sigmask. */
int remote_release_scratch(struct remote *r);
/* Another thread of the same process uses `owner`'s scratch area and blob. */
int remote_borrow(struct remote *r, pid_t tid, const struct remote *owner);
/* Put back that thread's registers and signal mask. */
int remote_give_back(struct remote *r);

int remote_write(struct remote *r, uint64_t addr, const void *buf, size_t len);
int remote_read(struct remote *r, uint64_t addr, void *buf, size_t len);

/* A batch of queries run in a dumped task in one round trip: calls with output
 * buffers in the scratch area, results read back into a local mirror. */
#define RT_MAX_CALLS 256
#define RT_DATA_SIZE (32u << 10)
#define RT_SCRATCH_SIZE (RT_MAX_CALLS * sizeof(struct plan_call) + RT_DATA_SIZE)

struct rtable {
	struct remote *r;
	struct plan_call calls[RT_MAX_CALLS + 1];
	int n;
	size_t used;
	int overflow;
	uint8_t data[RT_DATA_SIZE];
};

void rtable_init(struct rtable *t, struct remote *r);
/* Add a call; returns its index (results via rtable_result after the run). */
int rtable_add(struct rtable *t, uint32_t flags, long nr, uint64_t a1, uint64_t a2,
	       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6);
/* Reserve a zeroed buffer in the task; returns its address there. */
uint64_t rtable_buf(struct rtable *t, size_t len);
int rtable_run(struct rtable *t);
int64_t rtable_result(const struct rtable *t, int idx);
/* The local copy of a buffer returned by rtable_buf. */
const void *rtable_local(const struct rtable *t, uint64_t addr);

#endif
