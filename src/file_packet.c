/* AF_PACKET sockets: type, protocol, the interface bound (by name, its index checked
 * at restore), TPACKET version, reserve, copy threshold, timestamps, the flags of
 * PACKET_DIAG_INFO, link-layer memberships (promiscuous, multicast) and buffers, from
 * packet_diag. Dump refuses a PACKET_MMAP ring, a fanout group and frames captured and
 * not read yet. Restore makes the socket in cryo. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/packet_diag.h>
#include <linux/sock_diag.h>

#include "fd_kind.h"
#include "file_sk.h"
#include "files.h"
#include "log.h"
#include "sk_opts.h"
#include "sys.h"
#include "trust.h"

#define PDI_KNOWN (PDI_RUNNING | PDI_AUXDATA | PDI_ORIGDEV | PDI_VNETHDR | PDI_LOSS)
#define MC_COUNT_MAX 1024

/* PACKET_ADD_MEMBERSHIP takes addresses longer than struct packet_mreq's 8 bytes. */
struct mreq_max {
	int mr_ifindex;
	unsigned short mr_type, mr_alen;
	unsigned char mr_address[32];
};

/* ---- pure ---- */

static int parse_mclist(const void *data, size_t n, struct pk_diag *out)
{
	const struct packet_diag_mclist *m = data;

	if (n % sizeof(*m) || n / sizeof(*m) > PACKET_MC_MAX)
		return cr_err("packet_diag: %zu bytes of memberships", n);
	out->nr_mc = n / sizeof(*m);
	for (size_t i = 0; i < out->nr_mc; i++) {
		out->mc[i].ifindex = m[i].pdmc_index;
		out->mc[i].count = m[i].pdmc_count;
		out->mc[i].type = m[i].pdmc_type;
		out->mc[i].alen = m[i].pdmc_alen;
		if (m[i].pdmc_alen > sizeof(out->mc[i].addr))
			return cr_err("packet_diag: a membership address of %u bytes",
				      m[i].pdmc_alen);
		memcpy(out->mc[i].addr, m[i].pdmc_addr, m[i].pdmc_alen);
	}
	return 0;
}

static int parse_attr(int type, const void *data, size_t n, struct pk_diag *out)
{
	const struct packet_diag_info *pi = data;

	switch (type) {
	case PACKET_DIAG_INFO:
		if (n < sizeof(*pi))
			return cr_err("packet_diag: a short info attribute");
		out->has_info = true;
		out->ifindex = pi->pdi_index;
		out->version = pi->pdi_version;
		out->reserve = pi->pdi_reserve;
		out->copy_thresh = pi->pdi_copy_thresh;
		out->tstamp = pi->pdi_tstamp;
		out->flags = pi->pdi_flags;
		return 0;
	case PACKET_DIAG_MCLIST:
		return parse_mclist(data, n, out);
	case PACKET_DIAG_RX_RING:
		out->rx_ring = true;
		return 0;
	case PACKET_DIAG_TX_RING:
		out->tx_ring = true;
		return 0;
	case PACKET_DIAG_FANOUT:
		if (n < 4)
			return cr_err("packet_diag: a short fanout attribute");
		out->fanout = true;
		memcpy(&out->fanout_val, data, 4);
		return 0;
	}
	return 0;
}

int packet_diag_parse(const void *buf, size_t len, struct pk_diag *out)
{
	const struct packet_diag_msg *m = buf;
	size_t at = NLMSG_ALIGN(sizeof(*m));

	memset(out, 0, sizeof(*out));
	if (len < sizeof(*m) || m->pdiag_family != AF_PACKET)
		return cr_err("packet_diag: a short or foreign answer");
	out->ino = m->pdiag_ino;
	out->type = m->pdiag_type;
	out->protocol = m->pdiag_num;
	while (at + sizeof(struct nlattr) <= len) {
		const struct nlattr *a = (const void *)((const char *)buf + at);

		if (a->nla_len < NLA_HDRLEN || a->nla_len > len - at)
			return cr_err("packet_diag: a damaged attribute");
		if (parse_attr(a->nla_type, (const char *)a + NLA_HDRLEN, a->nla_len - NLA_HDRLEN,
			       out))
			return -1;
		at += NLA_ALIGN(a->nla_len);
	}
	return 0;
}

