#!/usr/bin/env bash
# The main job in one go: build cryo, start a live process, checkpoint it (the
# process is gone), restore it (same PID, same memory) and watch it continue.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "tools/demo.sh: run as root" >&2; exit 2; }
tools/deps.sh
make -s -j"$(nproc)" all
d=$(mktemp -d /tmp/cryo-demo.XXXXXX)
gcc -O1 -o "$d/counter" tools/demo/counter.c

echo "== starting a counter (its log is $d/log)"
# Its own session, and no fds but stdio: cryo restores regular files, not pipes
# the calling shell might leak.
(
	for fd in /proc/$BASHPID/fd/*; do
		n=${fd##*/}
		[ "$n" -gt 2 ] && eval "exec $n>&-"
	done
	exec setsid "$d/counter" >"$d/log" 2>&1 </dev/null
) &
pid=$!
sleep 1.1
tail -n 2 "$d/log"

echo "== cryo dump -t $pid -D $d/img"
bin/cryo dump -t "$pid" -D "$d/img"
{ wait "$pid" || true; } 2>/dev/null
last=$(tail -n 1 "$d/log")
kill -0 "$pid" 2>/dev/null && { echo "the process is still running?" >&2; exit 1; }
echo "process $pid is gone; the image:"
ls -l "$d/img"
sleep 1

echo "== cryo restore -D $d/img -d"
bin/cryo restore -D "$d/img" -d
sleep 1.1
echo "last line before the dump: $last"
echo "process $pid runs again and continues where it stopped:"
grep -A4 -F "$last" "$d/log" | tail -n +2
kill "$pid"
echo "== done (files in $d)"
