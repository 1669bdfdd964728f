#!/usr/bin/env bash
# Starts the three nodes of examples/cluster (as root, for libcontainer), waits until they form a
# cluster, applies the example functions on one of them and shows that every node serves them.
# Ctrl-C stops all three (each drains and removes its environments); their data stays in
# /tmp/lambdagw-cluster, so running the script again restarts the same cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."
{ [ -x bin/gateway ] && [ -x examples/functions/stream/build/bootstrap ]; } || make build >/dev/null
# The cluster's CA and one node certificate per node, made once (the CA key stays here: on real
# machines keep it off the nodes and copy each node only its own certificate and key).
certs=examples/cluster/certs
if [ ! -f $certs/gateway-node-2.pem ]; then
	rm -rf $certs && mkdir -p $certs
	bin/gateway tls ca create -dir $certs
	for _ in 1 2 3; do
		bin/gateway tls cert create -node -dir $certs -ca $certs/gateway-agent-ca.pem -key $certs/gateway-agent-ca-key.pem
	done
fi
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait; }
trap cleanup INT TERM EXIT
for i in 1 2 3; do
	mkdir -p /tmp/lambdagw-cluster/gw$i
	bin/gateway agent -config examples/cluster/gw$i.hcl >/tmp/lambdagw-cluster/gw$i.log 2>&1 &
	pids+=($!)
done
for i in 1 2 3; do
	for _ in $(seq 1 300); do
		curl -fsS "http://127.0.0.1:95${i}0/v1/health" >/dev/null 2>&1 && break
		sleep 0.1
	done
done
for _ in $(seq 1 100); do
	bin/gateway cluster members -address http://127.0.0.1:9510 2>/dev/null | grep -q leader && break
	sleep 0.2
done
bin/gateway cluster members -address http://127.0.0.1:9510
bin/gateway apply -address http://127.0.0.1:9520 examples/functions.hcl examples/stream.hcl
for i in 1 2 3; do
	echo -n "gw$i: "
	curl -s -d "{\"name\":\"gw$i\"}" "http://127.0.0.1:95${i}0/2015-03-31/functions/hello/invocations"
	echo
done
cat <<MSG

  Three nodes run at http://127.0.0.1:9510, :9520 and :9530 (logs in /tmp/lambdagw-cluster/gw*.log).

    Web console:  http://127.0.0.1:9510/ui/   (no login: these nodes have no access keys)
    Metrics:      http://127.0.0.1:9510/v1/metrics   (Prometheus; each node serves its own)
    Health:       http://127.0.0.1:9510/v1/health    (and /v1/health/ready for load balancers)

  Any node serves any function; writes on any node go through the leader:

    bin/gateway cluster members -address http://127.0.0.1:9530
    curl -N 'http://127.0.0.1:9530/fn/stream/?n=5&ms=500'   # streamed through whichever node runs it
    bin/gateway logs -address http://127.0.0.1:9530 -since 5m hello   # every node's lines, each with its node

  hello's invocations counted on one node (every metric: docs/metrics.md), and its last hour across
  the cluster:

    curl -s http://127.0.0.1:9510/v1/metrics | grep lambdagw_invocations_total
    curl -s 'http://127.0.0.1:9510/v1/functions/hello/metrics?minutes=60'

  Press Ctrl-C to stop the three nodes.

MSG
wait
