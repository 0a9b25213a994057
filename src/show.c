/* `cryo show`: a summary of an image (the tree; per process its threads, memory by
 * kind and fds by kind), and every file of it as one JSON document, metadata through
 * the protobuf descriptors, raw page files as a summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cryo.h"
#include "image.h"
#include "log.h"
#include "stats.h"
#include "sys.h"

#define SHOW_BYTES_MAX 64

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void indent(FILE *out, int depth)
{
	fprintf(out, "%*s", depth * 2, "");
}

static void print_message(FILE *out, const ProtobufCMessage *m, int depth);

static void print_bytes(FILE *out, const ProtobufCBinaryData *b)
{
	if (b->len > SHOW_BYTES_MAX) {
		fprintf(out, "{\"bytes\": %zu}", b->len);
		return;
	}
	fputc('"', out);
	for (size_t i = 0; i < b->len; i++)
		fprintf(out, "%02x", b->data[i]);
	fputc('"', out);
}

static void print_enum(FILE *out, const ProtobufCEnumDescriptor *ed, int v)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);

	if (ev)
		json_string(out, ev->name);
	else
		fprintf(out, "%d", v);
}

/* One value of a field, from a pointer to it. */
static void print_value(FILE *out, const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(out, "%d", *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		fprintf(out, "%u", *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(out, "%lld", (long long)*(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		/* Addresses read better in hex; JSON has no hex, so as a string. */
		if (*(const uint64_t *)p > 0xffffffffULL)
			fprintf(out, "\"0x%llx\"", (unsigned long long)*(const uint64_t *)p);
		else
			fprintf(out, "%llu", (unsigned long long)*(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		fprintf(out, "%g", *(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		fprintf(out, "%g", *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)p ? "true" : "false", out);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		print_enum(out, f->descriptor, *(const int *)p);
		break;
	case PROTOBUF_C_TYPE_STRING:
		json_string(out, *(char *const *)p ? *(char *const *)p : "");
		break;
	case PROTOBUF_C_TYPE_BYTES:
		print_bytes(out, p);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		print_message(out, *(const ProtobufCMessage *const *)p, depth);
		break;
	}
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

static bool field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const char *base = (const char *)m;

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)(base + f->quantifier_offset) > 0;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
		if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING)
			return *(void *const *)(base + f->offset) != NULL;
		return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
	}
	if (f->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(void *const *)(base + f->offset) != NULL;
	return true;
}

static void print_message(FILE *out, const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	bool first = true;

	fputs("{", out);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (!field_present(m, f))
			continue;
		fputs(first ? "\n" : ",\n", out);
		first = false;
		indent(out, depth + 1);
		json_string(out, f->name);
		fputs(": ", out);
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const char *arr = *(char *const *)(base + f->offset);
			bool nested = f->type == PROTOBUF_C_TYPE_MESSAGE;

			fputs("[", out);
			for (size_t k = 0; k < n; k++) {
				if (k)
					fputs(nested ? "," : ", ", out);
				if (nested) {
					fputs("\n", out);
					indent(out, depth + 2);
				}
				print_value(out, f, arr + k * value_size(f), depth + 2);
			}
			if (nested) {
				fputs("\n", out);
				indent(out, depth + 1);
			}
			fputs("]", out);
		} else {
			print_value(out, f, base + f->offset, depth + 1);
		}
	}
	if (!first) {
		fputs("\n", out);
		indent(out, depth);
	}
	fputs("}", out);
}

#define CR_KINDS (sizeof(kinds) / sizeof(kinds[0]))

struct kind_by_name {
	const char *prefix;
	uint16_t kind;
	const ProtobufCMessageDescriptor *desc;
};

static const struct kind_by_name kinds[] = {
	{ "pstree.img", IMAGE_KIND__IMG_PSTREE, &ps_tree__descriptor },
	{ "core-", IMAGE_KIND__IMG_CORE, &core__descriptor },
	{ "pagemap-", IMAGE_KIND__IMG_PAGEMAP, &page_map__descriptor },
	{ "files.img", IMAGE_KIND__IMG_FILES, &file_table__descriptor },
	{ "shmem.img", IMAGE_KIND__IMG_SHMEM, &shmem_table__descriptor },
	{ "ipc.img", IMAGE_KIND__IMG_IPC, &ipc_table__descriptor },
};

static int show_file(FILE *out, struct img_dir *d, const struct img_file_rec *rec)
{
	for (size_t i = 0; i < CR_KINDS; i++) {
		ProtobufCMessage *m;

		if (strncmp(rec->name, kinds[i].prefix, strlen(kinds[i].prefix)))
			continue;
		m = img_read_msg(d, rec->name, kinds[i].kind, kinds[i].desc);
		if (!m)
			return -1;
		print_message(out, m, 2);
		protobuf_c_message_free_unpacked(m, NULL);
		return 0;
	}
	fprintf(out, "{\"raw\": true, \"bytes\": %llu, \"pages\": %llu}",
		(unsigned long long)rec->size, (unsigned long long)(rec->size / 4096));
	return 0;
}

/* ---- the summary ---- */

static void human(FILE *out, uint64_t n)
{
	char b[32];

	stats_human_bytes(n, b, sizeof(b));
	fputs(b, out);
}

static const char *file_kind_name(const FileTable *ft, uint32_t id)
{
	for (size_t i = 0; ft && i < ft->n_files; i++)
		if (ft->files[i]->id == id) {
			const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
				&file_kind__descriptor, ft->files[i]->kind);

			return ev ? ev->name + (strncmp(ev->name, "FILE_", 5) ? 0 : 5) : "?";
		}
	return "?";
}

static void summary_memory(FILE *out, const Core *c, const PageMap *pm)
{
	static const char *const names[] = { "", "anonymous", "shared anonymous", "file",
					     "shared file", "vdso", "vvar", "vvar" };
	uint64_t by_kind[CR_ARRAY_SIZE(names)] = { 0 };
	bool first = true;

	for (size_t i = 0; c->mm && i < c->mm->n_vmas; i++) {
		const Vma *v = c->mm->vmas[i];

		if (v->kind > 0 && (size_t)v->kind < CR_ARRAY_SIZE(names) && v->end > v->start)
			by_kind[v->kind] += v->end - v->start;
	}
	fputs("    memory:", out);
	for (size_t k = 1; k <= 4; k++) {
		if (!by_kind[k])
			continue;
		fprintf(out, "%s %s ", first ? "" : ",", names[k]);
		human(out, by_kind[k]);
		first = false;
	}
	fputs(first ? " none" : "", out);
	if (pm) {
		uint64_t parent = 0;

		fputs("; saved ", out);
		human(out, pm->total_pages * 4096);
		fprintf(out, " (%llu pages)", (unsigned long long)pm->total_pages);
		for (size_t i = 0; i < pm->n_runs; i++)
			parent += pm->runs[i]->in_parent ? pm->runs[i]->nr_pages : 0;
		if (parent)
			fprintf(out, ", %llu pages in the parent image",
				(unsigned long long)parent);
	}
	fputc('\n', out);
}

/* fds by kind, in the order each kind is first met. */
static void summary_fds(FILE *out, const Core *c, const FileTable *ft)
{
	const char *kind[32];
	size_t count[32], nk = 0;

	for (size_t i = 0; i < c->n_fds; i++) {
		const char *k = file_kind_name(ft, c->fds[i]->file_id);
		size_t j = 0;

		while (j < nk && strcmp(kind[j], k))
			j++;
		if (j == nk && nk < CR_ARRAY_SIZE(kind)) {
			kind[nk] = k;
			count[nk++] = 0;
		}
		if (j < nk)
			count[j]++;
	}
	fprintf(out, "    fds: %zu", c->n_fds);
	for (size_t j = 0; j < nk; j++)
		fprintf(out, "%s%zu %s", j ? ", " : " (", count[j], kind[j]);
	fputs(nk ? ")\n" : "\n", out);
}

static int summary_proc(FILE *out, struct img_dir *d, const ProcessEntry *pe,
			const FileTable *ft, int depth)
{
	char name[64];
	Core *c;
	PageMap *pm;

	fprintf(out, "%*s%u", 2 + depth * 2, "", pe->pid);
	if (pe->zombie) {
		fprintf(out, " (zombie, exit status %u)\n", pe->exit_status);
		return 0;
	}
	snprintf(name, sizeof(name), "core-%u.img", pe->pid);
	c = img_read_msg(d, name, IMAGE_KIND__IMG_CORE, &core__descriptor);
	if (!c)
		return -1;
	snprintf(name, sizeof(name), "pagemap-%u.img", pe->pid);
	pm = img_read_msg(d, name, IMAGE_KIND__IMG_PAGEMAP, &page_map__descriptor);
	if (!pm) {
		core__free_unpacked(c, NULL);
		return -1;
	}
	fputc(' ', out);
	json_string(out, c->comm);
	fprintf(out, ", %zu thread%s, session %u, group %u\n", c->n_threads,
		c->n_threads == 1 ? "" : "s", pe->sid, pe->pgid);
	summary_memory(out, c, pm);
	summary_fds(out, c, ft);
	page_map__free_unpacked(pm, NULL);
	core__free_unpacked(c, NULL);
	return 0;
}

static int tree_depth(const PsTree *t, size_t i)
{
	int depth = 0;

	for (size_t guard = 0; guard < t->n_procs; guard++) {
		size_t p = 0;

		while (p < t->n_procs && t->procs[p]->pid != t->procs[i]->ppid)
			p++;
		if (p == t->n_procs || p == i)
			break;
		depth++;
		i = p;
	}
	return depth;
}

static int show_summary(FILE *out, struct img_dir *d, const char *dir, const Inventory *inv)
{
	PsTree *t = img_read_msg(d, "pstree.img", IMAGE_KIND__IMG_PSTREE, &ps_tree__descriptor);
	FileTable *ft = NULL;
	int rc = 0;

	if (!t)
		return -1;
	for (size_t i = 0; i < d->nr_files && !ft; i++)
		if (!strcmp(d->files[i].name, "files.img"))
			ft = img_read_msg(d, "files.img", IMAGE_KIND__IMG_FILES,
					  &file_table__descriptor);
	fputs("image ", out);
	json_string(out, dir);
	fprintf(out, ": %zu process%s\n", t->n_procs, t->n_procs == 1 ? "" : "es");
	/* An iterative dump's place in its chain (mem_track.c). */
	if (inv->predump && inv->predump->pre_dump)
		fputs("  a pre-dump: memory only, the last round of its chain restores\n", out);
	if (inv->parent_dir) {
		fputs("  parent image: ", out);
		json_string(out, inv->parent_dir);
		fputc('\n', out);
	}
	for (size_t i = 0; i < t->n_procs && !rc; i++)
		rc = summary_proc(out, d, t->procs[i], ft, tree_depth(t, i));
	if (ft)
		file_table__free_unpacked(ft, NULL);
	ps_tree__free_unpacked(t, NULL);
	return rc;
}

/* Everything goes to a buffer first: a damaged file yields an error, not half a
 * document. */
int cryo_show(const char *dir, FILE *dest)
{
	return cryo_show_parts(dir, CRYO_SHOW_JSON, dest);
}

int cryo_show_parts(const char *dir, unsigned parts, FILE *dest)
{
	struct img_dir d;
	Inventory *inv;
	char *doc = NULL;
	size_t doc_len = 0;
	FILE *out = open_memstream(&doc, &doc_len);
	int rc = -1;

	cr_err_reset();
	if (!out)
		return cr_err("out of memory");
	if (img_dir_open(&d, dir)) {
		fclose(out);
		free(doc);
		return -1;
	}
	inv = img_read_inventory(&d);
	if (!inv)
		goto out;
	if ((parts & CRYO_SHOW_SUMMARY) && show_summary(out, &d, dir, inv))
		goto out_inv;
	if (!(parts & CRYO_SHOW_JSON)) {
		rc = 0;
		goto out_inv;
	}
	fputs("{\n  \"directory\": ", out);
	json_string(out, dir);
	fputs(",\n  \"inventory\": ", out);
	print_message(out, &inv->base, 1);
	fputs(",\n  \"files\": {", out);
	for (size_t i = 0; i < d.nr_files; i++) {
		fputs(i ? ",\n    " : "\n    ", out);
		json_string(out, d.files[i].name);
		fputs(": ", out);
		if (show_file(out, &d, &d.files[i]))
			goto out_inv;
	}
	fputs("\n  }\n}\n", out);
	rc = 0;
out_inv:
	inventory__free_unpacked(inv, NULL);
out:
	img_dir_close(&d, true);
	fclose(out);
	if (!rc && fwrite(doc, 1, doc_len, dest) != doc_len)
		rc = cr_perr("cannot write the output");
	free(doc);
	return rc;
}
