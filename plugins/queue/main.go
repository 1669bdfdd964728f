// Command queue is the gateway's built-in queue trigger plugin: it feeds functions from NATS
// JetStream work queues (plugins/sdk/natsq's convention) with Amazon SQS events and the semantics of
// Lambda's SQS event source mappings. See source.go.
package main

import "github.com/lambdagw/gateway/plugins/sdk"

func main() {
	sdk.Serve(sdk.ServeOpts{Trigger: newSource()})
}
