// Command s3 is the gateway's built-in s3 trigger plugin: it invokes functions with Lambda's S3
// event notifications, from the notifications an S3-compatible store pushes to its webhook or by
// polling a bucket with ListObjectsV2 for stores without notifications. See source.go.
package main

import "github.com/lambdagw/gateway/plugins/sdk"

func main() {
	sdk.Serve(sdk.ServeOpts{Trigger: newSource()})
}
