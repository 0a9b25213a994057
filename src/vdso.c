/* The vDSO: its ELF symbol table (parsed with bounds checks), its layout with the
 * [vvar]/[vvar_vclock] data pages, the same-kernel comparison used at restore, the
 * proxy for another kernel, and the restore plan's part: where each process's
 * running vDSO block is, and where it goes. */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "crc32c.h"
#include "cryo.h"
#include "log.h"
#include "plan.h"
#include "sys.h"
#include "task.h"
#include "vdso.h"

static bool in_bounds(size_t len, uint64_t off, uint64_t size)
{
	return off <= len && size <= len - off;
}

static const Elf64_Shdr *find_section(const uint8_t *img, size_t len, const Elf64_Ehdr *eh,
				      uint32_t type)
{
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		const Elf64_Shdr *sh = (const void *)(img + eh->e_shoff + i * sizeof(Elf64_Shdr));

		if (sh->sh_type == type && in_bounds(len, sh->sh_offset, sh->sh_size))
			return sh;
	}
	return NULL;
}

int vdso_parse_elf(const uint8_t *img, size_t len, struct vdso_syms *out)
{
	const Elf64_Ehdr *eh = (const void *)img;
	const Elf64_Shdr *dynsym, *strtab;
	size_t nsyms;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return cr_err("vDSO image is not a 64-bit little-endian ELF");
	if (eh->e_shentsize != sizeof(Elf64_Shdr) || !eh->e_shnum ||
	    !in_bounds(len, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)) ||
	    eh->e_shoff % 8)
		return cr_err("vDSO image: section headers out of bounds");
	dynsym = find_section(img, len, eh, SHT_DYNSYM);
	if (!dynsym || dynsym->sh_entsize != sizeof(Elf64_Sym) || dynsym->sh_offset % 8)
		return cr_err("vDSO image: no valid dynamic symbol table");
	if (dynsym->sh_link >= eh->e_shnum)
		return cr_err("vDSO image: symbol table links to a missing string table");
	strtab = (const void *)(img + eh->e_shoff + dynsym->sh_link * sizeof(Elf64_Shdr));
	if (strtab->sh_type != SHT_STRTAB || !in_bounds(len, strtab->sh_offset, strtab->sh_size))
		return cr_err("vDSO image: string table out of bounds");
	nsyms = dynsym->sh_size / sizeof(Elf64_Sym);
	for (size_t i = 0; i < nsyms; i++) {
		const Elf64_Sym *s = (const void *)(img + dynsym->sh_offset + i * sizeof(Elf64_Sym));
		const char *name;
		size_t maxlen;
		struct vdso_sym *vs;

		if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || !s->st_value)
			continue;
		if (ELF64_ST_BIND(s->st_info) != STB_GLOBAL && ELF64_ST_BIND(s->st_info) != STB_WEAK)
			continue;
		if (s->st_name >= strtab->sh_size)
			return cr_err("vDSO image: symbol name out of bounds");
		name = (const char *)img + strtab->sh_offset + s->st_name;
		maxlen = strtab->sh_size - s->st_name;
		if (!memchr(name, 0, maxlen) || strlen(name) >= sizeof(vs->name) || !name[0])
			return cr_err("vDSO image: bad symbol name");
		if (s->st_value >= len || s->st_size > len - s->st_value)
			return cr_err("vDSO image: symbol %s lies outside the image", name);
		if (out->nr >= VDSO_MAX_SYMS)
			return cr_err("vDSO image: too many symbols");
		vs = &out->sym[out->nr++];
		strcpy(vs->name, name);
		vs->offset = s->st_value;
		vs->size = s->st_size;
	}
	if (!out->nr)
		return cr_err("vDSO image exports no functions");
	return 0;
}

