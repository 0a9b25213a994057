/* Unit tests of the process tree's rules: which sessions and process groups can be
 * made again by each process's own parent, and when a child is made around its
 * parent's setsid. */
#include "pstree.h"
#include "unit.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct tree_case {
	const char *what;
	struct tree_node n[6];
	size_t nr;
	bool shell_job;
	const char *err;	/* NULL: accepted */
};

/* pid, ppid, pgid, sid; the root's parent (1000) is outside. */
static const struct tree_case cases[] = {
	{ "a session leader alone", { { 10, 1000, 10, 10 } }, 1, false, NULL },
	{ "a root in the caller's session", { { 10, 1000, 10, 5 } }, 1, false,
	  "process 10 is in the session of PID 5, outside what is dumped" },
	{ "the same, --shell-job", { { 10, 1000, 10, 5 } }, 1, true, NULL },
	{ "a shell job: root and child in the caller's session and group",
	  { { 10, 1000, 7, 5 }, { 11, 10, 7, 5 } }, 2, true, NULL },
	{ "children in the root's session and group, one leading a group",
	  { { 10, 1000, 10, 10 }, { 11, 10, 11, 10 }, { 12, 10, 11, 10 }, { 13, 11, 11, 10 } },
	  4, false, NULL },
	{ "a child leading its own session, a grandchild left in the old one",
	  { { 10, 1000, 10, 10 }, { 11, 10, 11, 11 }, { 12, 11, 10, 10 } }, 3, false, NULL },
	{ "a child left in the session the root had before its setsid",
	  { { 10, 1000, 10, 10 }, { 11, 10, 7, 5 } }, 2, true, NULL },
	{ "the same without --shell-job", { { 10, 1000, 10, 10 }, { 11, 10, 7, 5 } }, 2, false,
	  "process 11 is in the session of PID 5, outside" },
	{ "a child in a session it cannot inherit",
	  { { 10, 1000, 10, 10 }, { 11, 10, 11, 11 }, { 12, 10, 12, 11 } }, 3, false,
	  "process 12 is in session 11, which it cannot have" },
	{ "a grandchild in its grandparent's old outside session",
	  { { 10, 1000, 10, 10 }, { 11, 10, 11, 11 }, { 12, 11, 7, 5 } }, 3, true,
	  "process 12 is in session 5, which it cannot have" },
	{ "two outside sessions", { { 10, 1000, 10, 10 }, { 11, 10, 11, 5 }, { 12, 10, 12, 6 } },
	  3, true, "process 12 is in session 6" },
	{ "a group whose leader ended", { { 10, 1000, 10, 10 }, { 11, 10, 99, 10 } }, 2, false,
	  "process group 99, whose leader is not in what is dumped" },
	{ "a group led from another session",
	  { { 10, 1000, 10, 10 }, { 11, 10, 11, 11 }, { 12, 10, 11, 10 } }, 3, false,
	  "which process 11 does not lead in its session" },
	{ "a group named after a process that does not lead it",
	  { { 10, 1000, 10, 10 }, { 11, 10, 10, 10 }, { 12, 10, 11, 10 } }, 3, false,
	  "which process 11 does not lead" },
	{ "two outside groups", { { 10, 1000, 7, 5 }, { 11, 10, 8, 5 } }, 2, true,
	  "process group 8, whose leader is not in what is dumped" },
	{ "a parent after its child", { { 10, 1000, 10, 10 }, { 12, 11, 10, 10 }, { 11, 10, 10, 10 } },
	  3, false, "its parent 11 comes after it" },
	{ "a process twice", { { 10, 1000, 10, 10 }, { 10, 10, 10, 10 } }, 2, false,
	  "appears twice" },
	{ "the root's parent in the tree", { { 10, 11, 10, 10 }, { 11, 10, 10, 10 } }, 2, false,
	  "has its parent 11 in the tree" },
};

static void test_rules(void)
{
	for (size_t i = 0; i < N(cases); i++) {
		const struct tree_case *c = &cases[i];
		int rc;

		unit_case();
		rc = tree_check(c->n, c->nr, c->shell_job);
		if (!c->err) {
			CHECK(rc == 0, "%s: refused: %s", c->what, err_text());
			continue;
		}
		CHECK(rc == -1, "%s: accepted", c->what);
		CHECK(err_has(c->err), "%s: error '%s', want '%s'", c->what, err_text(), c->err);
	}
}

static void test_setsid_order(void)
{
	const struct tree_node leader = { 10, 1, 10, 10 }, plain = { 10, 1, 10, 5 };
	const struct tree_node same = { 11, 10, 10, 10 }, old = { 11, 10, 7, 5 };
	const struct tree_node own = { 11, 10, 11, 11 };

	unit_case();
	CHECK(!tree_forks_before_setsid(&leader, &same), "a child in the new session first");
	CHECK(tree_forks_before_setsid(&leader, &old), "a child in the old session after");
	CHECK(!tree_forks_before_setsid(&leader, &own), "a future leader before the setsid");
	CHECK(!tree_forks_before_setsid(&plain, &old), "no setsid, nothing before it");
}

int main(void)
{
	test_rules();
	test_setsid_order();
	return unit_done("unit_tree");
}
