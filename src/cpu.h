/* CPU identity and features: recorded at dump, compared at restore so that a process
 * never resumes on a CPU that lacks an instruction set it may be using. */
#ifndef CRYO_CPU_H
#define CRYO_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "cryo.pb-c.h"

enum {
	CPUW_1_ECX, CPUW_1_EDX, CPUW_7_EBX, CPUW_7_ECX, CPUW_7_EDX, CPUW_7_1_EAX,
	CPUW_X1_ECX, CPUW_X1_EDX, CPUW_D_1_EAX,
	CPU_NR_WORDS
};

#define CPU_MAX_XCOMP 64

struct xcomp {
	uint32_t offset, size;		/* size 0: unknown/absent */
};

struct cpu_info {
	char vendor[13];
	char model[49];
	uint32_t family, model_id;
	uint32_t words[CPU_NR_WORDS];
	uint64_t xcr0;
	uint32_t xsave_size;
	struct xcomp xcomp[CPU_MAX_XCOMP];
};

void cpu_read(struct cpu_info *ci);
/* Fill a CpuInfo message; `words` must have CPU_NR_WORDS slots, `comps` and `cptrs`
 * CPU_MAX_XCOMP, all living as long as pb. */
void cpu_to_pb(const struct cpu_info *ci, CpuInfo *pb, uint32_t *words,
	       XstateComponent *comps, XstateComponent **cptrs);
int cpu_from_pb(const CpuInfo *pb, struct cpu_info *ci);
/* Names of features `need` has and `have` lacks, comma-separated into buf; returns
 * how many (0: compatible). Pure. */
int cpu_missing(const struct cpu_info *need, const struct cpu_info *have, char *buf,
		size_t len);
/* The user-visible feature names `ci` has, comma-separated. */
void cpu_feature_list(const struct cpu_info *ci, char *buf, size_t len);

/* Rewrite an xstate buffer saved on CPU `from` for CPU `to`: `dst` holds a buffer of
 * this CPU's size (e.g. the new thread's own xstate) and receives the legacy area,
 * a header limited to what `to` has, and every component both have, moved to its
 * offset here. Pure. Returns 0, or -1 if the source buffer is malformed. */
int cpu_xstate_convert(const uint8_t *src, size_t src_len, const struct cpu_info *from,
		       uint8_t *dst, size_t dst_len, const struct cpu_info *to);

#endif