bool vdso_find_layout(const struct proc_vmas *vmas, struct vdso_layout *l)
{
	memset(l, 0, sizeof(*l));
	for (size_t i = 0; i < vmas->nr; i++) {
		const struct proc_vma *v = &vmas->v[i];

		if (!v->path)
			continue;
		if (!strcmp(v->path, "[vdso]")) {
			l->vdso_start = v->start;
			l->vdso_size = v->end - v->start;
		} else if (!strcmp(v->path, "[vvar]")) {
			l->vvar_start = v->start;
			l->vvar_size = v->end - v->start;
		} else if (!strcmp(v->path, "[vvar_vclock]")) {
			l->vclock_start = v->start;
			l->vclock_size = v->end - v->start;
		}
	}
	return l->vdso_size != 0;
}

void vdso_block(const struct vdso_layout *l, uint64_t *start, uint64_t *end)
{
	*start = l->vdso_start;
	*end = l->vdso_start + l->vdso_size;
	if (l->vvar_size) {
		if (l->vvar_start < *start)
			*start = l->vvar_start;
		if (l->vvar_start + l->vvar_size > *end)
			*end = l->vvar_start + l->vvar_size;
	}
	if (l->vclock_size) {
		if (l->vclock_start < *start)
			*start = l->vclock_start;
		if (l->vclock_start + l->vclock_size > *end)
			*end = l->vclock_start + l->vclock_size;
	}
}

/* ---- proxies an earlier restore made ---- */

static const char *const proxy_names[] = {
	"/memfd:" VDSO_PROXY_NAME " (deleted)",
	"/memfd:" VVAR_RESERVE_NAME " (deleted)",
	"/memfd:" VCLOCK_RESERVE_NAME " (deleted)",
};

int vdso_proxy_kind(const struct proc_vma *v)
{
	static const int kinds[] = { VMA_KIND__VMA_VDSO, VMA_KIND__VMA_VVAR,
				     VMA_KIND__VMA_VVAR_VCLOCK };

	for (size_t i = 0; v->path && i < CR_ARRAY_SIZE(proxy_names); i++)
		if (!strcmp(v->path, proxy_names[i]) && !v->shared)
			return kinds[i];
	return 0;
}

bool vdso_find_proxy(const struct proc_vmas *vmas, struct vdso_layout *l)
{
	memset(l, 0, sizeof(*l));
	for (size_t i = 0; i < vmas->nr; i++) {
		const struct proc_vma *v = &vmas->v[i];

		switch (vdso_proxy_kind(v)) {
		case VMA_KIND__VMA_VDSO:
			l->vdso_start = v->start;
			l->vdso_size = v->end - v->start;
			break;
		case VMA_KIND__VMA_VVAR:
			l->vvar_start = v->start;
			l->vvar_size = v->end - v->start;
			break;
		case VMA_KIND__VMA_VVAR_VCLOCK:
			l->vclock_start = v->start;
			l->vclock_size = v->end - v->start;
			break;
		}
	}
	return l->vdso_size != 0;
}

int vdso_proxy_memfd(const char *name, const void *bytes, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0)
		return cr_perr("cannot create the memory file for the vDSO proxy");
	if (ftruncate(fd, len) || (bytes && pwrite(fd, bytes, len, 0) != (ssize_t)len)) {
		close(fd);
		return cr_perr("cannot fill the memory file for the vDSO proxy");
	}
	return fd;
}

int vdso_runtime(struct vdso_runtime *rt)
{
	struct proc_vmas vmas;
	size_t len;
	char *txt;

	memset(rt, 0, sizeof(*rt));
	txt = proc_read_file("/proc/self/maps", &len);
	if (!txt)
		return -1;
	if (proc_parse_smaps(txt, len, &vmas)) {
		free(txt);
		return -1;
	}
	free(txt);
	rt->present = vdso_find_layout(&vmas, &rt->layout);
	proc_vmas_free(&vmas);
	if (!rt->present)
		return 0;
	if (rt->layout.vdso_start != getauxval(AT_SYSINFO_EHDR))
		return cr_err("cryo's own vDSO is not where AT_SYSINFO_EHDR says");
	rt->image = (const uint8_t *)rt->layout.vdso_start;
	rt->crc = crc32c(0, rt->image, rt->layout.vdso_size);
	return vdso_parse_elf(rt->image, rt->layout.vdso_size, &rt->syms);
}

