/* Unwinding out of the vDSO with its own .eh_frame: for a thread stopped inside a vDSO
 * function, the stack slot that holds its return address into the program. The image
 * comes from a live process: every read is bounds-checked (and fuzzed). */
#include <elf.h>
#include <string.h>

#include "log.h"
#include "remote.h"

#define DW_REG_RBP 6
#define DW_REG_RSP 7
#define DW_REG_RA 16
#define MAX_FRAMES 8
#define MAX_STATES 8

struct cur {
	const uint8_t *p, *end;
	bool bad;
};

static uint8_t get_u8(struct cur *c)
{
	if (c->p >= c->end) {
		c->bad = true;
		return 0;
	}
	return *c->p++;
}

static uint64_t get_n(struct cur *c, size_t n)
{
	uint64_t v = 0;

	if ((size_t)(c->end - c->p) < n) {
		c->bad = true;
		c->p = c->end;
		return 0;
	}
	memcpy(&v, c->p, n);
	c->p += n;
	return v;
}

static uint64_t get_uleb(struct cur *c)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		uint8_t b = get_u8(c);

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	c->bad = true;
	return v;
}

static int64_t get_sleb(struct cur *c)
{
	int64_t v = 0;
	int shift = 0;
	uint8_t b;

	do {
		b = get_u8(c);
		if (shift < 64)
			v |= (int64_t)(b & 0x7f) << shift;
		shift += 7;
	} while ((b & 0x80) && !c->bad && shift < 70);
	if (shift < 64 && (b & 0x40))
		v |= -(1LL << shift);
	return v;
}

/* An encoded pointer; pcrel values are relative to the field's offset in the image. */
static uint64_t get_ptr(struct cur *c, uint8_t enc, const uint8_t *img)
{
	uint64_t field = c->p - img, v;

	switch (enc & 0x0f) {
	case 0x00: v = get_n(c, 8); break;
	case 0x01: v = get_uleb(c); break;
	case 0x02: v = get_n(c, 2); break;
	case 0x03: v = get_n(c, 4); break;
	case 0x04: v = get_n(c, 8); break;
	case 0x09: v = get_sleb(c); break;
	case 0x0a: v = (int64_t)(int16_t)get_n(c, 2); break;
	case 0x0b: v = (int64_t)(int32_t)get_n(c, 4); break;
	case 0x0c: v = get_n(c, 8); break;
	default: c->bad = true; return 0;
	}
	switch (enc & 0x70) {
	case 0x00: return v;
	case 0x10: return field + v;
	default: c->bad = true; return 0;
	}
}

struct rules {
	int cfa_reg;
	int64_t cfa_off;
	bool rbp_saved, ra_saved;
	int64_t rbp_off, ra_off;
};

struct cie {
	uint64_t code_align;
	int64_t data_align;
	uint8_t ptr_enc;
	bool has_aug;
	const uint8_t *insns, *end;
};

static int parse_cie(const uint8_t *img, const uint8_t *p, const uint8_t *end, struct cie *cie)
{
	struct cur c = { p, end, false };
	uint8_t version = get_u8(&c);
	const char *aug = (const char *)c.p;
	size_t auglen = strnlen(aug, end - c.p);

	memset(cie, 0, sizeof(*cie));
	if (c.bad || (version != 1 && version != 3) || aug + auglen >= (const char *)end)
		return -1;
	c.p += auglen + 1;
	cie->code_align = get_uleb(&c);
	cie->data_align = get_sleb(&c);
	if (version == 1)
		get_u8(&c);
	else
		get_uleb(&c);
	if (aug[0] == 'z') {
		uint64_t alen = get_uleb(&c);
		const uint8_t *adata_end = c.p + alen;

		cie->has_aug = true;
		if (alen > (uint64_t)(end - c.p))
			return -1;
		for (size_t i = 1; i < auglen && !c.bad; i++) {
			if (aug[i] == 'R')
				cie->ptr_enc = get_u8(&c);
			else if (aug[i] == 'P')
				get_ptr(&c, get_u8(&c) & 0x7f, img);
			else if (aug[i] == 'L')
				get_u8(&c);
			else if (aug[i] != 'S')
				return -1;
		}
		c.p = adata_end;
	} else if (auglen) {
		return -1;
	}
	cie->insns = c.p;
	cie->end = end;
	return c.bad ? -1 : 0;
}