static bool ifname_ok(const char *name)
{
	size_t n = name ? strnlen(name, IFNAMSIZ) : 0;

	return n && n < IFNAMSIZ && !strchr(name, '/');
}

int packet_check_entry(const FileEntry *e)
{
	const PacketSocket *k = e->packet;

	if (!k || (k->type != SOCK_RAW && k->type != SOCK_DGRAM) || k->protocol > 0xffff)
		return cr_err("image: packet socket file %u is invalid", e->id);
	if (k->version > TPACKET_V3 || k->reserve > (1u << 20) || k->tstamp > 0xffff)
		return cr_err("image: packet socket file %u has bad options", e->id);
	if (k->has_ifindex != !!k->ifname || (k->ifname && (!ifname_ok(k->ifname) ||
							     !k->ifindex)))
		return cr_err("image: packet socket file %u has a bad interface", e->id);
	if (k->n_memberships > PACKET_MC_MAX)
		return cr_err("image: packet socket file %u has %zu memberships", e->id,
			      k->n_memberships);
	for (size_t i = 0; i < k->n_memberships; i++) {
		const PacketMembership *m = k->memberships[i];

		if (m->type > PACKET_MR_UNICAST || !m->count || m->count > MC_COUNT_MAX ||
		    m->addr.len > 32 || !ifname_ok(m->ifname) || !m->ifindex)
			return cr_err("image: packet socket file %u has a bad membership", e->id);
	}
	return sk_opts_check(k->opts);
}

/* ---- dump ---- */

static bool packet_match(const struct fd_probe *pr)
{
	return file_sock_is(pr, AF_PACKET, NULL, NULL);
}

struct pk_find {
	uint32_t ino;
	bool found;
	struct pk_diag *d;
};

static int pk_found(const void *msg, size_t len, void *arg)
{
	struct pk_find *f = arg;
	const struct packet_diag_msg *m = msg;

	if (len < sizeof(*m) || m->pdiag_ino != f->ino)
		return 0;
	f->found = true;
	return packet_diag_parse(msg, len, f->d);
}

