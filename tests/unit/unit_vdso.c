/* Unit tests of the vDSO functions (src/vdso.h): the ELF parser on the running vDSO,
 * on truncated, corrupted and synthetic images; the same-kernel comparison; the
 * validation of a dumped layout; the proxy built for a different kernel's vDSO. */
#include <elf.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/syscall.h>

#include "crc32c.h"
#include "sys.h"
#include "vdso.h"
#include "unit.h"

static const uint8_t *vdso_base;
static size_t vdso_len;
static struct vdso_layout self_layout;

/* Our own vDSO: the address from the aux vector, the size from /proc/self/maps. */
static int find_vdso(void)
{
	struct proc_vmas v;
	size_t len;
	char *txt = proc_read_file("/proc/self/maps", &len);

	if (!txt || proc_parse_smaps(txt, len, &v))
		return -1;
	free(txt);
	if (!vdso_find_layout(&v, &self_layout)) {
		proc_vmas_free(&v);
		return -1;
	}
	proc_vmas_free(&v);
	vdso_base = (const uint8_t *)getauxval(AT_SYSINFO_EHDR);
	vdso_len = self_layout.vdso_size;
	return vdso_base && (uint64_t)(uintptr_t)vdso_base == self_layout.vdso_start ? 0 : -1;
}

static uint8_t *copy_vdso(void)
{
	uint8_t *c = malloc(vdso_len);

	memcpy(c, vdso_base, vdso_len);
	return c;
}

static const struct vdso_sym *find_sym(const struct vdso_syms *s, const char *name)
{
	for (int i = 0; i < s->nr; i++)
		if (!strcmp(s->sym[i].name, name))
			return &s->sym[i];
	return NULL;
}

/* Parse `len` bytes of a private copy (so that overreads hit the end of a heap block). */
static int parse_copy(const uint8_t *img, size_t len, struct vdso_syms *s)
{
	uint8_t *c = malloc(len ? len : 1);
	int rc;

	memcpy(c, img, len);
	rc = vdso_parse_elf(c, len, s);
	free(c);
	return rc;
}

static void test_running(void)
{
	static const char *const want[] = {
		"clock_gettime", "__vdso_clock_gettime", "gettimeofday", "__vdso_gettimeofday",
		"time", "__vdso_time", "clock_getres", "__vdso_clock_getres", "getcpu",
		"__vdso_getcpu",
	};
	struct vdso_syms s;
	const struct vdso_sym *a, *b;

	unit_case();
	CHECK(!vdso_parse_elf(vdso_base, vdso_len, &s), "running vDSO: %s", err_text());
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct vdso_sym *v = find_sym(&s, want[i]);

		CHECK(v, "running vDSO lacks %s", want[i]);
		if (v)
			CHECK(v->offset && v->size && v->offset + v->size <= vdso_len,
			      "%s at 0x%lx+0x%lx", want[i], (unsigned long)v->offset,
			      (unsigned long)v->size);
	}
	a = find_sym(&s, "clock_gettime");
	b = find_sym(&s, "__vdso_clock_gettime");
	CHECK(a && b && a->offset == b->offset, "clock_gettime aliases __vdso_clock_gettime");
	for (int i = 0; i < s.nr; i++)
		CHECK(s.sym[i].name[0] && strlen(s.sym[i].name) < sizeof(s.sym[i].name),
		      "symbol %d name", i);

	unit_case();
	{
		struct vdso_runtime rt;

		CHECK(!vdso_runtime(&rt) && rt.present, "vdso_runtime: %s", err_text());
		CHECK(rt.image == vdso_base && rt.layout.vdso_size == vdso_len,
		      "vdso_runtime layout");
		CHECK(rt.crc == crc32c(0, vdso_base, vdso_len), "vdso_runtime crc");
		CHECK(rt.syms.nr == s.nr, "vdso_runtime symbols %d, want %d", rt.syms.nr, s.nr);
	}
	unit_case();
	{
		uint64_t st, en;

		vdso_block(&self_layout, &st, &en);
		CHECK(st <= self_layout.vdso_start && en >= self_layout.vdso_start + vdso_len,
		      "vdso_block covers the vDSO");
		CHECK(!self_layout.vvar_size || (st <= self_layout.vvar_start &&
		      en >= self_layout.vvar_start + self_layout.vvar_size), "block covers vvar");
	}
}