static void set_rule(struct rules *r, uint64_t reg, int64_t off)
{
	if (reg == DW_REG_RBP)
		r->rbp_saved = true, r->rbp_off = off;
	else if (reg == DW_REG_RA)
		r->ra_saved = true, r->ra_off = off;
}

static void clear_rule(struct rules *r, const struct rules *init, uint64_t reg)
{
	if (reg == DW_REG_RBP)
		r->rbp_saved = init->rbp_saved, r->rbp_off = init->rbp_off;
	else if (reg == DW_REG_RA)
		r->ra_saved = init->ra_saved, r->ra_off = init->ra_off;
}

static void forget_rule(struct rules *r, uint64_t reg)
{
	if (reg == DW_REG_RBP)
		r->rbp_saved = false;
	else if (reg == DW_REG_RA)
		r->ra_saved = false;
}

/* One instruction that is not an advance; -1 for what cryo does not follow
 * (expressions, a return address kept in a register). */
static int cfa_op(struct cur *c, uint8_t op, const struct cie *cie, struct rules *r,
		  const struct rules *init, struct rules *stack, int *depth)
{
	uint64_t reg;

	switch (op >> 6) {
	case 2: set_rule(r, op & 0x3f, get_uleb(c) * cie->data_align); return 0;
	case 3: clear_rule(r, init, op & 0x3f); return 0;
	}
	switch (op) {
	case 0x00: return 0;
	case 0x05: reg = get_uleb(c); set_rule(r, reg, get_uleb(c) * cie->data_align); return 0;
	case 0x06: clear_rule(r, init, get_uleb(c)); return 0;
	case 0x07: case 0x08:
		reg = get_uleb(c);
		forget_rule(r, reg);
		return reg == DW_REG_RA ? -1 : 0;
	case 0x09:
		reg = get_uleb(c);
		get_uleb(c);
		return reg == DW_REG_RBP || reg == DW_REG_RA ? -1 : 0;
	case 0x0a:
		if (*depth == MAX_STATES)
			return -1;
		stack[(*depth)++] = *r;
		return 0;
	case 0x0b:
		if (!*depth)
			return -1;
		*r = stack[--(*depth)];
		return 0;
	case 0x0c: r->cfa_reg = get_uleb(c); r->cfa_off = get_uleb(c); return 0;
	case 0x0d: r->cfa_reg = get_uleb(c); return 0;
	case 0x0e: r->cfa_off = get_uleb(c); return 0;
	case 0x11: reg = get_uleb(c); set_rule(r, reg, get_sleb(c) * cie->data_align); return 0;
	case 0x12: r->cfa_reg = get_uleb(c); r->cfa_off = get_sleb(c) * cie->data_align; return 0;
	case 0x13: r->cfa_off = get_sleb(c) * cie->data_align; return 0;
	case 0x2e: get_uleb(c); return 0;
	}
	return -1;
}

/* Run CFA instructions from `loc` until the location passes `target`. */
static int run_cfa(const struct cie *cie, const uint8_t *p, const uint8_t *end, uint64_t loc,
		   uint64_t target, struct rules *r, const struct rules *init, const uint8_t *img)
{
	struct rules stack[MAX_STATES];
	struct cur c = { p, end, false };
	int depth = 0;

	while (c.p < c.end && !c.bad) {
		uint8_t op = get_u8(&c);
		uint64_t delta;

		switch (op >= 0x40 && op < 0x80 ? 0x40 : op) {
		case 0x40: delta = (op & 0x3f) * cie->code_align; break;
		case 0x01: loc = get_ptr(&c, cie->ptr_enc, img); continue;
		case 0x02: delta = get_n(&c, 1) * cie->code_align; break;
		case 0x03: delta = get_n(&c, 2) * cie->code_align; break;
		case 0x04: delta = get_n(&c, 4) * cie->code_align; break;
		default:
			if (cfa_op(&c, op, cie, r, init, stack, &depth))
				return -1;
			continue;
		}
		if (loc + delta > target)
			return 0;
		loc += delta;
	}
	return c.bad ? -1 : 0;
}

