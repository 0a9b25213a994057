#!/usr/bin/env bash
# Checks an installed cryo: usage: installed.sh ROOT PREFIX LIBDIR WORK. ROOT is the
# DESTDIR it was installed into ("" for the system), WORK an empty scratch directory.
# Builds tests/pkg/use_lib.c against the installed libcryo through pkg-config, checks the
# library exports exactly the installed cryo.h's functions, runs the program (a real
# dump and restore through the library) and checks the binary and the man page. The
# last line is "ok" or "FAIL: why".
set -uo pipefail
root=$1 prefix=$2 libdir=$3 work=$4
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*"; exit 1; }

if [ -n "$root" ]; then
	export PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_LIBDIR=$root$libdir/pkgconfig
	export LD_LIBRARY_PATH=$root$libdir
fi
flags=$(pkg-config --cflags --libs cryo) || fail "pkg-config does not find cryo"
echo "pkg-config --cflags --libs cryo: $flags"
pkg-config --exists 'cryo >= 0.1' || fail "pkg-config: cryo has no usable version"
# shellcheck disable=SC2086
cc -std=gnu11 -Wall -Wextra -Werror "$here/use_lib.c" $flags -o "$work/use_lib" ||
	fail "use_lib.c does not build against the installed header and library"
readelf -d "$work/use_lib" | grep -q 'NEEDED.*\[libcryo\.so\.[0-9]*\]' ||
	fail "use_lib is not linked to libcryo.so.N"

lib=$root$libdir/$(readelf -d "$work/use_lib" | sed -n 's/.*NEEDED.*\[\(libcryo\.so\.[0-9]*\)\].*/\1/p')
[ -f "$lib" ] || fail "$lib is not installed"
soname=$(readelf -d "$lib" | sed -n 's/.*SONAME.*\[\(.*\)\].*/\1/p')
abi=$(sed -n 's/^#define CRYO_ABI_VERSION \([0-9]*\)$/\1/p' "$root$prefix/include/cryo.h")
[ "$soname" = "libcryo.so.$abi" ] || fail "soname $soname, but cryo.h says ABI $abi"
[ "$(readlink "$root$libdir/libcryo.so")" = "$soname" ] || fail "libcryo.so does not lead to $soname"
[ -f "$root$libdir/libcryo.a" ] || fail "libcryo.a is not installed"

# The exports: the functions cryo.h declares, no more, no fewer.
sed -n 's/^[a-zA-Z].*[ *]\(cryo_[a-z_]*\)(.*/\1/p' "$root$prefix/include/cryo.h" | sort >"$work/declared"
nm -D --defined-only "$lib" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort >"$work/exported"
diff "$work/declared" "$work/exported" >"$work/exports.diff" ||
	fail "exports differ from cryo.h's functions (< declared, > exported): $(tr '\n' ' ' <"$work/exports.diff")"
echo "exports: $(wc -l <"$work/exported") functions, those of cryo.h"

mkdir -p "$work/img"
out=$("$work/use_lib" "$work/img" 2>&1)
echo "$out"
loaded=$(sed -n 's/^library //p' <<<"$out")	# /lib may be /usr/lib: compare the files
[ -n "$loaded" ] && [ "$(stat -L -c %d:%i "$loaded")" = "$(stat -L -c %d:%i "$lib")" ] ||
	fail "use_lib loaded ${loaded:-no library}, not the installed $lib"
grep -q '^ok restored' <<<"$out" || fail "the dump and restore through the library failed"

bin=$root$prefix/sbin/cryo
"$bin" --version | grep -q "^cryo " || fail "$bin --version"
page=$root$prefix/share/man/man8/cryo.8
[ -f "$page" ] || page=$page.gz
[ -f "$page" ] || fail "no man page cryo.8"
warn=$(man --warnings -l "$page" 2>&1 >/dev/null)
[ -z "$warn" ] || fail "man page warnings: $warn"
echo ok