int vdso_info_fill(VdsoInfo *vi, const struct vdso_layout *l, uint8_t *bytes, size_t len)
{
	struct vdso_syms syms;

	vdso_info__init(vi);
	if (vdso_parse_elf(bytes, len, &syms))
		return -1;
	vi->vdso_start = l->vdso_start;
	vi->vdso_size = l->vdso_size;
	if (l->vvar_size) {
		vi->has_vvar_start = vi->has_vvar_size = 1;
		vi->vvar_start = l->vvar_start;
		vi->vvar_size = l->vvar_size;
	}
	if (l->vclock_size) {
		vi->has_vvar_vclock_start = vi->has_vvar_vclock_size = 1;
		vi->vvar_vclock_start = l->vclock_start;
		vi->vvar_vclock_size = l->vclock_size;
	}
	vi->image.data = bytes;
	vi->image.len = len;
	vi->crc32c = crc32c(0, bytes, len);
	vi->symbols = calloc(syms.nr, sizeof(*vi->symbols));
	if (!vi->symbols)
		return cr_err("out of memory");
	for (int i = 0; i < syms.nr; i++) {
		VdsoSymbol *s = malloc(sizeof(*s));

		if (!s)
			return cr_err("out of memory");
		vdso_symbol__init(s);
		s->name = strdup(syms.sym[i].name);
		s->offset = syms.sym[i].offset;
		s->size = syms.sym[i].size;
		vi->symbols[vi->n_symbols++] = s;
		if (!s->name)
			return cr_err("out of memory");
	}
	return 0;
}

void vdso_info_free(VdsoInfo *vi)
{
	for (size_t i = 0; i < vi->n_symbols; i++) {
		free(vi->symbols[i]->name);
		free(vi->symbols[i]);
	}
	free(vi->symbols);
	free(vi->image.data);
	vdso_info__init(vi);
}

static bool range_ok(uint64_t start, uint64_t size)
{
	return size && size <= VDSO_MAX_SIZE && !(start % CR_PAGE_SIZE) &&
	       !(size % CR_PAGE_SIZE) && start < CR_TASK_SIZE && size <= CR_TASK_SIZE - start;
}

/* Both ranges present (validated by range_ok, so no wrap-around) and intersecting. */
static bool overlap(uint64_t a, uint64_t a_size, uint64_t b, uint64_t b_size)
{
	return a_size && b_size && a < b + b_size && b < a + a_size;
}

int vdso_layout_from_image(const VdsoInfo *vi, struct vdso_layout *l)
{
	memset(l, 0, sizeof(*l));
	if (!range_ok(vi->vdso_start, vi->vdso_size) || vi->image.len != vi->vdso_size)
		return cr_err("image: invalid vDSO range 0x%llx+0x%llx",
			      (unsigned long long)vi->vdso_start, (unsigned long long)vi->vdso_size);
	l->vdso_start = vi->vdso_start;
	l->vdso_size = vi->vdso_size;
	if (vi->has_vvar_size && vi->vvar_size) {
		if (!range_ok(vi->vvar_start, vi->vvar_size))
			return cr_err("image: invalid [vvar] range");
		l->vvar_start = vi->vvar_start;
		l->vvar_size = vi->vvar_size;
	}
	if (vi->has_vvar_vclock_size && vi->vvar_vclock_size) {
		if (!range_ok(vi->vvar_vclock_start, vi->vvar_vclock_size))
			return cr_err("image: invalid [vvar_vclock] range");
		l->vclock_start = vi->vvar_vclock_start;
		l->vclock_size = vi->vvar_vclock_size;
	}
	if (overlap(l->vdso_start, l->vdso_size, l->vvar_start, l->vvar_size) ||
	    overlap(l->vdso_start, l->vdso_size, l->vclock_start, l->vclock_size) ||
	    overlap(l->vvar_start, l->vvar_size, l->vclock_start, l->vclock_size))
		return cr_err("image: the vDSO and its data pages overlap");
	return 0;
}

