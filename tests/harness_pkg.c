/* The installation case (included by harness.c): `make install` of the source tree
 * (--src) into a temporary DESTDIR, a program built against the installed library
 * through pkg-config checkpointing and restoring a process of its own, the man page
 * and `make uninstall` (tests/pkg/install_test.sh does it, this reads its verdict). */

static const char *src_dir;

#define PKG_TIMEOUT 600.0	/* make install may have to build the shared library */

static int pkg_install(const char *dir, const char *log)
{
	char script[4096], *argv[] = { script, (char *)src_dir, (char *)dir, NULL };
	char *out, *last;
	int status;
	pid_t pid;

	snprintf(script, sizeof(script), "%s/tests/pkg/install_test.sh", src_dir);
	pid = spawn(argv, log, false);
	if (pid < 0)
		return why("fork failed");
	if (wait_for(pid, PKG_TIMEOUT, &status))
		return -1;
	out = read_file(log, NULL);
	last = out ? strrchr(out, '\n') : NULL;
	while (last && last > out && last[-1] != '\n')
		last--;
	if (!WIFEXITED(status) || WEXITSTATUS(status) || !last || strcmp(last, "ok\n")) {
		why("install_test.sh: %s", last && strncmp(last, "FAIL", 4) == 0 ? last :
		    "failed without a verdict");
		reason[strcspn(reason, "\n")] = 0;
		free(out);
		return -1;
	}
	free(out);
	return 0;
}

static void run_pkg(void)
{
	char dir[600], log[700];
	int rc;

	if (!selected("pkg-install"))
		return;
	if (!src_dir) {
		printf("SKIP pkg-install: no --src (the source tree to install from)\n");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/pkg-install", work);
	snprintf(log, sizeof(log), "%s/pkg-install.txt", work);
	mkdir(dir, 0755);
	reason[0] = 0;
	rc = pkg_install(dir, log);
	result("pkg-install", "make install, pkg-config, libcryo", rc, rc ? log : NULL, NULL);
	if (!rc)
		remove_tree(dir);
}
