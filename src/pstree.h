/* The process tree: walking and seizing it at dump, the rules its sessions and
 * process groups must follow for each process to be made again by its own parent,
 * and pstree.img at both ends, with the parts of the restore plan that make children,
 * sessions, groups and zombies. */
#ifndef CRYO_PSTREE_H
#define CRYO_PSTREE_H

#include <stdbool.h>
#include <sys/types.h>

#include "task.h"

#define TREE_MAX_PROCS 32768

/* ---- the rules (pure) ---- */

struct tree_node {
	pid_t pid, ppid, pgid, sid;
};

/* Can each process of the tree (n[0] the root, every parent before its children) be
 * made by its parent with its session and group? 0, or -1 with the reason recorded,
 * naming the process. Sessions and groups led from outside need shell_job. */
int tree_check(const struct tree_node *n, size_t nr, bool shell_job);
/* A child its parent makes before its own setsid: it stays in the parent's old session. */
bool tree_forks_before_setsid(const struct tree_node *parent, const struct tree_node *child);

/* ---- dump ---- */

/* Seize the root and every descendant, parents first: a stopped parent makes no new
 * child, and one that ends meanwhile is caught as a zombie or is gone. */
int tree_seize(struct dump_ctx *ctx, pid_t root);
int tree_write(struct dump_ctx *ctx);

/* ---- restore ---- */

/* Read and check pstree.img: ctx->procs, linked parent to children. */
int tree_load(struct restore_ctx *ctx);
/* The calls making rp's children (those staying in its old session first, when
 * before_setsid), and its own setsid between the two. */
void tree_plan_children(struct restore_proc *rp, struct plan *p, bool before_setsid);
void tree_plan_setsid(struct restore_proc *rp, struct plan *p);
/* Its process group, once every group leader has taken its own. */
void tree_plan_group(struct restore_proc *rp, struct plan *p);
/* A zombie's end, with its status. */
int tree_plan_exit(struct restore_proc *rp, struct plan *p);
/* First in a parent's last table: the signals its zombie children sent as they ended. */
void tree_plan_reaped(struct restore_proc *rp, struct plan *p);
/* The order of the group tables: every group's leader before its members. */
int tree_group_order(struct restore_ctx *ctx, struct restore_proc ***out);
/* Every PID and TID of the image (for the thread of cryo that must not take one). */
int tree_all_ids(struct restore_ctx *ctx, uint32_t **out, size_t *nr);

#endif