static void test_truncated(void)
{
	const Elf64_Ehdr *eh = (const void *)vdso_base;
	size_t need = eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize;
	struct vdso_syms s;
	int bad = 0;

	unit_case();
	for (size_t len = 0; len < vdso_len; len++) {
		cr_err_reset();
		if (len < need && (parse_copy(vdso_base, len, &s) != -1 || !cr_err_set()))
			bad++;
		else if (len >= need)
			parse_copy(vdso_base, len, &s);
	}
	CHECK(!bad, "%d truncated copies accepted", bad);
}

typedef void (*corrupt_fn)(uint8_t *img);

static Elf64_Ehdr *ehdr(uint8_t *img)
{
	return (Elf64_Ehdr *)img;
}

static Elf64_Shdr *shdr(uint8_t *img, unsigned i)
{
	return (Elf64_Shdr *)(img + ehdr(img)->e_shoff + i * sizeof(Elf64_Shdr));
}

static Elf64_Shdr *section(uint8_t *img, uint32_t type)
{
	for (unsigned i = 0; i < ehdr(img)->e_shnum; i++)
		if (shdr(img, i)->sh_type == type)
			return shdr(img, i);
	return NULL;
}

static Elf64_Sym *func_sym(uint8_t *img)
{
	Elf64_Shdr *ds = section(img, SHT_DYNSYM);

	for (size_t i = 0; i < ds->sh_size / sizeof(Elf64_Sym); i++) {
		Elf64_Sym *s = (Elf64_Sym *)(img + ds->sh_offset) + i;

		if (ELF64_ST_TYPE(s->st_info) == STT_FUNC && s->st_value &&
		    ELF64_ST_BIND(s->st_info) != STB_LOCAL)
			return s;
	}
	return NULL;
}

static Elf64_Shdr *dynstr(uint8_t *img)
{
	return shdr(img, section(img, SHT_DYNSYM)->sh_link);
}

static void c_magic(uint8_t *img) { img[1] = 'X'; }
static void c_class(uint8_t *img) { img[EI_CLASS] = ELFCLASS32; }
static void c_data(uint8_t *img) { img[EI_DATA] = ELFDATA2MSB; }
static void c_shentsize(uint8_t *img) { ehdr(img)->e_shentsize = 40; }
static void c_shnum0(uint8_t *img) { ehdr(img)->e_shnum = 0; }
static void c_shnum_big(uint8_t *img) { ehdr(img)->e_shnum = 0xffff; }
static void c_shoff_end(uint8_t *img) { ehdr(img)->e_shoff = vdso_len; }
static void c_shoff_wrap(uint8_t *img) { ehdr(img)->e_shoff = (uint64_t)-64; }
static void c_shoff_odd(uint8_t *img) { ehdr(img)->e_shoff += 4; }
static void c_no_dynsym(uint8_t *img) { section(img, SHT_DYNSYM)->sh_type = SHT_PROGBITS; }
static void c_dynsym_ent(uint8_t *img) { section(img, SHT_DYNSYM)->sh_entsize = 16; }
static void c_dynsym_odd(uint8_t *img) { section(img, SHT_DYNSYM)->sh_offset += 4; }
static void c_dynsym_size(uint8_t *img) { section(img, SHT_DYNSYM)->sh_size = vdso_len; }
static void c_dynsym_wrap(uint8_t *img) { section(img, SHT_DYNSYM)->sh_size = (uint64_t)-8; }
static void c_link(uint8_t *img) { section(img, SHT_DYNSYM)->sh_link = ehdr(img)->e_shnum; }
static void c_link_big(uint8_t *img) { section(img, SHT_DYNSYM)->sh_link = 0xffffffff; }
static void c_strtab_type(uint8_t *img) { dynstr(img)->sh_type = SHT_NOBITS; }
static void c_strtab_size(uint8_t *img) { dynstr(img)->sh_size = vdso_len; }
static void c_strtab_wrap(uint8_t *img) { dynstr(img)->sh_offset = (uint64_t)-16; }
static void c_name_oob(uint8_t *img) { func_sym(img)->st_name = dynstr(img)->sh_size; }
static void c_name_big(uint8_t *img) { func_sym(img)->st_name = 0xffffffff; }
static void c_name_empty(uint8_t *img) { func_sym(img)->st_name = 0; }
static void c_value_oob(uint8_t *img) { func_sym(img)->st_value = vdso_len; }
static void c_size_oob(uint8_t *img) { func_sym(img)->st_size = vdso_len; }
static void c_size_wrap(uint8_t *img) { func_sym(img)->st_size = (uint64_t)-1; }

