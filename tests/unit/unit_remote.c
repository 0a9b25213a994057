/* Unit tests of the remote library's pure decisions (src/remote/): the stop signals,
 * the vDSO padding and what a dead cryo left there, dead stack, and unwinding out of
 * the vDSO (the live one at function entries, and a hand-made .eh_frame). */
#include <elf.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include "remote.h"
#include "unit.h"
#include "vdso.h"

#define BIT(s) (1ULL << ((s) - 1))

static void test_stop_signals(void)
{
	unit_case();
	CHECK(borrow_pick_stop_signal(0, 0, 0) == SIGURG, "default: SIGURG");
	CHECK(borrow_pick_stop_signal(BIT(SIGPIPE), 0, 0) == SIGPIPE, "an ignored signal first");
	CHECK(borrow_pick_stop_signal(BIT(SIGPIPE), 0, BIT(SIGPIPE)) == SIGURG,
	      "not a pending one");
	CHECK(borrow_pick_stop_signal(BIT(SIGCONT) | BIT(SIGTSTP), 0, 0) == SIGURG,
	      "never SIGCONT or a stop signal, even ignored");
	CHECK(borrow_pick_stop_signal(0, BIT(SIGURG), 0) == SIGWINCH, "not a caught one");
	CHECK(borrow_pick_stop_signal(0, BIT(SIGURG) | BIT(SIGWINCH) | BIT(SIGCHLD), 0) == 0,
	      "none: syscall stops instead");
	CHECK(exec_pick_stop_signal(0) == SIGTRAP, "restore: SIGTRAP");
	CHECK(exec_pick_stop_signal(BIT(SIGTRAP)) == SIGURG, "restore: not a pending one");
	CHECK(exec_pick_stop_signal(~0ULL) == 0, "restore: all pending");
}

static size_t live_vdso(const uint8_t **img)
{
	struct vdso_runtime rt;

	if (vdso_runtime(&rt) || !rt.present)
		return 0;
	*img = rt.image;
	return rt.layout.vdso_size;
}

static void test_padding(void)
{
	const uint8_t *live;
	size_t len = live_vdso(&live), off, off2;
	size_t blob = CR_OFF(cr_borrow_end, cr_borrow_start);
	uint8_t *img;
	bool ours;
	int room;

	unit_case();
	if (!len) {
		printf("unit_remote: no vDSO, padding cases skipped\n");
		return;
	}
	img = malloc(len);
	memcpy(img, live, len);
	room = borrow_find_padding(img, len, &off, &ours);
	CHECK(room > 0 && !ours && off + room == len, "the running vDSO has room (%d)", room);
	CHECK(off % 16 == 0, "aligned");
	/* A dead cryo's program there: found as ours, the same place. */
	memcpy(img + off, cr_borrow_start, blob);
	img[off + blob + 20] = 0x5c;
	CHECK(borrow_find_padding(img, len, &off2, &ours) == room && ours && off2 == off,
	      "a dead cryo's program is recognised");
	borrow_clean_vdso(img, len);
	CHECK(!memcmp(img, live, len), "cleaning gives the kernel's bytes back");
	/* Anything else there is not cryo's to overwrite. */
	unit_case();
	img[len - 3] = 0x90;
	CHECK(borrow_find_padding(img, len, &off2, &ours) < 0 && err_has("did not put there"),
	      "foreign bytes refused: %s", err_text());
	borrow_clean_vdso(img, len);
	CHECK(img[len - 3] == 0x90, "foreign bytes are left alone");
	free(img);
}

static void test_dead_room(void)
{
	struct proc_vma v[3] = {
		{ .start = 0x1000, .end = 0x2000, .prot = PROT_NONE },
		{ .start = 0x2000, .end = 0x22000, .prot = PROT_READ | PROT_WRITE },
		{ .start = 0x7000000, .end = 0x7100000, .prot = PROT_READ | PROT_WRITE,
		  .path = "[heap]" },
	};
	struct proc_vmas vmas = { v, 3, 3 };
	uint64_t lo, hi;

	unit_case();
	CHECK(borrow_dead_room(&vmas, 0x21000, &lo, &hi) && lo == 0x3000 &&
	      hi == ((0x21000 - 128 - 1024) & ~63ULL), "a thread stack above its guard");
	CHECK(!borrow_dead_room(&vmas, 0x7050000, &lo, &hi), "not the heap");
	v[0].prot = PROT_READ;
	CHECK(!borrow_dead_room(&vmas, 0x21000, &lo, &hi), "no guard: not a stack");
	v[1].path = "[stack]";
	CHECK(borrow_dead_room(&vmas, 0x21000, &lo, &hi), "[stack] needs no guard");
	CHECK(!borrow_dead_room(&vmas, 0x2400, &lo, &hi), "too close to the bottom");
}

