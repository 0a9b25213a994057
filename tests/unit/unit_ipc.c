/* Unit tests of the pure IPC helpers: a System V segment's mapping name, the checks
 * of ipc.img and of a process's attachments, and a message queue's status line. */
#include <stdlib.h>
#include <sys/mman.h>

#include "ipc.h"
#include "proc.h"
#include "unit.h"

static void test_name_key(void)
{
	static const struct { const char *path; bool ok; int32_t key; } cases[] = {
		{ "/SYSV00001234 (deleted)", true, 0x1234 },
		{ "/SYSV5c00abcd (deleted)", true, 0x5c00abcd },
		{ "/SYSV00000000 (deleted)", true, 0 },
		{ "/SYSVffffffff (deleted)", true, -1 },
		{ "/SYSV00001234", false, 0 },
		{ "/SYSV0000123 (deleted)", false, 0 },
		{ "/SYSV0000123g (deleted)", false, 0 },
		{ "/SYSV00001234 (deleted) ", false, 0 },
		{ "/dev/zero (deleted)", false, 0 },
		{ NULL, false, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int32_t key = 7;
		bool ok = ipc_shm_name_key(cases[i].path, &key);

		unit_case();
		CHECK(ok == cases[i].ok && (!ok || key == cases[i].key), "name %s: %d 0x%x",
		      cases[i].path ? cases[i].path : "(null)", ok, (unsigned int)key);
	}
}

/* A sound table: one segment of 3 pages with one run, a set of 2, a queue of 2. */
struct fixture {
	SysvPerm perms[3];
	ShmemObject data;
	PageRun run, *runs[1];
	SysvShm shm, *shms[1];
	uint32_t values[2];
	SysvSem sem, *sems[1];
	SysvMessage msg[2], *msgs[2];
	SysvMsgQueue q, *qs[1];
	IpcTable t;
};

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	for (int i = 0; i < 3; i++) {
		sysv_perm__init(&f->perms[i]);
		f->perms[i].key = 0x100 + i;
		f->perms[i].id = 10 + i;
		f->perms[i].mode = 0640;
	}
	shmem_object__init(&f->data);
	page_run__init(&f->run);
	f->run.vaddr = 4096;
	f->run.nr_pages = 2;
	f->runs[0] = &f->run;
	f->data.size = 3 * 4096;
	f->data.data_file = "sysvshm-10.img";
	f->data.chunk_size = 1 << 20;
	f->data.runs = f->runs;
	f->data.n_runs = 1;
	sysv_shm__init(&f->shm);
	f->shm.perm = &f->perms[0];
	f->shm.size = 3 * 4096 - 10;
	f->shm.data = &f->data;
	f->shms[0] = &f->shm;
	sysv_sem__init(&f->sem);
	f->sem.perm = &f->perms[1];
	f->values[0] = 5;
	f->values[1] = 32767;
	f->sem.values = f->values;
	f->sem.n_values = 2;
	f->sems[0] = &f->sem;
	for (int i = 0; i < 2; i++) {
		sysv_message__init(&f->msg[i]);
		f->msg[i].type = i + 1;
		f->msg[i].text.data = (uint8_t *)"hello";
		f->msg[i].text.len = 5;
		f->msgs[i] = &f->msg[i];
	}
	sysv_msg_queue__init(&f->q);
	f->q.perm = &f->perms[2];
	f->q.qbytes = 16;
	f->q.messages = f->msgs;
	f->q.n_messages = 2;
	f->qs[0] = &f->q;
	ipc_table__init(&f->t);
	f->t.shm = f->shms;
	f->t.n_shm = 1;
	f->t.sem = f->sems;
	f->t.n_sem = 1;
	f->t.msg = f->qs;
	f->t.n_msg = 1;
}

