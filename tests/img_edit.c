/* A test tool: damage one field of an image's first TCP socket (files.img) and seal
 * the image again (checksums, inventory), so that restore meets a well-formed image
 * saying something wrong. Usage: img_edit DIR FIELD VALUE, FIELD one of family,
 * state, port, backlog, addr-len, tos. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "log.h"

static int patch(InetSocket *s, const char *field, long v)
{
	if (!strcmp(field, "family"))
		s->family = v;
	else if (!strcmp(field, "state"))
		s->state = v;
	else if (!strcmp(field, "port"))
		s->src_port = v;
	else if (!strcmp(field, "backlog"))
		s->backlog = v;
	else if (!strcmp(field, "addr-len"))
		s->src_addr.len = v < (long)s->src_addr.len ? (size_t)v : s->src_addr.len;
	else if (!strcmp(field, "tos") && s->opts)
		s->opts->ip_tos = v;
	else
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct img_dir d;
	Inventory *inv = NULL;
	FileTable *ft = NULL;
	InetSocket *s = NULL;
	ImageFileEntry **listed;
	size_t n;
	int rc = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: img_edit DIR FIELD VALUE\n");
		return 2;
	}
	if (img_dir_open(&d, argv[1]) || !(inv = img_read_inventory(&d)) ||
	    !(ft = img_read_msg(&d, "files.img", IMAGE_KIND__IMG_FILES, &file_table__descriptor)))
		goto out;
	for (size_t i = 0; i < ft->n_files && !s; i++)
		s = ft->files[i]->tcp;
	if (!s || patch(s, argv[2], strtol(argv[3], NULL, 0))) {
		fprintf(stderr, "img_edit: no TCP socket, or no field %s\n", argv[2]);
		goto out;
	}
	/* img_write_inventory lists d's files in inv and clears the list after. */
	n = inv->n_files;
	listed = inv->files;
	rc = img_write_msg(&d, "files.img", IMAGE_KIND__IMG_FILES, &ft->base) ||
	     img_write_inventory(&d, inv);
	inv->n_files = n;
	inv->files = listed;
out:
	if (rc && cr_last_error())
		fprintf(stderr, "img_edit: %s\n", cr_last_error());
	if (ft)
		protobuf_c_message_free_unpacked(&ft->base, NULL);
	if (inv)
		protobuf_c_message_free_unpacked(&inv->base, NULL);
	img_dir_close(&d, true);
	return rc;
}
