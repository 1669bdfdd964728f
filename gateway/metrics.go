package gateway

import (
	"errors"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/lambda"
)

// Metrics counts the calls the gateway refuses (the agent wires internal/metrics in); the
// sandbox counts those that run.
type Metrics interface {
	// Throttled counts a call of function through arn (the ARN the caller invoked) refused
	// with 429 for reason.
	Throttled(function, arn, reason string)
}

// The reasons of a throttle, as Metrics gets them.
const (
	ThrottleReserved     = "reserved_concurrency"
	ThrottleConcurrency  = "concurrency_limit"
	ThrottleCapacity     = "node_capacity"
	ThrottleAsyncBacklog = "async_backlog"
)

// countThrottle tells Metrics of err when it is a throttle.
func (g *Gateway) countThrottle(function, arn string, err error) {
	if g.cfg.Metrics == nil {
		return
	}
	var le *lambda.Error
	switch {
	case errors.Is(err, invoke.ErrNoCapacity):
		g.cfg.Metrics.Throttled(function, arn, ThrottleCapacity)
	case errors.As(err, &le) && le.Status == 429:
		switch le.Reason {
		case "ReservedFunctionConcurrentInvocationLimitExceeded":
			g.cfg.Metrics.Throttled(function, arn, ThrottleReserved)
		default:
			g.cfg.Metrics.Throttled(function, arn, ThrottleConcurrency)
		}
	}
}

// EachAsyncCounters calls f with this node's counts of each function's events, for metrics.
func (g *Gateway) EachAsyncCounters(f func(function string, c AsyncCounters)) {
	g.asyncStats.Range(func(k, _ any) bool {
		fn := k.(string)
		f(fn, g.AsyncCounters(fn))
		return true
	})
}
