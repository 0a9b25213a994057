#!/usr/bin/env bash
# make check-xkernel: restore across kernels, for real. For Debian's 6.1 and 6.12 cloud
# kernels (booted under qemu TCG by boot.sh), a test program (tests/xkernel/xk_prog.c)
# is moved in three directions and checks time, getcpu and getrandom wherever it lands:
#   host -> guest          dumped here, restored in the guest (vDSO proxied)
#   guest -> host          started and dumped in the guest, restored here
#   host -> guest -> host  restored in the guest, dumped again there, restored here
# The guest CPU (TCG "max") has AVX2 but no AVX-512: the program is built without
# AVX-512 or TSX, glibc is told not to use them, lazy binding is off (ld.so's lazy-binding path
# picks an XSAVE variant from the CPU it started on), and restores pass --cpu-cap=none
# — after checking that without it the CPU check refuses, naming the missing feature.
# The last line is "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
[ "$(id -u)" = 0 ] || { echo "check.sh: run as root" >&2; exit 2; }
tools/deps.sh --xkernel || exit 2
make -s -j"$(nproc)" all >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

cryo=$top/build/bin/cryo
W=/tmp/cryo-xk			# the same path on the host and in the guests
cache=${XK_CACHE:-$top/build/xkernel}
kernels=${XK_KERNELS:-"linux-image-cloud-amd64 linux-image-6.12-cloud-amd64"}
export GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD,-RTM
export LD_BIND_NOW=1
passed=0 failed=0
. tools/xkernel/root.sh

result() {	# result NAME OK DETAIL
	if [ "$2" = 1 ]; then
		passed=$((passed + 1)); echo "PASS $1"
	else
		failed=$((failed + 1)); echo "FAIL $1: $3"
	fi
}

# Start the program in its own session with only stdio; prints its PID.
start_prog() {
	(
		for fd in /proc/$BASHPID/fd/*; do
			n=${fd##*/}
			[ "$n" -gt 2 ] && eval "exec $n>&-"
		done
		exec setsid "$W/xk_prog" >"$1" 2>&1 </dev/null
	) &
	echo $!
}

