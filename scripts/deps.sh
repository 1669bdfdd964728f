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
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins) # functions' private networks (CNI bridge, host-local)
command -v ip >/dev/null || need+=(iproute2)                 # the network tests make namespaces and veths with ip
command -v chromium >/dev/null || need+=(chromium)           # the web console's browser tests (integration/console_test.go, chromedp)
command -v promtool >/dev/null || need+=(prometheus)         # TestMetrics checks /v1/metrics with promtool check metrics
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

# cosign: the code signing tests prove that the signatures and keys cosign makes are the ones the
# gateway takes (a large build: several minutes the first time, once).
if [ ! -x "$tools/cosign" ]; then
	echo "make deps: installing cosign into $tools"
	GOBIN="$tools" CGO_ENABLED=0 GOFLAGS= "${GO:-go}" install github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3
fi

# The Node.js runtime interface client (npm aws-lambda-ric), which the image and managed-runtime
# tests run unchanged on a Node.js root built from this machine's node; its native part builds
# curl and aws-lambda-cpp with cmake and autotools (about 3 minutes, once).
ric="$root/.tools/ric"
if [ ! -e "$ric/node_modules/aws-lambda-ric/dist/rapid-client.node" ]; then
	need=()
	command -v node >/dev/null || need+=(nodejs)
	command -v npm >/dev/null || need+=(npm)
	command -v cmake >/dev/null || need+=(cmake)
	command -v autoreconf >/dev/null || need+=(autoconf)
	command -v automake >/dev/null || need+=(automake)
	command -v libtoolize >/dev/null || need+=(libtool)
	command -v g++ >/dev/null || need+=(g++)
	command -v make >/dev/null || need+=(make)
	command -v unzip >/dev/null || need+=(unzip)
	if [ ${#need[@]} -gt 0 ]; then
		echo "make deps: installing ${need[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	fi
	echo "make deps: installing aws-lambda-ric into $ric"
	mkdir -p "$ric"
	# npm 11 runs a package's install scripts only when allowScripts names it.
	printf '{\n  "private": true,\n  "dependencies": { "aws-lambda-ric": "3.3.0" },\n  "allowScripts": { "aws-lambda-ric": true }\n}\n' >"$ric/package.json"
	(cd "$ric" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
	if [ ! -e "$ric/node_modules/aws-lambda-ric/dist/rapid-client.node" ]; then
		(cd "$ric" && npm rebuild aws-lambda-ric --loglevel=error >/dev/null)
	fi
	[ -e "$ric/node_modules/aws-lambda-ric/dist/rapid-client.node" ] || { echo "make deps: aws-lambda-ric's native client did not build" >&2; exit 1; }
fi
