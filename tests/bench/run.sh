#!/bin/sh
# make bench: latency of CRI round trips through a real crispd.
#
#   sh tests/bench/run.sh /abs/path/to/build    (make bench passes build/)
#
# Builds tests/bench/cri_bench.c (cc -O2, nghttp2, protobuf-c and the
# generated cri.pb-c.c of that build) into BUILD/bench/, starts BUILD/bin/crispd
# as root on a configuration of its own in a temporary directory (root,
# runroot, socket, CNI config dir all inside it), waits until every role is
# up, runs the benchmark over one persistent HTTP/2 connection, and stops
# crispd with SIGTERM by its pid (it must remove its socket).  Whatever it
# started is stopped and the directory removed, even on failure or Ctrl-C.
#
# A benchmark, not a test: slow numbers do not fail it, errors do.
# BENCH_CALLS (default 10000) and BENCH_WARMUP (default 1000) size it.
set -eu

B=${1:?usage: run.sh ABSOLUTE_BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
CALLS=${BENCH_CALLS:-10000}
WARMUP=${BENCH_WARMUP:-1000}
CC=${CC:-cc}

say() { echo "bench: $*"; }
fail() { echo "bench: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "crispd must run as root (it creates its roles' users and sandboxes)"
[ -x "$B/bin/crispd" ] || fail "no $B/bin/crispd (run make first)"
[ -f "$B/gen/proto/cri.pb-c.c" ] || fail "no $B/gen/proto/cri.pb-c.c"

# ---- build the client ----
mkdir -p "$B/bench"
# shellcheck disable=SC2046
$CC -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -I"$B/gen" \
	$(pkg-config --cflags libnghttp2 libprotobuf-c) \
	-o "$B/bench/cri_bench" "$HERE/cri_bench.c" "$B/gen/proto/cri.pb-c.c" \
	$(pkg-config --libs libnghttp2 libprotobuf-c)

# ---- a crispd of its own ----
tmp=$(mktemp -d /tmp/crisp-bench-XXXXXX)
pid=""
bpid=""

stop_crispd() {
	[ -n "$pid" ] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "bench: crispd $pid did not stop in 10 s: SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null && rc=0 || rc=$?
	pid=""
	return "$rc"
}

cleanup() {
	st=$?
	trap - EXIT INT TERM HUP
	if [ -n "$bpid" ]; then
		kill -TERM "$bpid" 2>/dev/null || true
		wait "$bpid" 2>/dev/null || true
	fi
	stop_crispd || true
	ip link del crispbench0 2>/dev/null || true
	# Unmount whatever crisp pinned below the bench directory.
	awk '{print $5}' /proc/self/mountinfo | grep "^$tmp/" | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done
	rm -rf "$tmp"
	exit $st
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

sock="$tmp/crisp.sock"
mkdir -p "$tmp/net.d"
# A real bridge on a private subnet that routes nowhere, for the pod
# lifecycle benchmark; removed at exit.
bridge=crispbench0
cat >"$tmp/net.d/10-bench.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "crisp-bench", "plugins": [{"type": "loopback"},
 {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false,
  "ipam": {"type": "host-local", "dataDir": "$tmp/ipam", "ranges": [[{"subnet": "10.248.0.0/24"}]]}}]}
EOF
cat >"$tmp/crisp.conf" <<EOF
[crisp]
root = $tmp/root
runroot = $tmp/run
listen = $sock
log_level = info

[netd]
cni_config_dir = $tmp/net.d
EOF

"$B/bin/crispd" --config "$tmp/crisp.conf" >"$tmp/stdout" 2>"$tmp/crispd.log" &
pid=$!

# Wait until the socket is announced and every role logged "up".
i=0
while :; do
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/crispd.log" >&2; fail "crispd exited at start"; }
	if [ -S "$sock" ] && grep -q "serving CRI" "$tmp/crispd.log" 2>/dev/null &&
		[ "$(grep -cE '(execd|netd|frontd|imaged) up \(pid' "$tmp/crispd.log")" -ge 4 ]; then
		break
	fi
	i=$((i + 1))
	[ $i -lt 200 ] || { cat "$tmp/crispd.log" >&2; fail "crispd not ready in 10 s"; }
	sleep 0.05
done

# ---- the machine ----
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
[ -n "$cpu" ] || cpu=$(uname -m)
if grep -q __asan_init "$B/bin/crisp-frontd"; then san="yes (ASan+UBSan: not representative)"; else san=no; fi
say "machine: $(nproc) CPUs, $cpu, kernel $(uname -r)"
say "build: $B, sanitizer build: $san"
say "crispd pid $pid, socket $sock; one HTTP/2 connection, sequential calls"

# ---- the benchmark ----
# In the background so that a signal to this script is handled at once.
"$B/bench/cri_bench" "$sock" "$CALLS" "$WARMUP" &
bpid=$!
if ! wait "$bpid"; then
	bpid=""
	tail -n 30 "$tmp/crispd.log" >&2
	fail "benchmark failed"
fi
bpid=""

# No role may have died or been restarted during the run.
if grep -E "(frontd|execd|netd|imaged) (exited|killed|ended)|killing " "$tmp/crispd.log" >&2; then
	fail "a role died during the benchmark"
fi

stop_crispd || fail "crispd exited with status $? on SIGTERM"
[ ! -e "$sock" ] || fail "crispd left its socket $sock behind"
