/* Fuzz target: the parsers that read a live process's vDSO and files: unwinding with
 * its .eh_frame (cfi_return_slot, at every 7th offset and at each symbol, over a fake
 * stack), finding its padding and cleaning a dead cryo's leftovers, and ELF build-id
 * notes. Any slot found must be on the fake stack. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buildid.h"
#include "log.h"
#include "remote.h"
#include "vdso.h"

#define STACK_WORDS 64

static uint64_t stack[STACK_WORDS];

static int read_stack(void *arg, uint64_t addr, uint64_t *val)
{
	(void)arg;
	if (addr < (uint64_t)stack || addr + 8 > (uint64_t)(stack + STACK_WORDS))
		return -1;
	memcpy(val, (const void *)addr, 8);
	return 0;
}

static void unwind_at(const uint8_t *data, size_t size, uint64_t off)
{
	uint64_t base = 0x7f0000000000, slot = 0, sp = (uint64_t)&stack[8];

	cr_err_reset();
	if (!cfi_return_slot(data, size, base, base + off, sp, sp + 64, read_stack, NULL, &slot) &&
	    (slot < (uint64_t)stack || slot + 8 > (uint64_t)(stack + STACK_WORDS)))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t id[BUILDID_MAX], *copy;
	struct buildid_note notes[8];
	struct vdso_syms syms;
	size_t off, idlen;
	bool ours;

	for (int i = 0; i < STACK_WORDS; i++)
		stack[i] = i * 0x10001 + (size ? data[i % size] : 0);
	for (size_t off = 0; off < size; off += 7)
		unwind_at(data, size, off);
	cr_err_reset();
	if (!vdso_parse_elf(data, size, &syms))
		for (int i = 0; i < syms.nr; i++)
			unwind_at(data, size, syms.sym[i].offset);
	copy = malloc(size + 1);
	memcpy(copy, data, size);
	cr_err_reset();
	if (borrow_find_padding(copy, size, &off, &ours) >= 0 && off > size)
		__builtin_trap();
	borrow_clean_vdso(copy, size);
	free(copy);
	cr_err_reset();
	buildid_phdrs(data, size, notes, 8);
	if (buildid_from_notes(data, size, id, &idlen) && (!idlen || idlen > BUILDID_MAX))
		__builtin_trap();
	return 0;
}
