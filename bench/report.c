/* Reporting: the human-readable table (limits, then each cryo figure against its limit
 * and target), the one-line summary, and the same results as JSON. */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "cryo.h"

void fmt_time(char *buf, size_t len, double secs)
{
	if (secs < 1e-3)
		snprintf(buf, len, "%.0f us", secs * 1e6);
	else if (secs < 0.1)
		snprintf(buf, len, "%.2f ms", secs * 1e3);
	else
		snprintf(buf, len, "%.3f s", secs);
}

void fmt_bytes(char *buf, size_t len, double bytes)
{
	if (bytes < 1024)
		snprintf(buf, len, "%.0f B", bytes);
	else if (bytes < MiB)
		snprintf(buf, len, "%.1f KiB", bytes / 1024);
	else if (bytes < GiB)
		snprintf(buf, len, "%.1f MiB", bytes / MiB);
	else
		snprintf(buf, len, "%.2f GiB", bytes / GiB);
}

static void fmt_value(char *buf, size_t len, double v, bool bytes)
{
	if (bytes)
		fmt_bytes(buf, len, v);
	else
		fmt_time(buf, len, v);
}

void report_header(void)
{
	char sz[32];

	fmt_bytes(sz, sizeof(sz), cfg.size);
	printf("cryo bench  %s  rev %s  cryo %s\n", host.time, cfg.rev, cryo_version());
	printf("host: %s, %d CPUs (%s), %.1f GiB RAM, THP %s\n", host.kernel, host.cpus,
	       host.cpu, host.mem_bytes / GiB, host.thp);
	printf("memory: %s; load average %.1f on %d CPUs at start%s\n", host.memory,
	       host.load_start, host.cpus, host.load_start > host.cpus ? " (BUSY: expect noise)" : "");
	printf("images and write baseline: %s (%s)\n", cfg.dir, host.fs);
	printf("reference: %s\n", cfg.criu_note);
	printf("page cache: WARM - nothing is dropped; images and baseline files are not "
	       "fsynced (except the fsync limit)\n");
	printf("N = %s; runs: %d per large case, %d per idle case, after %d unrecorded warm-up "
	       "cycle(s); ratios are median/median (and min/min) of interleaved runs\n\n", sz,
	       cfg.runs, cfg.idle_runs, cfg.warmup);
	fflush(stdout);
}

static void print_limit(int i, const struct limit *l)
{
	char med[32] = "-", mn[32] = "-", rate[32] = "";

	if (l->s.n) {
		fmt_time(med, sizeof(med), samples_median(&l->s));
		fmt_time(mn, sizeof(mn), samples_min(&l->s));
		if (l->rate && l->bytes > 0)
			snprintf(rate, sizeof(rate), "%.2f GB/s", l->bytes / samples_median(&l->s) / 1e9);
	}
	printf("  L%-2d %-44s %10s %10s  %2d  %-11s %s\n", i + 1, l->name, med, mn, l->s.n, rate,
	       l->note);
}

static int limit_index(const struct results *r, const char *name)
{
	for (int i = 0; i < r->nr_limits; i++)
		if (!strcmp(r->limits[i].name, name))
			return i;
	return -1;
}

static bool has_value(const struct row *w)
{
	return !w->error[0] && w->s.n > 0;
}

static double ratio(const struct row *w)
{
	return w->limit > 0 && has_value(w) ? samples_median(&w->s) / w->limit : 0;
}

/* 1 met, 0 missed, -1 no target. A failed measurement misses. */
static int met(const struct row *w)
{
	if (w->tk == TGT_NONE)
		return -1;
	if (!has_value(w))
		return 0;
	if (w->tk == TGT_ABS)
		return samples_median(&w->s) < w->target;
	return ratio(w) > 0 && ratio(w) <= w->target;
}

static void fmt_target(char *buf, size_t len, const struct row *w)
{
	if (w->tk == TGT_ABS)
		snprintf(buf, len, "< %.0f ms", w->target * 1e3);
	else if (w->tk == TGT_RATIO)
		snprintf(buf, len, w->target < 0.1 ? "<= %.2fx" : "<= %.1fx", w->target);
	else
		buf[0] = 0;
}