/* Offset of a data area relative to the vDSO, or a marker when absent. */
static int64_t rel(uint64_t start, uint64_t size, uint64_t base)
{
	return size ? (int64_t)(start - base) : INT64_MIN;
}

const char *vdso_differs(const VdsoInfo *img, const struct vdso_runtime *rt)
{
	const struct vdso_layout *l = &rt->layout;

	if (!rt->present)
		return "this kernel maps no vDSO";
	if (img->vdso_size != l->vdso_size || img->image.len != l->vdso_size)
		return "the vDSO size differs";
	if ((img->has_vvar_size ? img->vvar_size : 0) != l->vvar_size ||
	    (img->has_vvar_vclock_size ? img->vvar_vclock_size : 0) != l->vclock_size)
		return "the vDSO data pages differ in size";
	if (rel(img->vvar_start, img->has_vvar_size ? img->vvar_size : 0, img->vdso_start) !=
	    rel(l->vvar_start, l->vvar_size, l->vdso_start) ||
	    rel(img->vvar_vclock_start, img->has_vvar_vclock_size ? img->vvar_vclock_size : 0,
		img->vdso_start) != rel(l->vclock_start, l->vclock_size, l->vdso_start))
		return "the vDSO data pages are laid out differently";
	if (img->crc32c != rt->crc || memcmp(img->image.data, rt->image, l->vdso_size))
		return "the vDSO code differs";
	return NULL;
}

/* ---- proxy ---- */

/* The name without the __vdso_ prefix: "clock_gettime" for both spellings. */
static const char *base_name(const char *name)
{
	return strncmp(name, "__vdso_", 7) ? name : name + 7;
}

struct syscall_equiv {
	const char *name;
	int nr;
};

/* Each vDSO function's system call takes the same leading arguments. */
static const struct syscall_equiv equivalents[] = {
	{ "clock_gettime", __NR_clock_gettime }, { "gettimeofday", __NR_gettimeofday },
	{ "time", __NR_time }, { "clock_getres", __NR_clock_getres },
	{ "getcpu", __NR_getcpu }, { "getrandom", __NR_getrandom },
};

static int equivalent_syscall(const char *name)
{
	for (size_t i = 0; i < sizeof(equivalents) / sizeof(equivalents[0]); i++)
		if (!strcmp(base_name(name), equivalents[i].name))
			return equivalents[i].nr;
	return -1;
}

static const struct vdso_sym *find_sym(const struct vdso_syms *s, const char *name)
{
	for (int i = 0; i < s->nr; i++)
		if (!strcmp(base_name(s->sym[i].name), base_name(name)))
			return &s->sym[i];
	return NULL;
}

/* Bytes available at an entry: up to the next symbol or the end of the image. */
static uint64_t entry_room(const struct vdso_syms *s, uint64_t off, size_t len)
{
	uint64_t next = len;

	for (int i = 0; i < s->nr; i++)
		if (s->sym[i].offset > off && s->sym[i].offset < next)
			next = s->sym[i].offset;
	return next - off;
}

/* jmp rel32 when the target is near, else jmp *0(%rip) with the address after it. */
static size_t encode_jump(uint8_t *at, uint64_t from, uint64_t to, uint64_t room)
{
	int64_t rel = (int64_t)(to - (from + 5));

	if (rel >= INT32_MIN && rel <= INT32_MAX && room >= 5) {
		int32_t r = rel;

		at[0] = 0xe9;
		memcpy(at + 1, &r, 4);
		return 5;
	}
	if (room < 14)
		return 0;
	at[0] = 0xff;
	at[1] = 0x25;
	memset(at + 2, 0, 4);
	memcpy(at + 6, &to, 8);
	return 14;
}

/* mov $nr, %eax; syscall; ret */
static size_t encode_syscall(uint8_t *at, int nr, uint64_t room)
{
	if (room < 8)
		return 0;
	at[0] = 0xb8;
	memcpy(at + 1, &nr, 4);
	at[5] = 0x0f;
	at[6] = 0x05;
	at[7] = 0xc3;
	return 8;
}

