#!/usr/bin/env bash
# make deps: install what building and testing need beyond Go, only what is missing.
# Debian packages through apt-get (root), Go tools into the repository's .tools/bin (which the
# Makefile puts first on PATH, and internal/testfixtures/s3test looks in); quick when everything is present.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
[ -e /usr/include/seccomp.h ] || need+=(libseccomp-dev)   # libcontainer's syscall filters (cgo)
command -v pkg-config >/dev/null || need+=(pkg-config)       # libseccomp-golang finds libseccomp with it
command -v curl >/dev/null || need+=(curl)
command -v git >/dev/null || need+=(git)                     # make lint lists the files with git ls-files
command -v redis-server >/dev/null || need+=(redis-server) # examples/plugins/redis-streams' tests
command -v wrk >/dev/null || need+=(wrk)                     # make bench BENCHFLAGS=-peers: the load generator
command -v taskset >/dev/null || need+=(util-linux)          # make bench BENCHFLAGS=-peers: pins it apart from the server
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "make deps: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
		exit 1
	fi
	echo "make deps: installing ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# versitygw: the S3-compatible server the s3 trigger's tests run against (about 70 s to build, once).
tools="$root/.tools/bin"
if [ ! -x "$tools/versitygw" ]; then
	echo "make deps: installing versitygw into $tools"
	GOBIN="$tools" "${GO:-go}" install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