/* The string table cut inside the name of a function symbol: no terminating NUL. */
static void c_name_unterminated(uint8_t *img)
{
	dynstr(img)->sh_size = func_sym(img)->st_name + 2;
}

static void c_no_funcs(uint8_t *img)
{
	Elf64_Shdr *ds = section(img, SHT_DYNSYM);

	for (size_t i = 0; i < ds->sh_size / sizeof(Elf64_Sym); i++) {
		Elf64_Sym *s = (Elf64_Sym *)(img + ds->sh_offset) + i;

		s->st_info = ELF64_ST_INFO(ELF64_ST_BIND(s->st_info), STT_OBJECT);
	}
}

static const struct {
	const char *what;
	corrupt_fn fn;
	const char *err;
} corruptions[] = {
	{ "bad magic", c_magic, "not a 64-bit" },
	{ "32-bit class", c_class, "not a 64-bit" },
	{ "big endian", c_data, "not a 64-bit" },
	{ "section header size", c_shentsize, "section headers" },
	{ "no sections", c_shnum0, "section headers" },
	{ "65535 sections", c_shnum_big, "section headers" },
	{ "section headers past the end", c_shoff_end, "section headers" },
	{ "section header offset wraps", c_shoff_wrap, "section headers" },
	{ "section headers unaligned", c_shoff_odd, "section headers" },
	{ "no dynsym", c_no_dynsym, "symbol table" },
	{ "dynsym entry size", c_dynsym_ent, "symbol table" },
	{ "dynsym unaligned", c_dynsym_odd, "symbol table" },
	{ "dynsym past the end", c_dynsym_size, "symbol table" },
	{ "dynsym size wraps", c_dynsym_wrap, "symbol table" },
	{ "dynsym links past the sections", c_link, "string table" },
	{ "dynsym links far away", c_link_big, "string table" },
	{ "dynstr not a string table", c_strtab_type, "string table" },
	{ "dynstr past the end", c_strtab_size, "string table" },
	{ "dynstr offset wraps", c_strtab_wrap, "string table" },
	{ "name past the string table", c_name_oob, "name" },
	{ "name offset huge", c_name_big, "name" },
	{ "empty name", c_name_empty, "name" },
	{ "unterminated name", c_name_unterminated, "name" },
	{ "symbol past the end", c_value_oob, "outside" },
	{ "symbol size past the end", c_size_oob, "outside" },
	{ "symbol size wraps", c_size_wrap, "outside" },
	{ "no functions", c_no_funcs, "no functions" },
};

static void test_corrupted(void)
{
	for (size_t i = 0; i < sizeof(corruptions) / sizeof(corruptions[0]); i++) {
		uint8_t *img = copy_vdso();
		struct vdso_syms s;

		unit_case();
		corruptions[i].fn(img);
		CHECK(vdso_parse_elf(img, vdso_len, &s) == -1, "%s: accepted", corruptions[i].what);
		CHECK(err_has(corruptions[i].err), "%s: error '%s', want '%s'",
		      corruptions[i].what, err_text(), corruptions[i].err);
		free(img);
	}
}

/* Random damage: must never crash (meaningful under AddressSanitizer). */
static void test_random_damage(void)
{
	uint32_t seed = 12345;
	int ok = 0;

	unit_case();
	for (int round = 0; round < 3000; round++) {
		uint8_t *img = copy_vdso();
		struct vdso_syms s;
		int flips = 1 + round % 8;

		for (int f = 0; f < flips; f++) {
			size_t at;

			seed = seed * 1103515245 + 12345;
			/* Mostly the headers and tables, where damage matters. */
			at = (seed >> 8) % (round % 2 ? vdso_len : 512);
			seed = seed * 1103515245 + 12345;
			img[at] = seed >> 16;
		}
		cr_err_reset();
		if (!vdso_parse_elf(img, vdso_len, &s)) {
			ok++;
			for (int i = 0; i < s.nr; i++)
				CHECK(s.sym[i].offset + s.sym[i].size <= vdso_len,
				      "round %d: symbol outside the image", round);
		} else {
			CHECK(cr_err_set(), "round %d: failure without an error", round);
		}
		free(img);
	}
	CHECK(ok > 0, "no damaged copy parsed at all");
}

