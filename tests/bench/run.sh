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
#
# Images and containers: a docker-registry of its own on 127.0.0.1 (a free
# port, storage in the temporary directory), a busybox OCI image built by
# hand (tar, gzip -n, sha256sum) and pushed with skopeo, a registries.conf
# marking that registry insecure in /etc/crisp (the only place besides
# /etc/containers imaged's sandbox reads configuration from; removed at
# exit), and no signature policy (every image accepted).  BENCH_ITERS
# (default 50; 0 skips them) sizes the image and container benchmarks,
# BENCH_POD_ITERS (default 50) the pod one.
#
# A big pull: an image of 4 layers of 50 MB of random data each (gzip -1)
# pulled cold BENCH_BIG_ITERS times (default 3), in seconds and MB/s, beside
# tar -xzf of the same layer tarballs into a tmpfs (mounted in the
# temporary directory, unmounted at exit) as the machine's ceiling.
# BENCH_BIG=0 skips it (it needs the registry: BENCH_ITERS > 0).
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
rpid=""
regconf=""
made_etc=""
tmpfs_mnt=""

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

# Containers outlive crispd by design: after a failed run, end those left
# under this runroot (each monitor holds files below it open), by pid: the
# container's process (argv[3] of its monitor) and the monitor; then their
# cgroups.
end_containers() {
	for p in /proc/[0-9]*; do
		a=$({ tr '\0' '\n' <"$p/cmdline"; } 2>/dev/null) || continue
		[ "$(echo "$a" | sed -n 2p)" = "--container-monitor" ] || continue
		mine=""
		for f in "$p"/fd/*; do
			case "$(readlink "$f" 2>/dev/null)" in "$tmp/run/"*) mine=1 ;; esac
		done
		[ -n "$mine" ] || continue
		cid=$(echo "$a" | sed -n 3p)
		cpid=$(echo "$a" | sed -n 4p)
		echo "bench: ending container ${cid%"${cid#????????????}"} left running" >&2
		case "$cpid" in '' | *[!0-9]*) ;; *) kill -KILL "$cpid" 2>/dev/null || true ;; esac
		kill -KILL "${p#/proc/}" 2>/dev/null || true
		sleep 0.1
	done
	# The cgroups of every container crisp still knew of (created, or
	# stopped but not removed, have no monitor); only empty ones go.
	for d in "$tmp"/run/containers/* "$tmp"/root/containers/*; do
		[ -d "$d" ] || continue
		cid=${d##*/}
		for cg in /sys/fs/cgroup/*/crisp/crisp-"$cid" /sys/fs/cgroup/crisp/crisp-"$cid"; do
			[ ! -d "$cg" ] || rmdir "$cg" 2>/dev/null || true
		done
	done
}

cleanup() {
	st=$?
	trap - EXIT INT TERM HUP
	if [ -n "$bpid" ]; then
		kill -TERM "$bpid" 2>/dev/null || true
		wait "$bpid" 2>/dev/null || true
	fi
	stop_crispd || true
	[ ! -d "$tmp/run" ] || end_containers
	if [ -n "$tmpfs_mnt" ]; then
		umount "$tmpfs_mnt" 2>/dev/null || umount -l "$tmpfs_mnt" 2>/dev/null || true
	fi
	if [ -n "$rpid" ]; then
		kill -TERM "$rpid" 2>/dev/null || true
		wait "$rpid" 2>/dev/null || true
	fi
	[ -z "$regconf" ] || rm -f "$regconf"
	[ -z "$made_etc" ] || rmdir /etc/crisp 2>/dev/null || true
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
mkdir -p "$tmp/net.d" "$tmp/run"
# runroot on a tmpfs, as the embedded default /run/crisp is on a node
# whose /run is a tmpfs (systemd's): what lives there is rebuilt at boot,
# so its files cost no disk flush.  Unmounted by cleanup with the rest
# below $tmp.
mount -t tmpfs -o mode=0755,size=256m crisp-bench-run "$tmp/run"
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

# ---- a registry of its own, with a busybox image ----
ITERS=${BENCH_ITERS:-50}
image=""
big_image=""
big_bytes=0
big_tar_ms=0
if [ "$ITERS" -gt 0 ]; then
	for t in docker-registry skopeo curl tar gzip sha256sum ss od; do
		command -v "$t" >/dev/null || fail "$t not found (needed for the image benchmarks; BENCH_ITERS=0 skips them)"
	done
	[ -x /bin/busybox ] || fail "no /bin/busybox (busybox-static) for the test image"
	mkdir -p "$tmp/registry/data"
	tries=0
	while [ -z "$rpid" ]; do
		tries=$((tries + 1))
		[ $tries -le 5 ] || fail "docker-registry did not start: $(tail -n 5 "$tmp/registry/log")"
		port=$(($(od -An -N2 -tu2 /dev/urandom) % 20000 + 30000))
		ss -Hltn "sport = :$port" | grep -q . && continue
		cat >"$tmp/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $tmp/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: crisp-bench
EOF
		docker-registry serve "$tmp/registry/config.yml" >>"$tmp/registry/log" 2>&1 &
		rpid=$!
		i=0
		until curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; do
			if ! kill -0 "$rpid" 2>/dev/null || [ $i -ge 200 ]; then
				kill -TERM "$rpid" 2>/dev/null || true
				wait "$rpid" 2>/dev/null || true
				rpid=""
				break
			fi
			i=$((i + 1))
			sleep 0.05
		done
	done

	# An OCI layout of one reproducible layer: bin/busybox, bin/sh -> busybox.
	o="$tmp/oci"
	mkdir -p "$o/blobs/sha256" "$tmp/bbroot/bin"
	cp /bin/busybox "$tmp/bbroot/bin/busybox"
	ln -s busybox "$tmp/bbroot/bin/sh"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tmp/bbroot" \
		-cf "$tmp/layer.tar" bin
	diffid=$(sha256sum <"$tmp/layer.tar" | cut -d' ' -f1)
	gzip -n -c "$tmp/layer.tar" >"$tmp/layer.tar.gz"
	blob() { # FILE: stored in the layout under its digest, which is printed
		d=$(sha256sum <"$1" | cut -d' ' -f1)
		cp "$1" "$o/blobs/sha256/$d"
		echo "$d"
	}
	arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
	printf '{"architecture":"%s","config":{"Cmd":["/bin/sh"],"Env":["PATH=/bin:/usr/bin"]},"os":"linux","rootfs":{"diff_ids":["sha256:%s"],"type":"layers"}}' \
		"$arch" "$diffid" >"$tmp/config.json"
	lsum=$(blob "$tmp/layer.tar.gz")
	lsize=$(stat -c %s "$tmp/layer.tar.gz")
	csum=$(blob "$tmp/config.json")
	csize=$(stat -c %s "$tmp/config.json")
	printf '{"config":{"digest":"sha256:%s","mediaType":"application/vnd.oci.image.config.v1+json","size":%s},"layers":[{"digest":"sha256:%s","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":%s}],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}' \
		"$csum" "$csize" "$lsum" "$lsize" >"$tmp/manifest.json"
	msum=$(blob "$tmp/manifest.json")
	msize=$(stat -c %s "$tmp/manifest.json")
	printf '{"imageLayoutVersion":"1.0.0"}' >"$o/oci-layout"
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
		"$msum" "$msize" >"$o/index.json"
	image="127.0.0.1:$port/bench/busybox:latest"
	# No recompression: the registry stores exactly these blobs.
	skopeo copy --quiet --dest-tls-verify=false "oci:$o:latest" "docker://$image" >"$tmp/skopeo.log" 2>&1 ||
		{ cat "$tmp/skopeo.log" >&2; fail "skopeo copy to the bench registry failed"; }

	# ---- the big image: 4 layers of 50 MB random data, gzip -1 ----
	if [ "${BENCH_BIG:-1}" != 0 ]; then
		bg="$tmp/big"
		bo="$bg/oci"
		mkdir -p "$bo/blobs/sha256"
		bigblob() { # FILE: linked into the big layout under its digest, printed
			d=$(sha256sum <"$1" | cut -d' ' -f1)
			ln -f "$1" "$bo/blobs/sha256/$d"
			echo "$d"
		}
		big_layers=""
		big_diffs=""
		big_bytes=0
		for n in 1 2 3 4; do
			mkdir -p "$bg/l$n/big$n"
			head -c 50M /dev/urandom >"$bg/l$n/big$n/data"
			tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$bg/l$n" \
				-cf "$bg/l$n.tar" "big$n"
			rm -rf "$bg/l$n"
			did=$(sha256sum <"$bg/l$n.tar" | cut -d' ' -f1)
			gzip -1 -n -c "$bg/l$n.tar" >"$bg/l$n.tar.gz"
			rm -f "$bg/l$n.tar"
			ls_=$(bigblob "$bg/l$n.tar.gz")
			sz=$(stat -c %s "$bg/l$n.tar.gz")
			big_bytes=$((big_bytes + sz))
			big_layers="$big_layers${big_layers:+,}{\"digest\":\"sha256:$ls_\",\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"size\":$sz}"
			big_diffs="$big_diffs${big_diffs:+,}\"sha256:$did\""
		done
		printf '{"architecture":"%s","config":{"Cmd":["/bin/sh"]},"os":"linux","rootfs":{"diff_ids":[%s],"type":"layers"}}' \
			"$arch" "$big_diffs" >"$bg/config.json"
		bc=$(bigblob "$bg/config.json")
		bcs=$(stat -c %s "$bg/config.json")
		printf '{"config":{"digest":"sha256:%s","mediaType":"application/vnd.oci.image.config.v1+json","size":%s},"layers":[%s],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}' \
			"$bc" "$bcs" "$big_layers" >"$bg/manifest.json"
		bm=$(bigblob "$bg/manifest.json")
		bms=$(stat -c %s "$bg/manifest.json")
		printf '{"imageLayoutVersion":"1.0.0"}' >"$bo/oci-layout"
		printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
			"$bm" "$bms" >"$bo/index.json"
		big_image="127.0.0.1:$port/bench/big:latest"
		skopeo copy --quiet --dest-tls-verify=false "oci:$bo:latest" "docker://$big_image" >"$tmp/skopeo.log" 2>&1 ||
			{ cat "$tmp/skopeo.log" >&2; fail "skopeo copy of the big image failed"; }
		# The ceiling: the same tarballs unpacked by tar into memory.
		mkdir -p "$tmp/tmpfs"
		mount -t tmpfs -o size=1g,mode=0700 crisp-bench "$tmp/tmpfs"
		tmpfs_mnt="$tmp/tmpfs"
		t0=$(date +%s%N)
		for n in 1 2 3 4; do
			tar -xzf "$bg/l$n.tar.gz" -C "$tmpfs_mnt"
		done
		t1=$(date +%s%N)
		big_tar_ms=$(((t1 - t0) / 1000000))
		umount "$tmpfs_mnt"
		tmpfs_mnt=""
	fi

	# imaged reads its configuration only below /etc/crisp or /etc/containers.
	if [ ! -d /etc/crisp ]; then
		mkdir -m 755 /etc/crisp
		made_etc=1
	fi
	regconf=$(mktemp --suffix=.conf /etc/crisp/bench-XXXXXX)
	chmod 644 "$regconf"
	printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$port" >"$regconf"
	mkdir -p "$tmp/logs"
	cat >>"$tmp/crisp.conf" <<EOF

[imaged]
registries_conf = $regconf
signature_policy =
EOF
fi

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
[ -z "$image" ] || say "image $image (one layer: busybox, $lsize bytes gzip), $ITERS iterations per image/container call"
[ -z "$big_image" ] || say "big image $big_image (4 layers, $big_bytes bytes gzip), ${BENCH_BIG_ITERS:-3} cold pulls"

# ---- the benchmark ----
# In the background so that a signal to this script is handled at once.
BENCH_IMAGE=$image BENCH_ITERS=$ITERS BENCH_LOGDIR="$tmp/logs" BENCH_CRISPD_PID=$pid \
	BENCH_BIG_IMAGE=$big_image BENCH_BIG_BYTES=$big_bytes BENCH_BIG_TAR_MS=$big_tar_ms \
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
