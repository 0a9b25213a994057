#!/usr/bin/env bash
# Boot a Debian kernel package under qemu (TCG: KVM here cannot boot stock kernels)
# with ROOT as its whole initramfs and tools/xkernel/xkinit as PID 1, which runs
# ROOT/xk/guest.sh; what the guest leaves in /out comes back into OUT (through a raw
# NVMe disk holding a tar archive). The guest console goes to OUT/console.log.
#
# usage: boot.sh KERNEL.deb ROOT OUT [TIMEOUT_SECONDS]
# XK_MEM: the guest's memory in MiB (default 2048); the root lives in it.
set -uo pipefail
deb=$1 root=$2 out=$3 limit=${4:-600}
here=$(cd "$(dirname "$0")" && pwd)
cache=${XK_CACHE:-$here/../../build/xkernel}
mkdir -p "$cache" "$out"

die() { echo "boot.sh: $*" >&2; exit 125; }
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is not installed"
[ -x /bin/busybox ] || die "busybox-static is not installed"

# The kernel image, extracted once per package.
kdir=$cache/$(basename "$deb" .deb)
if [ ! -d "$kdir" ]; then
	dpkg-deb -x "$deb" "$kdir.tmp" || die "cannot unpack $deb"
	mv "$kdir.tmp" "$kdir"
fi
kernel=$(ls "$kdir"/boot/vmlinuz-* 2>/dev/null | head -n 1)
[ -n "$kernel" ] || die "no kernel in $deb"

# PID 1 and a shell with the usual tools.
[ -x "$cache/xkinit" ] && [ "$cache/xkinit" -nt "$here/xkinit.c" ] ||
	gcc -static -O2 -o "$cache/xkinit" "$here/xkinit.c" || die "cannot build xkinit"
mkdir -p "$root"/{bin,proc,sys,dev,tmp,out,xk}
cp "$cache/xkinit" "$root/init"
cp /bin/busybox "$root/bin/busybox"
for applet in sh cat cp echo grep kill ls mkdir rm sleep sync tar test uname wc head tail env setsid; do
	ln -sf busybox "$root/bin/$applet"
done

work=$(mktemp -d /tmp/xk-boot.XXXXXX)
trap 'rm -rf "$work"' EXIT
(cd "$root" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) > "$work/initrd" ||
	die "cannot build the initramfs"
truncate -s 512M "$work/out.img"
timeout -k 5 "$limit" qemu-system-x86_64 -nodefaults -no-reboot -display none \
	-accel tcg -cpu max -smp 2 -m "${XK_MEM:-2048}" \
	-kernel "$kernel" -initrd "$work/initrd" \
	-append "console=ttyS0 panic=-1 quiet" \
	-serial "file:$out/console.log" \
	-drive "file=$work/out.img,if=none,id=xkout,format=raw" \
	-device nvme,drive=xkout,serial=xkout </dev/null >"$work/qemu.log" 2>&1
rc=$?
grep -q XK-SAVED "$out/console.log" || {
	tail -n 20 "$out/console.log" >&2
	cat "$work/qemu.log" >&2
	die "the guest saved no results (qemu exit $rc)"
}
tar -C "$out" -xf "$work/out.img" 2>/dev/null || die "cannot read the guest's results"
exit 0