static int pk_diag_one(uint32_t ino, struct pk_diag *d)
{
	struct {
		struct nlmsghdr h;
		struct packet_diag_req r;
	} req = {
		.h = { sizeof(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0 },
		.r = { .sdiag_family = AF_PACKET, .pdiag_ino = ino,
		       .pdiag_show = PACKET_SHOW_INFO | PACKET_SHOW_MCLIST | PACKET_SHOW_RING_CFG |
				     PACKET_SHOW_FANOUT },
	};
	struct pk_find f = { ino, false, d };

	if (sk_diag_dump(&req, sizeof(req), pk_found, &f))
		return -1;
	return f.found ? 0 : cr_err("packet_diag does not show socket %u", ino);
}

struct pk_probe {
	const struct fd_probe *pr;
	char what[96];			/* "packet socket (lo, protocol 0x0003)" */
};

static int pk_refuse(const struct pk_probe *s, const char *why)
{
	return sk_refuse(s->pr, s->what, why);
}

static int set_ifname(const struct pk_probe *s, uint32_t ifindex, char **out)
{
	char name[IF_NAMESIZE];

	if (!if_indextoname(ifindex, name))
		return pk_refuse(s, "the interface it uses is gone");
	*out = strdup(name);
	return *out ? 0 : cr_err("out of memory");
}

static int dump_members(const struct pk_probe *s, const struct pk_diag *d, PacketSocket *k)
{
	k->memberships = calloc(d->nr_mc + 1, sizeof(*k->memberships));
	if (!k->memberships)
		return cr_err("out of memory");
	for (size_t i = 0; i < d->nr_mc; i++) {
		PacketMembership *m = calloc(1, sizeof(*m));

		if (!m)
			return cr_err("out of memory");
		packet_membership__init(m);
		k->memberships[k->n_memberships++] = m;
		m->ifindex = d->mc[i].ifindex;
		m->type = d->mc[i].type;
		m->count = d->mc[i].count;
		if (d->mc[i].alen) {
			m->has_addr = 1;
			m->addr.len = d->mc[i].alen;
			m->addr.data = malloc(d->mc[i].alen);
			if (!m->addr.data)
				return cr_err("out of memory");
			memcpy(m->addr.data, d->mc[i].addr, d->mc[i].alen);
		}
		if (set_ifname(s, m->ifindex, &m->ifname))
			return -1;
	}
	return 0;
}

/* What packet_diag says, refusing what cryo does not make again. */
static int dump_diag(struct pk_probe *s, const struct pk_diag *d, PacketSocket *k)
{
	char ifname[IF_NAMESIZE] = "any interface";

	if (d->ifindex && !if_indextoname(d->ifindex, ifname))
		snprintf(ifname, sizeof(ifname), "ifindex %u", d->ifindex);
	snprintf(s->what, sizeof(s->what), "packet socket (%s, protocol 0x%04x)", ifname,
		 d->protocol);
	if (!d->has_info)
		return pk_refuse(s, "packet_diag does not describe it");
	if (d->rx_ring || d->tx_ring)
		return pk_refuse(s, "it has a PACKET_MMAP ring; not supported");
	if (d->fanout)
		return pk_refuse(s, "it is in a fanout group (PACKET_FANOUT); not supported");
	if (d->flags & ~PDI_KNOWN)
		return pk_refuse(s, "it has options packet_diag shows and cryo does not know");
	if (d->protocol && !(d->flags & PDI_RUNNING))
		return pk_refuse(s, "it is bound to an interface that is down; cryo cannot bind "
				 "it there again");
	k->type = d->type;
	k->protocol = d->protocol;
	k->version = d->version;
	k->reserve = d->reserve;
	k->copy_thresh = d->copy_thresh;
	k->tstamp = d->tstamp;
	k->has_auxdata = k->auxdata = !!(d->flags & PDI_AUXDATA);
	k->has_origdev = k->origdev = !!(d->flags & PDI_ORIGDEV);
	k->has_vnet_hdr = k->vnet_hdr = !!(d->flags & PDI_VNETHDR);
	k->has_loss = k->loss = !!(d->flags & PDI_LOSS);
	if (d->ifindex) {
		k->has_ifindex = 1;
		k->ifindex = d->ifindex;
		if (set_ifname(s, d->ifindex, &k->ifname))
			return -1;
	}
	return dump_members(s, d, k);
}

static int dump_rest(const struct pk_probe *s, int fd, PacketSocket *k)
{
	int v;

	if (sk_opts_dump_for(fd, AF_PACKET, s->what, &k->opts))
		return -1;
	if (!sk_int(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &v) && v)
		return pk_refuse(s, "it has PACKET_QDISC_BYPASS set; not supported");
	if (!sk_int(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &v) && v)
		return pk_refuse(s, "it has PACKET_IGNORE_OUTGOING set; not supported");
	return sk_dump_last(s->pr, fd, s->what, "frames it captured",
			    "cryo cannot make them arrive again");
}

static int packet_dump(const struct fd_probe *pr, FileEntry *e)
{
	PacketSocket *k = calloc(1, sizeof(*k));
	struct pk_diag *d = malloc(sizeof(*d));
	struct pk_probe s = { pr, "packet socket" };
	int fd = -1, rc = -1;

	if (!k || !d) {
		free(k);
		free(d);
		return cr_err("out of memory");
	}
	packet_socket__init(k);
	e->packet = k;
	e->kind = FILE_KIND__FILE_PACKET;
	e->flags = pr->fi->flags & KEEP_FLAGS;
	fd = file_fd_dup(pr->p->pid, pr->fd);
	if (fd >= 0 && !pk_diag_one(pr->st->st_ino, d) && !dump_diag(&s, d, k) &&
	    !dump_rest(&s, fd, k))
		rc = 0;
	if (fd >= 0)
		close(fd);
	free(d);
	return rc;
}

static void packet_free(FileEntry *e)
{
	PacketSocket *k = e->packet;

	if (!k)
		return;
	for (size_t i = 0; i < k->n_memberships; i++) {
		free(k->memberships[i]->addr.data);
		free(k->memberships[i]->ifname);
		free(k->memberships[i]);
	}
	free(k->memberships);
	free(k->ifname);
	sk_opts_free(k->opts);
	free(k);
}

/* ---- restore ---- */

/* The interface has the name it had at dump, and the index. */
static int check_if(uint32_t id, const char *name, uint32_t ifindex)
{
	unsigned here = if_nametoindex(name);

	if (!here)
		return cr_err("packet socket file %u uses interface %s, which this host does not "
			      "have", id, name);
	if (here != ifindex)
		return cr_err("packet socket file %u uses interface %s, index %u at dump and %u "
			      "here", id, name, ifindex, here);
	return 0;
}

static int packet_check(const FileEntry *e)
{
	const PacketSocket *k = e->packet;

	if (packet_check_entry(e) || (k->ifname && check_if(e->id, k->ifname, k->ifindex)))
		return -1;
	for (size_t i = 0; i < k->n_memberships; i++)
		if (check_if(e->id, k->memberships[i]->ifname, k->memberships[i]->ifindex))
			return -1;
	return 0;
}

static int pk_set_opts(int fd, const PacketSocket *k)
{
	const struct { int opt; uint32_t v; bool set; } opts[] = {
		{ PACKET_VERSION, k->version, k->version != TPACKET_V1 },
		{ PACKET_RESERVE, k->reserve, k->reserve != 0 },
		{ PACKET_COPY_THRESH, k->copy_thresh, k->copy_thresh != 0 },
		{ PACKET_TIMESTAMP, k->tstamp, k->tstamp != 0 },
		{ PACKET_AUXDATA, 1, k->auxdata }, { PACKET_ORIGDEV, 1, k->origdev },
		{ PACKET_VNET_HDR, 1, k->vnet_hdr }, { PACKET_LOSS, 1, k->loss },
	};

	for (size_t i = 0; i < CR_ARRAY_SIZE(opts); i++)
		if (opts[i].set && sk_set_int(fd, SOL_PACKET, opts[i].opt, opts[i].v))
			return cr_perr("cannot set packet option %d", opts[i].opt);
	for (size_t i = 0; i < k->n_memberships; i++) {
		const PacketMembership *m = k->memberships[i];
		struct mreq_max mr = { .mr_ifindex = m->ifindex, .mr_type = m->type,
				       .mr_alen = m->addr.len };

		memcpy(mr.mr_address, m->addr.data, m->addr.len);
		for (uint32_t n = 0; n < m->count; n++)
			if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)))
				return cr_perr("cannot add a membership on %s", m->ifname);
	}
	return 0;
}

