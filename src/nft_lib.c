/* libnftables, opened on first use: a cryo that locks no connection starts without it
 * and the five libraries it brings (linked, they cost every run of cryo their loading,
 * and a read from disk when the machine has paged them out). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <nftables/libnftables.h>

#include "log.h"
#include "nft_lib.h"

#define NFT_LIB_NAME "libnftables.so.1"

static struct {
	__typeof__(nft_ctx_new) *ctx_new;
	__typeof__(nft_ctx_free) *ctx_free;
	__typeof__(nft_ctx_buffer_output) *buffer_output;
	__typeof__(nft_ctx_buffer_error) *buffer_error;
	__typeof__(nft_ctx_get_error_buffer) *error_buffer;
	__typeof__(nft_run_cmd_from_buffer) *run;
	char why[256];
	bool ok;
} lib;

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void *sym(void *h, const char *name)
{
	void *p = dlsym(h, name);

	if (!p && !lib.why[0])
		snprintf(lib.why, sizeof(lib.why), "%s has no %s", NFT_LIB_NAME, name);
	return p;
}

static void lib_open(void)
{
	void *h = dlopen(NFT_LIB_NAME, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		const char *e = dlerror();

		snprintf(lib.why, sizeof(lib.why), "%s", e ? e : NFT_LIB_NAME ": not found");
		return;
	}
	lib.ctx_new = sym(h, "nft_ctx_new");
	lib.ctx_free = sym(h, "nft_ctx_free");
	lib.buffer_output = sym(h, "nft_ctx_buffer_output");
	lib.buffer_error = sym(h, "nft_ctx_buffer_error");
	lib.error_buffer = sym(h, "nft_ctx_get_error_buffer");
	lib.run = sym(h, "nft_run_cmd_from_buffer");
	lib.ok = !lib.why[0];
}

int nftl_load(void)
{
	pthread_once(&lib_once, lib_open);
	return lib.ok ? 0 : cr_err("cannot load libnftables: %s", lib.why);
}

struct nft_ctx *nftl_open(void)
{
	struct nft_ctx *n;

	if (nftl_load())
		return NULL;
	n = lib.ctx_new(NFT_CTX_DEFAULT);
	if (n && (lib.buffer_output(n) || lib.buffer_error(n))) {
		lib.ctx_free(n);
		n = NULL;
	}
	return n;
}

void nftl_close(struct nft_ctx *nft)
{
	if (nft)
		lib.ctx_free(nft);
}

int nftl_run(struct nft_ctx *nft, const char *cmd)
{
	return lib.run(nft, cmd);
}

const char *nftl_error(struct nft_ctx *nft)
{
	const char *e = lib.error_buffer(nft);

	return e ? e : "";
}
