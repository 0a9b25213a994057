#!/usr/bin/env bash
# Install, from Debian's packages, what cryo needs to build and test (as root).
# Only missing packages are installed; nothing happens if all are present.
set -euo pipefail
pkgs=(gcc make libc6-dev protobuf-c-compiler libprotobuf-c-dev python3 perl tmux bsdutils
      clang libclang-rt-14-dev procps util-linux
      iproute2	# restore-tcp-address-gone adds and removes an address on lo
      redis-server memcached nginx-light nodejs	# the suite's real servers
      libnftables-dev nftables	# the network lock (net_lock.c)
      pkg-config man-db		# pkg-install: the installed library and man page
      libcap2-bin		# make install-caps (setcap); the unprivileged pass sets its own
      debhelper dpkg-dev lintian)	# tools/pkg_test.sh: the Debian package
[ "${1:-}" = "--xkernel" ] && pkgs+=(qemu-system-x86 busybox-static cpio xz-utils zstd)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
