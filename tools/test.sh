#!/usr/bin/env bash
# Build cryo and run the whole test suite: unit tests, every test program in three
# modes, real programs, bad inputs; then the same suite with cryo built under
# AddressSanitizer; then the Debian package built, linted, installed, used and removed
# (tools/pkg_test.sh; CRYO_NO_PKG=1 skips it); then restores across kernels (Debian 6.1
# and 6.12 under qemu; set CRYO_NO_XKERNEL=1 to skip). The last line is the total: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "tools/test.sh: run as root (the tests ptrace and restore PIDs)" >&2; exit 2; }
tools/deps.sh --xkernel || exit 2
jobs=$(nproc)
make -s -j"$jobs" tests >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
make -s -j"$jobs" SAN=address all >/dev/null || { echo "ASan build failed"; echo "0 passed, 1 failed"; exit 1; }
total_p=0 total_f=0
run() {
	local label=$1; shift
	local log p f last
	log=$(mktemp)
	echo "== $label"
	"$@" 2>&1 | tee "$log"
	last=$(tail -n 1 "$log")
	rm -f "$log"
	p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' <<<"$last")
	f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' <<<"$last")
	[ -n "$p" ] || { p=0; f=1; echo "$label: no summary line"; }
	total_p=$((total_p + p)); total_f=$((total_f + f))
}
run "suite" build/tests/harness --cryo build/bin/cryo --tests build/tests --unit build/unit --real tests/real --src . --fg
# The single-process and tree cases again as user nobody: cryo with file capabilities,
# then (not root at all) cryo with none, restoring into a user and PID namespace.
run "suite, unprivileged (file capabilities)" build/tests/harness --cryo build/bin/cryo \
	--tests build/tests --real tests/real --as-user nobody --caps
run "suite, unprivileged (no capabilities)" build/tests/harness --cryo build/bin/cryo \
	--tests build/tests --real tests/real --as-user nobody
run "suite, cryo under AddressSanitizer" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	build/tests/harness --cryo build-address/bin/cryo --tests build/tests --real tests/real
[ -n "${CRYO_NO_PKG:-}" ] || run "Debian package" tools/pkg_test.sh
[ -n "${CRYO_NO_XKERNEL:-}" ] || run "restore across kernels" tools/xkernel/check.sh
echo "$total_p passed, $total_f failed"
[ "$total_f" = 0 ]