static const Elf64_Shdr *eh_frame_section(const uint8_t *img, size_t len)
{
	const Elf64_Ehdr *eh = (const void *)img;
	const Elf64_Shdr *sh, *names;

	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > len ||
	    (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > len - eh->e_shoff ||
	    eh->e_shstrndx >= eh->e_shnum || eh->e_shoff % 8)
		return NULL;
	sh = (const void *)(img + eh->e_shoff);
	names = &sh[eh->e_shstrndx];
	if (names->sh_offset > len || names->sh_size > len - names->sh_offset)
		return NULL;
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_name >= names->sh_size || sh[i].sh_offset > len ||
		    sh[i].sh_size > len - sh[i].sh_offset)
			continue;
		if (!strncmp((const char *)img + names->sh_offset + sh[i].sh_name, ".eh_frame",
			     names->sh_size - sh[i].sh_name) &&
		    sh[i].sh_type == SHT_PROGBITS)
			return &sh[i];
	}
	return NULL;
}

/* The rules in force at image offset `pc`. */
static int rules_at(const uint8_t *img, size_t len, uint64_t pc, struct rules *out)
{
	const Elf64_Shdr *sec = eh_frame_section(img, len);
	const uint8_t *p, *end;

	if (!sec)
		return -1;
	p = img + sec->sh_offset;
	end = p + sec->sh_size;
	while ((size_t)(end - p) >= 8) {
		uint32_t l32, id;
		const uint8_t *ent, *ent_end, *cie_at;
		struct cie cie;
		struct rules init = { DW_REG_RSP, 8, false, false, 0, 0 };
		struct cur c;
		uint64_t start, range;

		memcpy(&l32, p, 4);
		if (!l32 || l32 == 0xffffffff || l32 > (size_t)(end - p) - 4)
			return -1;
		ent = p + 4;
		ent_end = ent + l32;
		p = ent_end;
		memcpy(&id, ent, 4);
		if (!id || id > (size_t)(ent - (img + sec->sh_offset)))
			continue;	/* a CIE, or an FDE pointing before the section */
		cie_at = ent - id;
		{
			uint32_t cl;

			memcpy(&cl, cie_at, 4);
			if (cl > (size_t)(end - cie_at) - 4 || cl < 4 || cie_at + 4 + cl > end)
				return -1;
			if (parse_cie(img, cie_at + 8, cie_at + 4 + cl, &cie))
				return -1;
		}
		c = (struct cur){ ent + 4, ent_end, false };
		start = get_ptr(&c, cie.ptr_enc, img);
		range = get_ptr(&c, cie.ptr_enc & 0x0f, img);
		if (c.bad)
			return -1;
		if (pc < start || pc - start >= range)
			continue;
		if (cie.has_aug) {
			uint64_t alen = get_uleb(&c);

			if (alen > (uint64_t)(c.end - c.p))
				return -1;
			c.p += alen;
		}
		if (run_cfa(&cie, cie.insns, cie.end, start, UINT64_MAX, &init, &init, img))
			return -1;
		*out = init;
		return run_cfa(&cie, c.p, c.end, start, pc, out, &init, img);
	}
	return -1;
}

int cfi_return_slot(const uint8_t *img, size_t len, uint64_t base, uint64_t rip,
		    uint64_t rsp, uint64_t rbp, cfi_read_fn read, void *arg, uint64_t *slot)
{
	for (int depth = 0; depth < MAX_FRAMES; depth++) {
		struct rules r;
		uint64_t pc = rip - base - (depth ? 1 : 0), cfa, ra;

		if (rip < base || rip - base >= len)
			return cr_err("vDSO unwinding left the vDSO at 0x%lx", (unsigned long)rip);
		if (rules_at(img, len, pc, &r) || !r.ra_saved ||
		    (r.cfa_reg != DW_REG_RSP && r.cfa_reg != DW_REG_RBP))
			return cr_err("no unwind information for vDSO offset 0x%lx",
				      (unsigned long)pc);
		cfa = (r.cfa_reg == DW_REG_RSP ? rsp : rbp) + r.cfa_off;
		if (read(arg, cfa + r.ra_off, &ra) || (r.rbp_saved && read(arg, cfa + r.rbp_off, &rbp)))
			return cr_err("cannot read the stack at 0x%lx", (unsigned long)cfa);
		if (ra < base || ra - base >= len) {
			*slot = cfa + r.ra_off;
			return 0;
		}
		rsp = cfa;
		rip = ra;
	}
	return cr_err("vDSO frames nest too deep");
}
