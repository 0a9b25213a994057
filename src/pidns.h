/* Restoring into a fresh PID namespace (pidns.c): cryo's child is its PID 1, restores
 * the tree inside, then stays as its minimal init. */
#ifndef CRYO_PIDNS_H
#define CRYO_PIDNS_H

#include <stdbool.h>
#include <sys/types.h>

struct pidns {
	/* Namespaces cryo unshares with CLONE_NEWPID before the fork (e.g. CLONE_NEWUSER
	 * for a restore without root); a mount namespace is always made, in the child. */
	unsigned long unshare_flags;
	/* Called in cryo once the init exists, before it goes on (a new user namespace's
	 * uid and gid maps); NULL: nothing to do. */
	int (*outer_setup)(pid_t init, void *arg);
	void *arg;
	pid_t init;		/* out: the init, cryo's child, as cryo sees it */
	pid_t root;		/* out: the restored root, as cryo sees it */
};

/* Make the namespace and run restore() as its PID 1, with PIDs and /proc of the
 * namespace (a mount namespace of its own has a fresh /proc). In cryo: returns 0 once
 * restore() succeeded in there, with ns->init and ns->root set; -1 with restore()'s
 * error otherwise (the namespace is gone then). The child never returns: after a
 * successful restore() (which gives the root's PID in the namespace) it reaps, and
 * exits when the root does, with its exit code (128+N for signal N). */
int pidns_enter(struct pidns *ns, int (*restore)(void *arg, pid_t *root), void *arg);
/* The process to wait for to learn how a restored root ended: the init of the last
 * namespace pidns_enter made for that root, or root itself. */
pid_t pidns_waitee(pid_t root);
/* The init reaps and exits as its root does (pure: from a wait status). */
int pidns_exit_code(int status);

#endif
