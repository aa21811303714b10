#!/bin/sh
# Install, on Debian 12, exactly the packages crisp needs that are missing.
#   mk/deps.sh build   what `make` needs
#   mk/deps.sh test    what `make check` needs (build + test tools + servers)
# Already-installed packages are left alone; nothing is installed when all
# are present, so the script is cheap to call from every make target.
set -eu

BUILD_PKGS="gcc make pkg-config libc6-dev
 libseccomp-dev libcap-ng-dev libselinux1-dev libapparmor-dev
 libprotobuf-c-dev protobuf-c-compiler libsodium-dev libgpgme-dev
 libnghttp2-dev libcurl4-openssl-dev libjansson-dev libarchive-dev
 libsqlite3-dev libinih-dev libssl-dev zlib1g-dev musl-tools"

TEST_PKGS="clang libclang-rt-14-dev libcmocka-dev
 python3-grpcio python3-grpc-tools python3-protobuf python3-pytest
 docker-registry skopeo umoci busybox-static containernetworking-plugins
 iproute2 iptables gnupg jq zstd curl procps passwd
 protobuf-compiler libcap2-bin openssl util-linux runc crun"

case "${1:-build}" in
build) want="$BUILD_PKGS" ;;
test) want="$BUILD_PKGS $TEST_PKGS" ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	s=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$s" in
	ii*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "crisp: missing Debian packages:$missing" >&2
	echo "crisp: run as root (or: apt-get install$missing)" >&2
	exit 1
fi
echo "crisp: installing missing packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
