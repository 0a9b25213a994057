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

struct cpu_info {
	char vendor[13];
	char model[49];
	uint32_t family, model_id;
	uint32_t words[CPU_NR_WORDS];
	uint64_t xcr0;
	uint32_t xsave_size;
};

void cpu_read(struct cpu_info *ci);
/* Fill a CpuInfo message; `words` must have CPU_NR_WORDS slots and live as long. */
void cpu_to_pb(const struct cpu_info *ci, CpuInfo *pb, uint32_t *words);
int cpu_from_pb(const CpuInfo *pb, struct cpu_info *ci);
/* Names of features `need` has and `have` lacks, comma-separated into buf; returns
 * how many (0: compatible). Pure. */
int cpu_missing(const struct cpu_info *need, const struct cpu_info *have, char *buf,
		size_t len);
/* The user-visible feature names `ci` has, comma-separated. */
void cpu_feature_list(const struct cpu_info *ci, char *buf, size_t len);

#endif
