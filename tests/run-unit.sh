#!/bin/sh
# Run every cmocka unit-test program given; each prints its own summary.
# Exit non-zero if any program fails (or none ran).
pass=0 fail=0
for t in "$@"; do
	echo "== $t"
	if "$t"; then
		pass=$((pass + 1))
	else
		echo "FAILED: $t" >&2
		fail=$((fail + 1))
	fi
done
echo "unit programs: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
