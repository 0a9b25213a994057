/* The vDSO: finding it in a process, parsing its ELF symbol table (bounds-checked: the
 * bytes come from an untrusted image), deciding at restore whether the running
 * kernel's vDSO is the dumped one, and moving it into place. */
#ifndef CRYO_VDSO_H
#define CRYO_VDSO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cryo.pb-c.h"
#include "proc.h"

#define VDSO_MAX_SIZE (1u << 20)
#define VDSO_MAX_SYMS 64

struct vdso_sym {
	char name[64];
	uint64_t offset;
	uint64_t size;
};

struct vdso_syms {
	struct vdso_sym sym[VDSO_MAX_SYMS];
	int nr;
};

/* Where the vDSO and its data pages are in one address space. */
struct vdso_layout {
	uint64_t vdso_start, vdso_size;
	uint64_t vvar_start, vvar_size;		/* 0 size: absent */
	uint64_t vclock_start, vclock_size;
};

/* Parse the exported function symbols of a vDSO image. Pure; 0 or -1 (recorded). */
int vdso_parse_elf(const uint8_t *img, size_t len, struct vdso_syms *out);
/* Find the special mappings in a parsed maps list. Returns false if no [vdso]. */
bool vdso_find_layout(const struct proc_vmas *vmas, struct vdso_layout *out);
/* The [vdso]/[vvar] block as one range [start, end). */
void vdso_block(const struct vdso_layout *l, uint64_t *start, uint64_t *end);

/* The running kernel's vDSO as seen in cryo itself. */
struct vdso_runtime {
	struct vdso_layout layout;
	const uint8_t *image;		/* our own mapping */
	struct vdso_syms syms;
	uint32_t crc;
	bool present;
};
int vdso_runtime(struct vdso_runtime *rt);

/* Record the vDSO of a dumped process (image bytes read by the caller). */
int vdso_info_fill(VdsoInfo *vi, const struct vdso_layout *l, uint8_t *bytes, size_t len);
void vdso_info_free(VdsoInfo *vi);

/* Why the dumped vDSO differs from the running one, or NULL if it is the same
 * (same bytes, symbols and data-page layout). Pure. */
const char *vdso_differs(const VdsoInfo *img, const struct vdso_runtime *rt);
/* The dumped layout (validated: page-aligned, sane sizes, no overlap). */
int vdso_layout_from_image(const VdsoInfo *vi, struct vdso_layout *l);

/* ---- proxy (restoring on a kernel whose vDSO differs) ---- */

/* A proxy is mapped from memory files with these names, so that a later dump knows
 * it for the vDSO the program sees (and the real one for cryo's alone). */
#define VDSO_PROXY_NAME "cryo-vdso-proxy"
#define VVAR_RESERVE_NAME "cryo-vvar"
#define VCLOCK_RESERVE_NAME "cryo-vvar-vclock"

/* The VMA kind a mapping of an earlier proxy stands for (VMA_VDSO, VMA_VVAR,
 * VMA_VVAR_VCLOCK), or 0. Pure. */
int vdso_proxy_kind(const struct proc_vma *v);
/* The layout of an earlier proxy in a maps list. Pure. */
bool vdso_find_proxy(const struct proc_vmas *vmas, struct vdso_layout *l);
/* A memory file named `name` of `len` bytes (copied from bytes unless NULL). */
int vdso_proxy_memfd(const char *name, const void *bytes, size_t len);

#define VDSO_MAX_PATCHES VDSO_MAX_SYMS

struct vdso_patch {
	char name[64];
	uint64_t offset;		/* entry offset in the old vDSO */
	enum { PATCH_JUMP, PATCH_SYSCALL, PATCH_ERROR } kind;
	uint64_t target;		/* PATCH_JUMP: absolute address in the new vDSO */
	int nr;				/* PATCH_SYSCALL: the equivalent system call */
};

/* Build the proxy: the old vDSO's bytes (`old`, `len`, meant to live at old_base) with
 * every exported function's entry replaced by a jump to the same function of the
 * running vDSO (symbols `cur`, living at cur_base), or by a stub making the
 * equivalent system call when the running vDSO lacks the function. Pure; the
 * patches applied are listed in `patches`. -1 (recorded) if a function has neither. */
int vdso_make_proxy(const uint8_t *old, size_t len, uint64_t old_base,
		    const struct vdso_syms *cur, uint64_t cur_base, uint8_t *out,
		    struct vdso_patch *patches, int *nr_patches);

/* ---- restore: putting the vDSO in place (the plan's part) ---- */

struct restore_proc;
struct plan;
struct ranges;

/* Remap or proxy, from the process's image and the running kernel (rp->vp). */
int vdso_choose(struct restore_proc *rp);
/* Where the running vDSO block is when rp's plan starts: cryo's for the root, for a
 * child where its parent's plan put it. Call in tree order, after the parent's
 * vdso_place. */
void vdso_set_current(struct restore_proc *rp);
/* The dumped block: room no plan may take. */
int vdso_add_busy(const struct restore_proc *rp, struct ranges *busy);
/* Where the running block goes on its way (remap) or to stay (proxy); `busy` holds
 * everything taken in the task. */
int vdso_place(struct restore_proc *rp, struct ranges *busy);
/* The block that clearing the task's address space keeps ([*s, *e), maybe empty). */
void vdso_kept_block(const struct restore_proc *rp, uint64_t *s, uint64_t *e);
/* The calls moving the running vDSO to the dumped place, or making the proxy. */
int vdso_plan(struct restore_proc *rp, struct plan *p);

#endif
