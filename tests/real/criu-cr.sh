#!/bin/sh
# A checkpoint/restore script written for CRIU's command line, as people and tools
# use it: dump with a log file at -v4 as a shell job, restore detached with a pidfile,
# an action script and a status fd. The suite runs it unchanged with a `criu` that is
# cryo first in PATH (tests/harness_bad.c, cli-criu-script).
# usage: criu-cr.sh PID IMAGES_DIR WORK_DIR
set -eu
pid=$1
images=$2
work=$3

hook="$work/hook.sh"
cat > "$hook" <<HOOK
#!/bin/sh
echo "\$CRTOOLS_SCRIPT_ACTION \${CRTOOLS_INIT_PID:-none} \$CRTOOLS_IMAGE_DIR" >> "$work/actions.log"
HOOK
chmod +x "$hook"

criu dump -t "$pid" -D "$images" -W "$work" -o dump.log -v4 --shell-job \
	--action-script "$hook"
test -s "$work/dump.log"

# The status fd reads one zero byte once the tree runs.
criu restore -D "$images" -W "$work" -o restore.log -v4 --shell-job -d \
	--pidfile "$work/restored.pid" --action-script "$hook" --status-fd 3 \
	3> "$work/status"
test "$(cat "$work/restored.pid")" = "$pid"
test "$(od -An -c "$work/status" | tr -d ' ')" = '\0'
kill -0 "$pid"
echo "criu-cr: restored $pid"