/* A minimal synthetic vDSO: header, symbols, names, section headers. */
static uint8_t *synth(int nsyms, const char *name, size_t *len)
{
	size_t namelen = strlen(name) + 1 + 4;
	size_t symoff = sizeof(Elf64_Ehdr);
	size_t stroff = symoff + (nsyms + 1) * sizeof(Elf64_Sym);
	size_t strsize = 1 + nsyms * namelen;
	size_t shoff = (stroff + strsize + 7) & ~7UL;
	size_t total = shoff + 3 * sizeof(Elf64_Shdr);
	uint8_t *img = calloc(1, total);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
	Elf64_Shdr *sh = (Elf64_Shdr *)(img + shoff);
	char *str = (char *)img + stroff;

	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_shoff = shoff;
	eh->e_shentsize = sizeof(Elf64_Shdr);
	eh->e_shnum = 3;
	for (int i = 0; i < nsyms; i++) {
		Elf64_Sym *s = (Elf64_Sym *)(img + symoff) + i + 1;
		size_t at = 1 + i * namelen;

		snprintf(str + at, namelen, "%s%03d", name, i);
		s->st_name = at;
		s->st_info = ELF64_ST_INFO(i % 2 ? STB_WEAK : STB_GLOBAL, STT_FUNC);
		s->st_value = 8 + i;
		s->st_size = 1;
	}
	sh[1].sh_type = SHT_DYNSYM;
	sh[1].sh_offset = symoff;
	sh[1].sh_size = (nsyms + 1) * sizeof(Elf64_Sym);
	sh[1].sh_entsize = sizeof(Elf64_Sym);
	sh[1].sh_link = 2;
	sh[2].sh_type = SHT_STRTAB;
	sh[2].sh_offset = stroff;
	sh[2].sh_size = strsize;
	*len = total;
	return img;
}

static void test_synthetic(void)
{
	struct vdso_syms s;
	uint8_t *img;
	size_t len;
	char name[80];

	unit_case();
	img = synth(3, "f", &len);
	CHECK(!parse_copy(img, len, &s) && s.nr == 3, "synthetic: %s", err_text());
	CHECK(s.nr == 3 && !strcmp(s.sym[2].name, "f002") && s.sym[2].offset == 10,
	      "synthetic symbols");
	free(img);

	unit_case();
	img = synth(VDSO_MAX_SYMS, "f", &len);
	CHECK(!parse_copy(img, len, &s) && s.nr == VDSO_MAX_SYMS, "64 symbols: %s", err_text());
	free(img);

	unit_case();
	img = synth(VDSO_MAX_SYMS + 1, "f", &len);
	CHECK(parse_copy(img, len, &s) == -1 && err_has("too many"), "65 symbols: %s",
	      err_text());
	free(img);

	/* Names of 63 characters fit, 64 do not. */
	unit_case();
	memset(name, 'n', 60);
	name[60] = 0;
	img = synth(2, name, &len);
	CHECK(!parse_copy(img, len, &s) && strlen(s.sym[0].name) == 63, "63-char name: %s",
	      err_text());
	free(img);
	unit_case();
	name[60] = 'n';
	name[61] = 0;
	img = synth(2, name, &len);
	CHECK(parse_copy(img, len, &s) == -1 && err_has("name"), "64-char name accepted");
	free(img);

	/* Local and undefined symbols are skipped. */
	unit_case();
	img = synth(2, "f", &len);
	((Elf64_Sym *)(img + sizeof(Elf64_Ehdr)) + 1)->st_info = ELF64_ST_INFO(STB_LOCAL, STT_FUNC);
	((Elf64_Sym *)(img + sizeof(Elf64_Ehdr)) + 2)->st_value = 0;
	CHECK(parse_copy(img, len, &s) == -1 && err_has("no functions"), "no exported: %s",
	      err_text());
	free(img);
}

/* ---- same-kernel comparison ---- */

static void fill_info(VdsoInfo *vi)
{
	uint8_t *bytes = copy_vdso();

	if (vdso_info_fill(vi, &self_layout, bytes, vdso_len))
		CHECK(0, "vdso_info_fill: %s", err_text());
}

