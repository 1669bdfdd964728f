// Command gateway-trigger-redis is a trigger plugin for the lambdagw gateway that feeds functions
// from Redis Streams, with Kinesis-shaped events. It is written as a third party would write
// one: its own Go module, importing nothing of the gateway but its public plugin SDK
// (github.com/lambdagw/gateway/plugins/sdk). See source.go for what it does and README.md for
// how to use it.
package main

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"

	"github.com/lambdagw/gateway/plugins/sdk"
)

func main() {
	logger := sdk.Logger()
	// go-redis logs on its own (dial failures, pool trouble); route it to the plugin's log.
	redis.SetLogger(redisLogger{logger.Named("go-redis")})
	sdk.Serve(sdk.ServeOpts{Trigger: newSource(logger), Logger: logger})
}

// redisLogger passes go-redis's internal log lines on to an hclog.Logger.
type redisLogger struct{ logger hclog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.logger.Warn(fmt.Sprintf(format, v...))
}