/* One figure's line, and the header above them: the same columns. */
#define ROW_FMT "  %-12s %-24s %10s %10s  %-14s %7s %7s  %-8s %-6s %s\n"

static void print_row(const struct results *r, const struct row *w)
{
	char med[32] = "-", mn[32] = "", lim[48] = "", rt[16] = "", rtm[16] = "", tgt[24];
	const char *status = "";
	int li = limit_index(r, w->limit_name), m = met(w);

	if (has_value(w)) {
		fmt_value(med, sizeof(med), samples_median(&w->s), w->bytes);
		fmt_value(mn, sizeof(mn), samples_min(&w->s), w->bytes);
	}
	if (w->limit > 0) {
		char v[32];

		fmt_value(v, sizeof(v), w->limit, w->bytes);
		if (li >= 0)
			snprintf(lim, sizeof(lim), "L%d %s", li + 1, v);
		else
			snprintf(lim, sizeof(lim), "%s", v);
	}
	if (ratio(w) > 0) {
		snprintf(rt, sizeof(rt), "%.2fx", ratio(w));
		snprintf(rtm, sizeof(rtm), "%.2fx", samples_min(&w->s) / w->limit_min);
	}
	fmt_target(tgt, sizeof(tgt), w);
	if (m >= 0)
		status = w->headline ? (m ? "OK" : "MISS") : (m ? "(ok)" : "(miss)");
	printf(ROW_FMT, w->group, w->name, med, mn, lim, rt, rtm, tgt, status, w->note);
	if (w->error[0])
		printf("  %-12s   FAILED: %s\n", "", w->error);
}

void report_table(const struct results *r)
{
	printf("machine limits (same run)                        median        min   n\n");
	for (int i = 0; i < r->nr_limits; i++)
		print_limit(i, &r->limits[i]);
	printf("\n" ROW_FMT, "case", "figure", "median", "min", "limit", "ratio", "(min)",
	       "target", "", "note");
	for (int i = 0; i < r->nr_rows; i++) {
		if (i && strcmp(r->rows[i].group, r->rows[i - 1].group))
			printf("\n");
		print_row(r, &r->rows[i]);
	}
	printf("\n  load average %.1f at the end\n", host.load_end);
	printf("  OK/MISS: issue targets on the CLI figures (counted below); (ok)/(miss): same "
	       "target, libcryo, for reference\n");
}