static int read_local(void *arg, uint64_t addr, uint64_t *val)
{
	(void)arg;
	memcpy(val, (const void *)addr, 8);
	return 0;
}

/* At a function's first instruction its return address is on top of the stack. */
static void test_live_entries(void)
{
	const uint8_t *img;
	size_t len = live_vdso(&img);
	struct vdso_syms syms;
	uint64_t stack[4] = { (uint64_t)test_live_entries, 0, 0, 0 }, slot;

	unit_case();
	if (!len || vdso_parse_elf(img, len, &syms))
		return;
	for (int i = 0; i < syms.nr; i++) {
		uint64_t base = (uint64_t)img;

		slot = 0;
		CHECK(!cfi_return_slot(img, len, base, base + syms.sym[i].offset, (uint64_t)stack,
				       0, read_local, NULL, &slot) && slot == (uint64_t)stack,
		      "%s entry: slot %#lx (%s)", syms.sym[i].name, (unsigned long)slot,
		      err_text());
		cr_err_reset();
	}
}

/* A hand-made image: a CIE (CFA = rsp+8, RA at CFA-8) and an FDE for [0x100, 0x140)
 * with push rbp at +1 and mov rsp,rbp at +4. */
static size_t synthetic(uint8_t *b, size_t cap)
{
	static const uint8_t eh[] = {
		/* CIE */ 0x14, 0, 0, 0, 0, 0, 0, 0, 1, 'z', 'R', 0, 1, 0x78, 0x10, 1, 0x1b,
		0x0c, 0x07, 0x08, 0x90, 0x01, 0, 0,
		/* FDE */ 0x18, 0, 0, 0, 0x1c, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0,
		0x41, 0x0e, 0x10, 0x86, 0x02, 0x43, 0x0d, 0x06, 0, 0, 0,
	};
	static const char names[] = "\0.shstrtab\0.eh_frame";
	Elf64_Ehdr *e = (void *)b;
	Elf64_Shdr *sh;
	size_t eh_off = 0x200, names_off = 0x300, sh_off = 0x400;
	int32_t pc;

	memset(b, 0, cap);
	memcpy(e->e_ident, ELFMAG, SELFMAG);
	e->e_ident[EI_CLASS] = ELFCLASS64;
	e->e_ident[EI_DATA] = ELFDATA2LSB;
	e->e_shoff = sh_off;
	e->e_shentsize = sizeof(Elf64_Shdr);
	e->e_shnum = 3;
	e->e_shstrndx = 1;
	memcpy(b + eh_off, eh, sizeof(eh));
	/* pc_begin is pcrel: 0x100 - (address of the field). */
	pc = 0x100 - (int32_t)(eh_off + 24 + 8);
	memcpy(b + eh_off + 24 + 8, &pc, 4);
	memcpy(b + names_off, names, sizeof(names));
	sh = (void *)(b + sh_off);
	sh[1] = (Elf64_Shdr){ .sh_name = 1, .sh_type = SHT_STRTAB, .sh_offset = names_off,
			      .sh_size = sizeof(names) };
	sh[2] = (Elf64_Shdr){ .sh_name = 11, .sh_type = SHT_PROGBITS, .sh_offset = eh_off,
			      .sh_size = sizeof(eh) };
	return 0x1000;
}

static void test_synthetic(void)
{
	static uint8_t img[0x1000];
	size_t len = synthetic(img, sizeof(img));
	uint64_t base = 0x10000000, ra = 0x400123;
	uint64_t stack[4] = { 0xbbbb, ra, 0, 0 }, slot = 0;
	uint64_t rsp = (uint64_t)stack;

	unit_case();
	CHECK(!cfi_return_slot(img, len, base, base + 0x100, rsp + 8, 0, read_local, NULL, &slot) &&
	      slot == rsp + 8, "at entry (%s)", err_text());
	unit_case();
	CHECK(!cfi_return_slot(img, len, base, base + 0x102, rsp, 0, read_local, NULL, &slot) &&
	      slot == rsp + 8, "after push %%rbp (%s)", err_text());
	unit_case();
	CHECK(!cfi_return_slot(img, len, base, base + 0x120, rsp - 64, rsp, read_local, NULL,
			       &slot) && slot == rsp + 8, "with the frame in rbp (%s)", err_text());
	unit_case();
	CHECK(cfi_return_slot(img, len, base, base + 0x180, rsp, 0, read_local, NULL, &slot) &&
	      err_has("no unwind information"), "outside the FDE: %s", err_text());
	unit_case();
	img[0x200 + 28] = 0x7f;	/* the FDE's CIE pointer now points before the section */
	CHECK(cfi_return_slot(img, len, base, base + 0x100, rsp, 0, read_local, NULL, &slot),
	      "damaged unwind information refused");
}

int main(void)
{
	test_stop_signals();
	test_padding();
	test_dead_room();
	test_live_entries();
	test_synthetic();
	return unit_done("unit_remote");
}
