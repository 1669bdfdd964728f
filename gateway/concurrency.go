package gateway

import (
	"context"

	"github.com/lambdagw/gateway/internal/lambda"
)

// admit counts an invocation of function fn as running, or refuses it at once when the
// function's reserved concurrency is reached (Lambda's throttle: 429 with the reason, never a
// queue). Every invocation is counted, so a reservation set while calls run sees them. The
// count is this node's; the release must be called once the invocation ends.
//
// A function without a reservation shares what the reservations leave of the node's
// max_concurrency with the other such functions (Lambda's unreserved account concurrency).
func (g *Gateway) admit(fn string) (release func(), err error) {
	limit, reserved := g.cfg.Store.ReservedConcurrency(fn)
	pool := -1 // no cap
	if !reserved && g.cfg.MaxConcurrency > 0 {
		pool = max(g.cfg.MaxConcurrency-g.cfg.Store.ReservedTotal(), 0)
	}
	g.inflightMu.Lock()
	defer g.inflightMu.Unlock()
	switch {
	case reserved && g.inflight[fn] >= limit:
		return nil, lambda.TooManyRequests("ReservedFunctionConcurrentInvocationLimitExceeded", "Rate Exceeded.")
	case !reserved && pool >= 0 && g.unreserved >= pool:
		return nil, lambda.TooManyRequests("ConcurrentInvocationLimitExceeded", "Rate Exceeded.")
	}
	g.inflight[fn]++
	if !reserved {
		g.unreserved++
	}
	return func() {
		g.inflightMu.Lock()
		if g.inflight[fn]--; g.inflight[fn] <= 0 {
			delete(g.inflight, fn)
		}
		if !reserved {
			g.unreserved--
		}
		g.inflightMu.Unlock()
	}, nil
}

// PutFunctionConcurrency reserves n concurrent executions for the function (0 throttles every
// call, as Lambda's does).
func (g *Gateway) PutFunctionConcurrency(ctx context.Context, name string, n int) (*lambda.Concurrency, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, lambda.InvalidParameter("ReservedConcurrentExecutions %d must be 0 or more", n)
	}
	if g.cfg.MaxConcurrency > 0 {
		others := g.cfg.Store.ReservedTotal()
		if cur, ok := g.cfg.Store.ReservedConcurrency(fn.Name); ok {
			others -= cur
		}
		if others+n > g.cfg.MaxConcurrency {
			return nil, lambda.InvalidParameter("Specified ReservedConcurrentExecutions for function decreases the node's unreserved concurrency below 0: %d reserved by other functions, %d requested, max_concurrency %d",
				others, n, g.cfg.MaxConcurrency)
		}
	}
	if err := g.cfg.Store.PutConcurrency(ctx, fn.Name, &n); err != nil {
		return nil, g.storeError(fn.Name, err)
	}
	return &lambda.Concurrency{ReservedConcurrentExecutions: &n}, nil
}

// GetFunctionConcurrency reports the reservation; none is an empty answer, as in Lambda.
func (g *Gateway) GetFunctionConcurrency(name string) (*lambda.Concurrency, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	out := &lambda.Concurrency{}
	if n, ok := g.cfg.Store.ReservedConcurrency(fn.Name); ok {
		out.ReservedConcurrentExecutions = &n
	}
	return out, nil
}

// DeleteFunctionConcurrency removes the reservation.
func (g *Gateway) DeleteFunctionConcurrency(ctx context.Context, name string) error {
	fn, err := g.existing(name)
	if err != nil {
		return err
	}
	if err := g.cfg.Store.PutConcurrency(ctx, fn.Name, nil); err != nil {
		return g.storeError(fn.Name, err)
	}
	return nil
}
