#!/usr/bin/env bash
# The Debian package, as CI checks it (as root, from tools/test.sh): builds it with
# `dpkg-buildpackage -us -uc -b` in a copy of the source tree, runs lintian (errors and
# warnings fail), installs the three packages, checks and uses the installed files
# (tests/pkg/installed.sh: a program built through pkg-config dumps and restores a
# process with the installed libcryo), removes them and checks nothing is left.
# The last line is "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cryo-pkg.XXXXXX") || exit 2
pkgs=(cryo libcryo2 libcryo-dev)
passed=0 failed=0
step() {	# step NAME COMMAND...: one PASS or FAIL line
	local name=$1 t0=$SECONDS; shift
	if "$@" >"$tmp/$name.log" 2>&1; then
		passed=$((passed + 1)); echo "PASS deb-$name ($((SECONDS - t0)) s)"
		return 0
	fi
	failed=$((failed + 1)); echo "FAIL deb-$name: $(tail -n 1 "$tmp/$name.log")"
	sed 's/^/    /' "$tmp/$name.log" | tail -n 20
	return 1
}
finish() {
	dpkg -r "${pkgs[@]}" >/dev/null 2>&1
	rm -rf "$tmp"
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit
}

copy_tree() {
	mkdir "$tmp/cryo" && git -C "$src" ls-files -co --exclude-standard -z |
		(cd "$src" && tar --null -cf - -T -) | tar -xf - -C "$tmp/cryo"
}
build() { (cd "$tmp/cryo" && dpkg-buildpackage -us -uc -b); }
lint() { lintian --fail-on error,warning "$tmp"/cryo_*_amd64.changes; }
install_debs() {
	dpkg -i "$tmp"/cryo_*_amd64.deb "$tmp"/libcryo2_*_amd64.deb "$tmp"/libcryo-dev_*_amd64.deb &&
		dpkg-query -W "${pkgs[@]}"
}
use_installed() {
	mkdir "$tmp/work" && tests/pkg/installed.sh "" /usr /usr/lib/x86_64-linux-gnu "$tmp/work" &&
		man -w cryo | grep -qx /usr/share/man/man8/cryo.8.gz
}
remove_debs() {
	local files
	files=$(dpkg -L "${pkgs[@]}" | while read -r f; do [ -f "$f" ] || [ -L "$f" ] && echo "$f"; done)
	dpkg -r "${pkgs[@]}" || return 1
	for f in $files; do
		[ ! -e "$f" ] && [ ! -L "$f" ] || { echo "left after dpkg -r: $f"; return 1; }
	done
	echo "removed $(wc -w <<<"$files") files"
}

for p in "${pkgs[@]}"; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		echo "FAIL deb-install: $p is installed already; not touching it"
		failed=1 pkgs=()
		finish
	fi
done
step copy copy_tree && step build build && step lintian lint
step install install_debs && step installed-files use_installed
step remove remove_debs
finish
