/* libnftables, opened on first use: a cryo that locks no connection starts without it
 * and the five libraries it brings. */
#ifndef CRYO_NFT_LIB_H
#define CRYO_NFT_LIB_H

struct nft_ctx;

/* Load it now (before a fork whose child uses it). 0, or -1 with the error set. */
int nftl_load(void);
/* A context with its output and errors kept in buffers; NULL if none (the error is
 * set only when the library cannot be loaded: the caller says what it wanted). */
struct nft_ctx *nftl_open(void);
void nftl_close(struct nft_ctx *nft);
/* One nft script; 0 or non-zero as nft would exit. */
int nftl_run(struct nft_ctx *nft, const char *cmd);
/* What the last failed command said ("" when nothing). */
const char *nftl_error(struct nft_ctx *nft);

#endif
