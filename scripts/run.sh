#!/usr/bin/env bash
# make run: start a throwaway single-node agent, apply the example functions, say how to call
# them, and keep the agent in the foreground until Ctrl-C (which drains and cleans up).
set -euo pipefail
cd "$(dirname "$0")/.."
addr="${GATEWAY_ADDR:-http://127.0.0.1:9500}"
export GATEWAY_ADDR="$addr"

bin/gateway agent -dev &
agent=$!
# Ctrl-C (or SIGTERM) is how `make run` is meant to end: stop the agent, wait for it to drain
# and end with its status, so make reports no error for a clean stop. On another exit (a failed
# apply) that exit's status is kept.
stop() {
	trap - INT TERM EXIT
	kill -TERM $agent 2>/dev/null
	status=0
	wait $agent || status=$?
	[ "$1" = 0 ] || exit "$1"
	exit $status
}
trap 'stop 0' INT TERM
trap 'stop $?' EXIT

for _ in $(seq 1 100); do
	if curl -fsS "$addr/v1/health" >/dev/null 2>&1; then break; fi
	if ! kill -0 $agent 2>/dev/null; then echo "the agent exited; see its log above" >&2; exit 1; fi
	sleep 0.1
done
bin/gateway apply -address "$addr" examples/functions.hcl examples/stream.hcl examples/queue.hcl

# Function URLs are served on the same listener, as <name>.lambda-url.localhost (the -dev url_domain).
scheme="${addr%%://*}"
hostport="${addr#*://}" && hostport="${hostport%%/*}"
port="" && case "$hostport" in *:*) port=":${hostport##*:}" ;; esac

cat <<MSG

  The gateway is running at $addr with the functions "hello", "stream" and "worker". From
  another terminal:

    curl -s -d '{"name":"you"}' $addr/2015-03-31/functions/hello/invocations
    bin/gateway invoke -payload '{"name":"you"}' -log-tail hello

  Their function URLs:

    curl -s '$scheme://hello.lambda-url.localhost$port/?name=you'
    curl -N '$scheme://stream.lambda-url.localhost$port/?n=5&ms=500'   # lines arrive one by one
    curl -N '${addr%/}/fn/stream/?n=5&ms=500'   # the same without wildcard DNS

  The queue trigger of "worker" (the queue plugin, on NATS JetStream inside the agent):

    bin/gateway queue send orders '{"order": 1}'
    bin/gateway logs -f worker

  Logs:  bin/gateway logs -f hello            Functions:  bin/gateway functions    Plugins:  bin/gateway plugins
  Press Ctrl-C to stop the agent (it drains and removes every environment).

MSG
wait $agent
