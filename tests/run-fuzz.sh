#!/bin/sh
# Run each libFuzzer target for a bounded time over its seed corpus
# (tests/fuzz/corpus/<name>/, read-only: new inputs go to a scratch dir).
# Usage: run-fuzz.sh BUILDDIR SECONDS FUZZER...
set -u
dir=$1 secs=$2
shift 2
pass=0 fail=0
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT INT TERM
for f in "$@"; do
	name=$(basename "$f")
	seeds=tests/fuzz/corpus/${name#fuzz_}
	mkdir -p "$scratch/$name"
	echo "== $name (${secs}s)"
	if [ -d "$seeds" ]; then
		set -- "$scratch/$name" "$seeds"
	else
		set -- "$scratch/$name"
	fi
	if "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$scratch/" "$@" >"$scratch/$name.log" 2>&1; then
		grep -E '^(stat::number_of_executed_units|Done )' "$scratch/$name.log" || true
		pass=$((pass + 1))
	else
		tail -n 60 "$scratch/$name.log"
		for a in "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-*; do
			[ -f "$a" ] && { echo "artifact $a:"; od -A x -t x1z "$a" | head -n 20; }
		done
		echo "FAILED: $name" >&2
		fail=$((fail + 1))
	fi
done
echo "fuzz targets: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
