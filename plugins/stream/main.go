// Command stream is the gateway's built-in stream trigger plugin: it feeds functions from NATS
// JetStream streams (plugins/sdk/natsstream's convention: records partitioned into shards) with
// Amazon Kinesis events and the semantics of Lambda's Kinesis event source mappings: in order
// per shard, checkpoints, retries, bisection on error and on-failure records. See source.go.
package main

import "github.com/lambdagw/gateway/plugins/sdk"

func main() {
	sdk.Serve(sdk.ServeOpts{Trigger: newSource()})
}