static int packet_open(struct restore_ctx *ctx, const FileEntry *e)
{
	const PacketSocket *k = e->packet;
	struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(k->protocol),
				 .sll_ifindex = k->ifindex };
	char what[48];
	int fd;

	if (ctx->trust.limited)
		return cr_err("packet socket file %u: an image of another user may not have one "
			      "(it needs CAP_NET_RAW)", e->id);
	fd = socket(AF_PACKET, k->type | SOCK_CLOEXEC, htons(k->protocol));
	if (fd < 0)
		return cr_perr("cannot make a packet socket");
	snprintf(what, sizeof(what), "packet socket file %u", e->id);
	if (sk_opts_restore_for(fd, AF_PACKET, k->opts, false, what) || pk_set_opts(fd, k))
		goto fail;
	if (k->ifindex && bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		cr_perr("packet socket file %u: cannot bind it to %s", e->id, k->ifname);
		goto fail;
	}
	return sk_open_done(fd, e->flags);
fail:
	close(fd);
	return -1;
}

static bool packet_handles(FileKind k)
{
	return k == FILE_KIND__FILE_PACKET;
}

const struct fd_kind packet_kind = {
	.name = "a packet socket",
	.handles = packet_handles,
	.match = packet_match,
	.dump = packet_dump,
	.check = packet_check,
	.open = packet_open,
	.free = packet_free,
};
