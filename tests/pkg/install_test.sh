#!/usr/bin/env bash
# The pkg-install case of the suite (tests/harness_pkg.c): usage: install_test.sh SRC WORK.
# `make install` of the source tree SRC into a DESTDIR under WORK with PREFIX=/usr and
# a multiarch LIBDIR, as Debian does; then the installed files are checked and used
# (installed.sh), the man page is checked against the options src/cli.c knows, and
# `make uninstall` must remove every file. The last line is "ok" or "FAIL: why".
set -uo pipefail
src=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*"; exit 1; }
dest=$work/destdir libdir=/usr/lib/x86_64-linux-gnu
vars=(DESTDIR="$dest" PREFIX=/usr LIBDIR=$libdir)

make -s -C "$src" install "${vars[@]}" || fail "make install failed"
(cd "$dest" && find . ! -type d | sort) >"$work/files"
echo "installed: $(tr '\n' ' ' <"$work/files")"
for f in ./usr/sbin/cryo ./usr/include/cryo.h ./usr/share/man/man8/cryo.8 \
	 .$libdir/libcryo.a .$libdir/libcryo.so .$libdir/pkgconfig/cryo.pc; do
	grep -qx "$f" "$work/files" || fail "make install did not install $f"
done
grep -qx 'prefix=/usr' "$dest$libdir/pkgconfig/cryo.pc" || fail "cryo.pc: prefix is not /usr"
grep -qx "libdir=\${prefix}/lib/x86_64-linux-gnu" "$dest$libdir/pkgconfig/cryo.pc" ||
	fail "cryo.pc: libdir is not LIBDIR"

# The man page: this version, and every long option cli.c takes or refuses.
version=$(cat "$src/VERSION")
grep -q "^\.TH CRYO 8 .*\"cryo $version\"" "$src/man/cryo.8" || fail "man/cryo.8 is not of version $version"
missing=
for opt in $(sed -n 's/^[[:space:]]*{ "\([a-z][a-z-]*\)",.*/\1/p' "$src/src/cli.c" | sort -u); do
	grep -q -- "\\\\-\\\\-${opt//-/\\\\-}" "$src/man/cryo.8" || missing+=" --$opt"
done
[ -z "$missing" ] || fail "man/cryo.8 does not describe$missing"

"$here/installed.sh" "$dest" /usr "$libdir" "$work" | tee "$work/installed.txt"
[ "$(tail -n 1 "$work/installed.txt")" = ok ] || fail "the installed files do not work"

make -s -C "$src" uninstall "${vars[@]}" || fail "make uninstall failed"
left=$(cd "$dest" && find . ! -type d)
[ -z "$left" ] || fail "make uninstall left $left"
echo ok