static void test_differs(void)
{
	struct vdso_runtime rt;
	VdsoInfo vi;
	const char *why;

	cr_err_reset();
	if (vdso_runtime(&rt)) {
		CHECK(0, "vdso_runtime: %s", err_text());
		return;
	}
	unit_case();
	fill_info(&vi);
	CHECK(vi.n_symbols > 0 && vi.crc32c == rt.crc, "vdso_info_fill");
	why = vdso_differs(&vi, &rt);
	CHECK(!why, "same vDSO differs: %s", why);

	unit_case();
	rt.present = false;
	why = vdso_differs(&vi, &rt);
	CHECK(why && strstr(why, "no vDSO"), "absent vDSO: %s", why ? why : "(same)");
	rt.present = true;

	unit_case();
	vi.image.data[vdso_len / 2] ^= 0x40;
	why = vdso_differs(&vi, &rt);
	CHECK(why && strstr(why, "code"), "changed byte: %s", why ? why : "(same)");
	vi.crc32c = crc32c(0, vi.image.data, vi.image.len);
	why = vdso_differs(&vi, &rt);
	CHECK(why && strstr(why, "code"), "changed byte, crc updated: %s", why ? why : "(same)");
	vi.image.data[vdso_len / 2] ^= 0x40;
	vi.crc32c = rt.crc;

	unit_case();
	vi.image.data[vdso_len - 1] ^= 1;
	why = vdso_differs(&vi, &rt);
	CHECK(why && strstr(why, "code"), "changed last byte: %s", why ? why : "(same)");
	vi.image.data[vdso_len - 1] ^= 1;

	unit_case();
	vi.vdso_size += CR_PAGE_SIZE;
	why = vdso_differs(&vi, &rt);
	CHECK(why && strstr(why, "size"), "vdso size: %s", why ? why : "(same)");
	vi.vdso_size -= CR_PAGE_SIZE;

	unit_case();
	vi.image.len--;
	why = vdso_differs(&vi, &rt);
	CHECK(why && strstr(why, "size"), "image length: %s", why ? why : "(same)");
	vi.image.len++;

	if (self_layout.vvar_size) {
		unit_case();
		vi.vvar_start -= CR_PAGE_SIZE;
		why = vdso_differs(&vi, &rt);
		CHECK(why && strstr(why, "laid out"), "vvar offset: %s", why ? why : "(same)");
		vi.vvar_start += CR_PAGE_SIZE;

		unit_case();
		vi.vvar_size += CR_PAGE_SIZE;
		why = vdso_differs(&vi, &rt);
		CHECK(why && strstr(why, "data pages"), "vvar size: %s", why ? why : "(same)");
		vi.vvar_size -= CR_PAGE_SIZE;

		unit_case();
		vi.has_vvar_size = 0;
		why = vdso_differs(&vi, &rt);
		CHECK(why && strstr(why, "data pages"), "no vvar in image: %s",
		      why ? why : "(same)");
		vi.has_vvar_size = 1;
	}
	if (self_layout.vclock_size) {
		unit_case();
		vi.vvar_vclock_start += CR_PAGE_SIZE;
		why = vdso_differs(&vi, &rt);
		CHECK(why && strstr(why, "laid out"), "vclock offset: %s", why ? why : "(same)");
		vi.vvar_vclock_start -= CR_PAGE_SIZE;
	}

	/* The whole block elsewhere (another ASLR draw) is the same vDSO. */
	unit_case();
	vi.vdso_start += 0x100000;
	vi.vvar_start += 0x100000;
	vi.vvar_vclock_start += 0x100000;
	why = vdso_differs(&vi, &rt);
	CHECK(!why, "moved block differs: %s", why);
	vdso_info_free(&vi);
}

/* ---- dumped layout validation ---- */

static VdsoInfo layout_info(uint64_t start, uint64_t size, uint64_t vvar, uint64_t vvar_size,
			    uint64_t vclock, uint64_t vclock_size)
{
	VdsoInfo vi = VDSO_INFO__INIT;

	vi.vdso_start = start;
	vi.vdso_size = size;
	vi.image.len = size;
	if (vvar_size) {
		vi.has_vvar_start = vi.has_vvar_size = 1;
		vi.vvar_start = vvar;
		vi.vvar_size = vvar_size;
	}
	if (vclock_size) {
		vi.has_vvar_vclock_start = vi.has_vvar_vclock_size = 1;
		vi.vvar_vclock_start = vclock;
		vi.vvar_vclock_size = vclock_size;
	}
	return vi;
}

