#!/bin/sh
# Runs each fuzz target for SECONDS on its corpus (corpus-NAME/, grown across runs) plus
# the committed seeds (seeds/NAME/) and fresh ones (OUT/seeds/NAME/), then prints one
# summary line per target; exits 1 if any target crashed or failed to run.
# usage: run.sh OUT SECONDS NAME:MAXLEN...
out=$1
secs=$2
shift 2
summary=$out/summary.txt
: > "$summary"
failed=0

for spec in "$@"; do
	name=${spec%%:*}
	maxlen=${spec#*:}
	log=$out/log-$name.txt
	mkdir -p "corpus-$name"
	dirs="corpus-$name"
	for d in "seeds/$name" "$out/seeds/$name"; do
		[ -d "$d" ] && dirs="$dirs $d"
	done
	echo "fuzz_$name: ${secs}s, max_len $maxlen, corpus: $dirs"
	# shellcheck disable=SC2086
	"$out/fuzz_$name" -max_total_time="$secs" -max_len="$maxlen" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="crash-$name-" \
		$dirs > "$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	units=$(ls "corpus-$name" | wc -l)
	if [ "$rc" -eq 0 ]; then
		status=ok
	else
		status="FAILED (exit $rc, see $log)"
		failed=1
		grep -m 3 -E 'ERROR: |SUMMARY: |Test unit written' "$log" | sed 's/^/    /'
	fi
	printf '%-16s %-6s %12s execs  cov %-6s corpus %-6s %s\n' "fuzz_$name" \
		"${secs}s" "${execs:-?}" "${cov:-?}" "$units" "$status" >> "$summary"
done

echo
echo "== fuzz summary =="
cat "$summary"
if [ "$failed" -ne 0 ]; then
	echo "fuzz: FAILED (crash inputs are fuzz/crash-*)"
	exit 1
fi
echo "fuzz: all targets ran without a crash"