/* mov $-EFAULT, %eax; ret: what sgx_enter_enclave gives on a machine without SGX. */
static size_t encode_error(uint8_t *at, uint64_t room)
{
	int32_t err = -14;

	if (room < 6)
		return 0;
	at[0] = 0xb8;
	memcpy(at + 1, &err, 4);
	at[5] = 0xc3;
	return 6;
}

int vdso_make_proxy(const uint8_t *old, size_t len, uint64_t old_base,
		    const struct vdso_syms *cur, uint64_t cur_base, uint8_t *out,
		    struct vdso_patch *patches, int *nr_patches)
{
	struct vdso_syms syms;

	*nr_patches = 0;
	if (vdso_parse_elf(old, len, &syms))
		return -1;
	memcpy(out, old, len);
	for (int i = 0; i < syms.nr; i++) {
		const struct vdso_sym *s = &syms.sym[i], *to;
		struct vdso_patch *pt;
		uint64_t room = entry_room(&syms, s->offset, len);
		bool done = false;
		size_t n;

		for (int k = 0; k < *nr_patches && !done; k++)
			done = patches[k].offset == s->offset;
		if (done)
			continue;	/* an alias of an entry already patched */
		pt = &patches[(*nr_patches)++];
		snprintf(pt->name, sizeof(pt->name), "%s", base_name(s->name));
		pt->offset = s->offset;
		to = find_sym(cur, s->name);
		if (to) {
			pt->kind = PATCH_JUMP;
			pt->target = cur_base + to->offset;
			n = encode_jump(out + s->offset, old_base + s->offset, pt->target, room);
		} else if ((pt->nr = equivalent_syscall(s->name)) >= 0) {
			pt->kind = PATCH_SYSCALL;
			n = encode_syscall(out + s->offset, pt->nr, room);
		} else if (!strcmp(base_name(s->name), "sgx_enter_enclave")) {
			pt->kind = PATCH_ERROR;
			n = encode_error(out + s->offset, room);
		} else {
			return cr_err("the dumped vDSO's function %s exists neither in this "
				      "kernel's vDSO nor as a system call", s->name);
		}
		if (!n)
			return cr_err("the dumped vDSO's function %s is too small (%llu bytes) to "
				      "redirect", s->name, (unsigned long long)room);
	}
	return 0;
}

/* ---- restore: putting the vDSO in place ---- */

static struct vdso_layout shifted(const struct vdso_layout *l, int64_t delta)
{
	struct vdso_layout s = *l;

	s.vdso_start += delta;
	if (s.vvar_size)
		s.vvar_start += delta;
	if (s.vclock_size)
		s.vclock_start += delta;
	return s;
}

int vdso_choose(struct restore_proc *rp)
{
	struct restore_ctx *ctx = rp->ctx;
	struct vdso_place *vp = &rp->vp;
	const VdsoInfo *vi = rp->core->vdso;
	const char *why;

	memset(vp, 0, sizeof(*vp));
	if (!vi)
		return 0;
	if (vdso_layout_from_image(vi, &vp->dst))
		return -1;
	if (vi->image.len != vp->dst.vdso_size)
		return cr_err("image: the vDSO's bytes do not fill its mapping");
	why = vdso_differs(vi, &ctx->rt_vdso);
	if (why && ctx->vdso_mode == CRYO_VDSO_REMAP)
		return cr_err("--vdso=remap: the vDSO of this kernel cannot stand in for the "
			      "dumped one (kernel %s): %s", ctx->inv->kernel_release, why);
	vp->proxy = why || ctx->vdso_mode == CRYO_VDSO_PROXY;
	vp->has_vdso = true;
	pr_info("process %u: vDSO %s%s%s", rp->core->pid, vp->proxy ? "proxy" : "remap",
		why ? ", because " : "", why ? why : "");
	return 0;
}