/* "N/M targets met; <group> <figure> <value> OK|MISS, ..."; returns the misses. */
int report_summary(const struct results *r, char *line, size_t len)
{
	int total = 0, ok = 0;
	size_t at;
	char body[1024] = "";

	for (int i = 0; i < r->nr_rows; i++) {
		const struct row *w = &r->rows[i];
		char v[32] = "failed";
		size_t n = strlen(body);
		int m = met(w);

		if (!w->headline || m < 0)
			continue;
		total++;
		ok += m;
		if (has_value(w) && w->tk == TGT_ABS)
			fmt_time(v, sizeof(v), samples_median(&w->s));
		else if (has_value(w))
			snprintf(v, sizeof(v), "%.2fx", ratio(w));
		snprintf(body + n, sizeof(body) - n, "%s%s %s %s %s", n ? ", " : "", w->group,
			 w->name, v, m ? "OK" : "MISS");
	}
	at = snprintf(line, len, "SUMMARY: %d/%d targets met", ok, total);
	if (at < len)
		snprintf(line + at, len - at, "; %s", body);
	return total - ok;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_samples(FILE *f, const struct samples *s)
{
	fprintf(f, "\"median\": %.9g, \"min\": %.9g, \"samples\": [", s->n ? samples_median(s) : 0,
		s->n ? samples_min(s) : 0);
	for (int i = 0; i < s->n; i++)
		fprintf(f, "%s%.9g", i ? ", " : "", s->v[i]);
	fprintf(f, "]");
}

static void json_limit(FILE *f, const struct limit *l, bool last)
{
	fprintf(f, "    {\"name\": ");
	json_str(f, l->name);
	fprintf(f, ", \"unit\": \"s\", \"bytes\": %.0f, ", l->bytes);
	json_samples(f, &l->s);
	fprintf(f, ", \"note\": ");
	json_str(f, l->note);
	fprintf(f, "}%s\n", last ? "" : ",");
}

static void json_row(FILE *f, const struct row *w, bool last)
{
	static const char *const kinds[] = { "null", "\"abs_seconds\"", "\"ratio\"" };
	int m = met(w);

	fprintf(f, "    {\"case\": ");
	json_str(f, w->group);
	fprintf(f, ", \"figure\": ");
	json_str(f, w->name);
	fprintf(f, ", \"unit\": \"%s\", ", w->bytes ? "bytes" : "s");
	json_samples(f, &w->s);
	fprintf(f, ",\n     \"limit_name\": ");
	json_str(f, w->limit_name);
	fprintf(f, ", \"limit\": %.9g, \"limit_min\": %.9g, \"ratio\": %.6g, \"ratio_min\": %.6g",
		w->limit, w->limit_min, ratio(w),
		ratio(w) > 0 ? samples_min(&w->s) / w->limit_min : 0);
	fprintf(f, ", \"target_kind\": %s, \"target\": %g, \"met\": %s, \"headline\": %s",
		kinds[w->tk], w->target, m < 0 ? "null" : m ? "true" : "false",
		w->headline ? "true" : "false");
	fprintf(f, ",\n     \"note\": ");
	json_str(f, w->note);
	fprintf(f, ", \"error\": ");
	json_str(f, w->error);
	fprintf(f, "}%s\n", last ? "" : ",");
}

int report_json(const struct results *r, const char *path, const char *summary)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -1;
	fprintf(f, "{\n  \"schema\": 1,\n  \"time\": ");
	json_str(f, host.time);
	fprintf(f, ",\n  \"rev\": ");
	json_str(f, cfg.rev);
	fprintf(f, ",\n  \"cryo_version\": ");
	json_str(f, cryo_version());
	fprintf(f, ",\n  \"host\": {\"kernel\": ");
	json_str(f, host.kernel);
	fprintf(f, ", \"cpu\": ");
	json_str(f, host.cpu);
	fprintf(f, ", \"cpus\": %d, \"mem_bytes\": %.0f, \"thp\": ", host.cpus, host.mem_bytes);
	json_str(f, host.thp);
	fprintf(f, ", \"dir\": ");
	json_str(f, cfg.dir);
	fprintf(f, ", \"fs\": ");
	json_str(f, host.fs);
	fprintf(f, ", \"memory\": ");
	json_str(f, host.memory);
	fprintf(f, ", \"load_start\": %.2f, \"load_end\": %.2f", host.load_start, host.load_end);
	fprintf(f, "},\n  \"reference\": ");
	json_str(f, cfg.criu_note);
	fprintf(f, ",\n  \"page_cache\": \"warm\",\n");
	fprintf(f, "  \"config\": {\"size_bytes\": %zu, \"runs\": %d, \"idle_runs\": %d, "
		"\"vmas\": %d, \"lib\": %s},\n", cfg.size, cfg.runs, cfg.idle_runs, cfg.nr_vmas,
		cfg.lib ? "true" : "false");
	fprintf(f, "  \"limits\": [\n");
	for (int i = 0; i < r->nr_limits; i++)
		json_limit(f, &r->limits[i], i == r->nr_limits - 1);
	fprintf(f, "  ],\n  \"rows\": [\n");
	for (int i = 0; i < r->nr_rows; i++)
		json_row(f, &r->rows[i], i == r->nr_rows - 1);
	fprintf(f, "  ],\n  \"summary\": ");
	json_str(f, summary);
	fprintf(f, "\n}\n");
	return fclose(f) ? -1 : 0;
}