static void test_table(void)
{
	struct fixture f;

	fixture_init(&f);
	unit_case();
	CHECK(!ipc_check_table(&f.t), "a sound table is refused: %s", err_text());

	fixture_init(&f);
	f.perms[0].mode = 01777;
	unit_case();
	CHECK(ipc_check_table(&f.t) && err_has("invalid id or mode"), "mode: %s", err_text());

	fixture_init(&f);
	f.data.size = 4096;
	unit_case();
	CHECK(ipc_check_table(&f.t) && err_has("inconsistent"), "size: %s", err_text());

	fixture_init(&f);
	f.run.nr_pages = 3;
	unit_case();
	CHECK(ipc_check_table(&f.t) && err_has("invalid run"), "run: %s", err_text());

	fixture_init(&f);
	f.shm.destroyed = true;
	unit_case();
	CHECK(ipc_check_table(&f.t) && err_has("inconsistent"), "destroyed with a key: %s",
	      err_text());

	fixture_init(&f);
	f.values[1] = 32768;
	unit_case();
	CHECK(ipc_check_table(&f.t) && err_has("has value 32768"), "value: %s", err_text());

	fixture_init(&f);
	f.sem.n_values = 0;
	unit_case();
	CHECK(ipc_check_table(&f.t) && err_has("0 semaphores"), "no semaphores: %s", err_text());

	fixture_init(&f);
	f.msg[1].type = 0;
	unit_case();
	CHECK(ipc_check_table(&f.t) && err_has("has type 0"), "type: %s", err_text());

	fixture_init(&f);
	f.q.qbytes = 9;
	unit_case();
	CHECK(ipc_check_table(&f.t) && err_has("more than its 9 bytes"), "bytes: %s", err_text());

	{
		SysvShm *two[2];

		fixture_init(&f);
		two[0] = two[1] = &f.shm;
		f.t.shm = two;
		f.t.n_shm = 2;
		unit_case();
		CHECK(ipc_check_table(&f.t) && err_has("two segments"), "duplicate: %s",
		      err_text());
	}
}

static void test_attachments(void)
{
	struct fixture f;
	SysvShmAttach a, *as[1] = { &a };
	Vma v, *vs[1] = { &v };
	MmState mm = MM_STATE__INIT;
	Core c = CORE__INIT;

	fixture_init(&f);
	vma__init(&v);
	v.start = 0x10000;
	v.end = 0x20000;
	mm.vmas = vs;
	mm.n_vmas = 1;
	c.mm = &mm;
	c.pid = 42;
	c.shm_attachments = as;
	c.n_shm_attachments = 1;
	sysv_shm_attach__init(&a);
	a.start = 0x40000;
	a.end = 0x40000 + 3 * 4096;
	a.shmid = 10;
	a.prot = PROT_READ | PROT_WRITE;

	unit_case();
	CHECK(!ipc_check_attachments(&f.t, &c), "a sound attachment is refused: %s", err_text());

	a.rdonly = true;
	unit_case();
	CHECK(ipc_check_attachments(&f.t, &c) && err_has("invalid"), "read-only writable: %s",
	      err_text());
	a.rdonly = false;

	a.end -= 4096;
	unit_case();
	CHECK(ipc_check_attachments(&f.t, &c) && err_has("invalid"), "short: %s", err_text());
	a.end += 4096;

	a.shmid = 11;
	unit_case();
	CHECK(ipc_check_attachments(&f.t, &c) && err_has("segment 11"), "unknown id: %s",
	      err_text());
	a.shmid = 10;

	a.start = 0x1e000;
	a.end = a.start + 3 * 4096;
	unit_case();
	CHECK(ipc_check_attachments(&f.t, &c) && err_has("overlaps a mapping"), "overlap: %s",
	      err_text());

	unit_case();
	CHECK(ipc_check_attachments(NULL, &c) && err_has("invalid"), "no table: %s", err_text());
}

static void test_mq_status(void)
{
	static const char good[] = "QSIZE:17         NOTIFY:0     SIGNO:0     NOTIFY_PID:0\n";
	static const char notify[] = "QSIZE:0          NOTIFY:2     SIGNO:10    NOTIFY_PID:321\n";
	struct proc_mq_status st;

	unit_case();
	CHECK(!proc_parse_mq_status(good, sizeof(good) - 1, &st) && st.qsize == 17 &&
	      !st.notify_pid, "good status: %s", err_text());
	unit_case();
	CHECK(!proc_parse_mq_status(notify, sizeof(notify) - 1, &st) && st.notify == 2 &&
	      st.signo == 10 && st.notify_pid == 321, "notification: %s", err_text());
	unit_case();
	CHECK(proc_parse_mq_status("QSIZE:1 NOTIFY:0\n", 17, &st) && err_has("malformed"),
	      "truncated: %s", err_text());
	unit_case();
	CHECK(proc_parse_mq_status("pos:\t0\n", 7, &st) && err_has("no 'QSIZE'"), "missing: %s",
	      err_text());
	unit_case();
	CHECK(proc_parse_mq_status(good, 10, &st), "cut in the middle of a number is malformed");
}

int main(void)
{
	test_name_key();
	test_table();
	test_attachments();
	test_mq_status();
	return unit_done("unit_ipc");
}