/* Where the running block is once rp's plan placed it: its children start so. */
static bool running_after(const struct restore_proc *rp, struct vdso_layout *out)
{
	const struct vdso_place *vp = &rp->vp;

	if (!vp->has_vdso || !vp->has_cur)
		return false;
	*out = vp->proxy ? shifted(&vp->cur, (int64_t)(vp->new_vdso - vp->cur.vdso_start)) :
			   shifted(&vp->cur, (int64_t)(vp->dst.vdso_start - vp->cur.vdso_start));
	return true;
}

void vdso_set_current(struct restore_proc *rp)
{
	struct vdso_place *vp = &rp->vp;

	if (rp->parent) {
		vp->has_cur = running_after(rp->parent, &vp->cur);
		return;
	}
	vp->has_cur = rp->ctx->rt_vdso.present;
	if (vp->has_cur)
		vp->cur = rp->ctx->rt_vdso.layout;
}

int vdso_add_busy(const struct restore_proc *rp, struct ranges *busy)
{
	uint64_t s, e;

	if (!rp->vp.has_vdso)
		return 0;
	vdso_block(&rp->vp.dst, &s, &e);
	return ranges_add(busy, s, e);
}

int vdso_place(struct restore_proc *rp, struct ranges *busy)
{
	struct vdso_place *vp = &rp->vp;
	uint64_t cs, ce, at;
	size_t i;

	if (!vp->has_vdso || !vp->has_cur)
		return 0;
	vdso_block(&vp->cur, &cs, &ce);
	if (!vp->proxy) {
		if (ranges_add(busy, cs, ce))
			return -1;
		vp->temp = ranges_find_gap(busy, ce - cs);
		return vp->temp ? 0 : cr_err("process %u: no room to move the vDSO", rp->core->pid);
	}
	/* A proxy: the running block stays where it is if nothing of the task is there
	 * (a child of a proxied parent); else it goes near the dumped one. */
	for (i = 0; i < busy->nr; i++)
		if (busy->r[i].start < ce && cs < busy->r[i].end)
			break;
	if (i == busy->nr) {
		vp->new_vdso = vp->cur.vdso_start;
		return 0;
	}
	if (ranges_add(busy, cs, ce))
		return -1;
	at = ranges_find_gap_near(busy, ce - cs, vp->dst.vdso_start);
	if (!at)
		return cr_err("process %u: no room to move the vDSO", rp->core->pid);
	vp->new_vdso = at + (vp->cur.vdso_start - cs);
	return 0;
}

void vdso_kept_block(const struct restore_proc *rp, uint64_t *s, uint64_t *e)
{
	*s = *e = 0;
	if (rp->vp.has_vdso && rp->vp.has_cur)
		vdso_block(&rp->vp.cur, s, e);
}

static void plan_move_block(struct plan *p, const struct vdso_layout *from, int64_t delta)
{
	const uint64_t starts[3] = { from->vvar_start, from->vclock_start, from->vdso_start };
	const uint64_t sizes[3] = { from->vvar_size, from->vclock_size, from->vdso_size };

	/* Counting, every block counts: the running layout may have more than the
	 * dumped one (a [vvar_vclock], say). */
	for (int i = 0; i < 3; i++)
		if (p->counting || (sizes[i] && delta))
			plan_call(p, "moving the vDSO", 0, __NR_mremap, starts[i], sizes[i], sizes[i],
				  MREMAP_MAYMOVE | MREMAP_FIXED, starts[i] + delta, 0);
}

/* Same kernel: the running block, with its data pages, moves to the dumped place
 * (through a free place when the two overlap: mremap cannot move onto itself). */
