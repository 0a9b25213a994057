/* Fuzz target: image metadata files. The input is one or more image files back to
 * back; each goes through img_check_buffer and its payload is unpacked (even with a
 * bad checksum, to reach the protobuf decoding) as the message type its header names.
 * A file table goes through every kind's checks, a process tree through the session
 * and group rules. The last Core and PageMap are then
 * validated together, the Core's vDSO and the Inventory's CPU description go through
 * the checks restore applies to them, and each thread's xstate is converted from the
 * image's CPU layout to this CPU's. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "files.h"
#include "image.h"
#include "ipc.h"
#include "log.h"
#include "mem.h"
#include "pstree.h"
#include "restart.h"
#include "thread.h"
#include "vdso.h"

static const ProtobufCMessageDescriptor *desc_of(uint16_t kind)
{
	switch (kind) {
	case IMAGE_KIND__IMG_INVENTORY: return &inventory__descriptor;
	case IMAGE_KIND__IMG_PSTREE: return &ps_tree__descriptor;
	case IMAGE_KIND__IMG_CORE: return &core__descriptor;
	case IMAGE_KIND__IMG_PAGEMAP: return &page_map__descriptor;
	case IMAGE_KIND__IMG_FILES: return &file_table__descriptor;
	case IMAGE_KIND__IMG_SHMEM: return &shmem_table__descriptor;
	case IMAGE_KIND__IMG_IPC: return &ipc_table__descriptor;
	}
	return NULL;
}

struct msgs {
	Inventory *inv;
	Core *core;
	PageMap *pm;
	struct cpu_info cpu;		/* the image's CPU, when the inventory has a valid one */
	int have_cpu;
};

static struct cpu_info self;
static struct vdso_runtime rt;

static void keep(ProtobufCMessage **slot, ProtobufCMessage *m)
{
	if (*slot)
		protobuf_c_message_free_unpacked(*slot, NULL);
	*slot = m;
}

/* The session and group rules, on the tree as the image gives it. */
static void check_tree(const PsTree *t)
{
	struct tree_node n[64];
	size_t nr = t->n_procs < 64 ? t->n_procs : 64;

	for (size_t i = 0; i < nr; i++)
		n[i] = (struct tree_node){ t->procs[i]->pid, t->procs[i]->ppid, t->procs[i]->pgid,
					   t->procs[i]->sid };
	cr_err_reset();
	tree_check(n, nr, nr & 1);
}

static void one_file(const uint8_t *buf, size_t len, struct msgs *ms)
{
	const ProtobufCMessageDescriptor *desc;
	const uint8_t *payload;
	size_t plen;
	uint16_t kind;
	ProtobufCMessage *m;

	memcpy(&kind, buf + 4, sizeof(kind));
	cr_err_reset();
	if (!img_check_buffer(buf, len, kind, "fuzz.img", &payload, &plen) &&
	    (payload != buf + IMG_HDR_SIZE || plen != len - IMG_HDR_SIZE))
		__builtin_trap();
	desc = desc_of(kind);
	if (!desc)
		return;
	m = protobuf_c_message_unpack(desc, NULL, len - IMG_HDR_SIZE, buf + IMG_HDR_SIZE);
	if (!m)
		return;
	switch (kind) {
	case IMAGE_KIND__IMG_INVENTORY:
		keep((ProtobufCMessage **)&ms->inv, m);
		break;
	case IMAGE_KIND__IMG_CORE:
		keep((ProtobufCMessage **)&ms->core, m);
		break;
	case IMAGE_KIND__IMG_PAGEMAP:
		keep((ProtobufCMessage **)&ms->pm, m);
		break;
	case IMAGE_KIND__IMG_FILES:
		cr_err_reset();
		files_check_table((const FileTable *)m);
		protobuf_c_message_free_unpacked(m, NULL);
		break;
	case IMAGE_KIND__IMG_PSTREE:
		check_tree((const PsTree *)m);
		protobuf_c_message_free_unpacked(m, NULL);
		break;
	case IMAGE_KIND__IMG_IPC:
		/* With a core read before it, its attachments against this table. */
		cr_err_reset();
		if (!ipc_check_table((const IpcTable *)m) && ms->core) {
			cr_err_reset();
			ipc_check_attachments((const IpcTable *)m, ms->core);
		}
		protobuf_c_message_free_unpacked(m, NULL);
		break;
	default:
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

static void check_inventory(const Inventory *inv, struct msgs *ms)
{
	char buf[256];

	cr_err_reset();
	if (!cpu_from_pb(inv->cpu, &ms->cpu)) {
		ms->have_cpu = 1;
		cpu_missing(&ms->cpu, &self, buf, sizeof(buf));
	}
}

static void check_vdso(const VdsoInfo *vi)
{
	struct vdso_layout l;
	struct vdso_syms syms;

	cr_err_reset();
	if (vdso_layout_from_image(vi, &l))
		return;
	if (l.vdso_size != vi->image.len)
		__builtin_trap();
	vdso_differs(vi, &rt);
	cr_err_reset();
	vdso_parse_elf(vi->image.data, vi->image.len, &syms);
}

/* The thread's xstate rewritten for this CPU, into a buffer of this CPU's size. */
static void convert_xstate(const ThreadState *ts, const struct msgs *ms)
{
	size_t len = self.xsave_size ? self.xsave_size : 4096;
	uint8_t *dst = malloc(len);

	memset(dst, 0, len);
	cr_err_reset();
	cpu_xstate_convert(ts->xstate.data, ts->xstate.len, ms->have_cpu ? &ms->cpu : &self,
			   dst, len, &self);
	free(dst);
}

static void check_core(const Core *core, const PageMap *pm, const struct msgs *ms)
{
	for (size_t i = 0; i < core->n_threads; i++) {
		struct user_regs_struct in, out;

		regs_from_pb(core->threads[i]->regs, &in);
		restart_decide(&in, &out);
		convert_xstate(core->threads[i], ms);
	}
	if (core->vdso)
		check_vdso(core->vdso);
	if (!pm)
		return;
	cr_err_reset();
	mem_validate(core->mm, pm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct msgs ms;

	if (!init) {
		cpu_read(&self);
		vdso_runtime(&rt);
		init = 1;
	}
	memset(&ms, 0, sizeof(ms));
	while (size >= IMG_HDR_SIZE) {
		uint32_t length;
		size_t len;

		memcpy(&length, data + 8, sizeof(length));
		len = length < size - IMG_HDR_SIZE ? IMG_HDR_SIZE + length : size;
		one_file(data, len, &ms);
		data += len;
		size -= len;
	}
	if (ms.inv)
		check_inventory(ms.inv, &ms);
	if (ms.core)
		check_core(ms.core, ms.pm, &ms);
	if (ms.inv)
		inventory__free_unpacked(ms.inv, NULL);
	if (ms.core)
		core__free_unpacked(ms.core, NULL);
	if (ms.pm)
		page_map__free_unpacked(ms.pm, NULL);
	return 0;
}