wait_ready() {
	for _ in $(seq 300); do
		grep -q READY "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# A PID free on the host from which guest PIDs start (so guest processes can come
# back here with theirs).
free_pid_base() {
	local b
	for b in $(seq 20000 500 32000); do
		local busy=0
		for i in $(seq "$b" $((b + 100))); do
			[ -e "/proc/$i" ] && { busy=1; break; }
		done
		[ "$busy" = 0 ] && { echo "$b"; return; }
	done
	echo 20000
}

# Restore IMG here in the foreground, send the go signal, expect PASS in LOG.
restore_here() {	# NAME IMG LOG
	local name=$1 img=$2 log=$3 pid rc
	rm -f "$W/here.pid"
	"$cryo" restore -v -D "$img" --cpu-cap=none --pidfile "$W/here.pid" \
		>"$W/$name.restore.txt" 2>&1 &
	local cr=$!
	for _ in $(seq 100); do [ -s "$W/here.pid" ] && break; sleep 0.1; done
	pid=$(cat "$W/here.pid" 2>/dev/null)
	if [ -z "$pid" ]; then
		wait "$cr"
		result "$name" 0 "restore failed: $(tail -n 1 "$W/$name.restore.txt")"
		return
	fi
	sleep 0.3
	kill -USR1 "$pid"
	wait "$cr"; rc=$?
	if [ "$rc" = 0 ] && grep -q '^PASS' "$log"; then
		result "$name" 1
	else
		result "$name" 0 "exit $rc: $(tail -n 2 "$log" | tr '\n' ' ')"
	fi
}

one_kernel() {
	local meta=$1 deb kver R out pid1 base
	deb=$(fetch_kernel "$meta") || { result "$meta: download" 0 "no kernel"; return; }
	kver=$(basename "$deb" | sed 's/^linux-image-\([^_]*\)_.*/\1/')
	echo "== $kver"
	rm -rf "$W" && mkdir -p "$W"
	cp "$top/build/xk_prog" "$W/xk_prog"

	# host: a process to send into the guest
	pid1=$(start_prog "$W/p1.log")
	wait_ready "$W/p1.log" || { result "$kver: start" 0 "program not ready"; return; }
	"$cryo" dump -t "$pid1" -D "$W/img-host" >"$W/dump-host.txt" 2>&1 ||
		{ result "$kver: dump here" 0 "$(tail -n 1 "$W/dump-host.txt")"; return; }
	wait "$pid1" 2>/dev/null

	# the guest's root: cryo, the program, their libraries, the image
	R=$W.root && rm -rf "$R" && mkdir -p "$R"
	copy_with_libs "$cryo"
	copy_with_libs "$W/xk_prog"
	put "$W/img-host"
	put "$W/p1.log"
	base=$(free_pid_base)
	mkdir -p "$R/xk"
	cat >"$R/xk/guest.sh" <<EOF
export PATH=/bin GLIBC_TUNABLES=$GLIBC_TUNABLES LD_BIND_NOW=1
W=$W; O=/out; cryo=$cryo
echo $base > /proc/sys/kernel/ns_last_pid
echo 1 > /proc/sys/kernel/print-fatal-signals
uname -r > \$O/uname.txt
\$cryo check > \$O/check.txt 2>&1
# the CPU check, not overridden
\$cryo restore -D \$W/img-host -d > \$O/cpu-refusal.txt 2>&1; echo \$? > \$O/cpu-refusal.rc
# host -> guest: restore (cryo stays the parent and reports the exit), then verify
\$cryo restore -v -D \$W/img-host --cpu-cap=none --pidfile \$W/a.pid > \$O/restore-a.txt 2>&1 &
cr=\$!
for i in \$(seq 100); do [ -s \$W/a.pid ] && break; sleep 0.1; done
sleep 1; kill -USR1 \$(cat \$W/a.pid)
wait \$cr; echo "exit \$?" >> \$O/restore-a.txt
cp \$W/p1.log \$O/p1-after-a.log
# host -> guest -> (host): restore again and dump in the guest
\$cryo restore -v -D \$W/img-host -d --cpu-cap=none --pidfile \$W/c.pid > \$O/restore-c.txt 2>&1
pid=\$(cat \$W/c.pid); sleep 1
\$cryo dump -v -t \$pid -D \$O/img-again > \$O/dump-c.txt 2>&1
for i in \$(seq 100); do [ -e /proc/\$pid ] || break; sleep 0.1; done
# guest -> host: a fresh process started here
setsid \$W/xk_prog > \$W/p2.log 2>&1 < /dev/null &
pid=\$!
for i in \$(seq 300); do grep -q READY \$W/p2.log && break; sleep 0.1; done
sleep 0.5
\$cryo dump -v -t \$pid -D \$O/img-guest > \$O/dump-b.txt 2>&1
sleep 0.5
cp \$W/p2.log \$O/p2.log
dmesg > \$O/dmesg.txt
EOF
	out=$W.out-$kver && rm -rf "$out"
	local t0=$SECONDS
	tools/xkernel/boot.sh "$deb" "$R" "$out" 900 ||
		{ result "$kver: boot" 0 "the guest failed"; return; }
	echo "   (guest run: $((SECONDS - t0)) s, kernel $(cat "$out/uname.txt" 2>/dev/null))"

	# the CPU check refused, naming AVX-512, without the override
	if [ "$(cat "$out/cpu-refusal.rc" 2>/dev/null)" != 0 ] &&
	   grep -q "avx512" "$out/cpu-refusal.txt"; then
		result "$kver: CPU check refuses a host image without --cpu-cap=none" 1
	else
		result "$kver: CPU check refuses a host image without --cpu-cap=none" 0 \
			"$(tail -n 1 "$out/cpu-refusal.txt" 2>/dev/null)"
	fi
	if grep -q '^PASS' "$out/p1-after-a.log" 2>/dev/null && grep -q "now on $kver" "$out/p1-after-a.log"; then
		result "$kver: host -> guest" 1
	else
		result "$kver: host -> guest" 0 "$(tail -n 2 "$out/p1-after-a.log" "$out/restore-a.txt" 2>/dev/null | tr '\n' ' ')"
	fi
	# guest -> host: the program's log must exist here at its path
	cp "$out/p2.log" "$W/p2.log" 2>/dev/null
	if [ -d "$out/img-guest" ]; then
		restore_here "$kver: guest -> host" "$out/img-guest" "$W/p2.log"
	else
		result "$kver: guest -> host" 0 "no image: $(tail -n 1 "$out/dump-b.txt" 2>/dev/null)"
	fi
	if [ -d "$out/img-again" ]; then
		restore_here "$kver: host -> guest -> host" "$out/img-again" "$W/p1.log"
	else
		result "$kver: host -> guest -> host" 0 "no image: $(tail -n 1 "$out/dump-c.txt" 2>/dev/null)"
	fi
}

mkdir -p "$cache"
gcc -O2 -o "$top/build/xk_prog" tests/xkernel/xk_prog.c || { echo "0 passed, 1 failed"; exit 1; }
for k in $kernels; do
	one_kernel "$k"
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
