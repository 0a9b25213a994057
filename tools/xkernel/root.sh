# Sourced by the xkernel scripts: fetching a Debian kernel package and filling a guest
# root ($R) with programs and their libraries at the same paths as here.

# The concrete kernel package behind a meta-package, downloaded once into $cache.
fetch_kernel() {
	local pkg
	pkg=$(apt-cache depends "$1" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	[ -n "$pkg" ] || { echo "no kernel package behind $1" >&2; return 1; }
	if ! ls "$cache/$pkg"_*.deb >/dev/null 2>&1; then
		(cd "$cache" && apt-get download -q "$pkg" >/dev/null 2>&1) || {
			echo "cannot download $pkg" >&2; return 1; }
	fi
	ls "$cache/$pkg"_*.deb | head -n 1
}

# Copy one file or symlink into the guest root at the same path, keeping its
# modification time (cryo checks that mapped files are unchanged).
put() {
	mkdir -p "$R$(dirname "$1")" && cp -a "$1" "$R$1"
}

# The same for a path whose directories may be symlinks: every symlink on the way
# is recreated too.
copy_path() {
	local p=$1 pre="" rest c
	rest=${p#/}
	while [ -n "$rest" ]; do
		c=${rest%%/*}
		if [ "$c" = "$rest" ]; then rest=""; else rest=${rest#*/}; fi
		pre="$pre/$c"
		if [ -L "$pre" ]; then
			put "$pre"
			copy_path "$(readlink -f "$pre")${rest:+/$rest}"
			return
		fi
	done
	put "$p"
}

copy_with_libs() {
	copy_path "$1"
	for lib in $(ldd "$1" | grep -oE '/[^ ]+'); do
		copy_path "$lib"
	done
}