static void plan_remap(struct restore_proc *rp, struct plan *p)
{
	const struct vdso_place *vp = &rp->vp;
	uint64_t cs, ce, ds, de;
	int64_t delta = (int64_t)(vp->dst.vdso_start - vp->cur.vdso_start);

	if (p->counting) {
		/* Before any place is known: as many moves as there can be. */
		plan_move_block(p, &vp->dst, 0);
		plan_move_block(p, &vp->dst, 0);
		return;
	}
	vdso_block(&vp->cur, &cs, &ce);
	vdso_block(&vp->dst, &ds, &de);
	if (delta && cs < de && ds < ce) {
		int64_t d1 = (int64_t)(vp->temp - cs);
		struct vdso_layout mid = shifted(&vp->cur, d1);

		plan_move_block(p, &vp->cur, d1);
		plan_move_block(p, &mid, delta - d1);
		return;
	}
	plan_move_block(p, &vp->cur, delta);
}

/* The proxy and the placeholders for the old data pages, from named memory files (a
 * later dump recognises them by name); made once, in the real pass. */
static int plan_proxy_maps(struct restore_proc *rp, struct plan *p)
{
	const struct vdso_layout *dst = &rp->vp.dst;
	const uint64_t starts[3] = { dst->vdso_start, dst->vvar_start, dst->vclock_start };
	const uint64_t sizes[3] = { dst->vdso_size, dst->vvar_size, dst->vclock_size };
	static const char *const names[3] = { VDSO_PROXY_NAME, VVAR_RESERVE_NAME,
					       VCLOCK_RESERVE_NAME };
	static const char *const labels[3] = { "mapping the vDSO proxy", "reserving the old [vvar]",
					       "reserving the old [vvar_vclock]" };

	for (int i = 0; i < 3; i++) {
		if (!sizes[i])
			continue;
		if (!p->counting && rp->proxy_fds[i] < 0) {
			int fd = vdso_proxy_memfd(names[i], i ? NULL : rp->proxy, sizes[i]);

			if (fd < 0)
				return -1;
			rp->proxy_fds[i] = restore_inherit_fd(rp->ctx, fd, names[i]);
			if (rp->proxy_fds[i] < 0)
				return -1;
		}
		plan_call(p, labels[i], 0, __NR_mmap, starts[i], sizes[i],
			  i ? PROT_NONE : PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED,
			  rp->proxy_fds[i], 0);
	}
	return 0;
}

/* A proxy: the running block moves out of the way; the old range becomes ordinary
 * memory holding the old code with redirected entries, the old data pages PROT_NONE
 * placeholders so stray reads fault. */
static int plan_proxy(struct restore_proc *rp, struct plan *p)
{
	const struct vdso_runtime *rt = &rp->ctx->rt_vdso;
	const struct vdso_place *vp = &rp->vp;
	const VdsoInfo *vi = rp->core->vdso;
	struct vdso_patch patches[VDSO_MAX_PATCHES];
	uint64_t running = 0;
	int n;

	if (p->counting)
		plan_move_block(p, &vp->dst, 0);
	else if (vp->has_cur) {
		plan_move_block(p, &vp->cur, (int64_t)(vp->new_vdso - vp->cur.vdso_start));
		running = vp->new_vdso;
	}
	free(rp->proxy);
	rp->proxy = malloc(vi->image.len);
	if (!rp->proxy)
		return cr_err("out of memory");
	if (vdso_make_proxy(vi->image.data, vi->image.len, vp->dst.vdso_start, &rt->syms,
			    running, rp->proxy, patches, &n))
		return -1;
	for (int i = 0; i < n && !p->counting; i++)
		pr_debug("vDSO proxy: %s -> %s", patches[i].name,
			 patches[i].kind == PATCH_JUMP ? "the running vDSO" :
			 patches[i].kind == PATCH_SYSCALL ? "a system call" : "an error return");
	return plan_proxy_maps(rp, p);
}

int vdso_plan(struct restore_proc *rp, struct plan *p)
{
	const struct vdso_place *vp = &rp->vp;

	if (!vp->has_vdso)
		return 0;
	if (vp->proxy)
		return plan_proxy(rp, p);
	if (!vp->has_cur && !p->counting)
		return cr_err("process %u: no running vDSO to put in place of the dumped one",
			      rp->core->pid);
	plan_remap(rp, p);
	return 0;
}