static void test_layout(void)
{
	static const struct {
		const char *what;
		uint64_t s, n, vs, vn, cs, cn;
		int ok;
	} cases[] = {
		{ "this kernel's", 0x7ff23d977000, 0x2000, 0x7ff23d971000, 0x4000, 0x7ff23d975000,
		  0x2000, 1 },
		{ "vdso only", 0x7ff23d977000, 0x2000, 0, 0, 0, 0, 1 },
		{ "older kernel: vvar after vdso", 0x7fff1000, 0x2000, 0x7fff3000, 0x4000, 0, 0, 1 },
		{ "adjacent at the top", 0x7ffffffef000, 0x2000, 0x7fffffff1000, 0x4000,
		  0x7fffffff5000, 0x2000, 1 },
		{ "vdso unaligned", 0x7ff23d977010, 0x2000, 0, 0, 0, 0, 0 },
		{ "vdso size 0", 0x7ff23d977000, 0, 0, 0, 0, 0, 0 },
		{ "vdso size unaligned", 0x7ff23d977000, 0x2001, 0, 0, 0, 0, 0 },
		{ "vdso larger than 1 MiB", 0x7ff23d900000, 0x101000, 0, 0, 0, 0, 0 },
		{ "vdso in kernel space", 0xffffffffff600000, 0x1000, 0, 0, 0, 0, 0 },
		{ "vdso at the task size", CR_TASK_SIZE, 0x1000, 0, 0, 0, 0, 0 },
		{ "vdso crossing the task size", CR_TASK_SIZE - 0x1000, 0x2000, 0, 0, 0, 0, 0 },
		{ "vvar unaligned", 0x7ff23d977000, 0x2000, 0x7ff23d971800, 0x4000, 0, 0, 0 },
		{ "vvar size unaligned", 0x7ff23d977000, 0x2000, 0x7ff23d971000, 0x3fff, 0, 0, 0 },
		{ "vvar beyond user space", 0x7ff23d977000, 0x2000, (uint64_t)-0x4000, 0x4000, 0, 0,
		  0 },
		{ "vvar size wraps", 0x7ff23d977000, 0x2000, 0x7ff23d971000, (uint64_t)-0x1000, 0, 0,
		  0 },
		{ "vclock unaligned", 0x7ff23d977000, 0x2000, 0, 0, 0x7ff23d975001, 0x2000, 0 },
		{ "vclock too large", 0x7ff23d977000, 0x2000, 0, 0, 0x7ff23d000000, 0x200000, 0 },
		{ "vvar overlaps vdso", 0x7ff23d977000, 0x2000, 0x7ff23d976000, 0x4000, 0, 0, 0 },
		{ "vvar inside vdso", 0x7ff23d977000, 0x4000, 0x7ff23d978000, 0x1000, 0, 0, 0 },
		{ "vclock overlaps vdso", 0x7ff23d977000, 0x2000, 0, 0, 0x7ff23d978000, 0x2000, 0 },
		{ "vclock overlaps vvar", 0x7ff23d977000, 0x2000, 0x7ff23d971000, 0x4000,
		  0x7ff23d974000, 0x2000, 0 },
		{ "vvar equals vclock", 0x7ff23d977000, 0x2000, 0x7ff23d971000, 0x2000,
		  0x7ff23d971000, 0x2000, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		VdsoInfo vi = layout_info(cases[i].s, cases[i].n, cases[i].vs, cases[i].vn,
					  cases[i].cs, cases[i].cn);
		struct vdso_layout l;
		int rc;

		unit_case();
		rc = vdso_layout_from_image(&vi, &l);
		CHECK(rc == (cases[i].ok ? 0 : -1), "layout '%s': %d (%s)", cases[i].what, rc,
		      err_text());
		if (rc)
			CHECK(cr_err_set(), "layout '%s': no error recorded", cases[i].what);
		else
			CHECK(l.vdso_start == cases[i].s && l.vdso_size == cases[i].n &&
			      l.vvar_start == cases[i].vs && l.vvar_size == cases[i].vn &&
			      l.vclock_start == cases[i].cs && l.vclock_size == cases[i].cn,
			      "layout '%s': fields", cases[i].what);
	}
	/* The image bytes must be exactly the vDSO size. */
	{
		VdsoInfo vi = layout_info(0x7ff23d977000, 0x2000, 0, 0, 0, 0);
		struct vdso_layout l;

		unit_case();
		vi.image.len = 0x1000;
		CHECK(vdso_layout_from_image(&vi, &l) == -1, "short image accepted");
		unit_case();
		vi.image.len = 0x3000;
		CHECK(vdso_layout_from_image(&vi, &l) == -1, "long image accepted");
	}
	/* A zero size with has_ set means absent. */
	{
		VdsoInfo vi = layout_info(0x7ff23d977000, 0x2000, 0, 0, 0, 0);
		struct vdso_layout l;

		unit_case();
		vi.has_vvar_size = vi.has_vvar_start = 1;
		vi.vvar_start = 0x1234;
		CHECK(!vdso_layout_from_image(&vi, &l) && !l.vvar_size, "zero vvar: %s",
		      err_text());
	}
	/* The running kernel's own layout. */
	if (vdso_base) {
		VdsoInfo vi = layout_info(self_layout.vdso_start, self_layout.vdso_size,
					  self_layout.vvar_start, self_layout.vvar_size,
					  self_layout.vclock_start, self_layout.vclock_size);
		struct vdso_layout l;

		unit_case();
		CHECK(!vdso_layout_from_image(&vi, &l) && !memcmp(&l, &self_layout, sizeof(l)),
		      "running layout: %s", err_text());
	}
}

/* ---- proxy ---- */

/* Only the patched entries may differ between old and out. */
static int only_entries_changed(const uint8_t *old, const uint8_t *out, size_t len,
				const struct vdso_patch *p, int nr)
{
	for (size_t i = 0; i < len; i++) {
		int in_patch = 0;

		if (old[i] == out[i])
			continue;
		for (int k = 0; k < nr; k++)
			in_patch |= i >= p[k].offset && i < p[k].offset + 14;
		if (!in_patch)
			return 0;
	}
	return 1;
}

static const struct vdso_patch *patch_named(const struct vdso_patch *p, int nr,
					    const char *name)
{
	for (int i = 0; i < nr; i++)
		if (!strcmp(p[i].name, name))
			return &p[i];
	return NULL;
}

/* The running vDSO proxied to itself: a near jump per entry, aliases once. */
static void test_proxy_near(const struct vdso_syms *cur)
{
	struct vdso_patch p[VDSO_MAX_PATCHES];
	uint8_t *out = malloc(vdso_len);
	const uint64_t old_base = 0x7f0000100000, cur_base = 0x7f0000200000;
	const struct vdso_patch *cg;
	int nr = -1;

	unit_case();
	CHECK(!vdso_make_proxy(vdso_base, vdso_len, old_base, cur, cur_base, out, p, &nr),
	      "proxy to itself: %s", err_text());
	CHECK(nr > 0 && nr < cur->nr, "aliases patched once: %d patches, %d symbols", nr,
	      cur->nr);
	for (int i = 0; i < nr; i++) {
		int32_t rel;

		CHECK(p[i].kind == PATCH_JUMP && strncmp(p[i].name, "__vdso_", 7),
		      "patch %s: kind %d", p[i].name, p[i].kind);
		for (int k = 0; k < i; k++)
			CHECK(p[k].offset != p[i].offset, "offset 0x%lx patched twice",
			      (unsigned long)p[i].offset);
		CHECK(p[i].target == cur_base + p[i].offset, "patch %s: target",
		      p[i].name);
		CHECK(out[p[i].offset] == 0xe9, "patch %s: near jump", p[i].name);
		memcpy(&rel, out + p[i].offset + 1, 4);
		CHECK(old_base + p[i].offset + 5 + (int64_t)rel == p[i].target,
		      "patch %s: jump lands on its target", p[i].name);
	}
	cg = patch_named(p, nr, "clock_gettime");
	CHECK(cg, "clock_gettime patched");
	CHECK(only_entries_changed(vdso_base, out, vdso_len, p, nr), "bytes outside entries");
	free(out);
}

/* More than 2 GiB away: the absolute jump through the following 8 bytes. */
static void test_proxy_far(const struct vdso_syms *cur)
{
	struct vdso_patch p[VDSO_MAX_PATCHES];
	uint8_t *out = malloc(vdso_len);
	const uint64_t old_base = 0x100000000, cur_base = 0x7fff00000000;
	int nr = -1;

	unit_case();
	CHECK(!vdso_make_proxy(vdso_base, vdso_len, old_base, cur, cur_base, out, p, &nr),
	      "far proxy: %s", err_text());
	for (int i = 0; i < nr; i++) {
		uint64_t to;

		CHECK(out[p[i].offset] == 0xff && out[p[i].offset + 1] == 0x25 &&
		      !memcmp(out + p[i].offset + 2, "\0\0\0\0", 4), "patch %s: jmp *0(%%rip)",
		      p[i].name);
		memcpy(&to, out + p[i].offset + 6, 8);
		CHECK(to == cur_base + p[i].offset, "patch %s: absolute target", p[i].name);
	}
	CHECK(only_entries_changed(vdso_base, out, vdso_len, p, nr), "bytes outside entries");
	free(out);
}

/* A running vDSO that lacks functions: system calls, the SGX error stub, or refusal. */
static void test_proxy_missing(const struct vdso_syms *all)
{
	struct vdso_patch p[VDSO_MAX_PATCHES];
	uint8_t *out = malloc(vdso_len);
	struct vdso_syms none;
	const struct vdso_patch *cg;
	int nr = -1;

	unit_case();
	memset(&none, 0, sizeof(none));
	CHECK(!vdso_make_proxy(vdso_base, vdso_len, 0x7f0000100000, &none, 0x7f0000200000, out,
			       p, &nr), "no running vDSO functions: %s", err_text());
	cg = patch_named(p, nr, "clock_gettime");
	CHECK(cg && cg->kind == PATCH_SYSCALL && cg->nr == __NR_clock_gettime,
	      "clock_gettime becomes the system call");
	if (cg) {
		int32_t nrv;

		memcpy(&nrv, out + cg->offset + 1, 4);
		CHECK(out[cg->offset] == 0xb8 && nrv == __NR_clock_gettime &&
		      out[cg->offset + 5] == 0x0f && out[cg->offset + 6] == 0x05 &&
		      out[cg->offset + 7] == 0xc3, "mov $nr, %%eax; syscall; ret");
	}
	for (int i = 0; i < nr; i++)
		CHECK(p[i].kind == (strcmp(p[i].name, "sgx_enter_enclave") ? PATCH_SYSCALL :
				    PATCH_ERROR), "patch %s: kind %d", p[i].name, p[i].kind);
	free(out);
	(void)all;

	/* A function with no system call equivalent cannot be proxied. */
	{
		size_t len;
		uint8_t *img = synth(2, "fancy", &len);
		uint8_t *o = malloc(len);

		unit_case();
		CHECK(vdso_make_proxy(img, len, 0x10000, &none, 0x20000, o, p, &nr) == -1 &&
		      err_has("fancy000") && err_has("neither"), "unknown function: %s",
		      err_text());
		free(o);
		free(img);
	}
	/* An entry too small for a jump: synthetic symbols one byte apart. */
	{
		size_t len;
		uint8_t *img = synth(3, "f", &len);
		uint8_t *o = malloc(len);
		struct vdso_syms cur;

		unit_case();
		CHECK(!vdso_parse_elf(img, len, &cur), "synthetic: %s", err_text());
		CHECK(vdso_make_proxy(img, len, 0x10000, &cur, 0x20000, o, p, &nr) == -1 &&
		      err_has("too small"), "one-byte entries: %s", err_text());
		free(o);
		free(img);
	}
	/* A damaged old vDSO is refused, not patched. */
	{
		uint8_t *img = copy_vdso();
		uint8_t *o = malloc(vdso_len);

		unit_case();
		c_shoff_end(img);
		CHECK(vdso_make_proxy(img, vdso_len, 0x10000, all, 0x20000, o, p, &nr) == -1 &&
		      nr == 0, "damaged old vDSO: %s", err_text());
		free(o);
		free(img);
	}
}

static void test_proxy(void)
{
	struct vdso_syms cur;

	cr_err_reset();
	if (vdso_parse_elf(vdso_base, vdso_len, &cur)) {
		CHECK(0, "running vDSO: %s", err_text());
		return;
	}
	test_proxy_near(&cur);
	test_proxy_far(&cur);
	test_proxy_missing(&cur);
}

int main(void)
{
	if (find_vdso()) {
		/* Booted with vdso=0: only what needs no running vDSO. */
		printf("no vDSO in this process: its cases are skipped\n");
		vdso_base = NULL;
		test_synthetic();
		test_layout();
		return unit_done("unit_vdso");
	}
	test_running();
	test_truncated();
	test_corrupted();
	test_random_damage();
	test_synthetic();
	test_differs();
	test_layout();
	test_proxy();
	return unit_done("unit_vdso");
}
